"""When an agent talks to its server next: Updates spread over time, retries that back off with jitter.

A fleet registered together would otherwise send its Updates in lockstep, and after a server restart
every device that finds itself forgotten would register in the same second and again at the same
retry times. Jitter spreads both: Updates come at 40–50 % of the lifetime, and a failed attempt waits a
random time up to the current backoff ("full jitter"), the backoff doubling to a cap.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["MAX_BACKOFF_S", "Pacing"]

FIRST_BACKOFF_S = 1.0
MAX_BACKOFF_S = 30.0
MIN_PAUSE_S = 0.05  # never spin on a server that answers at once


@dataclass
class Pacing:
    """The pauses of one agent's registration loop; ``rng`` is per agent so agents decorrelate."""

    lifetime: float
    rng: random.Random
    backoff: float = FIRST_BACKOFF_S

    def after_success(self) -> float:
        """The pause before the next Update: 40–50 % of the lifetime, at least a second."""
        self.backoff = FIRST_BACKOFF_S
        return max(1.0, self.lifetime * self.rng.uniform(0.4, 0.5))

    def after_failure(self) -> float:
        """The pause before the next try: uniform up to the backoff, which then doubles up to the cap."""
        pause = max(MIN_PAUSE_S, self.rng.uniform(0.0, self.backoff))
        self.backoff = min(self.backoff * 2, MAX_BACKOFF_S)
        return pause

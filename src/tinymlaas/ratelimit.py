"""Token buckets by key: how fast one API token or one device may make requests.

Each key has a bucket of ``burst`` requests refilled at ``rate`` per second; ``take`` spends one or
says how long until one is there. Buckets live in memory, and only the ``max_keys`` most recently
used are kept, so a flood of new keys (made-up tokens, spoofed senders) stays bounded too.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["TokenBuckets"]


class TokenBuckets:
    """Token buckets by key; ``take`` spends one request."""

    def __init__(
        self,
        *,
        rate: float,
        burst: int,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (level, when)

    def take(self, key: str) -> float:
        """0 when a request is allowed now (and spent), else the seconds until one will be."""
        now = self._clock()
        level, when = self._buckets.pop(key, (float(self.burst), now))
        level = min(float(self.burst), level + (now - when) * self.rate)
        allowed = level >= 1.0
        self._buckets[key] = (level - 1.0 if allowed else level, now)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return 0.0 if allowed else (1.0 - level) / self.rate

"""Retransmission timeouts per peer from measured round trips, after CoCoA (draft-ietf-core-cocoa).

RFC 7252 fixes no timer: ACK_TIMEOUT 2 s is a default meant to be configured for the path, and on a
loopback or LAN path with a few percent loss it turns every lost datagram into seconds of idle waiting.
aiocoap does not estimate round-trip times (it retransmits after its configured ACK_TIMEOUT, doubled each
time), so this estimator is written by hand and kept pure: the transport feeds it the exchanges it saw
answered and asks it for the timeout of the next request.

What it keeps, as CoCoA does:

- CoCoA's *strong* estimate (RFC 6298's SRTT and RTTVAR, RTO = SRTT + 4 RTTVAR). CoCoA adds a *weak*
  estimate for confirmable exchanges answered after a retransmission, where the answer may belong to
  either copy (Karn's problem). The block requests this times are non-confirmable and every copy has
  a token of its own, so the transport knows which copy was answered and when it was sent: every
  sample is exact and there is no weak estimate to keep;
- the overall RTO as the mean of the new estimate and the previous RTO, starting from RFC 7252's 2 s
  before any sample exists, so a single fast answer does not make the timer aggressive at once;
- bounds: never below ``MIN_RTO_S`` (0.2 s, safe for real radio links), never above ``MAX_RTO_S``;
- a variable backoff (3 for RTOs under 1 s, 1.5 above 3 s, else 2) and aging: an RTO under 1 s that
  went unconfirmed for 16 RTOs doubles, one over 3 s left alone for 4 RTOs moves halfway back to 2 s.
"""

from __future__ import annotations

import random
from collections.abc import Callable

__all__ = ["DEFAULT_RTO_S", "MAX_RTO_S", "MIN_RTO_S", "RttEstimator", "backoff"]

DEFAULT_RTO_S = 2.0  # RFC 7252 ACK_TIMEOUT, used until a peer has answered
MIN_RTO_S = 0.2
MAX_RTO_S = 60.0
ACK_RANDOM_FACTOR = 1.5  # RFC 7252: each timeout is drawn from [RTO, 1.5 RTO] so peers do not synchronise
_ALPHA = 0.25  # RFC 6298 gains
_BETA = 0.125
_K = 4.0


def backoff(rto: float) -> float:
    """The timeout after one more unanswered transmission (CoCoA's variable backoff factor)."""
    factor = 3.0 if rto < 1.0 else 1.5 if rto > 3.0 else 2.0
    return min(rto * factor, MAX_RTO_S)


class RttEstimator:
    """The retransmission timeout for one peer; ``clock`` is monotonic seconds (injectable for tests)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._srtt: float | None = None
        self._rttvar = 0.0
        self._rto = DEFAULT_RTO_S
        self._updated = clock()

    def rto(self) -> float:
        """The current RTO in seconds, aged if no sample confirmed it for a while."""
        now = self._clock()
        if self._rto < 1.0:
            while self._rto < 1.0 and now - self._updated > 16 * self._rto:
                self._updated += 16 * self._rto
                self._rto = min(self._rto * 2, 1.0)
        elif self._rto > 3.0:
            while self._rto > 3.0 and now - self._updated > 4 * self._rto:
                self._updated += 4 * self._rto
                self._rto = (DEFAULT_RTO_S + self._rto) / 2
        return self._rto

    def first_timeout(self, rng: random.Random | None = None) -> float:
        """The wait before the first retransmission: the RTO dithered by RFC 7252's random factor."""
        return self.rto() * (rng or random).uniform(1.0, ACK_RANDOM_FACTOR)

    def answered(self, rtt: float) -> None:
        """Learn from one request answered ``rtt`` seconds after it was sent."""
        if not 0 <= rtt <= MAX_RTO_S * 4:
            raise ValueError(f"a round trip of {rtt} s is outside 0..{MAX_RTO_S * 4} s")
        if self._srtt is None:
            self._srtt, self._rttvar = rtt, rtt / 2
        else:
            self._rttvar = (1 - _ALPHA) * self._rttvar + _ALPHA * abs(self._srtt - rtt)
            self._srtt = (1 - _BETA) * self._srtt + _BETA * rtt
        estimate = self._srtt + _K * self._rttvar
        self.rto()  # apply any aging before blending the new estimate in
        self._rto = min(max(0.5 * estimate + 0.5 * self._rto, MIN_RTO_S), MAX_RTO_S)
        self._updated = self._clock()

"""The per-peer retransmission timer: RFC 7252's default until a sample, CoCoA's blend, bounds, aging."""

from __future__ import annotations

import random

import pytest

from tinymlaas.lwm2m.transport.rtt import DEFAULT_RTO_S, MAX_RTO_S, MIN_RTO_S, RttEstimator, backoff


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_rfc_default_holds_until_a_peer_answers() -> None:
    estimator = RttEstimator(Clock())
    assert estimator.rto() == DEFAULT_RTO_S
    assert DEFAULT_RTO_S <= estimator.first_timeout(random.Random(1)) <= 1.5 * DEFAULT_RTO_S


def test_a_first_sample_is_blended_with_the_default_not_taken_alone() -> None:
    estimator = RttEstimator(Clock())
    estimator.answered(0.1)
    # SRTT 0.1, RTTVAR 0.05: the estimate 0.3 s, averaged with the 2 s before.
    assert estimator.rto() == pytest.approx((0.1 + 4 * 0.05 + DEFAULT_RTO_S) / 2)


def test_steady_fast_answers_converge_but_never_below_the_floor() -> None:
    estimator = RttEstimator(Clock())
    for _ in range(40):
        estimator.answered(0.001)
    assert estimator.rto() == MIN_RTO_S


def test_a_slower_path_raises_the_timeout_up_to_the_cap() -> None:
    estimator = RttEstimator(Clock())
    for _ in range(10):
        estimator.answered(0.05)
    fast = estimator.rto()
    estimator.answered(1.5)
    assert estimator.rto() > fast
    for _ in range(40):
        estimator.answered(200.0)
    assert estimator.rto() == MAX_RTO_S


def test_backoff_grows_fast_timers_faster_and_stops_at_the_cap() -> None:
    assert backoff(0.5) == pytest.approx(1.5)
    assert backoff(2.0) == pytest.approx(4.0)
    assert backoff(4.0) == pytest.approx(6.0)
    assert backoff(MAX_RTO_S) == MAX_RTO_S


def test_a_short_timeout_left_unconfirmed_ages_back_up_and_a_long_one_back_down() -> None:
    clock = Clock()
    short = RttEstimator(clock)
    for _ in range(40):
        short.answered(0.01)
    assert short.rto() == MIN_RTO_S
    clock.now += 16 * MIN_RTO_S + 0.01
    assert short.rto() == pytest.approx(2 * MIN_RTO_S)
    clock.now += 3600
    assert short.rto() == 1.0  # aging stops where backoff changes pace, it never exceeds the default

    long = RttEstimator(clock)
    for _ in range(20):
        long.answered(10.0)
    high = long.rto()
    assert high > 3.0
    clock.now += 4 * high + 0.01
    assert long.rto() == pytest.approx((DEFAULT_RTO_S + high) / 2)


def test_an_impossible_sample_is_refused() -> None:
    with pytest.raises(ValueError, match="round trip"):
        RttEstimator(Clock()).answered(-1.0)

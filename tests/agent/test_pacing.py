import random

from tinymlaas.agent.pacing import MAX_BACKOFF_S, Pacing


def test_updates_come_before_half_the_lifetime_and_spread():
    pauses = [Pacing(60, random.Random(seed)).after_success() for seed in range(200)]
    assert all(24 <= p <= 30 for p in pauses)
    assert max(pauses) - min(pauses) > 4  # a fleet registered together does not update in lockstep
    assert Pacing(1, random.Random(0)).after_success() == 1.0


def test_failures_back_off_with_full_jitter_up_to_the_cap():
    pacing = Pacing(60, random.Random(1))
    ceilings = []
    for _ in range(8):
        ceilings.append(pacing.backoff)
        assert pacing.after_failure() <= ceilings[-1]
    assert ceilings == [1, 2, 4, 8, 16, 30, 30, 30] and pacing.backoff == MAX_BACKOFF_S
    pacing.after_success()
    assert pacing.backoff == 1


def test_a_restart_storm_is_spread_over_the_backoff_window():
    """Many agents failing their first try at once come back at different times, not together."""
    first_retry = sorted(Pacing(60, random.Random(seed)).after_failure() for seed in range(1000))
    assert first_retry[0] < 0.1 and first_retry[-1] > 0.9
    per_tenth = [sum(1 for p in first_retry if i / 10 <= p < (i + 1) / 10) for i in range(10)]
    assert max(per_tenth) < 150  # about 100 each: no second holds the whole fleet

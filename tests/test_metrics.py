import math

import numpy as np
import pytest

from tinymlaas.data.types import Task
from tinymlaas.formatting import fmt_metric
from tinymlaas.metrics import Metric, score, wilson_interval


def test_wilson_interval_matches_the_published_figures():
    # Newcombe (1998), Table I: 81 of 263 -> 0.2553 to 0.3662; 15 of 148 -> 0.0624 to 0.1605.
    assert wilson_interval(81, 263) == pytest.approx((0.2553, 0.3662), abs=1e-4)
    assert wilson_interval(15, 148) == pytest.approx((0.0624, 0.1605), abs=1e-4)
    low, high = wilson_interval(27, 27)
    assert high == 1.0 and low == pytest.approx(0.8754, abs=1e-4)


def test_accuracy_carries_its_sample_count_and_interval():
    y = np.array([0, 1, 1, 0] * 5)
    predictions = np.eye(2)[np.array([0, 1, 0, 0] * 5)]
    metric = score(Task.CLASSIFICATION, y, predictions)
    assert (metric.value, metric.n) == (0.75, 20)
    assert (metric.low, metric.high) == pytest.approx(wilson_interval(15, 20))
    assert fmt_metric(metric.as_dict()) == (
        f"accuracy 75.0 % (95 % CI {metric.low * 100:.1f}–{metric.high * 100:.1f} %, n=20)"
    )


def test_mse_interval_is_a_seeded_bootstrap_around_the_mean():
    rng = np.random.default_rng(1)
    y = rng.normal(size=200)
    predictions = y + rng.normal(scale=0.5, size=200)
    first = score(Task.REGRESSION, y, predictions)
    assert first.low < first.value < first.high
    assert first == score(Task.REGRESSION, y, predictions)


def test_stored_metrics_without_counts_still_read_and_print():
    old = Metric.from_dict({"name": "accuracy", "value": 0.5})
    assert old.n is None and fmt_metric(old.as_dict()) == "accuracy 50.0 %"
    assert math.isnan(score(Task.CLASSIFICATION, np.array([]), np.empty((0, 2))).value)

"""The one way every part of the product scores predictions, so float and runtime figures compare.

Every metric carries the number of samples it rests on and a 95 % interval, because a test split of
27 samples moves accuracy by 3.7 points per sample and a reader must see that. Accuracy uses the
Wilson score interval (well behaved near 0 and 1 and for small n); mean squared error a seeded
percentile bootstrap, as it has no closed form worth trusting on small, skewed errors.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from tinymlaas.data.types import Task

__all__ = ["Metric", "confusion_matrix", "score", "wilson_interval"]

Z_95 = 1.959963984540054  # two-sided 95 % quantile of the standard normal
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 0  # fixed, so the same predictions always give the same interval


@dataclass(frozen=True)
class Metric:
    name: str  # "accuracy" (higher is better) or "mse" (lower is better)
    value: float
    n: int | None = None  # samples scored; None for figures stored before counts were kept
    low: float | None = None  # 95 % interval
    high: float | None = None

    @property
    def higher_is_better(self) -> bool:
        return self.name == "accuracy"

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "value": self.value, "n": self.n, "low": self.low, "high": self.high}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Metric:
        def number(key: str) -> float | None:
            value = data.get(key)
            return None if value is None else float(value)

        n = data.get("n")
        return cls(
            str(data["name"]),
            float(data["value"]),
            None if n is None else int(n),
            number("low"),
            number("high"),
        )


def wilson_interval(hits: int, n: int) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion ``hits / n``."""
    if n <= 0:
        return (float("nan"), float("nan"))
    p = hits / n
    denominator = 1 + Z_95**2 / n
    centre = (p + Z_95**2 / (2 * n)) / denominator
    half = Z_95 * math.sqrt(p * (1 - p) / n + Z_95**2 / (4 * n * n)) / denominator
    # At 0 or n hits the interval touches the bound exactly; rounding would leave it a hair short.
    low = 0.0 if hits == 0 else max(0.0, centre - half)
    high = 1.0 if hits == n else min(1.0, centre + half)
    return (low, high)


def _bootstrap_mean(values: np.ndarray) -> tuple[float, float]:
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    means = values[rng.integers(0, len(values), size=(BOOTSTRAP_RESAMPLES, len(values)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return (float(low), float(high))


def score(task: Task, y_true: np.ndarray, y_pred: np.ndarray) -> Metric:
    """Accuracy from class scores (argmax) for classification; mean squared error for regression."""
    n = len(y_true)
    if n == 0:
        return Metric("accuracy" if task is Task.CLASSIFICATION else "mse", float("nan"), 0)
    if task is Task.CLASSIFICATION:
        hits = int(np.sum(np.argmax(y_pred.reshape(n, -1), axis=1) == y_true.astype(int)))
        low, high = wilson_interval(hits, n)
        return Metric("accuracy", hits / n, n, low, high)
    errors = (y_pred.reshape(n).astype(np.float64) - y_true.astype(np.float64)) ** 2
    low, high = _bootstrap_mean(errors)
    return Metric("mse", float(np.mean(errors)), n, low, high)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, classes: int) -> list[list[int]]:
    """Counts of (true class, predicted class) from class scores, so a page can show which classes mix.

    Row ``i`` is the true class ``i``, column ``j`` the predicted class ``j``; the diagonal holds the hits
    ``score`` counts as accuracy.
    """
    predicted = np.argmax(y_pred.reshape(len(y_true), -1), axis=1)
    counts = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(counts, (y_true.astype(int), predicted), 1)
    return counts.tolist()

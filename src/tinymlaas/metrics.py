"""The one way every part of the product scores predictions, so float and runtime figures compare."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinymlaas.data.types import Task

__all__ = ["Metric", "confusion_matrix", "score"]


@dataclass(frozen=True)
class Metric:
    name: str  # "accuracy" (higher is better) or "mse" (lower is better)
    value: float

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "value": self.value}


def score(task: Task, y_true: np.ndarray, y_pred: np.ndarray) -> Metric:
    """Accuracy from class scores (argmax) for classification; mean squared error for regression."""
    if task is Task.CLASSIFICATION:
        hits = np.argmax(y_pred.reshape(len(y_true), -1), axis=1) == y_true.astype(int)
        return Metric("accuracy", float(np.mean(hits)) if len(hits) else float("nan"))
    diff = y_pred.reshape(len(y_true)).astype(np.float64) - y_true.astype(np.float64)
    return Metric("mse", float(np.mean(diff**2)) if len(diff) else float("nan"))


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, classes: int) -> list[list[int]]:
    """Counts of (true class, predicted class) from class scores, so a page can show which classes mix.

    Row ``i`` is the true class ``i``, column ``j`` the predicted class ``j``; the diagonal holds the hits
    ``score`` counts as accuracy.
    """
    predicted = np.argmax(y_pred.reshape(len(y_true), -1), axis=1)
    counts = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(counts, (y_true.astype(int), predicted), 1)
    return counts.tolist()

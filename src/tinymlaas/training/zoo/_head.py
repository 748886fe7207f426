"""The output head shared by every family: softmax for classes, one linear unit for regression."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from tinymlaas.data.types import DatasetSpec, Task


def head(spec: DatasetSpec, features: Any, k: ModuleType) -> Any:
    """The last layer on ``features``, built with the Keras namespace ``k`` the family uses."""
    if spec.task is Task.CLASSIFICATION:
        return k.layers.Dense(len(spec.labels), activation="softmax", name="classes")(features)
    return k.layers.Dense(1, name="target")(features)


def units(base: int, width: float) -> int:
    """Scale a layer width by the width multiplier, never below 4 units."""
    return max(4, round(base * width))

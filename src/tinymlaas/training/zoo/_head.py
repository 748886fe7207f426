"""The output head shared by every family: softmax for classes, one linear unit for regression."""

from __future__ import annotations

import keras

from tinymlaas.data.types import DatasetSpec, Task


def head(spec: DatasetSpec, features: keras.KerasTensor) -> keras.KerasTensor:
    if spec.task is Task.CLASSIFICATION:
        return keras.layers.Dense(len(spec.labels), activation="softmax", name="classes")(features)
    return keras.layers.Dense(1, name="target")(features)


def units(base: int, width: float) -> int:
    """Scale a layer width by the width multiplier, never below 4 units."""
    return max(4, round(base * width))

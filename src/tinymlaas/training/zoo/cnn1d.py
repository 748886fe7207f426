"""1-D CNN for time-series windows (accelerometer gestures, audio): three conv blocks, global pooling."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from tinymlaas.data.types import DatasetSpec
from tinymlaas.training.zoo._head import head, units


def build(spec: DatasetSpec, width: float, k: ModuleType) -> Any:
    inputs = k.Input(spec.input_shape, name="input")
    x = k.layers.Conv1D(units(32, width), 5, padding="same", activation="relu")(inputs)
    x = k.layers.MaxPooling1D(2)(x)
    x = k.layers.Conv1D(units(64, width), 5, padding="same", activation="relu")(x)
    x = k.layers.MaxPooling1D(2)(x)
    x = k.layers.Conv1D(units(128, width), 3, padding="same", activation="relu")(x)
    # Global pooling keeps the model small and tolerant of where in the window the event happens.
    x = k.layers.GlobalAveragePooling1D()(x)
    x = k.layers.Dense(units(64, width), activation="relu")(x)
    x = k.layers.Dropout(0.2)(x)
    return k.Model(inputs, head(spec, x, k), name="cnn1d")

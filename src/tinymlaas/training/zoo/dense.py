"""Fully connected network for feature vectors (tabular rows, scalar inputs such as ``sine``)."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from tinymlaas.data.types import DatasetSpec
from tinymlaas.training.zoo._head import head, units


def build(spec: DatasetSpec, width: float, k: ModuleType) -> Any:
    inputs = k.Input(spec.input_shape, name="input")
    x = k.layers.Dense(units(32, width), activation="relu")(inputs)
    x = k.layers.Dense(units(32, width), activation="relu")(x)
    return k.Model(inputs, head(spec, x, k), name="dense")

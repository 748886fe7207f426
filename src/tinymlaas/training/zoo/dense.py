"""Fully connected network for feature vectors (tabular rows, scalar inputs such as ``sine``).

A search may change the number of hidden layers (2 by default).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from tinymlaas.data.types import DatasetSpec
from tinymlaas.training.zoo._head import head, units


def build(spec: DatasetSpec, width: float, k: ModuleType, *, depth: int = 2) -> Any:
    inputs = k.Input(spec.input_shape, name="input")
    x = inputs
    for _ in range(depth):
        x = k.layers.Dense(units(32, width), activation="relu")(x)
    return k.Model(inputs, head(spec, x, k), name="dense")

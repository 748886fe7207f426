"""Small 2-D CNN for small images (up to 32×32), e.g. the 8×8 ``digits``.

A search may change the kernel size of every convolution (3 by default).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from tinymlaas.data.types import DatasetSpec
from tinymlaas.training.zoo._head import head, units


def build(spec: DatasetSpec, width: float, k: ModuleType, *, kernel: int = 3) -> Any:
    inputs = k.Input(spec.input_shape, name="input")
    x = k.layers.Conv2D(units(16, width), kernel, padding="same", activation="relu")(inputs)
    x = k.layers.Conv2D(units(32, width), kernel, padding="same", activation="relu")(x)
    x = k.layers.MaxPooling2D(2)(x)
    x = k.layers.Conv2D(units(64, width), kernel, padding="same", activation="relu")(x)
    x = k.layers.GlobalAveragePooling2D()(x)
    x = k.layers.Dropout(0.2)(x)
    return k.Model(inputs, head(spec, x, k), name="cnn2d")

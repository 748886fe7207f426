"""1-D CNN for time-series windows (accelerometer gestures, audio): conv blocks, global pooling.

The defaults are the zoo's model: three blocks (32, 64, 128 filters; kernels 5, 5, 3), pooling
between them. A search may change the number of blocks, give every block one kernel size, and let the
first convolution step over the window (``stride`` 2 looks at every second sample, halving every
activation after it) while the model still takes the whole window in sensor units.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from tinymlaas.data.types import DatasetSpec
from tinymlaas.training.zoo._head import head, units

FILTERS = (32, 64, 128, 128)  # per block, at width 1.0; the default uses the first three
KERNELS = (5, 5, 3)  # the default's kernel per block
DEPTH = 3


def build(
    spec: DatasetSpec,
    width: float,
    k: ModuleType,
    *,
    depth: int = DEPTH,
    kernel: int | None = None,
    stride: int = 1,
) -> Any:
    inputs = k.Input(spec.input_shape, name="input")
    x = inputs
    for block in range(depth):
        size = kernel if kernel is not None else KERNELS[min(block, len(KERNELS) - 1)]
        extra = {"strides": stride} if block == 0 and stride != 1 else {}
        x = k.layers.Conv1D(units(FILTERS[block], width), size, padding="same", activation="relu", **extra)(x)
        if block < depth - 1:
            x = k.layers.MaxPooling1D(2)(x)
    # Global pooling keeps the model small and tolerant of where in the window the event happens.
    x = k.layers.GlobalAveragePooling1D()(x)
    x = k.layers.Dense(units(64, width), activation="relu")(x)
    x = k.layers.Dropout(0.2)(x)
    return k.Model(inputs, head(spec, x, k), name="cnn1d")

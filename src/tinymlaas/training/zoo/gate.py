"""A tiny strided CNN for 96×96 frames: the always-on first stage of a vision cascade.

It runs on every frame on the microcontroller and only has to say whether anything is in view, so
it is built for memory, not accuracy: every convolution halves the frame, so the largest activation
is the first one (48×48×8 int8, 18 KB) and the int8 weights stay under 32 KB, leaving the flash and
RAM of a Cortex-M4 board to the application. Four stride-2 convolutions give each output a 31-pixel
view, enough to see the edges of an object or the outline of a face.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from tinymlaas.data.types import DatasetSpec
from tinymlaas.training.zoo._head import head, units

FILTERS = (8, 16, 32, 64)  # per stride-2 convolution, at width 1.0
BN_MOMENTUM = 0.9  # see mobilenet: small datasets give few steps per epoch


def build(spec: DatasetSpec, width: float, k: ModuleType) -> Any:
    inputs = k.Input(spec.input_shape, name="input")
    x = inputs
    for i, filters in enumerate(FILTERS, start=1):
        x = k.layers.Conv2D(
            units(filters, width), 3, strides=2, padding="same", use_bias=False, name=f"conv{i}"
        )(x)
        x = k.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"conv{i}_bn")(x)
        x = k.layers.ReLU(6.0, name=f"conv{i}_relu")(x)
    x = k.layers.GlobalAveragePooling2D(name="pool")(x)
    return k.Model(inputs, head(spec, x, k), name="gate")

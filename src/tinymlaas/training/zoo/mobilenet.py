"""MobileNet-style CNN for larger images: depthwise-separable blocks scaled by a width multiplier.

The depthwise + pointwise split cuts MACs and weights by roughly the kernel area compared with
plain convolutions, which is what lets a camera model fit a microcontroller.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from tinymlaas.data.types import DatasetSpec
from tinymlaas.training.zoo._head import head, units

# (pointwise filters at width 1.0, stride) per block, after a strided stem.
_BLOCKS = ((16, 1), (32, 2), (32, 1), (64, 2), (64, 1), (128, 2))


def build(spec: DatasetSpec, width: float, k: ModuleType) -> Any:
    inputs = k.Input(spec.input_shape, name="input")
    x = k.layers.Conv2D(units(8, width), 3, strides=2, padding="same", use_bias=False)(inputs)
    x = k.layers.BatchNormalization()(x)
    x = k.layers.ReLU(6.0)(x)
    for filters, stride in _BLOCKS:
        x = k.layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False)(x)
        x = k.layers.BatchNormalization()(x)
        x = k.layers.ReLU(6.0)(x)
        x = k.layers.Conv2D(units(filters, width), 1, use_bias=False)(x)
        x = k.layers.BatchNormalization()(x)
        x = k.layers.ReLU(6.0)(x)
    x = k.layers.GlobalAveragePooling2D()(x)
    x = k.layers.Dropout(0.2)(x)
    return k.Model(inputs, head(spec, x, k), name="mobilenet")

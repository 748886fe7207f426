"""MobileNet-style CNN for larger images: depthwise-separable blocks scaled by a width multiplier.

The depthwise + pointwise split cuts MACs and weights by roughly the kernel area compared with
plain convolutions, which is what lets a camera model fit a microcontroller.
"""

from __future__ import annotations

import keras
import numpy as np

from tinymlaas.data.types import DatasetSpec
from tinymlaas.training.zoo._head import head, units

# (pointwise filters at width 1.0, stride) per block, after a strided stem.
_BLOCKS = ((16, 1), (32, 2), (32, 1), (64, 2), (64, 1), (128, 2))


def build(spec: DatasetSpec, x_train: np.ndarray, width: float) -> keras.Model:
    del x_train  # pixels already arrive scaled to [0, 1]
    inputs = keras.Input(spec.input_shape, name="input")
    x = keras.layers.Conv2D(units(8, width), 3, strides=2, padding="same", use_bias=False)(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU(6.0)(x)
    for filters, stride in _BLOCKS:
        x = keras.layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False)(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU(6.0)(x)
        x = keras.layers.Conv2D(units(filters, width), 1, use_bias=False)(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU(6.0)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.2)(x)
    return keras.Model(inputs, head(spec, x), name="mobilenet")

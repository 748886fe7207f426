"""Small 2-D CNN for small images (up to 32×32), e.g. the 8×8 ``digits``."""

from __future__ import annotations

import keras
import numpy as np

from tinymlaas.data.types import DatasetSpec
from tinymlaas.training.zoo._head import head, units


def build(spec: DatasetSpec, x_train: np.ndarray, width: float) -> keras.Model:
    del x_train  # pixels already arrive scaled to [0, 1]
    inputs = keras.Input(spec.input_shape, name="input")
    x = keras.layers.Conv2D(units(16, width), 3, padding="same", activation="relu")(inputs)
    x = keras.layers.Conv2D(units(32, width), 3, padding="same", activation="relu")(x)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Conv2D(units(64, width), 3, padding="same", activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.2)(x)
    return keras.Model(inputs, head(spec, x), name="cnn2d")

"""1-D CNN for time-series windows (accelerometer gestures, audio): three conv blocks, global pooling."""

from __future__ import annotations

import keras
import numpy as np

from tinymlaas.data.types import DatasetSpec
from tinymlaas.training.zoo._head import head, units


def build(spec: DatasetSpec, x_train: np.ndarray, width: float) -> keras.Model:
    inputs = keras.Input(spec.input_shape, name="input")
    # Per-channel standardization: sensor axes differ in offset (gravity) and range.
    norm = keras.layers.Normalization(axis=-1, name="normalize")
    norm.adapt(x_train)
    x = norm(inputs)
    x = keras.layers.Conv1D(units(32, width), 5, padding="same", activation="relu")(x)
    x = keras.layers.MaxPooling1D(2)(x)
    x = keras.layers.Conv1D(units(64, width), 5, padding="same", activation="relu")(x)
    x = keras.layers.MaxPooling1D(2)(x)
    x = keras.layers.Conv1D(units(128, width), 3, padding="same", activation="relu")(x)
    # Global pooling keeps the model small and tolerant of where in the window the event happens.
    x = keras.layers.GlobalAveragePooling1D()(x)
    x = keras.layers.Dense(units(64, width), activation="relu")(x)
    x = keras.layers.Dropout(0.2)(x)
    return keras.Model(inputs, head(spec, x), name="cnn1d")

"""Fully connected network for feature vectors (tabular rows, scalar inputs such as ``sine``)."""

from __future__ import annotations

import keras
import numpy as np

from tinymlaas.data.types import DatasetSpec
from tinymlaas.training.zoo._head import head, units


def build(spec: DatasetSpec, x_train: np.ndarray, width: float) -> keras.Model:
    inputs = keras.Input(spec.input_shape, name="input")
    # Tabular features arrive in arbitrary units; per-feature standardization makes training robust.
    norm = keras.layers.Normalization(axis=-1, name="normalize")
    norm.adapt(x_train)
    x = norm(inputs)
    x = keras.layers.Dense(units(32, width), activation="relu")(x)
    x = keras.layers.Dense(units(32, width), activation="relu")(x)
    return keras.Model(inputs, head(spec, x), name="dense")

"""Shared fixtures: one small real Keras model and its real .tflite variants, built once per run."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@dataclass(frozen=True)
class TinyModels:
    """A 4-class 1-D CNN on (32, 3) windows that separates its classes by channel offset."""

    keras_model: object
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    float32: bytes
    float16: bytes
    int8: bytes


def _windows(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    x = rng.normal(0, 0.3, (n, 32, 3)).astype(np.float32)
    x[np.arange(n), :, y % 3] += 1.0 + (y // 3)[:, None]
    return x, y.astype(np.int32)


@pytest.fixture(scope="session")
def tiny_models() -> TinyModels:
    import keras

    from tinymlaas.squeeze.convert import Quantization, convert

    keras.utils.set_random_seed(7)
    x_train, y_train = _windows(512, 1)
    x_test, y_test = _windows(128, 2)
    model = keras.Sequential(
        [
            keras.Input((32, 3)),
            keras.layers.Conv1D(8, 3, activation="relu"),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(4, activation="softmax"),
        ]
    )
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    model.fit(x_train, y_train, epochs=40, batch_size=64, verbose=0)
    return TinyModels(
        keras_model=model,
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        float32=convert(model, Quantization.FLOAT32),
        float16=convert(model, Quantization.FLOAT16),
        int8=convert(model, Quantization.INT8, x_train),
    )

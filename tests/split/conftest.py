"""Two small int8 models, converted once per session: a straight CNN and one with a residual ADD."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _spread_logits(model: object) -> None:
    """Untrained logits are nearly constant and TFLM's softmax refuses so small an input scale;
    widen the last layer as training would."""
    last = [layer for layer in model.layers if layer.get_weights()][-1]  # type: ignore[attr-defined]
    kernel, *rest = last.get_weights()
    last.set_weights([kernel * 100, *rest])


def _int8(model: object, seed: int) -> bytes:
    from tinymlaas.squeeze.convert import Quantization, convert

    _spread_logits(model)
    shape = model.input_shape[1:]  # type: ignore[attr-defined]
    representative = np.random.default_rng(seed).normal(size=(32, *shape)).astype(np.float32)
    return convert(model, Quantization.INT8, representative)


@pytest.fixture(scope="session")
def straight_cnn() -> bytes:
    """conv → depthwise → pool → conv → flatten → dense → softmax; a fixed batch keeps the flatten
    a RESHAPE to a constant shape, so every cut carries one tensor."""
    import keras

    keras.utils.set_random_seed(11)
    model = keras.Sequential(
        [
            keras.Input((12, 12, 2), batch_size=1),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.DepthwiseConv2D(3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(6, 1, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(5),
            keras.layers.Softmax(),
        ]
    )
    return _int8(model, 1)


@pytest.fixture(scope="session")
def residual_cnn() -> bytes:
    """A conv whose output skips two convs and meets them at an ADD: the cuts inside the branch carry two."""
    import keras

    keras.utils.set_random_seed(12)
    x = keras.Input((8, 8, 3))
    stem = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(x)
    branch = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(stem)
    branch = keras.layers.Conv2D(4, 3, padding="same")(branch)
    merged = keras.layers.ReLU()(keras.layers.Add()([stem, branch]))
    pooled = keras.layers.GlobalAveragePooling2D()(merged)
    out = keras.layers.Softmax()(keras.layers.Dense(3)(pooled))
    return _int8(keras.Model(x, out), 2)

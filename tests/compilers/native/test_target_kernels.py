"""The Arm-only kernel paths (SIMD matrix product, packed depthwise) checked where they run: a small
depthwise-separable network built for each Cortex-M core and run in QEMU, every output byte
compared with the TFLM interpreter. The host build never takes these paths, so only this catches
a slip in them."""

from __future__ import annotations

import numpy as np
import pytest

from tinymlaas.compilers.native import compile_tflite
from tinymlaas.compilers.native.qemu import measure_on_qemu
from tinymlaas.squeeze.convert import Quantization, convert

VECTORS = 8


@pytest.fixture(scope="module")
def separable() -> tuple[bytes, list[bytes], list[bytes]]:
    """int8 model with a strided 3×3 conv, a same-size depthwise 3×3, a 1×1 conv, pooling and a head;
    its input vectors and TFLM's outputs for them."""
    import keras
    from tflite_micro import runtime as tflm

    keras.utils.set_random_seed(11)
    model = keras.Sequential(
        [
            keras.Input((20, 18, 3)),
            keras.layers.Conv2D(12, 3, strides=2, padding="same", activation="relu"),
            keras.layers.DepthwiseConv2D(3, padding="same", activation="relu", depth_multiplier=1),
            keras.layers.Conv2D(20, 1, activation="relu6"),
            keras.layers.DepthwiseConv2D(3, strides=2, padding="valid", activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(5, activation="softmax"),
        ]
    )
    representative = np.random.default_rng(3).normal(size=(64, 20, 18, 3)).astype(np.float32)
    tflite = convert(model, Quantization.INT8, representative)
    interpreter = tflm.Interpreter.from_bytes(tflite, arena_size=256 * 1024)
    rng = np.random.default_rng(5)
    vectors, expected = [], []
    for _ in range(VECTORS):
        x = rng.integers(-128, 128, size=(1, 20, 18, 3), dtype=np.int8)
        interpreter.set_input(x, 0)
        interpreter.invoke()
        vectors.append(x.tobytes())
        expected.append(np.asarray(interpreter.get_output(0), dtype=np.int8).tobytes())
    return tflite, vectors, expected


@pytest.mark.parametrize("core", ["cortex-m4f", "cortex-m0plus", "cortex-m7"])
def test_separable_network_is_bit_exact_on_every_core(separable, core) -> None:
    tflite, vectors, expected = separable
    measured = measure_on_qemu(compile_tflite(tflite), vectors, core=core)
    assert list(measured.outputs) == expected
    assert measured.instructions > 0 and len(measured.layer_instructions) >= 6

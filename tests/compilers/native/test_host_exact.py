"""Each supported op alone in a tiny int8 model: TFLM and the host-built C agree on every byte."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
pytest.importorskip("tflite_micro")

from tflite_micro import runtime as tflm  # noqa: E402

from tinymlaas.compilers.native import HostModule, compile_tflite  # noqa: E402

VECTORS = 64


def int8_tflite(
    build: Callable[[], object], input_shape: tuple[int, ...], seed: int = 0, per_tensor_dense: bool = False
) -> bytes:
    """Full-integer int8 conversion (int8 I/O) of a Keras model, calibrated on random normal data."""
    tf.keras.utils.set_random_seed(seed)
    model = build()
    rng = np.random.default_rng(seed)

    def representative():
        for _ in range(16):
            yield [rng.normal(size=(1, *input_shape)).astype(np.float32)]

    if isinstance(model, tf.keras.Model):
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
    else:
        function = model.__call__.get_concrete_function()
        converter = tf.lite.TFLiteConverter.from_concrete_functions([function], model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter._experimental_disable_per_channel_quantization_for_dense_layers = per_tensor_dense
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return converter.convert()


def assert_bit_exact(tflite: bytes, vectors: int = VECTORS, seed: int = 1) -> HostModule:
    """Run random int8 inputs through TFLM and the compiled C; every output byte must match."""
    module = HostModule(compile_tflite(tflite))
    interpreter = tflm.Interpreter.from_bytes(tflite, arena_size=1 << 20)
    shape = interpreter.get_input_details(0)["shape"]
    rng = np.random.default_rng(seed)
    for i in range(vectors):
        x = rng.integers(-128, 128, size=tuple(shape), dtype=np.int8)
        interpreter.set_input(x, 0)
        interpreter.invoke()
        expected = np.array(interpreter.get_output(0)).reshape(-1)
        got = module.run(x)
        assert np.array_equal(expected, got), f"vector {i}: {np.flatnonzero(expected != got)[:10]} differ"
    return module


class _Dilated(tf.Module):
    """A dilated convolution as one CONV_2D (Keras' own layer lowers to SPACE_TO_BATCH_ND)."""

    def __init__(self) -> None:
        super().__init__()
        self.w = tf.Variable(tf.random.normal((3, 3, 2, 3), stddev=0.5))
        self.b = tf.Variable(tf.random.normal((3,), stddev=0.1))

    @tf.function(input_signature=[tf.TensorSpec((1, 10, 10, 2), tf.float32)])
    def __call__(self, x):
        return tf.nn.relu(tf.nn.conv2d(x, self.w, strides=1, padding="VALID", dilations=2) + self.b)


def _seq(input_shape: tuple[int, ...], *layers: object) -> Callable[[], object]:
    return lambda: tf.keras.Sequential([tf.keras.Input(input_shape, batch_size=1), *layers])


L = tf.keras.layers
B = {"bias_initializer": tf.keras.initializers.RandomNormal(stddev=0.5)}  # zero biases are dropped

CASES: dict[str, tuple[tuple[int, ...], Callable[[], object]]] = {
    "conv_same_s1_relu": ((8, 8, 3), _seq((8, 8, 3), L.Conv2D(4, 3, padding="same", activation="relu", **B))),
    "conv_same_s2_odd": ((9, 7, 2), _seq((9, 7, 2), L.Conv2D(5, 3, strides=2, padding="same", **B))),
    "conv_valid_s2_relu6": (
        (9, 9, 3),
        _seq((9, 9, 3), L.Conv2D(4, (3, 2), strides=(2, 1), activation="relu6", **B)),
    ),
    "conv_dilated": ((10, 10, 2), lambda: _Dilated()),
    "conv_1x1_no_bias": ((6, 6, 4), _seq((6, 6, 4), L.Conv2D(6, 1, use_bias=False))),
    "depthwise_same_s2": ((9, 9, 3), _seq((9, 9, 3), L.DepthwiseConv2D(3, strides=2, padding="same", **B))),
    "depthwise_dm2_relu": (
        (7, 7, 2),
        _seq((7, 7, 2), L.DepthwiseConv2D(3, depth_multiplier=2, activation="relu", **B)),
    ),
    "fc_bias_relu": ((13,), _seq((13,), L.Dense(7, activation="relu", **B))),
    "fc_no_bias": ((10,), _seq((10,), L.Dense(5, use_bias=False))),
    "fc_keep_num_dims": ((4, 6), _seq((4, 6), L.Dense(3, **B))),
    "max_pool_valid": ((8, 8, 3), _seq((8, 8, 3), L.MaxPooling2D(2))),
    "max_pool_same_odd": ((7, 9, 2), _seq((7, 9, 2), L.MaxPooling2D(3, strides=2, padding="same"))),
    "avg_pool_valid": ((8, 8, 3), _seq((8, 8, 3), L.AveragePooling2D(2))),
    "avg_pool_same_odd": ((7, 9, 2), _seq((7, 9, 2), L.AveragePooling2D(3, strides=2, padding="same"))),
    "mean_global": ((6, 5, 4), _seq((6, 5, 4), L.Conv2D(4, 1, **B), L.GlobalAveragePooling2D())),
    "mean_keepdims": ((6, 5, 4), _seq((6, 5, 4), L.GlobalAveragePooling2D(keepdims=True))),
    "softmax": ((12,), _seq((12,), L.Dense(6, **B), L.Softmax())),
    "reshape_flatten": ((4, 4, 2), _seq((4, 4, 2), L.Conv2D(2, 3, **B), L.Flatten(), L.Dense(3, **B))),
}


@pytest.fixture(scope="module")
def models() -> dict[str, bytes]:
    return {name: int8_tflite(build, shape) for name, (shape, build) in CASES.items()}


@pytest.mark.parametrize("case", sorted(CASES))
def test_single_op_bit_exact(models: dict[str, bytes], case: str) -> None:
    assert_bit_exact(models[case])


def test_fully_connected_per_tensor_weights() -> None:
    from tinymlaas.compilers.native.graph import read_graph

    tflite = int8_tflite(
        _seq((11,), L.Dense(6, activation="relu", **B), L.Dense(4, **B)), (11,), per_tensor_dense=True
    )
    graph = read_graph(tflite)
    weights = [graph.tensors[n.inputs[1]] for n in graph.nodes if n.op == "FULLY_CONNECTED"]
    assert weights and all(w.quant is not None and len(w.quant.scale) == 1 for w in weights)
    assert_bit_exact(tflite)

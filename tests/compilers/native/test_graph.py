"""Reading models into the IR, and refusing the ones the native compiler cannot compile."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from tinymlaas.compilers.native import compile_tflite  # noqa: E402
from tinymlaas.compilers.native.graph import read_graph  # noqa: E402
from tinymlaas.errors import UnsupportedModel  # noqa: E402

L = tf.keras.layers


def _model(*layers: object, shape: tuple[int, ...] = (6,), batch: int = 1) -> object:
    tf.keras.utils.set_random_seed(0)
    return tf.keras.Sequential([tf.keras.Input(shape, batch_size=batch), *layers])


def _int8(model: object, shape: tuple[int, ...] = (6,)) -> bytes:
    rng = np.random.default_rng(0)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: (
        [rng.normal(size=(1, *shape)).astype(np.float32)] for _ in range(8)
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return converter.convert()


@pytest.fixture(scope="module")
def dense_int8() -> bytes:
    return _int8(_model(L.Dense(4, activation="relu", bias_initializer="ones"), L.Dense(3)))


def test_reads_ops_options_and_constants(dense_int8: bytes) -> None:
    graph = read_graph(dense_int8)
    assert [node.op for node in graph.nodes] == ["FULLY_CONNECTED", "FULLY_CONNECTED"]
    first = graph.nodes[0]
    assert first.options["fused_activation_function"] == "RELU"
    assert first.options["keep_num_dims"] is False
    weights = graph.tensors[first.inputs[1]]
    assert weights.dtype == "int8" and weights.shape == (4, 6)
    assert weights.data is not None and len(weights.data) == 24
    assert weights.quant is not None and set(weights.quant.zero_point) == {0}
    bias = graph.tensors[first.inputs[2]]
    assert bias.dtype == "int32" and bias.data is not None and len(bias.data) == 16
    io = graph.tensors[graph.inputs[0]]
    assert io.data is None and io.dtype == "int8" and io.quant is not None


def test_refuses_float_model_naming_op_and_node() -> None:
    converter = tf.lite.TFLiteConverter.from_keras_model(_model(L.Dense(3)))
    data = converter.convert()
    with pytest.raises(UnsupportedModel, match=r"node 0 \(FULLY_CONNECTED\).*float32"):
        compile_tflite(data)


def test_refuses_unsupported_op_naming_op_and_node() -> None:
    data = _int8(_model(L.Dense(4), L.Activation("tanh")))
    with pytest.raises(UnsupportedModel, match=r"node 1 \(TANH\): operator TANH is not supported"):
        compile_tflite(data)


def test_refuses_batch_above_one() -> None:
    data = _int8(_model(L.Dense(3), batch=2))
    with pytest.raises(UnsupportedModel, match="batch 2"):
        compile_tflite(data)


def test_refuses_garbage() -> None:
    with pytest.raises(UnsupportedModel):
        read_graph(b"not a flatbuffer at all")

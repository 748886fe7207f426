import numpy as np
import pytest

from tinymlaas.errors import UnsupportedModel
from tinymlaas.squeeze.inspect import inspect_tflite


def test_inspects_ops_io_and_costs(tiny_models):
    info = inspect_tflite(tiny_models.int8)
    assert info.quantization == "int8"
    assert {"CONV_2D", "FULLY_CONNECTED", "SOFTMAX"} <= set(info.ops)
    assert info.inputs[0].shape == (1, 32, 3) and info.inputs[0].dtype == "int8"
    assert info.inputs[0].scale is not None and info.outputs[0].dtype == "int8"
    conv = next(layer for layer in info.layers if layer.op == "CONV_2D")
    # Conv1D(8, kernel 3) on 3 channels over 30 output steps: 30 * 8 * 3 * 3 MACs, 8*3*3 + 8 params.
    assert conv.macs == 30 * 8 * 3 * 3
    assert conv.params == 8 * 3 * 3 + 8
    fc = next(layer for layer in info.layers if layer.op == "FULLY_CONNECTED")
    assert fc.macs == 8 * 4 and fc.params == 8 * 4 + 4


def test_quantization_levels_are_recognised(tiny_models):
    assert inspect_tflite(tiny_models.float32).quantization == "float32"
    assert inspect_tflite(tiny_models.float16).quantization == "float16"
    assert inspect_tflite(tiny_models.float32).inputs[0].scale is None


@pytest.mark.parametrize("cut", [8, 100, 0.5, 0.98])
def test_truncated_model_is_refused_by_name(tiny_models, cut):
    data = tiny_models.int8
    size = int(len(data) * cut) if isinstance(cut, float) else cut
    with pytest.raises(UnsupportedModel, match=r"upload\.tflite: the TFLite flatbuffer is truncated"):
        inspect_tflite(data[:size], name="upload.tflite")


def test_non_tflite_bytes_are_refused():
    with pytest.raises(UnsupportedModel, match="not a TFLite model"):
        inspect_tflite(b"PK\x03\x04 this is a zip, not a model", name="x.tflite")


def test_a_full_integer_model_without_weights_is_int8() -> None:
    """A split part made only of pooling and softmax carries no weights and is int8 all the same."""
    import keras

    from tinymlaas.squeeze.convert import Quantization, convert

    model = keras.Sequential(
        [
            keras.Input((8, 8, 2)),
            keras.layers.AveragePooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Softmax(),
        ]
    )
    representative = np.random.default_rng(0).normal(size=(16, 8, 8, 2)).astype(np.float32)
    info = inspect_tflite(convert(model, Quantization.INT8, representative))
    assert info.params == 0 and info.quantization == "int8"

import numpy as np

from tinymlaas.data.scaling import ScalingMethod, fit_scaling
from tinymlaas.data.types import Task
from tinymlaas.squeeze.convert import DEFAULT_QUANTIZATIONS, Quantization, convert
from tinymlaas.squeeze.inspect import inspect_tflite
from tinymlaas.squeeze.runtimes import TflmRunner
from tinymlaas.squeeze.variants import Evaluation, assess


def test_int8_variant_is_scored_in_both_runtimes(tiny_models):
    keras_acc = float(
        np.mean(
            np.argmax(tiny_models.keras_model.predict(tiny_models.x_test, verbose=0), 1) == tiny_models.y_test
        )
    )
    evaluation = Evaluation(Task.CLASSIFICATION, tiny_models.x_test, tiny_models.y_test)
    variant = assess(tiny_models.int8, evaluation, max_arena_bytes=1 << 20)
    assert set(variant.metrics) == {"tflm", "litert"}
    assert variant.metrics["tflm"].name == "accuracy"
    assert abs(variant.metrics["tflm"].value - keras_acc) <= 0.03
    assert abs(variant.metrics["tflm"].value - variant.metrics["litert"].value) <= 0.02
    assert variant.runtime_errors == {}


def test_selftest_vectors_replay_in_a_fresh_tflm_interpreter(tiny_models):
    evaluation = Evaluation(Task.CLASSIFICATION, tiny_models.x_test, tiny_models.y_test)
    variant = assess(tiny_models.int8, evaluation, max_arena_bytes=1 << 20)
    selftest = variant.selftests["tflm"]
    assert selftest.tolerance == 3.0 and len(selftest.inputs) == 4
    info = inspect_tflite(tiny_models.int8)
    runner = TflmRunner(
        tiny_models.int8, info.inputs[0], info.outputs[0], arena_bytes=variant.arena.arena_bytes
    )
    for raw, expected in zip(selftest.inputs, selftest.expected, strict=True):
        out = runner.run_raw(np.array(raw, dtype=np.int8).reshape(info.inputs[0].shape))
        assert np.max(np.abs(out.ravel().astype(int) - np.array(expected))) <= selftest.tolerance


def test_float16_variant_runs_in_litert_only(tiny_models):
    evaluation = Evaluation(Task.CLASSIFICATION, tiny_models.x_test, tiny_models.y_test)
    variant = assess(tiny_models.float16, evaluation, max_arena_bytes=1 << 20)
    assert "tflm" in variant.runtime_errors and "DEQUANTIZE" in variant.runtime_errors["tflm"]
    assert set(variant.metrics) == {"litert"}


def test_int16_activations_are_an_option_tflm_and_litert_both_run(tiny_models):
    tflite = convert(tiny_models.keras_model, Quantization.INT16X8, tiny_models.x_train)
    evaluation = Evaluation(Task.CLASSIFICATION, tiny_models.x_test, tiny_models.y_test)
    variant = assess(tflite, evaluation, max_arena_bytes=1 << 20, method="ptq")
    assert variant.quantization == "int16x8" and variant.method == "ptq"
    assert variant.info.inputs[0].dtype == "int16" and variant.runtime_errors == {}
    int8 = assess(tiny_models.int8, evaluation, max_arena_bytes=1 << 20)
    assert variant.metrics["tflm"].value >= int8.metrics["tflm"].value - 0.02
    assert variant.arena.arena_bytes > int8.arena.arena_bytes
    assert Quantization.INT16X8 not in DEFAULT_QUANTIZATIONS


def test_the_runners_take_sensor_units_and_scale_them_first(tiny_models):
    """A runner with the model's scaling on raw windows computes exactly what one without it computes
    on the scaled windows: scaling happens before input quantization, as in the firmware."""
    raw = tiny_models.x_test * 40.0 + 700.0
    scaling = fit_scaling(ScalingMethod.STANDARDIZE, tiny_models.x_train * 40.0 + 700.0)
    info = inspect_tflite(tiny_models.int8)
    scaled = TflmRunner(
        tiny_models.int8, info.inputs[0], info.outputs[0], arena_bytes=1 << 16, scaling=scaling
    )
    plain = TflmRunner(tiny_models.int8, info.inputs[0], info.outputs[0], arena_bytes=1 << 16)
    assert np.array_equal(scaled.run_many(raw), plain.run_many(scaling.apply(raw)))


def test_calibration_samples_are_drawn_from_the_whole_train_split():
    """A file sorted by class must not calibrate on its first class only: converting the same model
    with a class-sorted and a shuffled train split gives the same int8 input range."""
    import keras

    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3, activation="softmax")])
    rng = np.random.default_rng(0)
    sorted_by_class = np.concatenate([rng.normal(c * 5.0, 1.0, (300, 2)) for c in range(3)]).astype("float32")
    first = inspect_tflite(convert(model, Quantization.INT8, sorted_by_class)).inputs[0]
    assert first.scale * 255 > 12.0  # the range spans all three classes (means 0, 5, 10), not one


def test_int8_weights_are_quantized_per_output_channel(tiny_models):
    """Each filter of the convolution and each unit of the dense layer gets its own weight scale."""
    import tflite

    model = tflite.Model.GetRootAsModel(tiny_models.int8, 0)
    graph = model.Subgraphs(0)
    per_channel = []
    for i in range(graph.TensorsLength()):
        tensor = graph.Tensors(i)
        if tensor.Type() == tflite.TensorType.INT8 and model.Buffers(tensor.Buffer()).DataLength():
            per_channel.append(tensor.Quantization().ScaleLength())
    assert sorted(per_channel) == [4, 8]  # Dense(4) and Conv1D(8) kernels

import numpy as np

from tinymlaas.data.types import Task
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

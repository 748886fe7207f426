from tinymlaas.metrics import Metric, wilson_interval
from tinymlaas.squeeze.quality import judge


def _accuracy(hits: int, n: int) -> dict:
    low, high = wilson_interval(hits, n)
    return Metric("accuracy", hits / n, n, low, high).as_dict()


def test_a_small_drop_is_not_degraded():
    quality = judge(_accuracy(99, 100), {"tflm": _accuracy(98, 100)})
    assert quality is not None and not quality.degraded and quality.drop == 1.0 and quality.runtime == "tflm"


def test_a_drop_beyond_the_threshold_is_degraded_with_the_figures():
    quality = judge(_accuracy(27, 27), {"tflm": _accuracy(18, 27), "litert": _accuracy(27, 27)})
    assert quality.degraded
    assert "accuracy in tflm is 66.7 % against the float model's 100.0 %: 33.3 points lost" in quality.reason
    assert "on 27 samples" in quality.reason


def test_the_threshold_is_a_setting():
    assert not judge(_accuracy(100, 100), {"tflm": _accuracy(97, 100)}, threshold_points=5).degraded
    assert judge(_accuracy(100, 100), {"tflm": _accuracy(97, 100)}, threshold_points=2).degraded


def test_litert_is_judged_when_tflm_cannot_run_the_variant():
    assert judge(_accuracy(9, 10), {"litert": _accuracy(9, 10)}).runtime == "litert"


def test_regression_must_stay_inside_the_float_models_interval():
    reference = Metric("mse", 0.10, 50, 0.08, 0.13).as_dict()
    assert not judge(reference, {"tflm": Metric("mse", 0.12, 50, 0.1, 0.15).as_dict()}).degraded
    worse = judge(reference, {"tflm": Metric("mse", 0.20, 50, 0.16, 0.25).as_dict()})
    assert worse.degraded and "outside 0.13" in worse.reason


def test_nothing_to_compare_gives_no_verdict():
    assert judge(None, {"tflm": _accuracy(1, 2)}) is None
    assert judge(_accuracy(1, 2), {}) is None

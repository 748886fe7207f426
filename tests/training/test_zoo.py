import pytest

from tinymlaas.data.types import DatasetSpec, SampleKind, Task
from tinymlaas.errors import InvalidInput
from tinymlaas.training import zoo


def _spec(kind, shape, task=Task.CLASSIFICATION):
    labels = ("a", "b", "c") if task is Task.CLASSIFICATION else ()
    return DatasetSpec(task, kind, shape, labels)


@pytest.mark.parametrize(
    ("kind", "shape", "arch"),
    [
        (SampleKind.VECTOR, (13,), "dense"),
        (SampleKind.TIMESERIES, (64, 3), "cnn1d"),
        (SampleKind.AUDIO, (8000, 1), "cnn1d"),
        (SampleKind.IMAGE, (8, 8, 1), "cnn2d"),
        (SampleKind.IMAGE, (32, 32, 3), "cnn2d"),
        (SampleKind.IMAGE, (96, 96, 1), "mobilenet"),
    ],
)
def test_choose_by_input(kind, shape, arch):
    assert zoo.choose(_spec(kind, shape)) == arch


@pytest.mark.parametrize(
    ("arch", "shape"), [("dense", (5,)), ("cnn1d", (64, 3)), ("cnn2d", (8, 8, 1)), ("mobilenet", (48, 48, 1))]
)
def test_every_family_builds_with_the_right_io(arch, shape):
    spec = _spec(SampleKind.IMAGE if len(shape) == 3 else SampleKind.TIMESERIES, shape)
    model = zoo.build(arch, spec)
    assert tuple(model.input_shape[1:]) == shape
    assert model.output_shape[-1] == 3


@pytest.mark.parametrize(
    ("arch", "shape"), [("dense", (5,)), ("cnn1d", (64, 3)), ("cnn2d", (8, 8, 1)), ("mobilenet", (48, 48, 1))]
)
def test_every_family_builds_the_same_weights_in_tf_keras(arch, shape):
    """Quantization-aware training copies trained weights into a tf_keras twin, layer for layer."""
    import tf_keras

    spec = _spec(SampleKind.IMAGE if len(shape) == 3 else SampleKind.TIMESERIES, shape)
    twin = zoo.build(arch, spec, keras_module=tf_keras)
    assert [w.shape for w in twin.get_weights()] == [w.shape for w in zoo.build(arch, spec).get_weights()]


def test_no_family_normalizes_inside_the_network():
    """Scaling happens before input quantization (data.scaling), never as a layer after it."""
    for arch, shape in (("dense", (5,)), ("cnn1d", (64, 3))):
        model = zoo.build(arch, _spec(SampleKind.TIMESERIES, shape))
        assert not [layer for layer in model.layers if "normaliz" in type(layer).__name__.lower()]


def test_width_multiplier_shrinks_mobilenet():
    spec = _spec(SampleKind.IMAGE, (48, 48, 1))
    assert zoo.build("mobilenet", spec, 0.5).count_params() < zoo.build("mobilenet", spec, 1.0).count_params()


def test_regression_head_has_one_linear_output():
    model = zoo.build("dense", _spec(SampleKind.VECTOR, (1,), Task.REGRESSION))
    assert model.output_shape == (None, 1)


def test_rank_mismatch_and_unknown_arch_are_clear_errors():
    with pytest.raises(InvalidInput, match="needs inputs of rank 2"):
        zoo.build("cnn1d", _spec(SampleKind.VECTOR, (5,)))
    with pytest.raises(InvalidInput, match="unknown architecture 'resnet'"):
        zoo.build("resnet", _spec(SampleKind.VECTOR, (5,)))

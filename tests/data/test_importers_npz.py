import zipfile
from pathlib import Path

import numpy as np
import pytest

from tinymlaas.data.importers import import_npz, import_path
from tinymlaas.data.types import DatasetSpec, SampleKind, Task
from tinymlaas.errors import InvalidInput


def save(tmp_path: Path, name: str = "data.npz", **arrays: np.ndarray) -> Path:
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(
    ("shape", "kind"),
    [((4, 3), SampleKind.VECTOR), ((4, 8, 2), SampleKind.TIMESERIES), ((4, 5, 5, 1), SampleKind.IMAGE)],
)
def test_kind_follows_the_rank_of_one_sample(tmp_path, shape, kind):
    x = np.arange(np.prod(shape), dtype=np.float64).reshape(shape)
    data = import_npz(save(tmp_path, x=x, y=np.array(["a", "b", "a", "b"])))
    assert data.spec == DatasetSpec(Task.CLASSIFICATION, kind, shape[1:], ("a", "b"))
    assert [s.source for s in data.samples] == ["data.npz#0", "data.npz#1", "data.npz#2", "data.npz#3"]
    assert data.samples[2].x.dtype == np.float32
    np.testing.assert_array_equal(data.samples[2].x, x[2])


def test_class_indices_take_their_names_from_labels(tmp_path):
    path = save(tmp_path, x=np.zeros((3, 2)), y=np.array([2, 0, 2]), labels=np.array(["no", "maybe", "yes"]))
    data = import_npz(path)
    assert data.spec.labels == ("no", "maybe", "yes")  # index order, not sorted
    assert [s.label for s in data.samples] == ["yes", "no", "yes"]


def test_class_indices_without_labels_become_their_own_names(tmp_path):
    data = import_npz(save(tmp_path, x=np.zeros((3, 2)), y=np.array([10, 2, 2], dtype=np.uint8)))
    assert data.spec.labels == ("2", "10")
    assert [s.label for s in data.samples] == ["10", "2", "2"]


def test_byte_string_labels(tmp_path):
    data = import_npz(save(tmp_path, x=np.zeros((2, 1)), y=np.array([b"on", b"off"])))
    assert data.spec.labels == ("off", "on")


def test_string_y_must_be_among_labels(tmp_path):
    path = save(tmp_path, x=np.zeros((2, 1)), y=np.array(["on", "dim"]), labels=np.array(["off", "on"]))
    with pytest.raises(InvalidInput, match=r"data\.npz: y\[1\] = 'dim' is not one of 'labels'"):
        import_npz(path)


def test_float_y_is_regression_by_default(tmp_path):
    data = import_npz(save(tmp_path, x=np.zeros((2, 1)), y=np.array([0.5, -1.5])))
    assert data.spec.task is Task.REGRESSION
    assert [s.target for s in data.samples] == [0.5, -1.5]


def test_integer_y_as_regression_targets(tmp_path):
    data = import_npz(save(tmp_path, x=np.zeros((2, 1)), y=np.array([3, 4])), task=Task.REGRESSION)
    assert [s.target for s in data.samples] == [3.0, 4.0]


def test_uint8_images_are_scaled_to_unit_range(tmp_path):
    x = np.array([[[[0], [255]], [[51], [102]]]], dtype=np.uint8)
    (sample,) = import_npz(save(tmp_path, x=x, y=np.array([1]))).samples
    np.testing.assert_allclose(sample.x[..., 0], [[0, 1], [0.2, 0.4]], atol=1e-6)


def test_samples_are_read_only(tmp_path):
    (sample,) = import_npz(save(tmp_path, x=np.zeros((1, 2)), y=np.array([1]))).samples
    with pytest.raises(ValueError, match="read-only"):
        sample.x[0] = 1.0


def test_rank_two_samples_can_be_audio_when_the_dataset_says_so(tmp_path):
    spec = DatasetSpec(Task.CLASSIFICATION, SampleKind.AUDIO, (8, 1), ("yes",))
    data = import_npz(save(tmp_path, x=np.zeros((2, 8, 1)), y=np.array(["yes", "yes"])), spec=spec)
    assert data.spec is spec


def test_import_path_infers_npz_from_the_suffix(tmp_path):
    assert len(import_path(save(tmp_path, x=np.zeros((2, 1)), y=np.array([0, 1]))).samples) == 2


def test_garbage_is_not_an_archive(tmp_path):
    path = tmp_path / "data.npz"
    path.write_bytes(b"hello, world" * 10)
    with pytest.raises(InvalidInput, match=r"^data\.npz: not an \.npz archive \(no zip signature\)$"):
        import_npz(path)


def test_a_single_npy_array_is_refused(tmp_path):
    path = tmp_path / "data.npz"
    with path.open("wb") as handle:
        np.save(handle, np.zeros(3))
    with pytest.raises(InvalidInput, match=r"data\.npz: a single \.npy array"):
        import_npz(path)


def test_truncated_archive_is_corrupt(tmp_path):
    path = save(tmp_path, x=np.zeros((50, 20)), y=np.zeros(50))
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(InvalidInput, match=r"data\.npz: corrupt \.npz archive"):
        import_npz(path)


def test_corrupt_member_is_named(tmp_path):
    path = tmp_path / "data.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x.npy", b"\x93NUMPY garbage")
        archive.writestr("y.npy", b"\x93NUMPY garbage")
    with pytest.raises(InvalidInput, match=r"data\.npz: array 'x' is corrupt"):
        import_npz(path)


def test_missing_arrays_are_listed(tmp_path):
    path = save(tmp_path, x_train=np.zeros((2, 1)), y=np.zeros(2))
    with pytest.raises(InvalidInput) as excinfo:
        import_npz(path)
    assert "data.npz: missing array 'x'" in str(excinfo.value)
    assert "['x_train', 'y']" in str(excinfo.value)


def test_length_mismatch(tmp_path):
    with pytest.raises(InvalidInput, match=r"^data\.npz: x holds 3 samples but y holds 2$"):
        import_npz(save(tmp_path, x=np.zeros((3, 1)), y=np.zeros(2)))


def test_index_out_of_range_of_labels(tmp_path):
    path = save(tmp_path, x=np.zeros((3, 1)), y=np.array([0, 2, 1]), labels=np.array(["a", "b"]))
    with pytest.raises(InvalidInput, match=r"data\.npz: y\[1\] = 2 is not a class index; 'labels' names 2"):
        import_npz(path)


def test_negative_index_is_out_of_range(tmp_path):
    path = save(tmp_path, x=np.zeros((1, 1)), y=np.array([-1]), labels=np.array(["a"]))
    with pytest.raises(InvalidInput, match=r"y\[0\] = -1 is not a class index"):
        import_npz(path)


def test_object_arrays_are_refused_and_never_unpickled(tmp_path):
    marker = tmp_path / "unpickled"

    class Trap:
        def __reduce__(self):
            return (Path.touch, (marker,))

    path = save(tmp_path, x=np.zeros((1, 1)), y=np.array([Trap()], dtype=object))
    with pytest.raises(
        InvalidInput, match=r"data\.npz: array 'y' holds Python objects, which are never unpickled"
    ):
        import_npz(path)
    assert not marker.exists()


def test_float_y_cannot_be_classes(tmp_path):
    path = save(tmp_path, x=np.zeros((1, 1)), y=np.array([0.5]))
    with pytest.raises(InvalidInput, match="classification needs class indices"):
        import_npz(path, task=Task.CLASSIFICATION)


def test_labels_with_regression(tmp_path):
    path = save(tmp_path, x=np.zeros((1, 1)), y=np.array([0.5]), labels=np.array(["a"]))
    with pytest.raises(InvalidInput, match="a 'labels' array, but the task is regression"):
        import_npz(path)


def test_non_finite_target(tmp_path):
    with pytest.raises(InvalidInput, match=r"data\.npz: y\[1\] = nan is not a finite number"):
        import_npz(save(tmp_path, x=np.zeros((2, 1)), y=np.array([0.0, np.nan])))


def test_non_numeric_x(tmp_path):
    with pytest.raises(InvalidInput, match="x has dtype <U1; samples must be numbers"):
        import_npz(save(tmp_path, x=np.array([["a"]]), y=np.array([1])))


def test_unsupported_rank(tmp_path):
    with pytest.raises(InvalidInput, match=r"x has shape \(1, 1, 1, 1, 1\)"):
        import_npz(save(tmp_path, x=np.zeros((1, 1, 1, 1, 1)), y=np.array([1])))


def test_y_must_be_one_dimensional(tmp_path):
    with pytest.raises(InvalidInput, match=r"y has shape \(2, 1\)"):
        import_npz(save(tmp_path, x=np.zeros((2, 1)), y=np.zeros((2, 1))))


def test_empty_archive_arrays(tmp_path):
    with pytest.raises(InvalidInput, match="holds no samples"):
        import_npz(save(tmp_path, x=np.zeros((0, 1)), y=np.zeros(0)))


def test_duplicate_labels(tmp_path):
    path = save(tmp_path, x=np.zeros((1, 1)), y=np.array([0]), labels=np.array(["a", "a"]))
    with pytest.raises(InvalidInput, match="'labels' must hold distinct, non-empty class names"):
        import_npz(path)


def test_shape_must_match_the_spec(tmp_path):
    spec = DatasetSpec(Task.CLASSIFICATION, SampleKind.VECTOR, (3,), ("a",))
    with pytest.raises(
        InvalidInput, match=r"data\.npz: samples have shape \(2,\); the dataset's input shape is \(3,\)"
    ):
        import_npz(save(tmp_path, x=np.zeros((1, 2)), y=np.array(["a"])), spec=spec)


def test_kind_must_fit_the_spec(tmp_path):
    spec = DatasetSpec(Task.CLASSIFICATION, SampleKind.IMAGE, (2, 2, 1), ("a",))
    with pytest.raises(InvalidInput, match=r"samples of shape \(2,\) cannot be image samples"):
        import_npz(save(tmp_path, x=np.zeros((1, 2)), y=np.array(["a"])), spec=spec)


def test_unknown_label_for_the_spec(tmp_path):
    spec = DatasetSpec(Task.CLASSIFICATION, SampleKind.VECTOR, (2,), ("a",))
    with pytest.raises(InvalidInput, match=r"data\.npz#0: unknown label 'b'"):
        import_npz(save(tmp_path, x=np.zeros((1, 2)), y=np.array(["b"])), spec=spec)


def test_task_conflicting_with_the_spec(tmp_path):
    spec = DatasetSpec(Task.CLASSIFICATION, SampleKind.VECTOR, (2,), ("a",))
    with pytest.raises(InvalidInput, match="importing as regression into a classification dataset"):
        import_npz(save(tmp_path, x=np.zeros((1, 2)), y=np.array(["a"])), spec=spec, task=Task.REGRESSION)

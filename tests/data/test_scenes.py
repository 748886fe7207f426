import numpy as np
import pytest

from tinymlaas.data.generators import GENERATORS, scenes
from tinymlaas.data.types import SampleKind, Task


@pytest.fixture(scope="module")
def frames() -> tuple[np.ndarray, np.ndarray]:
    data = scenes.generate(150, seed=3)
    return np.stack([s.x for s in data.samples]), np.array([s.label for s in data.samples])


def test_frames_are_96x96_grayscale_in_the_unit_range(frames):
    x, _ = frames
    assert scenes.SPEC.task is Task.CLASSIFICATION and scenes.SPEC.kind is SampleKind.IMAGE
    assert scenes.SPEC.input_shape == (96, 96, 1)
    assert scenes.SPEC.labels == ("background", "object", "face")
    assert x.shape == (150, 96, 96, 1) and x.dtype == np.float32
    assert x.min() >= 0.0 and x.max() <= 1.0
    # Scenes vary in exposure and texture: no constant frames, a spread of mean brightness.
    assert x.std(axis=(1, 2, 3)).min() > 0.01
    assert np.ptp(x.mean(axis=(1, 2, 3))) > 0.3


def test_classes_are_balanced(frames):
    _, labels = frames
    assert {label: int((labels == label).sum()) for label in scenes.LABELS} == {
        "background": 50,
        "object": 50,
        "face": 50,
    }
    uneven = [s.label for s in scenes.generate(31, seed=0).samples]
    counts = [uneven.count(label) for label in scenes.LABELS]
    assert max(counts) - min(counts) <= 1


def test_same_seed_same_frames_other_seed_other_frames():
    first, again, other = (scenes.generate(12, seed=s) for s in (5, 5, 6))
    np.testing.assert_array_equal(
        np.stack([s.x for s in first.samples]), np.stack([s.x for s in again.samples])
    )
    assert [(s.label, s.source) for s in first.samples] == [(s.label, s.source) for s in again.samples]
    assert not np.array_equal(np.stack([s.x for s in first.samples]), np.stack([s.x for s in other.samples]))
    assert [s.source for s in first.samples] == [f"generator:scenes#{i}" for i in range(12)]


def test_registered_with_a_default_size():
    assert GENERATORS["scenes"] is scenes.generate
    assert scenes.DEFAULT_N == 1200


def _changed(label: str, key: int) -> np.ndarray:
    """Pixels where ``label``'s frame differs visibly from the same scene left empty."""
    return np.abs(scenes.render(label, key) - scenes.render("background", key))[..., 0] > 0.1


@pytest.mark.parametrize("key", range(20))
def test_a_face_or_object_is_a_visible_patch_on_the_same_background(key):
    assert not _changed("background", key).any()
    face = _changed("face", key)
    # A 20-60 px oval: at least a 20×14 px ellipse's worth of pixels, at most a 60 px square's.
    assert 150 <= face.sum() <= 60 * 60
    rows, cols = np.nonzero(face)
    assert 15 <= np.ptp(rows) + 1 <= 65 and 10 <= np.ptp(cols) + 1 <= 65
    shape = _changed("object", key)
    assert shape.sum() >= 30  # the thinnest outline of the smallest object still shows
    assert not np.array_equal(face, shape)


def test_a_face_has_dark_or_light_features_inside_its_oval():
    """What tells a face from a filled ellipse: pixels inside the oval that differ from its tone."""
    from scipy.ndimage import binary_fill_holes

    for key in range(20):
        face = scenes.render("face", key)[..., 0]
        # Features the tone of the background are holes in the changed patch; the oval is it filled.
        inside = binary_fill_holes(_changed("face", key))
        values = face[inside]
        tone = np.median(values)
        features = np.abs(values - tone) > 0.2
        assert 0.02 < features.mean() < 0.4, key

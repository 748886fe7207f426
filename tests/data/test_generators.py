import math

import numpy as np
import pytest

from tinymlaas.data.generators import GENERATORS, digits, gestures, sine
from tinymlaas.data.generators import generate as generate_named
from tinymlaas.data.types import ImportedData, SampleKind, Task
from tinymlaas.errors import InvalidInput, NotFound


def stacked(data: ImportedData) -> np.ndarray:
    return np.stack([s.x for s in data.samples])


def test_registry_names_every_generator():
    assert set(GENERATORS) == {"sine", "gestures", "digits", "scenes"}


def test_unknown_generator_lists_the_names():
    with pytest.raises(
        NotFound, match="no generator 'mnist'; the generators are digits, gestures, scenes, sine"
    ):
        generate_named("mnist")


def test_registry_uses_the_default_size():
    assert len(generate_named("sine", seed=1).samples) == sine.DEFAULT_N
    assert len(generate_named("gestures", 10, seed=1).samples) == 10


@pytest.mark.parametrize("name", ["sine", "gestures", "digits"])
def test_same_seed_same_data_other_seed_other_data(name):
    first, again, other = (generate_named(name, 50, seed=s) for s in (7, 7, 8))
    np.testing.assert_array_equal(stacked(first), stacked(again))
    assert [(s.label, s.target, s.source) for s in first.samples] == [
        (s.label, s.target, s.source) for s in again.samples
    ]
    assert not np.array_equal(stacked(first), stacked(other))


@pytest.mark.parametrize("name", ["sine", "gestures", "digits"])
def test_sources_name_the_generator(name):
    data = generate_named(name, 5, seed=0)
    assert all(s.source.startswith(f"generator:{name}#") for s in data.samples)
    assert len({s.source for s in data.samples}) == 5


@pytest.mark.parametrize("name", ["sine", "gestures", "digits"])
def test_sizes_and_seeds_are_checked(name):
    with pytest.raises(InvalidInput, match="n must be at least 1"):
        generate_named(name, 0, seed=0)
    with pytest.raises(InvalidInput, match="seed must not be negative"):
        generate_named(name, 5, seed=-1)


def test_sine_is_noisy_sin_over_one_period():
    data = sine.generate(seed=3)
    assert data.spec.task is Task.REGRESSION
    assert data.spec.kind is SampleKind.VECTOR
    assert data.spec.input_shape == (1,)
    x = stacked(data)[:, 0].astype(np.float64)
    y = np.array([s.target for s in data.samples])
    assert len(x) == 1000
    assert x.min() >= 0 and x.max() < 2 * math.pi
    residual = y - np.sin(x)
    assert abs(residual.mean()) < 0.02
    assert 0.08 < residual.std() < 0.12


def test_gestures_windows_look_like_a_wrist_accelerometer():
    data = gestures.generate(seed=0)
    x = stacked(data)
    assert data.spec.kind is SampleKind.TIMESERIES
    assert data.spec.input_shape == (64, 3)
    assert len(data.spec.labels) >= 4
    assert x.shape == (800, 64, 3)
    assert np.abs(x).max() <= 4.0  # sensor full scale, in g
    counts = {label: sum(s.label == label for s in data.samples) for label in data.spec.labels}
    assert max(counts.values()) - min(counts.values()) <= 1
    # At rest the sensor reads gravity: about 1 g, spread over axes that differ between subjects.
    idle = np.stack([s.x for s in data.samples if s.label == "idle"])
    magnitude = np.linalg.norm(idle, axis=2).mean(axis=1)
    np.testing.assert_allclose(np.median(magnitude), 1.0, atol=0.1)
    dominant_axes = {int(np.abs(window.mean(axis=0)).argmax()) for window in idle}
    assert len(dominant_axes) >= 2


def test_gesture_classes_differ_but_not_by_energy_alone():
    data = gestures.generate(seed=0)
    x = stacked(data).astype(np.float64)
    labels = np.array([s.label for s in data.samples])
    energy = ((x - x.mean(axis=1, keepdims=True)) ** 2).sum(axis=2).mean(axis=1)
    means = {label: energy[labels == label].mean() for label in data.spec.labels}
    assert means["idle"] < 0.1 * min(v for k, v in means.items() if k != "idle")
    assert means["punch"] > 1.5 * means["wave"]
    assert len({round(v, 3) for v in means.values()}) == len(means)
    # Assigning each window to the class with the nearest mean energy gets far from all of them right.
    names = list(means)
    nearest = np.abs(energy[:, None] - np.array([means[n] for n in names])[None, :]).argmin(axis=1)
    accuracy = (np.array(names)[nearest] == labels).mean()
    assert accuracy < 0.75


def test_gesture_frequencies_tell_wave_from_shake():
    data = gestures.generate(seed=0)

    def dominant_hz(label: str) -> float:
        windows = np.stack([s.x for s in data.samples if s.label == label]).astype(np.float64)
        spectrum = np.abs(np.fft.rfft(windows - windows.mean(axis=1, keepdims=True), axis=1)).sum(axis=2)
        freqs = np.fft.rfftfreq(gestures.STEPS, d=1 / gestures.RATE_HZ)
        return float(np.median(freqs[spectrum.argmax(axis=1)]))

    assert 1.5 <= dominant_hz("wave") <= 3.2
    assert 4.5 <= dominant_hz("shake") <= 8.0
    assert dominant_hz("circle") < dominant_hz("wave")


def test_digits_are_the_bundled_images_scaled():
    data = digits.generate(seed=0)
    x = stacked(data)
    assert len(data.samples) == 1797
    assert data.spec.input_shape == (8, 8, 1)
    assert data.spec.labels == tuple("0123456789")
    assert x.min() == 0.0 and x.max() == 1.0
    assert {s.label for s in data.samples} == set("0123456789")


def test_digits_size_is_capped_and_subsets_are_seeded():
    assert len(digits.generate(5000, seed=0).samples) == 1797
    subset = digits.generate(100, seed=4)
    assert len(subset.samples) == 100
    assert [s.source for s in subset.samples] == [s.source for s in digits.generate(100, seed=4).samples]
    assert [s.source for s in subset.samples] != [s.source for s in digits.generate(100, seed=5).samples]
    # A source names one image of the set, whatever subset it came in.
    full = {s.source: s for s in digits.generate(seed=0).samples}
    for sample in subset.samples:
        np.testing.assert_array_equal(sample.x, full[sample.source].x)
        assert sample.label == full[sample.source].label

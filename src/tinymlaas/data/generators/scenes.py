"""Synthetic 96×96 grayscale camera frames: empty scenes, scenes with one object, scenes with a face.

This is the vision task where a cascade pays and a whole model does not fit: most frames a
person-detecting camera sees are empty, so a tiny gate that only asks "is anything there?" runs on
every frame on the microcontroller and wakes the classifier behind it rarely; and the classifier that
tells an object from a face at this resolution is MobileNet-class, whose int8 weights alone exceed a
Nano 33 BLE's usable flash, so it has to run elsewhere or be cut.

Every frame starts from the same kind of background, so the classes differ only in what is drawn on
it: smooth lighting gradients, low-frequency blobs and texture, sensor noise and a random exposure
(brightness and contrast). "object" adds one geometric shape (a filled or outlined rectangle, ellipse
or triangle of random size, angle, position and intensity); "face" adds a stylised face (an oval with
two eyes and a mouth, 20–60 px tall, tilted a little, at a random position and tone). Shapes are drawn
with anti-aliased numpy masks from signed distances, so edges are as soft as a real lens makes them.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from tinymlaas.data.generators._seeded import seeded_rng
from tinymlaas.data.types import DatasetSpec, ImportedData, LabelledSample, SampleKind, Task

__all__ = ["DEFAULT_N", "LABELS", "NAME", "SIDE", "SPEC", "generate", "render"]

NAME = "scenes"
DEFAULT_N = 1200
LABELS = ("background", "object", "face")
SIDE = 96
FACE_PX = (20.0, 60.0)  # face height range
OBJECT_PX = (16.0, 48.0)  # object extent range
MIN_CONTRAST = 0.22  # smallest step between a foreground and the background under it

SPEC = DatasetSpec(
    task=Task.CLASSIFICATION, kind=SampleKind.IMAGE, input_shape=(SIDE, SIDE, 1), labels=LABELS
)

_ROWS, _COLS = np.mgrid[0:SIDE, 0:SIDE].astype(np.float64)


def generate(n: int = DEFAULT_N, *, seed: int) -> ImportedData:
    """``n`` frames, classes balanced (counts differ by at most one); the same (n, seed), the same data."""
    rng = seeded_rng(NAME, n, seed)
    classes = rng.permutation(np.arange(n) % len(LABELS))
    keys = rng.integers(0, 2**63 - 1, size=n)
    samples = tuple(
        LabelledSample(x=render(LABELS[c], int(key)), source=f"generator:{NAME}#{i}", label=LABELS[c])
        for i, (c, key) in enumerate(zip(classes, keys, strict=True))
    )
    return ImportedData(spec=SPEC, samples=samples)


def render(label: str, key: int) -> np.ndarray:
    """One (96, 96, 1) float32 frame in [0, 1] showing ``label``.

    The background, exposure and noise come from one random stream and the foreground from another,
    both seeded by ``key``: the same key renders the same scene under every label, so the frames of a
    key differ only where the foreground is.
    """
    scene_seed, foreground_seed = np.random.SeedSequence(key).spawn(2)
    scene, foreground = np.random.default_rng(scene_seed), np.random.default_rng(foreground_seed)
    image = _background(scene)
    image = _FOREGROUNDS[label](image, foreground)
    contrast, brightness = scene.uniform(0.65, 1.15), scene.uniform(-0.12, 0.12)
    image = (image - 0.5) * contrast + 0.5 + brightness
    image = image + scene.normal(0.0, scene.uniform(0.005, 0.03), size=image.shape)
    return np.clip(image, 0.0, 1.0).astype(np.float32)[..., np.newaxis]


def _background(rng: np.random.Generator) -> np.ndarray:
    """Lighting gradient, a few soft blobs, coarse and finer texture: what a wall or a room looks like."""
    angle = rng.uniform(0.0, 2 * math.pi)
    ramp = (_COLS * math.cos(angle) + _ROWS * math.sin(angle)) / SIDE
    image = rng.uniform(0.3, 0.7) + rng.uniform(-0.25, 0.25) * ramp
    for _ in range(rng.integers(2, 6)):
        centre = rng.uniform(-10.0, SIDE + 10.0, size=2)
        sigma = rng.uniform(8.0, 30.0)
        distance = (_ROWS - centre[0]) ** 2 + (_COLS - centre[1]) ** 2
        image += rng.uniform(-0.2, 0.2) * np.exp(-distance / (2 * sigma**2))
    image += _smooth_noise(rng, int(rng.integers(3, 7)), rng.uniform(0.03, 0.1))
    image += _smooth_noise(rng, int(rng.integers(10, 20)), rng.uniform(0.0, 0.04))
    return image


def _smooth_noise(rng: np.random.Generator, cells: int, amplitude: float) -> np.ndarray:
    """A ``cells``×``cells`` grid of random values interpolated bilinearly up to the frame."""
    coarse = rng.normal(0.0, amplitude, size=(cells, cells))
    weights = _interpolation(cells)
    return weights @ coarse @ weights.T


def _interpolation(cells: int) -> np.ndarray:
    """(SIDE, cells) matrix that linearly interpolates ``cells`` evenly spaced values to SIDE pixels."""
    position = np.linspace(0.0, cells - 1, SIDE)
    lower = np.minimum(np.floor(position).astype(int), cells - 2)
    fraction = position - lower
    weights = np.zeros((SIDE, cells))
    weights[np.arange(SIDE), lower] = 1.0 - fraction
    weights[np.arange(SIDE), lower + 1] = fraction
    return weights


def _local_coordinates(centre: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """Every pixel's (across, down) offset from ``centre`` in a frame turned by ``angle`` rad."""
    dy, dx = _ROWS - centre[0], _COLS - centre[1]
    cos, sin = math.cos(angle), math.sin(angle)
    return cos * dx + sin * dy, -sin * dx + cos * dy


def _ellipse_distance(u: np.ndarray, v: np.ndarray, rx: float, ry: float) -> np.ndarray:
    """Approximate signed distance in pixels to an ellipse's edge (negative inside)."""
    return (np.sqrt((u / rx) ** 2 + (v / ry) ** 2) - 1.0) * min(rx, ry)


def _coverage(distance: np.ndarray, outline: float | None = None) -> np.ndarray:
    """How much of each pixel a shape covers, from its signed distance: a one-pixel soft edge.

    With ``outline`` (px), only a band that wide around the edge is covered.
    """
    if outline is not None:
        distance = np.abs(distance) - outline / 2
    return np.clip(0.5 - distance, 0.0, 1.0)


def _contrasting(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> float:
    """A tone at least MIN_CONTRAST away from the background under ``mask``, kept inside [0, 1]."""
    under = float((image * mask).sum() / max(mask.sum(), 1e-6))
    step = rng.uniform(MIN_CONTRAST, 0.45)
    darker, lighter = under - step, under + step
    if darker < 0.0:
        return lighter
    if lighter > 1.0:
        return darker
    return darker if rng.random() < 0.5 else lighter


def _paint(image: np.ndarray, mask: np.ndarray, tone: float) -> np.ndarray:
    return image * (1.0 - mask) + tone * mask


def _nothing(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return image


def _object(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    size = rng.uniform(*OBJECT_PX)
    centre = rng.uniform(size / 2, SIDE - size / 2, size=2)
    u, v = _local_coordinates(centre, rng.uniform(0.0, math.pi))
    shape = rng.integers(3)
    if shape == 0:  # rectangle
        half_w, half_h = size / 2, size / 2 * rng.uniform(0.4, 1.0)
        distance = np.maximum(np.abs(u) - half_w, np.abs(v) - half_h)
    elif shape == 1:  # ellipse
        distance = _ellipse_distance(u, v, size / 2, size / 2 * rng.uniform(0.4, 1.0))
    else:  # triangle: inside all three edges of an equilateral one with circumradius size/2
        radius = size / 2
        edges = [(math.cos(a), math.sin(a)) for a in (math.pi / 2, math.pi * 7 / 6, math.pi * 11 / 6)]
        distance = np.max([u * ex + v * ey - radius / 2 for ex, ey in edges], axis=0)
    outline = float(rng.uniform(2.0, 4.0)) if rng.random() < 0.4 else None
    mask = _coverage(distance, outline)
    return _paint(image, mask, _contrasting(image, mask, rng))


def _face(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    height = rng.uniform(*FACE_PX)
    ry = height / 2
    rx = ry * rng.uniform(0.7, 0.85)
    centre = rng.uniform(ry + 1, SIDE - ry - 1, size=2)
    u, v = _local_coordinates(centre, rng.normal(0.0, 0.15))
    oval = _coverage(_ellipse_distance(u, v, rx, ry))
    skin = _contrasting(image, oval, rng)
    image = _paint(image, oval, skin)
    # Eyes and mouth contrast with the face the way shadowed features do: towards the far end of the range.
    feature = float(np.clip(skin + (-1 if skin > 0.5 else 1) * rng.uniform(0.35, 0.55), 0.0, 1.0))
    eye_r = max(rx * rng.uniform(0.16, 0.22), 1.8)
    eye_x, eye_y = rx * rng.uniform(0.35, 0.45), -ry * rng.uniform(0.15, 0.3)
    for side in (-1.0, 1.0):
        image = _paint(
            image, _coverage(_ellipse_distance(u - side * eye_x, v - eye_y, eye_r, eye_r)), feature
        )
    mouth_w, mouth_h = rx * rng.uniform(0.35, 0.55), max(ry * rng.uniform(0.08, 0.14), 1.5)
    mouth = _coverage(_ellipse_distance(u, v - ry * rng.uniform(0.4, 0.55), mouth_w, mouth_h))
    return _paint(image, mouth, feature)


_FOREGROUNDS: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]] = {
    "background": _nothing,
    "object": _object,
    "face": _face,
}

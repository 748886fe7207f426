"""A dataset at a glance: a few samples of each class and a 2-D projection of the samples.

The projection is principal component analysis of the flattened samples, each value standardised over
the samples shown, so a channel with a large range does not drown the others. Samples that sit among
another class, or far from every class, stand out: those are the mislabels and outliers worth a look
before training. It is bounded, so a page stays quick on any dataset: at most ``max_samples`` samples
and a budget of values in all, picked as a seeded random subset, so the same dataset projects the same
way on every visit and the page can say it shows N of M samples.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from tinymlaas.data.types import Task
from tinymlaas.services.context import Context
from tinymlaas.storage.repositories import DatasetRepository, SamplePoint

__all__ = [
    "MAX_PROJECTED",
    "PREVIEWS_PER_CLASS",
    "ClassSamples",
    "Exploration",
    "ProjectedSample",
    "Projection",
    "explore_dataset",
]

MAX_PROJECTED = 2_000  # samples in one projection
PREVIEWS_PER_CLASS = 4
# Values (samples x values per sample) one projection reads, so large inputs (1 s of 16 kHz audio,
# colour images) project fewer samples rather than slow the page: 4 M float32 values are 16 MB.
_MAX_VALUES = 4_000_000
# Up to this many samples or values per sample, the exact SVD is cheap; beyond it, a randomized
# range finder (Halko, Martinsson and Tropp 2011) gives the two leading components at a fraction of
# the cost.
_EXACT_SVD_LIMIT = 512
_RANGE_RANK = 12  # two components and oversampling, so the leading pair is found accurately
_POWER_STEPS = 4


@dataclass(frozen=True)
class ProjectedSample:
    id: str
    label: str | None
    target: float | None
    x: float
    y: float


@dataclass(frozen=True)
class Projection:
    """Where each projected sample lands on the first two principal components."""

    points: list[ProjectedSample]
    total: int  # samples the dataset holds; ``points`` is a subset when it holds more than the bound
    explained: tuple[float, float]  # share of the standardised variance along each axis, 0 to 1
    seed: int

    @property
    def shown(self) -> int:
        return len(self.points)


@dataclass(frozen=True)
class ClassSamples:
    """One class (``label`` None: the unlabelled samples) with its count and a few of its samples."""

    label: str | None
    count: int
    sample_ids: list[str]


@dataclass(frozen=True)
class Exploration:
    dataset: str
    total: int
    regression: bool
    classes: list[ClassSamples]  # declared classes first, in index order; empty for regression
    projection: Projection | None  # None until the dataset holds two samples


def _classes(points: list[SamplePoint], declared: list[str], per_class: int) -> list[ClassSamples]:
    members: dict[str | None, list[str]] = {label: [] for label in declared}
    for point in points:
        members.setdefault(point.label, []).append(point.id)
    in_use = sorted(label for label in members if label is not None and label not in declared)
    order: list[str | None] = [*declared, *in_use]
    if None in members:
        order.append(None)
    return [ClassSamples(label, len(members[label]), members[label][:per_class]) for label in order]


def _subset(total: int, values_per_sample: int, max_samples: int, seed: int) -> np.ndarray:
    """Indices of the samples to project, in stored order: all of them when they fit the bounds."""
    size = min(total, max_samples, max(2, _MAX_VALUES // max(1, values_per_sample)))
    if size >= total:
        return np.arange(total)
    return np.sort(np.random.default_rng(seed).choice(total, size=size, replace=False))


def _standardised(x: np.ndarray) -> np.ndarray:
    """Each value centred and scaled over the samples; a value that never varies contributes 0."""
    centred = x - x.mean(axis=0)
    spread = x.std(axis=0)
    spread[spread == 0] = 1.0
    return centred / spread


def _leading_components(z: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The left singular vectors scaled by their singular values (the scores), and the singular values."""
    if min(z.shape) <= _EXACT_SVD_LIMIT:
        u, s, _ = np.linalg.svd(z, full_matrices=False)
    else:
        rank = min(_RANGE_RANK, *z.shape)
        y = z @ np.random.default_rng(seed).standard_normal((z.shape[1], rank)).astype(z.dtype)
        for _ in range(_POWER_STEPS):
            q, _ = np.linalg.qr(y)
            y = z @ (z.T @ q)
        q, _ = np.linalg.qr(y)
        small, s, _ = np.linalg.svd(q.T @ z, full_matrices=False)
        u = q @ small
    return u * s, s


def _project(z: np.ndarray, seed: int) -> tuple[np.ndarray, tuple[float, float]]:
    scores, singular = _leading_components(z, seed)
    coords = np.zeros((z.shape[0], 2))
    kept = min(2, scores.shape[1])
    coords[:, :kept] = scores[:, :kept]
    # A component's sign is arbitrary; fixing it keeps the picture the same from one visit to the next.
    for axis in range(2):
        extreme = coords[np.argmax(np.abs(coords[:, axis])), axis]
        if extreme < 0:
            coords[:, axis] = -coords[:, axis]
    variance = float(np.square(z, dtype=np.float64).sum())
    shares = [float(singular[i] ** 2) / variance if variance > 0 and i < kept else 0.0 for i in range(2)]
    return coords, (shares[0], shares[1])


def _projection(
    ctx: Context, points: list[SamplePoint], values_per_sample: int, max_samples: int, seed: int
) -> Projection | None:
    if len(points) < 2:
        return None
    chosen = [points[i] for i in _subset(len(points), values_per_sample, max_samples, seed)]
    x = np.stack(
        [np.load(io.BytesIO(ctx.blobs.get(point.blob)), allow_pickle=False).reshape(-1) for point in chosen]
    ).astype(np.float32)
    coords, explained = _project(_standardised(x), seed)
    projected = [
        ProjectedSample(p.id, p.label, p.target, round(float(a), 4), round(float(b), 4))
        for p, (a, b) in zip(chosen, coords, strict=True)
    ]
    return Projection(projected, len(points), explained, seed)


def explore_dataset(
    ctx: Context,
    name: str,
    *,
    max_samples: int = MAX_PROJECTED,
    per_class: int = PREVIEWS_PER_CLASS,
    seed: int = 0,
) -> Exploration:
    """The dataset's classes with a few samples each, and its samples projected onto two axes."""
    with ctx.session() as session:
        repo = DatasetRepository(session)
        dataset = repo.get(name)
        points = repo.sample_points(dataset.id)
        regression = dataset.task == Task.REGRESSION
        declared = [] if regression else list(dataset.labels)
        values_per_sample = int(np.prod(dataset.input_shape))
    return Exploration(
        dataset=name,
        total=len(points),
        regression=regression,
        classes=[] if regression else _classes(points, declared, per_class),
        projection=_projection(ctx, points, values_per_sample, max_samples, seed),
    )

"""The data explorer: classes with a few samples each, and a bounded, seeded 2-D projection."""

from __future__ import annotations

import numpy as np
import pytest

from tinymlaas.data.types import DatasetSpec, SampleKind, Task
from tinymlaas.services import explorer, samples
from tinymlaas.services.context import Context
from tinymlaas.services.datasets import DatasetService
from tinymlaas.services.explorer import explore_dataset

SPEC = DatasetSpec(Task.CLASSIFICATION, SampleKind.VECTOR, (8,), ("left", "right", "idle"))


def _two_clusters(context: Context, per_class: int = 20, unlabelled: int = 3) -> None:
    """'left' and 'right' apart along three correlated values, noise elsewhere; a few unlabelled."""
    service = DatasetService(context)
    service.create("clusters", SPEC)
    rng = np.random.default_rng(7)
    for label, side in (("left", -4.0), ("right", 4.0), (None, 0.0)):
        for _ in range(unlabelled if label is None else per_class):
            x = rng.normal(0.0, 1.0, 8).astype(np.float32)
            x[:3] += side
            service.add_sample("clusters", x, label=label, source="test")


def _stored(context: Context) -> dict[str, str | None]:
    return {s["id"]: s["label"] for s in samples.list_samples(context, "clusters", limit=1000).samples}


def test_the_first_axis_separates_the_classes_that_differ_most(context: Context) -> None:
    _two_clusters(context)
    found = explore_dataset(context, "clusters")
    projection = found.projection
    assert projection is not None
    assert projection.total == projection.shown == len(_stored(context))
    assert {p.id: p.label for p in projection.points} == _stored(context)
    left = [p.x for p in projection.points if p.label == "left"]
    right = [p.x for p in projection.points if p.label == "right"]
    assert max(left) < min(right) or max(right) < min(left)
    assert projection.explained[0] > projection.explained[1] > 0
    assert projection.explained[0] + projection.explained[1] <= 1


def test_classes_keep_their_declared_order_with_counts_and_a_few_samples(context: Context) -> None:
    _two_clusters(context)
    stored = _stored(context)
    classes = explore_dataset(context, "clusters", per_class=4).classes
    assert [c.label for c in classes] == ["left", "right", "idle", None]
    for c in classes:
        assert c.count == sum(1 for label in stored.values() if label == c.label)
        assert len(c.sample_ids) == min(4, c.count)
        assert all(stored[i] == c.label for i in c.sample_ids)


def test_a_large_dataset_projects_a_seeded_subset(context: Context) -> None:
    _two_clusters(context)
    stored = _stored(context)
    first = explore_dataset(context, "clusters", max_samples=10, seed=1).projection
    again = explore_dataset(context, "clusters", max_samples=10, seed=1).projection
    assert first is not None and again is not None
    assert (first.shown, first.total) == (10, len(stored))
    assert {p.id for p in first.points} <= set(stored)
    assert first.points == again.points


def test_the_randomized_components_agree_with_the_exact_svd(
    context: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    _two_clusters(context)
    exact = explore_dataset(context, "clusters").projection
    monkeypatch.setattr(explorer, "_EXACT_SVD_LIMIT", 1)
    randomized = explore_dataset(context, "clusters").projection
    assert exact is not None and randomized is not None
    assert np.allclose([(p.x, p.y) for p in exact.points], [(p.x, p.y) for p in randomized.points], atol=1e-2)
    assert np.allclose(exact.explained, randomized.explained, atol=1e-4)


def test_an_empty_dataset_has_no_projection(context: Context) -> None:
    DatasetService(context).create("clusters", SPEC)
    found = explore_dataset(context, "clusters")
    assert found.projection is None and found.total == 0
    assert [(c.label, c.count) for c in found.classes] == [("left", 0), ("right", 0), ("idle", 0)]

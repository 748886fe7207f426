"""A dataset's imports, snapshots, samples and labels."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

__all__ = [
    "DatasetImportPublic",
    "LabelsPublic",
    "LabelsUpdate",
    "SampleLabelUpdate",
    "SamplePreviewPublic",
    "SamplePublic",
    "SamplesPublic",
    "SnapshotPublic",
    "SnapshotsPublic",
]

_MAX_BULK = 1000  # sample ids in one bulk labelling call: a page of samples at most


class DatasetImportPublic(BaseModel):
    dataset: str
    added: int
    duplicates: int = Field(description="Samples whose exact content the dataset already held; skipped.")
    created: bool = Field(description="Whether the import created the dataset.")
    warnings: list[str] = Field(
        default=[],
        description="What will stop or weaken training: a single class, a feature with one value, a "
        "regression target spanning orders of magnitude.",
    )


class SnapshotPublic(BaseModel):
    id: str = Field(description="SHA-256 of the spec, the members and their labels: same content, same id.")
    dataset: str
    samples: int
    labels: list[str] = Field(description="The classes in index order, as frozen; empty for regression.")
    label_counts: dict[str, int]
    created_at: str | None


class SnapshotsPublic(BaseModel):
    data: list[SnapshotPublic]
    count: int


class SamplePublic(BaseModel):
    id: str
    dataset: str
    label: str | None = Field(description="The class; null while unlabelled (and always for regression).")
    target: float | None = Field(description="The regression target; null for classification.")
    source: str = Field(
        description="Where it came from: a file in an import, generator:NAME#i, device:ENDPOINT."
    )
    origin: str = Field(description="generated, imported, uploaded or collected.")
    content_sha256: str = Field(description="SHA-256 of the stored array (.npy bytes).")
    created_at: str | None


class SamplesPublic(BaseModel):
    data: list[SamplePublic]
    count: int


class SamplePreviewPublic(BaseModel):
    """A sample that is not an image: a window's channels for a line chart, or the plain values."""

    kind: str = Field(description="series (time-series windows and audio) or values (anything else).")
    shape: list[int]
    channels: list[list[float]] | None = Field(
        None, description="series: one list per channel, values in time order."
    )
    values: list[Any] | None = Field(None, description="values: the array as nested lists.")


class SampleLabelUpdate(BaseModel):
    label: str | None = Field(
        max_length=128, examples=["wave"], description="One of the dataset's classes; null clears the label."
    )


class LabelsUpdate(BaseModel):
    """One label for many samples; all or nothing."""

    samples: list[str] = Field(min_length=1, max_length=_MAX_BULK, examples=[["smp_3f9a2c1b7d04"]])
    label: str | None = Field(
        max_length=128, examples=["wave"], description="One of the dataset's classes; null clears the labels."
    )


class LabelsPublic(BaseModel):
    dataset: str
    label: str | None
    updated: int = Field(description="Samples labelled (or cleared).")

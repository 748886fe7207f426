"""A dataset's samples one by one: browse, preview, label, and upload a single sample.

Labels follow the dataset's spec. A dataset with declared classes takes only those (adding a class
would change the class indices of every model trained on it, so that is a new dataset). A dataset
with open classes (one collected from devices) takes any label, and its classes are whatever its
samples carry. A regression dataset's samples carry numeric targets, which are not labels. A snapshot
keeps the labels its members had, so relabelling never changes a snapshot or a model made from one.
"""

from __future__ import annotations

import io
import shutil
import tempfile
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from tinymlaas.data.importers import import_folder
from tinymlaas.data.types import DatasetSpec, SampleKind, Task
from tinymlaas.errors import InvalidInput, NotFound
from tinymlaas.services._previews import MAX_THUMBNAIL, MIN_THUMBNAIL, PreviewKind, SamplePreview, preview
from tinymlaas.services._reports import iso
from tinymlaas.services.context import Context
from tinymlaas.services.datasets import DatasetService, spec_from_dict
from tinymlaas.storage.repositories import DatasetRepository, SampleQuery
from tinymlaas.storage.tables import DatasetRow, SampleRow

__all__ = [
    "MAX_LABEL",
    "MAX_THUMBNAIL",
    "MIN_THUMBNAIL",
    "UPLOAD_SUFFIXES",
    "Origin",
    "PreviewKind",
    "SamplePage",
    "SamplePreview",
    "check_label",
    "list_samples",
    "preview_samples",
    "set_label",
    "set_labels",
    "show_sample",
    "upload_sample",
]

MAX_LABEL = 128  # characters; the label column is this wide
# Files one sample can come in: an image, a WAV clip, a CSV window (rows are steps), a .npy array.
UPLOAD_SUFFIXES = (".png", ".jpg", ".jpeg", ".wav", ".csv", ".npy")
_NPY_SIGNATURE = b"\x93NUMPY"


class Origin(StrEnum):
    """Where a sample came from, read off its stored source."""

    GENERATED = "generated"  # a built-in generator
    IMPORTED = "imported"  # a folder, CSV or .npz import
    UPLOADED = "uploaded"  # a single file uploaded into the dataset
    COLLECTED = "collected"  # a device's upload over LwM2M


_PREFIX = {Origin.GENERATED: "generator:", Origin.UPLOADED: "upload:", Origin.COLLECTED: "device:"}


def _origin(source: str) -> Origin:
    return next((o for o, prefix in _PREFIX.items() if source.startswith(prefix)), Origin.IMPORTED)


@dataclass(frozen=True)
class SamplePage:
    samples: list[dict[str, Any]]
    count: int  # how many samples the filters select, before paging


def _spec(row: DatasetRow) -> DatasetSpec:
    return spec_from_dict(
        {"task": row.task, "kind": row.kind, "input_shape": row.input_shape, "labels": row.labels}
    )


def _view(row: SampleRow, dataset: str) -> dict[str, Any]:
    return {
        "id": row.id,
        "dataset": dataset,
        "label": row.label,
        "target": row.target,
        "source": row.source,
        "origin": str(_origin(row.source)),
        "content_sha256": row.blob,
        "created_at": iso(row.created_at),
    }


def _sample(repo: DatasetRepository, dataset: DatasetRow, sample_id: str) -> SampleRow:
    row = repo.find_sample(dataset.id, sample_id)
    if row is None:
        raise NotFound(f"no sample {sample_id!r} in dataset {dataset.name!r}")
    return row


def check_label(spec: DatasetSpec, label: str | None, dataset: str) -> str | None:
    """The label as stored (surrounding spaces dropped), or InvalidInput naming what is allowed."""
    if spec.task is Task.REGRESSION:
        raise InvalidInput(
            f"dataset {dataset!r} is a regression dataset: its samples carry numeric targets, not labels"
        )
    if label is None:
        return None
    cleaned = label.strip()
    if not cleaned or len(cleaned) > MAX_LABEL or not cleaned.isprintable():
        raise InvalidInput(f"label {label!r} must be 1-{MAX_LABEL} printable characters")
    if spec.labels and cleaned not in spec.labels:
        raise InvalidInput(
            f"unknown label {cleaned!r} for dataset {dataset!r}; the allowed labels are "
            f"{', '.join(spec.labels)}"
        )
    return cleaned


def list_samples(
    ctx: Context,
    name: str,
    *,
    label: str | None = None,
    unlabelled: bool = False,
    origin: Origin | None = None,
    limit: int = 100,
    offset: int = 0,
) -> SamplePage:
    """One page of the dataset's samples, oldest first; optionally one label, one origin, or unlabelled."""
    if label is not None and unlabelled:
        raise InvalidInput("ask for one label or for the unlabelled samples, not both")
    if origin is None:
        prefixes: tuple[str, ...] = ()
        excluded: tuple[str, ...] = ()
    elif origin is Origin.IMPORTED:
        prefixes, excluded = (), tuple(_PREFIX.values())
    else:
        prefixes, excluded = (_PREFIX[origin],), ()
    with ctx.session() as session:
        repo = DatasetRepository(session)
        dataset = repo.get(name)
        query = SampleQuery(
            label=label,
            unlabelled=unlabelled,
            regression=dataset.task == Task.REGRESSION,
            source_prefixes=prefixes,
            not_source_prefixes=excluded,
        )
        rows, count = repo.find_samples(dataset.id, query, limit=limit, offset=offset)
        return SamplePage([_view(row, name) for row in rows], count)


def show_sample(ctx: Context, name: str, sample_id: str) -> dict[str, Any]:
    with ctx.session() as session:
        repo = DatasetRepository(session)
        return _view(_sample(repo, repo.get(name), sample_id), name)


def preview_samples(
    ctx: Context, name: str, sample_ids: list[str], *, size: int = 96
) -> dict[str, SamplePreview]:
    """Each sample's preview by id: a PNG thumbnail, the per-channel values of a window, or the values."""
    with ctx.session() as session:
        repo = DatasetRepository(session)
        dataset = repo.get(name)
        kind = SampleKind(dataset.kind)
        blobs = {sample_id: _sample(repo, dataset, sample_id).blob for sample_id in sample_ids}
    return {
        sample_id: preview(kind, np.load(io.BytesIO(ctx.blobs.get(blob)), allow_pickle=False), size=size)
        for sample_id, blob in blobs.items()
    }


def set_label(ctx: Context, name: str, sample_id: str, label: str | None) -> dict[str, Any]:
    """Label one sample; None clears its label."""
    with ctx.session() as session:
        repo = DatasetRepository(session)
        dataset = repo.get(name)
        row = _sample(repo, dataset, sample_id)
        row.label = check_label(_spec(dataset), label, name)
        return _view(row, name)


def set_labels(ctx: Context, name: str, sample_ids: list[str], label: str | None) -> dict[str, Any]:
    """Label many samples at once (None clears); all or nothing: one unknown id changes none of them."""
    wanted = list(dict.fromkeys(sample_ids))
    if not wanted:
        raise InvalidInput("name at least one sample to label")
    with ctx.session() as session:
        repo = DatasetRepository(session)
        dataset = repo.get(name)
        cleaned = check_label(_spec(dataset), label, name)
        found = {row.id for row in repo.samples_by_id(dataset.id, wanted)}
        missing = [s for s in wanted if s not in found]
        if missing:
            more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            named = ", ".join(map(repr, missing[:5]))
            raise NotFound(f"no sample {named}{more} in dataset {name!r}; nothing was labelled")
        updated = repo.set_labels(dataset.id, wanted, cleaned)
        return {"dataset": name, "label": cleaned, "updated": updated}


def _read_file(path: Path, spec: DatasetSpec) -> np.ndarray:
    """The array in an uploaded sample file, read the way a folder import reads it."""
    if path.suffix.lower() == ".npy":
        with path.open("rb") as handle:
            if not handle.read(6).startswith(_NPY_SIGNATURE):
                raise InvalidInput(f"{path.name}: not a .npy array file")
        try:
            x = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise InvalidInput(f"{path.name}: not a readable .npy array ({exc})") from exc
        if x.dtype.kind not in "biuf":
            raise InvalidInput(f"{path.name}: holds {x.dtype} values; a sample holds numbers")
        if spec.kind is SampleKind.IMAGE and x.dtype == np.uint8:
            return x.astype(np.float32) / 255.0  # 0-255 pixels, scaled as an .npz import scales them
        return x.astype(np.float32)
    # The folder importer knows every per-file format; give it a one-file, one-class folder.
    scratch = Path(tempfile.mkdtemp(prefix="sample-", dir=path.parent))
    try:
        (scratch / "upload").mkdir()
        shutil.copyfile(path, scratch / "upload" / path.name)
        data = import_folder(scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    x = data.samples[0].x
    if data.spec.kind is not spec.kind:
        if spec.kind is SampleKind.VECTOR and x.shape[0] == 1:
            return x[0]  # a one-row CSV is one feature vector
        raise InvalidInput(f"{path.name}: holds a {data.spec.kind} sample; the dataset holds {spec.kind}")
    return x


def upload_sample(ctx: Context, name: str, path: Path, *, label: str | None = None) -> dict[str, Any]:
    """Add the sample in one file (image, WAV, CSV window or .npy) to ``name``, labelled or not.

    InvalidInput when the file cannot be read or does not fit the dataset; Conflict when the dataset
    already holds the same sample.
    """
    if path.suffix.lower() not in UPLOAD_SUFFIXES:
        raise InvalidInput(f"{path.name}: a sample file is one of {', '.join(UPLOAD_SUFFIXES)}")
    with ctx.session() as session:
        dataset = DatasetRepository(session).get(name)
        spec = _spec(dataset)
    cleaned = None if label is None else check_label(spec, label, name)
    x = _read_file(path, spec)
    sample_id = DatasetService(ctx).add_sample(name, x, label=cleaned, source=f"upload:{path.name}")
    return show_sample(ctx, name, sample_id)

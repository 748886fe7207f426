"""Datasets: create, import, collect from devices, list, show, snapshot, and load a snapshot as arrays.

Adding samples is all-or-nothing: the importer validates every file first, blobs are written
(content-addressed, so a failed import leaves at most unreferenced blobs), and the rows go in one
transaction. A sample collected from a device is added alone, once per id the device gave it, and may
be unlabelled; snapshots (and so training) take only the samples that have a label or target.

Devices only add to datasets an operator created: a device that could create one, or label what it
sends, could steer what the next model learns. A dataset's field-label policy (``FieldLabels``) says
whether the labels devices send are kept or dropped, so field data can be kept for people to label.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from tinymlaas.data import generators
from tinymlaas.data.importers import FILE_SUFFIXES, import_path
from tinymlaas.data.scaling import ScalingMethod
from tinymlaas.data.split import split_indices
from tinymlaas.data.types import (
    Arrays,
    DatasetSpec,
    ImportedData,
    LabelledSample,
    SampleKind,
    Task,
    check_dataset_name,
)
from tinymlaas.data.upload import SampleUpload
from tinymlaas.errors import Conflict, InvalidInput, NotFound
from tinymlaas.services._archive import unpack_zip
from tinymlaas.services._reports import iso
from tinymlaas.services.context import Context, new_id
from tinymlaas.storage.repositories import DatasetRepository, Member
from tinymlaas.storage.tables import CollectedSampleRow, DatasetRow, SampleRow, SnapshotRow

__all__ = [
    "IMPORT_SUFFIXES",
    "AddReport",
    "CollectOutcome",
    "DatasetService",
    "DatasetSummary",
    "FieldLabels",
    "LoadedSnapshot",
    "ScalingMethod",
    "SnapshotSummary",
    "spec_from_dict",
    "spec_to_dict",
]

# What ``DatasetService.import_file`` reads: a zip of class folders, or one file an importer reads.
IMPORT_SUFFIXES = (".zip", *FILE_SUFFIXES)


class FieldLabels(StrEnum):
    """What a dataset does with the labels devices send with their samples."""

    ACCEPT = "accept"  # kept, as the device sent them
    UNLABELLED = "unlabelled"  # dropped: field samples are stored unlabelled, for people to label


def spec_to_dict(spec: DatasetSpec) -> dict[str, Any]:
    return {
        "task": str(spec.task),
        "kind": str(spec.kind),
        "input_shape": list(spec.input_shape),
        "labels": list(spec.labels),
    }


def spec_from_dict(data: dict[str, Any]) -> DatasetSpec:
    return DatasetSpec(
        task=Task(data["task"]),
        kind=SampleKind(data["kind"]),
        input_shape=tuple(data["input_shape"]),
        labels=tuple(data["labels"]),
    )


def _row_spec(row: DatasetRow) -> DatasetSpec:
    return spec_from_dict(
        {"task": row.task, "kind": row.kind, "input_shape": row.input_shape, "labels": row.labels}
    )


def _encode(x: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(x, dtype=np.float32), allow_pickle=False)
    return buffer.getvalue()


def _decode(data: bytes) -> np.ndarray:
    return np.load(io.BytesIO(data), allow_pickle=False)


@dataclass(frozen=True)
class AddReport:
    dataset: str
    added: int
    duplicates: int  # samples whose exact content was already in the dataset
    # What will stop or weaken training, said at import rather than after a training job fails.
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class CollectOutcome:
    """What became of one sample a device uploaded."""

    dataset: str
    sample_id: str  # the stored sample it is (an identical one stored earlier, or a new one)
    stored: bool  # False: this upload id, or the same content, was already in the dataset
    dropped_label: str | None = None  # the label the device sent, dropped by the dataset's policy

    @property
    def detail(self) -> str:
        if self.stored:
            text = f"stored as {self.sample_id} in {self.dataset!r}"
        else:
            text = f"already stored as {self.sample_id} in {self.dataset!r}"
        if self.dropped_label is not None:
            text += f"; label {self.dropped_label!r} dropped: the dataset takes field samples unlabelled"
        return text


@dataclass(frozen=True)
class DatasetSummary:
    id: str
    name: str
    spec: DatasetSpec
    description: str
    sample_count: int
    label_counts: dict[str, int]
    snapshots: list[dict[str, Any]]
    unlabelled: int = 0  # samples without a label (classification) or target (regression)
    collected: int = 0  # samples uploaded by devices, labelled or not
    field_labels: FieldLabels = FieldLabels.ACCEPT
    input_scaling: ScalingMethod = ScalingMethod.STANDARDIZE  # how models trained on it scale inputs
    sandbox: bool = False  # a dry run generated it: listed under dry runs, never with production data


@dataclass(frozen=True)
class SnapshotSummary:
    id: str  # the content hash of spec, members and their labels
    dataset: str
    samples: int
    labels: list[str]  # the classes in index order, as frozen (empty for regression)
    label_counts: dict[str, int]
    created_at: str | None


@dataclass(frozen=True)
class LoadedSnapshot:
    snapshot_id: str
    dataset: str
    dataset_id: str
    spec: DatasetSpec
    arrays: Arrays
    split_counts: dict[str, int]
    input_scaling: str = ScalingMethod.STANDARDIZE.value  # the dataset's choice when it was loaded
    sandbox: bool = False  # of a dry run's dataset: what is made from it stays in the sandbox


class DatasetService:
    def __init__(self, context: Context) -> None:
        self.ctx = context

    def create(
        self,
        name: str,
        spec: DatasetSpec,
        description: str = "",
        *,
        open_classes: bool = False,
        field_labels: FieldLabels = FieldLabels.ACCEPT,
    ) -> DatasetSummary:
        """An empty dataset with a fixed spec; samples added later must match it.

        ``open_classes`` makes a classification dataset without declared labels, whose classes are the
        labels its samples get (what devices collecting field data usually fill); without it a
        classification dataset declares at least two, so a forgotten ``--labels`` is caught.
        """
        if open_classes and (spec.task is not Task.CLASSIFICATION or spec.labels):
            raise InvalidInput("open classes are for a classification dataset without declared labels")
        if spec.task is Task.CLASSIFICATION and len(spec.labels) < 2 and not open_classes:
            raise InvalidInput(
                "a classification dataset needs at least two class labels (--labels a,b,...), "
                "or open classes (--open-classes)"
            )
        with self.ctx.session() as session:
            self._insert(DatasetRepository(session), name, spec, description, field_labels)
        return self.show(name)

    def _insert(
        self,
        repo: DatasetRepository,
        name: str,
        spec: DatasetSpec,
        description: str,
        field_labels: FieldLabels = FieldLabels.ACCEPT,
        *,
        sandbox: bool = False,
    ) -> DatasetRow:
        check_dataset_name(name)
        return repo.add(
            DatasetRow(
                id=new_id("ds"),
                name=name,
                task=str(spec.task),
                kind=str(spec.kind),
                input_shape=list(spec.input_shape),
                labels=list(spec.labels),
                description=description,
                field_labels=FieldLabels(field_labels).value,
                sandbox=sandbox,
            )
        )

    def set_input_scaling(self, name: str, method: ScalingMethod | str) -> DatasetSummary:
        """How models trained from now on scale their inputs; models already trained keep theirs."""
        try:
            chosen = ScalingMethod(method)
        except ValueError:
            choices = ", ".join(m.value for m in ScalingMethod)
            raise InvalidInput(f"unknown input scaling {method!r}; choose one of {choices}") from None
        with self.ctx.session() as session:
            DatasetRepository(session).get(name).input_scaling = chosen.value
        return self.show(name)

    def set_field_labels(self, name: str, policy: FieldLabels) -> DatasetSummary:
        """Keep or drop the labels devices send from now on; samples already stored keep theirs."""
        with self.ctx.session() as session:
            DatasetRepository(session).get(name).field_labels = FieldLabels(policy).value
        return self.show(name)

    def generate(
        self,
        name: str,
        generator: str,
        *,
        samples: int | None,
        seed: int,
        field_labels: FieldLabels = FieldLabels.ACCEPT,
        sandbox: bool = False,
    ) -> AddReport:
        """A new dataset filled by a built-in generator (``sine``, ``gestures``, ``digits``).

        ``sandbox`` makes it a dry run's: kept out of the production lists, and so is every snapshot,
        run, model, variant and module made from it.
        """
        data = generators.generate(generator, samples, seed=seed)
        return self._add(
            name,
            data,
            create=True,
            description=f"generated by {generator!r}, seed {seed}",
            field_labels=field_labels,
            sandbox=sandbox,
        )

    def import_path(
        self,
        name: str,
        path: Path,
        *,
        fmt: str | None = None,
        task: Task | None = None,
        label_column: str = "label",
    ) -> AddReport:
        """Import a folder, CSV or .npz into ``name`` (created with the file's spec when new)."""
        if not path.exists():
            raise InvalidInput(f"{path}: no such file or directory")
        if path.is_file() and path.stat().st_size > self.ctx.settings.max_import_bytes:
            raise InvalidInput(
                f"{path}: {path.stat().st_size} bytes is over the import limit of "
                f"{self.ctx.settings.max_import_bytes} bytes"
            )
        with self.ctx.session() as session:
            existing = DatasetRepository(session).find(name)
            spec = _row_spec(existing) if existing else None
        data = import_path(path, fmt=fmt, spec=spec, task=task, label_column=label_column)
        if existing and data.spec.kind.value != existing.kind:
            raise InvalidInput(
                f"{path}: holds {data.spec.kind} samples, dataset {name!r} holds {existing.kind}"
            )
        return self._add(name, data, create=existing is None, description=f"imported from {path.name}")

    def import_file(
        self,
        name: str,
        path: Path,
        *,
        create: bool,
        task: Task | None = None,
        label_column: str = "label",
    ) -> AddReport:
        """Import one uploaded file: a ``.zip`` of class folders, a ``.csv`` table or an ``.npz`` archive.

        With ``create`` the dataset must be new and takes the file's spec (Conflict otherwise); without
        it the dataset must exist (NotFound otherwise), so a typo never starts a second dataset. A zip
        whose only top-level entry is a folder of folders that is not one of the dataset's classes
        (``flowers/cat/...``, as zipping a folder makes) is read from inside that folder.
        """
        check_dataset_name(name)
        with self.ctx.session() as session:
            repo = DatasetRepository(session)
            existing = repo.find(name) if create else repo.get(name)
            if existing is not None and create:
                raise Conflict(f"a dataset named {name!r} already exists; import without create to add to it")
            labels = tuple(existing.labels) if existing is not None else ()
        if path.suffix.lower() != ".zip":
            return self.import_path(name, path, task=task, label_column=label_column)
        scratch = Path(tempfile.mkdtemp(prefix="unzip-", dir=path.parent))
        try:
            folder = scratch / path.stem
            unpack_zip(path, folder, max_bytes=self.ctx.settings.max_import_bytes)
            return self.import_path(name, _class_root(folder, labels), fmt="folder", task=task)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def add_sample(self, name: str, x: np.ndarray, *, label: str | None, source: str) -> str:
        """Store one sample, labelled or not, in an existing dataset; the new sample's id.

        InvalidInput when it does not fit the dataset (shape, NaNs, a label outside its classes or on a
        regression dataset); Conflict naming the stored sample when the dataset already holds it.
        """
        x = np.asarray(x, dtype=np.float32)
        with self.ctx.session() as session:
            repo = DatasetRepository(session)
            row = repo.get(name)
            _check_collected(_row_spec(row), x, label, source)
            digest = self.ctx.blobs.put(_encode(x))
            known = repo.sample_by_blob(row.id, digest)
            if known is not None:
                raise Conflict(f"{source}: dataset {name!r} already holds this sample as {known.id}")
            sample = SampleRow(
                id=new_id("smp"), dataset_id=row.id, blob=digest, label=label, target=None, source=source
            )
            repo.add_samples([sample])
            return sample.id

    def _add(
        self,
        name: str,
        data: ImportedData,
        *,
        create: bool,
        description: str,
        field_labels: FieldLabels = FieldLabels.ACCEPT,
        sandbox: bool = False,
    ) -> AddReport:
        digests = [self.ctx.blobs.put(_encode(s.x)) for s in data.samples]
        with self.ctx.session() as session:
            repo = DatasetRepository(session)
            row = (
                self._insert(repo, name, data.spec, description, field_labels, sandbox=sandbox)
                if create
                else repo.get(name)
            )
            spec = _row_spec(row)
            for sample in data.samples:
                spec.check_sample(sample, sample.source)
            known = repo.sample_blobs(row.id)
            new = []
            for sample, digest in zip(data.samples, digests, strict=True):
                if digest in known:
                    continue
                known.add(digest)
                new.append(
                    SampleRow(
                        id=new_id("smp"),
                        dataset_id=row.id,
                        blob=digest,
                        label=sample.label,
                        target=sample.target,
                        source=sample.source,
                    )
                )
            repo.add_samples(new)
            classes = [label for label in repo.label_counts(row.id) if label is not None]
        return AddReport(
            dataset=name,
            added=len(new),
            duplicates=len(data.samples) - len(new),
            warnings=_import_warnings(spec, data.samples, classes),
        )

    def collect(self, name: str, upload: SampleUpload) -> CollectOutcome:
        """Store one sample a device uploaded into ``name``, once per upload id, as ``upload.endpoint``'s.

        An id stored before answers with the sample it became and stores nothing, so a device may resend
        whatever it never saw acknowledged. The dataset must exist: NotFound otherwise, and nothing is
        created. A dataset that takes field samples unlabelled stores the sample without the label the
        device sent, and the outcome names the dropped label. InvalidInput, with nothing stored, when the
        sample does not fit the dataset: its shape, NaNs, a label a regression dataset cannot take, or
        one outside a classification dataset's declared classes.
        """
        check_dataset_name(name)
        where = f"dataset {name!r}"  # no sample id: one reason reads the same for every sample it refuses
        x = np.asarray(upload.x, dtype=np.float32)
        with self.ctx.session() as session:
            repo = DatasetRepository(session)
            # Not ``repo.get``: a device is not told which other datasets exist.
            row = repo.find(name)
            if row is None:
                raise NotFound(f"no dataset {name!r}: an operator creates it before devices upload to it")
            known = repo.collected(row.id, upload.sample_id)
            if known is not None:
                return CollectOutcome(name, known.sample_id, stored=False)
            label, dropped = upload.label, None
            if label is not None and row.field_labels == FieldLabels.UNLABELLED:
                label, dropped = None, label
            _check_collected(_row_spec(row), x, label, where)
            digest = self.ctx.blobs.put(_encode(x))
            sample = repo.sample_by_blob(row.id, digest)
            stored = False
            if sample is None:
                sample, stored = repo.add_sample_once(
                    SampleRow(
                        id=new_id("smp"),
                        dataset_id=row.id,
                        blob=digest,
                        label=label,
                        target=None,
                        source=f"device:{upload.endpoint}",
                    )
                )
            repo.add_collected(
                CollectedSampleRow(
                    dataset_id=row.id,
                    sample_key=upload.sample_id,
                    sample_id=sample.id,
                    endpoint=upload.endpoint,
                    captured_at=datetime.fromtimestamp(upload.captured_at, UTC),
                )
            )
            return CollectOutcome(name, sample.id, stored=stored, dropped_label=dropped)

    def names(self, *, sandbox: bool = False) -> list[str]:
        """The production datasets' names, or with ``sandbox`` those of every dry run's dataset."""
        with self.ctx.session() as session:
            return DatasetRepository(session).names(sandbox=sandbox)

    def list(self, *, sandbox: bool = False) -> list[DatasetSummary]:
        """Every production dataset by name, or with ``sandbox`` every dataset a dry run generated."""
        return self.list_page(sandbox=sandbox)[0]

    def list_page(
        self, *, sandbox: bool = False, limit: int | None = None, offset: int = 0
    ) -> tuple[list[DatasetSummary], int]:
        """One page of ``list`` and how many datasets there are: paged in SQL, so only the page's
        datasets have their samples counted."""
        with self.ctx.session() as session:
            repo = DatasetRepository(session)
            names = repo.names(sandbox=sandbox, limit=limit, offset=offset)
            count = repo.count(sandbox=sandbox)
        return [self.show(n) for n in names], count

    def show(self, name: str) -> DatasetSummary:
        with self.ctx.session() as session:
            repo = DatasetRepository(session)
            row = repo.get(name)
            counts = repo.label_counts(row.id)
            spec = _row_spec(row)
            return DatasetSummary(
                id=row.id,
                name=row.name,
                spec=spec,
                description=row.description,
                sample_count=sum(counts.values()),
                label_counts={label: c for label, c in counts.items() if label is not None},
                snapshots=[
                    {"id": s.id, "samples": s.sample_count, "created_at": s.created_at.isoformat()}
                    for s in repo.snapshots(row.id)
                ],
                unlabelled=repo.unlabelled_count(row.id, regression=spec.task is Task.REGRESSION),
                collected=repo.collected_count(row.id),
                field_labels=FieldLabels(row.field_labels),
                input_scaling=ScalingMethod(row.input_scaling),
                sandbox=row.sandbox,
            )

    def snapshot(self, name: str) -> str:
        """Freeze the dataset's labelled samples and their labels; the same content gives the same id.

        Unlabelled samples stay out: a snapshot is what a model can be trained on. Open classes (a
        dataset collected from devices) become the labels the members carry, in sorted order.
        """
        with self.ctx.session() as session:
            repo = DatasetRepository(session)
            row = repo.get(name)
            row_spec = _row_spec(row)
            regression = row_spec.task is Task.REGRESSION
            everything = repo.members(row.id)
            members = [m for m in everything if (m.target if regression else m.label) is not None]
            if not members:
                unlabelled = f" ({len(everything)} unlabelled)" if everything else ""
                raise InvalidInput(f"dataset {name!r} has no samples to snapshot{unlabelled}")
            spec = spec_to_dict(row_spec)
            if not regression and not row_spec.labels:
                spec["labels"] = sorted({m.label for m in members if m.label is not None})
                if len(spec["labels"]) < 2:
                    raise InvalidInput(
                        f"dataset {name!r} has labelled samples of {len(spec['labels'])} class "
                        f"({', '.join(spec['labels'])}); a classifier needs at least two"
                    )
            digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode())
            for m in members:
                digest.update(f"{m.blob}\t{m.label}\t{m.target!r}\n".encode())
            snapshot_id = digest.hexdigest()
            repo.add_snapshot(
                SnapshotRow(
                    id=snapshot_id,
                    dataset_id=row.id,
                    spec=spec,
                    sample_count=len(members),
                    label_counts=dict(Counter(m.label for m in members if m.label is not None)),
                ),
                members,
            )
            return snapshot_id

    def snapshot_list(self, name: str) -> list[SnapshotSummary]:
        """The dataset's snapshots, oldest first, with the classes and label counts each froze."""
        return self.snapshot_page(name)[0]

    def snapshot_page(
        self, name: str, *, limit: int | None = None, offset: int = 0
    ) -> tuple[list[SnapshotSummary], int]:
        """One page of ``snapshot_list`` and how many snapshots the dataset has, paged in SQL."""
        with self.ctx.session() as session:
            repo = DatasetRepository(session)
            dataset_id = repo.get(name).id
            rows = repo.snapshots(dataset_id, limit=limit, offset=offset)
            return [_snapshot_summary(s, name) for s in rows], repo.count_snapshots(dataset_id)

    def take_snapshot(self, name: str) -> tuple[SnapshotSummary, bool]:
        """``snapshot``, and whether that content is new (False: the same snapshot was taken before)."""
        known = {s.id for s in self.snapshot_list(name)}
        snapshot_id = self.snapshot(name)
        with self.ctx.session() as session:
            row = DatasetRepository(session).get_snapshot(snapshot_id)
            return _snapshot_summary(row, name), snapshot_id not in known

    def load(self, snapshot_id: str, *, seed: int) -> LoadedSnapshot:
        """The snapshot's samples as train/val/test arrays, split deterministically by ``seed``."""
        with self.ctx.session() as session:
            repo = DatasetRepository(session)
            snap = repo.get_snapshot(snapshot_id)
            dataset = repo.dataset_of(snap)
            members = repo.snapshot_members(snapshot_id)
        spec = spec_from_dict(snap.spec)
        xs = np.stack([_decode(self.ctx.blobs.get(m.blob)) for m in members]).astype(np.float32)
        ys = _targets(spec, members)
        split = split_indices([m.blob for m in members], [m.label for m in members], seed=seed)
        parts = {name: np.array(getattr(split, name), dtype=int) for name in ("train", "val", "test")}
        arrays = Arrays(
            x_train=xs[parts["train"]],
            y_train=ys[parts["train"]],
            x_val=xs[parts["val"]],
            y_val=ys[parts["val"]],
            x_test=xs[parts["test"]],
            y_test=ys[parts["test"]],
        )
        return LoadedSnapshot(
            snapshot_id=snapshot_id,
            dataset=dataset.name,
            dataset_id=dataset.id,
            spec=spec,
            arrays=arrays,
            split_counts={k: len(v) for k, v in parts.items()},
            input_scaling=dataset.input_scaling,
            sandbox=dataset.sandbox,
        )


def _import_warnings(
    spec: DatasetSpec, samples: tuple[LabelledSample, ...], classes: list[str]
) -> tuple[str, ...]:
    """A single class, a feature with one value in every row, a regression target spanning orders
    of magnitude: each trains badly or quantizes badly, so the import says so."""
    warnings = []
    if spec.task is Task.CLASSIFICATION and len(classes) == 1:
        warnings.append(
            f"the dataset holds one class ({classes[0]!r}); a classifier needs at least two: "
            "import samples of another class before training"
        )
    if spec.kind is SampleKind.VECTOR and len(samples) >= 2:
        x = np.stack([s.x for s in samples])
        constant = [int(i) for i in np.flatnonzero(np.ptp(x, axis=0) == 0)]
        if constant:
            listed = ", ".join(map(str, constant[:10])) + (" …" if len(constant) > 10 else "")
            warnings.append(
                f"feature {listed} has the same value in every imported sample; it carries no information "
                "and input scaling passes it through unscaled"
            )
    targets = np.array([s.target for s in samples if s.target is not None], dtype=np.float64)
    if spec.task is Task.REGRESSION and len(targets) >= 2:
        span = float(np.ptp(targets))
        low, high = float(targets.min()), float(targets.max())
        if span > 1e6 or (low > 0 and high / low > 1e4):
            warnings.append(
                f"the regression target spans {low:.6g} to {high:.6g}; an int8 output has "
                f"256 steps over its range (about {span / 255:.3g} each), so expect the int8 variant to lose "
                "precision: consider predicting a scaled or logarithmic target"
            )
    return tuple(warnings)


def _snapshot_summary(row: SnapshotRow, dataset: str) -> SnapshotSummary:
    return SnapshotSummary(
        id=row.id,
        dataset=dataset,
        samples=row.sample_count,
        labels=list(row.spec.get("labels", [])),
        label_counts=dict(row.label_counts),
        created_at=iso(row.created_at),
    )


def _class_root(folder: Path, labels: tuple[str, ...]) -> Path:
    """The folder whose subfolders are the classes: ``folder`` or its lone wrapper folder."""
    entries = [p for p in folder.iterdir() if not p.name.startswith(".")]
    if len(entries) != 1 or not entries[0].is_dir() or entries[0].name in labels:
        return folder
    inner = [p for p in entries[0].iterdir() if not p.name.startswith(".")]
    return entries[0] if inner and all(p.is_dir() for p in inner) else folder


def _check_collected(spec: DatasetSpec, x: np.ndarray, label: str | None, where: str) -> None:
    spec.check_input(x, where)
    if label is None:
        return
    if spec.task is Task.REGRESSION:
        raise InvalidInput(f"{where}: a regression dataset takes numeric targets, not the label {label!r}")
    spec.check_sample(LabelledSample(x=x, source=where, label=label), where)


def _targets(spec: DatasetSpec, members: list[Member]) -> np.ndarray:
    """Class indices in the spec's label order, or float regression targets."""
    if spec.task is Task.CLASSIFICATION:
        index = {label: i for i, label in enumerate(spec.labels)}
        return np.array([index[m.label] for m in members], dtype=np.int32)
    return np.array([m.target for m in members], dtype=np.float32)

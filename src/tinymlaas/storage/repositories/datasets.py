"""The dataset aggregate: a dataset, its samples and its immutable snapshots."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import NamedTuple

from sqlalchemy import ColumnElement, and_, func, not_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tinymlaas.errors import Conflict, NotFound
from tinymlaas.storage.tables import (
    CollectedSampleRow,
    DatasetRow,
    SampleRow,
    SnapshotRow,
    SnapshotSampleRow,
)

__all__ = ["DatasetRepository", "Member", "SamplePoint", "SampleQuery"]


class Member(NamedTuple):
    """A sample as a snapshot sees it: content hash and the label or target it had."""

    blob: str
    label: str | None
    target: float | None


class SamplePoint(NamedTuple):
    """A stored sample as an overview of the whole dataset needs it: no source, no timestamps."""

    id: str
    blob: str
    label: str | None
    target: float | None


class SampleQuery(NamedTuple):
    """Which samples of a dataset to list; every condition given must hold."""

    label: str | None = None
    unlabelled: bool = False
    regression: bool = False  # unlabelled then means "no target" rather than "no label"
    source_prefixes: tuple[str, ...] = ()  # the source starts with one of these
    not_source_prefixes: tuple[str, ...] = ()  # the source starts with none of these


def _starts_with(prefix: str) -> ColumnElement[bool]:
    # LIKE would read '_' and '%' in a prefix as wildcards; comparing the leading characters does not.
    return func.substr(SampleRow.source, 1, len(prefix)) == prefix


class DatasetRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def find(self, name: str) -> DatasetRow | None:
        return self.session.scalar(select(DatasetRow).where(DatasetRow.name == name))

    def get(self, name: str) -> DatasetRow:
        row = self.find(name)
        if row is None:
            raise NotFound(f"no dataset named {name!r}; known datasets: {', '.join(self.names()) or 'none'}")
        return row

    def names(self, *, sandbox: bool = False, limit: int | None = None, offset: int = 0) -> list[str]:
        """By name, production datasets or (``sandbox``) those dry runs generated; names are unique,
        so pages never overlap."""
        query = select(DatasetRow.name).where(DatasetRow.sandbox == sandbox).order_by(DatasetRow.name)
        return list(self.session.scalars(query.offset(offset).limit(limit)))

    def count(self, *, sandbox: bool = False) -> int:
        """How many datasets ``names`` would list without paging."""
        query = select(func.count()).select_from(DatasetRow).where(DatasetRow.sandbox == sandbox)
        return self.session.scalar(query) or 0

    def add(self, row: DatasetRow) -> DatasetRow:
        if self.find(row.name) is not None:
            raise Conflict(f"a dataset named {row.name!r} already exists")
        self.session.add(row)
        self.session.flush()
        return row

    def sample_blobs(self, dataset_id: str) -> set[str]:
        return set(self.session.scalars(select(SampleRow.blob).where(SampleRow.dataset_id == dataset_id)))

    def add_samples(self, rows: Iterable[SampleRow]) -> None:
        self.session.add_all(rows)

    def add_sample_once(self, row: SampleRow) -> tuple[SampleRow, bool]:
        """Store ``row`` unless its content is in its dataset already: (the stored sample, added).

        Checking first is not enough when two uploads of the same content arrive at once: the unique
        content constraint lets one insert win and the other waits for it, then gets the winner's row.
        """
        try:
            with self.session.begin_nested():
                self.session.add(row)
        except IntegrityError:
            stored = self.sample_by_blob(row.dataset_id, row.blob)
            if stored is None:
                raise
            return stored, False
        return row, True

    def sample_by_blob(self, dataset_id: str, blob: str) -> SampleRow | None:
        return self.session.scalar(
            select(SampleRow).where(SampleRow.dataset_id == dataset_id, SampleRow.blob == blob)
        )

    def collected(self, dataset_id: str, sample_key: str) -> CollectedSampleRow | None:
        """The upload a device made under ``sample_key``, if it was stored before."""
        return self.session.get(CollectedSampleRow, (dataset_id, sample_key))

    def add_collected(self, row: CollectedSampleRow) -> None:
        # The tables have no ORM relationship to order inserts by, so the sample it names goes in first.
        self.session.flush()
        self.session.add(row)
        self.session.flush()

    def collected_count(self, dataset_id: str) -> int:
        """How many uploads devices made into the dataset (each stored once)."""
        count = self.session.scalar(
            select(func.count())
            .select_from(CollectedSampleRow)
            .where(CollectedSampleRow.dataset_id == dataset_id)
        )
        return count or 0

    def unlabelled_count(self, dataset_id: str, *, regression: bool) -> int:
        """Samples still waiting for a label (classification) or a target (regression)."""
        missing = SampleRow.target.is_(None) if regression else SampleRow.label.is_(None)
        count = self.session.scalar(
            select(func.count()).select_from(SampleRow).where(SampleRow.dataset_id == dataset_id, missing)
        )
        return count or 0

    def label_counts(self, dataset_id: str) -> dict[str | None, int]:
        rows = self.session.execute(
            select(SampleRow.label, func.count())
            .where(SampleRow.dataset_id == dataset_id)
            .group_by(SampleRow.label)
        )
        return {label: count for label, count in rows}

    def members(self, dataset_id: str) -> list[Member]:
        rows = self.session.execute(
            select(SampleRow.blob, SampleRow.label, SampleRow.target)
            .where(SampleRow.dataset_id == dataset_id)
            .order_by(SampleRow.blob)
        )
        return [Member(*row) for row in rows]

    def snapshots(self, dataset_id: str, *, limit: int | None = None, offset: int = 0) -> list[SnapshotRow]:
        """Oldest first; id breaks ties so pages never overlap."""
        query = (
            select(SnapshotRow)
            .where(SnapshotRow.dataset_id == dataset_id)
            .order_by(SnapshotRow.created_at, SnapshotRow.id)
        )
        return list(self.session.scalars(query.offset(offset).limit(limit)))

    def count_snapshots(self, dataset_id: str) -> int:
        query = select(func.count()).select_from(SnapshotRow).where(SnapshotRow.dataset_id == dataset_id)
        return self.session.scalar(query) or 0

    def get_snapshot(self, snapshot_id: str) -> SnapshotRow:
        row = self.session.get(SnapshotRow, snapshot_id)
        if row is None:
            raise NotFound(f"no snapshot {snapshot_id}")
        return row

    def add_snapshot(self, row: SnapshotRow, members: Iterable[Member]) -> None:
        """Store a snapshot once; the same content hash is the same snapshot."""
        if self.session.get(SnapshotRow, row.id) is not None:
            return
        self.session.add(row)
        self.session.flush()
        self.session.add_all(
            SnapshotSampleRow(snapshot_id=row.id, blob=m.blob, label=m.label, target=m.target)
            for m in members
        )

    def snapshot_members(self, snapshot_id: str) -> list[Member]:
        rows = self.session.execute(
            select(SnapshotSampleRow.blob, SnapshotSampleRow.label, SnapshotSampleRow.target)
            .where(SnapshotSampleRow.snapshot_id == snapshot_id)
            .order_by(SnapshotSampleRow.blob)
        )
        return [Member(*row) for row in rows]

    def dataset_of(self, snapshot: SnapshotRow) -> DatasetRow:
        return self.session.get_one(DatasetRow, snapshot.dataset_id)

    def find_samples(
        self, dataset_id: str, query: SampleQuery, *, limit: int, offset: int
    ) -> tuple[list[SampleRow], int]:
        """One page of the samples ``query`` selects, oldest first, and how many it selects in all."""
        conditions: list[ColumnElement[bool]] = [SampleRow.dataset_id == dataset_id]
        if query.label is not None:
            conditions.append(SampleRow.label == query.label)
        if query.unlabelled:
            conditions.append((SampleRow.target if query.regression else SampleRow.label).is_(None))
        if query.source_prefixes:
            conditions.append(or_(*(_starts_with(p) for p in query.source_prefixes)))
        conditions.extend(not_(_starts_with(p)) for p in query.not_source_prefixes)
        where = and_(*conditions)
        total = self.session.scalar(select(func.count()).select_from(SampleRow).where(where)) or 0
        rows = self.session.scalars(
            select(SampleRow)
            .where(where)
            .order_by(SampleRow.created_at, SampleRow.id)
            .limit(limit)
            .offset(offset)
        )
        return list(rows), total

    def sample_points(self, dataset_id: str) -> list[SamplePoint]:
        """Every sample of the dataset by id, which orders them the same way on every call."""
        rows = self.session.execute(
            select(SampleRow.id, SampleRow.blob, SampleRow.label, SampleRow.target)
            .where(SampleRow.dataset_id == dataset_id)
            .order_by(SampleRow.id)
        )
        return [SamplePoint(*row) for row in rows]

    def find_sample(self, dataset_id: str, sample_id: str) -> SampleRow | None:
        row = self.session.get(SampleRow, sample_id)
        return row if row is not None and row.dataset_id == dataset_id else None

    def samples_by_id(self, dataset_id: str, sample_ids: Collection[str]) -> list[SampleRow]:
        return list(
            self.session.scalars(
                select(SampleRow).where(SampleRow.dataset_id == dataset_id, SampleRow.id.in_(sample_ids))
            )
        )

    def set_labels(self, dataset_id: str, sample_ids: Collection[str], label: str | None) -> int:
        """Give the samples ``label`` (None clears it); how many rows changed."""
        result = self.session.execute(
            update(SampleRow)
            .where(SampleRow.dataset_id == dataset_id, SampleRow.id.in_(sample_ids))
            .values(label=label)
            .execution_options(synchronize_session="fetch")
        )
        return int(result.rowcount or 0)

"""The model aggregate: training runs, models, their variants and the modules compiled from them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, func, select, true
from sqlalchemy.orm import Session, selectinload

from tinymlaas.errors import InvalidInput, NotFound
from tinymlaas.storage.tables import (
    Base,
    DatasetRow,
    ModelRow,
    ModuleRow,
    SnapshotRow,
    TrainingRunRow,
    VariantRow,
)

__all__ = ["ModelRepository"]

RowT = TypeVar("RowT", bound=Base)


class ModelRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, row: RowT) -> RowT:
        """Insert and flush, so defaults (ids, timestamps) are filled in for the caller."""
        self.session.add(row)
        self.session.flush()
        return row

    def model(self, ref: str) -> ModelRow:
        """A model by id, ``name`` (newest version) or ``name:version``.

        A name means a production model when there is one, so a dry run's model of the same name is
        never taken for it; a sandbox model answers to its name only when no production model has it.
        """
        row = self.session.get(ModelRow, ref)
        if row is None:
            name, _, version = ref.partition(":")
            query = select(ModelRow).where(ModelRow.name == name)
            if version:
                if not version.isdigit():
                    raise InvalidInput(f"model reference {ref!r}: version must be a number")
                query = query.where(ModelRow.version == int(version))
            row = self.session.scalars(query.order_by(ModelRow.sandbox, ModelRow.version.desc())).first()
        if row is None:
            raise NotFound(f"no model {ref!r} (give a model id, a name, or name:version)")
        return row

    def models(
        self,
        *,
        name: str | None = None,
        sandbox: bool = False,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[ModelRow]:
        """Production models, or (``sandbox``) those dry runs trained, by name and version (id breaks
        any tie so pages never overlap), optionally only ``name``."""
        query = (
            select(ModelRow)
            .where(*_model_filter(name, sandbox))
            .order_by(ModelRow.name, ModelRow.version, ModelRow.id)
        )
        return list(self.session.scalars(query.offset(offset).limit(limit)))

    def count_models(self, *, name: str | None = None, sandbox: bool = False) -> int:
        """How many models ``models`` would list for ``name`` without paging."""
        query = select(func.count()).select_from(ModelRow).where(*_model_filter(name, sandbox))
        return self.session.scalar(query) or 0

    def models_with_lineage(self, *, sandbox: bool = False) -> list[ModelRow]:
        """``models`` with their runs, variants and modules, loaded by a few IN queries, not one per model."""
        query = (
            select(ModelRow)
            .where(ModelRow.sandbox == sandbox)
            .options(
                selectinload(ModelRow.run),
                selectinload(ModelRow.variants).selectinload(VariantRow.modules),
            )
            .order_by(ModelRow.name, ModelRow.version)
        )
        return list(self.session.scalars(query))

    def dataset_names(self, models: Sequence[ModelRow]) -> dict[str, str]:
        """Model id -> the name of the dataset it was trained or scored on: the model's own dataset, or
        else the dataset of its run's snapshot. Two queries, whatever the number of models."""
        snapshot_ids = {m.run.snapshot_id for m in models if m.dataset_id is None and m.run is not None}
        snapshot_query = select(SnapshotRow.id, SnapshotRow.dataset_id).where(
            SnapshotRow.id.in_(snapshot_ids)
        )
        snapshots = {snapshot: dataset for snapshot, dataset in self.session.execute(snapshot_query)}
        dataset_ids = {
            m.id: m.dataset_id or (snapshots.get(m.run.snapshot_id) if m.run is not None else None)
            for m in models
        }
        name_query = select(DatasetRow.id, DatasetRow.name).where(
            DatasetRow.id.in_({d for d in dataset_ids.values() if d is not None})
        )
        names = {dataset: name for dataset, name in self.session.execute(name_query)}
        return {model: names[d] for model, d in dataset_ids.items() if d in names}

    def next_version(self, name: str, *, sandbox: bool = False) -> int:
        """The next version of ``name``, counted among production or among sandbox models only, so a
        dry run never takes a version number from the production line."""
        query = select(func.max(ModelRow.version)).where(ModelRow.name == name, ModelRow.sandbox == sandbox)
        return (self.session.scalar(query) or 0) + 1

    def run(self, run_id: str) -> TrainingRunRow:
        return self.session.get_one(TrainingRunRow, run_id)

    def training_run(self, run_id: str) -> TrainingRunRow:
        """A run a person asked for by id: NotFound (not a database error) when there is none."""
        row = self.session.get(TrainingRunRow, run_id)
        if row is None:
            raise NotFound(f"no training run {run_id!r} (see the training runs list)")
        return row

    def runs(
        self,
        run_id: str | None = None,
        *,
        dataset: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[tuple[TrainingRunRow, SnapshotRow, str]]:
        """Every run on production data, or only ``run_id`` or those on ``dataset`` (sandbox or not, as
        they are asked for by name), newest first, with its snapshot and that snapshot's dataset."""
        query = (
            select(TrainingRunRow, SnapshotRow, DatasetRow.name)
            .join(SnapshotRow, TrainingRunRow.snapshot_id == SnapshotRow.id)
            .join(DatasetRow, SnapshotRow.dataset_id == DatasetRow.id)
            .order_by(TrainingRunRow.created_at.desc(), TrainingRunRow.id)
        )
        if run_id is not None:
            query = query.where(TrainingRunRow.id == run_id)
        query = query.where(_run_filter(dataset, everything=run_id is not None))
        rows = self.session.execute(query.offset(offset).limit(limit))
        return [(run, snapshot, name) for run, snapshot, name in rows]

    def count_runs(self, *, dataset: str | None = None) -> int:
        """How many runs ``runs`` would list for ``dataset`` without paging."""
        query = (
            select(func.count())
            .select_from(TrainingRunRow)
            .join(SnapshotRow, TrainingRunRow.snapshot_id == SnapshotRow.id)
            .join(DatasetRow, SnapshotRow.dataset_id == DatasetRow.id)
            .where(_run_filter(dataset))
        )
        return self.session.scalar(query) or 0

    def models_of_runs(self, run_ids: Sequence[str]) -> dict[str, ModelRow]:
        """Run id -> the model it produced, for the runs that produced one."""
        rows = self.session.scalars(select(ModelRow).where(ModelRow.training_run_id.in_(run_ids)))
        return {row.training_run_id: row for row in rows if row.training_run_id is not None}

    def variant(self, variant_id: str) -> VariantRow:
        row = self.session.get(VariantRow, variant_id)
        if row is None:
            raise NotFound(f"no variant {variant_id!r} (see 'tinymlaas models show MODEL')")
        return row

    def variants(self, model_id: str, *, limit: int | None = None, offset: int = 0) -> list[VariantRow]:
        """Oldest first, as ``ModelRow.variants`` lists them; id breaks ties so pages never overlap."""
        query = (
            select(VariantRow)
            .where(VariantRow.model_id == model_id)
            .order_by(VariantRow.created_at, VariantRow.id)
        )
        return list(self.session.scalars(query.offset(offset).limit(limit)))

    def scaling_of_tflite(self, blob: str) -> dict | None:
        """The input scaling of the newest model with a variant stored as exactly these bytes (``blob``,
        their sha256), if any: a module's ``model.tflite`` brought back keeps the scaling it needs."""
        query = (
            select(ModelRow.input_scaling)
            .join(VariantRow, VariantRow.model_id == ModelRow.id)
            .where(VariantRow.tflite_blob == blob, ModelRow.input_scaling.is_not(None))
            .order_by(ModelRow.created_at.desc())
            .limit(1)
        )
        return self.session.scalar(query)

    def count_variants(self, model_id: str) -> int:
        query = select(func.count()).select_from(VariantRow).where(VariantRow.model_id == model_id)
        return self.session.scalar(query) or 0

    def module(self, module_id: str) -> ModuleRow:
        row = self.session.get(ModuleRow, module_id)
        if row is None:
            raise NotFound(f"no module {module_id!r}")
        return row

    def all_modules(
        self,
        *,
        board_id: str | None = None,
        fits: bool | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[ModuleRow]:
        """Every production module, newest first, optionally only those for ``board_id`` or with that
        verdict; a dry run's modules are reached by id only."""
        query = _production_modules(select(ModuleRow)).order_by(ModuleRow.created_at.desc(), ModuleRow.id)
        query = query.where(*_module_filter(board_id, fits))
        return list(self.session.scalars(query.offset(offset).limit(limit)))

    def count_modules(self, *, board_id: str | None = None, fits: bool | None = None) -> int:
        """How many modules ``all_modules`` would list with these filters without paging."""
        query = _production_modules(select(func.count()).select_from(ModuleRow))
        return self.session.scalar(query.where(*_module_filter(board_id, fits))) or 0

    def in_sandbox(self, module: ModuleRow) -> bool:
        """Whether ``module`` was compiled from a dry run's model."""
        query = (
            select(ModelRow.sandbox)
            .join(VariantRow, VariantRow.model_id == ModelRow.id)
            .where(VariantRow.id == module.variant_id)
        )
        return bool(self.session.scalar(query))

    def modules(self, variant_ids: Sequence[str]) -> list[ModuleRow]:
        return list(
            self.session.scalars(
                select(ModuleRow).where(ModuleRow.variant_id.in_(variant_ids)).order_by(ModuleRow.created_at)
            )
        )


def _run_filter(dataset: str | None, *, everything: bool = False) -> ColumnElement[bool]:
    """Runs on ``dataset`` when named, else (unless ``everything``) runs on production data only."""
    if dataset is not None:
        return DatasetRow.name == dataset
    return true() if everything else DatasetRow.sandbox.is_(False)


def _model_filter(name: str | None, sandbox: bool) -> list[ColumnElement[bool]]:
    """The conditions ``models`` and ``count_models`` share, so a count always matches its list."""
    conditions: list[ColumnElement[bool]] = [ModelRow.sandbox == sandbox]
    if name is not None:
        conditions.append(ModelRow.name == name)
    return conditions


def _production_modules(query: Select[Any]) -> Select[Any]:
    """``query`` over modules narrowed to those of production models."""
    return (
        query.join(VariantRow, ModuleRow.variant_id == VariantRow.id)
        .join(ModelRow, VariantRow.model_id == ModelRow.id)
        .where(ModelRow.sandbox.is_(False))
    )


def _module_filter(board_id: str | None, fits: bool | None) -> list[ColumnElement[bool]]:
    """The conditions ``all_modules`` and ``count_modules`` share, so a count always matches its list."""
    conditions: list[ColumnElement[bool]] = []
    if board_id is not None:
        conditions.append(ModuleRow.board_id == board_id)
    if fits is not None:
        conditions.append(ModuleRow.fits == fits)
    return conditions

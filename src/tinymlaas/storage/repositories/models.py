"""The model aggregate: training runs, models, their variants and the modules compiled from them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tinymlaas.errors import InvalidInput, NotFound
from tinymlaas.storage.tables import Base, ModelRow, ModuleRow, TrainingRunRow, VariantRow

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
        """A model by id, ``name`` (newest version) or ``name:version``."""
        row = self.session.get(ModelRow, ref)
        if row is None:
            name, _, version = ref.partition(":")
            query = select(ModelRow).where(ModelRow.name == name)
            if version:
                if not version.isdigit():
                    raise InvalidInput(f"model reference {ref!r}: version must be a number")
                query = query.where(ModelRow.version == int(version))
            row = self.session.scalars(query.order_by(ModelRow.version.desc())).first()
        if row is None:
            raise NotFound(f"no model {ref!r} (give a model id, a name, or name:version)")
        return row

    def models(self) -> list[ModelRow]:
        return list(self.session.scalars(select(ModelRow).order_by(ModelRow.name, ModelRow.version)))

    def next_version(self, name: str) -> int:
        return (self.session.scalar(select(func.max(ModelRow.version)).where(ModelRow.name == name)) or 0) + 1

    def run(self, run_id: str) -> TrainingRunRow:
        return self.session.get_one(TrainingRunRow, run_id)

    def variant(self, variant_id: str) -> VariantRow:
        row = self.session.get(VariantRow, variant_id)
        if row is None:
            raise NotFound(f"no variant {variant_id!r} (see 'tinymlaas models show MODEL')")
        return row

    def variants(self, model_id: str) -> list[VariantRow]:
        return list(
            self.session.scalars(
                select(VariantRow).where(VariantRow.model_id == model_id).order_by(VariantRow.created_at)
            )
        )

    def module(self, module_id: str) -> ModuleRow:
        row = self.session.get(ModuleRow, module_id)
        if row is None:
            raise NotFound(f"no module {module_id!r}")
        return row

    def modules(self, variant_ids: Sequence[str]) -> list[ModuleRow]:
        return list(
            self.session.scalars(
                select(ModuleRow).where(ModuleRow.variant_id.in_(variant_ids)).order_by(ModuleRow.created_at)
            )
        )

"""The pipeline aggregate: a declared graph of stages and what applying it set up."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from tinymlaas.errors import NotFound
from tinymlaas.storage.tables import PipelineRow

__all__ = ["PipelineRepository"]


class PipelineRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, row: PipelineRow) -> PipelineRow:
        self.session.add(row)
        self.session.flush()
        return row

    def find(self, ref: str) -> PipelineRow | None:
        """By id, else by name."""
        row = self.session.get(PipelineRow, ref)
        if row is None:
            row = self.session.scalars(select(PipelineRow).where(PipelineRow.name == ref)).one_or_none()
        return row

    def get(self, ref: str) -> PipelineRow:
        row = self.find(ref)
        if row is None:
            raise NotFound(f"no pipeline {ref!r} (give its id or name)")
        return row

    def all(self, *, states: tuple[str, ...] | None = None) -> list[PipelineRow]:
        """Newest first; only those in ``states`` when given."""
        query = select(PipelineRow).order_by(PipelineRow.created_at.desc())
        if states is not None:
            query = query.where(PipelineRow.state.in_(states))
        return list(self.session.scalars(query))

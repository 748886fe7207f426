"""The audit trail: append-only rows of who changed what, read newest first a page at a time."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from tinymlaas.storage.tables import AuditEventRow

__all__ = ["AuditRepository"]


class AuditRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, row: AuditEventRow) -> AuditEventRow:
        self.session.add(row)
        self.session.flush()
        return row

    def count(self) -> int:
        return self.session.scalar(select(func.count()).select_from(AuditEventRow)) or 0

    def events(self, *, limit: int | None = None, offset: int = 0) -> list[AuditEventRow]:
        """Newest first; the id breaks ties between events recorded within one clock tick."""
        query = select(AuditEventRow).order_by(AuditEventRow.at.desc(), AuditEventRow.id.desc())
        return list(self.session.scalars(query.offset(offset).limit(limit)))

    def events_ending(self, suffixes: Sequence[str]) -> list[AuditEventRow]:
        """The events whose target path ends with one of ``suffixes``, oldest first; none for none."""
        if not suffixes:
            return []
        query = (
            select(AuditEventRow)
            .where(or_(*(AuditEventRow.target.endswith(suffix, autoescape=True) for suffix in suffixes)))
            .order_by(AuditEventRow.at, AuditEventRow.id)
        )
        return list(self.session.scalars(query))

"""The alert acknowledgement aggregate: who acknowledged which fleet alert, and when."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from tinymlaas.storage.tables import AlertAckRow

__all__ = ["AlertAckRepository"]


class AlertAckRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, row: AlertAckRow) -> AlertAckRow:
        self.session.add(row)
        self.session.flush()
        return row

    def get(self, alert_id: str) -> AlertAckRow | None:
        return self.session.get(AlertAckRow, alert_id)

    def all(self) -> dict[str, AlertAckRow]:
        """Alert id -> its acknowledgement, for every alert anyone acknowledged."""
        return {row.alert_id: row for row in self.session.scalars(select(AlertAckRow))}

"""The dashboard session aggregate: logins kept server-side, found by the hash of their cookie secret."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from tinymlaas.storage.tables import DashboardSessionRow

__all__ = ["DashboardSessionRepository"]


class DashboardSessionRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, row: DashboardSessionRow) -> DashboardSessionRow:
        self.session.add(row)
        self.session.flush()
        return row

    def get(self, session_id: str) -> DashboardSessionRow | None:
        return self.session.get(DashboardSessionRow, session_id)

    def end_for_token(self, token_id: str, at: datetime) -> int:
        """End every open session of a token; how many were open."""
        result = self.session.execute(
            update(DashboardSessionRow)
            .where(DashboardSessionRow.token_id == token_id, DashboardSessionRow.ended_at.is_(None))
            .values(ended_at=at)
        )
        return result.rowcount or 0  # type: ignore[attr-defined]

    def delete_finished_before(self, cutoff: datetime) -> int:
        """Forget sessions that expired or ended before ``cutoff``: they can never be used again."""
        result = self.session.execute(
            delete(DashboardSessionRow).where(
                (DashboardSessionRow.expires_at < cutoff) | (DashboardSessionRow.ended_at < cutoff)
            )
        )
        return result.rowcount or 0  # type: ignore[attr-defined]

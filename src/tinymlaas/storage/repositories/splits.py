"""The split plan aggregate: a variant's cuts between a device and the next node, and the built parts."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from tinymlaas.errors import NotFound
from tinymlaas.storage.tables import SplitPlanRow

__all__ = ["SplitPlanRepository"]


class SplitPlanRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, row: SplitPlanRow) -> SplitPlanRow:
        self.session.add(row)
        self.session.flush()
        return row

    def get(self, plan_id: str) -> SplitPlanRow:
        row = self.session.get(SplitPlanRow, plan_id)
        if row is None:
            raise NotFound(f"no split plan {plan_id!r}")
        return row

    def for_model(self, model_id: str | None = None, *, limit: int = 100) -> list[SplitPlanRow]:
        """Newest first; every model's when ``model_id`` is None."""
        query = select(SplitPlanRow).order_by(SplitPlanRow.created_at.desc()).limit(limit)
        if model_id is not None:
            query = query.where(SplitPlanRow.model_id == model_id)
        return list(self.session.scalars(query))

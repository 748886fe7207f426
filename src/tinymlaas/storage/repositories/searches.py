"""The search aggregate: one constraint-aware model search with its trials and fronts."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tinymlaas.errors import NotFound
from tinymlaas.storage.tables import SearchRow

__all__ = ["SearchRepository"]


class SearchRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, row: SearchRow) -> SearchRow:
        self.session.add(row)
        self.session.flush()
        return row

    def get(self, search_id: str) -> SearchRow:
        row = self.session.get(SearchRow, search_id)
        if row is None:
            raise NotFound(f"no search {search_id!r}")
        return row

    def newest(self, dataset: str | None = None, *, limit: int = 100, offset: int = 0) -> list[SearchRow]:
        """Newest first, id breaking ties so pages never overlap; every dataset's when ``dataset`` is None."""
        query = select(SearchRow).order_by(SearchRow.created_at.desc(), SearchRow.id)
        if dataset is not None:
            query = query.where(SearchRow.dataset == dataset)
        return list(self.session.scalars(query.limit(limit).offset(offset)))

    def count(self, dataset: str | None = None) -> int:
        query = select(func.count()).select_from(SearchRow)
        if dataset is not None:
            query = query.where(SearchRow.dataset == dataset)
        return int(self.session.scalar(query) or 0)

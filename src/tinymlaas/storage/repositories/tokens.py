"""The API token aggregate: who may call the REST API, by the hash of their secret."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tinymlaas.storage.tables import ApiTokenRow

__all__ = ["TokenRepository"]


class TokenRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, row: ApiTokenRow) -> ApiTokenRow:
        self.session.add(row)
        self.session.flush()
        return row

    def count(self) -> int:
        return self.session.scalar(select(func.count()).select_from(ApiTokenRow)) or 0

    def by_hash(self, secret_sha256: str) -> ApiTokenRow | None:
        return self.session.scalar(select(ApiTokenRow).where(ApiTokenRow.secret_sha256 == secret_sha256))

    def tokens(self, *, limit: int | None = None, offset: int = 0, lock: bool = False) -> list[ApiTokenRow]:
        """Oldest first, so the first admin token heads the list; id breaks ties so pages never overlap.

        ``lock`` holds the rows until the transaction ends, for a decision over the whole set (keeping
        the last admin token) that two transactions must not make at once on a server database.
        """
        query = select(ApiTokenRow).order_by(ApiTokenRow.created_at, ApiTokenRow.id)
        if lock:
            query = query.with_for_update()
        return list(self.session.scalars(query.offset(offset).limit(limit)))

"""The device credential aggregate: which DTLS PSK identity proves which LwM2M endpoint."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tinymlaas.storage.tables import DeviceCredentialRow

__all__ = ["CredentialRepository"]


class CredentialRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, row: DeviceCredentialRow) -> DeviceCredentialRow:
        self.session.add(row)
        self.session.flush()
        return row

    def get(self, endpoint: str) -> DeviceCredentialRow | None:
        return self.session.get(DeviceCredentialRow, endpoint)

    def by_identity(self, identity: str) -> DeviceCredentialRow | None:
        return self.session.scalar(
            select(DeviceCredentialRow).where(DeviceCredentialRow.identity == identity)
        )

    def active(self) -> list[DeviceCredentialRow]:
        """Every credential not revoked, for a server to load at start."""
        query = select(DeviceCredentialRow).where(DeviceCredentialRow.revoked_at.is_(None))
        return list(self.session.scalars(query))

    def page(self, *, limit: int | None = None, offset: int = 0) -> tuple[list[DeviceCredentialRow], int]:
        query = select(DeviceCredentialRow).order_by(DeviceCredentialRow.endpoint)
        count = self.session.scalar(select(func.count()).select_from(DeviceCredentialRow)) or 0
        return list(self.session.scalars(query.offset(offset).limit(limit))), count

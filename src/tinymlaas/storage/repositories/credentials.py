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

    def active_key(self, identity: str) -> tuple[bytes, str] | None:
        """(key, endpoint) of an identity whose credential is not revoked; None otherwise."""
        query = select(DeviceCredentialRow.psk, DeviceCredentialRow.endpoint).where(
            DeviceCredentialRow.identity == identity, DeviceCredentialRow.revoked_at.is_(None)
        )
        row = self.session.execute(query).first()
        return None if row is None else (bytes(row.psk), row.endpoint)

    def active_keys(self) -> list[tuple[str, bytes, str]]:
        """(identity, key, endpoint) of every credential not revoked, columns only: a server holds them."""
        query = select(
            DeviceCredentialRow.identity, DeviceCredentialRow.psk, DeviceCredentialRow.endpoint
        ).where(DeviceCredentialRow.revoked_at.is_(None))
        return [(identity, bytes(psk), endpoint) for identity, psk, endpoint in self.session.execute(query)]

    def page(self, *, limit: int | None = None, offset: int = 0) -> tuple[list[DeviceCredentialRow], int]:
        query = select(DeviceCredentialRow).order_by(DeviceCredentialRow.endpoint)
        count = self.session.scalar(select(func.count()).select_from(DeviceCredentialRow)) or 0
        return list(self.session.scalars(query.offset(offset).limit(limit))), count

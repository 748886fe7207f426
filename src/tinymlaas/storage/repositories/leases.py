"""Several server processes on one store: named leases (which of them does a piece of work right now)
and the servers' own rows (which of them are alive, renewed every few seconds).

A lease is taken or renewed by one conditional UPDATE, which succeeds only for its holder or once it
has expired; a lease never taken is INSERTed, in a savepoint, and a unique-key violation there means
another process inserted it first. Both statements are decided by the database, so two processes
asking at the same moment cannot both come away holding it, on SQLite or on PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, case, delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tinymlaas.errors import InvalidInput
from tinymlaas.storage.tables import LeaseRow, ServerRow

__all__ = ["MAX_LEASE_S", "LeaseRepository", "ServerRepository"]

MAX_LEASE_S = 3600.0  # a longer term would leave work undone for hours after its holder died
_NAME_CHARS = 64  # the width of the name and holder columns


def _checked(what: str, value: str) -> str:
    if not value or len(value) > _NAME_CHARS or not value.isprintable():
        raise InvalidInput(f"a lease {what} is 1 to {_NAME_CHARS} printable characters, got {value!r}")
    return value


def _utc(moment: datetime) -> datetime:
    """Aware UTC: SQLite keeps datetimes as text without their zone, so every one stored is UTC."""
    if moment.tzinfo is None:
        raise InvalidInput(f"a lease time needs a time zone, got {moment.isoformat()}")
    return moment.astimezone(UTC)


class LeaseRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def acquire(self, name: str, holder: str, now: datetime, ttl_s: float) -> bool:
        """Take or renew ``name`` for ``holder`` until ``now + ttl_s``; False while another holds it."""
        _checked("name", name)
        _checked("holder", holder)
        if not 0 < ttl_s <= MAX_LEASE_S:
            raise InvalidInput(f"a lease term is above 0 and at most {MAX_LEASE_S:g} s, got {ttl_s}")
        now = _utc(now)
        expires = now + timedelta(seconds=ttl_s)
        renewed = self.session.execute(
            update(LeaseRow)
            .where(
                and_(
                    LeaseRow.name == name,
                    or_(LeaseRow.holder == holder, LeaseRow.expires_at < now),
                )
            )
            .values(
                holder=holder,
                expires_at=expires,
                acquired_at=case((LeaseRow.holder == holder, LeaseRow.acquired_at), else_=now),
            )
            .execution_options(synchronize_session=False)
        )
        if renewed.rowcount == 1:  # type: ignore[attr-defined]
            return True
        try:
            with self.session.begin_nested():
                self.session.add(LeaseRow(name=name, holder=holder, expires_at=expires, acquired_at=now))
        except IntegrityError:
            return False  # the row exists and someone else holds it, or inserted it just now
        return True

    def release(self, name: str, holder: str) -> bool:
        """Give ``name`` up if ``holder`` holds it, so another process takes it at once; True if it did."""
        released = self.session.execute(
            delete(LeaseRow)
            .where(LeaseRow.name == name, LeaseRow.holder == holder)
            .execution_options(synchronize_session=False)
        )
        return released.rowcount == 1  # type: ignore[attr-defined]

    def holder(self, name: str, now: datetime | None = None) -> str | None:
        """Who holds ``name``; None if nobody does, or (given ``now``) the lease has run out."""
        row = self.session.scalar(select(LeaseRow).where(LeaseRow.name == name))
        if row is None:
            return None
        if now is not None:
            expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=UTC)
            if expires < _utc(now):
                return None
        return row.holder


class ServerRepository:
    """The server processes on this store: each announces itself, renews ``seen_at`` and leaves."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def announce(self, server_id: str, now: datetime) -> None:
        """Record ``server_id`` as running from ``now``."""
        _checked("server id", server_id)
        now = _utc(now)
        self.session.merge(ServerRow(id=server_id, started_at=now, seen_at=now))

    def renew(self, server_id: str, now: datetime) -> None:
        """``server_id`` is alive at ``now``; announced anew if its row was removed meanwhile."""
        now = _utc(now)
        renewed = self.session.execute(
            update(ServerRow)
            .where(ServerRow.id == server_id)
            .values(seen_at=now)
            .execution_options(synchronize_session=False)
        )
        if renewed.rowcount != 1:  # type: ignore[attr-defined]
            self.announce(server_id, now)

    def alive(self, now: datetime, within_s: float) -> list[str]:
        """The servers seen within ``within_s`` seconds before ``now``."""
        cutoff = _utc(now) - timedelta(seconds=within_s)
        return list(self.session.scalars(select(ServerRow.id).where(ServerRow.seen_at >= cutoff)))

    def leave(self, server_id: str) -> None:
        self.session.execute(delete(ServerRow).where(ServerRow.id == server_id))

    def forget_before(self, before: datetime) -> None:
        """Remove the rows of servers last seen before ``before`` (killed long ago)."""
        self.session.execute(delete(ServerRow).where(ServerRow.seen_at < _utc(before)))

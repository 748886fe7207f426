"""Dashboard sessions: a login kept server-side behind a random secret in the person's cookie.

The store keeps only the sha256 of the secret, so a copy of the database opens nobody's session, and
ending a session is a row update: logging out, revoking the token or reaching the expiry refuses the
cookie from then on, even if someone kept a copy of it. Every form a session posts carries a CSRF
token derived from the same secret, which a page from another site can neither read nor compute.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tinymlaas.services.auth import PERMISSIONS, Permission, Role, authenticate, token_expired
from tinymlaas.services.context import Context
from tinymlaas.storage.repositories import DashboardSessionRepository
from tinymlaas.storage.tables import ApiTokenRow, DashboardSessionRow

__all__ = [
    "SESSION_TTL",
    "DashboardSession",
    "csrf_matches",
    "end_session",
    "find_session",
    "start_session",
]

SESSION_TTL = timedelta(hours=12)  # a working day; then the person logs in again
# Finished sessions are kept this long, so "why was I logged out" can still be answered from the store.
_FINISHED_KEPT = timedelta(days=7)
_CSRF_CONTEXT = b"tinymlaas dashboard csrf v1"


@dataclass(frozen=True)
class DashboardSession:
    """Who is looking at the dashboard: the API token they logged in with, until ``expires_at``.

    ``csrf_token`` goes into every form the pages render and must come back with every post.
    """

    token_id: str
    name: str
    role: str
    expires_at: datetime
    csrf_token: str

    def can(self, permission: Permission) -> bool:
        return permission in PERMISSIONS[Role(self.role)]


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _csrf_token(secret: str) -> str:
    return hmac.new(secret.encode(), _CSRF_CONTEXT, hashlib.sha256).hexdigest()


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def start_session(ctx: Context, token_secret: str) -> tuple[DashboardSession, str]:
    """Log in with an API token: the new session and the secret for its cookie.

    Unauthenticated (or TokenExpired) as ``authenticate`` raises it. The session ends no later than
    the token does. Sessions that finished long ago are forgotten here, so logins keep the table small.
    """
    token = authenticate(ctx, token_secret)
    secret = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    expires = now + SESSION_TTL
    if token["expires_at"] is not None:
        expires = min(expires, datetime.fromisoformat(token["expires_at"]))
    with ctx.session() as session:
        repository = DashboardSessionRepository(session)
        repository.delete_finished_before(now - _FINISHED_KEPT)
        repository.add(
            DashboardSessionRow(
                id=_digest(secret), token_id=token["id"], created_at=now, expires_at=expires, ended_at=None
            )
        )
    view = DashboardSession(token["id"], token["name"], token["role"], expires, _csrf_token(secret))
    return view, secret


def find_session(ctx: Context, secret: str | None) -> DashboardSession | None:
    """The live session a cookie secret opens; None when it is unknown, ended, expired, or its token
    was revoked or has expired since."""
    if not secret:
        return None
    now = datetime.now(UTC)
    with ctx.session() as session:
        row = DashboardSessionRepository(session).get(_digest(secret))
        if row is None or row.ended_at is not None or _aware(row.expires_at) <= now:
            return None
        token = session.get(ApiTokenRow, row.token_id)
        if token is None or token.revoked or token_expired(token, now):
            return None
        return DashboardSession(token.id, token.name, token.role, _aware(row.expires_at), _csrf_token(secret))


def end_session(ctx: Context, secret: str | None) -> bool:
    """Log out: the cookie is refused from now on, wherever a copy of it is. Whether one was open."""
    if not secret:
        return False
    with ctx.session() as session:
        row = DashboardSessionRepository(session).get(_digest(secret))
        if row is None or row.ended_at is not None:
            return False
        row.ended_at = datetime.now(UTC)
        return True


def csrf_matches(session: DashboardSession, sent: str | None) -> bool:
    """Whether a post carries this session's CSRF token, compared in constant time."""
    return sent is not None and hmac.compare_digest(session.csrf_token.encode(), sent.encode())

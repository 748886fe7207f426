"""API tokens and roles: who may read or change what through the REST API.

A token's secret is shown once, when it is made; the store keeps only its sha256, so a copy of the
database lets nobody call the API. Roles are fixed sets of permissions, one per resource and action,
so a route asks for what it does (``datasets:write``) rather than for a role.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from tinymlaas.errors import Conflict, InvalidInput, NotFound
from tinymlaas.services._reports import iso
from tinymlaas.services.context import Context, new_id
from tinymlaas.storage.repositories import DashboardSessionRepository, TokenRepository
from tinymlaas.storage.tables import ApiTokenRow

__all__ = [
    "PERMISSIONS",
    "Permission",
    "Role",
    "TokenExpired",
    "Unauthenticated",
    "authenticate",
    "create_token",
    "ensure_first_admin",
    "list_tokens",
    "parse_duration",
    "parse_role",
    "revoke_token",
    "token_expired",
    "token_view",
    "tokens_page",
]

# Secrets start with this, so a leaked one is recognisable by secret scanners and in logs.
SECRET_PREFIX = "tmls_"
# How stale ``last_used_at`` may get: refreshing it on every request would make every read a write.
_LAST_USED_RESOLUTION = timedelta(minutes=1)
_DURATION = re.compile(r"(\d+)([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
# Past this an expiry means nothing but a date the store may not be able to keep.
_LONGEST_EXPIRY = timedelta(days=100 * 365)


class Role(StrEnum):
    ADMIN = "admin"  # everything, tokens included
    DATA_SCIENTIST = "data-scientist"  # datasets, training, models
    OPERATOR = "operator"  # devices and deployments (campaigns)
    VIEWER = "viewer"  # reads only: dashboards, cost, and what they show


class Permission(StrEnum):
    """``resource:action``: reads are ``read``, anything that changes state is ``write``."""

    BOARDS_READ = "boards:read"
    DATASETS_READ = "datasets:read"
    DATASETS_WRITE = "datasets:write"
    TRAINING_WRITE = "training:write"
    MODELS_READ = "models:read"
    MODELS_WRITE = "models:write"
    DEVICES_READ = "devices:read"
    DEVICES_WRITE = "devices:write"
    DEPLOYMENTS_READ = "deployments:read"
    DEPLOYMENTS_WRITE = "deployments:write"
    JOBS_READ = "jobs:read"
    DASHBOARDS_READ = "dashboards:read"
    COST_READ = "cost:read"
    TOKENS_READ = "tokens:read"
    TOKENS_WRITE = "tokens:write"
    AUDIT_READ = "audit:read"


# Who holds which token and who did what are for admins alone.
_ADMIN_READS = {Permission.TOKENS_READ, Permission.AUDIT_READ}
_READS = frozenset(p for p in Permission if p.endswith(":read") and p not in _ADMIN_READS)

PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.DATA_SCIENTIST: _READS
    | {Permission.DATASETS_WRITE, Permission.TRAINING_WRITE, Permission.MODELS_WRITE},
    Role.OPERATOR: _READS | {Permission.DEVICES_WRITE, Permission.DEPLOYMENTS_WRITE},
    Role.VIEWER: _READS,
}


class Unauthenticated(Exception):
    """No token, or one that is unknown or revoked: the caller is nobody (HTTP 401)."""


class TokenExpired(Unauthenticated):
    """A token past its ``expires_at``: refused like an unknown one, but saying why, so its holder
    asks for a new token rather than suspecting a typo."""


def _aware(at: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every time the store keeps is UTC."""
    return at if at is None or at.tzinfo else at.replace(tzinfo=UTC)


def token_expired(row: ApiTokenRow, now: datetime) -> bool:
    expires = _aware(row.expires_at)
    return expires is not None and expires <= now


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def token_view(row: ApiTokenRow) -> dict[str, Any]:
    """A token as the CLI and API show it: never its secret, which is not stored."""
    return {
        "id": row.id,
        "name": row.name,
        "role": row.role,
        "permissions": sorted(PERMISSIONS[Role(row.role)]),
        "created_at": iso(row.created_at),
        "last_used_at": iso(row.last_used_at),
        "expires_at": iso(row.expires_at),
        "revoked": row.revoked,
    }


def parse_role(text: str) -> Role:
    try:
        return Role(text)
    except ValueError:
        raise InvalidInput(f"no role {text!r}; the roles are {', '.join(r.value for r in Role)}") from None


def parse_duration(text: str) -> timedelta:
    """``30d``, ``12h``, ``1w2d``: a positive span of weeks, days, hours, minutes and seconds."""
    cleaned = text.strip().lower()
    parts = _DURATION.findall(cleaned)
    if not parts or "".join(n + u for n, u in parts) != cleaned:
        raise InvalidInput(
            f"{text!r} is not a duration; write a number and a unit, s m h d or w (like 30d or 12h)"
        )
    try:
        span = sum((timedelta(**{_UNITS[unit]: int(number)}) for number, unit in parts), timedelta())
    except OverflowError:
        span = _LONGEST_EXPIRY * 2
    if span <= timedelta():
        raise InvalidInput(f"the duration {text!r} is not positive")
    if span > _LONGEST_EXPIRY:
        raise InvalidInput(
            f"the duration {text!r} is over {_LONGEST_EXPIRY.days} days; "
            "for a token that never expires, give no expiry"
        )
    return span


def _insert(
    repo: TokenRepository, role: Role, name: str, expires_in: timedelta | None = None
) -> tuple[ApiTokenRow, str]:
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    row = ApiTokenRow(
        id=new_id("tok"),
        name=name or role.value,
        role=role.value,
        secret_sha256=_digest(secret),
        created_at=now,
        revoked=False,
        expires_at=None if expires_in is None else now + expires_in,
    )
    return repo.add(row), secret


def create_token(
    ctx: Context, role: Role | str, name: str = "", *, expires_in: timedelta | str | None = None
) -> tuple[dict[str, Any], str]:
    """A new token and its secret; the caller must hand the secret over now, it cannot be read back.

    With ``expires_in`` (a span, or text like ``30d``) the token is refused once that much time has
    passed; without it, it lasts until revoked.
    """
    role = parse_role(str(role))
    span = parse_duration(expires_in) if isinstance(expires_in, str) else expires_in
    if span is not None and span <= timedelta():
        raise InvalidInput(f"a token must expire in the future, not in {span}")
    with ctx.session() as session:
        row, secret = _insert(TokenRepository(session), role, name, span)
        return token_view(row), secret


def list_tokens(ctx: Context) -> list[dict[str, Any]]:
    """Every token, oldest first, revoked ones included."""
    return tokens_page(ctx)[0]


def tokens_page(
    ctx: Context, *, limit: int | None = None, offset: int = 0
) -> tuple[list[dict[str, Any]], int]:
    """One page of ``list_tokens`` and how many tokens there are in all, paged in SQL so a page
    never loads the whole table."""
    with ctx.session() as session:
        repository = TokenRepository(session)
        return [token_view(row) for row in repository.tokens(limit=limit, offset=offset)], repository.count()


def revoke_token(ctx: Context, token_id: str) -> dict[str, Any]:
    """Revoke a token: its secret gets 401 from now on and its dashboard sessions end. Revoking a
    revoked token changes nothing.

    The last unrevoked admin token is kept (Conflict): without it nobody could manage tokens over
    HTTP until someone on the server host made a new one.
    """
    with ctx.session() as session:
        tokens = TokenRepository(session).tokens(lock=True)
        row = next((t for t in tokens if t.id == token_id), None)
        if row is None:
            raise NotFound(f"no token {token_id!r}; list them with GET /tokens or 'tinymlaas tokens list'")
        admins = [t for t in tokens if t.role == Role.ADMIN and not t.revoked]
        if admins == [row]:
            raise Conflict(
                f"token {token_id} is the last unrevoked admin token; make another admin token first"
            )
        row.revoked = True
        DashboardSessionRepository(session).end_for_token(row.id, datetime.now(UTC))
        return token_view(row)


def authenticate(ctx: Context, secret: str) -> dict[str, Any]:
    """The token ``secret`` belongs to; Unauthenticated if none does or it was revoked, TokenExpired
    once it is past its expiry."""
    digest = _digest(secret)
    now = datetime.now(UTC)
    with ctx.session() as session:
        row = TokenRepository(session).by_hash(digest)
        if row is None or not hmac.compare_digest(row.secret_sha256, digest) or row.revoked:
            raise Unauthenticated("unknown or revoked token")
        if token_expired(row, now):
            raise TokenExpired(f"token expired at {iso(row.expires_at)}; ask an admin for a new one")
        last = _aware(row.last_used_at)
        if last is None or last < now - _LAST_USED_RESOLUTION:
            row.last_used_at = now
        return token_view(row)


def ensure_first_admin(ctx: Context) -> str | None:
    """An admin token's secret when the store has no token at all, else None.

    Makes a fresh server usable without a separate setup step, and never adds a second admin behind
    an operator's back once any token exists.
    """
    with ctx.session() as session:
        repo = TokenRepository(session)
        if repo.count():
            return None
        return _insert(repo, Role.ADMIN, "first admin")[1]

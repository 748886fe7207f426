"""The audit trail: who changed what and with which outcome, for every state-changing request.

The HTTP layer records one event per POST, PUT, PATCH or DELETE once its answer is known, refusals
included, and the CLI records the commands run on the server host; admins read the trail newest first.
An actor is named as people read it: ``token <name> (<id>)``, ``device <endpoint>``, ``cli`` or
``anonymous``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tinymlaas.services._reports import iso
from tinymlaas.services.context import Context
from tinymlaas.storage.repositories import AuditRepository
from tinymlaas.storage.tables import AuditEventRow

__all__ = [
    "ANONYMOUS",
    "CLI_ACTOR",
    "NO_ROLE",
    "audit_page",
    "outcome_of",
    "record",
    "token_actor",
]

CLI_ACTOR = "cli"  # a command run on the server host, which needs no token
ANONYMOUS = "anonymous"  # a request that named no one, or no one the server knows
NO_ROLE = "-"

# The widths of the audit_events columns: a longer value is cut, never refused, so recording never fails.
_ACTOR_LEN, _ROLE_LEN, _ACTION_LEN, _TARGET_LEN = 160, 32, 64, 256


def token_actor(token_id: str, name: str) -> str:
    return f"token {name} ({token_id})"


def outcome_of(status: int) -> str:
    """``ok``, ``denied`` (401 or 403: the caller was not let in) or ``failed`` (any other error)."""
    if status in (401, 403):
        return "denied"
    return "failed" if status >= 400 else "ok"


def record(
    ctx: Context,
    *,
    actor: str,
    role: str,
    action: str,
    target: str,
    detail: dict[str, Any] | None = None,
) -> None:
    with ctx.session() as session:
        AuditRepository(session).add(
            AuditEventRow(
                at=datetime.now(UTC),
                actor=actor[:_ACTOR_LEN],
                role=(role or NO_ROLE)[:_ROLE_LEN],
                action=action[:_ACTION_LEN],
                target=target[:_TARGET_LEN],
                detail=detail or {},
            )
        )


def _view(row: AuditEventRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "at": iso(row.at),
        "actor": row.actor,
        "role": row.role,
        "action": row.action,
        "target": row.target,
        "detail": row.detail,
    }


def audit_page(
    ctx: Context, *, limit: int | None = None, offset: int = 0
) -> tuple[list[dict[str, Any]], int]:
    """One page of events, newest first, and how many there are in all; paged in SQL."""
    with ctx.session() as session:
        repository = AuditRepository(session)
        return [_view(row) for row in repository.events(limit=limit, offset=offset)], repository.count()

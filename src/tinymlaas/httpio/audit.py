"""One audit event per state-changing HTTP request, API and dashboard alike, once its answer is known.

``AuditTrail`` wraps the whole application, so no route can forget to record and refusals that
happen before any route code runs (no token, a forged form) are recorded too. What the middleware
cannot see for itself, the adapters' authentication dependencies tell it through the request state:
who the caller is (``note_actor``) and that a request was turned away without a 401 or 403 status,
as the dashboard does when it sends a person to the login form (``note_denied``).
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tinymlaas.services.audit import ANONYMOUS, NO_ROLE, outcome_of, record
from tinymlaas.services.context import Context

__all__ = ["AuditTrail", "note_actor", "note_denied"]

_STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_ACTOR = "audit_actor"
_DENIED = "audit_denied"

_log = logging.getLogger(__name__)


def note_actor(request: Request, actor: str, role: str) -> None:
    """Name who made this request, for its audit event."""
    setattr(request.state, _ACTOR, (actor, role))


def note_denied(request: Request) -> None:
    """Record this request as denied whatever its status (a redirect to the login form, say)."""
    setattr(request.state, _DENIED, True)


class AuditTrail:
    """ASGI middleware recording every POST, PUT, PATCH and DELETE with its outcome."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _STATE_CHANGING:
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})
        status = 500  # what the caller gets if the application raises before answering

        async def remember_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, remember_status)
        finally:
            await self._record(scope, state, status)

    async def _record(self, scope: Scope, state: dict[str, Any], status: int) -> None:
        context: Context = scope["app"].state.context
        path: str = scope["path"]
        route = scope.get("route")
        adapter = "api" if path.startswith("/api/") else "dashboard"
        actor, role = state.get(_ACTOR, (ANONYMOUS, NO_ROLE))
        outcome = "denied" if state.get(_DENIED) else outcome_of(status)
        detail = {"method": scope["method"], "path": path, "status": status, "outcome": outcome}
        if scope.get("path_params"):
            detail["path_params"] = {k: str(v) for k, v in scope["path_params"].items()}
        action = f"{adapter}:{getattr(route, 'name', None) or scope['method'].lower()}"
        try:
            await anyio.to_thread.run_sync(
                partial(record, context, actor=actor, role=role, action=action, target=path, detail=detail)
            )
        except Exception:
            # The request has been answered; a store that cannot take the event must not turn it into
            # a failure, but an operator has to hear that the trail has a gap.
            _log.exception("could not record the audit event for %s %s", scope["method"], path)

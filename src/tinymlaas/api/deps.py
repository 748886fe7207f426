"""What routes depend on: the service context, the job executor, and the bearer token a change requires."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypeVar

from fastapi import Depends, HTTPException, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from tinymlaas.httpio.audit import note_actor
from tinymlaas.httpio.bounds import BEARER, requires
from tinymlaas.jobs import Executor
from tinymlaas.services.audit import token_actor
from tinymlaas.services.auth import PERMISSIONS, Permission, Role, Unauthenticated, authenticate
from tinymlaas.services.context import Context

__all__ = [
    "ContextDep",
    "ExecutorDep",
    "Page",
    "authenticated",
    "authorize",
    "bearer_refusal",
    "get_context",
    "get_executor",
    "page",
    "require",
]

_T = TypeVar("_T")

# auto_error=False: a missing token is answered by ``require`` as a problem document, not FastAPI's 403.
_bearer = HTTPBearer(auto_error=False, description="An API token: 'tinymlaas tokens create --role ROLE'.")
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def get_context(request: Request) -> Context:
    return request.app.state.context


ContextDep = Annotated[Context, Depends(get_context)]


def bearer_refusal(context: Context, secret: str) -> str | None:
    """Why ``secret`` is refused, or None: lets a body be refused before any of it is read."""
    try:
        authenticate(context, secret)
    except Unauthenticated as exc:
        return str(exc)
    return None


@requires(BEARER)
def authenticated(
    request: Request,
    context: ContextDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> dict[str, Any]:
    """Any valid token, whatever its role: for a route that can only tell what it needs from the request.

    401 (with a Bearer challenge) when there is no token or it is unknown, revoked or expired. The
    token is named in the request's audit event, a refusal by its role included.
    """
    if credentials is None:
        raise HTTPException(401, "this needs an API token (Authorization: Bearer ...)", _CHALLENGE)
    try:
        token = authenticate(context, credentials.credentials)
    except Unauthenticated as exc:
        raise HTTPException(401, str(exc), _CHALLENGE) from exc
    note_actor(request, token_actor(token["id"], token["name"]), token["role"])
    return token


def authorize(token: dict[str, Any], permission: Permission) -> None:
    """403 unless the token's role holds ``permission``."""
    if permission not in PERMISSIONS[Role(token["role"])]:
        raise HTTPException(403, f"role {token['role']!r} may not {permission.value}")


def require(permission: Permission) -> Callable[..., dict[str, Any]]:
    """A dependency that lets through only a valid token whose role holds ``permission``.

    401 (with a Bearer challenge) when there is no token or it is unknown or revoked; 403 when the
    token is fine but its role may not do this.
    """

    def check(token: Annotated[dict[str, Any], Depends(authenticated)]) -> dict[str, Any]:
        authorize(token, permission)
        return token

    return check


def get_executor(request: Request) -> Executor | None:
    """The server's job executor; None where the app runs without one and jobs wait QUEUED."""
    return request.app.state.executor


ExecutorDep = Annotated[Executor | None, Depends(get_executor)]


MAX_OFFSET = 2**31 - 1
"""Far past any real list, and small enough that ``offset + limit`` stays inside SQL's 64-bit integers."""


class Page:
    """``limit``/``offset`` query parameters for lists; ``count`` in a response is the total before paging."""

    def __init__(
        self,
        limit: Annotated[int, Query(ge=1, le=1000, description="At most this many items.")] = 100,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Skip this many items first.")] = 0,
    ) -> None:
        self.limit = limit
        self.offset = offset


def page(items: Sequence[_T], paging: Page) -> list[_T]:
    return list(items[paging.offset : paging.offset + paging.limit])

"""What dashboard pages depend on: the service context, the logged-in session, and rendering.

A page asks for ``Viewer`` (any logged-in person) or ``needs(permission)``; without a live session the
request is answered by a redirect to ``/login`` (``LoginRequired``), and a session whose role lacks the
permission gets a 403 page. Pages stay thin: call a service, summarise, ``render``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from tinymlaas.errors import TinymlaasError
from tinymlaas.jobs import Executor
from tinymlaas.services.auth import PERMISSIONS, Permission, Role, token_is_live
from tinymlaas.services.context import Context
from tinymlaas.web.sessions import SESSION_COOKIE, DashboardSession, open_session, session_key

__all__ = [
    "POLL_INTERVAL_S",
    "ContextDep",
    "ExecutorDep",
    "Forbidden",
    "LoginRequired",
    "Viewer",
    "can",
    "error_page",
    "needs",
    "render",
    "templates",
]

POLL_INTERVAL_S = 3  # how often an open page re-fetches its live part while something runs

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
templates.env.globals["poll_ms"] = POLL_INTERVAL_S * 1000


class LoginRequired(Exception):
    """No live session: the app answers with a redirect to the login form, back to ``path`` after."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


class Forbidden(Exception):
    """The session's role may not do this: the app answers with a 403 page naming the permission."""

    def __init__(self, session: DashboardSession, permission: Permission) -> None:
        super().__init__(f"role {session.role!r} may not {permission.value}")
        self.session = session


def _context(request: Request) -> Context:
    return request.app.state.context


ContextDep = Annotated[Context, Depends(_context)]


def _executor(request: Request) -> Executor | None:
    return getattr(request.app.state, "executor", None)


ExecutorDep = Annotated[Executor | None, Depends(_executor)]


def _session(request: Request, context: ContextDep) -> DashboardSession:
    """The logged-in session, if its cookie is valid and its token still exists unrevoked."""
    session = open_session(
        request.cookies.get(SESSION_COOKIE), session_key(context.settings.session_key_file)
    )
    if session is not None:
        live = token_is_live(context, session.token_id)
        if live and Permission.DASHBOARDS_READ in PERMISSIONS[Role(session.role)]:
            return session
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    raise LoginRequired(path)


Viewer = Annotated[DashboardSession, Depends(_session)]


def can(session: DashboardSession, permission: Permission) -> bool:
    return permission in PERMISSIONS[Role(session.role)]


def needs(permission: Permission) -> Callable[..., DashboardSession]:
    """A dependency letting through only a session whose role holds ``permission``."""

    def check(session: Viewer) -> DashboardSession:
        if not can(session, permission):
            raise Forbidden(session, permission)
        return session

    return check


def error_page(request: Request, exc: TinymlaasError) -> HTMLResponse:
    """A service error a page did not handle itself, with its status; the menu shows if logged in."""
    try:
        session: DashboardSession | None = _session(request, _context(request))
    except LoginRequired:
        session = None
    return render(request, "error.html", session, exc.http_status, title=exc.title, detail=exc.detail)


def render(
    request: Request, name: str, session: DashboardSession | None, status: int = 200, **values: Any
) -> HTMLResponse:
    """A template with the session (for the menu and what buttons to offer) and ``can`` in scope."""
    return templates.TemplateResponse(
        request,
        name,
        {"session": session, "can": (lambda p: session is not None and can(session, p)), **values},
        status_code=status,
    )

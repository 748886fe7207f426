"""What dashboard pages depend on: the service context, the logged-in session, and rendering.

A page asks for ``Viewer`` (any logged-in person) or ``needs(permission)``; without a live session the
request is answered by a redirect to ``/login`` (``LoginRequired``), and a session whose role lacks the
permission gets a 403 page. Every state-changing request must come from the dashboard's own pages
(``same_origin``) and, once logged in, carry the session's CSRF token (``csrf_protected``); either
refusal is a 403 page saying which. Pages stay thin: call a service, summarise, ``render``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from tinymlaas.errors import TinymlaasError
from tinymlaas.httpio.audit import note_actor, note_denied
from tinymlaas.httpio.bounds import Credential, requires
from tinymlaas.jobs import Executor
from tinymlaas.services.audit import token_actor
from tinymlaas.services.auth import Permission
from tinymlaas.services.context import Context
from tinymlaas.services.sessions import csrf_matches, find_session
from tinymlaas.web.chart_text import describe
from tinymlaas.web.humanize import exact_time, relative_time
from tinymlaas.web.sessions import (
    CSRF_FIELD,
    CSRF_HEADER,
    SESSION_COOKIE,
    DashboardSession,
    csrf_input,
    session_secret,
)

__all__ = [
    "POLL_INTERVAL_S",
    "ContextDep",
    "ExecutorDep",
    "Forbidden",
    "LoginRequired",
    "Refused",
    "Viewer",
    "can",
    "csrf_protected",
    "error_page",
    "needs",
    "render",
    "same_origin",
    "templates",
]

POLL_INTERVAL_S = 3  # how often an open page re-fetches its live part while something runs

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_SESSION_STATE = "dashboard_session"
_UNSET = object()

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
templates.env.globals["poll_ms"] = POLL_INTERVAL_S * 1000
templates.env.filters["ago"] = relative_time
templates.env.filters["exact"] = exact_time
templates.env.filters["describe"] = describe


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


class Refused(Exception):
    """A post the dashboard will not act on, whoever sent it: a 403 page saying why."""

    def __init__(self, session: DashboardSession | None, reason: str) -> None:
        super().__init__(reason)
        self.session = session


def _context(request: Request) -> Context:
    return request.app.state.context


ContextDep = Annotated[Context, Depends(_context)]


def _executor(request: Request) -> Executor | None:
    return getattr(request.app.state, "executor", None)


ExecutorDep = Annotated[Executor | None, Depends(_executor)]


def _current_session(request: Request, context: Context) -> DashboardSession | None:
    """The live session the cookie opens, looked up once per request and named in its audit event."""
    session = getattr(request.state, _SESSION_STATE, _UNSET)
    if session is _UNSET:
        session = find_session(context, session_secret(request))
        if session is not None:
            note_actor(request, token_actor(session.token_id, session.name), session.role)
        setattr(request.state, _SESSION_STATE, session)
    return session  # type: ignore[return-value]


def _optional_session(request: Request, context: ContextDep) -> DashboardSession | None:
    return _current_session(request, context)


OptionalViewer = Annotated[DashboardSession | None, Depends(_optional_session)]


@requires(Credential(cookie=SESSION_COOKIE, login="/login"))
def _session(request: Request, session: OptionalViewer) -> DashboardSession:
    """The logged-in session, if its cookie opens one that is live and may read dashboards."""
    if session is not None and session.can(Permission.DASHBOARDS_READ):
        return session
    if request.method not in _SAFE_METHODS:
        note_denied(request)
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    raise LoginRequired(path)


Viewer = Annotated[DashboardSession, Depends(_session)]


def _origin(scheme: str, netloc: str) -> str | None:
    """``scheme://host[:port]`` as browsers compare it, the scheme's own port left out; None if it
    is no origin at all (Origin: null, a garbled header)."""
    try:
        parts = urlsplit(f"{scheme.lower()}://{netloc}")
        port = parts.port
    except ValueError:
        return None
    if not parts.scheme or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    shown = "" if port is None or _DEFAULT_PORTS.get(parts.scheme) == port else f":{port}"
    return f"{parts.scheme}://{host}{shown}"


def same_origin(request: Request, session: OptionalViewer) -> None:
    """Refuse a state-changing request unless its Origin (or, lacking one, its Referer) is this server.

    Browsers send Origin with every form post, so a post without either header came from no page of
    ours; a page on another site that makes the browser post here names that site and is refused even
    though the browser sent the session cookie along.
    """
    if request.method in _SAFE_METHODS:
        return
    expected = _origin(request.url.scheme, request.headers.get("host", ""))
    sent = request.headers.get("origin") or request.headers.get("referer")
    if not sent:
        raise Refused(
            session, "request refused: it names no Origin or Referer, so it came from no dashboard page"
        )
    parts = urlsplit(sent)
    origin = _origin(parts.scheme, parts.netloc)
    if expected is None or origin != expected:
        raise Refused(
            session, f"cross-origin request refused: it came from {origin or sent!r}, not from {expected}"
        )


async def csrf_protected(request: Request, session: OptionalViewer) -> None:
    """Refuse a logged-in session's post that lacks the session's CSRF token.

    Without a session there is nothing to protect: the route's own login check answers. The token comes
    in the form's hidden field or, from a script, in the ``X-CSRF-Token`` header.
    """
    if request.method in _SAFE_METHODS or session is None:
        return
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        field = (await request.form()).get(CSRF_FIELD)
        sent = field if isinstance(field, str) else None
    if not csrf_matches(session, sent):
        raise Refused(
            session,
            "the form carries no valid CSRF token for this session; reload the page and submit it again",
        )


def can(session: DashboardSession, permission: Permission) -> bool:
    return session.can(permission)


def needs(permission: Permission) -> Callable[..., DashboardSession]:
    """A dependency letting through only a session whose role holds ``permission``."""

    def check(session: Viewer) -> DashboardSession:
        if not can(session, permission):
            raise Forbidden(session, permission)
        return session

    return check


def error_page(request: Request, exc: TinymlaasError) -> HTMLResponse:
    """A service error a page did not handle itself, with its status; the menu shows if logged in."""
    session = _current_session(request, _context(request))
    return render(request, "error.html", session, exc.http_status, title=exc.title, detail=exc.detail)


def render(
    request: Request, name: str, session: DashboardSession | None, status: int = 200, **values: Any
) -> HTMLResponse:
    """A template with the session (for the menu and what buttons to offer), ``can`` and the CSRF
    field every form must carry (``csrf_field()``) in scope."""
    return templates.TemplateResponse(
        request,
        name,
        {
            "session": session,
            "can": (lambda p: session is not None and can(session, p)),
            "csrf_field": (lambda: csrf_input(session)),
            **values,
        },
        status_code=status,
    )

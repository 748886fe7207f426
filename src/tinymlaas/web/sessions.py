"""The dashboard's half of a login session: the cookie that carries its secret, and the CSRF field.

What a session is, how long it lives and when it ends is ``services.sessions``; the dashboard only
hands the secret to the browser and reads it back. The cookie is HttpOnly (no script can read it),
SameSite=Lax (other sites' form posts arrive without it) and Secure whenever the dashboard is served
over https.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import Request, Response
from markupsafe import Markup

from tinymlaas.services.sessions import DashboardSession

__all__ = [
    "CSRF_FIELD",
    "CSRF_HEADER",
    "SESSION_COOKIE",
    "DashboardSession",
    "clear_session_cookie",
    "csrf_input",
    "session_secret",
    "set_session_cookie",
]

SESSION_COOKIE = "tinymlaas_session"
CSRF_FIELD = "csrf_token"  # the hidden field every dashboard form posts
CSRF_HEADER = "X-CSRF-Token"  # the same token, for a script that posts without a form


def session_secret(request: Request) -> str | None:
    return request.cookies.get(SESSION_COOKIE)


def set_session_cookie(request: Request, response: Response, secret: str, expires_at: datetime) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        expires=expires_at,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


def clear_session_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(
        SESSION_COOKIE, httponly=True, samesite="lax", secure=request.url.scheme == "https"
    )


def csrf_input(session: DashboardSession | None) -> Markup:
    """The hidden field a form needs to be accepted; nothing without a session (the login form)."""
    if session is None:
        return Markup("")
    return Markup('<input type="hidden" name="{}" value="{}">').format(CSRF_FIELD, session.csrf_token)

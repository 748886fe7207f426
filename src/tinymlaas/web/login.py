"""Log in with an API token, log out: a dashboard session is a signed cookie (``sessions``)."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tinymlaas.services.auth import Unauthenticated, authenticate
from tinymlaas.web.deps import ContextDep, render
from tinymlaas.web.sessions import SESSION_COOKIE, SESSION_TTL_S, DashboardSession, session_key, sign

__all__ = ["router", "safe_next"]

router = APIRouter(include_in_schema=False)


def safe_next(target: str) -> str:
    """Only a path on this server: "//host" or "https://host" would make the login form an open redirect."""
    return target if target.startswith("/") and not target.startswith("//") else "/"


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next_path: Annotated[str, Query(alias="next")] = "/") -> HTMLResponse:
    return render(request, "login.html", None, next=safe_next(next_path), error=None)


@router.post("/login", response_model=None)
def login(
    request: Request,
    context: ContextDep,
    token: Annotated[str, Form()],
    next_path: Annotated[str, Form(alias="next")] = "/",
) -> Response:
    """Trade an API token for a session cookie; a bad token gets the form back with why."""
    try:
        view = authenticate(context, token.strip())
    except Unauthenticated as exc:
        return render(request, "login.html", None, 401, next=safe_next(next_path), error=str(exc))
    session = DashboardSession(
        token_id=view["id"], name=view["name"], role=view["role"], expires=int(time.time()) + SESSION_TTL_S
    )
    response = RedirectResponse(safe_next(next_path), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        sign(session, session_key(context.settings.session_key_file)),
        max_age=SESSION_TTL_S,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout")
def logout() -> RedirectResponse:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response

"""Log in with an API token, log out: a dashboard session lives in the store, its secret in a cookie."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tinymlaas.httpio.audit import note_actor
from tinymlaas.services.audit import token_actor
from tinymlaas.services.auth import Unauthenticated
from tinymlaas.services.sessions import end_session, start_session
from tinymlaas.web.deps import ContextDep, csrf_protected, render
from tinymlaas.web.sessions import clear_session_cookie, session_secret, set_session_cookie

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
    """Trade an API token for a session cookie; a bad or expired token gets the form back with why.

    No CSRF token here (nobody is logged in yet to have one): the same-origin check every dashboard
    post passes keeps another site from logging a visitor in under its own token.
    """
    try:
        session, secret = start_session(context, token.strip())
    except Unauthenticated as exc:
        return render(request, "login.html", None, 401, next=safe_next(next_path), error=str(exc))
    note_actor(request, token_actor(session.token_id, session.name), session.role)
    response = RedirectResponse(safe_next(next_path), status_code=303)
    set_session_cookie(request, response, secret, session.expires_at)
    return response


@router.post("/logout", dependencies=[Depends(csrf_protected)])
def logout(request: Request, context: ContextDep) -> RedirectResponse:
    """End the session in the store, so a copy of the cookie kept anywhere is refused from now on."""
    end_session(context, session_secret(request))
    response = RedirectResponse("/login", status_code=303)
    clear_session_cookie(request, response)
    return response

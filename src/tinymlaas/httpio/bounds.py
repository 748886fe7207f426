"""Request bodies bounded before any route reads them.

FastAPI reads and parses a body before it resolves a route's dependencies, so without this a route
guarded by a token would read a 600 MB body from anyone before answering 401, and spool a multipart
body to disk in full before the upload limit is checked. This middleware runs first: it refuses a
body sent to a guarded route without valid credentials, refuses one whose declared length is over
the route's limit, and stops a streamed one as soon as it passes the limit, each before the route
has read a byte it need not read.

Routes say what they need through their dependencies: a dependency marked with ``requires`` names
the credential it checks (a bearer token or a session cookie), and the middleware looks for marked
dependencies in the tree of the route a request matches.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, TypeVar
from urllib.parse import quote

from anyio import to_thread
from fastapi import params
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request, cookie_parser
from starlette.routing import BaseRoute, compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tinymlaas.httpio.audit import note_denied

__all__ = ["BEARER", "BearerCheck", "BodyTooLarge", "BoundedBodies", "Credential", "problem", "requires"]

_Dependency = TypeVar("_Dependency", bound=Callable[..., Any])
_MARK = "__tinymlaas_credential__"

BearerCheck = Callable[[str], str | None]
"""Why a bearer token is refused (unknown, revoked …), or None when it is good; may block, so it runs
in a worker thread."""


@dataclass(frozen=True)
class Credential:
    """What a dependency checks: a bearer token, or with ``cookie`` the session cookie of that name.

    ``login`` is where a browser without the cookie is sent (303), as the page itself would send it.
    """

    cookie: str | None = None
    login: str | None = None


BEARER = Credential()


def requires(credential: Credential) -> Callable[[_Dependency], _Dependency]:
    """Marks a dependency as needing ``credential``: bodies for its routes are refused without it."""

    def mark(dependency: _Dependency) -> _Dependency:
        setattr(dependency, _MARK, credential)
        return dependency

    return mark


class BodyTooLarge(HTTPException):
    """A streamed body passed its limit; an HTTPException so the app's own handlers answer it."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than the {limit:,} bytes this request may send")


@dataclass(frozen=True)
class _Needs:
    credential: Credential | None
    form: bool  # the route parses a form, so a multipart body may carry an upload


_NOTHING = _Needs(credential=None, form=False)


def _route_table(routes: list[BaseRoute]) -> list[tuple[re.Pattern[str], frozenset[str], _Needs]]:
    """Each API route's full path as a pattern, its methods and what it needs, routers flattened."""
    table = []
    for context in iter_route_contexts(routes):
        route = context.original_route
        if isinstance(route, APIRoute) and context.path:
            pattern = compile_path(context.path)[0]
            table.append((pattern, frozenset(context.methods or ()), _route_needs(route)))
    return table


def _route_needs(route: APIRoute) -> _Needs:
    credential = None
    pending = [route.dependant]
    while pending and credential is None:
        dependant = pending.pop()
        found = getattr(dependant.call, _MARK, None)
        credential = found if isinstance(found, Credential) else None
        pending.extend(dependant.dependencies)
    body = route.body_field
    return _Needs(credential, form=body is not None and isinstance(body.field_info, params.Form))


@dataclass(frozen=True)
class _Reply:
    """A response sent before the app runs.

    With ``close`` the connection is closed after it, so the server does not read the rest of the
    body to keep the connection open. Only for large bodies: closing a socket that still holds
    unread bytes resets it, and a client that already sent a small body would lose the answer.
    """

    status: int
    body: bytes
    media_type: str
    headers: dict[str, str]

    async def __call__(self, send: Send, *, close: bool = False) -> None:
        headers = {**self.headers, "content-type": self.media_type, "content-length": str(len(self.body))}
        if close:
            headers["connection"] = "close"
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        await send({"type": "http.response.start", "status": self.status, "headers": raw})
        await send({"type": "http.response.body", "body": self.body})


def problem(scope: Scope, status: int, detail: str, headers: dict[str, str] | None = None) -> _Reply:
    """An RFC 9457 problem document, the shape the API answers every error in."""
    body = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": scope["path"],
    }
    return _Reply(status, json.dumps(body).encode(), "application/problem+json", headers or {})


def _declared_length(headers: Headers) -> int | None:
    text = headers.get("content-length")
    if text is None:
        return None
    try:
        return max(int(text), 0)
    except ValueError:
        return None


class BoundedBodies:
    """Pure ASGI middleware: credentials and size checked before a body is read, the size again as it
    streams. ``body_limit`` bounds every body; a multipart body to a route that parses forms may
    also carry an upload of ``upload_limit`` bytes."""

    def __init__(
        self, app: ASGIApp, *, body_limit: int, upload_limit: int, check_bearer: BearerCheck
    ) -> None:
        self.app = app
        self.body_limit = body_limit
        self.upload_limit = upload_limit
        self.check_bearer = check_bearer
        self._routes: list[tuple[re.Pattern[str], frozenset[str], _Needs]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared = _declared_length(headers)
        if declared == 0 or (declared is None and "transfer-encoding" not in headers):
            await self.app(scope, receive, send)
            return
        needs = self._match(scope)
        refusal = await self._refuse(scope, headers, needs.credential)
        if refusal is not None:
            await refusal(send, close=declared is None or declared > self.body_limit)
            return
        multipart = headers.get("content-type", "").lower().startswith("multipart/form-data")
        limit = self.body_limit + (self.upload_limit if needs.form and multipart else 0)
        if declared is not None and declared > limit:
            detail = f"the request body declares {declared:,} bytes; this request may send {limit:,}"
            await problem(scope, 413, detail)(send, close=True)
            return
        await self._bounded(scope, receive, send, limit)

    def _match(self, scope: Scope) -> _Needs:
        """What the route this request goes to needs; nothing for a path no route answers."""
        if self._routes is None:
            # Built on the first body, once every router (the dashboard's too) is in place.
            self._routes = _route_table(scope["app"].router.routes)
        for pattern, methods, needs in self._routes:
            if scope["method"] in methods and pattern.fullmatch(scope["path"]):
                return needs
        return _NOTHING

    async def _refuse(self, scope: Scope, headers: Headers, credential: Credential | None) -> _Reply | None:
        if credential is None:
            return None
        refusal = await self._check(scope, headers, credential)
        if refusal is not None:
            note_denied(Request(scope))
        return refusal

    async def _check(self, scope: Scope, headers: Headers, credential: Credential) -> _Reply | None:
        if credential.cookie is not None:
            if cookie_parser(headers.get("cookie", "")).get(credential.cookie):
                return None
            if credential.login is not None:
                location = f"{credential.login}?next={quote(scope['path'])}"
                return _Reply(303, b"", "text/plain", {"location": location})
            return problem(scope, 401, "this needs a logged-in session")
        challenge = {"WWW-Authenticate": "Bearer"}
        scheme, _, secret = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            return problem(scope, 401, "this needs an API token (Authorization: Bearer ...)", challenge)
        why = await to_thread.run_sync(self.check_bearer, secret.strip())
        return None if why is None else problem(scope, 401, why, challenge)

    async def _bounded(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        received = 0
        overflowed = started = False

        async def counted() -> Message:
            nonlocal received, overflowed
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    overflowed = True
                    raise BodyTooLarge(limit)
            return message

        async def sending(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if overflowed:
                    # Else the server would read and discard the rest of the body to keep the connection.
                    MutableHeaders(scope=message)["connection"] = "close"
            await send(message)

        try:
            await self.app(scope, counted, sending)
        except BodyTooLarge as exc:
            if started:
                raise
            await problem(scope, 413, str(exc.detail))(send, close=True)

"""Every error the API answers with, as RFC 9457 problem details (``application/problem+json``).

One shape for product errors, HTTP errors and request validation, so a client parses failures once.
Product errors get a ``urn:tinymlaas:problem:*`` type named after their class; plain HTTP errors get
``about:blank``, whose title is by definition the status phrase.
"""

from __future__ import annotations

import logging
import re
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from tinymlaas.errors import TinymlaasError

__all__ = ["PROBLEM_JSON", "install_problem_handlers", "problem_response"]

PROBLEM_JSON = "application/problem+json"

_log = logging.getLogger(__name__)


def problem_response(
    request: Request,
    status: int,
    *,
    title: str,
    detail: str,
    type_: str = "about:blank",
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    body = {
        "type": type_,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        **extensions,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _problem_type(exc: TinymlaasError) -> str:
    kebab = re.sub(r"(?<!^)(?=[A-Z])", "-", type(exc).__name__).lower()
    return f"urn:tinymlaas:problem:{kebab}"


async def _product_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, TinymlaasError)
    return problem_response(
        request, exc.http_status, title=exc.title, detail=exc.detail, type_=_problem_type(exc)
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    phrase = HTTPStatus(exc.status_code).phrase
    return problem_response(
        request,
        exc.status_code,
        title=phrase,
        detail=str(exc.detail) if exc.detail else phrase,
        headers=exc.headers,
    )


def _field(location: tuple[Any, ...]) -> str:
    # "body" / "query" / "path" is where, the rest is the field: body.stages.0 -> "stages.0".
    return ".".join(str(part) for part in location[1:]) or str(location[0])


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "in": str(error["loc"][0]) if error["loc"] else "body",
            "field": _field(tuple(error["loc"])) if error["loc"] else "",
            "message": error["msg"],
            "type": error["type"],
        }
        for error in exc.errors()
    ]
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return problem_response(
        request,
        422,
        title="Invalid input",
        detail=detail,
        type_="urn:tinymlaas:problem:validation",
        errors=errors,
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # The traceback goes to the server log; the client learns only that it was not its fault.
    _log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(request, 500, title="Internal error", detail="the server failed; see its log")


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(TinymlaasError, _product_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)

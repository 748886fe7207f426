"""A request budget per API token, so one runaway client cannot starve the others.

Each token has a bucket (``tinymlaas.ratelimit``); a request finding it empty is answered 429 with
``Retry-After``. Buckets are keyed by the token's sha256, checked before the token is looked up, so a
flood of made-up tokens is bounded by the buckets' own limit on keys.
"""

from __future__ import annotations

import hashlib
import math

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from tinymlaas.httpio.bounds import problem
from tinymlaas.ratelimit import TokenBuckets

__all__ = ["RateLimit"]


class RateLimit:
    """Pure ASGI middleware: requests under ``prefix`` that carry a bearer token spend from its bucket."""

    def __init__(self, app: ASGIApp, *, rate: float, burst: int, prefix: str) -> None:
        self.app = app
        self.prefix = prefix
        self.buckets = TokenBuckets(rate=rate, burst=burst)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(self.prefix):
            scheme, _, secret = Headers(scope=scope).get("authorization", "").partition(" ")
            if scheme.lower() == "bearer" and secret.strip():
                key = hashlib.sha256(secret.strip().encode()).hexdigest()
                wait = self.buckets.take(key)
                if wait > 0:
                    retry = str(max(1, math.ceil(wait)))
                    detail = (
                        f"this token has used its {self.buckets.burst} requests "
                        f"({self.buckets.rate:g} per second refill); retry in {retry} s"
                    )
                    await problem(scope, 429, detail, {"Retry-After": retry})(send)
                    return
        await self.app(scope, receive, send)

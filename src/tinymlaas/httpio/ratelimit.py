"""A request budget per API token, so one runaway client cannot starve the others.

Each token has a bucket of ``burst`` requests refilled at ``rate`` per second; a request finding it
empty is answered 429 with ``Retry-After``. Buckets are keyed by the token's sha256, checked before
the token is looked up, so a flood of made-up tokens is bounded too; they live in memory, and only
the ``max_tokens`` most recently seen are kept.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import OrderedDict
from collections.abc import Callable

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from tinymlaas.httpio.bounds import problem

__all__ = ["RateLimit", "TokenBuckets"]


class TokenBuckets:
    """Token buckets by key; ``take`` spends one request."""

    def __init__(
        self,
        *,
        rate: float,
        burst: int,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (level, when)

    def take(self, key: str) -> float:
        """0 when a request is allowed now (and spent), else the seconds until one will be."""
        now = self._clock()
        level, when = self._buckets.pop(key, (float(self.burst), now))
        level = min(float(self.burst), level + (now - when) * self.rate)
        allowed = level >= 1.0
        self._buckets[key] = (level - 1.0 if allowed else level, now)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return 0.0 if allowed else (1.0 - level) / self.rate


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

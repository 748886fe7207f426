"""Security headers on every HTTP response, API and dashboard alike.

The dashboard loads only its own scripts (``/static``, ``/vendor/plotly.min.js``) and no inline
script, so ``script-src 'self'`` holds. Styles allow ``'unsafe-inline'``: Plotly injects a style
element for its charts and the progress bars size themselves with a ``style`` attribute, and an
injected style can neither run code nor read the page. The interactive API documentation (FastAPI's
Swagger UI and ReDoc pages) is built from a CDN and an inline script, so those two pages get a
policy of their own. API responses are JSON: nothing in them may load anything, and no cache may
keep them, since some carry token secrets.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["API_POLICY", "DASHBOARD_POLICY", "DOCS_POLICY", "SecurityHeaders"]

DASHBOARD_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
_CDN = "https://cdn.jsdelivr.net"
DOCS_POLICY = "; ".join(
    (
        "default-src 'self'",
        f"script-src 'self' 'unsafe-inline' {_CDN}",
        f"style-src 'self' 'unsafe-inline' {_CDN} https://fonts.googleapis.com",
        "img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly",
        "font-src 'self' https://fonts.gstatic.com",
        "worker-src 'self' blob:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)
API_POLICY = "default-src 'none'; frame-ancestors 'none'"

_ALWAYS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
# Dashboard posts must name their origin for its cross-site check, and under "no-referrer" a browser
# sends "Origin: null"; "same-origin" keeps our URLs from other sites all the same.
_DASHBOARD = {**_ALWAYS, "Referrer-Policy": "same-origin"}


class SecurityHeaders:
    """Pure ASGI middleware: adds the headers a response has not set itself.

    Paths under ``api_prefix`` (and ``/openapi.json``) get the API policy and ``Cache-Control:
    no-store``; ``docs_paths`` the documentation policy; everything else the dashboard's.
    """

    def __init__(self, app: ASGIApp, *, api_prefix: str, docs_paths: tuple[str, ...]) -> None:
        self.app = app
        self.api_prefix = api_prefix
        self.docs_paths = docs_paths

    def _for(self, path: str) -> dict[str, str]:
        if path.startswith(self.api_prefix) or path == "/openapi.json":
            return {**_ALWAYS, "Content-Security-Policy": API_POLICY, "Cache-Control": "no-store"}
        if path.startswith(self.docs_paths):
            return {**_ALWAYS, "Content-Security-Policy": DOCS_POLICY}
        return {**_DASHBOARD, "Content-Security-Policy": DASHBOARD_POLICY}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        wanted = self._for(scope["path"])

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in wanted.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, with_headers)

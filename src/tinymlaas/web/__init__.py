"""The dashboard and control panel: server-rendered pages over the services the REST API calls.

``mount_dashboard`` adds every page router, the static files, plotly.js from the installed ``plotly``
package (so the dashboard needs no internet and no Node build), and the handlers that turn a missing
login into a redirect, a missing permission or a refused post into a 403 page, and a service error on
a page into an error page with its status. Every page's posts are checked for a same-origin sender and
the session's CSRF token before the page sees them; the login form, which has no session yet, for the
origin alone.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from tinymlaas.errors import TinymlaasError
from tinymlaas.web import (
    audit,
    cost,
    datasets,
    deployments,
    devices,
    fleet,
    login,
    models,
    node_pipelines,
    pipeline,
    searches,
    training,
)
from tinymlaas.web.deps import (
    Forbidden,
    LoginRequired,
    Refused,
    csrf_protected,
    error_page,
    render,
    same_origin,
)

__all__ = ["PAGE_ROUTERS", "mount_dashboard"]

_API_PATHS = ("/api/", "/openapi.json", "/docs", "/redoc")

PAGE_ROUTERS = (
    login.router,
    fleet.router,
    datasets.router,
    cost.router,
    devices.router,
    deployments.router,
    node_pipelines.router,
    pipeline.router,
    training.router,
    searches.router,
    models.router,
    audit.router,
)


def _plotly_js() -> FileResponse:
    path = Path(str(files("plotly") / "package_data" / "plotly.min.js"))
    return FileResponse(path, media_type="text/javascript", headers={"Cache-Control": "max-age=86400"})


def mount_dashboard(app: FastAPI) -> None:
    for router in PAGE_ROUTERS:
        checks = (
            [Depends(same_origin)]
            if router is login.router
            else [Depends(same_origin), Depends(csrf_protected)]
        )
        app.include_router(router, dependencies=checks)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    app.add_api_route("/vendor/plotly.min.js", _plotly_js, include_in_schema=False)

    @app.exception_handler(LoginRequired)
    def _login(_request: Request, exc: LoginRequired) -> Response:
        return RedirectResponse(f"/login?next={quote(exc.path)}", status_code=303)

    @app.exception_handler(Forbidden)
    def _forbidden(request: Request, exc: Forbidden) -> Response:
        return render(request, "error.html", exc.session, 403, title="Not allowed", detail=str(exc))

    @app.exception_handler(Refused)
    def _refused(request: Request, exc: Refused) -> Response:
        return render(request, "error.html", exc.session, 403, title="Request refused", detail=str(exc))

    # The API's handler (RFC 9457 problem details) keeps every path under /api; pages get an HTML page.
    api_handler = app.exception_handlers.get(TinymlaasError)

    async def _product_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, TinymlaasError)
        if api_handler is not None and request.url.path.startswith(_API_PATHS):
            return await api_handler(request, exc)
        return error_page(request, exc)

    app.add_exception_handler(TinymlaasError, _product_error)

"""Fleet (the CEO's page): devices online and offline, by board and model version, alerts, activity."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from tinymlaas.services.context import Context
from tinymlaas.services.fleet import list_devices
from tinymlaas.services.fleet_health import ACTIVITY_WINDOW, fleet_health
from tinymlaas.web.deps import ContextDep, Viewer, render
from tinymlaas.web.summaries import fleet_summary

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


def _fleet(context: Context) -> dict[str, Any]:
    return fleet_summary(list_devices(context), fleet_health(context))


@router.get("/", response_class=HTMLResponse)
def fleet_page(request: Request, context: ContextDep, session: Viewer) -> HTMLResponse:
    return render(request, "fleet.html", session, fleet=_fleet(context), window=ACTIVITY_WINDOW)


@router.get("/ui/fleet.json")
def fleet_json(context: ContextDep, _session: Viewer) -> dict[str, Any]:
    """The fleet page's numbers as JSON, for scripts that poll."""
    return _fleet(context)

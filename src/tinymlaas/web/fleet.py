"""Fleet (the CEO's page): devices online and offline, by board and model version, alerts, activity."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from tinymlaas.services.campaigns import list_campaigns
from tinymlaas.services.context import Context
from tinymlaas.services.fleet import fleet_telemetry, list_devices
from tinymlaas.web.deps import ContextDep, Viewer, render
from tinymlaas.web.summaries import ACTIVITY_WINDOW, fleet_summary

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


def _fleet(context: Context) -> dict[str, Any]:
    now = datetime.now(UTC)
    samples = fleet_telemetry(context, now - ACTIVITY_WINDOW)
    return fleet_summary(list_devices(context), list_campaigns(context), samples, now)


@router.get("/", response_class=HTMLResponse)
def fleet_page(request: Request, context: ContextDep, session: Viewer) -> HTMLResponse:
    return render(request, "fleet.html", session, fleet=_fleet(context), window=ACTIVITY_WINDOW)


@router.get("/ui/fleet.json")
def fleet_json(context: ContextDep, _session: Viewer) -> dict[str, Any]:
    """The fleet page's numbers as JSON, for scripts that poll."""
    return _fleet(context)

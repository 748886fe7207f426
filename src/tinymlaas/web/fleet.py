"""Fleet (the CEO's page): devices online and offline, by board and model version, alerts, activity.

An operator (``devices:write``) acknowledges an alert from here; the alert stays listed as active until
its condition ends, then moves to the resolved ones.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tinymlaas.errors import TinymlaasError
from tinymlaas.services.audit import token_actor
from tinymlaas.services.auth import Permission
from tinymlaas.services.context import Context
from tinymlaas.services.fleet import fleet_groups, list_devices_page
from tinymlaas.services.fleet_health import ACTIVITY_WINDOW, acknowledge_alert, fleet_health
from tinymlaas.web.deps import ContextDep, Viewer, needs, render
from tinymlaas.web.sessions import DashboardSession
from tinymlaas.web.summaries import fleet_summary

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

Operator = Annotated[DashboardSession, Depends(needs(Permission.DEVICES_WRITE))]

# Devices listed (and charted) by name; the counts cover the whole fleet, the Devices page pages it.
_DEVICES_SHOWN = 100
# Offline devices, and silent ones, listed as alerts by name: a page's worth to act on (the count
# covers them all, the Devices page lists every offline one), so the page stays quick and small.
_DEVICE_ALERTS_SHOWN = 50


def _fleet(context: Context) -> dict[str, Any]:
    devices, _ = list_devices_page(context, limit=_DEVICES_SHOWN)
    health = fleet_health(context, listed=_DEVICE_ALERTS_SHOWN)
    return fleet_summary(fleet_groups(context), devices, health)


def _page(
    request: Request,
    context: Context,
    session: DashboardSession,
    *,
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "fleet.html",
        session,
        status,
        fleet=_fleet(context),
        window=ACTIVITY_WINDOW,
        device_alerts_shown=_DEVICE_ALERTS_SHOWN,
        error=error,
    )


@router.get("/", response_class=HTMLResponse)
def fleet_page(request: Request, context: ContextDep, session: Viewer) -> HTMLResponse:
    return _page(request, context, session)


@router.get("/ui/fleet.json")
def fleet_json(context: ContextDep, _session: Viewer) -> dict[str, Any]:
    """The fleet page's numbers as JSON, for scripts that poll."""
    return _fleet(context)


@router.post("/alerts/{alert_id}/ack", response_model=None)
def alert_ack_form(request: Request, context: ContextDep, session: Operator, alert_id: str) -> Response:
    """Record that this person has taken the alert on; back to the fleet page, or why it was refused."""
    try:
        acknowledge_alert(context, alert_id, token_actor(session.token_id, session.name))
    except TinymlaasError as exc:
        return _page(request, context, session, error=exc.detail, status=exc.http_status)
    return RedirectResponse("/#alerts", status_code=303)

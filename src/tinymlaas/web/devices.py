"""Devices (the operator's view): the fleet filtered, and one device's reports, telemetry and history."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from tinymlaas.services.campaigns import device_installations
from tinymlaas.services.fleet import device_telemetry, list_devices, list_devices_page, show_device
from tinymlaas.services.modules import module_names
from tinymlaas.web.campaign_summary import HISTORY_TONES
from tinymlaas.web.deps import ContextDep, Viewer, render
from tinymlaas.web.summaries import confidence_chart, count_chart, filter_choices, latency_chart

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

_ONLINE = {"": None, "online": True, "offline": False}
_EVENTS_SHOWN = 20
_SAMPLES_CHARTED = 500
_DEVICES_SHOWN = 100  # devices on one page of the list


@router.get("/devices", response_class=HTMLResponse)
def devices_page(
    request: Request,
    context: ContextDep,
    session: Viewer,
    board: Annotated[str, Query()] = "",
    online: Annotated[str, Query()] = "",
    tag: Annotated[str, Query()] = "",
    model: Annotated[str, Query()] = "",
    offset: Annotated[int, Query(ge=0)] = 0,
) -> HTMLResponse:
    """Every device, narrowed by board, presence, tag or installed model (name or name:version)."""
    error = None
    if online not in _ONLINE:
        error = f"'online' must be online, offline or empty, not {online!r}; showing both"
        online = ""
    devices, count = list_devices_page(
        context,
        board=board or None,
        online=_ONLINE[online],
        tag=tag or None,
        model=model.strip() or None,
        limit=_DEVICES_SHOWN,
        offset=offset,
    )
    filters = {"board": board, "online": online, "tag": tag, "model": model}
    query = {key: value for key, value in filters.items() if value}
    pages = {
        "first": offset + 1,
        "last": offset + len(devices),
        "previous": f"/devices?{urlencode({**query, 'offset': max(0, offset - _DEVICES_SHOWN)})}"
        if offset
        else None,
        "next": f"/devices?{urlencode({**query, 'offset': offset + _DEVICES_SHOWN})}"
        if offset + _DEVICES_SHOWN < count
        else None,
    }
    return render(
        request,
        "devices.html",
        session,
        422 if error else 200,
        devices=devices,
        count=count,
        pages=pages,
        filters=filters,
        choices=filter_choices(list_devices(context)),
        error=error,
    )


@router.get("/devices/{endpoint}", response_class=HTMLResponse)
def device_page(request: Request, context: ContextDep, session: Viewer, endpoint: str) -> HTMLResponse:
    """One device: what it can run, what it runs, how it performs, and what happened to it."""
    device = show_device(context, endpoint, _EVENTS_SHOWN)
    samples = device_telemetry(context, endpoint, _SAMPLES_CHARTED)["samples"]
    updates = device_installations(context, endpoint)
    return render(
        request,
        "device.html",
        session,
        device=device,
        updates=updates,
        module_names=module_names(context, {u["module"] for u in updates}),
        tones=HISTORY_TONES,
        count_chart=count_chart(samples),
        latency_chart=latency_chart(samples),
        confidence_chart=confidence_chart(device.telemetry),
        samples=len(samples),
    )

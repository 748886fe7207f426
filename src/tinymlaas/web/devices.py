"""Devices (the operator's view): the fleet filtered, and one device's reports, telemetry and history.

A device's page also opens its LwM2M object tree: anyone may read a resource of it now (``?read=``, a
GET that sends one Read), and ``devices:write`` may execute one (a POST naming the resource in its path,
so the audit trail records which). Both go through this process's LwM2M server; a dashboard running
without one says so instead of offering them.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tinymlaas.errors import TinymlaasError
from tinymlaas.lwm2m.core import OBJECTS, Path
from tinymlaas.services.auth import Permission
from tinymlaas.services.campaigns import device_installations
from tinymlaas.services.context import Context
from tinymlaas.services.device_link import DeviceLink
from tinymlaas.services.device_objects import ReadValue, execute_resource, object_tree, read_path
from tinymlaas.services.device_timeline import device_timeline, result_class
from tinymlaas.services.fleet import device_telemetry, filter_choices, list_devices_page, show_device
from tinymlaas.services.modules import module_names
from tinymlaas.web.campaign_summary import HISTORY_TONES
from tinymlaas.web.deps import ContextDep, Viewer, needs, render
from tinymlaas.web.sessions import DashboardSession
from tinymlaas.web.summaries import confidence_chart, count_chart, latency_chart

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

Operator = Annotated[DashboardSession, Depends(needs(Permission.DEVICES_WRITE))]

_ONLINE = {"": None, "online": True, "offline": False}
_EVENTS_SHOWN = 20
_SAMPLES_CHARTED = 500
_DEVICES_SHOWN = 100  # devices on one page of the list
_TIMELINE_SHOWN = 50
_LIVE_HEADER = "x-live"  # sent by live.js when it re-fetches a page's live part


def _link(request: Request) -> DeviceLink | None:
    return getattr(request.app.state, "devices", None)


LinkDep = Annotated[DeviceLink | None, Depends(_link)]


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
        choices=filter_choices(context),
        error=error,
    )


def _device_page(
    request: Request,
    context: Context,
    session: DashboardSession,
    link: DeviceLink | None,
    endpoint: str,
    *,
    read: str = "",
    values: list[ReadValue] | None = None,
    notice: str | None = None,
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    device = show_device(context, endpoint, _EVENTS_SHOWN)
    samples = device_telemetry(context, endpoint, _SAMPLES_CHARTED)["samples"]
    updates = device_installations(context, endpoint)
    observed: frozenset[Path] = frozenset()
    if link is not None and device.online:
        try:
            observed = link.observed(endpoint)
        except TinymlaasError:
            observed = frozenset()
    return render(
        request,
        "device.html",
        session,
        status,
        device=device,
        updates=updates,
        module_names=module_names(context, {u["module"] for u in updates}),
        tones=HISTORY_TONES,
        count_chart=count_chart(samples),
        latency_chart=latency_chart(samples),
        confidence_chart=confidence_chart(device.telemetry),
        samples=len(samples),
        timeline=device_timeline(context, endpoint, _TIMELINE_SHOWN),
        result=result_class(context, endpoint),
        tree=object_tree(context, endpoint, observed),
        linked=link is not None,
        read=read,
        values=values,
        notice=notice,
        error=error,
    )


@router.get("/devices/{endpoint}", response_class=HTMLResponse)
def device_page(
    request: Request,
    context: ContextDep,
    session: Viewer,
    link: LinkDep,
    endpoint: str,
    read: Annotated[str, Query()] = "",
    executed: Annotated[str, Query()] = "",
) -> HTMLResponse:
    """One device: what it can run, what it runs, how it performs, what happened to it, its objects.

    With ``read`` (a path of the object tree) the device is asked for it now; the page's live refresh
    does not ask again, so an open page sends one Read per click, not one per refresh. ``executed``
    is where an Execute lands once the device accepted it.
    """
    if not read or request.headers.get(_LIVE_HEADER):
        notice = _executed_notice(executed) if not request.headers.get(_LIVE_HEADER) else None
        return _device_page(request, context, session, link, endpoint, notice=notice)
    if link is None:
        return _device_page(
            request, context, session, link, endpoint, read=read, status=503,
            error="this dashboard process runs no LwM2M server, so it cannot read from devices",
        )  # fmt: skip
    try:
        values = read_path(context, link, endpoint, read)
    except TinymlaasError as exc:
        return _device_page(
            request, context, session, link, endpoint, read=read, error=exc.detail, status=exc.http_status
        )
    return _device_page(request, context, session, link, endpoint, read=read, values=values)


@router.post("/devices/{endpoint}/execute/{object_id}/{instance_id}/{resource_id}", response_model=None)
def device_execute_form(
    request: Request,
    context: ContextDep,
    session: Operator,
    link: LinkDep,
    endpoint: str,
    object_id: int,
    instance_id: int,
    resource_id: int,
) -> Response:
    """Execute one resource of the device (Object 9 Install, Activate, Uninstall, a Reboot ...).

    The resource is in the URL, so the audit trail names it along with who executed it.
    """
    path = f"/{object_id}/{instance_id}/{resource_id}"
    if link is None:
        return _device_page(
            request, context, session, link, endpoint, status=503,
            error="this dashboard process runs no LwM2M server, so it cannot execute on devices",
        )  # fmt: skip
    try:
        execute_resource(context, link, endpoint, path)
    except TinymlaasError as exc:
        return _device_page(
            request, context, session, link, endpoint, error=f"execute {path}: {exc.detail}",
            status=exc.http_status,
        )  # fmt: skip
    return RedirectResponse(f"/devices/{endpoint}?{urlencode({'executed': path})}", status_code=303)


def _executed_notice(executed: str) -> str | None:
    """What the page says after an Execute; nothing for a value that names no resource."""
    try:
        resource = OBJECTS.resource(Path.parse(executed))
    except TinymlaasError:
        return None
    return f"Executed {executed} ({resource.name}): the device accepted it."

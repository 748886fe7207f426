"""Devices as they last reported over LwM2M; reading them needs ``devices:read``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from tinymlaas.api.deps import ContextDep, Page, page, require
from tinymlaas.api.schemas import DeviceDetailPublic, DevicePublic, DevicesPublic
from tinymlaas.services.auth import Permission
from tinymlaas.services.fleet import list_devices as list_device_views
from tinymlaas.services.fleet import show_device as show_device_view

router = APIRouter(prefix="/devices", tags=["devices"])

Reader = Annotated[dict[str, Any], Depends(require(Permission.DEVICES_READ))]


@router.get("", response_model=DevicesPublic)
def list_devices(
    context: ContextDep,
    _token: Reader,
    paging: Annotated[Page, Depends()],
    board: Annotated[str | None, Query(description="Only devices that reported this board.")] = None,
    online: Annotated[bool | None, Query(description="Only online (true) or offline (false) ones.")] = None,
) -> DevicesPublic:
    """Every known device by endpoint name, online or not."""
    devices = [
        d
        for d in list_device_views(context)
        if (board is None or d["board"] == board) and (online is None or d["online"] is online)
    ]
    return DevicesPublic(data=[DevicePublic(**d) for d in page(devices, paging)], count=len(devices))


@router.get("/{endpoint}", response_model=DeviceDetailPublic)
def show_device(
    context: ContextDep,
    _token: Reader,
    endpoint: str,
    events: Annotated[int, Query(ge=0, le=1000, description="How many latest events to include.")] = 20,
) -> DeviceDetailPublic:
    """One device with its latest events."""
    return DeviceDetailPublic(**show_device_view(context, endpoint, events))

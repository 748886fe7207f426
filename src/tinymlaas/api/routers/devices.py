"""Devices as they last reported over LwM2M, and what they reported over time; needs ``devices:read``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from tinymlaas.api.deps import ContextDep, Page, require
from tinymlaas.api.schemas import DeviceDetailPublic, DevicePublic, DevicesPublic
from tinymlaas.api.schemas.devices import DeviceHistoryEntryPublic, DeviceHistoryPublic, DeviceTelemetryPublic
from tinymlaas.services.auth import Permission
from tinymlaas.services.fleet import device_history, device_telemetry, list_devices_page
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
    tag: Annotated[str | None, Query(description="Only devices carrying this tag.")] = None,
    model: Annotated[
        str | None,
        Query(description="Only devices reporting this installed model: a name, or name:version."),
    ] = None,
) -> DevicesPublic:
    """Every known device by endpoint name, online or not; each filter given narrows the list."""
    devices, count = list_devices_page(
        context, board=board, online=online, tag=tag, model=model, limit=paging.limit, offset=paging.offset
    )
    return DevicesPublic(data=[DevicePublic.model_validate(d) for d in devices], count=count)


@router.get("/{endpoint}", response_model=DeviceDetailPublic)
def show_device(
    context: ContextDep,
    _token: Reader,
    endpoint: str,
    events: Annotated[int, Query(ge=0, le=1000, description="How many latest events to include.")] = 20,
) -> DeviceDetailPublic:
    """One device with its latest events."""
    return DeviceDetailPublic.model_validate(show_device_view(context, endpoint, events))


@router.get("/{endpoint}/telemetry", response_model=DeviceTelemetryPublic)
def show_device_telemetry(
    context: ContextDep,
    _token: Reader,
    endpoint: str,
    samples: Annotated[
        int, Query(ge=0, le=5000, description="How many latest telemetry samples to include.")
    ] = 500,
) -> DeviceTelemetryPublic:
    """The runtime capabilities and inference telemetry the device last reported, and earlier samples.

    Samples are the inference count and mean/p95 latency of each report the server received, oldest
    first; the server keeps a bounded number per device.
    """
    return DeviceTelemetryPublic(**device_telemetry(context, endpoint, samples))


@router.get("/{endpoint}/history", response_model=DeviceHistoryPublic)
def list_device_history(
    context: ContextDep, _token: Reader, endpoint: str, paging: Annotated[Page, Depends()]
) -> DeviceHistoryPublic:
    """The device's events and its installations across campaigns, newest first."""
    entries, count = device_history(context, endpoint, limit=paging.limit, offset=paging.offset)
    return DeviceHistoryPublic(data=[DeviceHistoryEntryPublic(**e) for e in entries], count=count)

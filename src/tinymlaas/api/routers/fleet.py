"""The fleet's health as a whole: alerts, silent devices and inference activity; needs ``devices:read``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from tinymlaas.api.deps import ContextDep, require
from tinymlaas.api.schemas.devices import FleetHealthPublic
from tinymlaas.services.auth import Permission
from tinymlaas.services.fleet_health import FleetHealth
from tinymlaas.services.fleet_health import fleet_health as service

router = APIRouter(prefix="/fleet", tags=["devices"])

Reader = Annotated[dict[str, Any], Depends(require(Permission.DEVICES_READ))]


@router.get("/health", response_model=FleetHealthPublic)
def fleet_health(context: ContextDep, _token: Reader) -> FleetHealth:
    """Devices online and offline, the alerts that need someone, and inferences per minute in the last hour.

    Alerts are installations that did not leave the device on the intended model (failed, rolled
    back, rollback failed), offline devices, and silent ones: online on record but not heard from
    within the lifetime they promised to update in.
    """
    return service(context)

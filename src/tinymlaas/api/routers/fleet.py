"""The fleet's health as a whole: alerts, silent devices and inference activity; needs ``devices:read``.

Acknowledging an alert records who has taken it on and needs ``devices:write``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from tinymlaas.api.deps import ContextDep, require
from tinymlaas.api.schemas.devices import FleetAlertPublic, FleetHealthPublic
from tinymlaas.services import fleet_health as health
from tinymlaas.services.audit import token_actor
from tinymlaas.services.auth import Permission
from tinymlaas.services.fleet_health import FleetAlert, FleetHealth
from tinymlaas.services.fleet_health import fleet_health as service

router = APIRouter(prefix="/fleet", tags=["devices"])

Reader = Annotated[dict[str, Any], Depends(require(Permission.DEVICES_READ))]
Writer = Annotated[dict[str, Any], Depends(require(Permission.DEVICES_WRITE))]


@router.get("/health", response_model=FleetHealthPublic)
def fleet_health(context: ContextDep, _token: Reader) -> FleetHealth:
    """Devices online and offline, the alerts that need someone, and inferences per minute in the last hour.

    Alerts are installations that did not leave the device on the intended model (failed, rolled
    back, rollback failed), offline devices, and silent ones: online on record but not heard from
    within the lifetime they promised to update in. ``alerts`` are those whose condition still holds;
    ``resolved`` those that stopped holding within the last week (the device installed a later
    campaign successfully, or registered again), with when.
    """
    return service(context)


@router.post("/alerts/{alert_id}/ack", response_model=FleetAlertPublic)
def acknowledge_alert(context: ContextDep, token: Writer, alert_id: str) -> FleetAlert:
    """Record that this token's holder has taken the alert on; it stays active until its condition ends.

    404 for an id no active or recently resolved alert has; 409 if it was acknowledged before.
    """
    return health.acknowledge_alert(context, alert_id, token_actor(token["id"], token["name"]))

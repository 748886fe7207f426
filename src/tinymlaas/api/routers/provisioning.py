"""Device provisioning: the DTLS key that binds an endpoint name to one device; ``devices:write``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from tinymlaas.api.deps import ContextDep, Page, require
from tinymlaas.api.schemas.provisioning import (
    ProvisionedDevicePublic,
    ProvisionedDevicesPublic,
    ProvisionedKeyPublic,
    ProvisionRequest,
)
from tinymlaas.services.auth import Permission
from tinymlaas.services.provisioning import provision_device, provisioned_page, revoke_device

router = APIRouter(prefix="/provisioning", tags=["devices"])

Reader = Annotated[dict[str, Any], Depends(require(Permission.DEVICES_READ))]
Writer = Annotated[dict[str, Any], Depends(require(Permission.DEVICES_WRITE))]


@router.get("", response_model=ProvisionedDevicesPublic)
def list_provisioned_devices(
    context: ContextDep, _token: Reader, paging: Annotated[Page, Depends()]
) -> ProvisionedDevicesPublic:
    """Provisioned devices by endpoint name, revoked ones included; never their keys."""
    items, count = provisioned_page(context, limit=paging.limit, offset=paging.offset)
    return ProvisionedDevicesPublic(
        data=[ProvisionedDevicePublic.model_validate(item.model_dump()) for item in items], count=count
    )


@router.post("", response_model=ProvisionedKeyPublic, status_code=201)
def provision_a_device(context: ContextDep, _token: Writer, body: ProvisionRequest) -> ProvisionedKeyPublic:
    """Make a device's key; the answer is the only time it is shown. 409 if provisioned, unless rotate."""
    made = provision_device(
        context, body.endpoint, body.board, server_uri=body.server_uri, rotate=body.rotate
    )
    return ProvisionedKeyPublic(
        endpoint=made.endpoint,
        server_uri=made.server_uri,
        psk_identity=made.identity,
        psk_key=made.key.decode(),
    )


@router.delete("/{endpoint}", response_model=ProvisionedDevicePublic)
def revoke_a_device(context: ContextDep, _token: Writer, endpoint: str) -> ProvisionedDevicePublic:
    """End a device's access: its key opens no new session and its registrations are refused."""
    return ProvisionedDevicePublic.model_validate(revoke_device(context, endpoint).model_dump())

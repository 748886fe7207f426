"""Bodies of device provisioning: what a device is given once, and what is kept of it."""

from __future__ import annotations

from pydantic import BaseModel, Field

from tinymlaas.services.provisioning import ProvisionedDevice

__all__ = ["ProvisionRequest", "ProvisionedDevicePublic", "ProvisionedDevicesPublic", "ProvisionedKeyPublic"]


class ProvisionRequest(BaseModel):
    endpoint: str = Field(max_length=128, description="The device's LwM2M endpoint name.")
    board: str = Field(max_length=64, description="Board id the device is, see GET /boards.")
    server_uri: str | None = Field(
        default=None, max_length=256, description="The coaps:// URI the device reaches the server at."
    )
    rotate: bool = Field(default=False, description="Replace the key of a device provisioned before.")


class ProvisionedKeyPublic(BaseModel):
    """Shown once: the server keeps the key for the handshake but never gives it out again."""

    endpoint: str
    server_uri: str
    psk_identity: str
    psk_key: str = Field(description="16 characters; the DTLS pre-shared key as is (libcoap: -k).")


class ProvisionedDevicePublic(ProvisionedDevice):
    pass


class ProvisionedDevicesPublic(BaseModel):
    data: list[ProvisionedDevicePublic]
    count: int

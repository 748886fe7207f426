"""The compatibility gate's answer for a rollout that has not been created."""

from __future__ import annotations

from pydantic import BaseModel, Field

__all__ = ["CampaignPreviewPublic", "PreviewDevicePublic"]


class PreviewDevicePublic(BaseModel):
    endpoint: str
    board: str | None
    online: bool
    fits: bool
    reasons: list[str] = Field(description="Every reason the gate refuses the device; empty when it fits.")


class CampaignPreviewPublic(BaseModel):
    module: str
    board: str = Field(description="The board the module was compiled for.")
    runtime: str
    selector: str
    targets: int
    fit: int = Field(description="Targets that would be sent the module.")
    refused: int = Field(description="Targets the gate would refuse.")
    launchable: bool = Field(description="Whether a campaign would be created: some target fits.")
    devices: list[PreviewDevicePublic] = Field(description="In rollout order.")

"""What devices reported over time: telemetry samples, and a device's history across campaigns.

Figures are the device's own words (the TinyML Runtime object); a figure a report did not carry is
null, never a zero.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from tinymlaas.services.fleet_health import FleetAlert, FleetHealth

__all__ = [
    "DeviceHistoryEntryPublic",
    "DeviceHistoryPublic",
    "DeviceTelemetryPublic",
    "FleetAlertPublic",
    "FleetHealthPublic",
    "TelemetrySamplePublic",
]


class TelemetrySamplePublic(BaseModel):
    """The inference figures one telemetry report carried."""

    at: str | None = Field(description="When the server received the report (UTC).")
    inference_count: int | None = Field(description="Inferences since the installed model started.")
    mean_latency_ms: float | None
    p95_latency_ms: float | None


class DeviceTelemetryPublic(BaseModel):
    endpoint: str
    board: str | None
    online: bool
    last_seen: str | None
    capabilities: dict[str, Any] = Field(
        description="Runtime and version, ops, arena RAM and slot flash available (bytes), accelerator."
    )
    installed: dict[str, Any] = Field(description="The installed package as Software Management reports it.")
    telemetry: dict[str, Any] = Field(
        description="The latest figures: count, mean/p95 latency (ms) and where they come from "
        "(latency_basis: an on-target estimate or a host measurement), last result, confidence histogram."
    )
    samples: list[TelemetrySamplePublic] = Field(description="Oldest first.")


class DeviceHistoryEntryPublic(BaseModel):
    """An event of the device, or its installation in one campaign (then ``kind`` is its state)."""

    source: Literal["event", "installation"]
    at: str | None = Field(description="When it happened; for an installation, its latest progress.")
    kind: str = Field(examples=["registered", "succeeded"])
    detail: dict[str, Any]
    campaign: str | None = None
    module: str | None = None
    campaign_state: str | None = None
    update_result: int | None = None
    update_result_text: str | None = None
    started_at: str | None = None
    finished_at: str | None = None


class DeviceHistoryPublic(BaseModel):
    data: list[DeviceHistoryEntryPublic]
    count: int


class FleetAlertPublic(FleetAlert):
    """One alert: what happened to which device, whether it still holds, and who acknowledged it."""


class FleetHealthPublic(FleetHealth):
    """The fleet's health, as the service works it out from stored reports."""

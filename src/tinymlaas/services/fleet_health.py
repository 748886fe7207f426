"""How the fleet is doing: which devices need someone's attention, and how much the fleet infers.

Worked out from stored reports only (devices, campaigns, telemetry samples), so the dashboard, the
API and the CLI give the same answer with or without a server running.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

from tinymlaas.deploy.campaigns import InstallationState
from tinymlaas.services.campaigns import CampaignView, list_campaigns
from tinymlaas.services.context import Context
from tinymlaas.services.fleet import DeviceView, fleet_telemetry, list_devices

__all__ = [
    "ACTIVITY_WINDOW",
    "ALERT_STATES",
    "OFFLINE",
    "SILENT",
    "FleetAlert",
    "FleetHealth",
    "InferenceMinute",
    "assess_fleet",
    "fleet_health",
]

# How far back the fleet's inference activity reaches.
ACTIVITY_WINDOW = timedelta(hours=1)

# Installations that need someone's attention: the device did not end up on the intended model.
ALERT_STATES = frozenset(
    {InstallationState.FAILED, InstallationState.ROLLED_BACK, InstallationState.ROLLBACK_FAILED}
)
# The alert kinds a device raises by itself; an installation's alert is named after its state.
OFFLINE = "offline"
SILENT = "silent"


class FleetAlert(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    kind: str = Field(description="offline, silent, or the installation state: failed, rolled_back, ...")
    endpoint: str
    campaign: str | None = Field(description="The campaign an installation alert comes from.")
    detail: str
    at: str | None = Field(description="When it happened, as far as the store knows.")


class InferenceMinute(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    minute: str = Field(description="UTC, as YYYY-MM-DD HH:MM.")
    inferences: int


class FleetHealth(BaseModel):
    """The fleet at ``at``: presence, alerts, silent devices and inferences per minute since ``since``."""

    model_config = ConfigDict(from_attributes=True)

    at: str
    since: str
    devices: int
    online: int
    offline: int
    silent: list[str] = Field(description="Online on record, but not heard from within their lifetime.")
    alerts: list[FleetAlert]
    activity: list[InferenceMinute] = Field(
        description="Inferences per minute across the fleet, oldest first; empty until a device reported "
        "its count twice."
    )


def _silent(device: DeviceView, now: datetime) -> bool:
    """Online on record, but not heard from within the lifetime it promised to update in."""
    if not device.online or not device.last_seen or not device.lifetime_s:
        return False
    return datetime.fromisoformat(device.last_seen) + timedelta(seconds=device.lifetime_s) < now


def _alerts(devices: list[DeviceView], campaigns: list[CampaignView], now: datetime) -> list[FleetAlert]:
    alerts = [
        FleetAlert(
            kind=installation.state,
            endpoint=installation.endpoint,
            campaign=campaign.id,
            detail=installation.update_result_text or "",
            at=installation.finished_at,
        )
        for campaign in campaigns
        for installation in campaign.installations
        if InstallationState(installation.state) in ALERT_STATES
    ]
    alerts += [
        FleetAlert(kind=OFFLINE, endpoint=d.endpoint, campaign=None, detail="", at=d.last_seen)
        for d in devices
        if not d.online
    ]
    alerts += [
        FleetAlert(
            kind=SILENT,
            endpoint=d.endpoint,
            campaign=None,
            detail=f"no word within its {d.lifetime_s} s lifetime",
            at=d.last_seen,
        )
        for d in devices
        if _silent(d, now)
    ]
    return alerts


def _activity(samples: list[dict[str, object]]) -> list[InferenceMinute]:
    """Inferences per minute, from how each device's reported count grew.

    A device's first sample in the window is only its baseline; a count lower than the one before
    means the counter restarted (a new model), so all of it is new.
    """
    last: dict[str, int] = {}
    per_minute: Counter[str] = Counter()
    for sample in samples:
        count, at, endpoint = sample["inference_count"], sample["at"], str(sample["endpoint"])
        if not isinstance(count, int) or not isinstance(at, str):
            continue
        before = last.get(endpoint)
        last[endpoint] = count
        if before is not None:
            minute = datetime.fromisoformat(at).strftime("%Y-%m-%d %H:%M")
            per_minute[minute] += count - before if count >= before else count
    return [InferenceMinute(minute=m, inferences=per_minute[m]) for m in sorted(per_minute)]


def assess_fleet(
    devices: list[DeviceView],
    campaigns: list[CampaignView],
    samples: list[dict[str, object]],
    now: datetime,
    since: datetime,
) -> FleetHealth:
    """The fleet's health from its views; ``samples`` are telemetry samples since ``since``, oldest first."""
    online = sum(1 for d in devices if d.online)
    return FleetHealth(
        at=now.isoformat(),
        since=since.isoformat(),
        devices=len(devices),
        online=online,
        offline=len(devices) - online,
        silent=[d.endpoint for d in devices if _silent(d, now)],
        alerts=_alerts(devices, campaigns, now),
        activity=_activity(samples),
    )


def fleet_health(
    ctx: Context, now: datetime | None = None, window: timedelta = ACTIVITY_WINDOW
) -> FleetHealth:
    """The fleet's health as the store stands, with inference activity over the last ``window``."""
    now = now or datetime.now(UTC)
    since = now - window
    return assess_fleet(list_devices(ctx), list_campaigns(ctx), fleet_telemetry(ctx, since), now, since)

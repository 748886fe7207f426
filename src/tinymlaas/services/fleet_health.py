"""How the fleet is doing: which devices need someone's attention, and how much the fleet infers.

Worked out from stored reports only (devices, campaigns, presence events, telemetry samples), so the
dashboard, the API and the CLI give the same answer with or without a server running. Counts come
from SQL and at most ``DEVICES_LISTED`` offline and silent devices are read, so a report costs the
same on a fleet of ten thousand as on ten. Alerts are not
stored: each is recomputed from the reports with an id that stays the same for as long as the same
occurrence stands, so an acknowledgement (the one thing kept about an alert) holds while it is active
and after it resolves. An alert resolves by itself once its condition no longer holds: an installation
alert when the device later installs a campaign's module successfully, an offline alert when the
device registers again. A silent device's alert clears as soon as it is heard from; plain renewals
are not recorded, so when that happened is not known and it is not listed among the resolved.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

from tinymlaas.deploy.campaigns import InstallationState
from tinymlaas.errors import Conflict, NotFound
from tinymlaas.services._reports import iso
from tinymlaas.services.campaigns import CampaignView, InstallationView, installations_to_alert
from tinymlaas.services.context import Context
from tinymlaas.services.fleet import DeviceEventKind, DeviceView, as_utc, fleet_telemetry
from tinymlaas.storage.repositories import AlertAckRepository, DeviceRepository
from tinymlaas.storage.tables import AlertAckRow

__all__ = [
    "ACTIVITY_WINDOW",
    "ALERT_STATES",
    "DEVICES_LISTED",
    "OFFLINE",
    "RESOLVED_WINDOW",
    "SILENT",
    "AlertAck",
    "FleetAlert",
    "FleetHealth",
    "InferenceMinute",
    "PresenceEvent",
    "acknowledge_alert",
    "assess_fleet",
    "fleet_health",
]

# How far back the fleet's inference activity reaches.
ACTIVITY_WINDOW = timedelta(hours=1)
# How long a resolved alert stays listed after it resolved.
RESOLVED_WINDOW = timedelta(days=7)
# How many offline devices, and how many silent ones, a health report lists (as alerts, and silent by
# name); its counts cover them all. Enough for a person to act on, bounded so a fleet of thousands
# answers in a page's time.
DEVICES_LISTED = 200

# Installations that need someone's attention: the device did not end up on the intended model.
ALERT_STATES = frozenset(
    {InstallationState.FAILED, InstallationState.ROLLED_BACK, InstallationState.ROLLBACK_FAILED}
)
# The alert kinds a device raises by itself; an installation's alert is named after its state.
OFFLINE = "offline"
SILENT = "silent"
# A de-registration followed at once by a new registration leaves the device online.
_STILL_ONLINE = "re-registered"


class FleetAlert(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str = Field(
        description="Stays the same while the same occurrence stands; acknowledge the alert by it."
    )
    kind: str = Field(description="offline, silent, or the installation state: failed, rolled_back, ...")
    endpoint: str
    campaign: str | None = Field(description="The campaign an installation alert comes from.")
    detail: str
    at: str | None = Field(description="When it happened, as far as the store knows.")
    active: bool = Field(default=True, description="Whether its condition still holds.")
    resolved_at: str | None = Field(default=None, description="When its condition stopped holding.")
    resolution: str | None = Field(default=None, description="What ended it.")
    acknowledged_by: str | None = Field(default=None, description="Who acknowledged it, as audited.")
    acknowledged_at: str | None = None


@dataclass(frozen=True)
class PresenceEvent:
    """A device registered, went offline or de-registered: what offline alerts are worked out from."""

    endpoint: str
    kind: str
    at: datetime
    reason: str = ""


@dataclass(frozen=True)
class AlertAck:
    """Who acknowledged an alert, and when."""

    by: str
    at: str


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
    silent: list[str] = Field(
        description=f"Online on record, but not heard from within their lifetime; the first "
        f"{DEVICES_LISTED} by endpoint."
    )
    silent_count: int = Field(default=0, description="How many devices are silent, listed or not.")
    alerts: list[FleetAlert] = Field(
        description=f"Active alerts: their condition still holds. Offline and silent devices raise one "
        f"each for the first {DEVICES_LISTED} of them by endpoint; ``offline`` and ``silent_count`` "
        f"count them all."
    )
    alerts_total: int = Field(
        default=0, description="How many alerts are active, listed in ``alerts`` or not."
    )
    resolved: list[FleetAlert] = Field(
        default_factory=list,
        description="Alerts whose condition stopped holding within the last 7 days, latest first.",
    )
    activity: list[InferenceMinute] = Field(
        description="Inferences per minute across the fleet, oldest first; empty until a device reported "
        "its count twice."
    )


def _silent(device: DeviceView, now: datetime) -> bool:
    """Online on record, but not heard from within the lifetime it promised to update in."""
    if not device.online or not device.last_seen or not device.lifetime_s:
        return False
    return datetime.fromisoformat(device.last_seen) + timedelta(seconds=device.lifetime_s) < now


def _alert_id(*parts: str | None) -> str:
    """A short id from what identifies one occurrence of an alert; endpoints may hold any character."""
    return "alr_" + hashlib.sha256("\x1f".join(p or "" for p in parts).encode()).hexdigest()[:16]


def _moment(text: str | None) -> datetime | None:
    return None if text is None else as_utc(datetime.fromisoformat(text))


def _installation_alerts(installations: list[tuple[str, InstallationView]]) -> list[FleetAlert]:
    """One alert per installation in an alert state, resolved by a later successful installation;
    ``installations`` are (campaign id, installation) pairs, newest campaign first."""
    succeeded: dict[str, list[tuple[datetime, str]]] = {}
    for campaign_id, installation in installations:
        finished = _moment(installation.finished_at)
        if installation.state == InstallationState.SUCCEEDED.value and finished is not None:
            succeeded.setdefault(installation.endpoint, []).append((finished, campaign_id))
    alerts = []
    for campaign_id, installation in installations:
        if InstallationState(installation.state) not in ALERT_STATES:
            continue
        raised = _moment(installation.finished_at)
        later = sorted(
            (at, other)
            for at, other in succeeded.get(installation.endpoint, [])
            if other != campaign_id and raised is not None and at > raised
        )
        alert = FleetAlert(
            id=_alert_id(installation.state, campaign_id, installation.endpoint),
            kind=installation.state,
            endpoint=installation.endpoint,
            campaign=campaign_id,
            detail=installation.update_result_text or "",
            at=installation.finished_at,
        )
        if later:
            at, other = later[0]
            alert = alert.model_copy(
                update={
                    "active": False,
                    "resolved_at": at.isoformat(),
                    "resolution": f"installed campaign {other}'s module successfully",
                }
            )
        alerts.append(alert)
    return alerts


def _offline_id(endpoint: str, registered_at: datetime | None) -> str:
    """An offline alert is the end of one registration, so it is named by when that registration began."""
    return _alert_id(OFFLINE, endpoint, registered_at.isoformat() if registered_at else None)


def _offline_periods(presence: Iterable[PresenceEvent]) -> list[FleetAlert]:
    """Every time a device went offline and registered again afterwards, oldest first."""
    registered: dict[str, datetime | None] = {}
    gone: dict[str, PresenceEvent] = {}
    periods = []
    for event in presence:
        if event.kind == DeviceEventKind.REGISTERED:
            went = gone.pop(event.endpoint, None)
            if went is not None:
                periods.append(
                    FleetAlert(
                        id=_offline_id(event.endpoint, registered.get(event.endpoint)),
                        kind=OFFLINE,
                        endpoint=event.endpoint,
                        campaign=None,
                        detail=went.reason,
                        at=went.at.isoformat(),
                        active=False,
                        resolved_at=event.at.isoformat(),
                        resolution="the device registered again",
                    )
                )
            registered[event.endpoint] = event.at
        elif event.reason != _STILL_ONLINE and event.endpoint not in gone:
            gone[event.endpoint] = event
    return periods


def _offline_alert(endpoint: str, registered_at: datetime | None, last_seen: str | None) -> FleetAlert:
    return FleetAlert(
        id=_offline_id(endpoint, registered_at),
        kind=OFFLINE,
        endpoint=endpoint,
        campaign=None,
        detail="",
        at=last_seen,
    )


def _silent_alert(endpoint: str, last_seen: str | None, lifetime_s: int | None) -> FleetAlert:
    return FleetAlert(
        id=_alert_id(SILENT, endpoint, last_seen),
        kind=SILENT,
        endpoint=endpoint,
        campaign=None,
        detail=f"no word within its {lifetime_s} s lifetime",
        at=last_seen,
    )


def _device_alerts(devices: list[DeviceView], now: datetime) -> list[FleetAlert]:
    alerts = [
        _offline_alert(d.endpoint, _moment(d.registered_at), d.last_seen) for d in devices if not d.online
    ]
    alerts += [_silent_alert(d.endpoint, d.last_seen, d.lifetime_s) for d in devices if _silent(d, now)]
    return alerts


def _alerts(
    device_alerts: list[FleetAlert],
    installations: list[tuple[str, InstallationView]],
    presence: Iterable[PresenceEvent],
    acks: Mapping[str, AlertAck],
    now: datetime,
) -> tuple[list[FleetAlert], list[FleetAlert]]:
    """(active, resolved within ``RESOLVED_WINDOW`` latest first), each with its acknowledgement."""
    alerts = _installation_alerts(installations) + device_alerts
    active_ids = {alert.id for alert in alerts if alert.active}
    alerts += [a for a in _offline_periods(presence) if a.id not in active_ids]
    acknowledged = [
        alert.model_copy(update={"acknowledged_by": ack.by, "acknowledged_at": ack.at})
        if (ack := acks.get(alert.id))
        else alert
        for alert in alerts
    ]
    resolved = [
        alert
        for alert in acknowledged
        if not alert.active and (_moment(alert.resolved_at) or now) >= now - RESOLVED_WINDOW
    ]
    resolved.sort(key=lambda alert: _moment(alert.resolved_at) or now, reverse=True)
    return [alert for alert in acknowledged if alert.active], resolved


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
    presence: Iterable[PresenceEvent] = (),
    acks: Mapping[str, AlertAck] | None = None,
) -> FleetHealth:
    """The fleet's health from its views; ``samples`` are telemetry samples since ``since``, oldest first,
    ``presence`` the devices' registrations and departures oldest first, ``acks`` by alert id."""
    online = sum(1 for d in devices if d.online)
    installations = [(c.id, i) for c in campaigns for i in c.installations]
    active, resolved = _alerts(_device_alerts(devices, now), installations, presence, acks or {}, now)
    silent = [d.endpoint for d in devices if _silent(d, now)]
    return FleetHealth(
        at=now.isoformat(),
        since=since.isoformat(),
        devices=len(devices),
        online=online,
        offline=len(devices) - online,
        silent=silent,
        silent_count=len(silent),
        alerts=active,
        alerts_total=len(active),
        resolved=resolved,
        activity=_activity(samples),
    )


def _presence(ctx: Context, now: datetime) -> list[PresenceEvent]:
    """The presence events of the devices that went away and registered again within
    ``RESOLVED_WINDOW``: the only ones whose offline periods a report lists as resolved."""
    with ctx.session() as session:
        rows = DeviceRepository(session).presence_of_returned(
            DeviceEventKind.REGISTERED.value,
            [DeviceEventKind.OFFLINE.value, DeviceEventKind.DEREGISTERED.value],
            now - RESOLVED_WINDOW,
        )
        return [
            PresenceEvent(endpoint, kind, as_utc(at), str(detail.get("reason", "")))
            for endpoint, kind, at, detail in rows
        ]


def _acks(ctx: Context) -> dict[str, AlertAck]:
    with ctx.session() as session:
        return {
            alert_id: AlertAck(row.acknowledged_by, iso(row.acknowledged_at) or "")
            for alert_id, row in AlertAckRepository(session).all().items()
        }


def fleet_health(
    ctx: Context,
    now: datetime | None = None,
    window: timedelta = ACTIVITY_WINDOW,
    listed: int = DEVICES_LISTED,
) -> FleetHealth:
    """The fleet's health as the store stands, with inference activity over the last ``window`` and
    at most ``listed`` offline and silent devices each listed by name."""
    return _health(ctx, now or datetime.now(UTC), window, listed)


def _health(ctx: Context, now: datetime, window: timedelta, listed: int | None) -> FleetHealth:
    """The health report with at most ``listed`` offline and silent devices (None: every one)."""
    since = now - window
    with ctx.session() as session:
        repository = DeviceRepository(session)
        presence = repository.presence()
        offline = repository.offline_devices(listed)
        silent, silent_count = repository.silent_devices(now, listed)
        device_alerts = [
            _offline_alert(endpoint, as_utc(registered) if registered else None, iso(seen))
            for endpoint, registered, seen in offline
        ] + [_silent_alert(endpoint, iso(seen), lifetime) for endpoint, seen, lifetime in silent]
    installations = installations_to_alert(ctx, ALERT_STATES)
    active, resolved = _alerts(device_alerts, installations, _presence(ctx, now), _acks(ctx), now)
    return FleetHealth(
        at=now.isoformat(),
        since=since.isoformat(),
        devices=presence[True] + presence[False],
        online=presence[True],
        offline=presence[False],
        silent=[endpoint for endpoint, _, _ in silent],
        silent_count=silent_count,
        alerts=active,
        alerts_total=len(active) + presence[False] - len(offline) + silent_count - len(silent),
        resolved=resolved,
        activity=_activity(fleet_telemetry(ctx, since)),
    )


def acknowledge_alert(ctx: Context, alert_id: str, actor: str, now: datetime | None = None) -> FleetAlert:
    """Record that ``actor`` has seen the alert, active or resolved; the alert as it now stands.

    Acknowledging changes nothing on any device: an active alert stays active until its condition no
    longer holds. NotFound for an id no listed alert has; Conflict when it was acknowledged before, so
    the first acknowledgement (who took it on) is never overwritten.
    """
    now = now or datetime.now(UTC)
    health = _health(ctx, now, ACTIVITY_WINDOW, None)
    alert = next((a for a in (*health.alerts, *health.resolved) if a.id == alert_id), None)
    if alert is None:
        raise NotFound(
            f"no alert {alert_id!r}: it is neither active nor resolved within the last "
            f"{RESOLVED_WINDOW.days} days"
        )
    if alert.acknowledged_by is not None:
        raise Conflict(
            f"alert {alert_id} was acknowledged by {alert.acknowledged_by} at {alert.acknowledged_at}"
        )
    with ctx.session() as session:
        AlertAckRepository(session).add(
            AlertAckRow(
                alert_id=alert.id,
                kind=alert.kind,
                endpoint=alert.endpoint,
                campaign_id=alert.campaign,
                acknowledged_by=actor,
                acknowledged_at=now,
            )
        )
    return alert.model_copy(update={"acknowledged_by": actor, "acknowledged_at": now.isoformat()})

"""The fleet as the database knows it: devices, what each one last reported, and what happened to it.

Registrations themselves live only in the running server's registration store (``server.fleet``
writes what they say here), so ``devices list`` works with no server running and a device is still
known after it went away. A device's events and its telemetry samples share one table, told apart by
their ``DeviceEventKind``; samples are charted, never listed among events.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tinymlaas.services._reports import iso
from tinymlaas.services.campaigns import installation_entry
from tinymlaas.services.context import Context
from tinymlaas.storage.repositories import CampaignRepository, DeviceRepository
from tinymlaas.storage.tables import DeviceEventRow, DeviceRow

__all__ = [
    "TELEMETRY_SAMPLED",
    "DeviceDetail",
    "DeviceEventKind",
    "DeviceView",
    "FleetGroup",
    "as_utc",
    "device_history",
    "device_telemetry",
    "device_view",
    "event_view",
    "filter_choices",
    "fleet_groups",
    "fleet_telemetry",
    "list_devices",
    "list_devices_page",
    "prune_events",
    "show_device",
    "tag_device",
]


class DeviceEventKind(StrEnum):
    """What a device event records; the ``detail`` of each kind is named beside it."""

    # A Register was accepted: registration_id, address, lifetime, objects.
    REGISTERED = "registered"
    # An Update moved the device or changed its lifetime: address, lifetime. Plain renewals are not kept.
    UPDATED = "updated"
    # The device's reports were read after it registered: board and the objects that answered.
    REPORTED = "reported"
    # Reading (or observing) one object failed: path, error. The registration stands.
    READ_FAILED = "read_failed"
    # The device De-registered, or registered again (reason: "deregister" | "re-registered").
    DEREGISTERED = "deregistered"
    # Its lifetime lapsed without an Update, or the server stopped or restarted (reason).
    OFFLINE = "offline"
    # The inference figures one telemetry report carried (a subset of TELEMETRY_SAMPLED), kept so they
    # can be charted over time. Samples are not listed among a device's events or in its history.
    TELEMETRY = "telemetry"


# The telemetry figures kept over time; the confidence histogram and last result are kept only as
# last reported.
TELEMETRY_SAMPLED = ("inference_count", "mean_latency_ms", "p95_latency_ms")
_NOT_EVENTS = (DeviceEventKind.TELEMETRY.value,)


def as_utc(moment: datetime) -> datetime:
    """``moment`` with its time zone; SQLite hands stored times back without one, and they are UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class DeviceView(BaseModel):
    """A device as it last reported, as the CLI, the API and the dashboard show it."""

    model_config = ConfigDict(from_attributes=True)

    endpoint: str
    id: str
    board: str | None
    online: bool
    address: str | None
    lifetime_s: int | None
    lwm2m_version: str | None
    objects: list[str]
    registered_at: str | None
    last_seen: str | None
    model: str | None
    last_result: str | None
    capabilities: dict[str, Any]
    identity: dict[str, Any]
    installed: dict[str, Any]
    telemetry: dict[str, Any]
    tags: list[str]


class DeviceDetail(DeviceView):
    events: list[dict[str, Any]] = Field(description="Latest first.")


class FleetGroup(BaseModel):
    """How many devices share a board, a reported model and a presence, as ``DeviceView`` names them."""

    board: str | None
    model: str | None
    online: bool
    devices: int


def _model(name: Any, version: Any) -> str | None:
    """The installed package as a device view names it: ``name version``, ``?`` for a part not reported."""
    return f"{name or '?'} {version or '?'}" if name or version else None


def device_view(row: DeviceRow) -> DeviceView:
    installed = row.installed
    return DeviceView(
        endpoint=row.endpoint,
        id=row.id,
        board=row.board_id,
        online=row.online,
        address=row.address,
        lifetime_s=row.lifetime,
        lwm2m_version=row.lwm2m_version,
        objects=row.objects,
        registered_at=iso(row.registered_at),
        last_seen=iso(row.last_seen),
        model=_model(installed.get("name"), installed.get("version")),
        last_result=installed.get("update_result_text"),
        capabilities=row.capabilities,
        identity=row.identity,
        installed=installed,
        telemetry=row.telemetry,
        tags=row.tags,
    )


def event_view(row: DeviceEventRow) -> dict[str, Any]:
    return {"at": iso(row.at), "kind": row.kind, "detail": row.detail}


def list_devices(
    context: Context,
    *,
    board: str | None = None,
    online: bool | None = None,
    tag: str | None = None,
    model: str | None = None,
) -> list[DeviceView]:
    """Known devices by endpoint name, online or not; each filter given narrows the list.

    ``model`` matches the installed package the device reports, by name or as ``name:version``.
    """
    return list_devices_page(context, board=board, online=online, tag=tag, model=model)[0]


def list_devices_page(
    context: Context,
    *,
    board: str | None = None,
    online: bool | None = None,
    tag: str | None = None,
    model: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> tuple[list[DeviceView], int]:
    """One page of ``list_devices`` and how many devices pass the filters, filtered and paged in SQL,
    so a large fleet costs a page of rows, not all of them. InvalidInput for a tag no device can carry.
    """
    with context.session() as session:
        rows, count = DeviceRepository(session).devices_page(
            online=online, board=board, tag=tag, model=model, limit=limit, offset=offset
        )
        return [device_view(row) for row in rows], count


def fleet_groups(context: Context) -> list[FleetGroup]:
    """Devices counted by board, reported model and presence in SQL, so no device row is read."""
    with context.session() as session:
        return [
            FleetGroup(
                board=group.board,
                model=_model(group.model_name, group.model_version),
                online=group.online,
                devices=group.devices,
            )
            for group in DeviceRepository(session).counts()
        ]


def filter_choices(context: Context) -> dict[str, dict[str, int]]:
    """The boards, tags and installed models (``name:version``) devices reported, each with how many
    devices, for the filters of a device list; counted in SQL."""
    with context.session() as session:
        choices = DeviceRepository(session).choices()
        return {"boards": choices.boards, "tags": choices.tags, "models": choices.models}


def show_device(context: Context, endpoint: str, events: int = 20) -> DeviceDetail:
    """One device with its latest ``events``, newest first; NotFound names the known endpoints."""
    with context.session() as session:
        repository = DeviceRepository(session)
        view = device_view(repository.device(endpoint))
        kept = repository.events(endpoint, events, exclude=_NOT_EVENTS)
        return DeviceDetail(**dict(view), events=[event_view(row) for row in kept])


def _sample_view(row: DeviceEventRow) -> dict[str, Any]:
    return {"at": iso(row.at), **{name: row.detail.get(name) for name in TELEMETRY_SAMPLED}}


def device_telemetry(context: Context, endpoint: str, samples: int = 500) -> dict[str, Any]:
    """What the device last reported of its runtime, and its latest ``samples`` figures, oldest first."""
    with context.session() as session:
        repository = DeviceRepository(session)
        row = repository.device(endpoint)
        kept = repository.events(endpoint, samples, kinds=[DeviceEventKind.TELEMETRY.value])
        return {
            "endpoint": row.endpoint,
            "board": row.board_id,
            "online": row.online,
            "last_seen": iso(row.last_seen),
            "capabilities": row.capabilities,
            "installed": row.installed,
            "telemetry": row.telemetry,
            "samples": [_sample_view(sample) for sample in reversed(kept)],
        }


def fleet_telemetry(context: Context, since: datetime) -> list[dict[str, Any]]:
    """Every device's telemetry samples recorded since ``since``, oldest first, each naming its device."""
    with context.session() as session:
        rows = DeviceRepository(session).events_since(DeviceEventKind.TELEMETRY.value, since)
        return [{"endpoint": row.endpoint, **_sample_view(row)} for row in rows]


def device_history(
    context: Context, endpoint: str, *, limit: int = 100, offset: int = 0
) -> tuple[list[dict[str, Any]], int]:
    """The device's events and its installations across campaigns, newest first; and how many in all.

    An installation is placed at its last progress, so a rollout reads next to the events around it.
    """
    with context.session() as session:
        repository = DeviceRepository(session)
        repository.device(endpoint)  # NotFound names the known endpoints
        events = repository.events(endpoint, offset + limit, exclude=_NOT_EVENTS)
        total = repository.count_events(endpoint, exclude=_NOT_EVENTS)
        entries = [(as_utc(row.at), {"source": "event", **event_view(row)}) for row in events]
        for installation, campaign in CampaignRepository(session).installations_of(endpoint):
            entries.append(
                (
                    as_utc(installation.updated_at),
                    {"source": "installation", **installation_entry(installation, campaign)},
                )
            )
            total += 1
    entries.sort(key=lambda entry: entry[0], reverse=True)
    return [entry for _, entry in entries[offset : offset + limit]], total


def prune_events(context: Context, older_than: datetime) -> int:
    """Delete the events and telemetry samples recorded before ``older_than``; how many went.

    History is for looking back over weeks, not for ever: kept without end, every device that ever
    registered (or every name someone registered under) would grow the table without bound.
    """
    with context.session() as session:
        return DeviceRepository(session).delete_events_before(older_than)


def tag_device(context: Context, endpoint: str, tags: list[str]) -> DeviceView:
    """Replace a device's tags (labels an operator groups devices by, e.g. for rollout waves)."""
    with context.session() as session:
        return device_view(DeviceRepository(session).set_tags(endpoint, tags))

"""The device aggregate: what each device last reported, and its event history."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, String, and_, cast, delete, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from tinymlaas.errors import InvalidInput, NotFound
from tinymlaas.storage.tables import DeviceEventRow, DeviceRow

__all__ = ["DeviceCounts", "DeviceRepository", "FleetChoices", "check_tag"]

# How many endpoints a NotFound names, so a typo on a large fleet still gives a readable message.
_KNOWN_SHOWN = 10
# A device tag: letters, digits and ``. _ : / -``, so a tag filter can look for the quoted tag in the
# stored JSON list (on SQLite and PostgreSQL alike) and no tag holds a quote, backslash or LIKE wildcard
# other than ``_``, which is escaped.
_TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}")


def check_tag(tag: str) -> str:
    """``tag`` if it is a valid device tag; InvalidInput naming what a tag may hold otherwise."""
    if not tag:
        raise InvalidInput("a device tag cannot be empty")
    if not _TAG.fullmatch(tag):
        raise InvalidInput(
            f"device tag {tag!r}: 1-64 letters, digits and . _ : / -, starting with a letter or digit"
        )
    return tag


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class DeviceCounts:
    """How many devices share one board, installed model and presence (None: not reported)."""

    board: str | None
    model_name: str | None
    model_version: str | None
    online: bool
    devices: int


@dataclass(frozen=True)
class FleetChoices:
    """The boards, tags and installed models (``name:version``) devices reported, each with how many."""

    boards: dict[str, int]
    tags: dict[str, int]
    models: dict[str, int]


def _installed(key: str) -> Any:
    return DeviceRow.installed[key].as_string()


class DeviceRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def find(self, endpoint: str) -> DeviceRow | None:
        return self.session.scalar(select(DeviceRow).where(DeviceRow.endpoint == endpoint))

    def device(self, endpoint: str) -> DeviceRow:
        """The device with this endpoint name; NotFound names the known ones."""
        row = self.find(endpoint)
        if row is None:
            known = list(
                self.session.scalars(
                    select(DeviceRow.endpoint).order_by(DeviceRow.endpoint).limit(_KNOWN_SHOWN + 1)
                )
            )
            if not known:
                hint = "no device has registered yet"
            else:
                hint = (
                    "known: "
                    + ", ".join(known[:_KNOWN_SHOWN])
                    + (", ..." if len(known) > _KNOWN_SHOWN else "")
                )
            raise NotFound(f"no device {endpoint!r} ({hint})")
        return row

    def devices(self, *, online: bool | None = None) -> list[DeviceRow]:
        query = select(DeviceRow).order_by(DeviceRow.endpoint)
        if online is not None:
            query = query.where(DeviceRow.online == online)
        return list(self.session.scalars(query))

    def devices_page(
        self,
        *,
        online: bool | None = None,
        board: str | None = None,
        tag: str | None = None,
        model: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> tuple[list[DeviceRow], int]:
        """One page of the devices that pass every filter given, by endpoint; and how many pass.

        ``model`` is the installed package the device reports, by name or as ``name:version``.
        """
        conditions: list[Any] = []
        if online is not None:
            conditions.append(DeviceRow.online == online)
        if board is not None:
            conditions.append(DeviceRow.board_id == board)
        if tag is not None:
            quoted = '"' + check_tag(tag).replace("_", "\\_") + '"'
            conditions.append(cast(DeviceRow.tags, String).like(f"%{quoted}%", escape="\\"))
        if model is not None:
            name, _, version = model.partition(":")
            conditions.append(DeviceRow.installed["name"].as_string() == name)
            if version:
                conditions.append(cast(DeviceRow.installed["version"].as_string(), String) == version)
        query = select(DeviceRow).where(*conditions).order_by(DeviceRow.endpoint).offset(offset)
        if limit is not None:
            query = query.limit(limit)
        count = self.session.scalar(select(func.count(DeviceRow.id)).where(*conditions)) or 0
        return list(self.session.scalars(query)), count

    def presence(self) -> dict[bool, int]:
        """How many devices are online (True) and offline (False), counted in SQL."""
        counts = {True: 0, False: 0}
        for online, devices in self.session.execute(
            select(DeviceRow.online, func.count(DeviceRow.id)).group_by(DeviceRow.online)
        ):
            counts[bool(online)] += devices
        return counts

    def counts(self) -> list[DeviceCounts]:
        """Devices grouped by board, installed model name and version and presence, counted in SQL."""
        name, version = _installed("name"), _installed("version")
        query = (
            select(DeviceRow.board_id, name, version, DeviceRow.online, func.count(DeviceRow.id))
            .group_by(DeviceRow.board_id, name, version, DeviceRow.online)
            # Unreported first on every backend: SQLite puts NULL first by default, PostgreSQL last.
            .order_by(
                DeviceRow.board_id.nulls_first(), name.nulls_first(), version.nulls_first(), DeviceRow.online
            )
        )
        return [
            DeviceCounts(board, model_name, None if model_version is None else str(model_version), online, n)
            for board, model_name, model_version, online, n in self.session.execute(query)
        ]

    def choices(self) -> FleetChoices:
        """What a device list can be filtered by, from grouped counts: one row per distinct board,
        model and tag set, never one per device. Tags are kept sorted, so equal sets group together.
        """
        boards: Counter[str] = Counter()
        models: Counter[str] = Counter()
        for group in self.counts():
            if group.board:
                boards[group.board] += group.devices
            if group.model_name:
                models[f"{group.model_name}:{group.model_version or ''}".rstrip(":")] += group.devices
        tags: Counter[str] = Counter()
        # Grouped by the stored text, which both SQLite and PostgreSQL can compare (a PostgreSQL json
        # value cannot be), and read back from it.
        tag_text = cast(DeviceRow.tags, String)
        for tag_set, devices in self.session.execute(
            select(tag_text, func.count(DeviceRow.id)).group_by(tag_text)
        ):
            for tag in json.loads(tag_set) if tag_set else []:
                tags[tag] += devices
        return FleetChoices(
            boards=dict(sorted(boards.items())),
            tags=dict(sorted(tags.items())),
            models=dict(sorted(models.items())),
        )

    def offline_devices(self, limit: int | None) -> list[tuple[str, datetime | None, datetime | None]]:
        """The first ``limit`` offline devices by endpoint (None: all): endpoint, registered_at, last_seen."""
        query = (
            select(DeviceRow.endpoint, DeviceRow.registered_at, DeviceRow.last_seen)
            .where(DeviceRow.online.is_(False))
            .order_by(DeviceRow.endpoint)
            .limit(limit)
        )
        return [(endpoint, registered, seen) for endpoint, registered, seen in self.session.execute(query)]

    def silent_devices(self, now: datetime, limit: int | None) -> tuple[list[tuple[str, datetime, int]], int]:
        """The first ``limit`` (None: all) online devices not heard from within their lifetime, by
        endpoint, as (endpoint, last_seen, lifetime); and how many there are.

        The verdict (last seen plus lifetime before ``now``) is the database's, so a fleet of thousands
        costs one count and one page of rows, not a row per device in Python.
        """
        silent = (
            DeviceRow.online.is_(True),
            DeviceRow.lifetime > 0,
            DeviceRow.last_seen.is_not(None),
            self._expired_before(now),
        )
        count = self.session.scalar(select(func.count()).select_from(DeviceRow).where(*silent)) or 0
        query = (
            select(DeviceRow.endpoint, DeviceRow.last_seen, DeviceRow.lifetime)
            .where(*silent)
            .order_by(DeviceRow.endpoint)
            .limit(limit)
        )
        return [(endpoint, seen, lifetime) for endpoint, seen, lifetime in self.session.execute(query)], count

    def _expired_before(self, now: datetime) -> ColumnElement[bool]:
        """``last_seen`` plus ``lifetime`` seconds lies before ``now``, in this database's date arithmetic."""
        if self.session.get_bind().dialect.name == "postgresql":
            expires = DeviceRow.last_seen + func.make_interval(0, 0, 0, 0, 0, 0, DeviceRow.lifetime)
            return expires < now
        # SQLite keeps UTC times as text; julianday counts days.
        moment = now.astimezone(UTC).replace(tzinfo=None)
        return func.julianday(DeviceRow.last_seen) + DeviceRow.lifetime / 86400.0 < func.julianday(moment)

    def upsert_registration(
        self,
        endpoint: str,
        *,
        new_id: str,
        registration_id: str,
        address: str | None,
        lifetime: int,
        lwm2m_version: str,
        objects: Iterable[str],
        registered_at: datetime,
        server_id: str | None = None,
    ) -> DeviceRow:
        """Mark a device online under a new registration (with the server ``server_id``), creating its
        row (id ``new_id``) on first sight.

        What the device is (board, capabilities, identity) and its tags are kept until it reports again:
        a reboot does not make the server forget what the device is, and the compatibility gate still
        knows it. What it is doing (installed package, telemetry counters) belongs to one registration
        and is cleared: a device registering anew may have been reset or replaced, so until its reports
        of this registration arrive the server shows nothing rather than another boot's model and
        counts, and a report that never arrives cannot leave them standing. Its events stay.
        """
        row = self.find(endpoint)
        if row is None:
            row = DeviceRow(
                id=new_id,
                endpoint=endpoint,
                capabilities={},
                identity={},
                installed={},
                telemetry={},
                tags=[],
            )
            self.session.add(row)
        row.installed = {}
        row.telemetry = {}
        row.registration_id = registration_id
        row.online = True
        row.address = address
        row.lifetime = lifetime
        row.lwm2m_version = lwm2m_version
        row.objects = list(objects)
        row.registered_at = registered_at
        row.last_seen = registered_at
        row.server_id = server_id
        self.session.flush()
        return row

    def seen(
        self,
        endpoint: str,
        at: datetime,
        *,
        address: str | None = None,
        lifetime: int | None = None,
        objects: Iterable[str] | None = None,
        server_id: str | None = None,
    ) -> DeviceRow:
        """Record an Update: the device is alive at ``at`` (and may have moved, changed its lifetime or
        sent its object list anew, or updated with ``server_id`` after failing over to it)."""
        row = self.device(endpoint)
        row.online = True
        row.last_seen = at
        if server_id is not None:
            row.server_id = server_id
        if address is not None:
            row.address = address
        if lifetime is not None:
            row.lifetime = lifetime
        if objects is not None:
            row.objects = list(objects)
        return row

    def mark_offline(self, endpoint: str) -> DeviceRow:
        row = self.device(endpoint)
        row.online = False
        return row

    def mark_all_offline(self) -> list[str]:
        """Set every online device offline; return their endpoints (sorted)."""
        return self._set_offline(DeviceRow.online.is_(True))

    def mark_offline_served_by(self, server_id: str) -> list[str]:
        """Set the online devices registered with ``server_id`` offline; their endpoints (sorted)."""
        return self._set_offline(DeviceRow.online.is_(True), DeviceRow.server_id == server_id)

    def mark_offline_unless_served_by(self, alive: Iterable[str], *, unknown: bool = True) -> list[str]:
        """Set offline the online devices whose server is not one of ``alive``, and with ``unknown``
        those whose server is not known (registered before servers were recorded); their endpoints."""
        alive = list(alive)
        gone = DeviceRow.server_id.is_not(None)
        if alive:
            gone = and_(gone, DeviceRow.server_id.not_in(alive))
        return self._set_offline(
            DeviceRow.online.is_(True), or_(gone, DeviceRow.server_id.is_(None)) if unknown else gone
        )

    def _set_offline(self, *where: ColumnElement[bool]) -> list[str]:
        endpoints = list(
            self.session.scalars(select(DeviceRow.endpoint).where(*where).order_by(DeviceRow.endpoint))
        )
        if endpoints:
            self.session.execute(
                update(DeviceRow)
                .where(*where)
                .values(online=False)
                .execution_options(synchronize_session=False)
            )
        return endpoints

    def set_reported(
        self,
        endpoint: str,
        *,
        board_id: str | None = None,
        capabilities: dict[str, Any] | None = None,
        identity: dict[str, Any] | None = None,
        installed: dict[str, Any] | None = None,
        telemetry: dict[str, Any] | None = None,
    ) -> DeviceRow:
        """Replace what the device reported, part by part; None leaves a part as it is."""
        row = self.device(endpoint)
        if board_id is not None:
            row.board_id = board_id
        if capabilities is not None:
            row.capabilities = dict(capabilities)
        if identity is not None:
            row.identity = dict(identity)
        if installed is not None:
            row.installed = dict(installed)
        if telemetry is not None:
            row.telemetry = dict(telemetry)
        return row

    def set_tags(self, endpoint: str, tags: Iterable[str]) -> DeviceRow:
        """Replace the device's tags (operator labels for grouping, e.g. campaign waves); kept sorted."""
        cleaned = sorted({check_tag(tag.strip()) for tag in tags})
        row = self.device(endpoint)
        row.tags = cleaned
        return row

    def record_event(
        self, endpoint: str, kind: str, detail: dict[str, Any] | None = None, *, at: datetime | None = None
    ) -> DeviceEventRow:
        row = DeviceEventRow(endpoint=endpoint, kind=kind, detail=dict(detail or {}), at=at or _now())
        self.session.add(row)
        self.session.flush()
        return row

    def events(
        self,
        endpoint: str,
        limit: int = 20,
        *,
        kinds: Iterable[str] | None = None,
        exclude: Iterable[str] = (),
    ) -> list[DeviceEventRow]:
        """The device's latest ``limit`` events, newest first; only ``kinds``, and none of ``exclude``."""
        query = _of_kinds(select(DeviceEventRow), endpoint, kinds, exclude)
        return list(self.session.scalars(query.order_by(DeviceEventRow.id.desc()).limit(limit)))

    def count_events(
        self, endpoint: str, *, kinds: Iterable[str] | None = None, exclude: Iterable[str] = ()
    ) -> int:
        query = _of_kinds(select(func.count(DeviceEventRow.id)), endpoint, kinds, exclude)
        return self.session.scalar(query) or 0

    def trim_events(self, endpoint: str, kind: str, keep: int) -> None:
        """Delete all but the newest ``keep`` events of ``kind`` of one device."""
        oldest_kept = self.session.scalar(
            _of_kinds(select(DeviceEventRow.id), endpoint, [kind], ())
            .order_by(DeviceEventRow.id.desc())
            .offset(keep - 1)
            .limit(1)
        )
        if oldest_kept is not None:
            self.session.execute(
                delete(DeviceEventRow).where(
                    DeviceEventRow.endpoint == endpoint,
                    DeviceEventRow.kind == kind,
                    DeviceEventRow.id < oldest_kept,
                )
            )

    def delete_events_before(self, before: datetime) -> int:
        """Delete every device's events (telemetry samples included) recorded before ``before``; how many."""
        result = self.session.execute(delete(DeviceEventRow).where(DeviceEventRow.at < before))
        return int(getattr(result, "rowcount", 0) or 0)

    def presence_of_returned(
        self, registered: str, departed: Iterable[str], since: datetime
    ) -> list[tuple[str, str, datetime, dict[str, Any]]]:
        """Every ``registered`` and ``departed`` event, oldest first, of the devices that registered at or
        after ``since`` and not before a ``departed`` event of theirs: the devices that came back, as
        (endpoint, kind, at, detail); columns rather than rows, as a fleet has thousands of them."""
        kinds = [registered, *departed]
        came, went = aliased(DeviceEventRow), aliased(DeviceEventRow)
        returned = (
            select(came.endpoint)
            .join(went, went.endpoint == came.endpoint)
            .where(came.kind == registered, came.at >= since, went.kind.in_(kinds[1:]), went.at <= came.at)
        )
        query = select(DeviceEventRow.endpoint, DeviceEventRow.kind, DeviceEventRow.at, DeviceEventRow.detail)
        query = query.where(DeviceEventRow.kind.in_(kinds), DeviceEventRow.endpoint.in_(returned))
        return list(self.session.execute(query.order_by(DeviceEventRow.id)).tuples())

    def events_since(self, kind: str, since: datetime) -> list[DeviceEventRow]:
        """Every device's events of ``kind`` recorded at or after ``since``, oldest first."""
        query = select(DeviceEventRow).where(DeviceEventRow.kind == kind, DeviceEventRow.at >= since)
        return list(self.session.scalars(query.order_by(DeviceEventRow.id)))


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _of_kinds(
    query: Select[Any], endpoint: str, kinds: Iterable[str] | None, exclude: Iterable[str]
) -> Select[Any]:
    query = query.where(DeviceEventRow.endpoint == endpoint)
    if kinds is not None:
        query = query.where(DeviceEventRow.kind.in_(list(kinds)))
    excluded = list(exclude)
    if excluded:
        query = query.where(DeviceEventRow.kind.not_in(excluded))
    return query

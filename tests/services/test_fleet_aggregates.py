"""Fleet health read through bounded queries says what working over every device row said."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from helpers.seeding import add_campaign, add_model_chain, register_device
from tinymlaas.services.campaigns import list_campaigns
from tinymlaas.services.context import Context
from tinymlaas.services.fleet import DeviceEventKind, as_utc, fleet_groups, fleet_telemetry, list_devices
from tinymlaas.services.fleet_health import (
    ACTIVITY_WINDOW,
    DEVICES_LISTED,
    PresenceEvent,
    acknowledge_alert,
    assess_fleet,
    fleet_health,
)
from tinymlaas.storage.repositories import DeviceRepository

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _seed(context: Context) -> None:
    """Online, offline, silent and returned devices, with presence events and failed installations."""
    with context.session() as session:
        add_model_chain(session, model_id="mdl_a", variant_id="var_a", module_id="mod_a", board="pico")
        devices = DeviceRepository(session)
        for i in range(30):
            endpoint = f"n{i:02d}"
            registered = NOW - timedelta(days=10 if i % 7 == 0 else 0, minutes=5 + i)
            register_device(devices, endpoint, registered, lifetime=60 if i % 4 else 3600)
            devices.record_event(endpoint, "registered", {"registration_id": "r1"}, at=registered)
            devices.set_reported(endpoint, board_id=("pico", "esp32s3")[i % 2], installed={"name": "kws"})
            if i % 3 == 0:  # went away; every other one registered again since
                gone = registered + timedelta(minutes=1)
                devices.record_event(endpoint, "offline", {"reason": "lifetime expired"}, at=gone)
                devices.mark_offline(endpoint)
                if i % 2 == 0:
                    back = gone + timedelta(minutes=2)
                    devices.record_event(endpoint, "registered", {"registration_id": "r2"}, at=back)
                    register_device(devices, endpoint, back, lifetime=3600)
            if i % 5 == 0:
                add_campaign(
                    session, campaign_id=f"cmp_{i}", module_id="mod_a", selector="board:pico",
                    endpoint=endpoint, state="halted", installation="failed", at=NOW, update_result=53,
                    started_at=NOW - timedelta(minutes=3), finished_at=NOW - timedelta(minutes=2),
                )  # fmt: skip


def _every_device_health(context: Context, now: datetime):
    """The report as it was worked out before: over every device view and every presence event."""
    with context.session() as session:
        repository = DeviceRepository(session)
        kinds = (DeviceEventKind.REGISTERED, DeviceEventKind.OFFLINE, DeviceEventKind.DEREGISTERED)
        rows = sorted(
            (
                row
                for kind in kinds
                for row in repository.events_since(kind, datetime.min.replace(tzinfo=UTC))
            ),
            key=lambda row: row.id,
        )
        presence = [
            PresenceEvent(row.endpoint, row.kind, as_utc(row.at), str(row.detail.get("reason", "")))
            for row in rows
        ]
    since = now - ACTIVITY_WINDOW
    return assess_fleet(
        list_devices(context), list_campaigns(context), fleet_telemetry(context, since), now, since, presence
    )


def test_the_bounded_health_report_equals_the_one_worked_out_over_every_device(context: Context) -> None:
    _seed(context)
    acknowledged = acknowledge_alert(context, fleet_health(context, NOW).alerts[0].id, "ops", NOW)
    before = _every_device_health(context, NOW)
    after = fleet_health(context, NOW)

    assert (after.devices, after.online, after.offline) == (before.devices, before.online, before.offline)
    assert after.silent == before.silent and after.silent_count == len(before.silent) > 0
    assert {a.id for a in after.alerts} == {a.id for a in before.alerts}
    assert after.alerts_total == before.alerts_total == len(before.alerts)
    assert [a.id for a in after.resolved] == [a.id for a in before.resolved] != []
    unacked = {"acknowledged_by", "acknowledged_at"}
    assert [a.model_dump(exclude=unacked) for a in after.resolved] == [
        a.model_dump(exclude=unacked) for a in before.resolved
    ]
    by_id = {a.id: a.model_dump(exclude=unacked) for a in before.alerts}
    assert all(alert.model_dump(exclude=unacked) == by_id[alert.id] for alert in after.alerts)
    assert [a.acknowledged_by for a in after.alerts if a.id == acknowledged.id] == ["ops"]


def test_fleet_groups_count_every_device_by_board_model_and_presence(context: Context) -> None:
    _seed(context)
    counted: dict[tuple[str | None, str | None, bool], int] = {}
    for device in list_devices(context):
        key = (device.board, device.model, device.online)
        counted[key] = counted.get(key, 0) + 1
    assert {(g.board, g.model, g.online): g.devices for g in fleet_groups(context)} == counted


def test_a_report_lists_a_bounded_number_of_offline_devices_and_counts_them_all(context: Context) -> None:
    with context.session() as session:
        devices = DeviceRepository(session)
        for i in range(DEVICES_LISTED + 5):
            register_device(devices, f"o{i:04d}", NOW - timedelta(minutes=1))
            devices.mark_offline(f"o{i:04d}")
    health = fleet_health(context, NOW)
    assert health.offline == DEVICES_LISTED + 5
    assert len([a for a in health.alerts if a.kind == "offline"]) == DEVICES_LISTED
    assert health.alerts_total == DEVICES_LISTED + 5
    assert fleet_health(context, NOW, listed=3).alerts_total == DEVICES_LISTED + 5
    # An alert beyond the listed ones can still be acknowledged.
    last = _every_device_health(context, NOW).alerts[-1]
    assert acknowledge_alert(context, last.id, "ops", NOW).acknowledged_by == "ops"

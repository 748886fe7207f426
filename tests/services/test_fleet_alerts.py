"""Fleet alerts resolve by themselves once their condition ends, and keep who acknowledged them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from helpers.seeding import add_campaign, add_model_chain, register_device
from tinymlaas.errors import Conflict, NotFound
from tinymlaas.services.context import Context
from tinymlaas.services.fleet import DeviceEventKind
from tinymlaas.services.fleet_health import RESOLVED_WINDOW, acknowledge_alert, fleet_health
from tinymlaas.storage.repositories import AlertAckRepository, DeviceRepository

NOW = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)


def _seed_failed_update(context: Context) -> None:
    """dev-1 failed to install model v1 (campaign cmp_v1), five minutes ago."""
    with context.session() as session:
        add_model_chain(session, model_id="mdl_1", variant_id="var_1", module_id="mod_1", board="pico")
        add_model_chain(
            session, model_id="mdl_2", variant_id="var_2", module_id="mod_2", board="pico", version=2
        )
        devices = DeviceRepository(session)
        register_device(devices, "dev-1", NOW - timedelta(hours=1), lifetime=86_400)
        devices.seen("dev-1", NOW)
        add_campaign(
            session, campaign_id="cmp_v1", module_id="mod_1", selector="dev-1", endpoint="dev-1",
            state="halted", installation="failed", at=NOW - timedelta(minutes=5), update_result=58,
            finished_at=NOW - timedelta(minutes=5),
        )  # fmt: skip


def test_a_failed_update_resolves_once_the_device_installs_a_later_campaign(context: Context) -> None:
    _seed_failed_update(context)
    (alert,) = fleet_health(context, NOW).alerts
    assert (alert.kind, alert.endpoint, alert.campaign, alert.active) == ("failed", "dev-1", "cmp_v1", True)
    assert fleet_health(context, NOW).resolved == []

    installed = NOW + timedelta(minutes=1)
    with context.session() as session:
        add_campaign(
            session, campaign_id="cmp_v2", module_id="mod_2", selector="dev-1", endpoint="dev-1",
            state="completed", installation="succeeded", at=installed, finished_at=installed,
        )  # fmt: skip
    health = fleet_health(context, NOW + timedelta(minutes=2))
    assert health.alerts == []
    (resolved,) = health.resolved
    assert resolved.id == alert.id and not resolved.active
    assert datetime.fromisoformat(resolved.resolved_at or "") == installed
    assert resolved.resolution == "installed campaign cmp_v2's module successfully"
    # A week after it resolved it is no longer listed.
    assert fleet_health(context, installed + RESOLVED_WINDOW + timedelta(seconds=1)).resolved == []


def test_an_earlier_success_does_not_resolve_a_later_failure(context: Context) -> None:
    _seed_failed_update(context)
    earlier = NOW - timedelta(minutes=30)
    with context.session() as session:
        add_campaign(
            session, campaign_id="cmp_v0", module_id="mod_2", selector="dev-1", endpoint="dev-1",
            state="completed", installation="succeeded", at=earlier, finished_at=earlier,
        )  # fmt: skip
    assert [a.campaign for a in fleet_health(context, NOW).alerts] == ["cmp_v1"]


def test_an_offline_device_that_registers_again_resolves_its_alert(context: Context) -> None:
    went, back = NOW - timedelta(minutes=20), NOW - timedelta(minutes=2)
    first = NOW - timedelta(hours=1)
    with context.session() as session:
        devices = DeviceRepository(session)
        register_device(devices, "dev-2", first, lifetime=86_400)
        devices.record_event("dev-2", DeviceEventKind.REGISTERED, {}, at=first)
        devices.mark_offline("dev-2")
        devices.record_event("dev-2", DeviceEventKind.OFFLINE, {"reason": "lifetime expired"}, at=went)
    (offline,) = fleet_health(context, NOW - timedelta(minutes=10)).alerts
    assert (offline.kind, offline.endpoint, offline.active) == ("offline", "dev-2", True)
    acknowledge_alert(context, offline.id, "token ops (tok_1)", NOW - timedelta(minutes=9))

    with context.session() as session:
        devices = DeviceRepository(session)
        register_device(devices, "dev-2", back, lifetime=86_400)
        devices.record_event("dev-2", DeviceEventKind.REGISTERED, {}, at=back)
        devices.seen("dev-2", NOW)
    health = fleet_health(context, NOW)
    assert health.alerts == []
    (resolved,) = health.resolved
    assert resolved.id == offline.id  # the same occurrence, now resolved, still acknowledged
    assert (resolved.kind, resolved.detail, resolved.resolution) == (
        "offline",
        "lifetime expired",
        "the device registered again",
    )
    assert datetime.fromisoformat(resolved.at or "") == went
    assert datetime.fromisoformat(resolved.resolved_at or "") == back
    assert resolved.acknowledged_by == "token ops (tok_1)"


def test_a_re_registration_is_no_offline_period(context: Context) -> None:
    with context.session() as session:
        devices = DeviceRepository(session)
        register_device(devices, "dev-3", NOW, lifetime=86_400)
        devices.record_event("dev-3", DeviceEventKind.REGISTERED, {}, at=NOW - timedelta(minutes=5))
        devices.record_event(
            "dev-3", DeviceEventKind.DEREGISTERED, {"reason": "re-registered"}, at=NOW - timedelta(minutes=1)
        )
        devices.record_event("dev-3", DeviceEventKind.REGISTERED, {}, at=NOW - timedelta(minutes=1))
    health = fleet_health(context, NOW)
    assert (health.alerts, health.resolved) == ([], [])


def test_acknowledging_records_who_and_when_once_and_keeps_the_alert_active(context: Context) -> None:
    _seed_failed_update(context)
    (alert,) = fleet_health(context, NOW).alerts
    acked = acknowledge_alert(context, alert.id, "token ops (tok_1)", NOW)
    assert (acked.acknowledged_by, acked.acknowledged_at, acked.active) == (
        "token ops (tok_1)",
        NOW.isoformat(),
        True,
    )
    (still,) = fleet_health(context, NOW).alerts
    assert still.acknowledged_by == "token ops (tok_1)" and still.active
    with context.session() as session:
        row = AlertAckRepository(session).get(alert.id)
        assert row is not None and (row.kind, row.endpoint, row.campaign_id) == ("failed", "dev-1", "cmp_v1")
    with pytest.raises(Conflict, match="acknowledged by token ops"):
        acknowledge_alert(context, alert.id, "token other (tok_2)", NOW)
    with pytest.raises(NotFound, match="alr_missing"):
        acknowledge_alert(context, "alr_missing", "token ops (tok_1)", NOW)

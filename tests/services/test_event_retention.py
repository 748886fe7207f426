"""Device history is kept for a while, not for ever: old events go, by age, and recent ones stay."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tinymlaas.server.fleet import FleetService
from tinymlaas.services.context import Context
from tinymlaas.services.fleet import DeviceEventKind, prune_events
from tinymlaas.settings import Settings
from tinymlaas.storage.repositories import DeviceRepository
from tinymlaas.storage.tables import DeviceEventRow

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def seed(context: Context, ages_in_days: dict[str, list[float]]) -> None:
    """Devices with an event (and a telemetry sample) this many days before ``NOW``."""
    with context.session() as session:
        devices = DeviceRepository(session)
        for endpoint, ages in ages_in_days.items():
            devices.upsert_registration(
                endpoint,
                new_id=f"dev_{endpoint}",
                registration_id=f"r-{endpoint}",
                address="coap://127.0.0.1:5000",
                lifetime=60,
                lwm2m_version="1.1",
                objects=["/3/0"],
                registered_at=NOW,
            )
            for age in ages:
                at = NOW - timedelta(days=age)
                devices.record_event(endpoint, DeviceEventKind.UPDATED, {"age_days": age}, at=at)
                devices.record_event(endpoint, DeviceEventKind.TELEMETRY, {"inference_count": 1}, at=at)


def remaining(context: Context) -> list[tuple[str, str, float]]:
    with context.session() as session:
        rows = session.query(DeviceEventRow).order_by(DeviceEventRow.id).all()
        return [(row.endpoint, row.kind, row.detail.get("age_days", -1.0)) for row in rows]


def test_prune_removes_events_older_than_the_cut_and_keeps_the_rest(tmp_path: Path) -> None:
    context = Context(Settings(data_dir=tmp_path / "data"))
    seed(context, {"a": [90.0, 31.0, 29.0, 0.5], "b": [45.0]})
    assert prune_events(context, NOW - timedelta(days=30)) == 6  # three events and their samples
    kept = remaining(context)
    assert [(endpoint, age) for endpoint, kind, age in kept if kind == "updated"] == [("a", 29.0), ("a", 0.5)]
    assert sum(1 for _, kind, _ in kept if kind == "telemetry") == 2
    assert prune_events(context, NOW - timedelta(days=30)) == 0
    with context.session() as session:
        assert DeviceRepository(session).find("b") is not None  # the device outlives its history


def test_the_server_prunes_past_the_retention_setting_when_it_starts(tmp_path: Path) -> None:
    context = Context(Settings(data_dir=tmp_path / "data", event_retention_days=7))
    seed(context, {"a": [10.0, 6.0]})

    async def scenario() -> None:
        fleet = await FleetService.start(context, "127.0.0.1", 0, clock=NOW.timestamp)
        try:
            async with asyncio.timeout(5):
                while any(age == 10.0 for _, _, age in remaining(context)):
                    await asyncio.sleep(0.05)
        finally:
            await fleet.stop()

    asyncio.run(scenario())
    ages = {age for endpoint, kind, age in remaining(context) if kind == "updated"}
    assert ages == {6.0}

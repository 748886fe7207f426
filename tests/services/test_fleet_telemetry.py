"""Telemetry over time: each report a device sends is kept as a sample, one per report round."""

from __future__ import annotations

import pathlib
from datetime import UTC, datetime, timedelta

import pytest
from test_fleet import RUNTIME_VALUES, Device, eventually, run

from tinymlaas.lwm2m.core import Path
from tinymlaas.server import fleet as fleet_host
from tinymlaas.server.fleet import FleetService
from tinymlaas.services.context import Context
from tinymlaas.services.fleet import device_telemetry, fleet_telemetry, show_device
from tinymlaas.settings import Settings


@pytest.fixture
def context(tmp_path: pathlib.Path) -> Context:
    """The devices here are test doubles speaking plain CoAP, which the server takes with allow_nosec only."""
    return Context(Settings(data_dir=tmp_path / "data", allow_nosec=True))


COUNT, MEAN, P95 = (Path(26241, 0, resource) for resource in (10, 11, 12))


def figures(context: Context, endpoint: str) -> list[tuple[int | None, float | None, float | None]]:
    samples = device_telemetry(context, endpoint)["samples"]
    return [(s["inference_count"], s["mean_latency_ms"], s["p95_latency_ms"]) for s in samples]


def test_each_report_round_is_one_sample_and_old_ones_are_trimmed(
    context: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fleet_host, "TELEMETRY_SAMPLES_KEPT", 2)

    async def scenario() -> None:
        now = [1_000_000.0]
        fleet = await FleetService.start(
            context, "127.0.0.1", 0, nosec_port=0, clock=lambda: now[0], request_timeout=3
        )
        device = await Device.start({**RUNTIME_VALUES, P95: 2.5})
        try:
            await device.register(fleet.nosec_uri, "kws-1")
            await eventually(lambda: figures(context, "kws-1") == [(7, 1.5, 2.5)])
            for path in (COUNT, MEAN):
                await eventually(lambda path=path: device.coap.observer_count(str(path)) == 1)

            # One round: the count and the mean arrive as two notifications, and make one sample.
            now[0] += 5
            device.values.update({COUNT: 12, MEAN: 1.75})
            device.coap.notify(str(COUNT))
            device.coap.notify(str(MEAN))
            await eventually(lambda: figures(context, "kws-1")[-1] == (12, 1.75, None))

            # The next round, later: a new sample, and only the newest two are kept.
            now[0] += 5
            device.values[COUNT] = 20
            device.coap.notify(str(COUNT))
            await eventually(lambda: figures(context, "kws-1") == [(12, 1.75, None), (20, None, None)])
        finally:
            await fleet.stop()
            await device.coap.close()

    run(scenario)
    assert device_telemetry(context, "kws-1")["telemetry"]["inference_count"] == 20
    assert "telemetry" not in {e["kind"] for e in show_device(context, "kws-1").events}
    started = datetime.fromtimestamp(1_000_000, UTC)
    assert [s["inference_count"] for s in fleet_telemetry(context, since=started)] == [12, 20]
    assert fleet_telemetry(context, since=started + timedelta(seconds=6)) == [
        {"endpoint": "kws-1", "at": (started + timedelta(seconds=10)).isoformat(), "inference_count": 20,
         "mean_latency_ms": None, "p95_latency_ms": None}
    ]  # fmt: skip

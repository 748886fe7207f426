"""The Fleet, Devices and Device pages show what the store holds: reports, samples, campaigns, events."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from helpers.pages import figure, texts
from helpers.seeding import add_campaign, add_model_chain, logged_in_client, register_device
from tinymlaas.server.app import create_app
from tinymlaas.services.audit import audit_page
from tinymlaas.services.auth import Role
from tinymlaas.services.context import Context
from tinymlaas.services.fleet import list_devices
from tinymlaas.services.fleet_health import assess_fleet, fleet_health
from tinymlaas.services.modules import show_module
from tinymlaas.settings import Settings
from tinymlaas.storage.repositories import DeviceRepository
from tinymlaas.storage.tables import DeviceRow
from tinymlaas.web.humanize import relative_time
from tinymlaas.web.summaries import activity_chart

NOW = datetime.now(UTC).replace(second=30, microsecond=0)
CAPS = {
    "runtime": "tflm",
    "runtime_version": "1.2",
    "ops": ["CONV_2D", "FULLY_CONNECTED"],
    "arena_bytes_available": 65_536,
    "slot_flash_bytes": 262_144,
}
# (minutes before NOW, inference count, mean latency ms, p95 latency ms) that kws-1 reported
SAMPLES = ((3, 100, 1.25, 2.0), (2, 160, 1.5, 2.5), (1, 250, 1.75, 3.0))


def _register(devices: DeviceRepository, endpoint: str, at: datetime, lifetime: int = 60) -> None:
    register_device(
        devices, endpoint, at, address="coap://127.0.0.1:5700", lifetime=lifetime,
        objects=("/3/0", "/9/0", "/26241/0"),
    )  # fmt: skip


def _seed(context: Context) -> None:
    """kws-1 online and reporting, kws-2 offline after a failed update, kws-3 online on record but silent."""
    with context.session() as session:
        add_model_chain(session, model_id="mdl_f", variant_id="var_f", module_id="mod_f", board="esp32s3")
        devices = DeviceRepository(session)
        # A lifetime long enough that kws-1 stays "heard from" however long after import the tests run.
        _register(devices, "kws-1", NOW - timedelta(minutes=10), lifetime=3600)
        devices.seen("kws-1", NOW)
        devices.set_tags("kws-1", ["wave-1"])
        devices.set_reported(
            "kws-1",
            board_id="pico",
            capabilities=CAPS,
            installed={"name": "wave", "version": "1", "update_result": 2, "update_result_text": "installed"},
            telemetry={"inference_count": 250, "mean_latency_ms": 1.75, "confidence_histogram": [1, 4, 245]},
        )
        devices.record_event("kws-1", "registered", {"registration_id": "r1"}, at=NOW - timedelta(minutes=10))
        for minutes, count, mean, p95 in SAMPLES:
            figures = {"inference_count": count, "mean_latency_ms": mean, "p95_latency_ms": p95}
            devices.record_event("kws-1", "telemetry", figures, at=NOW - timedelta(minutes=minutes))
        _register(devices, "kws-2", NOW - timedelta(minutes=30))
        devices.set_reported("kws-2", board_id="esp32s3")
        devices.mark_offline("kws-2")
        _register(devices, "kws-3", NOW - timedelta(hours=2))
        devices.set_reported("kws-3", board_id="pico")
        add_campaign(
            session, campaign_id="cmp_f", module_id="mod_f", selector="board:esp32s3", endpoint="kws-2",
            state="halted", installation="failed", at=NOW, update_result=53,
            detail={"error": "signature did not verify"}, started_at=NOW - timedelta(seconds=40),
            finished_at=NOW,
        )  # fmt: skip


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> Context:
    context = Context(Settings(data_dir=tmp_path_factory.mktemp("web") / "data"))
    _seed(context)
    return context


@pytest.fixture(scope="module")
def viewer(context: Context) -> Iterator[TestClient]:
    with logged_in_client(context, Role.VIEWER) as client:
        yield client


def test_the_fleet_page_counts_devices_and_raises_the_alerts_the_store_holds(viewer: TestClient) -> None:
    page = viewer.get("/").text
    assert texts(page, "devices-total") == ["3"]
    assert texts(page, "devices-online") == ["2"]
    assert texts(page, "devices-offline") == ["1"]
    alerts = texts(page, "alert-row")
    assert any(a.startswith("failed kws-2 cmp_f") for a in alerts), alerts
    assert any(a.startswith("offline kws-2") for a in alerts), alerts
    assert any(a.startswith("silent kws-3") and "60 s lifetime" in a for a in alerts), alerts
    assert not any("kws-1" in a for a in alerts)
    assert 'id="live" data-poll' in page


def test_fleet_activity_is_the_growth_of_the_reported_counts(viewer: TestClient) -> None:
    chart = figure(viewer.get("/").text, "activity-chart")
    minute = [(NOW - timedelta(minutes=m)).strftime("%Y-%m-%d %H:%M") for m, *_ in SAMPLES]
    # The first sample is the baseline; then 160 - 100 and 250 - 160 inferences in the next minutes.
    assert dict(zip(chart["data"][0]["x"], chart["data"][0]["y"], strict=True)) == {
        minute[1]: 60,
        minute[2]: 90,
    }


def test_devices_are_filtered_by_board_state_tag_and_model(viewer: TestClient) -> None:
    def rows(**params: str) -> list[str]:
        response = viewer.get("/devices", params=params)
        assert response.status_code == 200, response.text
        return re.findall(r'data-testid="device-row" data-endpoint="([^"]+)"', response.text)

    assert rows() == ["kws-1", "kws-2", "kws-3"]
    assert rows(board="pico") == ["kws-1", "kws-3"]
    assert rows(online="offline") == ["kws-2"]
    assert rows(tag="wave-1") == ["kws-1"]
    assert rows(model="wave:1") == ["kws-1"]
    assert rows(model="wave:2", board="pico") == []


def test_a_bad_filter_is_named_on_the_page(viewer: TestClient) -> None:
    response = viewer.get("/devices", params={"online": "maybe"})
    assert response.status_code == 422
    assert "'maybe'" in texts(response.text, "flash-error")[0]
    assert len(re.findall('data-testid="device-row"', response.text)) == 3


def test_a_device_page_shows_its_capabilities_telemetry_and_history(viewer: TestClient) -> None:
    page = viewer.get("/devices/kws-1").text
    assert texts(page, "cap-runtime") == ["tflm 1.2"]
    assert texts(page, "cap-arena") == ["65,536 B (64.0 KiB)"]
    assert texts(page, "cap-flash") == ["262,144 B (256.0 KiB)"]
    assert texts(page, "device-model") == ["wave 1"]
    count = figure(page, "chart-count")["data"][0]
    assert count["y"] == [100, 160, 250]
    assert [datetime.fromisoformat(x) for x in count["x"]] == [
        NOW - timedelta(minutes=m) for m, *_ in SAMPLES
    ]
    latency = {trace["name"]: trace["y"] for trace in figure(page, "chart-latency")["data"]}
    assert latency == {"mean": [1.25, 1.5, 1.75], "p95": [2.0, 2.5, 3.0]}
    assert figure(page, "chart-confidence")["data"][0]["y"] == [1, 4, 245]
    assert texts(page, "event-kind") == ["registered"]
    assert 'id="live" data-poll' in page


def test_a_device_page_says_what_was_never_reported(viewer: TestClient) -> None:
    page = viewer.get("/devices/kws-2").text
    assert "has not reported its TinyML Runtime object" in page
    for name in ("count", "latency", "confidence"):
        assert f'data-testid="chart-{name}-none"' in page
    updates = texts(page, "update-row")
    assert len(updates) == 1 and "cmp_f" in updates[0] and "failed" in updates[0]
    assert "integrity_check_failure" in updates[0] and "signature did not verify" in updates[0]


def test_an_unknown_device_is_404_and_pages_need_a_login(context: Context, viewer: TestClient) -> None:
    missing = viewer.get("/devices/ghost")
    assert missing.status_code == 404 and "ghost" in missing.text
    with TestClient(create_app(context)) as anonymous:
        response = anonymous.get("/devices", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login?next=/devices"


def test_a_restarted_counter_adds_what_it_counted_since() -> None:
    def sample(endpoint: str, minute: int, count: int) -> dict[str, Any]:
        return {
            "endpoint": endpoint,
            "at": (NOW + timedelta(minutes=minute)).isoformat(),
            "inference_count": count,
        }

    # a's counter restarted with a new model (500 -> 40); b's only sample is its baseline.
    samples = [sample("a", 0, 500), sample("a", 1, 40), sample("b", 1, 7)]
    health = assess_fleet([], [], samples, NOW + timedelta(minutes=5), NOW)
    chart = activity_chart(health)
    assert chart is not None and chart["data"][0]["y"] == [40]
    assert [point.inferences for point in health.activity] == [40]
    assert activity_chart(assess_fleet([], [], samples[:1], NOW + timedelta(minutes=5), NOW)) is None


def test_the_update_history_names_the_module_by_its_lineage(context: Context, viewer: TestClient) -> None:
    module = show_module(context, "mod_f")
    model = module["model"]
    name = f"{model['name']} v{model['version']} · {module['quantization']} · {module['board']}"
    page = viewer.get("/devices/kws-2").text
    assert texts(page, "update-module") == [name]
    assert 'title="mod_f"' in page


def test_times_read_as_relative_with_the_exact_second_in_the_title(
    context: Context, viewer: TestClient
) -> None:
    heard = NOW - timedelta(minutes=10) + timedelta(microseconds=654_321)
    with context.session() as session:
        devices = DeviceRepository(session)
        devices.seen("kws-3", heard)
        devices.record_event("kws-3", "read_failed", {"path": "/3/0"}, at=heard)
    (stored,) = [d for d in list_devices(context) if d.endpoint == "kws-3"]
    assert stored.last_seen is not None and ".654321" in stored.last_seen
    exact = datetime.fromisoformat(stored.last_seen).replace(microsecond=0).isoformat()
    for url in ("/devices", "/devices/kws-3"):
        before = relative_time(stored.last_seen)
        page = viewer.get(url).text
        after = relative_time(stored.last_seen)
        shown = re.findall(
            rf'<time datetime="{re.escape(exact)}" title="{re.escape(exact)}">([^<]+)</time>', page
        )
        assert shown and set(shown) <= {before, after}, (url, shown)
    for url in ("/", "/devices", "/devices/kws-3", "/devices/kws-2"):
        assert not re.search(r"\d{2}:\d{2}:\d{2}\.\d", viewer.get(url).text), url


def test_an_operator_acknowledges_an_alert_from_the_fleet_page(context: Context) -> None:
    with logged_in_client(context, Role.OPERATOR, name="olga") as operator:
        page = operator.get("/").text
        failed = re.search(r'data-testid="alert-row" data-alert="([^"]+)"><td class="warn">failed', page)
        assert failed is not None
        alert_id = failed.group(1)
        assert f'action="/alerts/{alert_id}/ack"' in page
        unacknowledged = int(texts(page, "alerts-unacknowledged")[0])

        acked = operator.post(f"/alerts/{alert_id}/ack", follow_redirects=False)
        assert acked.status_code == 303 and acked.headers["location"] == "/#alerts"
        page = operator.get("/").text
        row = next(r for r in texts(page, "alert-row") if r.startswith("failed kws-2 cmp_f"))
        assert re.search(r"by token olga \(tok_\w+\) ", row), row  # still active, now acknowledged
        assert int(texts(page, "alerts-unacknowledged")[0]) == unacknowledged - 1
        (stored,) = [a for a in fleet_health(context).alerts if a.id == alert_id]
        assert stored.acknowledged_by is not None and stored.acknowledged_by.startswith("token olga")

        again = operator.post(f"/alerts/{alert_id}/ack")
        assert (
            again.status_code == 409
            and "was acknowledged by token olga" in texts(again.text, "flash-error")[0]
        )
        assert operator.post("/alerts/alr_missing/ack").status_code == 404
        del operator.headers["X-CSRF-Token"]
        forged = operator.post(f"/alerts/{alert_id}/ack")
        assert forged.status_code == 403 and "CSRF" in forged.text
    events = [e for e in audit_page(context)[0] if e["target"] == f"/alerts/{alert_id}/ack"]
    assert [(e["action"], e["detail"]["status"]) for e in reversed(events)] == [
        ("dashboard:alert_ack_form", 303),
        ("dashboard:alert_ack_form", 409),
        ("dashboard:alert_ack_form", 403),
    ]
    assert events[-1]["actor"].startswith("token olga")


def test_a_viewer_cannot_acknowledge(context: Context, viewer: TestClient) -> None:
    page = viewer.get("/").text
    assert 'data-testid="ack"' not in page
    offline = re.search(r'data-testid="alert-row" data-alert="([^"]+)"><td class="warn">offline', page)
    assert offline is not None
    alert_id = offline.group(1)
    refused = viewer.post(f"/alerts/{alert_id}/ack")
    assert refused.status_code == 403 and "devices:write" in refused.text
    assert all(a.acknowledged_by is None for a in fleet_health(context).alerts if a.id == alert_id)


def test_an_alert_whose_device_came_back_is_listed_as_resolved(context: Context, viewer: TestClient) -> None:
    went, back = NOW - timedelta(minutes=50), NOW - timedelta(minutes=40)
    with context.session() as session:
        devices = DeviceRepository(session)
        devices.record_event("kws-1", "offline", {"reason": "lifetime expired"}, at=went)
        devices.record_event("kws-1", "registered", {"registration_id": "r2"}, at=back)
    page = viewer.get("/").text
    assert not any("kws-1" in a for a in texts(page, "alert-row"))
    (resolved,) = [r for r in texts(page, "resolved-row") if "kws-1" in r]
    assert resolved.startswith("offline kws-1") and "the device registered again" in resolved
    assert f'datetime="{back.isoformat()}"' in page


def test_the_devices_and_fleet_pages_read_a_page_of_device_rows_not_the_whole_fleet(tmp_path) -> None:
    """Counts, filter choices and alerts come from SQL aggregates; only a listed page of rows is read."""
    context = Context(Settings(data_dir=tmp_path / "data"))
    with context.session() as session:
        devices = DeviceRepository(session)
        for i in range(150):
            _register(devices, f"big-{i:03d}", NOW - timedelta(minutes=1))
            devices.set_reported(f"big-{i:03d}", board_id="pico", installed={"name": "kws", "version": "1"})
    loaded: list[str] = []

    def count(row: DeviceRow, _context: object) -> None:
        loaded.append(row.endpoint)

    with logged_in_client(context, Role.VIEWER) as client:
        for url in ("/devices", "/devices?board=pico", "/", "/ui/fleet.json"):
            loaded.clear()
            event.listen(DeviceRow, "load", count)
            try:
                assert client.get(url).status_code == 200
            finally:
                event.remove(DeviceRow, "load", count)
            assert len(loaded) <= 100, f"{url} read {len(loaded)} device rows"
        page = client.get("/").text
    assert texts(page, "devices-total") == ["150"]
    assert len(re.findall('data-testid="fleet-device-row"', page)) == 100


def test_the_fleet_page_lists_a_page_of_device_alerts_and_counts_them_all(tmp_path) -> None:
    """Offline devices beyond the ones listed by name still count, and the page says where the rest are."""
    context = Context(Settings(data_dir=tmp_path / "data"))
    with context.session() as session:
        devices = DeviceRepository(session)
        for i in range(57):
            _register(devices, f"gone-{i:03d}", NOW - timedelta(minutes=1))
            devices.mark_offline(f"gone-{i:03d}")
    with logged_in_client(context, Role.VIEWER) as client:
        page = client.get("/").text
        listed = client.get("/ui/fleet.json").json()
    assert texts(page, "alerts-total") == ["57"]
    assert len(re.findall('data-testid="alert-row"', page)) == 50
    assert texts(page, "alerts-listed") == [
        "50 of 57 active alerts listed: every installation alert, and the first 50 offline and 50 "
        "silent devices by endpoint. The Devices page lists every offline device."
    ]
    assert (listed["alerts_total"], len(listed["alerts"])) == (57, 50)

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tinymlaas.services.auth import Role
from tinymlaas.storage.repositories import DeviceRepository


def test_devices_filter_by_board_and_presence(api, problem) -> None:
    def endpoints(**params: object) -> list[str]:
        response = api.client.get("/devices", params=params, headers=api.auth(Role.VIEWER))
        return [d["endpoint"] for d in response.json()["data"]]

    assert endpoints() == ["dev-a", "dev-b"]
    assert endpoints(board="rpi4") == ["dev-b"]
    assert endpoints(online="true") == ["dev-a"]
    assert endpoints(online="false", board="pico") == []


def test_a_device_shows_its_events_and_an_unknown_one_is_404(api, problem) -> None:
    shown = api.client.get("/devices/dev-a", headers=api.auth(Role.OPERATOR)).json()
    assert shown["board"] == "pico"
    assert shown["online"] is True
    assert "events" in shown
    assert (
        "known: dev-a"
        in problem(api.client.get("/devices/nobody", headers=api.auth(Role.VIEWER)), 404)["detail"]
    )


def test_devices_need_a_token_and_valid_filters(api, problem) -> None:
    problem(api.client.get("/devices"), 401)
    body = problem(api.client.get("/devices", params={"online": "maybe"}, headers=api.auth(Role.VIEWER)), 422)
    assert body["errors"][0]["field"] == "online"


T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def reported(api) -> None:
    """dev-a reported a model, a tag, telemetry three times, and two events; dev-b nothing of that."""
    with api.context.session() as session:
        devices = DeviceRepository(session)
        devices.set_tags("dev-a", ["wave-1"])
        devices.set_reported(
            "dev-a",
            capabilities={"runtime": "tflm", "runtime_version": "1.2", "arena_bytes_available": 65536},
            installed={"name": "wave", "version": "1"},
            telemetry={"inference_count": 30, "mean_latency_ms": 1.5, "confidence_histogram": [0, 2, 28]},
        )
        for minute, count, mean in ((0, 10, 1.25), (1, 20, 1.5), (2, 30, 1.5)):
            figures = {"inference_count": count, "mean_latency_ms": mean, "p95_latency_ms": 2.0}
            devices.record_event("dev-a", "telemetry", figures, at=T0 + timedelta(minutes=minute))
        devices.record_event("dev-a", "registered", {"registration_id": "r1"}, at=T0 - timedelta(hours=2))
        devices.record_event("dev-a", "offline", {"reason": "lifetime expired"}, at=T0 - timedelta(hours=1))


def test_devices_filter_by_tag_and_installed_model(api, reported) -> None:
    def endpoints(**params: object) -> list[str]:
        response = api.client.get("/devices", params=params, headers=api.auth(Role.VIEWER))
        assert response.status_code == 200, response.text
        return [d["endpoint"] for d in response.json()["data"]]

    assert endpoints(tag="wave-1") == ["dev-a"]
    assert endpoints(tag="wave-2") == []
    assert endpoints(model="wave") == ["dev-a"]
    assert endpoints(model="wave:1") == ["dev-a"]
    assert endpoints(model="wave:2") == []
    assert endpoints(model="wave", board="rpi4") == []


def test_telemetry_is_what_the_device_reported_over_time(api, reported, problem) -> None:
    response = api.client.get("/devices/dev-a/telemetry", headers=api.auth(Role.VIEWER))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["capabilities"]["runtime"] == "tflm"
    assert body["telemetry"]["confidence_histogram"] == [0, 2, 28]
    assert [s["inference_count"] for s in body["samples"]] == [10, 20, 30]  # oldest first
    assert body["samples"][0]["mean_latency_ms"] == 1.25
    assert datetime.fromisoformat(body["samples"][0]["at"]) == T0
    latest = api.client.get("/devices/dev-a/telemetry", params={"samples": 1}, headers=api.auth(Role.VIEWER))
    assert [s["inference_count"] for s in latest.json()["samples"]] == [30]
    # A device that reported nothing has no samples, not zeros.
    assert api.client.get("/devices/dev-b/telemetry", headers=api.auth(Role.VIEWER)).json()["samples"] == []
    problem(api.client.get("/devices/nobody/telemetry", headers=api.auth(Role.VIEWER)), 404)
    problem(api.client.get("/devices/dev-a/telemetry"), 401)


def test_history_merges_events_and_installations_newest_first(api, reported, problem) -> None:
    response = api.client.get("/devices/dev-a/history", headers=api.auth(Role.OPERATOR))
    assert response.status_code == 200, response.text
    history = response.json()
    sources = {(e["source"], e["kind"]) for e in history["data"]}
    assert {("event", "registered"), ("event", "offline")} <= sources
    installation = next(e for e in history["data"] if e["source"] == "installation")
    assert installation["campaign"] == "cmp_seed" and installation["module"] == "mod_seed"
    assert "telemetry" not in {e["kind"] for e in history["data"]}  # samples are not history
    moments = [datetime.fromisoformat(e["at"]) for e in history["data"]]
    assert moments == sorted(moments, reverse=True)
    assert history["count"] == len(history["data"]) == 3

    second = api.client.get(
        "/devices/dev-a/history", params={"limit": 1, "offset": 1}, headers=api.auth(Role.OPERATOR)
    ).json()
    assert second["count"] == 3 and second["data"] == history["data"][1:2]
    problem(api.client.get("/devices/nobody/history", headers=api.auth(Role.VIEWER)), 404)
    problem(api.client.get("/devices/dev-a/history", params={"limit": 0}, headers=api.auth(Role.VIEWER)), 422)


def test_device_events_leave_out_telemetry_samples(api, reported) -> None:
    shown = api.client.get("/devices/dev-a", headers=api.auth(Role.VIEWER)).json()
    assert [e["kind"] for e in shown["events"]] == ["offline", "registered"]

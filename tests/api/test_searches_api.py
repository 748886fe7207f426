"""The search routes: a search starts as a queued job after what it names is checked, bad bodies are
problems naming the field, and stored searches list newest first with paging and show whole."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from helpers.servers import Api, serve
from tinymlaas.services.auth import Role
from tinymlaas.services.context import Context
from tinymlaas.services.datasets import DatasetService
from tinymlaas.settings import Settings
from tinymlaas.storage.repositories import SearchRepository
from tinymlaas.storage.tables import SearchRow

TRIAL = {
    "trial": 1,
    "state": "measured",
    "config": {"width": 0.5, "depth": 1},
    "accuracy": {"name": "accuracy", "value": 0.8, "n": 40, "low": 0.65, "high": 0.9},
    "boards": {
        "pico": {
            "runtime": "native",
            "ram_bytes": 6000,
            "flash_bytes": 20000,
            "latency_ms": 1.5,
            "latency_basis": "estimate: 9,000 instructions counted in QEMU mps2-an385",
            "within_budget": True,
            "excess": 0.0,
            "over": [],
        }
    },
}
MODEL = {"id": "mdl_s1", "name": "gestures-search", "version": 1, "variant": "var_s1"}


@pytest.fixture(scope="module")
def search_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """A store of its own (searches are counted) with a dataset and two stored searches; no workers,
    so a search started here stays queued."""
    context = Context(Settings(data_dir=tmp_path_factory.mktemp("searches") / "data"))
    DatasetService(context).generate("gestures", "gestures", samples=40, seed=2)
    now = datetime.now(UTC)
    with context.session() as session:
        for number, dataset in enumerate(("gestures", "other")):
            SearchRepository(session).add(
                SearchRow(
                    id=f"srch_{dataset}",
                    dataset=dataset,
                    snapshot_id="snap_s",
                    arch="cnn1d",
                    boards=["pico"],
                    budget={"max_ram": 8192, "max_flash": None, "max_latency_ms": None},
                    trials_planned=1,
                    workers=1,
                    epochs=2,
                    state="succeeded",
                    trials=[TRIAL],
                    fronts={"pico": {"ram": [1], "latency": [1], "models": {"1": MODEL}}},
                    summary={"counts": {"measured": 1, "pruned": 0, "failed": 0}, "notes": []},
                    created_at=now - timedelta(minutes=number),
                    finished_at=now,
                )
            )
    with serve(context) as api:
        yield api


def test_a_search_starts_as_a_queued_job_for_those_who_may_train(search_api: Api, problem) -> None:  # type: ignore[no-untyped-def]
    body = {"dataset": "gestures", "boards": ["pico"], "max_ram": 16384, "max_latency_ms": 20, "trials": 3}
    for role in (Role.VIEWER, Role.OPERATOR):
        problem(search_api.client.post("/searches", json=body, headers=search_api.auth(role)), 403)
    started = search_api.client.post("/searches", json=body, headers=search_api.auth(Role.DATA_SCIENTIST))
    assert started.status_code == 202, started.text
    job = started.json()
    assert job["kind"] == "search" and job["state"] == "queued" and job["params"] == body
    shown = search_api.client.get(f"/jobs/{job['id']}", headers=search_api.auth(Role.VIEWER)).json()
    assert shown["params"] == body


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"boards": ["pico"]}, "dataset"),
        ({"dataset": "gestures", "boards": []}, "boards"),
        ({"dataset": "gestures", "boards": ["pico"], "trials": 0}, "trials"),
        ({"dataset": "gestures", "boards": ["pico"], "trials": "3"}, "trials"),
        ({"dataset": "gestures", "boards": ["pico"], "max_ram": -1}, "max_ram"),
        ({"dataset": "gestures", "boards": ["pico"], "colour": "red"}, "colour"),
        ({"dataset": "nope", "boards": ["pico"]}, "dataset: there is no dataset 'nope'"),
        ({"dataset": "gestures", "boards": ["toaster"]}, "boards: no board 'toaster'"),
        ({"dataset": "gestures", "boards": ["pico"], "arch": "cnn2d"}, "arch: cnn2d takes inputs of rank 3"),
    ],
)
def test_a_bad_search_is_422_naming_the_field(search_api: Api, problem, body: dict, named: str) -> None:  # type: ignore[no-untyped-def]
    response = search_api.client.post("/searches", json=body, headers=search_api.auth(Role.DATA_SCIENTIST))
    assert named in problem(response, 422)["detail"]


def test_stored_searches_list_newest_first_with_paging_and_show_whole(search_api: Api, problem) -> None:  # type: ignore[no-untyped-def]
    viewer = search_api.auth(Role.VIEWER)
    listed = search_api.client.get("/searches", headers=viewer).json()
    assert listed["count"] == 2 and [s["id"] for s in listed["data"]] == ["srch_gestures", "srch_other"]
    first = listed["data"][0]
    assert "trials" not in first and first["best"] == {
        "trial": 1,
        "accuracy": TRIAL["accuracy"],
        "boards": ["pico"],
    }
    paged = search_api.client.get("/searches", params={"limit": 1, "offset": 1}, headers=viewer).json()
    assert paged["count"] == 2 and [s["id"] for s in paged["data"]] == ["srch_other"]
    only = search_api.client.get("/searches", params={"dataset": "other"}, headers=viewer).json()
    assert only["count"] == 1 and only["data"][0]["dataset"] == "other"
    shown = search_api.client.get("/searches/srch_gestures", headers=viewer).json()
    assert shown["trials"] == [TRIAL] and shown["fronts"]["pico"]["models"] == {"1": MODEL}
    assert shown["budget"]["max_ram"] == 8192 and shown["snapshot"] == "snap_s"
    assert "srch_nope" in problem(search_api.client.get("/searches/srch_nope", headers=viewer), 404)["detail"]
    problem(search_api.client.get("/searches"), 401)


def test_a_search_through_the_jobs_endpoint_is_checked_the_same_way(search_api: Api, problem) -> None:  # type: ignore[no-untyped-def]
    headers = search_api.auth(Role.DATA_SCIENTIST)
    for params, named in (
        ({"dataset": "nope", "boards": ["pico"]}, "dataset: there is no dataset 'nope'"),
        ({"dataset": "gestures", "boards": ["toaster"]}, "boards: no board 'toaster'"),
    ):
        response = search_api.client.post("/jobs", json={"kind": "search", "params": params}, headers=headers)
        assert named in problem(response, 422)["detail"]

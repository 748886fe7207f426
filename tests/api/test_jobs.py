"""Jobs over HTTP, run by a real LocalProcessExecutor in worker processes."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from helpers.servers import Api, serve
from helpers.waiting import process_gone, wait_for_job
from tinymlaas.api.deps import MAX_OFFSET
from tinymlaas.jobs import LocalProcessExecutor
from tinymlaas.services.auth import Role
from tinymlaas.services.context import Context
from tinymlaas.services.datasets import DatasetService
from tinymlaas.settings import Settings

# Planned epochs for a job that must still be training when the test cancels it.
LONG = 100_000


@pytest.fixture(scope="module")
def jobs_api(tmp_path_factory) -> Iterator[Api]:
    context = Context(Settings(data_dir=tmp_path_factory.mktemp("jobs") / "data"))
    DatasetService(context).generate("sine", "sine", samples=200, seed=1)
    executor = LocalProcessExecutor(context.settings, max_workers=2)
    try:
        with serve(context, executor) as api:
            yield api
    finally:
        executor.shutdown()


def _submit(api: Api, params: dict, role: Role = Role.DATA_SCIENTIST) -> dict:
    response = api.client.post("/jobs", json={"kind": "train", "params": params}, headers=api.auth(role))
    assert response.status_code == 202, response.text
    return response.json()


def test_a_train_job_submitted_over_http_runs_to_succeeded(jobs_api, problem) -> None:
    job = _submit(jobs_api, {"dataset": "sine", "epochs": 1, "seed": 3})
    assert job["state"] == "queued" and job["params"] == {"dataset": "sine", "epochs": 1, "seed": 3}
    wait_for_job(jobs_api.context, job["id"], lambda j: j["state"] in ("succeeded", "failed"))

    shown = jobs_api.client.get(f"/jobs/{job['id']}", headers=jobs_api.auth(Role.VIEWER)).json()
    assert shown["state"] == "succeeded", shown["error"]
    assert shown["progress"] == 1.0
    assert "epoch 1/1" in shown["log"]
    model = shown["result"]
    assert model["name"] == "sine" and model["run"]["epochs_run"] == 1
    listed = jobs_api.client.get(
        "/jobs", params={"state": "succeeded", "kind": "train"}, headers=jobs_api.auth(Role.VIEWER)
    ).json()
    assert job["id"] in [j["id"] for j in listed["data"]]
    assert listed["count"] == len(listed["data"])
    assert "log" not in listed["data"][0]
    problem(
        jobs_api.client.post(f"/jobs/{job['id']}/cancel", headers=jobs_api.auth(Role.DATA_SCIENTIST)), 409
    )


def test_two_jobs_run_at_once_while_the_api_answers_and_one_is_cancelled(jobs_api, problem) -> None:
    first = _submit(jobs_api, {"dataset": "sine", "epochs": LONG})
    second = _submit(jobs_api, {"dataset": "sine", "epochs": LONG, "seed": 5})
    ids = [first["id"], second["id"]]
    deadline = time.monotonic() + 180
    while True:
        listed = jobs_api.client.get(
            "/jobs", params={"state": "running"}, headers=jobs_api.auth(Role.OPERATOR)
        ).json()
        running = {j["id"]: j for j in listed["data"]}
        if all(i in running for i in ids):
            break
        assert time.monotonic() < deadline, f"both jobs never ran at once: {listed}"
        time.sleep(0.3)

    started = time.perf_counter()
    answer = jobs_api.client.get(f"/jobs/{first['id']}", headers=jobs_api.auth(Role.VIEWER))
    elapsed = time.perf_counter() - started
    assert answer.status_code == 200 and answer.json()["state"] == "running"
    # Blocked would mean waiting for training to end (minutes); the bound only has to tell the two apart.
    assert elapsed < 10.0, f"the API took {elapsed:.2f} s to answer while two jobs trained"
    assert (
        jobs_api.client.get("/jobs", params={"state": "running"}, headers=jobs_api.auth(Role.VIEWER)).json()[
            "count"
        ]
        == 2
    )

    pids = [running[i]["worker_pid"] for i in ids]
    problem(jobs_api.client.post(f"/jobs/{first['id']}/cancel", headers=jobs_api.auth(Role.VIEWER)), 403)
    problem(jobs_api.client.post(f"/jobs/{first['id']}/cancel", headers=jobs_api.auth(Role.OPERATOR)), 403)
    for job_id in ids:
        cancelled = jobs_api.client.post(f"/jobs/{job_id}/cancel", headers=jobs_api.auth(Role.DATA_SCIENTIST))
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["state"] == "cancelled"
    deadline = time.monotonic() + 30
    while not all(process_gone(pid) for pid in pids):
        assert time.monotonic() < deadline, "a cancelled job's worker process is still alive"
        time.sleep(0.1)
    again = problem(
        jobs_api.client.post(f"/jobs/{first['id']}/cancel", headers=jobs_api.auth(Role.ADMIN)), 409
    )
    assert "cancelled" in again["detail"]


def test_submitting_needs_the_permission_of_what_the_job_does(jobs_api, problem) -> None:
    body = {"kind": "train", "params": {"dataset": "sine"}}
    problem(jobs_api.client.post("/jobs", json=body), 401)
    for role in (Role.VIEWER, Role.OPERATOR):
        detail = problem(jobs_api.client.post("/jobs", json=body, headers=jobs_api.auth(role)), 403)["detail"]
        assert "training:write" in detail
    squeeze = {"kind": "squeeze", "params": {"model": "nothing"}}
    assert (
        "models:write"
        in problem(jobs_api.client.post("/jobs", json=squeeze, headers=jobs_api.auth(Role.OPERATOR)), 403)[
            "detail"
        ]
    )
    before = jobs_api.client.get("/jobs", headers=jobs_api.auth(Role.VIEWER)).json()["count"]
    # The data scientist may squeeze, but there is no such model: refused before anything is queued.
    detail = problem(
        jobs_api.client.post("/jobs", json=squeeze, headers=jobs_api.auth(Role.DATA_SCIENTIST)), 422
    )
    assert "model" in detail["detail"] and "nothing" in detail["detail"]
    assert jobs_api.client.get("/jobs", headers=jobs_api.auth(Role.VIEWER)).json()["count"] == before


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"kind": "bake", "params": {}}, "kind"),
        ({"kind": "train", "params": {}}, "dataset"),
        ({"kind": "train", "params": {"dataset": "sine", "colour": "red"}}, "colour"),
        ({"kind": "train", "params": {"dataset": "sine", "epochs": "many"}}, "epochs"),
        ({"kind": "train", "params": {"dataset": "nope"}}, "nope"),
        ({"kind": "train", "params": {"dataset": "sine", "arch": "cnn2d"}}, "cnn2d"),
        ({"kind": "train", "params": {"dataset": "sine", "arch": "transformer"}}, "transformer"),
        ({"kind": "compile", "params": {"variant": "var_none", "board": "pico"}}, "var_none"),
        ({"kind": "lifecycle", "params": {"dataset": "sine", "boards": ["toaster"]}}, "toaster"),
    ],
)
def test_bad_jobs_are_422_naming_what_is_wrong(jobs_api, problem, body, named) -> None:
    detail = problem(jobs_api.client.post("/jobs", json=body, headers=jobs_api.auth(Role.ADMIN)), 422)[
        "detail"
    ]
    assert named in detail


def test_reading_jobs_takes_any_role_and_a_token(jobs_api, problem) -> None:
    for role in Role:
        assert jobs_api.client.get("/jobs", headers=jobs_api.auth(role)).status_code == 200
    problem(jobs_api.client.get("/jobs"), 401)
    problem(jobs_api.client.get("/jobs/job_missing", headers=jobs_api.auth(Role.VIEWER)), 404)
    problem(jobs_api.client.post("/jobs/job_missing/cancel", headers=jobs_api.auth(Role.ADMIN)), 404)
    problem(
        jobs_api.client.get("/jobs", params={"state": "sleeping"}, headers=jobs_api.auth(Role.VIEWER)), 422
    )
    problem(jobs_api.client.get("/jobs", params={"limit": 0}, headers=jobs_api.auth(Role.VIEWER)), 422)
    past_sql = {"offset": 2**63}
    problem(jobs_api.client.get("/jobs", params=past_sql, headers=jobs_api.auth(Role.VIEWER)), 422)
    furthest = jobs_api.client.get("/jobs", params={"offset": MAX_OFFSET}, headers=jobs_api.auth(Role.VIEWER))
    assert furthest.status_code == 200 and furthest.json()["data"] == []
    paged = jobs_api.client.get("/jobs", params={"limit": 1}, headers=jobs_api.auth(Role.VIEWER)).json()
    assert len(paged["data"]) <= 1 and paged["count"] >= len(paged["data"])


def test_the_pipeline_reads_with_any_role_and_names_a_wrong_job(jobs_api, problem) -> None:
    for role in Role:
        shown = jobs_api.client.get("/pipeline", headers=jobs_api.auth(role))
        assert shown.status_code == 200, shown.text
    body = shown.json()
    assert [s["key"] for s in body["steps"]] == ["collect", "label", "train", "squeeze", "compile", "deploy"]
    collect = body["steps"][0]
    assert (
        collect["state"] == "done" and collect["title"] == "Collect" and "200 samples" in collect["headline"]
    )
    problem(jobs_api.client.get("/pipeline"), 401)
    missing = problem(
        jobs_api.client.get("/pipeline", params={"job": "job_missing"}, headers=jobs_api.auth(Role.VIEWER)),
        404,
    )
    assert "job_missing" in missing["detail"]

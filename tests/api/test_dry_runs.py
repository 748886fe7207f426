"""Dry runs over HTTP: kept out of every production list, listed with the pipeline, refused for
deployment, and deleted on request."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from helpers.sandbox import SeededDryRun, seed_dry_run
from helpers.seeding import add_model_chain
from helpers.servers import Api, serve
from tinymlaas.services.auth import Role
from tinymlaas.services.context import Context
from tinymlaas.services.datasets import DatasetService
from tinymlaas.settings import Settings


@pytest.fixture(scope="module")
def sandboxed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Api, SeededDryRun]]:
    context = Context(Settings(data_dir=tmp_path_factory.mktemp("dry-runs") / "data"))
    with context.session() as session:
        add_model_chain(
            session, model_id="mdl_seed", variant_id="var_seed", module_id="mod_seed", board="pico"
        )
    DatasetService(context).generate("waves", "sine", samples=20, seed=1)
    dry = seed_dry_run(context)
    with serve(context) as api:
        yield api, dry


def _get(api: Api, path: str) -> dict:
    response = api.client.get(path, headers=api.auth(Role.VIEWER))
    assert response.status_code == 200, response.text
    return response.json()


def test_the_list_endpoints_show_production_only(sandboxed: tuple[Api, SeededDryRun]) -> None:
    api, dry = sandboxed
    assert [d["name"] for d in _get(api, "/datasets")["data"]] == ["waves"]
    assert _get(api, "/datasets")["count"] == 1
    assert [(m["name"], m["version"]) for m in _get(api, "/models")["data"]] == [("wave", 1)]
    assert [m["id"] for m in _get(api, "/modules")["data"]] == ["mod_seed"]
    assert _get(api, "/modules")["count"] == 1
    assert all(r["dataset"] != dry.dataset for r in _get(api, "/training-runs")["data"])
    # Still there by name or id, marked as the sandbox's.
    assert _get(api, f"/datasets/{dry.dataset}")["sandbox"] is True
    assert _get(api, f"/models/{dry.model}")["sandbox"] is True
    assert _get(api, f"/modules/{dry.module}")["sandbox"] is True


def test_the_pipeline_lists_the_dry_run_with_its_figures(sandboxed: tuple[Api, SeededDryRun]) -> None:
    api, dry = sandboxed
    pipeline = _get(api, "/pipeline")
    (listed,) = pipeline["dry_runs"]
    assert (listed["job"], listed["dataset"], listed["state"], listed["model"]) == (
        dry.job,
        dry.dataset,
        "succeeded",
        dry.model,
    )
    assert listed["fitting"] == 1 and listed["verdicts"][0]["metric"]["value"] == 0.12
    assert listed["can_delete"] is True
    collect = next(s for s in pipeline["steps"] if s["key"] == "collect")
    assert collect["headline"] == "20 samples in 1 dataset"


def test_deploying_a_sandbox_module_is_refused(sandboxed: tuple[Api, SeededDryRun], problem) -> None:
    api, dry = sandboxed
    body = {"module": dry.module, "selector": "board:pico"}
    created = api.client.post("/campaigns", json=body, headers=api.auth(Role.OPERATOR))
    previewed = api.client.get("/campaigns/preview", params=body, headers=api.auth(Role.OPERATOR))
    for refused in (created, previewed):
        assert f"module {dry.module} was compiled by a dry run" in problem(refused, 422)["detail"]
    package = api.client.get(f"/modules/{dry.module}/package", headers=api.auth(Role.OPERATOR))
    assert "compiled by a dry run" in problem(package, 409)["detail"]


def test_deleting_a_dry_run_removes_its_rows(sandboxed: tuple[Api, SeededDryRun], problem) -> None:
    api, dry = sandboxed
    path = f"/pipeline/dry-runs/{dry.job}"
    problem(api.client.delete(path, headers=api.auth(Role.VIEWER)), 403)
    problem(api.client.delete("/pipeline/dry-runs/job_missing", headers=api.auth(Role.DATA_SCIENTIST)), 404)
    deleted = api.client.delete(path, headers=api.auth(Role.DATA_SCIENTIST))
    assert deleted.status_code == 200, deleted.text
    removal = deleted.json()
    assert removal["dataset"] == dry.dataset and removal["blobs"] >= 1
    assert {
        k: removal["rows"][k] for k in ("datasets", "models", "variants", "modules", "jobs")
    } == dict.fromkeys(("datasets", "models", "variants", "modules", "jobs"), 1)
    assert _get(api, "/pipeline")["dry_runs"] == []
    for gone in (
        f"/models/{dry.model}",
        f"/modules/{dry.module}",
        f"/datasets/{dry.dataset}",
        f"/jobs/{dry.job}",
    ):
        problem(api.client.get(gone, headers=api.auth(Role.VIEWER)), 404)
    problem(api.client.delete(path, headers=api.auth(Role.DATA_SCIENTIST)), 404)
    assert [(m["name"], m["version"]) for m in _get(api, "/models")["data"]] == [("wave", 1)]

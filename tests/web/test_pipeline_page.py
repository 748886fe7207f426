"""The Pipeline page: each step's state from what is stored, and the dry-run button's lifecycle job."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from helpers.pages import texts
from helpers.sandbox import SeededDryRun, seed_dry_run
from helpers.seeding import add_model_chain, logged_in_client
from tinymlaas.errors import NotFound
from tinymlaas.jobs.service import list_jobs
from tinymlaas.services.auth import Role
from tinymlaas.services.context import Context
from tinymlaas.services.datasets import DatasetService
from tinymlaas.services.models import list_models, show_model
from tinymlaas.settings import Settings
from tinymlaas.storage.tables import JobRow

NOW = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
VERDICTS = [
    {"board": "pico", "quantization": "int8", "runtime": "tflm", "module": "mod_a", "variant": "var_a",
     "size_bytes": 9000, "arena_bytes": 4000, "flash_bytes": 30_000, "ram_bytes": 6000,
     "metric": {"name": "accuracy", "value": 0.91}, "fits": True, "reasons": []},
    {"board": "nano33ble", "quantization": "float32", "runtime": "tflm", "module": "mod_b",
     "variant": "var_b", "size_bytes": 36000, "arena_bytes": 300_000, "flash_bytes": 60_000,
     "ram_bytes": 310_000, "metric": None, "fits": False,
     "reasons": ["the arena needs 300000 bytes, the board has 256000"]},
]  # fmt: skip


def _job(job_id: str, state: str, log: str, **values: object) -> JobRow:
    return JobRow(
        id=job_id, kind="lifecycle", params={"dataset": "waves", "boards": ["pico", "nano33ble"]},
        state=state, progress=1.0 if state == "succeeded" else 0.3, message=log.splitlines()[-1], log=log,
        created_at=NOW, updated_at=NOW, **values,
    )  # fmt: skip


def _seed(context: Context) -> None:
    """A generated dataset, an imported model with one variant and a fitting module, two finished dry runs."""
    DatasetService(context).generate("waves", "sine", samples=40, seed=1)
    with context.session() as session:
        add_model_chain(
            session, model_id="mdl_p", variant_id="var_p", module_id="mod_p", board="pico",
            package_blob="1" * 64, manifest={}, flash_bytes=2000, ram_bytes=1024,
        )  # fmt: skip
        log = "snapshot …\ntrain …\nepoch 1/2 loss=1.2\nepoch 2/2 loss=0.8\nsqueeze …\ncompile …\n"
        timings = {"snapshot": 0.1, "train": 4.2, "squeeze": 2.5, "compile": 1.0}
        result = {"variants": VERDICTS, "timings_s": timings}
        session.add(_job("job_done", "succeeded", log, result=result, phase="compile", epoch=2, epochs=2))
        # The page reads the phase and epoch fields, never the log: this one's log says nothing.
        failed = "the worker died\n"
        session.add(
            _job(
                "job_failed",
                "failed",
                failed,
                result=None,
                error="the worker died",
                phase="train",
                epoch=1,
                epochs=5,
            )
        )


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> Context:
    context = Context(Settings(data_dir=tmp_path_factory.mktemp("web") / "data"))
    _seed(context)
    return context


@pytest.fixture(scope="module")
def scientist(context: Context) -> Iterator[TestClient]:
    with logged_in_client(context, Role.DATA_SCIENTIST) as client:  # no executor: jobs stay queued
        yield client


@pytest.fixture(scope="module")
def viewer(context: Context) -> Iterator[TestClient]:
    with logged_in_client(context, Role.VIEWER) as client:
        yield client


def states(page: str, prefix: str) -> dict[str, str]:
    return dict(re.findall(rf'data-testid="{prefix}-(\w+)" data-state="([^"]+)"', page))


def test_each_step_has_the_state_the_store_gives_it(viewer: TestClient) -> None:
    page = viewer.get("/pipeline").text
    assert states(page, "step") == {
        "collect": "done",
        "label": "done",
        "train": "waiting",  # an imported model: no training run
        "squeeze": "done",
        "compile": "done",
        "deploy": "waiting",
    }
    assert "40 samples in 1 dataset" in texts(page, "step-collect")[0]
    assert "1 of 1 module fit their board" in texts(page, "step-compile")[0]


def test_a_finished_dry_run_shows_every_phase_and_the_fit_per_board(viewer: TestClient) -> None:
    page = viewer.get("/pipeline", params={"job": "job_done"}).text
    assert texts(page, "dry-run-state") == ["succeeded"]
    steps = states(page, "dry-run-step")
    assert steps.pop("deploy") == "fit checked"  # a dry run deploys nothing
    assert set(steps.values()) == {"done"}
    assert "4.2 s" in texts(page, "dry-run-step-train")[0]
    assert "1 of 2 modules fit their board" in texts(page, "dry-run-step-deploy")[0]
    rows = texts(page, "verdict-row")
    assert rows[0].startswith("pico int8 tflm accuracy 0.910") and rows[0].endswith("fits")
    assert "the arena needs 300000 bytes, the board has 256000" in rows[1]
    assert '<div id="live">' in page  # nothing under way


def test_a_failed_dry_run_shows_where_it_stopped(viewer: TestClient) -> None:
    page = viewer.get("/pipeline", params={"job": "job_failed"}).text
    steps = states(page, "dry-run-step")
    assert (steps["label"], steps["train"], steps["squeeze"], steps["compile"]) == (
        "done",
        "failed",
        "not reached",
        "not reached",
    )
    assert texts(page, "dry-run-error") == ["the worker died"]


def test_the_dry_run_button_queues_a_lifecycle_job_on_a_generated_dataset(
    context: Context, scientist: TestClient
) -> None:
    form = {"generator": "sine", "samples": "30", "epochs": "2", "boards": ["pico", "esp32s3"]}
    started = scientist.post("/pipeline/dry-run", data=form, follow_redirects=False)
    assert started.status_code == 303, started.text
    (job,) = [j for j in list_jobs(context, kind="lifecycle") if j["id"] not in ("job_done", "job_failed")]
    assert started.headers["location"] == f"/pipeline?job={job['id']}"
    assert job["state"] == "queued"
    assert job["params"]["boards"] == ["pico", "esp32s3"] and job["params"]["epochs"] == 2
    assert job["params"]["dataset"].startswith("dry-run-sine-")
    generated = DatasetService(context).show(job["params"]["dataset"])
    assert generated.sample_count == 30 and generated.sandbox
    assert DatasetService(context).names() == ["waves"]  # the production list has not changed

    page = scientist.get(started.headers["location"]).text
    assert texts(page, "dry-run-state") == ["queued"]
    assert states(page, "dry-run-step") == {
        "collect": "done",
        "label": "waiting",
        "train": "waiting",
        "squeeze": "waiting",
        "compile": "waiting",
        "deploy": "not part of a dry run",
    }
    assert 'id="live" data-poll' in page
    # Without a job given, the page follows the newest dry run.
    assert texts(scientist.get("/pipeline").text, "dry-run-state") == ["queued"]


def test_a_wrong_dry_run_form_is_named_and_queues_nothing(context: Context, scientist: TestClient) -> None:
    jobs = len(list_jobs(context))
    datasets = len(DatasetService(context).list())
    for form, expected in (
        ({"generator": "sine", "samples": "30"}, "choose at least one board"),
        ({"generator": "sine", "boards": ["pico", "toaster"]}, "no board toaster"),
        ({"generator": "noise", "boards": ["pico"]}, "choose a generator"),
        ({"generator": "sine", "samples": "lots", "boards": ["pico"]}, "samples must be a whole number"),
        ({"generator": "sine", "epochs": "0", "boards": ["pico"]}, "epochs must be a whole number"),
    ):
        response = scientist.post("/pipeline/dry-run", data=form)
        assert response.status_code == 422, form
        assert expected in texts(response.text, "flash-error")[0]
    assert len(list_jobs(context)) == jobs
    assert len(DatasetService(context).list()) == datasets


def test_a_viewer_sees_no_dry_run_button_and_is_refused(context: Context, viewer: TestClient) -> None:
    assert 'data-testid="dry-run-form"' not in viewer.get("/pipeline").text
    jobs = len(list_jobs(context))
    denied = viewer.post("/pipeline/dry-run", data={"generator": "sine", "boards": ["pico"]})
    assert denied.status_code == 403 and "training:write" in denied.text
    assert len(list_jobs(context)) == jobs
    assert viewer.get("/pipeline", params={"job": "job_missing"}).status_code == 404


@pytest.fixture(scope="module")
def sandboxed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Context, SeededDryRun]:
    """The store ``_seed`` makes, and a finished dry run kept in its sandbox."""
    context = Context(Settings(data_dir=tmp_path_factory.mktemp("sandbox") / "data"))
    _seed(context)
    return context, seed_dry_run(context)


def test_a_kept_dry_run_is_listed_under_dry_runs_and_nowhere_in_production(
    sandboxed: tuple[Context, SeededDryRun],
) -> None:
    context, dry = sandboxed
    with logged_in_client(context, Role.DATA_SCIENTIST) as client:
        page = client.get("/pipeline").text
        (row,) = texts(page, "dry-run-row")
        assert row.startswith(f"{dry.job} {dry.dataset} succeeded dense mse 0.100 1 of 1 modules fit")
        assert 'data-testid="dry-run-delete"' in page
        # The stored steps count production work only: one dataset, the imported model's one module.
        assert "40 samples in 1 dataset" in texts(page, "step-collect")[0]
        assert "1 of 1 module fit their board" in texts(page, "step-compile")[0]
        assert states(page, "step")["train"] == "waiting"  # the dry run's training run is not counted
        for listing in ("/datasets", "/models", "/deployments"):
            shown = client.get(listing)
            assert shown.status_code == 200 and dry.dataset not in shown.text and dry.module not in shown.text
        assert dry.dataset in client.get(f"/models/{dry.model}").text  # still reachable by id


def test_a_viewer_cannot_delete_a_dry_run(sandboxed: tuple[Context, SeededDryRun]) -> None:
    context, dry = sandboxed
    with logged_in_client(context, Role.VIEWER) as viewer:
        assert 'data-testid="dry-run-delete"' not in viewer.get("/pipeline").text
        assert viewer.post(f"/pipeline/dry-runs/{dry.job}/delete").status_code == 403
    assert show_model(context, dry.model).sandbox


def test_the_delete_button_removes_the_dry_run_and_refuses_what_is_no_dry_run(
    sandboxed: tuple[Context, SeededDryRun],
) -> None:
    context, dry = sandboxed
    models = list_models(context)
    with logged_in_client(context, Role.DATA_SCIENTIST) as client:
        refused = client.post("/pipeline/dry-runs/job_done/delete")  # a lifecycle job on production data
        assert refused.status_code == 422 and "is not a dry run" in texts(refused.text, "flash-error")[0]
        deleted = client.post(f"/pipeline/dry-runs/{dry.job}/delete", follow_redirects=False)
        assert deleted.status_code == 303 and deleted.headers["location"] == "/pipeline"
        page = client.get("/pipeline").text
    assert texts(page, "dry-run-row") == [] and texts(page, "dry-runs-none") == ["No dry run is kept."]
    with pytest.raises(NotFound):
        show_model(context, dry.model)
    with pytest.raises(NotFound):
        DatasetService(context).show(dry.dataset)
    assert not context.blobs.exists(dry.package_blob)
    assert list_models(context) == models and DatasetService(context).names() == ["waves"]

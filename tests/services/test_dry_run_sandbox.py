"""A dry run works in its own sandbox: production lists and lineage stay as they were, the dry run is
listed with its figures, deleting it removes its rows and blobs, and its modules are never deployed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from typer.testing import CliRunner

from helpers.sandbox import run_in_process
from helpers.seeding import add_model_chain
from tinymlaas.cli.app import app
from tinymlaas.errors import Conflict, InvalidInput, NotFound
from tinymlaas.jobs.pipeline import delete_dry_run, list_dry_runs, stored_pipeline
from tinymlaas.jobs.service import cancel_job, list_jobs, submit_job
from tinymlaas.jobs.states import JobKind, JobState, PipelineStep
from tinymlaas.services.campaigns import create_campaign, preview_campaign
from tinymlaas.services.context import Context
from tinymlaas.services.datasets import DatasetService
from tinymlaas.services.models import list_model_details, list_models, show_model
from tinymlaas.services.modules import list_modules, module_download, show_module
from tinymlaas.services.runs import list_runs
from tinymlaas.settings import Settings
from tinymlaas.storage.repositories import BlobReferenceRepository, ModelRepository
from tinymlaas.storage.tables import ModelRow


@dataclass(frozen=True)
class Sandboxed:
    context: Context
    before: dict[str, Any]  # the production lists before the dry run
    job: dict[str, Any]  # the dry run's lifecycle job, finished


def _production(context: Context) -> dict[str, Any]:
    pipeline = stored_pipeline(context)
    return {
        "datasets": DatasetService(context).names(),
        "models": [(m["name"], m["version"]) for m in list_models(context)],
        "details": [m.id for m in list_model_details(context)],
        "modules": [m["id"] for m in list_modules(context)],
        "runs": [r["id"] for r in list_runs(context)],
        "steps": [(s.key, s.state, s.headline, s.detail) for s in pipeline.steps],
    }


@pytest.fixture(scope="module")
def sandboxed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandboxed]:
    """A production dataset and model "wave", then one real dry run: sine, one epoch, one board."""
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("sandbox") / "data",
        crossval_below_test_samples=0,  # one fit per figure: the sandbox, not the statistics, is tested
        qat_trigger_points=100.0,
    )
    context = Context(settings)
    DatasetService(context).generate("wave", "sine", samples=40, seed=1)
    with context.session() as session:
        add_model_chain(
            session, model_id="mdl_prod", variant_id="var_prod", module_id="mod_prod", board="pico",
            package_blob="1" * 64, manifest={}, flash_bytes=2000, ram_bytes=1024,
        )  # fmt: skip
    before = _production(context)
    # As the Pipeline page starts one: a generated sandbox dataset and a lifecycle job on it.
    DatasetService(context).generate("dry-run-sine-1", "sine", samples=40, seed=3, sandbox=True)
    params = {"dataset": "dry-run-sine-1", "boards": ["pico"], "epochs": 1}
    job = run_in_process(context, submit_job(context, JobKind.LIFECYCLE, params)["id"])
    assert job["state"] == "succeeded", job["error"]
    yield Sandboxed(context, before, job)


def test_a_dry_run_leaves_every_production_list_as_it_was(sandboxed: Sandboxed) -> None:
    assert _production(sandboxed.context) == sandboxed.before
    stored = {s.key: s for s in stored_pipeline(sandboxed.context).steps}
    assert stored[PipelineStep.TRAIN].headline == "0 training runs"  # the dry run trained the only one
    assert "dry-run" not in stored[PipelineStep.TRAIN].detail


def test_the_dry_run_is_listed_with_its_figures_and_reachable_by_id(sandboxed: Sandboxed) -> None:
    context, job = sandboxed.context, sandboxed.job
    (listed,) = list_dry_runs(context)
    assert (listed.job, listed.dataset, listed.state) == (job["id"], "dry-run-sine-1", JobState.SUCCEEDED)
    assert listed.model == job["result"]["model"] and listed.float_metric["name"] == "mse"
    assert [(v.board, v.quantization) for v in listed.verdicts] == [
        ("pico", row["quantization"]) for row in job["result"]["variants"]
    ]
    assert listed.fitting == sum(1 for row in job["result"]["variants"] if row["fits"])
    assert stored_pipeline(context).dry_runs == [listed]
    base = ["--data-dir", str(context.settings.data_dir), "lifecycle", "dry-runs"]
    shown = CliRunner().invoke(app, [*base, "--json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output) == [listed.model_dump(mode="json")]
    table = CliRunner().invoke(app, base)
    assert table.exit_code == 0 and job["id"] in table.output

    model = show_model(context, listed.model)
    assert model.sandbox and (model.name, model.version) == ("dry-run-sine-1", 1)
    assert all(show_module(context, m.id)["sandbox"] for m in model.modules)
    assert DatasetService(context).show("dry-run-sine-1").sandbox


def test_a_sandbox_model_never_takes_a_production_name_or_version(sandboxed: Sandboxed) -> None:
    with sandboxed.context.session() as session:
        repo = ModelRepository(session)
        assert repo.next_version("wave") == 2
        assert repo.next_version("wave", sandbox=True) == 1
        repo.add(ModelRow(id="mdl_shadow", name="wave", version=1, origin="imported", arch="x", params=1,
                          sandbox=True))  # fmt: skip
        assert repo.model("wave").id == "mdl_prod"  # a name means the production line
        assert repo.model("wave:1").id == "mdl_prod"
        assert repo.next_version("wave") == 2
        session.delete(repo.model("mdl_shadow"))
    assert [(m["name"], m["version"]) for m in list_models(sandboxed.context)] == [("wave", 1)]


def test_a_sandbox_module_is_never_deployed_nor_signed(sandboxed: Sandboxed) -> None:
    context = sandboxed.context
    module = next(m for m in show_model(context, sandboxed.job["result"]["model"]).modules if m.fits)
    for attempt in (preview_campaign, create_campaign):
        with pytest.raises(InvalidInput, match=f"module {module.id} was compiled by a dry run"):
            attempt(context, module.id, "board:pico")
    with pytest.raises(Conflict, match="compiled by a dry run"):
        module_download(context, module.id)
    name, _ = module_download(context, module.id, signed=False)  # still there to inspect
    assert name.endswith("-unsigned.zip")


def test_a_running_dry_run_or_production_work_is_not_deleted(sandboxed: Sandboxed) -> None:
    context = sandboxed.context
    production = submit_job(context, JobKind.LIFECYCLE, {"dataset": "wave", "boards": ["pico"]})["id"]
    with pytest.raises(InvalidInput, match="is not a dry run"):
        delete_dry_run(context, production)
    DatasetService(context).generate("dry-run-sine-2", "sine", samples=20, seed=4, sandbox=True)
    queued = submit_job(context, JobKind.LIFECYCLE, {"dataset": "dry-run-sine-2", "boards": ["pico"]})["id"]
    with pytest.raises(Conflict, match="cancel it first"):
        delete_dry_run(context, queued)
    with pytest.raises(NotFound):
        delete_dry_run(context, "job_missing")
    cancel_job(context, production)
    cancel_job(context, queued)
    removed = delete_dry_run(context, queued)  # cancelled: it ended, so it can go
    assert removed.rows["datasets"] == 1 and removed.rows["models"] == 0
    assert "wave" in DatasetService(context).names()


def test_deleting_the_dry_run_removes_its_rows_and_blobs_and_keeps_production(sandboxed: Sandboxed) -> None:
    context, job = sandboxed.context, sandboxed.job
    model = show_model(context, job["result"]["model"])
    with context.session() as session:
        blobs = ModelRepository(session).model(model.id).keras_blob
    assert blobs is not None and context.blobs.exists(blobs)
    shared = {s.id for s in DatasetService(context).snapshot_list("wave")}

    result = CliRunner().invoke(
        app, ["--data-dir", str(context.settings.data_dir), "lifecycle", "clean", job["id"]]
    )
    assert result.exit_code == 0, result.output
    assert f"deleted dry run {job['id']} on dry-run-sine-1: 1 model(s)" in result.output

    assert list_dry_runs(context) == []
    assert [j["id"] for j in list_jobs(context, kind=JobKind.LIFECYCLE) if j["id"] == job["id"]] == []
    with pytest.raises(NotFound):
        show_model(context, model.id)
    for module in model.modules:
        with pytest.raises(NotFound):
            show_module(context, module.id)
    with pytest.raises(NotFound):
        DatasetService(context).show("dry-run-sine-1")
    assert not context.blobs.exists(blobs)  # no row names it any more
    with context.session() as session:
        referenced = BlobReferenceRepository(session).referenced()
    seeded = {"0" * 64, "1" * 64}  # the production model's rows name blobs never written
    assert referenced - seeded and all(context.blobs.exists(b) for b in referenced - seeded)
    assert {s.id for s in DatasetService(context).snapshot_list("wave")} == shared
    assert _production(context) == sandboxed.before

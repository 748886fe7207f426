"""The pipeline service: steps from what is stored, a dry run from its job's phase and epoch fields."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tinymlaas.cli.app import app
from tinymlaas.errors import InvalidInput, NotFound
from tinymlaas.jobs.pipeline import StepState, Tone, find_dry_run, show_pipeline
from tinymlaas.jobs.records import JobReporter, move
from tinymlaas.jobs.service import show_job, submit_job
from tinymlaas.jobs.states import JobKind, JobState, PipelineStep
from tinymlaas.services.context import Context
from tinymlaas.services.datasets import DatasetService
from tinymlaas.services.lifecycle import LifecyclePhase
from tinymlaas.settings import Settings


@pytest.fixture
def context(tmp_path) -> Context:
    context = Context(Settings(data_dir=tmp_path / "data"))
    DatasetService(context).generate("waves", "sine", samples=30, seed=1)
    return context


def _training_lifecycle(context: Context) -> str:
    """A lifecycle job in its train phase at epoch 3 of 10, as its worker reports it."""
    job_id = submit_job(context, JobKind.LIFECYCLE, {"dataset": "waves", "boards": ["pico"]})["id"]
    assert move(context, job_id, JobState.RUNNING)
    reporter = JobReporter(context, job_id)
    reporter.report("snapshot …", 0.0, phase=LifecyclePhase.SNAPSHOT)
    reporter.report("train …", 0.05, phase=LifecyclePhase.TRAIN)
    reporter.report("free text the pipeline never reads", 0.2, epoch=3, epochs=10)
    return job_id


def test_the_reporter_stores_phase_step_and_epoch_as_fields(context: Context) -> None:
    job_id = _training_lifecycle(context)
    job = show_job(context, job_id)
    assert (job["phase"], job["step"], job["epoch"], job["epochs"]) == ("train", "train", 3, 10)
    JobReporter(context, job_id).report("snapshot done", phase=LifecyclePhase.SQUEEZE)
    job = show_job(context, job_id)
    assert (job["phase"], job["step"], job["epoch"]) == ("squeeze", "squeeze", 3)  # the epoch stays known


def test_a_running_dry_run_shows_its_phase_and_epoch(context: Context) -> None:
    job_id = _training_lifecycle(context)
    pipeline = show_pipeline(context)
    assert pipeline.live and pipeline.under_way == 1
    run = pipeline.dry_run
    assert run is not None and run.job == job_id and run.active and not run.queued
    states = {s.key: s.state for s in run.steps}
    assert states == {
        PipelineStep.COLLECT: StepState.DONE,
        PipelineStep.LABEL: StepState.DONE,
        PipelineStep.TRAIN: StepState.RUNNING,
        PipelineStep.SQUEEZE: StepState.WAITING,
        PipelineStep.COMPILE: StepState.WAITING,
        PipelineStep.DEPLOY: StepState.NOT_IN_DRY_RUN,
    }
    (train,) = [s for s in run.steps if s.key is PipelineStep.TRAIN]
    assert train.detail == "epoch 3 of at most 10" and train.tone is Tone.BUSY
    stored = {s.key: s.state for s in pipeline.steps}
    assert stored[PipelineStep.TRAIN] is StepState.RUNNING and stored[PipelineStep.COLLECT] is StepState.DONE


def test_only_an_existing_lifecycle_job_is_a_dry_run(context: Context) -> None:
    assert find_dry_run(context) is None
    train = submit_job(context, JobKind.TRAIN, {"dataset": "waves"})["id"]
    with pytest.raises(InvalidInput, match="is a train job, not a dry run"):
        find_dry_run(context, train)
    with pytest.raises(NotFound):
        find_dry_run(context, "job_missing")


def test_cli_shows_the_pipeline_as_a_table_and_as_json(context: Context) -> None:
    job_id = _training_lifecycle(context)
    base = ["--data-dir", str(context.settings.data_dir), "pipeline", "show"]
    runner = CliRunner()
    table = runner.invoke(app, base)
    assert table.exit_code == 0, table.output
    assert "The lifecycle, as stored" in table.output and f"Dry run {job_id}" in table.output
    assert "epoch 3" in table.output  # the cell may wrap in a narrow terminal
    shown = runner.invoke(app, [*base, "--json", "--job", job_id])
    assert shown.exit_code == 0, shown.output
    document = json.loads(shown.output)
    assert [s["key"] for s in document["steps"]] == [s.value for s in PipelineStep]
    assert document["dry_run"]["state"] == "running" and document["live"] is True
    missing = runner.invoke(app, [*base, "--job", "job_missing"])
    assert isinstance(missing.exception, NotFound)

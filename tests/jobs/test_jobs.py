from __future__ import annotations

import itertools
import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from helpers.waiting import process_gone, wait_for_job
from helpers.workers import slow
from tinymlaas.cli.app import app
from tinymlaas.errors import Conflict, InvalidInput, NotFound
from tinymlaas.jobs import (
    JOB_TRANSITIONS,
    SERVER_STOPPED,
    TERMINAL_STATES,
    JobKind,
    JobState,
    LocalProcessExecutor,
)
from tinymlaas.jobs.records import move
from tinymlaas.jobs.service import cancel_job, list_jobs, show_job, submit_job
from tinymlaas.services.context import Context
from tinymlaas.services.datasets import DatasetService
from tinymlaas.settings import Settings
from tinymlaas.storage.repositories import JobRepository


@pytest.fixture
def context(tmp_path) -> Context:
    return Context(Settings(data_dir=tmp_path / "data"))


@pytest.fixture
def executors(context: Context) -> Iterator[Callable[..., LocalProcessExecutor]]:
    started: list[LocalProcessExecutor] = []

    def start(**kwargs: Any) -> LocalProcessExecutor:
        executor = LocalProcessExecutor(context.settings, **kwargs)
        started.append(executor)
        return executor

    yield start
    for executor in started:
        executor.shutdown()


def _in(*states: JobState) -> Callable[[dict[str, Any]], bool]:
    return lambda job: job["state"] in {s.value for s in states}


def _insert(context: Context, state: JobState, **values: Any) -> str:
    job = submit_job(context, JobKind.TRAIN, {"dataset": "d"})
    with context.session() as session:
        JobRepository(session).update_if(job["id"], [JobState.QUEUED.value], {"state": state.value, **values})
    return job["id"]


def test_every_transition_pair_follows_the_table(context):
    assert {JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED} == TERMINAL_STATES
    for source, target in itertools.product(JobState, JobState):
        job_id = _insert(context, source)
        assert move(context, job_id, target) is (target in JOB_TRANSITIONS[source]), (source, target)
        expected = target if target in JOB_TRANSITIONS[source] else source
        assert show_job(context, job_id)["state"] == expected.value


def test_submit_checks_kind_and_parameters_up_front(context):
    with pytest.raises(InvalidInput, match="unknown job kind 'bake'"):
        submit_job(context, "bake", {})
    with pytest.raises(InvalidInput, match="needs 'dataset'"):
        submit_job(context, "train", {"epochs": 3})
    with pytest.raises(InvalidInput, match="'epochs' must be an integer"):
        submit_job(context, "train", {"dataset": "d", "epochs": "3"})
    with pytest.raises(InvalidInput, match="takes no colour"):
        submit_job(context, "compile", {"variant": "v", "board": "b", "colour": "red"})
    with pytest.raises(InvalidInput, match="at least one board"):
        submit_job(context, "lifecycle", {"dataset": "d", "boards": []})
    with pytest.raises(InvalidInput, match="unknown quantization int4"):
        submit_job(context, "squeeze", {"model": "m", "quantizations": ["int4"]})
    with pytest.raises(NotFound):
        show_job(context, "job_missing")
    assert list_jobs(context) == []


def test_a_train_job_runs_in_a_worker_process_and_records_its_model(context, executors):
    DatasetService(context).generate("sine", "sine", samples=120, seed=1)
    executor = executors(max_workers=1)
    job = submit_job(context, "train", {"dataset": "sine", "epochs": 2}, executor=executor)
    assert job["state"] == "queued"
    done = wait_for_job(context, job["id"], _in(*TERMINAL_STATES), timeout=120)
    assert done["state"] == "succeeded", done["error"]
    assert done["progress"] == 1.0
    assert done["result"]["id"].startswith("mdl_")
    assert done["worker_pid"] not in (None, os.getpid())
    assert "epoch 2/2 loss=" in done["log"]
    assert (done["phase"], done["step"], done["epoch"], done["epochs"]) == ("train", "train", 2, 2)
    assert done["started_at"] <= done["finished_at"]
    assert [j["id"] for j in list_jobs(context, state="succeeded", kind="train")] == [job["id"]]


def test_two_jobs_run_at_once_a_third_waits_and_cancel_ends_them(context, executors):
    executor = executors(max_workers=2, worker=slow)
    ids = [submit_job(context, "train", {"dataset": "d"}, executor=executor)["id"] for _ in range(3)]
    first, second = (
        wait_for_job(context, i, lambda j: j["state"] == "running" and j["progress"] > 0) for i in ids[:2]
    )
    assert first["worker_pid"] != second["worker_pid"]
    assert show_job(context, ids[2])["state"] == "queued"

    cancelled = cancel_job(context, ids[0], executor=executor)
    assert cancelled["state"] == "cancelled" and cancelled["finished_at"] is not None
    assert process_gone(first["worker_pid"])
    # The freed slot goes to the third job; cancelling a queued job never starts it.
    wait_for_job(context, ids[2], _in(JobState.RUNNING))
    assert cancel_job(context, ids[2], executor=executor)["state"] == "cancelled"
    with pytest.raises(Conflict, match="already ended"):
        cancel_job(context, ids[0], executor=executor)

    # Without the executor (the CLI's way), the worker stops at its next progress report.
    assert cancel_job(context, ids[1])["state"] == "cancelled"
    deadline = time.monotonic() + 10
    while executor.running():
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert show_job(context, ids[1])["state"] == "cancelled"


def test_a_killed_worker_fails_its_job_and_frees_its_slot(context, executors):
    executor = executors(max_workers=1, worker=slow)
    killed, after = (
        submit_job(context, "train", {"dataset": "d"}, executor=executor)["id"] for _ in range(2)
    )
    pid = wait_for_job(context, killed, _in(JobState.RUNNING))["worker_pid"]
    os.kill(pid, signal.SIGKILL)
    failed = wait_for_job(context, killed, _in(JobState.FAILED))
    assert "killed by SIGKILL" in failed["error"]
    assert failed["finished_at"] is not None
    wait_for_job(context, after, _in(JobState.RUNNING))


def test_restart_fails_jobs_left_running_and_runs_those_left_queued(context, executors):
    orphan = _insert(context, JobState.RUNNING, worker_pid=2**22 + 1)
    waiting = _insert(context, JobState.QUEUED)
    executor = executors(worker=slow)
    assert executor.recovered.failed == (orphan,)
    failed = show_job(context, orphan)
    assert failed["state"] == "failed" and failed["error"] == SERVER_STOPPED
    wait_for_job(context, waiting, _in(JobState.RUNNING))
    executor.shutdown()
    assert show_job(context, waiting)["error"] == SERVER_STOPPED


def test_cli_lists_shows_and_cancels_jobs(context):
    job = submit_job(context, "lifecycle", {"dataset": "d", "boards": ["esp32"]})
    base = ["--data-dir", str(context.settings.data_dir), "jobs"]
    runner = CliRunner()
    listed = runner.invoke(app, [*base, "list", "--json"])
    assert listed.exit_code == 0, listed.output
    assert [j["id"] for j in json.loads(listed.output)] == [job["id"]]
    shown = runner.invoke(app, [*base, "show", job["id"]])
    assert shown.exit_code == 0 and "queued" in shown.output
    as_json = json.loads(runner.invoke(app, [*base, "show", job["id"], "--json"]).output)
    assert {"phase": None, "step": None, "epoch": None, "epochs": None}.items() <= as_json.items()
    cancelled = runner.invoke(app, [*base, "cancel", job["id"], "--json"])
    assert cancelled.exit_code == 0, cancelled.output
    assert json.loads(cancelled.output)["state"] == "cancelled"
    with context.session() as session:
        assert JobRepository(session).job(job["id"]).state == JobState.CANCELLED.value

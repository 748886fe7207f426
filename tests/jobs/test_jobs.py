from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
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
    Executor,
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


# Where the Ray head's workers find ``helpers.workers``: pickled functions are imported by name.
TESTS_DIR = Path(__file__).resolve().parents[1]
RAY_START_TIMEOUT_S = 60


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[str]:
    """One Ray head for the module (``ray start --block``), stopped by its process group; its address.

    Its own temp dir keeps it out of other Ray users' ``auto`` lookup; auth is off on both sides, as
    on a private test network.
    """
    temp_dir = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # Ray's socket paths must stay short
    port = _free_port()
    log = temp_dir / "head.log"
    python_path = os.pathsep.join(p for p in (str(TESTS_DIR), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "PYTHONPATH": python_path, "RAY_AUTH_MODE": "disabled"}
    command = [
        str(Path(sys.executable).with_name("ray")),
        *("start", "--head", "--block", f"--port={port}", "--node-ip-address=127.0.0.1"),
        *("--num-cpus=2", "--include-dashboard=false", "--disable-usage-stats"),
        *(f"--object-store-memory={80 * 1024 * 1024}", f"--temp-dir={temp_dir}"),
    ]
    with pytest.MonkeyPatch.context() as monkeypatch, log.open("wb") as out:
        monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
        head = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        try:
            deadline = time.monotonic() + RAY_START_TIMEOUT_S
            while b"Ray runtime started" not in log.read_bytes():
                assert head.poll() is None, log.read_text(errors="replace")
                assert time.monotonic() < deadline, "the Ray head did not start"
                time.sleep(0.2)
            yield f"127.0.0.1:{port}"
        finally:
            head.terminate()
            try:
                head.wait(30)
            finally:
                # Whatever of the head outlived it: its session holds only processes this fixture started.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(head.pid, signal.SIGKILL)
                shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture(params=["local", "ray"])
def executor_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def executors(
    context: Context, executor_kind: str, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Executor]]:
    """Starts executors of the test's kind on its store; Ray ones on the module's Ray head."""
    settings = context.settings
    if executor_kind == "ray":
        from tinymlaas.jobs.ray_executor import RayExecutor

        address = request.getfixturevalue("ray_cluster")
        settings = settings.model_copy(update={"executor": "ray", "ray_address": address})
        kind: type[Executor] = RayExecutor
    else:
        kind = LocalProcessExecutor
    started: list[Executor] = []

    def start(**kwargs: Any) -> Executor:
        executor = kind(settings, **kwargs)
        started.append(executor)
        return executor

    yield start
    for executor in started:
        executor.shutdown()


def _gone(pid: int, timeout: float = 10) -> bool:
    """Whether process ``pid`` is gone within ``timeout``: a killed worker is reaped by its parent."""
    deadline = time.monotonic() + timeout
    while not process_gone(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


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
    assert _gone(first["worker_pid"])
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


# How each executor tells a worker killed under a running job: a local process's exit code names the
# signal; Ray reports only that its worker died.
KILLED = {"local": "the worker process was killed by SIGKILL", "ray": "the Ray worker process died"}


def test_a_killed_worker_fails_its_job_and_frees_its_slot(context, executors, executor_kind):
    executor = executors(max_workers=1, worker=slow)
    killed, after = (
        submit_job(context, "train", {"dataset": "d"}, executor=executor)["id"] for _ in range(2)
    )
    pid = wait_for_job(context, killed, _in(JobState.RUNNING))["worker_pid"]
    os.kill(pid, signal.SIGKILL)
    failed = wait_for_job(context, killed, _in(JobState.FAILED))
    assert KILLED[executor_kind] in failed["error"]
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

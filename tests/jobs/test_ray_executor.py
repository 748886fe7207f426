"""What only the Ray executor does: start Ray itself, and refuse clearly when Ray is out of reach.

The executor contract it shares with the local executor is tested on both in ``test_jobs.py``.
"""

from __future__ import annotations

import os
import re
import socket

import pytest
import ray
from typer.testing import CliRunner

from helpers.waiting import wait_for_job
from tinymlaas.cli.app import app
from tinymlaas.errors import Conflict, InvalidInput
from tinymlaas.jobs import TERMINAL_STATES, JobState, RayExecutor
from tinymlaas.jobs.service import show_job, submit_job
from tinymlaas.services.context import Context
from tinymlaas.settings import Settings
from tinymlaas.storage.repositories import JobRepository

# The store is incidental here; both backends run the shared contract in test_jobs.py.
pytestmark = pytest.mark.store_backends("sqlite")


@pytest.fixture
def context(tmp_path) -> Context:
    return Context(Settings(data_dir=tmp_path / "data"))


def _on_ray(context: Context, address: str) -> Settings:
    return context.settings.model_copy(update={"executor": "ray", "ray_address": address})


def _nothing_listens() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_ray_is_a_clear_error_naming_the_address_and_no_job_runs(context):
    queued = submit_job(context, "train", {"dataset": "d"})["id"]
    orphan = submit_job(context, "train", {"dataset": "d"})["id"]
    with context.session() as session:
        JobRepository(session).update_if(orphan, [JobState.QUEUED.value], {"state": JobState.RUNNING.value})
    port = _nothing_listens()
    for address in (f"127.0.0.1:{port}", f"ray://127.0.0.1:{port}"):
        with pytest.raises(Conflict, match=re.escape(f"cannot reach Ray at {address!r}")):
            RayExecutor(_on_ray(context, address))
    with pytest.raises(InvalidInput, match="is not 'auto', 'ray://host:port' or 'host:port'"):
        RayExecutor(_on_ray(context, "127.0.0.1"))
    assert not ray.is_initialized()
    assert show_job(context, queued)["state"] == "queued"
    # A job a gone server left RUNNING fails at start, reachable Ray or not.
    assert show_job(context, orphan)["state"] == "failed"


def test_serve_takes_the_executor_from_its_flags(context):
    base = ["--data-dir", str(context.settings.data_dir), "serve", "--http-port", "0", "--coaps-port", "0"]
    runner = CliRunner()
    local = runner.invoke(app, [*base, "--ray-address", "127.0.0.1:1"])
    assert isinstance(local.exception, InvalidInput), local.output
    assert "add --executor ray" in local.exception.detail
    address = f"127.0.0.1:{_nothing_listens()}"
    unreachable = runner.invoke(app, [*base, "--executor", "ray", "--ray-address", address])
    assert isinstance(unreachable.exception, Conflict), unreachable.output
    assert f"cannot reach Ray at {address!r}" in unreachable.exception.detail


def test_without_an_address_it_starts_ray_and_runs_each_job_in_a_fresh_worker(context, monkeypatch):
    # Ray would otherwise turn on token auth for this whole process, and other tests' clusters have none.
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    executor = RayExecutor(_on_ray(context, ""), max_workers=1)
    try:
        assert ray.is_initialized()
        assert executor.address == ray.get_runtime_context().gcs_address
        # The real worker entry point: the job fails inside it and the worker records why.
        ids = [submit_job(context, "train", {"dataset": "absent"}, executor=executor)["id"] for _ in range(2)]
        done = [wait_for_job(context, i, lambda j: JobState(j["state"]) in TERMINAL_STATES) for i in ids]
    finally:
        executor.shutdown()
    assert not ray.is_initialized()
    for job in done:
        assert job["state"] == "failed" and "absent" in job["error"], job
    pids = {job["worker_pid"] for job in done}
    assert len(pids) == 2 and os.getpid() not in pids

"""Waiting on jobs and worker processes, which the tests watch from outside as a user would."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from tinymlaas.jobs.service import show_job
from tinymlaas.services.context import Context


def wait_for_job(
    context: Context, job_id: str, done: Callable[[dict[str, Any]], bool], timeout: float = 180
) -> dict[str, Any]:
    """The job as stored once ``done`` holds for it; fails the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        job = show_job(context, job_id)
        if done(job):
            return job
        assert time.monotonic() < deadline, f"timed out waiting on {job}"
        time.sleep(0.1)


def process_gone(pid: int) -> bool:
    """Whether no process ``pid`` is left, judged by signal 0, which checks without touching it."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False

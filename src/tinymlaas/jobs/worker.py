"""What runs inside a worker process: open a fresh context, run the job, record how it ended."""

from __future__ import annotations

import contextlib
import json
import os
import traceback
from typing import Any

from tinymlaas import quiet
from tinymlaas.errors import TinymlaasError
from tinymlaas.jobs.params import PARAMS
from tinymlaas.jobs.records import JobCancelled, JobReporter, move
from tinymlaas.jobs.runners import run
from tinymlaas.jobs.states import JobKind, JobState
from tinymlaas.services.context import Context
from tinymlaas.settings import Settings
from tinymlaas.storage.repositories import JobRepository

__all__ = ["run_job"]


def _json(value: dict[str, Any]) -> dict[str, Any]:
    """Views may hold datetimes or paths; the result column stores JSON, so they become strings."""
    return json.loads(json.dumps(value, default=str))


def run_job(settings: Settings, job_id: str) -> None:
    """Worker entry point: a module-level function, so a "spawn" child can import it by name.

    The worker records every outcome itself; the executor steps in only when the process dies
    without one (killed, out of memory, a crash in native code).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    quiet.install()
    ctx = Context(settings)
    if not move(ctx, job_id, JobState.RUNNING, worker_pid=os.getpid(), message="started"):
        return  # cancelled while it waited for this process
    with ctx.session() as session:
        row = JobRepository(session).job(job_id)
        kind, stored = JobKind(row.kind), dict(row.params)
    try:
        params = PARAMS[kind].model_validate(stored)  # checked when it was submitted: only parsed back
        result = run(ctx, params, JobReporter(ctx, job_id))
    except JobCancelled:
        return
    except TinymlaasError as exc:
        move(ctx, job_id, JobState.FAILED, error=exc.detail[:4096], message="failed")
    except Exception as exc:
        with contextlib.suppress(JobCancelled):
            JobReporter(ctx, job_id).report(traceback.format_exc().rstrip())
        move(ctx, job_id, JobState.FAILED, error=f"{type(exc).__name__}: {exc}"[:4096], message="failed")
    else:
        move(ctx, job_id, JobState.SUCCEEDED, progress=1.0, result=_json(result), message="done")

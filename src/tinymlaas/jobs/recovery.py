"""Start-up repair: no job stays RUNNING after the server that ran it is gone."""

from __future__ import annotations

from dataclasses import dataclass

from tinymlaas.jobs.records import move
from tinymlaas.jobs.states import JobState
from tinymlaas.services.context import Context
from tinymlaas.storage.repositories import JobRepository

__all__ = ["SERVER_STOPPED", "Recovered", "recover"]

SERVER_STOPPED = "the server stopped while the job ran"


@dataclass(frozen=True)
class Recovered:
    failed: tuple[str, ...]  # were RUNNING under the previous server; now FAILED
    queued: tuple[str, ...]  # still QUEUED, oldest first, for the new executor to run


def recover(ctx: Context) -> Recovered:
    """Fail every job left RUNNING and hand back those left QUEUED.

    Only one server (one executor) may use a database at a time, so a RUNNING job at start-up
    belongs to a process that is gone. A worker that outlived its server finds its job FAILED at its
    next progress report and stops.
    """
    with ctx.session() as session:
        rows = JobRepository(session).jobs(states=[JobState.RUNNING.value, JobState.QUEUED.value])
        running = [r.id for r in rows if r.state == JobState.RUNNING.value]
        queued = [r.id for r in reversed(rows) if r.state == JobState.QUEUED.value]
    failed = tuple(
        job_id
        for job_id in running
        if move(ctx, job_id, JobState.FAILED, error=SERVER_STOPPED, message="failed")
    )
    return Recovered(failed=failed, queued=tuple(queued))

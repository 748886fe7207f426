"""Submit, list, show and cancel background jobs.

An executor is optional: a process without one (the CLI) records a job QUEUED for the server's
executor, and cancels a running job by moving its row to CANCELLED, which its worker notices at its
next progress report.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from tinymlaas.errors import Conflict, InvalidInput
from tinymlaas.jobs.executor import Executor
from tinymlaas.jobs.params import PARAMS, JobParams, parse_params
from tinymlaas.jobs.records import move
from tinymlaas.jobs.states import TERMINAL_STATES, JobKind, JobState
from tinymlaas.services.context import Context, new_id
from tinymlaas.storage.repositories import JobRepository
from tinymlaas.storage.tables import JobRow

__all__ = ["cancel_job", "count_jobs", "job_view", "list_jobs", "show_job", "submit_job"]


_E = TypeVar("_E", JobKind, JobState)


def _enum(enum: type[_E], value: str | _E, what: str) -> _E:
    try:
        return enum(value)
    except ValueError:
        known = ", ".join(m.value for m in enum)
        raise InvalidInput(f"unknown job {what} {value!r} (known: {known})") from None


def job_view(row: JobRow, *, log: bool = False) -> dict[str, Any]:
    """The public shape of a job; the log only on request, since it grows with every epoch."""
    view: dict[str, Any] = {
        "id": row.id,
        "kind": row.kind,
        "state": row.state,
        # Verdicts from the state table, so pages and clients never list state names themselves.
        "active": JobState(row.state) not in TERMINAL_STATES,
        "failed": row.state == JobState.FAILED.value,
        "params": row.params,
        "progress": row.progress,
        "message": row.message,
        "phase": row.phase,
        "step": row.step,
        "epoch": row.epoch,
        "epochs": row.epochs,
        "history": row.history or {},
        "result": row.result,
        "error": row.error,
        "worker_pid": row.worker_pid,
        "created_at": row.created_at.isoformat(),
        "started_at": row.started_at.isoformat() if row.started_at else None,
        "finished_at": row.finished_at.isoformat() if row.finished_at else None,
        "updated_at": row.updated_at.isoformat(),
    }
    if log:
        view["log"] = row.log
    return view


def submit_job(
    ctx: Context,
    kind: str | JobKind,
    params: Mapping[str, Any] | JobParams,
    *,
    executor: Executor | None = None,
) -> dict[str, Any]:
    """Record the job QUEUED and hand it to ``executor`` if there is one.

    Plain ``params`` are validated here; a ``JobParams`` was validated when it was made.
    """
    job_kind = _enum(JobKind, kind, "kind")
    checked = params if isinstance(params, JobParams) else parse_params(job_kind, params)
    if not isinstance(checked, PARAMS[job_kind]):
        raise InvalidInput(
            f"a {job_kind.value} job takes {PARAMS[job_kind].__name__}, not {type(params).__name__}"
        )
    with ctx.session() as session:
        row = JobRepository(session).add(
            JobRow(
                id=new_id("job"),
                kind=job_kind.value,
                params=checked.stored(),
                state=JobState.QUEUED.value,
                progress=0.0,
                message="queued",
                log="",
            )
        )
        view = job_view(row)
    if executor is not None:
        executor.submit(view["id"])
    return view


def list_jobs(
    ctx: Context,
    *,
    state: str | JobState | None = None,
    kind: str | JobKind | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Newest first."""
    if limit < 1 or offset < 0:
        raise InvalidInput("limit must be at least 1 and offset at least 0")
    states, kind_value = _filters(state, kind)
    with ctx.session() as session:
        rows = JobRepository(session).jobs(states=states, kind=kind_value, limit=limit, offset=offset)
        return [job_view(r) for r in rows]


def count_jobs(
    ctx: Context, *, state: str | JobState | None = None, kind: str | JobKind | None = None
) -> int:
    """How many jobs ``list_jobs`` finds with these filters before paging."""
    states, kind_value = _filters(state, kind)
    with ctx.session() as session:
        return JobRepository(session).count(states=states, kind=kind_value)


def _filters(state: str | JobState | None, kind: str | JobKind | None) -> tuple[list[str] | None, str | None]:
    states = None if state is None else [_enum(JobState, state, "state").value]
    return states, None if kind is None else _enum(JobKind, kind, "kind").value


def show_job(ctx: Context, job_id: str) -> dict[str, Any]:
    """One job with its log."""
    with ctx.session() as session:
        return job_view(JobRepository(session).job(job_id), log=True)


def cancel_job(ctx: Context, job_id: str, *, executor: Executor | None = None) -> dict[str, Any]:
    """Cancel a queued or running job; a job that already ended is a Conflict."""
    if executor is not None:
        moved = executor.cancel(job_id)
    else:
        moved = move(ctx, job_id, JobState.CANCELLED, message="cancelled")
    job = show_job(ctx, job_id)  # NotFound for an unknown id
    if not moved:
        raise Conflict(
            f"job {job_id} already ended ({job['state']}); only queued or running jobs can be cancelled"
        )
    return job

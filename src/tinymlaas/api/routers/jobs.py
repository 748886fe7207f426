"""Background jobs: every role may follow them (``jobs:read``); starting or cancelling one needs the
permission of what it does: ``training:write`` to train or run a lifecycle, ``models:write`` to
squeeze or compile.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from tinymlaas.api.deps import ContextDep, ExecutorDep, Page, authenticated, authorize, require
from tinymlaas.api.schemas.jobs import JobCreate, JobDetailPublic, JobPublic, JobsPublic
from tinymlaas.jobs import JobKind, JobState, service
from tinymlaas.jobs.requests import JOB_PERMISSIONS, request_job
from tinymlaas.services.auth import Permission

router = APIRouter(prefix="/jobs", tags=["jobs"])

Reader = Annotated[dict[str, Any], Depends(require(Permission.JOBS_READ))]
Token = Annotated[dict[str, Any], Depends(authenticated)]


@router.get("", response_model=JobsPublic)
def list_jobs(
    context: ContextDep,
    _token: Reader,
    paging: Annotated[Page, Depends()],
    state: Annotated[JobState | None, Query(description="Only jobs in this state.")] = None,
    kind: Annotated[JobKind | None, Query(description="Only jobs of this kind.")] = None,
) -> JobsPublic:
    """Every job, newest first, without logs (``show_job`` has the log)."""
    jobs = service.list_jobs(context, state=state, kind=kind, limit=paging.limit, offset=paging.offset)
    return JobsPublic(
        data=[JobPublic(**j) for j in jobs], count=service.count_jobs(context, state=state, kind=kind)
    )


@router.get("/{job_id}", response_model=JobDetailPublic)
def show_job(context: ContextDep, _token: Reader, job_id: str) -> JobDetailPublic:
    """One job with its progress, outcome and log."""
    return JobDetailPublic(**service.show_job(context, job_id))


@router.post("", response_model=JobPublic, status_code=202)
def create_job(context: ContextDep, executor: ExecutorDep, token: Token, body: JobCreate) -> JobPublic:
    """Queue a job; 422 naming the parameter when something it names does not exist.

    The server's workers run it; follow it with ``show_job``. A server started without workers keeps
    it queued until one with workers starts.
    """
    authorize(token, JOB_PERMISSIONS[body.kind])
    return JobPublic(**request_job(context, body.kind, body.params, executor=executor))


@router.post("/{job_id}/cancel", response_model=JobDetailPublic)
def cancel_job(context: ContextDep, executor: ExecutorDep, token: Token, job_id: str) -> JobDetailPublic:
    """Stop a queued or running job; 409 when it already ended."""
    job = service.show_job(context, job_id)
    authorize(token, JOB_PERMISSIONS[JobKind(job["kind"])])
    return JobDetailPublic(**service.cancel_job(context, job_id, executor=executor))

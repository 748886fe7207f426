"""The lifecycle as a line of steps, and the dry run a ``lifecycle`` job makes: every role may read it
(``jobs:read``), as every role may open the dashboard's Pipeline page. Deleting a dry run's sandbox
takes ``training:write``, as starting one does.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from tinymlaas.api.deps import ContextDep, require
from tinymlaas.jobs.pipeline import DryRunRemoval, Pipeline
from tinymlaas.jobs.pipeline import delete_dry_run as remove_dry_run
from tinymlaas.jobs.pipeline import show_pipeline as service
from tinymlaas.services.auth import Permission

router = APIRouter(prefix="/pipeline", tags=["pipeline"])

Reader = Annotated[dict[str, Any], Depends(require(Permission.JOBS_READ))]
Writer = Annotated[dict[str, Any], Depends(require(Permission.TRAINING_WRITE))]


@router.get("", response_model=Pipeline)
def show_pipeline(
    context: ContextDep,
    _token: Reader,
    job: Annotated[
        str | None, Query(description="The lifecycle job to show as the dry run; the newest when left out.")
    ] = None,
) -> Pipeline:
    """collect → label → train → squeeze → compile → deploy as stored (production work only), the dry
    runs kept in the sandbox with their results, and one dry run phase by phase.

    404 when ``job`` names no job, 422 when it names a job that is not a lifecycle.
    """
    return service(context, job)


@router.delete("/dry-runs/{job_id}", response_model=DryRunRemoval)
def delete_dry_run(context: ContextDep, _token: Writer, job_id: str) -> DryRunRemoval:
    """Remove a dry run: its sandbox dataset, snapshots, runs, models, variants and modules, its
    lifecycle jobs, and the blobs no row names any more.

    404 for an unknown job, 422 for a job that is no dry run, 409 while it is queued or running.
    """
    return remove_dry_run(context, job_id)

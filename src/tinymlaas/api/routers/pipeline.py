"""The lifecycle as a line of steps, and the dry run a ``lifecycle`` job makes: every role may read it
(``jobs:read``), as every role may open the dashboard's Pipeline page.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from tinymlaas.api.deps import ContextDep, require
from tinymlaas.jobs.pipeline import Pipeline
from tinymlaas.jobs.pipeline import show_pipeline as service
from tinymlaas.services.auth import Permission

router = APIRouter(prefix="/pipeline", tags=["pipeline"])

Reader = Annotated[dict[str, Any], Depends(require(Permission.JOBS_READ))]


@router.get("", response_model=Pipeline)
def show_pipeline(
    context: ContextDep,
    _token: Reader,
    job: Annotated[
        str | None, Query(description="The lifecycle job to show as the dry run; the newest when left out.")
    ] = None,
) -> Pipeline:
    """collect → label → train → squeeze → compile → deploy as stored, and a dry run phase by phase.

    404 when ``job`` names no job, 422 when it names a job that is not a lifecycle.
    """
    return service(context, job)

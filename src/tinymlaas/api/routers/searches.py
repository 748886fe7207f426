"""Model searches: reading needs ``models:read``; starting one needs what a search job needs
(``training:write``, since it trains models).

A search trains and measures many models, so it is a job: ``POST /searches`` checks what the body
names, queues it and answers with the job, whose result is the stored search.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from tinymlaas.api.deps import ContextDep, ExecutorDep, Page, require
from tinymlaas.api.schemas.jobs import JobPublic
from tinymlaas.api.schemas.searches import SearchCreate, SearchesPublic, SearchListItem, SearchPublic
from tinymlaas.jobs import JobKind
from tinymlaas.jobs.requests import JOB_PERMISSIONS, request_job
from tinymlaas.services import search as service
from tinymlaas.services.auth import Permission

router = APIRouter(prefix="/searches", tags=["searches"])

Reader = Annotated[dict[str, Any], Depends(require(Permission.MODELS_READ))]
Searcher = Annotated[dict[str, Any], Depends(require(JOB_PERMISSIONS[JobKind.SEARCH]))]


@router.post("", response_model=JobPublic, status_code=202)
def search_models(
    context: ContextDep, executor: ExecutorDep, _token: Searcher, body: SearchCreate
) -> JobPublic:
    """Queue a search job; follow it with ``show_job``, whose result is the stored search.

    422 naming the field for a body that does not validate, or a dataset, board or architecture that
    does not exist.
    """
    service.check_search(context, body.dataset, body.boards, body.arch)
    return JobPublic(**request_job(context, JobKind.SEARCH, body.stored(), executor=executor))


@router.get("", response_model=SearchesPublic)
def list_searches(
    context: ContextDep,
    _token: Reader,
    paging: Annotated[Page, Depends()],
    dataset: Annotated[str | None, Query(max_length=128, description="Only this dataset's searches.")] = None,
) -> SearchesPublic:
    """Stored searches, newest first, without their trials (``show_search`` has them)."""
    found = service.list_searches(context, dataset, limit=paging.limit, offset=paging.offset)
    return SearchesPublic(
        data=[SearchListItem(**s) for s in found], count=service.count_searches(context, dataset)
    )


@router.get("/{search_id}", response_model=SearchPublic)
def show_search(context: ContextDep, _token: Reader, search_id: str) -> SearchPublic:
    """One search: every trial with its figures per board and their basis, the fronts and the summary."""
    return SearchPublic(**service.show_search(context, search_id))

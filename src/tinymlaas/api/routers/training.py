"""Training runs: reading them needs ``models:read``; starting one needs ``training:write``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from tinymlaas.api.deps import ContextDep, ExecutorDep, Page, require
from tinymlaas.api.schemas.jobs import JobPublic
from tinymlaas.api.schemas.training import (
    TrainingRunCreate,
    TrainingRunDetailPublic,
    TrainingRunPublic,
    TrainingRunsPublic,
)
from tinymlaas.jobs import JobKind
from tinymlaas.jobs.requests import request_job
from tinymlaas.services import runs
from tinymlaas.services.auth import Permission

router = APIRouter(prefix="/training-runs", tags=["training"])

Reader = Annotated[dict[str, Any], Depends(require(Permission.MODELS_READ))]
Trainer = Annotated[dict[str, Any], Depends(require(Permission.TRAINING_WRITE))]


@router.get("", response_model=TrainingRunsPublic)
def list_training_runs(
    context: ContextDep,
    _token: Reader,
    paging: Annotated[Page, Depends()],
    dataset: str | None = None,
) -> TrainingRunsPublic:
    """Every training run, newest first, optionally only those on ``dataset``."""
    found, count = runs.runs_page(context, dataset=dataset, limit=paging.limit, offset=paging.offset)
    return TrainingRunsPublic(data=[TrainingRunPublic(**r) for r in found], count=count)


@router.get("/{run_id}", response_model=TrainingRunDetailPublic)
def show_training_run(context: ContextDep, _token: Reader, run_id: str) -> TrainingRunDetailPublic:
    """One run with its loss and metric per epoch and, for a classifier, its confusion matrix."""
    return TrainingRunDetailPublic(**runs.show_run(context, run_id))


@router.post("", response_model=JobPublic, status_code=202)
def create_training_run(
    context: ContextDep, executor: ExecutorDep, _token: Trainer, body: TrainingRunCreate
) -> JobPublic:
    """Queue a train job on a fresh snapshot of ``dataset``; the run and model appear when it succeeds.

    422 when the dataset does not exist or the architecture does not suit its samples.
    """
    params = body.model_dump(exclude_none=True)
    return JobPublic(**request_job(context, JobKind.TRAIN, params, executor=executor))

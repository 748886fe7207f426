"""Split plans (lifecycle phase 4): reading needs ``models:read``, planning ``models:write``.

Planning runs the model in QEMU and LiteRT, so it is a job: ``POST /splits`` queues it and answers
with the job, whose result is the plan.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from tinymlaas.api.deps import ContextDep, ExecutorDep, require
from tinymlaas.api.schemas.jobs import JobPublic
from tinymlaas.jobs import JobKind
from tinymlaas.jobs.requests import request_job
from tinymlaas.services import splitting as service
from tinymlaas.services.auth import Permission
from tinymlaas.split.planner import parse_chain

router = APIRouter(prefix="/splits", tags=["splits"])

Reader = Annotated[dict[str, Any], Depends(require(Permission.MODELS_READ))]
Writer = Annotated[dict[str, Any], Depends(require(Permission.MODELS_WRITE))]


class SplitCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(max_length=160, description="Model id, name or name:version; its int8 variant is cut.")
    chain: str = Field(max_length=200, examples=["nano33ble:ble:rpi4"], description="device:link:node.")
    objective: str = Field("latency", max_length=16, description="What the choice minimises.")
    build: bool = Field(False, description="Also build the chosen (or ``cut``) head and tail modules.")
    cut: int | None = Field(None, ge=0, description="The cut to build instead of the chosen one.")


@router.post("", response_model=JobPublic, status_code=202)
def plan_split(context: ContextDep, executor: ExecutorDep, _token: Writer, body: SplitCreate) -> JobPublic:
    """Queue a split job: every valid cut costed on the chain, the choice, optionally built.

    422 for a chain that does not parse or names an unknown board or link; 404 for an unknown model.
    """
    parse_chain(body.chain, context.catalog)
    service.list_splits(context, body.model)
    return JobPublic(
        **request_job(context, JobKind.SPLIT, body.model_dump(exclude_none=True), executor=executor)
    )


@router.get("", response_model=list[dict[str, Any]])
def list_splits(
    context: ContextDep,
    _token: Reader,
    model: Annotated[str | None, Query(max_length=160, description="Only this model's plans.")] = None,
) -> list[dict[str, Any]]:
    """Stored plans, newest first, each with every candidate's figures and their sources."""
    return service.list_splits(context, model)


@router.get("/{plan_id}", response_model=dict[str, Any])
def show_split(context: ContextDep, _token: Reader, plan_id: str) -> dict[str, Any]:
    """One plan: per cut the head's flash and RAM, device, transfer and remote times with their basis."""
    return service.show_split(context, plan_id)

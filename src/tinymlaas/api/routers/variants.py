"""Variants: reading them needs ``models:read``; compiling one for a board needs ``models:write``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from tinymlaas.api.deps import ContextDep, ExecutorDep, require
from tinymlaas.api.schemas.jobs import JobPublic
from tinymlaas.api.schemas.variants import CompileCreate, VariantDetailPublic
from tinymlaas.jobs import JobKind
from tinymlaas.jobs.requests import request_job
from tinymlaas.services.auth import Permission
from tinymlaas.services.models import variant_detail, variant_tflite

router = APIRouter(prefix="/variants", tags=["models"])

Reader = Annotated[dict[str, Any], Depends(require(Permission.MODELS_READ))]
Writer = Annotated[dict[str, Any], Depends(require(Permission.MODELS_WRITE))]

_BINARY = {200: {"content": {"application/octet-stream": {}}, "description": "The file, as stored."}}


@router.get("/{variant_id}", response_model=VariantDetailPublic)
def show_variant(context: ContextDep, _token: Reader, variant_id: str) -> VariantDetailPublic:
    """One variant: its layers and ops, size and arena, and its test metric measured in each runtime
    next to the float model's."""
    return VariantDetailPublic(**variant_detail(context, variant_id))


@router.get("/{variant_id}/tflite", response_class=Response, responses=_BINARY)
def download_variant(context: ContextDep, _token: Reader, variant_id: str) -> Response:
    """The variant's ``.tflite`` flatbuffer, byte for byte as measured."""
    name, data = variant_tflite(context, variant_id)
    return Response(
        data,
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.post("/{variant_id}/compile", response_model=JobPublic, status_code=202)
def compile_variant(
    context: ContextDep, executor: ExecutorDep, _token: Writer, variant_id: str, body: CompileCreate
) -> JobPublic:
    """Queue a compile job: the variant becomes an inference module for ``board`` with a fit verdict.

    404 for an unknown variant; 422 for an unknown board or a runtime the board does not run.
    """
    variant_detail(context, variant_id)
    params = {"variant": variant_id, **body.model_dump(exclude_none=True)}
    return JobPublic(**request_job(context, JobKind.COMPILE, params, executor=executor))

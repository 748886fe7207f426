"""Models with their lineage (run, variants, modules); reading them needs ``models:read``, importing
or squeezing one ``models:write``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, UploadFile
from starlette.concurrency import run_in_threadpool

from tinymlaas.api.deps import ContextDep, ExecutorDep, Page, require
from tinymlaas.api.schemas import ModelDetailPublic, ModelPublic, ModelsPublic, Problem
from tinymlaas.api.schemas.jobs import JobPublic
from tinymlaas.api.schemas.models import ModelImportedPublic, SqueezeCreate
from tinymlaas.api.schemas.variants import VariantPublic, VariantsPublic
from tinymlaas.httpio.uploads import receive
from tinymlaas.jobs import JobKind
from tinymlaas.jobs.requests import request_job
from tinymlaas.services.auth import Permission
from tinymlaas.services.imports import MODEL_SUFFIXES
from tinymlaas.services.models import import_uploaded_model, models_page, variants_page
from tinymlaas.services.models import show_model as show_model_view

router = APIRouter(prefix="/models", tags=["models"])

Reader = Annotated[dict[str, Any], Depends(require(Permission.MODELS_READ))]
Writer = Annotated[dict[str, Any], Depends(require(Permission.MODELS_WRITE))]

_UPLOAD_PROBLEMS: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "content": {"application/problem+json": {}}, "description": text}
    for status, text in (
        (413, "The file is larger than the server's upload limit."),
        (415, "The file is not a readable TFLite or Keras model."),
    )
}


@router.get("", response_model=ModelsPublic)
def list_models(
    context: ContextDep, _token: Reader, paging: Annotated[Page, Depends()], name: str | None = None
) -> ModelsPublic:
    """Every model version, optionally only those named ``name``."""
    models, count = models_page(context, name=name, limit=paging.limit, offset=paging.offset)
    return ModelsPublic(data=[ModelPublic(**m) for m in models], count=count)


@router.get("/{ref}", response_model=ModelDetailPublic)
def show_model(context: ContextDep, _token: Reader, ref: str) -> ModelDetailPublic:
    """One model (by id, or as the CLI names it) with its training run, variants and modules."""
    return ModelDetailPublic.model_validate(show_model_view(context, ref))


@router.get("/{ref}/variants", response_model=VariantsPublic)
def list_model_variants(
    context: ContextDep, _token: Reader, ref: str, paging: Annotated[Page, Depends()]
) -> VariantsPublic:
    """The model's variants, oldest first, each with its size, arena and metric measured per runtime."""
    variants, count = variants_page(context, ref, limit=paging.limit, offset=paging.offset)
    return VariantsPublic(data=[VariantPublic.model_validate(v) for v in variants], count=count)


@router.post("/{ref}/squeeze", response_model=JobPublic, status_code=202)
def squeeze_model(
    context: ContextDep,
    executor: ExecutorDep,
    _token: Writer,
    ref: str,
    body: SqueezeCreate | None = None,
) -> JobPublic:
    """Queue a squeeze job: float32, float16 and int8 variants, each measured in TFLM and LiteRT.

    404 for an unknown model; 422 for a model that cannot be squeezed (an imported .tflite is
    already a variant) or an unknown quantization.
    """
    model = show_model_view(context, ref)
    params: dict[str, Any] = {"model": model.id}
    if body is not None and body.quantizations is not None:
        params["quantizations"] = body.quantizations
    return JobPublic(**request_job(context, JobKind.SQUEEZE, params, executor=executor))


@router.post("/imports", response_model=ModelImportedPublic, status_code=201, responses=_UPLOAD_PROBLEMS)
async def import_model(
    context: ContextDep,
    _token: Writer,
    file: Annotated[UploadFile, File(description="A .tflite or .keras file.")],
    dataset: Annotated[
        str | None, Form(description="The dataset it is for: scored on its test split (required for .keras).")
    ] = None,
    name: Annotated[str | None, Form(max_length=128, description="Default: the file name.")] = None,
) -> ModelImportedPublic:
    """Bring your own model: inspected, its arena measured and (with a dataset) scored in TFLM.

    413 when the file is larger than the server's upload limit; 422 for another kind of file, an
    empty one, or a model whose inputs or outputs do not match the dataset; 415 for a file that is
    not a readable model.
    """
    settings = context.settings
    async with receive(
        file, limit=settings.max_upload_bytes, work_dir=settings.uploads_dir, suffixes=MODEL_SUFFIXES
    ) as path:
        model = await run_in_threadpool(import_uploaded_model, context, path, name=name, dataset=dataset)
    return ModelImportedPublic(**model)

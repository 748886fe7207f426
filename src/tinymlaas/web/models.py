"""Models (the data scientist's pages): a line per model name to find one, and a page per model
version with its variants and modules side by side across boards, how it trained, where it came from
and where it went; squeeze, compile for a board, and bring your own model."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from tinymlaas.errors import TinymlaasError
from tinymlaas.httpio.uploads import receive
from tinymlaas.jobs import JobKind
from tinymlaas.jobs.requests import request_job
from tinymlaas.services.auth import Permission
from tinymlaas.services.context import Context
from tinymlaas.services.datasets import DatasetService
from tinymlaas.services.imports import MODEL_SUFFIXES
from tinymlaas.services.model_pages import model_lines, show_model_page
from tinymlaas.services.models import import_uploaded_model, show_model, show_variant
from tinymlaas.services.splitting import list_splits
from tinymlaas.web.deps import ContextDep, ExecutorDep, Viewer, needs, render
from tinymlaas.web.model_summaries import (
    Usable,
    board_figure,
    confusion_table,
    line_row,
    metric_figures,
    model_section,
    size_figure,
)
from tinymlaas.web.sessions import DashboardSession
from tinymlaas.web.split_summaries import split_section
from tinymlaas.web.training_summaries import curve_figures

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

Writer = Annotated[DashboardSession, Depends(needs(Permission.MODELS_WRITE))]


def _usable(context: Context) -> Usable:
    return {b.id: (b.usable_flash_bytes, b.usable_ram_bytes) for b in context.catalog.boards.values()}


def _models_page(
    request: Request, context: Context, session: DashboardSession, status: int = 200, **values: Any
) -> HTMLResponse:
    lines = [line_row(line) for line in model_lines(context)]
    datasets = [d.name for d in DatasetService(context).list()]
    return render(request, "models.html", session, status, lines=lines, datasets=datasets, **values)


def _model_page(
    request: Request,
    context: Context,
    session: DashboardSession,
    ref: str,
    status: int = 200,
    split: str | None = None,
    **values: Any,
) -> HTMLResponse:
    page = show_model_page(context, ref)
    model, usable = page.model, _usable(context)
    return render(
        request,
        "models_model.html",
        session,
        status,
        page=page,
        s=model_section(model, usable),
        boards=sorted(context.catalog.boards.values(), key=lambda b: b.id),
        charts={
            "size": size_figure([model]),
            "metrics": metric_figures([model]),
            "boards": board_figure(model),
            "curves": curve_figures(page.history),
        },
        confusion=confusion_table(page.confusion) if page.confusion else None,
        has_variants=bool(model.variants),
        split=split_section(list_splits(context, model.id), split),
        **values,
    )


@router.get("/models", response_class=HTMLResponse)
def models_page(request: Request, context: ContextDep, session: Viewer) -> HTMLResponse:
    return _models_page(request, context, session)


@router.get("/models/{ref}", response_class=HTMLResponse)
def model_page(
    request: Request,
    context: ContextDep,
    session: Viewer,
    ref: str,
    split: Annotated[str, Query(max_length=32)] = "",
) -> HTMLResponse:
    """The model version's page; ``split`` picks which of its split plans to show (the newest by default)."""
    return _model_page(request, context, session, ref, split=split or None)


@router.post("/models/imports", response_model=None)
async def import_model_form(
    request: Request,
    context: ContextDep,
    session: Writer,
    file: Annotated[UploadFile, File()],
    dataset: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
) -> Response:
    """Bring a .tflite or .keras in and go to its page; a refused file is explained on the Models page."""
    settings = context.settings
    try:
        async with receive(
            file,
            limit=settings.max_upload_bytes,
            work_dir=settings.uploads_dir,
            suffixes=MODEL_SUFFIXES,
        ) as path:
            model = await run_in_threadpool(
                import_uploaded_model, context, path, name=name or None, dataset=dataset or None
            )
    except TinymlaasError as exc:
        return await run_in_threadpool(
            _models_page, request, context, session, exc.http_status, error=exc.detail
        )
    return RedirectResponse(f"/models/{model['id']}", status_code=303)


@router.post("/models/{ref}/squeeze", response_model=None)
def squeeze_model_form(
    request: Request, context: ContextDep, executor: ExecutorDep, session: Writer, ref: str
) -> Response:
    """Queue a squeeze job (all three quantizations) and follow it on its job page."""
    try:
        model = show_model(context, ref)
        job = request_job(context, JobKind.SQUEEZE, {"model": model.id}, executor=executor)
    except TinymlaasError as exc:
        return _model_page(request, context, session, ref, exc.http_status, error=exc.detail)
    return RedirectResponse(f"/training/jobs/{job['id']}", status_code=303)


@router.post("/models/variants/{variant_id}/compile", response_model=None)
def compile_variant_form(
    request: Request,
    context: ContextDep,
    executor: ExecutorDep,
    session: Writer,
    variant_id: str,
    board: Annotated[str, Form()] = "",
    runtime: Annotated[str, Form()] = "",
) -> Response:
    """Queue a compile job for one board and follow it on its job page."""
    model_id = show_variant(context, variant_id)["model"]
    params = {"variant": variant_id, "board": board, "runtime": runtime or None}
    try:
        job = request_job(context, JobKind.COMPILE, params, executor=executor)
    except TinymlaasError as exc:
        return _model_page(request, context, session, model_id, exc.http_status, error=exc.detail)
    return RedirectResponse(f"/training/jobs/{job['id']}", status_code=303)

"""Pipeline (the CTO's page): the lifecycle's steps as stored, and the automated dry run.

The dry run generates a fresh sandbox dataset and submits a ``lifecycle`` job on it (snapshot, train,
squeeze, compile and fit for each chosen board) through the same job service the REST API and CLI
use; the page then follows that job step by step. What a dry run makes stays in its sandbox, listed
under Dry runs with its results until someone deletes it, never among the production steps.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tinymlaas.data.generators import GENERATORS
from tinymlaas.errors import InvalidInput, TinymlaasError
from tinymlaas.jobs.pipeline import delete_dry_run, find_dry_run, stored_pipeline
from tinymlaas.jobs.service import submit_job
from tinymlaas.jobs.states import JobKind
from tinymlaas.services.auth import Permission
from tinymlaas.services.context import Context
from tinymlaas.services.datasets import DatasetService
from tinymlaas.web.deps import ContextDep, ExecutorDep, Viewer, needs, render
from tinymlaas.web.sessions import DashboardSession

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

Scientist = Annotated[DashboardSession, Depends(needs(Permission.TRAINING_WRITE))]

_DEFAULT_FORM = {"generator": "gestures", "samples": "", "epochs": "10"}


def _page(
    request: Request,
    context: Context,
    session: DashboardSession,
    job_id: str | None,
    *,
    form: dict[str, Any],
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    pipeline = stored_pipeline(context)
    try:
        pipeline.dry_run = find_dry_run(context, job_id)
    except TinymlaasError as exc:
        error, status = exc.detail, exc.http_status
    return render(
        request,
        "pipeline.html",
        session,
        status,
        pipeline=pipeline,
        generators=sorted(GENERATORS),
        boards=sorted(context.catalog.boards),
        form=form,
        error=error,
    )


@router.get("/pipeline", response_class=HTMLResponse)
def pipeline_page(
    request: Request, context: ContextDep, session: Viewer, job: Annotated[str, Query()] = ""
) -> HTMLResponse:
    """The lifecycle from data to devices, and the latest dry run (or the one ``job`` names)."""
    form = {**_DEFAULT_FORM, "boards": sorted(context.catalog.boards)}
    return _page(request, context, session, job or None, form=form)


def _whole(text: str, name: str, *, most: int) -> int | None:
    """An optional whole number from a form field; InvalidInput naming the field when it is not one."""
    if not text.strip():
        return None
    if not text.strip().isdigit() or not 1 <= int(text) <= most:
        raise InvalidInput(f"{name} must be a whole number from 1 to {most:,}, not {text!r}")
    return int(text)


@router.post("/pipeline/dry-run", response_model=None)
def start_dry_run(
    request: Request,
    context: ContextDep,
    session: Scientist,
    executor: ExecutorDep,
    generator: Annotated[str, Form()] = "",
    samples: Annotated[str, Form()] = "",
    epochs: Annotated[str, Form()] = "",
    boards: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """Generate a dataset and queue the lifecycle job on it; nothing is stored when the form is wrong."""
    chosen = boards or []
    form = {"generator": generator, "samples": samples, "epochs": epochs, "boards": chosen}
    try:
        if generator not in GENERATORS:
            raise InvalidInput(f"choose a generator: {', '.join(sorted(GENERATORS))}")
        unknown = [b for b in chosen if b not in context.catalog.boards]
        if not chosen or unknown:
            raise InvalidInput(
                f"no board {', '.join(unknown)}" if unknown else "choose at least one board to compile for"
            )
        count = _whole(samples, "samples", most=100_000)
        epoch_limit = _whole(epochs, "epochs", most=1000)
        name = f"dry-run-{generator}-{datetime.now(UTC):%Y%m%d-%H%M%S}"
        DatasetService(context).generate(
            name, generator, samples=count, seed=context.settings.seed, sandbox=True
        )
        params = {"dataset": name, "boards": chosen, "epochs": epoch_limit}
        job = submit_job(context, JobKind.LIFECYCLE, params, executor=executor)
    except TinymlaasError as exc:
        return _page(request, context, session, None, form=form, error=exc.detail, status=exc.http_status)
    return RedirectResponse(f"/pipeline?job={job['id']}", status_code=303)


@router.post("/pipeline/dry-runs/{job_id}/delete", response_model=None)
def delete_dry_run_page(request: Request, context: ContextDep, session: Scientist, job_id: str) -> Response:
    """Remove a dry run and all it made; the page says why when it cannot (still running, not a dry run)."""
    try:
        delete_dry_run(context, job_id)
    except TinymlaasError as exc:
        form = {**_DEFAULT_FORM, "boards": sorted(context.catalog.boards)}
        return _page(request, context, session, None, form=form, error=exc.detail, status=exc.http_status)
    return RedirectResponse("/pipeline", status_code=303)

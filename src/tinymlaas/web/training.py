"""Training (the data scientist's page): start a run, follow jobs and their curves live, read a run's
curves and errors, and compare several runs side by side."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tinymlaas.errors import InvalidInput, NotFound, TinymlaasError
from tinymlaas.jobs import JobKind
from tinymlaas.jobs.requests import JOB_PERMISSIONS, request_job
from tinymlaas.jobs.service import cancel_job, list_jobs, show_job
from tinymlaas.services.auth import Permission
from tinymlaas.services.context import Context
from tinymlaas.services.datasets import DatasetService
from tinymlaas.services.model_pages import ConfusionMatrix
from tinymlaas.services.runs import architectures, list_runs, show_run
from tinymlaas.web.deps import ContextDep, ExecutorDep, Viewer, can, needs, render
from tinymlaas.web.model_summaries import confusion_table
from tinymlaas.web.sessions import DashboardSession
from tinymlaas.web.training_summaries import (
    JOB_STYLE,
    comparison,
    curve_figures,
    fmt_metric,
    job_outcome,
    recipe_rows,
    score_warning,
)

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

Trainer = Annotated[DashboardSession, Depends(needs(Permission.TRAINING_WRITE))]
_JOBS_SHOWN = 50


def _overview(context: Context) -> dict[str, Any]:
    jobs = list_jobs(context, limit=_JOBS_SHOWN)
    return {
        "datasets": DatasetService(context).list(),
        "architectures": architectures(),
        "jobs": jobs,
        "active": any(j["active"] for j in jobs),
        "job_style": JOB_STYLE,
        "runs": list_runs(context),
        "fmt_metric": fmt_metric,
        "score_warning": score_warning,
    }


def _training_page(
    request: Request, context: Context, session: DashboardSession, status: int = 200, **values: Any
) -> HTMLResponse:
    form = {"dataset": "", "arch": "", "epochs": "", "seed": "", **values.pop("form", {})}
    return render(request, "training.html", session, status, form=form, **_overview(context), **values)


@router.get("/training", response_class=HTMLResponse)
def training_page(request: Request, context: ContextDep, session: Viewer) -> HTMLResponse:
    return _training_page(request, context, session)


def _whole_number(text: str, field: str) -> int | None:
    if not text.strip():
        return None
    try:
        return int(text)
    except ValueError:
        raise InvalidInput(f"{field}: {text!r} is not a whole number") from None


@router.post("/training", response_model=None)
def start_training(
    request: Request,
    context: ContextDep,
    executor: ExecutorDep,
    session: Trainer,
    dataset: Annotated[str, Form()] = "",
    arch: Annotated[str, Form()] = "",
    epochs: Annotated[str, Form()] = "",
    seed: Annotated[str, Form()] = "",
) -> Response:
    """Queue a train job and go to its page; on a bad field the form comes back with why."""
    form = {"dataset": dataset, "arch": arch, "epochs": epochs, "seed": seed}
    try:
        if not dataset:
            raise InvalidInput("dataset: choose a dataset to train on")
        params = {
            "dataset": dataset,
            "arch": arch or None,
            "epochs": _whole_number(epochs, "epochs"),
            "seed": _whole_number(seed, "seed"),
        }
        job = request_job(context, JobKind.TRAIN, params, executor=executor)
    except TinymlaasError as exc:
        return _training_page(request, context, session, 422, form=form, error=exc.detail)
    return RedirectResponse(f"/training/jobs/{job['id']}", status_code=303)


def _not_found(request: Request, session: DashboardSession, exc: NotFound) -> HTMLResponse:
    return render(request, "error.html", session, 404, title="Not found", detail=exc.detail)


def _job_page(
    request: Request,
    session: DashboardSession,
    job: dict[str, Any],
    status: int = 200,
    error: str | None = None,
) -> HTMLResponse:
    return render(
        request,
        "training_job.html",
        session,
        status,
        job=job,
        active=job["active"],
        job_style=JOB_STYLE,
        outcome=job_outcome(job),
        curves=curve_figures(job["history"]),
        may_cancel=can(session, JOB_PERMISSIONS[JobKind(job["kind"])]),
        error=error,
    )


@router.get("/training/jobs/{job_id}", response_class=HTMLResponse)
def job_page(request: Request, context: ContextDep, session: Viewer, job_id: str) -> HTMLResponse:
    try:
        job = show_job(context, job_id)
    except NotFound as exc:
        return _not_found(request, session, exc)
    return _job_page(request, session, job)


@router.post("/training/jobs/{job_id}/cancel", response_model=None)
def cancel_job_form(
    request: Request, context: ContextDep, executor: ExecutorDep, session: Viewer, job_id: str
) -> Response:
    """Cancel and go back to the job's page; a job that already ended says so there."""
    try:
        job = show_job(context, job_id)
    except NotFound as exc:
        return _not_found(request, session, exc)
    needs(JOB_PERMISSIONS[JobKind(job["kind"])])(session)
    try:
        cancel_job(context, job_id, executor=executor)
    except TinymlaasError as exc:
        return _job_page(request, session, show_job(context, job_id), exc.http_status, exc.detail)
    return RedirectResponse(f"/training/jobs/{job_id}", status_code=303)


@router.get("/training/runs/{run_id}", response_class=HTMLResponse)
def run_page(request: Request, context: ContextDep, session: Viewer, run_id: str) -> HTMLResponse:
    try:
        run = show_run(context, run_id)
    except NotFound as exc:
        return _not_found(request, session, exc)
    matrix = run["confusion_matrix"]
    return render(
        request,
        "training_run.html",
        session,
        run=run,
        metric=fmt_metric(run["metric"]),
        warning=score_warning(run["metric"]),
        recipe=recipe_rows(run["recipe"]),
        curves=curve_figures(run["history"]),
        confusion=confusion_table(ConfusionMatrix(**matrix)) if matrix else None,
    )


# Each compared run is read and drawn: bound what one request may ask for.
MAX_COMPARED = 12


@router.get("/training/compare", response_class=HTMLResponse)
def compare_page(
    request: Request,
    context: ContextDep,
    session: Viewer,
    run: Annotated[list[str] | None, Query()] = None,
) -> HTMLResponse:
    """The runs ticked on the Training page, their curves overlaid and their recipes in one table."""
    chosen = list(dict.fromkeys(run or []))
    if len(chosen) > MAX_COMPARED:
        return render(
            request,
            "error.html",
            session,
            422,
            title="Too many runs",
            detail=f"compare at most {MAX_COMPARED} runs at once; {len(chosen)} were ticked",
        )
    if not chosen:
        return render(
            request,
            "error.html",
            session,
            422,
            title="No run chosen",
            detail="tick two or more runs to compare",
        )
    try:
        runs = [show_run(context, run_id) for run_id in chosen]
    except NotFound as exc:
        return _not_found(request, session, exc)
    return render(request, "training_compare.html", session, runs=runs, compared=comparison(runs))

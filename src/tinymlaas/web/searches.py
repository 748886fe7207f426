"""Search (the data scientist's page for constraint-aware model searches): start a search, follow the
running ones trial by trial, list past ones, and read one search's fronts per board.

A search runs as a job, submitted through the same request path as the REST API's ``POST /searches``
(the search service's check first, then the job request), so the page needs what a search job needs
(``training:write``) to start one and ``models:read`` to read them. While a search job runs, the
list's live part re-fetches itself, as the training page does, so trials done of those planned move
without a reload; a search's own page does the same until it has ended.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tinymlaas.errors import InvalidInput, TinymlaasError
from tinymlaas.jobs import JobKind
from tinymlaas.jobs.requests import JOB_PERMISSIONS, request_job
from tinymlaas.jobs.service import list_jobs
from tinymlaas.services.auth import Permission
from tinymlaas.services.context import Context
from tinymlaas.services.datasets import DatasetService
from tinymlaas.services.runs import architectures
from tinymlaas.services.search import check_search, list_searches, show_search
from tinymlaas.training.search_space import MAX_EPOCHS, MAX_TRIALS, MAX_WORKERS, parse_bytes
from tinymlaas.web.deps import ContextDep, ExecutorDep, needs, render
from tinymlaas.web.search_summaries import (
    board_sections,
    budget_text,
    closest_trial,
    progress,
    search_row,
    trial_problems,
)
from tinymlaas.web.sessions import DashboardSession

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

Reader = Annotated[DashboardSession, Depends(needs(Permission.MODELS_READ))]
Searcher = Annotated[DashboardSession, Depends(needs(JOB_PERMISSIONS[JobKind.SEARCH]))]

_SHOWN = 100  # searches listed on the page, newest first
_JOBS_READ = 50  # newest search jobs read to find the running ones
_FORM = {
    "dataset": "",
    "boards": [],
    "max_ram": "",
    "max_flash": "",
    "max_latency_ms": "",
    "trials": "24",
    "workers": "",
    "epochs": "",
    "arch": "",
}


def _running(context: Context) -> list[dict[str, Any]]:
    return [progress(j) for j in list_jobs(context, kind=JobKind.SEARCH, limit=_JOBS_READ) if j["active"]]


def _list_page(
    request: Request,
    context: Context,
    session: DashboardSession,
    dataset: str | None = None,
    status: int = 200,
    **values: Any,
) -> HTMLResponse:
    running = _running(context)
    return render(
        request,
        "searches.html",
        session,
        status,
        searches=[search_row(s) for s in list_searches(context, dataset or None, limit=_SHOWN)],
        running=running,
        active=bool(running),
        dataset=dataset or "",
        datasets=DatasetService(context).list(),
        boards=context.catalog.boards,
        architectures=architectures(),
        limits={"trials": MAX_TRIALS, "workers": MAX_WORKERS, "epochs": MAX_EPOCHS},
        form={**_FORM, **values.pop("form", {})},
        **values,
    )


@router.get("/searches", response_class=HTMLResponse)
def searches_page(
    request: Request,
    context: ContextDep,
    session: Reader,
    dataset: Annotated[str | None, Query(max_length=128)] = None,
) -> HTMLResponse:
    return _list_page(request, context, session, dataset)


def _number(text: str, field: str, kind: type[int] | type[float] = int) -> int | float | None:
    if not text.strip():
        return None
    try:
        return kind(text)
    except ValueError:
        noun = "a whole number" if kind is int else "a number"
        raise InvalidInput(f"{field}: {text!r} is not {noun}") from None


def _size(text: str, field: str) -> int | None:
    return parse_bytes(text, what=field) if text.strip() else None


@router.post("/searches", response_model=None)
def start_search(
    request: Request,
    context: ContextDep,
    executor: ExecutorDep,
    session: Searcher,
    dataset: Annotated[str, Form(max_length=128)] = "",
    boards: Annotated[list[str] | None, Form()] = None,
    max_ram: Annotated[str, Form(max_length=32)] = "",
    max_flash: Annotated[str, Form(max_length=32)] = "",
    max_latency_ms: Annotated[str, Form(max_length=32)] = "",
    trials: Annotated[str, Form(max_length=16)] = "",
    workers: Annotated[str, Form(max_length=16)] = "",
    epochs: Annotated[str, Form(max_length=16)] = "",
    arch: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Queue a search job and come back to the list, where it shows as running; on a bad field the
    form comes back with why."""
    chosen = list(dict.fromkeys(boards or []))
    form = {
        "dataset": dataset,
        "boards": chosen,
        "max_ram": max_ram,
        "max_flash": max_flash,
        "max_latency_ms": max_latency_ms,
        "trials": trials,
        "workers": workers,
        "epochs": epochs,
        "arch": arch,
    }
    try:
        if not dataset:
            raise InvalidInput("dataset: choose a dataset to search models for")
        if not chosen:
            raise InvalidInput("boards: tick at least one board the models must fit")
        params = {
            "dataset": dataset,
            "boards": chosen,
            "max_ram": _size(max_ram, "max_ram"),
            "max_flash": _size(max_flash, "max_flash"),
            "max_latency_ms": _number(max_latency_ms, "max_latency_ms", float),
            "trials": _number(trials, "trials"),
            "workers": _number(workers, "workers"),
            "epochs": _number(epochs, "epochs"),
            "arch": arch or None,
        }
        check_search(context, dataset, chosen, arch or None)
        request_job(context, JobKind.SEARCH, params, executor=executor)
    except TinymlaasError as exc:
        return _list_page(request, context, session, status=422, form=form, error=exc.detail)
    return RedirectResponse("/searches#running", status_code=303)


@router.get("/searches/{search_id}", response_class=HTMLResponse)
def search_page(request: Request, context: ContextDep, session: Reader, search_id: str) -> HTMLResponse:
    search = show_search(context, search_id)
    running = search["state"] == "running"
    jobs = [
        j
        for j in _running(context)
        if running and j["dataset"] == search["dataset"] and j["boards"] == ", ".join(search["boards"])
    ]
    summary = search["summary"]
    return render(
        request,
        "searches_search.html",
        session,
        s=search,
        active=running,
        jobs=jobs,
        budget=budget_text(search["budget"]),
        sections=board_sections(search, dict(context.catalog.boards)),
        problems=trial_problems(search),
        counts=summary.get("counts", {}),
        closest=[closest_trial(search, n) for n in summary.get("closest", [])],
    )

"""Datasets (the data scientist's pages): the list with sample and label counts, a form to create a
dataset from a built-in generator and one to import a file; each dataset opens in the sample browser.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tinymlaas.data.generators import GENERATORS
from tinymlaas.data.types import Task
from tinymlaas.errors import InvalidInput, TinymlaasError
from tinymlaas.services.context import Context
from tinymlaas.services.datasets import IMPORT_SUFFIXES, DatasetService
from tinymlaas.web import dataset_browser
from tinymlaas.web.dataset_browser import Reader, Writer, received, refused
from tinymlaas.web.dataset_views import dataset_row
from tinymlaas.web.deps import ContextDep, render
from tinymlaas.web.login import safe_next
from tinymlaas.web.sessions import DashboardSession

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


def _whole(text: str | None, what: str) -> int | None:
    if not text:
        return None
    if not text.strip().lstrip("-").isdigit():
        raise InvalidInput(f"{what} {text!r} must be a whole number")
    return int(text)


def _list_page(
    request: Request,
    context: Context,
    session: DashboardSession,
    *,
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    rows = [dataset_row(s) for s in DatasetService(context).list()]
    return render(
        request, "datasets.html", session, status, datasets=rows, generators=sorted(GENERATORS), error=error
    )


@router.get("/datasets", response_class=HTMLResponse)
def datasets_page(request: Request, context: ContextDep, session: Reader) -> HTMLResponse:
    return _list_page(request, context, session)


@router.post("/datasets", response_model=None)
def create_dataset_submit(
    request: Request,
    context: ContextDep,
    session: Writer,
    name: Annotated[str, Form()] = "",
    generator: Annotated[str, Form()] = "",
    samples: Annotated[str | None, Form()] = None,
    seed: Annotated[str | None, Form()] = None,
) -> Response:
    """Create a dataset from a built-in generator, then show it."""
    name = name.strip()
    try:
        chosen_seed = _whole(seed, "seed")
        DatasetService(context).generate(
            name,
            generator,
            samples=_whole(samples, "samples"),
            seed=context.settings.seed if chosen_seed is None else chosen_seed,
        )
    except TinymlaasError as exc:
        return _list_page(request, context, session, error=exc.detail, status=exc.http_status)
    return RedirectResponse(f"/datasets/{name}", status_code=303)


@router.post("/datasets/import", response_model=None)
async def import_dataset_submit(
    request: Request,
    context: ContextDep,
    session: Writer,
    file: Annotated[UploadFile | None, File()] = None,
    name: Annotated[str, Form()] = "",
    create: Annotated[str | None, Form()] = None,
    task: Annotated[str | None, Form()] = None,
    label_column: Annotated[str | None, Form()] = None,
    back: Annotated[str, Form()] = "/datasets",
) -> Response:
    """Import a zip of class folders, a CSV or an .npz into a new dataset (``create``) or an existing one."""
    name = name.strip()
    try:
        if task and task not in {t.value for t in Task}:
            raise InvalidInput(f"task {task!r} is not one of {', '.join(t.value for t in Task)}")
        async with received(context, file, IMPORT_SUFFIXES) as path:
            await run_in_threadpool(
                DatasetService(context).import_file,
                name,
                path,
                create=bool(create),
                task=Task(task) if task else None,
                label_column=label_column or "label",
            )
    except TinymlaasError as exc:
        if not create and safe_next(back).startswith(f"/datasets/{name}"):
            return refused(request, context, session, name, back, exc)
        return _list_page(request, context, session, error=exc.detail, status=exc.http_status)
    return RedirectResponse(f"/datasets/{name}", status_code=303)


# The browser of one dataset lives in its own module; mounting it here keeps the pages one router.
router.include_router(dataset_browser.router)

"""The sample browser: one dataset's samples as a grid of thumbnails or small charts, filtered and paged,
labelled one at a time or many at once, with its snapshots and a form to upload one more sample. Above
the grid, the data explorer shows a few samples of each class and a 2-D projection of the samples, so
outliers and likely mislabels stand out before anyone trains on them.

Forms post with the session cookie and answer with a redirect back to the view they were sent from,
its query string saying what was done so that view confirms it in a flash message (a reload or the
next link drops it); a refusal renders that view again with the reason and the error's status code.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated
from urllib.parse import parse_qsl, urlencode, urlsplit

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tinymlaas.errors import InvalidInput, NotFound, TinymlaasError
from tinymlaas.httpio.uploads import receive
from tinymlaas.services.auth import Permission
from tinymlaas.services.context import Context
from tinymlaas.services.datasets import DatasetService, FieldLabels
from tinymlaas.services.explorer import explore_dataset
from tinymlaas.services.samples import (
    UPLOAD_SUFFIXES,
    Origin,
    list_samples,
    preview_samples,
    set_label,
    set_labels,
    upload_sample,
)
from tinymlaas.web.dataset_views import (
    PAGE_SIZE,
    BrowserView,
    browser_view,
    dataset_row,
    done_notice,
    explorer_view,
    pager,
    sample_cards,
)
from tinymlaas.web.deps import ContextDep, needs, render
from tinymlaas.web.login import safe_next
from tinymlaas.web.sessions import DashboardSession

__all__ = ["Reader", "Writer", "received", "refused", "router"]

router = APIRouter(include_in_schema=False)

Reader = Annotated[DashboardSession, Depends(needs(Permission.DATASETS_READ))]
Writer = Annotated[DashboardSession, Depends(needs(Permission.DATASETS_WRITE))]


@asynccontextmanager
async def received(
    context: Context, upload: UploadFile | None, suffixes: tuple[str, ...]
) -> AsyncIterator[Path]:
    """The uploaded file, size-limited and safely named, as the REST API receives uploads."""
    if upload is None:
        raise InvalidInput("choose a file to upload")
    work_dir = context.settings.uploads_dir
    async with receive(
        upload, limit=context.settings.max_upload_bytes, work_dir=work_dir, suffixes=suffixes
    ) as path:
        yield path


def _browser(
    request: Request,
    context: Context,
    session: DashboardSession,
    name: str,
    view: BrowserView,
    *,
    error: str | None = None,
    notice: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    service = DatasetService(context)
    summary = service.show(name)
    filters = {"label": view.label, "unlabelled": view.unlabelled, "origin": view.origin}
    try:
        found = list_samples(context, name, **filters, limit=PAGE_SIZE, offset=view.offset)
    except InvalidInput as exc:
        error, status, view = exc.detail, 422, BrowserView()
        found = list_samples(context, name, limit=PAGE_SIZE)
    previews = preview_samples(context, name, [s["id"] for s in found.samples])
    exploration = explore_dataset(context, name)
    gallery = [sample_id for c in exploration.classes for sample_id in c.sample_ids]
    return render(
        request,
        "datasets_browse.html",
        session,
        status,
        dataset=dataset_row(summary),
        cards=sample_cards(found.samples, previews),
        view=view,
        pager=pager(found.count, view),
        explorer=explorer_view(exploration, preview_samples(context, name, gallery)),
        snapshots=service.snapshot_list(name),
        origins=[o.value for o in Origin],
        back=f"/datasets/{name}?{view.query()}",
        error=error,
        notice=notice,
    )


def _back(name: str, back: str, **done: str) -> str:
    """The view the form came from, with what was done (``done_notice`` words it) in its query."""
    target = safe_next(back)
    target = target if target.startswith(f"/datasets/{name}") else f"/datasets/{name}"
    if not done:
        return target
    return f"{target}{'&' if '?' in target else '?'}{urlencode(done)}"


def refused(
    request: Request, context: Context, session: DashboardSession, name: str, back: str, exc: TinymlaasError
) -> HTMLResponse:
    """The view ``back`` names again, saying why the form it sent was refused."""
    try:
        view = browser_view(dict(parse_qsl(urlsplit(back).query)))
    except InvalidInput:
        view = BrowserView()
    return _browser(request, context, session, name, view, error=exc.detail, status=exc.http_status)


@router.get("/datasets/{name}", response_class=HTMLResponse)
def dataset_page(request: Request, context: ContextDep, session: Reader, name: str) -> HTMLResponse:
    try:
        view = browser_view(request.query_params)
    except InvalidInput as exc:
        return _browser(request, context, session, name, BrowserView(), error=exc.detail, status=422)
    return _browser(request, context, session, name, view, notice=done_notice(request.query_params))


@router.get("/datasets/{name}/samples/{sample_id}/thumbnail.png")
def sample_thumbnail(context: ContextDep, _session: Reader, name: str, sample_id: str) -> Response:
    """The sample as a PNG for the browser's grid; 404 (plain text) when it is not an image."""
    try:
        shown = preview_samples(context, name, [sample_id])[sample_id]
    except NotFound as exc:
        return Response(exc.detail, status_code=404, media_type="text/plain")
    if shown.png is None:
        return Response(f"sample {sample_id} is not an image", status_code=404, media_type="text/plain")
    return Response(shown.png, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})


@router.post("/datasets/{name}/samples/{sample_id}/label", response_model=None)
def label_sample_submit(
    request: Request,
    context: ContextDep,
    session: Writer,
    name: str,
    sample_id: str,
    label: Annotated[str | None, Form()] = None,
    clear: Annotated[str | None, Form()] = None,
    back: Annotated[str, Form()] = "",
) -> Response:
    try:
        if not clear and not label:
            raise InvalidInput("choose a label for the sample, or clear its label")
        saved = set_label(context, name, sample_id, None if clear else label)
    except TinymlaasError as exc:
        return refused(request, context, session, name, back, exc)
    done = _back(name, back, done="label", sample=sample_id, to=saved.get("label") or "")
    return RedirectResponse(done, status_code=303)


@router.post("/datasets/{name}/labels", response_model=None)
def label_samples_submit(
    request: Request,
    context: ContextDep,
    session: Writer,
    name: str,
    samples: Annotated[list[str] | None, Form()] = None,
    label: Annotated[str | None, Form()] = None,
    clear: Annotated[str | None, Form()] = None,
    back: Annotated[str, Form()] = "",
) -> Response:
    try:
        if not samples:
            raise InvalidInput("tick the samples to label first")
        if not clear and not label:
            raise InvalidInput("choose the label to give the ticked samples, or clear theirs")
        saved = set_labels(context, name, samples, None if clear else label)
    except TinymlaasError as exc:
        return refused(request, context, session, name, back, exc)
    done = _back(name, back, done="labels", n=str(saved["updated"]), to=saved["label"] or "")
    return RedirectResponse(done, status_code=303)


@router.post("/datasets/{name}/snapshots", response_model=None)
def snapshot_submit(
    request: Request, context: ContextDep, session: Writer, name: str, back: Annotated[str, Form()] = ""
) -> Response:
    try:
        snapshot, created = DatasetService(context).take_snapshot(name)
    except TinymlaasError as exc:
        return refused(request, context, session, name, back, exc)
    if created:
        done = _back(name, back, done="snapshot", snapshot=snapshot.id[:12], n=str(snapshot.samples))
        return RedirectResponse(done, status_code=303)
    notice = f"Nothing changed since snapshot {snapshot.id[:12]}; no new snapshot was taken."
    return _browser(request, context, session, name, BrowserView(), notice=notice)


@router.post("/datasets/{name}/field-labels", response_model=None)
def field_labels_submit(
    request: Request,
    context: ContextDep,
    session: Writer,
    name: str,
    field_labels: Annotated[str, Form()] = "",
    back: Annotated[str, Form()] = "",
) -> Response:
    try:
        if field_labels not in {policy.value for policy in FieldLabels}:
            choices = ", ".join(policy.value for policy in FieldLabels)
            raise InvalidInput(f"labels from devices {field_labels!r}: choose one of {choices}")
        DatasetService(context).set_field_labels(name, FieldLabels(field_labels))
    except TinymlaasError as exc:
        return refused(request, context, session, name, back, exc)
    return RedirectResponse(_back(name, back), status_code=303)


@router.post("/datasets/{name}/samples", response_model=None)
async def upload_sample_submit(
    request: Request,
    context: ContextDep,
    session: Writer,
    name: str,
    file: Annotated[UploadFile | None, File()] = None,
    label: Annotated[str | None, Form()] = None,
    back: Annotated[str, Form()] = "",
) -> Response:
    try:
        async with received(context, file, UPLOAD_SUFFIXES) as path:
            sample = await run_in_threadpool(upload_sample, context, name, path, label=label or None)
    except TinymlaasError as exc:
        return refused(request, context, session, name, back, exc)
    done = _back(name, back, done="upload", sample=sample["id"], to=sample.get("label") or "")
    return RedirectResponse(done, status_code=303)

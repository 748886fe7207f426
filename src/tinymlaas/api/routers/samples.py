"""A dataset's samples: browse and preview (``datasets:read``), upload and label (``datasets:write``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Query, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from tinymlaas.api.deps import ContextDep, Page
from tinymlaas.api.routers.datasets import TOO_LARGE, Reader, Writer
from tinymlaas.api.schemas.datasets import (
    LabelsPublic,
    LabelsUpdate,
    SampleLabelUpdate,
    SamplePreviewPublic,
    SamplePublic,
    SamplesPublic,
)
from tinymlaas.httpio.uploads import receive
from tinymlaas.services import samples as service

router = APIRouter(prefix="/datasets/{name}", tags=["samples"])

_PREVIEW_CONTENT: dict[int | str, dict[str, Any]] = {
    200: {
        "model": SamplePreviewPublic,
        "description": "An image sample as a PNG thumbnail; any other sample as JSON values.",
        "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}},
    }
}


@router.get("/samples", response_model=SamplesPublic)
def list_samples(
    context: ContextDep,
    _token: Reader,
    name: str,
    paging: Annotated[Page, Depends()],
    label: Annotated[str | None, Query(description="Only samples with this label.")] = None,
    unlabelled: Annotated[bool, Query(description="Only samples without a label (or target).")] = False,
    origin: Annotated[service.Origin | None, Query(description="Only samples from this origin.")] = None,
) -> SamplesPublic:
    """The dataset's samples, oldest first; ``count`` is how many the filters select before paging."""
    found = service.list_samples(
        context,
        name,
        label=label,
        unlabelled=unlabelled,
        origin=origin,
        limit=paging.limit,
        offset=paging.offset,
    )
    return SamplesPublic(data=[SamplePublic(**s) for s in found.samples], count=found.count)


@router.get("/samples/{sample_id}", response_model=SamplePublic)
def show_sample(context: ContextDep, _token: Reader, name: str, sample_id: str) -> SamplePublic:
    """One sample: its label or target, where it came from, and the hash of its stored array."""
    return SamplePublic(**service.show_sample(context, name, sample_id))


@router.get("/samples/{sample_id}/preview", response_model=None, responses=_PREVIEW_CONTENT)
def show_sample_preview(
    context: ContextDep,
    _token: Reader,
    name: str,
    sample_id: str,
    size: Annotated[
        int,
        Query(
            ge=service.MIN_THUMBNAIL,
            le=service.MAX_THUMBNAIL,
            description="Images: pixels on the thumbnail's longer side.",
        ),
    ] = 96,
) -> Response | SamplePreviewPublic:
    """What the sample looks like: image samples as ``image/png``, time-series windows as one list of
    values per channel (for a line chart), anything else as its values in ``application/json``.
    """
    found = service.preview_samples(context, name, [sample_id], size=size)[sample_id]
    if found.png is not None:
        return Response(found.png, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})
    return SamplePreviewPublic(
        kind=str(found.kind), shape=list(found.shape), channels=found.channels, values=found.values
    )


@router.post("/samples", response_model=SamplePublic, status_code=201, responses=TOO_LARGE)
async def upload_sample(
    context: ContextDep,
    _token: Writer,
    name: str,
    file: Annotated[UploadFile, File(description="An image, a WAV clip, a CSV window or a .npy array.")],
    label: Annotated[
        str | None, Form(max_length=service.MAX_LABEL, description="One of the dataset's classes.")
    ] = None,
) -> SamplePublic:
    """Add one sample, labelled or not; it must match the dataset's kind and input shape.

    409 when the dataset already holds exactly this sample.
    """
    async with receive(
        file,
        limit=context.settings.max_upload_bytes,
        work_dir=context.settings.uploads_dir,
        suffixes=service.UPLOAD_SUFFIXES,
    ) as path:
        view = await run_in_threadpool(service.upload_sample, context, name, path, label=label)
    return SamplePublic(**view)


@router.put("/samples/{sample_id}/label", response_model=SamplePublic)
def set_sample_label(
    context: ContextDep, _token: Writer, name: str, sample_id: str, body: SampleLabelUpdate
) -> SamplePublic:
    """Label one sample, or clear its label with ``null``; 422 names the allowed labels."""
    return SamplePublic(**service.set_label(context, name, sample_id, body.label))


@router.post("/labels", response_model=LabelsPublic)
def label_samples(context: ContextDep, _token: Writer, name: str, body: LabelsUpdate) -> LabelsPublic:
    """Give many samples one label (or clear theirs with ``null``).

    All or nothing: an unknown sample id is a 404 and no sample changes.
    """
    return LabelsPublic(**service.set_labels(context, name, body.samples, body.label))

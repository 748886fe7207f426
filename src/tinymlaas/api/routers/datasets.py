"""Datasets: read with ``datasets:read``; creating, importing and snapshotting need ``datasets:write``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Response, UploadFile
from fastapi.concurrency import run_in_threadpool

from tinymlaas.api.deps import ContextDep, Page, require
from tinymlaas.api.schemas import DatasetCreate, DatasetPublic, DatasetsPublic, DatasetUpdate, Problem
from tinymlaas.api.schemas.datasets import DatasetImportPublic, SnapshotPublic, SnapshotsPublic
from tinymlaas.data.types import Task
from tinymlaas.httpio.uploads import receive
from tinymlaas.services.auth import Permission
from tinymlaas.services.datasets import (
    IMPORT_SUFFIXES,
    DatasetService,
    DatasetSummary,
    SnapshotSummary,
    spec_to_dict,
)

router = APIRouter(prefix="/datasets", tags=["datasets"])

Reader = Annotated[dict[str, Any], Depends(require(Permission.DATASETS_READ))]
Writer = Annotated[dict[str, Any], Depends(require(Permission.DATASETS_WRITE))]

TOO_LARGE: dict[int | str, dict[str, Any]] = {
    413: {
        "model": Problem,
        "content": {"application/problem+json": {}},
        "description": "The upload is over the server's limit (max_upload_bytes); nothing of it is kept.",
    }
}


def _public(summary: DatasetSummary) -> DatasetPublic:
    return DatasetPublic(
        id=summary.id,
        name=summary.name,
        **spec_to_dict(summary.spec),
        description=summary.description,
        samples=summary.sample_count,
        unlabelled=summary.unlabelled,
        collected=summary.collected,
        field_labels=summary.field_labels,
        input_scaling=summary.input_scaling,
        label_counts=summary.label_counts,
        snapshots=summary.snapshots,
        sandbox=summary.sandbox,
    )


@router.get("", response_model=DatasetsPublic)
def list_datasets(context: ContextDep, _token: Reader, paging: Annotated[Page, Depends()]) -> DatasetsPublic:
    """Every production dataset by name, with its sample and label counts; a dry run's dataset is
    shown by name only (``GET /pipeline`` lists dry runs)."""
    summaries, count = DatasetService(context).list_page(limit=paging.limit, offset=paging.offset)
    return DatasetsPublic(data=[_public(s) for s in summaries], count=count)


@router.get("/{name}", response_model=DatasetPublic)
def show_dataset(context: ContextDep, _token: Reader, name: str) -> DatasetPublic:
    """One dataset with its snapshots."""
    return _public(DatasetService(context).show(name))


@router.post("", response_model=DatasetPublic, status_code=201)
def create_dataset(context: ContextDep, _token: Writer, body: DatasetCreate) -> DatasetPublic:
    """A new dataset filled by a built-in generator; 409 if the name is taken."""
    service = DatasetService(context)
    seed = context.settings.seed if body.seed is None else body.seed
    service.generate(
        body.name, body.generator, samples=body.samples, seed=seed, field_labels=body.field_labels
    )
    return _public(service.show(body.name))


@router.patch("/{name}", response_model=DatasetPublic)
def update_dataset(context: ContextDep, _token: Writer, name: str, body: DatasetUpdate) -> DatasetPublic:
    """Change whether the dataset keeps the labels devices send (samples already stored keep theirs)
    or how models trained from now on scale their inputs; 422 when the body changes nothing."""
    service = DatasetService(context)
    if body.field_labels is not None:
        service.set_field_labels(name, body.field_labels)
    if body.input_scaling is not None:
        service.set_input_scaling(name, body.input_scaling)
    return _public(service.show(name))


@router.post(
    "/{name}/imports",
    response_model=DatasetImportPublic,
    responses={**TOO_LARGE, 201: {"model": DatasetImportPublic, "description": "The dataset was created."}},
)
async def import_dataset(
    context: ContextDep,
    _token: Writer,
    name: str,
    response: Response,
    file: Annotated[
        UploadFile, File(description="A .zip of class folders (class/file.png ...), a .csv table or an .npz.")
    ],
    create: Annotated[bool, Form(description="Create the dataset from the file; 409 if it exists.")] = False,
    task: Annotated[Task | None, Form(description="CSV and .npz: classification or regression.")] = None,
    label_column: Annotated[str, Form(description="CSV: the column holding labels or targets.")] = "label",
) -> DatasetImportPublic:
    """Add the samples in an uploaded file to the dataset, every one checked before any is stored.

    Without ``create`` the dataset must exist (404 otherwise) and the file must match its spec; with
    it the dataset is made with the file's spec (201). Samples the dataset already holds are skipped.
    """
    async with receive(
        file,
        limit=context.settings.max_upload_bytes,
        work_dir=context.settings.uploads_dir,
        suffixes=IMPORT_SUFFIXES,
    ) as path:
        report = await run_in_threadpool(
            DatasetService(context).import_file,
            name,
            path,
            create=create,
            task=task,
            label_column=label_column,
        )
    if create:
        response.status_code = 201
    return DatasetImportPublic(
        dataset=report.dataset,
        added=report.added,
        duplicates=report.duplicates,
        created=create,
        warnings=list(report.warnings),
    )


def _snapshot(summary: SnapshotSummary) -> SnapshotPublic:
    return SnapshotPublic(**summary.__dict__)


@router.get("/{name}/snapshots", response_model=SnapshotsPublic)
def list_snapshots(
    context: ContextDep, _token: Reader, name: str, paging: Annotated[Page, Depends()]
) -> SnapshotsPublic:
    """The dataset's snapshots, oldest first: what each froze, ready to train on."""
    snapshots, count = DatasetService(context).snapshot_page(name, limit=paging.limit, offset=paging.offset)
    return SnapshotsPublic(data=[_snapshot(s) for s in snapshots], count=count)


@router.post(
    "/{name}/snapshots",
    response_model=SnapshotPublic,
    status_code=201,
    responses={200: {"model": SnapshotPublic, "description": "The same content was snapshotted before."}},
)
def create_snapshot(context: ContextDep, _token: Writer, name: str, response: Response) -> SnapshotPublic:
    """Freeze the labelled samples and their labels as an immutable snapshot.

    The id is the content hash, so snapshotting unchanged content answers 200 with the snapshot taken
    before. Unlabelled samples stay out; 422 when no sample is labelled.
    """
    summary, created = DatasetService(context).take_snapshot(name)
    if not created:
        response.status_code = 200
    return _snapshot(summary)

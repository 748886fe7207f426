"""Datasets: read with ``datasets:read``; creating one from a generator needs ``datasets:write``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from tinymlaas.api.deps import ContextDep, Page, page, require
from tinymlaas.api.schemas import DatasetCreate, DatasetPublic, DatasetsPublic
from tinymlaas.services.auth import Permission
from tinymlaas.services.datasets import DatasetService, DatasetSummary, spec_to_dict

router = APIRouter(prefix="/datasets", tags=["datasets"])

Reader = Annotated[dict[str, Any], Depends(require(Permission.DATASETS_READ))]
Writer = Annotated[dict[str, Any], Depends(require(Permission.DATASETS_WRITE))]


def _public(summary: DatasetSummary) -> DatasetPublic:
    return DatasetPublic(
        id=summary.id,
        name=summary.name,
        **spec_to_dict(summary.spec),
        description=summary.description,
        samples=summary.sample_count,
        unlabelled=summary.unlabelled,
        collected=summary.collected,
        label_counts=summary.label_counts,
        snapshots=summary.snapshots,
    )


@router.get("", response_model=DatasetsPublic)
def list_datasets(context: ContextDep, _token: Reader, paging: Annotated[Page, Depends()]) -> DatasetsPublic:
    """Every dataset by name, with its sample and label counts."""
    summaries = DatasetService(context).list()
    return DatasetsPublic(data=[_public(s) for s in page(summaries, paging)], count=len(summaries))


@router.get("/{name}", response_model=DatasetPublic)
def show_dataset(context: ContextDep, _token: Reader, name: str) -> DatasetPublic:
    """One dataset with its snapshots."""
    return _public(DatasetService(context).show(name))


@router.post("", response_model=DatasetPublic, status_code=201)
def create_dataset(context: ContextDep, _token: Writer, body: DatasetCreate) -> DatasetPublic:
    """A new dataset filled by a built-in generator; 409 if the name is taken."""
    service = DatasetService(context)
    seed = context.settings.seed if body.seed is None else body.seed
    service.generate(body.name, body.generator, samples=body.samples, seed=seed)
    return _public(service.show(body.name))

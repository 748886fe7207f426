"""Models with their lineage (run, variants, modules); reading them needs ``models:read``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from tinymlaas.api.deps import ContextDep, Page, page, require
from tinymlaas.api.schemas import ModelDetailPublic, ModelPublic, ModelsPublic
from tinymlaas.services.auth import Permission
from tinymlaas.services.models import list_models as list_model_views
from tinymlaas.services.models import show_model as show_model_view

router = APIRouter(prefix="/models", tags=["models"])

Reader = Annotated[dict[str, Any], Depends(require(Permission.MODELS_READ))]


@router.get("", response_model=ModelsPublic)
def list_models(
    context: ContextDep, _token: Reader, paging: Annotated[Page, Depends()], name: str | None = None
) -> ModelsPublic:
    """Every model version, optionally only those named ``name``."""
    models = [m for m in list_model_views(context) if name is None or m["name"] == name]
    return ModelsPublic(data=[ModelPublic(**m) for m in page(models, paging)], count=len(models))


@router.get("/{ref}", response_model=ModelDetailPublic)
def show_model(context: ContextDep, _token: Reader, ref: str) -> ModelDetailPublic:
    """One model (by id, or as the CLI names it) with its training run, variants and modules."""
    return ModelDetailPublic(**show_model_view(context, ref))

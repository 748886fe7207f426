"""Read models back with their lineage: the run they came from, their variants and modules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from tinymlaas.errors import TinymlaasError
from tinymlaas.services.context import Context
from tinymlaas.services.imports import import_model
from tinymlaas.services.squeezing import squeeze_refusal
from tinymlaas.services.views import (
    ModelSummary,
    ModuleView,
    VariantView,
    model_view,
    module_view,
    run_view,
    variant_view,
)
from tinymlaas.storage.repositories import ModelRepository
from tinymlaas.storage.tables import ModelRow, TrainingRunRow, VariantRow

__all__ = [
    "ModelDetail",
    "import_uploaded_model",
    "list_model_details",
    "list_models",
    "models_page",
    "show_model",
    "show_variant",
    "variant_detail",
    "variant_tflite",
    "variants_page",
]


class ModelDetail(ModelSummary):
    """A model with its lineage: the run it came from, its variants and the modules compiled from them."""

    spec: dict[str, Any] | None
    run: dict[str, Any] | None
    variants: list[VariantView] = Field(description="Oldest first.")
    modules: list[ModuleView] = Field(description="Oldest first; a later compile for a board supersedes.")
    squeezable: bool = Field(description="Whether a squeeze job for it would be accepted.")


def _detail(
    ctx: Context, model: ModelRow, run: TrainingRunRow | None, variants: list[VariantRow]
) -> ModelDetail:
    modules = sorted((m for v in variants for m in v.modules), key=lambda m: m.created_at)
    threshold = ctx.settings.degraded_threshold_points
    return ModelDetail(
        **dict(ModelSummary.of(model)),
        spec=model.spec,
        run=run_view(run) if run else None,
        variants=[
            VariantView.of(
                v, model.float_metric, cross_validation=model.cross_validation, threshold_points=threshold
            )
            for v in variants
        ],
        modules=[ModuleView.of(m) for m in modules],
        squeezable=squeeze_refusal(model) is None,
    )


def list_models(ctx: Context) -> list[dict[str, Any]]:
    """Every model version, by name and version."""
    return models_page(ctx)[0]


def models_page(
    ctx: Context, *, name: str | None = None, limit: int | None = None, offset: int = 0
) -> tuple[list[dict[str, Any]], int]:
    """One page of the models (only those named ``name`` if given) and how many there are in all,
    filtered and paged in SQL."""
    with ctx.session() as session:
        repo = ModelRepository(session)
        rows = repo.models(name=name, limit=limit, offset=offset)
        return [model_view(r) for r in rows], repo.count_models(name=name)


def list_model_details(ctx: Context) -> list[ModelDetail]:
    """Every model as ``show_model`` gives it, by name and version, read in one session."""
    with ctx.session() as session:
        return [_detail(ctx, m, m.run, m.variants) for m in ModelRepository(session).models_with_lineage()]


def show_model(ctx: Context, ref: str) -> ModelDetail:
    with ctx.session() as session:
        repo = ModelRepository(session)
        model = repo.model(ref)
        return _detail(ctx, model, model.run, model.variants)


def variants_page(
    ctx: Context, ref: str, *, limit: int | None = None, offset: int = 0
) -> tuple[list[VariantView], int]:
    """One page of the model's variants, oldest first, and how many it has: paged in SQL rather than
    loading the model's whole lineage as ``show_model`` does."""
    with ctx.session() as session:
        repo = ModelRepository(session)
        model = repo.model(ref)
        rows = repo.variants(model.id, limit=limit, offset=offset)
        threshold = ctx.settings.degraded_threshold_points
        views = [
            VariantView.of(
                v, model.float_metric, cross_validation=model.cross_validation, threshold_points=threshold
            )
            for v in rows
        ]
        return views, repo.count_variants(model.id)


def show_variant(ctx: Context, variant_id: str) -> dict[str, Any]:
    """One variant with its per-layer parameters and MACs, as read from its flatbuffer."""
    with ctx.session() as session:
        repo = ModelRepository(session)
        variant = repo.variant(variant_id)
        model = repo.model(variant.model_id)
        return {
            **variant_view(variant, model, threshold_points=ctx.settings.degraded_threshold_points),
            "inputs": variant.info["inputs"],
            "outputs": variant.info["outputs"],
            "layers": variant.info["layers"],
            "modules": [module_view(m) for m in repo.modules([variant.id])],
        }


def variant_detail(ctx: Context, variant_id: str) -> dict[str, Any]:
    """``show_variant`` plus the model it came from and that model's float metric, to compare against."""
    detail = show_variant(ctx, variant_id)
    with ctx.session() as session:
        model = ModelRepository(session).model(detail["model"])
        return {
            **detail,
            "model_name": model.name,
            "model_version": model.version,
            "float_metric": model.float_metric,
        }


def variant_tflite(ctx: Context, variant_id: str) -> tuple[str, bytes]:
    """(file name, bytes) of the variant's ``.tflite`` flatbuffer, exactly as stored."""
    with ctx.session() as session:
        variant = ModelRepository(session).variant(variant_id)
        name, blob = f"{variant.id}-{variant.quantization}.tflite", variant.tflite_blob
    return name, ctx.blobs.get(blob)


def import_uploaded_model(
    ctx: Context, path: Path, *, name: str | None = None, dataset: str | None = None
) -> dict[str, Any]:
    """``import_model`` for a file received over HTTP into a private temporary directory.

    The model records the uploaded file's name rather than where the server kept it for a moment,
    and errors name it the same way, since that directory means nothing to the caller.
    """
    try:
        model = import_model(ctx, path, name=name or path.stem, dataset=dataset)
    except TinymlaasError as exc:
        exc.detail = exc.detail.replace(str(path), path.name)
        exc.args = (exc.detail,)
        raise
    with ctx.session() as session:
        ModelRepository(session).model(model["id"]).source_file = path.name
    return {**model, "source_file": path.name}

"""Read models back with their lineage: the run they came from, their variants and modules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tinymlaas.errors import TinymlaasError
from tinymlaas.services.context import Context
from tinymlaas.services.imports import import_model
from tinymlaas.services.views import model_view, module_view, run_view, variant_view
from tinymlaas.storage.repositories import ModelRepository

__all__ = [
    "import_uploaded_model",
    "list_models",
    "show_model",
    "show_variant",
    "variant_detail",
    "variant_tflite",
]


def list_models(ctx: Context) -> list[dict[str, Any]]:
    with ctx.session() as session:
        return [model_view(r) for r in ModelRepository(session).models()]


def show_model(ctx: Context, ref: str) -> dict[str, Any]:
    with ctx.session() as session:
        repo = ModelRepository(session)
        model = repo.model(ref)
        variants = repo.variants(model.id)
        run = repo.run(model.training_run_id) if model.training_run_id else None
        return {
            **model_view(model),
            "spec": model.spec,
            "run": run_view(run) if run else None,
            "variants": [variant_view(v) for v in variants],
            "modules": [module_view(m) for m in repo.modules([v.id for v in variants])],
        }


def show_variant(ctx: Context, variant_id: str) -> dict[str, Any]:
    """One variant with its per-layer parameters and MACs, as read from its flatbuffer."""
    with ctx.session() as session:
        repo = ModelRepository(session)
        variant = repo.variant(variant_id)
        return {
            **variant_view(variant),
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

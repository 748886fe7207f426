"""Read models back with their lineage: the run they came from, their variants and modules."""

from __future__ import annotations

from typing import Any

from tinymlaas.services.context import Context
from tinymlaas.services.views import model_view, module_view, run_view, variant_view
from tinymlaas.storage.repositories import ModelRepository

__all__ = ["list_models", "show_model", "show_variant"]


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

"""Squeeze: convert a stored Keras model into variants and store each with its measured figures."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from tinymlaas.errors import InvalidInput
from tinymlaas.services import _keras_io
from tinymlaas.services.context import Context, new_id
from tinymlaas.services.datasets import DatasetService
from tinymlaas.services.views import variant_view
from tinymlaas.squeeze.convert import Quantization
from tinymlaas.squeeze.variants import Evaluation, Progress, SqueezedVariant, no_progress, squeeze
from tinymlaas.storage.repositories import ModelRepository
from tinymlaas.storage.tables import ModelRow, VariantRow

__all__ = ["squeeze_model", "squeeze_refusal", "store_variant"]


def squeeze_refusal(model: ModelRow) -> str | None:
    """Why ``model`` cannot be squeezed, or None when it can.

    Squeezing needs the Keras weights (an imported .tflite is a variant already) and the dataset
    snapshot of a training run, to calibrate int8 with and to score every variant on.
    """
    if model.keras_blob is None:
        return f"model {model.name}:{model.version} was imported as .tflite; it is already a variant"
    if model.training_run_id is None:
        return f"model {model.id} has no dataset to calibrate int8 with and score on"
    return None


def squeeze_model(
    ctx: Context,
    model_ref: str,
    *,
    quantizations: Sequence[Quantization] = tuple(Quantization),
    progress: Progress = no_progress,
) -> list[dict[str, Any]]:
    """Convert a stored Keras model to each quantization and measure every variant.

    Calibration uses the train split and scoring the test split of the snapshot the model was
    trained (or, for an imported Keras model, scored) on, with the same seed, so the figures
    compare with the float metric.
    """
    with ctx.session() as session:
        repo = ModelRepository(session)
        model = repo.model(model_ref)
        refusal = squeeze_refusal(model)
        if refusal is not None:
            raise InvalidInput(refusal)
        run = repo.run(str(model.training_run_id))
        snapshot_id, seed = run.snapshot_id, run.recipe["seed"]
    loaded = DatasetService(ctx).load(snapshot_id, seed=seed)
    variants = squeeze(
        _keras_io.from_bytes(ctx.blobs.get(model.keras_blob)),
        loaded.arrays.x_train,
        Evaluation(loaded.spec.task, loaded.arrays.x_test, loaded.arrays.y_test),
        quantizations=quantizations,
        max_arena_bytes=ctx.settings.arena_search_max_bytes,
        progress=progress,
    )
    return [store_variant(ctx, model.id, v, snapshot_id) for v in variants]


def store_variant(
    ctx: Context, model_id: str, variant: SqueezedVariant, snapshot_id: str | None
) -> dict[str, Any]:
    blob = ctx.blobs.put(variant.tflite)
    with ctx.session() as session:
        row = ModelRepository(session).add(
            VariantRow(
                id=new_id("var"),
                model_id=model_id,
                quantization=variant.quantization,
                tflite_blob=blob,
                size_bytes=variant.info.size_bytes,
                info=dataclasses.asdict(variant.info),
                arena_bytes=variant.arena.arena_bytes,
                arena_tries=variant.arena.tries,
                metrics={k: m.as_dict() for k, m in variant.metrics.items()},
                runtime_errors=dict(variant.runtime_errors),
                selftests={k: s.as_dict() for k, s in variant.selftests.items()},
                evaluated_on=snapshot_id,
            )
        )
        return variant_view(row)

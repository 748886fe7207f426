"""Squeeze: convert a stored Keras model into variants and store each with its measured figures."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from tinymlaas.data.scaling import InputScaling
from tinymlaas.errors import InvalidInput
from tinymlaas.services import _keras_io
from tinymlaas.services.context import Context, new_id
from tinymlaas.services.crossval import cross_validate, folds_for
from tinymlaas.services.datasets import DatasetService, LoadedSnapshot
from tinymlaas.services.views import variant_view
from tinymlaas.squeeze.convert import DEFAULT_QUANTIZATIONS, Quantization, convert
from tinymlaas.squeeze.quality import judge, judge_variant
from tinymlaas.squeeze.variants import Evaluation, Progress, SqueezedVariant, assess, no_progress, squeeze
from tinymlaas.storage.repositories import ModelRepository
from tinymlaas.storage.tables import ModelRow, VariantRow
from tinymlaas.training.qat import QatUnavailable, quantization_aware
from tinymlaas.training.trainer import Recipe, scaled

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
    quantizations: Sequence[Quantization] = DEFAULT_QUANTIZATIONS,
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
        snapshot_id, recipe, epochs_run = run.snapshot_id, dict(run.recipe), run.epochs_run
        arch, float_metric, origin = model.arch, model.float_metric, model.origin
    loaded = DatasetService(ctx).load(snapshot_id, seed=recipe["seed"])
    cross_validation = None
    if Quantization.INT8 in quantizations and origin == "trained":
        # Each fold trains for as many epochs as early stopping chose on the real split.
        fold_recipe = {**recipe, "epochs": max(1, min(recipe["epochs"], epochs_run))}
        cross_validation = _cross_validation(ctx, fold_recipe, loaded, progress)
        with ctx.session() as session:
            ModelRepository(session).model(model.id).cross_validation = cross_validation
    scaling = InputScaling.from_dict(model.input_scaling)
    keras_model = _keras_io.from_bytes(ctx.blobs.get(model.keras_blob))
    variants = squeeze(
        keras_model,
        loaded.arrays.x_train,
        Evaluation(loaded.spec.task, loaded.arrays.x_test, loaded.arrays.y_test),
        quantizations=quantizations,
        max_arena_bytes=ctx.settings.arena_search_max_bytes,
        scaling=scaling,
        progress=progress,
    )
    stored = []
    for variant in variants:
        report = None
        if variant.quantization == "int8":
            attempt = _Attempt(ctx, keras_model, arch, recipe, loaded, scaling, float_metric, progress)
            variant, report = attempt.hold(variant, cross_validation)
        stored.append(store_variant(ctx, model.id, variant, snapshot_id, report=report))
    return stored


def _cross_validation(
    ctx: Context, recipe: dict[str, Any], loaded: LoadedSnapshot, progress: Progress
) -> dict[str, Any] | None:
    """The cross-validated float and int8 figures when the test split is too small to decide the
    drop (``services.crossval``); None when it is large enough or the snapshot too small to fold."""
    tested = len(loaded.arrays.x_test)
    if tested >= ctx.settings.crossval_below_test_samples:
        return None
    folds = folds_for(loaded.spec, loaded.arrays, folds=ctx.settings.crossval_folds)
    if not folds:
        return None
    progress(
        f"int8: the test split has {tested} samples ({100 / tested:.1f} points each); "
        f"cross-validating the drop over {folds} folds of the whole snapshot"
    )
    return cross_validate(
        loaded.spec,
        loaded.arrays,
        Recipe(**recipe),
        folds=folds,
        max_arena_bytes=ctx.settings.arena_search_max_bytes,
        progress=progress,
    ).as_dict()


class _Attempt:
    """Quantization that holds: post-training int8 first; quantization-aware training when it loses
    more than ``qat_trigger_points``; the better of the two is kept and both are reported."""

    def __init__(
        self,
        ctx: Context,
        keras_model: Any,
        arch: str,
        recipe: dict[str, Any],
        loaded: LoadedSnapshot,
        scaling: InputScaling,
        float_metric: dict[str, Any] | None,
        progress: Progress,
    ) -> None:
        self.ctx, self.keras_model, self.arch, self.recipe = ctx, keras_model, arch, recipe
        self.loaded, self.scaling, self.float_metric, self.progress = loaded, scaling, float_metric, progress

    def _entry(self, variant: SqueezedVariant, **extra: Any) -> dict[str, Any]:
        quality = judge(self.float_metric, {k: m.as_dict() for k, m in variant.metrics.items()})
        return {
            "method": variant.method,
            "metrics": {k: m.as_dict() for k, m in variant.metrics.items()},
            "drop": quality.drop if quality else None,
            **extra,
        }

    def hold(
        self, ptq: SqueezedVariant, cross_validation: dict[str, Any] | None
    ) -> tuple[SqueezedVariant, dict[str, Any]]:
        """PTQ unless it lost more than the trigger, judged on the cross-validated figures when the
        test split was small; then QAT, compared with PTQ on the test split."""
        first = self._entry(ptq)
        trigger = self.ctx.settings.qat_trigger_points
        decided = judge_variant(
            "int8", "ptq", first["metrics"], self.float_metric, cross_validation, threshold_points=trigger
        )
        drop = decided.drop if decided else None
        basis = decided.basis if decided else "nothing"
        if drop is None or drop <= trigger:
            return ptq, {"attempts": [first], "kept": "ptq", "why": _within(drop, trigger, basis)}
        self.progress(
            f"int8: post-training quantization lost {drop:.2f} ({basis}); quantization-aware training"
        )
        try:
            qat = self._qat()
        except QatUnavailable as exc:
            skipped = {"method": "qat", "skipped": exc.detail}
            return ptq, {"attempts": [first, skipped], "kept": "ptq", "why": exc.detail}
        second = self._entry(qat)
        better = second["drop"] is not None and second["drop"] < first["drop"]
        why = (
            f"quantization-aware training lost {second['drop']:.2f} against "
            f"post-training's {first['drop']:.2f}"
            if second["drop"] is not None
            else "quantization-aware training could not be measured"
        )
        return (qat if better else ptq), {
            "attempts": [first, second],
            "kept": "qat" if better else "ptq",
            "why": why,
        }

    def _qat(self) -> SqueezedVariant:
        arrays = scaled(self.loaded.arrays, self.scaling)
        result = quantization_aware(
            self.keras_model,
            self.arch,
            float(self.recipe.get("width", 1.0)),
            self.loaded.spec,
            arrays,
            learning_rate=float(self.recipe.get("learning_rate", 0.003)),
            seed=int(self.recipe["seed"]),
            hyper=self.recipe.get("hyper") or None,
        )
        tflite = convert(result.model, Quantization.INT8, arrays.x_train)
        return assess(
            tflite,
            Evaluation(self.loaded.spec.task, self.loaded.arrays.x_test, self.loaded.arrays.y_test),
            max_arena_bytes=self.ctx.settings.arena_search_max_bytes,
            name=f"{self.arch} (int8, quantization-aware)",
            scaling=self.scaling,
            method="qat",
            progress=self.progress,
        )


def _within(drop: float | None, trigger: float, basis: str) -> str:
    if drop is None:
        return "no float metric to compare with"
    return f"post-training quantization lost {drop:.2f} on the {basis} (within {trigger:g})"


def store_variant(
    ctx: Context,
    model_id: str,
    variant: SqueezedVariant,
    snapshot_id: str | None,
    *,
    report: dict[str, Any] | None = None,
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
                method=variant.method,
                quantization_report=report,
                evaluated_on=snapshot_id,
            )
        )
        model = ModelRepository(session).model(model_id)
        return variant_view(row, model, threshold_points=ctx.settings.degraded_threshold_points)

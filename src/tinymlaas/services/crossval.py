"""Cross-validate the float-vs-int8 drop when the test split is too small to decide it.

With 27 test samples one sample is 3.7 points, more than the drop a variant is allowed: a single
flip would call a good int8 model degraded, or hide a bad one. So on a small snapshot every sample
is held out once (stratified k-fold over the whole snapshot), a model is trained with the same
recipe on the other folds, quantized to int8 after training on them, and run in TFLM on the held-out
fold; the float and int8 predictions are pooled over all folds. The drop then rests on every sample
of the snapshot instead of a fifth of them. The model that ships is still the one trained on the
train split; these figures say how much quantization costs the recipe, not that model's accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tinymlaas.data.types import Arrays, DatasetSpec, Task
from tinymlaas.errors import RuntimeFailure
from tinymlaas.metrics import Metric, score
from tinymlaas.squeeze.arena import generous_arena
from tinymlaas.squeeze.convert import Quantization, convert
from tinymlaas.squeeze.inspect import inspect_tflite
from tinymlaas.squeeze.runtimes import LiteRtRunner, Runner, TflmRunner
from tinymlaas.squeeze.variants import Progress, no_progress
from tinymlaas.training.trainer import Recipe, predict, train

__all__ = ["CrossValidation", "cross_validate", "fold_of", "folds_for"]

MIN_PER_FOLD = 2  # a class needs this many samples per fold to be spread over every fold


@dataclass(frozen=True)
class CrossValidation:
    folds: int
    samples: int
    float_metric: Metric  # the Keras models, pooled over the held-out folds
    int8_metric: Metric  # their post-training int8 conversions, run in ``runtime``
    runtime: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "folds": self.folds,
            "samples": self.samples,
            "method": "ptq",
            "float": self.float_metric.as_dict(),
            "int8": {self.runtime: self.int8_metric.as_dict()},
        }


def fold_of(y: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """The fold of each sample: within each class (or all samples, for regression) a seeded order,
    dealt round-robin, so every fold holds every class in proportion."""
    assignment = np.empty(len(y), dtype=int)
    groups = [np.arange(len(y))] if y.dtype.kind == "f" else [np.flatnonzero(y == c) for c in np.unique(y)]
    rng = np.random.default_rng(seed)
    offset = 0
    for members in groups:
        order = rng.permutation(members)
        assignment[order] = (np.arange(len(order)) + offset) % folds
        offset += len(order)
    return assignment


def _runner(tflite: bytes, max_arena_bytes: int) -> Runner:
    info = inspect_tflite(tflite, name="fold")
    arena = generous_arena(tflite, max_arena_bytes)
    try:
        return TflmRunner(tflite, info.inputs[0], info.outputs[0], arena_bytes=arena)
    except RuntimeFailure:
        return LiteRtRunner(tflite, info.inputs[0], info.outputs[0])


def cross_validate(
    spec: DatasetSpec,
    arrays: Arrays,
    recipe: Recipe,
    *,
    folds: int,
    max_arena_bytes: int,
    progress: Progress = no_progress,
) -> CrossValidation:
    """Pool float and int8 predictions of ``recipe`` over ``folds`` held-out folds of every sample."""
    x = np.concatenate([arrays.x_train, arrays.x_val, arrays.x_test])
    y = np.concatenate([arrays.y_train, arrays.y_val, arrays.y_test])
    assignment = fold_of(y, folds, recipe.seed)
    float_outputs: list[np.ndarray] = []
    int8_outputs: list[np.ndarray] = []
    truths: list[np.ndarray] = []
    runtime = "tflm"
    empty_x, empty_y = x[:0], y[:0]
    for fold in range(folds):
        progress(f"cross-validation: fold {fold + 1} of {folds}")
        held = assignment == fold
        result = train(spec, Arrays(x[~held], y[~held], empty_x, empty_y, x[held], y[held]), recipe)
        scaled_train, scaled_held = result.scaling.apply(x[~held]), result.scaling.apply(x[held])
        float_outputs.append(predict(result.model, scaled_held))
        runner = _runner(convert(result.model, Quantization.INT8, scaled_train), max_arena_bytes)
        runtime = runner.runtime
        int8_outputs.append(runner.run_many(scaled_held))
        truths.append(y[held])
    truth = np.concatenate(truths)
    width = 1 if spec.task is Task.REGRESSION else len(spec.labels)
    pooled = [
        np.concatenate([o.reshape(len(o), width) for o in outputs])
        for outputs in (float_outputs, int8_outputs)
    ]
    return CrossValidation(
        folds=folds,
        samples=len(truth),
        float_metric=score(spec.task, truth, pooled[0]),
        int8_metric=score(spec.task, truth, pooled[1]),
        runtime=runtime,
    )


def folds_for(spec: DatasetSpec, arrays: Arrays, *, folds: int) -> int:
    """How many folds a snapshot can be cross-validated with: ``folds``, fewer when the smallest class
    cannot give every fold ``MIN_PER_FOLD`` samples, 0 (no cross-validation) below two folds."""
    y = np.concatenate([arrays.y_train, arrays.y_val, arrays.y_test])
    if spec.task is Task.REGRESSION:
        smallest = len(y)
    else:
        counts = np.bincount(y.astype(int), minlength=len(spec.labels))
        smallest = int(counts.min()) if len(counts) else 0
    possible = min(folds, smallest // MIN_PER_FOLD)
    return possible if possible >= 2 else 0

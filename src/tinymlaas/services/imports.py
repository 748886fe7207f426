"""Bring your own model: a ``.tflite`` or ``.keras`` made elsewhere joins the lifecycle.

A ``.tflite`` becomes a model with one variant, inspected and measured like ours (and scored on
the dataset's test split when a dataset is given). A ``.keras`` becomes a model that ``squeeze``
can convert; a dataset is then required for int8 calibration and scoring.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from tinymlaas.data.scaling import InputScaling
from tinymlaas.data.types import DatasetSpec, Task, check_model_name
from tinymlaas.errors import InvalidInput, UnsupportedModel
from tinymlaas.metrics import Metric, score
from tinymlaas.services import _keras_io
from tinymlaas.services.context import Context, new_id
from tinymlaas.services.datasets import DatasetService, LoadedSnapshot, spec_to_dict
from tinymlaas.services.squeezing import store_variant
from tinymlaas.services.views import model_view
from tinymlaas.squeeze.inspect import inspect_tflite
from tinymlaas.squeeze.variants import Evaluation, Progress, assess, no_progress
from tinymlaas.storage.repositories import ModelRepository
from tinymlaas.storage.tables import ModelRow, TrainingRunRow

__all__ = ["MODEL_SUFFIXES", "import_model"]

# A TFLite flatbuffer or a Keras v3 archive.
MODEL_SUFFIXES = (".tflite", ".keras")


def import_model(
    ctx: Context,
    path: Path,
    *,
    name: str | None = None,
    dataset: str | None = None,
    progress: Progress = no_progress,
) -> dict[str, Any]:
    if not path.is_file():
        raise InvalidInput(f"{path}: no such file")
    check_model_name(name or path.stem)
    if path.stat().st_size > ctx.settings.max_import_bytes:
        raise InvalidInput(f"{path}: larger than the import limit of {ctx.settings.max_import_bytes} bytes")
    suffix = path.suffix.lower()
    if suffix not in MODEL_SUFFIXES:
        raise UnsupportedModel(f"{path}: unknown model format {suffix!r}; import a .tflite or a .keras file")
    data = path.read_bytes()
    loaded = None
    if dataset is not None:
        datasets = DatasetService(ctx)
        loaded = datasets.load(datasets.snapshot(dataset), seed=ctx.settings.seed)
    if suffix == ".tflite":
        return _import_tflite(ctx, path, data, name or path.stem, loaded, progress)
    return _import_keras(ctx, path, data, name or path.stem, loaded)


def _check_shapes(path: Path, spec: DatasetSpec, input_shape: tuple[int, ...], outputs: int) -> None:
    if tuple(input_shape) != spec.input_shape:
        raise InvalidInput(
            f"{path}: the model takes inputs of shape {tuple(input_shape)}, the dataset's samples "
            f"have shape {spec.input_shape}"
        )
    if spec.task is Task.CLASSIFICATION and outputs != len(spec.labels):
        raise InvalidInput(
            f"{path}: the model has {outputs} outputs, the dataset has {len(spec.labels)} classes"
        )


def _import_tflite(
    ctx: Context, path: Path, data: bytes, name: str, loaded: LoadedSnapshot | None, progress: Progress
) -> dict[str, Any]:
    """A ``.tflite`` takes inputs as its maker prepared them, so it is scored on the dataset unscaled;
    unless it is the very bytes of one of our variants, whose model's input scaling then comes along."""
    info = inspect_tflite(data, name=str(path))
    with ctx.session() as session:
        known = ModelRepository(session).scaling_of_tflite(hashlib.sha256(data).hexdigest())
    scaling = InputScaling.from_dict(known)
    evaluation = None
    if loaded is not None:
        outputs = info.outputs[0].shape[-1] if info.outputs[0].shape else 1
        _check_shapes(path, loaded.spec, info.inputs[0].shape[1:], outputs)
        evaluation = Evaluation(loaded.spec.task, loaded.arrays.x_test, loaded.arrays.y_test)
    variant = assess(
        data,
        evaluation,
        max_arena_bytes=ctx.settings.arena_search_max_bytes,
        name=str(path),
        scaling=scaling,
        progress=progress,
    )
    if not variant.selftests:
        raise UnsupportedModel(
            f"{path}: no runtime can run this model: {'; '.join(variant.runtime_errors.values())}"
        )
    # The run records the score of the imported bytes in the runtime that ships them.
    measured = variant.metrics.get("tflm") or variant.metrics.get("litert")
    model = _new_model(
        ctx,
        name,
        path,
        loaded,
        arch="imported-tflite",
        params=info.params,
        run_metric=measured,
        input_scaling=known,
    )
    view = store_variant(ctx, model["id"], variant, loaded.snapshot_id if loaded else None)
    return {**model, "variants": [view]}


def _import_keras(
    ctx: Context, path: Path, data: bytes, name: str, loaded: LoadedSnapshot | None
) -> dict[str, Any]:
    if loaded is None:
        raise InvalidInput(
            f"{path}: importing a Keras model needs --dataset (for int8 calibration and scoring)"
        )
    model = _keras_io.from_bytes(data, name=str(path))
    _check_shapes(path, loaded.spec, tuple(model.input_shape[1:]), int(model.output_shape[-1]))
    metric = score(loaded.spec.task, loaded.arrays.y_test, model.predict(loaded.arrays.x_test, verbose=0))
    return _new_model(
        ctx,
        name,
        path,
        loaded,
        arch="imported-keras",
        params=int(model.count_params()),
        keras_blob=ctx.blobs.put(data),
        float_metric=metric,
        run_metric=metric,
    )


def _new_model(
    ctx: Context,
    name: str,
    path: Path,
    loaded: LoadedSnapshot | None,
    *,
    arch: str,
    params: int,
    keras_blob: str | None = None,
    float_metric: Metric | None = None,
    run_metric: Metric | None = None,
    input_scaling: dict[str, Any] | None = None,
) -> dict[str, Any]:
    sandbox = loaded is not None and loaded.sandbox  # scored on a dry run's data: a sandbox model too
    with ctx.session() as session:
        repo = ModelRepository(session)
        run_id = None
        if loaded is not None and run_metric is not None:
            # An evaluation-only run ties the imported model to the snapshot it was scored on.
            run_id = repo.add(
                TrainingRunRow(
                    id=new_id("run"),
                    snapshot_id=loaded.snapshot_id,
                    recipe={"imported": path.name, "seed": ctx.settings.seed},
                    split_counts=loaded.split_counts,
                    history={},
                    metric_name=run_metric.name,
                    metric_value=run_metric.value,
                    epochs_run=0,
                    duration_s=0.0,
                )
            ).id
        row = repo.add(
            ModelRow(
                id=new_id("mdl"),
                name=name,
                version=repo.next_version(name, sandbox=sandbox),
                origin="imported",
                training_run_id=run_id,
                dataset_id=loaded.dataset_id if loaded else None,
                keras_blob=keras_blob,
                arch=arch,
                params=params,
                spec=spec_to_dict(loaded.spec) if loaded else None,
                float_metric=float_metric.as_dict() if float_metric else None,
                input_scaling=input_scaling,
                source_file=str(path),
                sandbox=sandbox,
            )
        )
        return model_view(row)

"""Train: snapshot a dataset, fit a model on its split, record the run and the model."""

from __future__ import annotations

import time
from typing import Any

from tinymlaas.errors import InvalidInput
from tinymlaas.services import _keras_io
from tinymlaas.services.context import Context, new_id
from tinymlaas.services.datasets import DatasetService, spec_to_dict
from tinymlaas.services.views import model_view, run_view
from tinymlaas.storage.repositories import ModelRepository
from tinymlaas.storage.tables import ModelRow, TrainingRunRow
from tinymlaas.training.trainer import EpochCallback, default_recipe, train

__all__ = ["train_model"]


def train_model(
    ctx: Context,
    dataset: str,
    *,
    snapshot: str | None = None,
    arch: str | None = None,
    epochs: int | None = None,
    seed: int | None = None,
    scaling: str | None = None,
    on_epoch: EpochCallback | None = None,
) -> dict[str, Any]:
    """Train on ``snapshot`` of ``dataset`` (a fresh one when not given), store run + model.

    Inputs are scaled as ``scaling`` says, by default as the dataset is set to (``standardize``
    unless changed); the scaling learnt from the train split is stored with the model.

    A caller that already froze the dataset passes that snapshot, so what it reports is exactly
    what the model learnt from, even when samples arrived since. Returns the model view.
    """
    datasets = DatasetService(ctx)
    seed = ctx.settings.seed if seed is None else seed
    snapshot_id = datasets.snapshot(dataset) if snapshot is None else snapshot
    loaded = datasets.load(snapshot_id, seed=seed)
    if loaded.dataset != dataset:
        raise InvalidInput(f"snapshot {snapshot_id} is of dataset {loaded.dataset!r}, not {dataset!r}")
    recipe = default_recipe(
        loaded.spec, arch=arch, epochs=epochs, seed=seed, scaling=scaling or loaded.input_scaling
    )
    started = time.perf_counter()
    result = train(loaded.spec, loaded.arrays, recipe, on_epoch)
    duration = time.perf_counter() - started
    keras_blob = ctx.blobs.put(_keras_io.to_bytes(result.model))
    with ctx.session() as session:
        repo = ModelRepository(session)
        run = repo.add(
            TrainingRunRow(
                id=new_id("run"),
                snapshot_id=snapshot_id,
                recipe=recipe.as_dict(),
                split_counts=loaded.split_counts,
                history=result.history,
                metric_name=result.test_metric.name,
                metric_value=result.test_metric.value,
                epochs_run=result.epochs_run,
                duration_s=duration,
                confusion_matrix=(
                    {"labels": list(loaded.spec.labels), "counts": result.confusion}
                    if result.confusion is not None
                    else None
                ),
            )
        )
        model = repo.add(
            ModelRow(
                id=new_id("mdl"),
                name=loaded.dataset,
                version=repo.next_version(loaded.dataset, sandbox=loaded.sandbox),
                origin="trained",
                training_run_id=run.id,
                dataset_id=loaded.dataset_id,
                keras_blob=keras_blob,
                arch=recipe.arch,
                params=result.params,
                spec=spec_to_dict(loaded.spec),
                float_metric=result.test_metric.as_dict(),
                input_scaling=result.scaling.as_dict(),
                sandbox=loaded.sandbox,
            )
        )
        return {**model_view(model), "run": run_view(run)}

"""Training runs read back: the recipe, the split, every epoch's figures, the test score and the model.

A run is what ``train`` (or an import scored on a dataset) recorded; nothing here is recomputed, so
the figures a page shows are the ones measured when the run happened.
"""

from __future__ import annotations

from typing import Any

from tinymlaas.services._reports import iso
from tinymlaas.services.context import Context
from tinymlaas.services.views import run_metric
from tinymlaas.storage.repositories import ModelRepository
from tinymlaas.storage.tables import ModelRow, SnapshotRow, TrainingRunRow
from tinymlaas.training.zoo import ARCHITECTURES

__all__ = ["architectures", "list_runs", "runs_page", "show_run"]


def architectures() -> dict[str, int]:
    """Model zoo family -> the input rank it takes, for choosing one that suits a dataset."""
    return dict(ARCHITECTURES)


def _summary(
    run: TrainingRunRow, snapshot: SnapshotRow, dataset: str, model: ModelRow | None
) -> dict[str, Any]:
    return {
        "id": run.id,
        "dataset": dataset,
        "snapshot": run.snapshot_id,
        "task": snapshot.spec["task"],
        "labels": list(snapshot.spec.get("labels", [])),
        # An imported model's run only scored it: its recipe names the file, not an architecture.
        "arch": run.recipe.get("arch") or ("imported" if "imported" in run.recipe else None),
        "recipe": run.recipe,
        "split_counts": run.split_counts,
        "metric": run_metric(run),
        "epochs_run": run.epochs_run,
        "duration_s": round(run.duration_s, 2),
        "created_at": iso(run.created_at),
        "model": (
            {"id": model.id, "name": model.name, "version": model.version} if model is not None else None
        ),
    }


def list_runs(ctx: Context) -> list[dict[str, Any]]:
    """Every run, newest first, without the per-epoch history (``show_run`` has it)."""
    return runs_page(ctx)[0]


def runs_page(
    ctx: Context, *, dataset: str | None = None, limit: int | None = None, offset: int = 0
) -> tuple[list[dict[str, Any]], int]:
    """One page of the runs (only those on ``dataset`` if given) and how many there are in all.

    Filtered and paged in SQL, so a page loads only its own runs and their models.
    """
    with ctx.session() as session:
        repo = ModelRepository(session)
        rows = repo.runs(dataset=dataset, limit=limit, offset=offset)
        models = repo.models_of_runs([run.id for run, _, _ in rows])
        found = [_summary(run, snapshot, name, models.get(run.id)) for run, snapshot, name in rows]
        return found, repo.count_runs(dataset=dataset)


def show_run(ctx: Context, run_id: str) -> dict[str, Any]:
    """One run with its per-epoch history and, for a classifier, its confusion matrix on the test split."""
    with ctx.session() as session:
        repo = ModelRepository(session)
        run = repo.training_run(run_id)
        [(_, snapshot, dataset)] = repo.runs(run.id)
        model = repo.models_of_runs([run.id]).get(run.id)
        return {
            **_summary(run, snapshot, dataset, model),
            "history": run.history,
            "confusion_matrix": run.confusion_matrix,
        }

"""What the Models pages need beyond one model's own detail: a line per model name for the list, and
for one version its lineage from dataset to deployments, its training figures and its sibling versions.

The list is summarised per name because a person looks for "the gesture model", not for each version
of it; the newest version stands for the name. Every figure is a stored one, read in one session.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tinymlaas.services._reports import iso
from tinymlaas.services.context import Context
from tinymlaas.services.models import ModelDetail, show_model
from tinymlaas.storage.repositories import CampaignRepository, ModelRepository
from tinymlaas.storage.tables import ModelRow

__all__ = [
    "ConfusionMatrix",
    "DeploymentLink",
    "ModelLine",
    "ModelPage",
    "VersionLink",
    "model_lines",
    "show_model_page",
]

_HIGHER_IS_BETTER = frozenset({"accuracy"})  # every other metric the product scores is an error


@dataclass(frozen=True)
class ModelLine:
    """One model name on the Models list, described by its newest version."""

    name: str
    latest_id: str
    latest_version: int
    versions: int
    origin: str
    dataset: str | None
    float_metric: dict[str, Any] | None
    best_int8: dict[str, Any] | None
    """The best TFLM score among the newest version's int8 variants: what a microcontroller gets."""
    variants: int
    modules: int
    created_at: str


@dataclass(frozen=True)
class VersionLink:
    id: str
    version: int
    created_at: str


@dataclass(frozen=True)
class ConfusionMatrix:
    """Test-split counts: row ``i`` is the true class ``labels[i]``, column ``j`` the predicted one."""

    labels: list[str]
    counts: list[list[int]]


@dataclass(frozen=True)
class DeploymentLink:
    """A campaign that sent one of the model's modules."""

    id: str
    module: str
    board: str
    state: str
    selector: str
    created_at: str | None


@dataclass(frozen=True)
class ModelPage:
    """One model version with everything its page shows around the variants and modules."""

    model: ModelDetail
    created_at: str
    """When this version was made, with its zone."""
    versions: list[VersionLink]
    """Every version of the model's name, oldest first, this one included."""
    dataset: str | None
    snapshot: str | None
    task: str | None
    history: dict[str, list[float]]
    confusion: ConfusionMatrix | None
    deployments: list[DeploymentLink]
    """Newest first."""


def _best(metrics: list[dict[str, Any]]) -> dict[str, Any] | None:
    scored = [m for m in metrics if m.get("value") is not None]
    if not scored:
        return None
    pick = max if scored[0]["name"] in _HIGHER_IS_BETTER else min
    return pick(scored, key=lambda m: m["value"])


def _line(versions: list[ModelRow], datasets: dict[str, str]) -> ModelLine:
    latest = max(versions, key=lambda m: m.version)
    int8 = [v.metrics["tflm"] for v in latest.variants if v.quantization == "int8" and "tflm" in v.metrics]
    return ModelLine(
        name=latest.name,
        latest_id=latest.id,
        latest_version=latest.version,
        versions=len(versions),
        origin=latest.origin,
        dataset=datasets.get(latest.id),
        float_metric=latest.float_metric,
        best_int8=_best(int8),
        variants=len(latest.variants),
        modules=sum(len(v.modules) for v in latest.variants),
        created_at=iso(latest.created_at) or "",
    )


def model_lines(ctx: Context) -> list[ModelLine]:
    """One line per model name, the most recently made first."""
    with ctx.session() as session:
        repo = ModelRepository(session)
        rows = repo.models_with_lineage()
        datasets = repo.dataset_names(rows)
        by_name: dict[str, list[ModelRow]] = {}
        for row in rows:
            by_name.setdefault(row.name, []).append(row)
        lines = [_line(versions, datasets) for versions in by_name.values()]
    return sorted(lines, key=lambda line: line.created_at, reverse=True)


def show_model_page(ctx: Context, ref: str) -> ModelPage:
    """The version ``ref`` names (an id, a name for its newest version, or ``name:version``)."""
    model = show_model(ctx, ref)
    boards = {m.id: m.board for m in model.modules}
    with ctx.session() as session:
        repo = ModelRepository(session)
        row = repo.model(model.id)
        line = repo.models(name=row.name, sandbox=row.sandbox)  # a dry run's model has its own line
        versions = [VersionLink(v.id, v.version, iso(v.created_at) or "") for v in line]
        run = row.run
        snapshot = repo.runs(run.id)[0][1] if run is not None else None
        matrix = run.confusion_matrix if run is not None else None
        campaigns = CampaignRepository(session).campaigns_of_modules(boards)
        return ModelPage(
            model=model,
            created_at=iso(row.created_at) or "",
            versions=versions,
            dataset=repo.dataset_names([row]).get(row.id),
            snapshot=snapshot.id if snapshot is not None else None,
            task=snapshot.spec["task"] if snapshot is not None else None,
            history=dict(run.history) if run is not None else {},
            confusion=ConfusionMatrix(list(matrix["labels"]), matrix["counts"]) if matrix else None,
            deployments=[
                DeploymentLink(c.id, c.module_id, boards[c.module_id], c.state, c.selector, iso(c.created_at))
                for c in campaigns
            ],
        )

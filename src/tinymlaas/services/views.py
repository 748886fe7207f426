"""Rows to the one shape the CLI, the API and the dashboard render: typed views, or their JSON-ready dicts."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, computed_field

from tinymlaas.metrics import wilson_interval
from tinymlaas.squeeze.quality import DEFAULT_DEGRADED_POINTS, judge_variant
from tinymlaas.storage.tables import ModelRow, ModuleRow, TrainingRunRow, VariantRow

__all__ = [
    "ModelSummary",
    "ModuleView",
    "VariantView",
    "model_view",
    "module_view",
    "run_metric",
    "run_view",
    "variant_view",
]


def run_view(row: TrainingRunRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "snapshot": row.snapshot_id,
        "recipe": row.recipe,
        "split_counts": row.split_counts,
        "metric": run_metric(row),
        "epochs_run": row.epochs_run,
        "duration_s": round(row.duration_s, 2),
        "history": row.history,
    }


def run_metric(row: TrainingRunRow) -> dict[str, Any]:
    """The run's test metric with its sample count; accuracy with its Wilson interval, which the
    count and the value determine exactly."""
    n = (row.split_counts or {}).get("test")
    metric: dict[str, Any] = {"name": row.metric_name, "value": row.metric_value, "n": n}
    if row.metric_name == "accuracy" and n:
        metric["low"], metric["high"] = wilson_interval(round(row.metric_value * n), n)
    return metric


class ModelSummary(BaseModel):
    """A model version and where it came from, without its variants."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    version: int
    origin: str
    arch: str
    params: int
    training_run: str | None
    float_metric: dict[str, Any] | None
    cross_validation: dict[str, Any] | None = Field(
        default=None,
        description="When the test split was small: float and int8 metrics pooled over k held-out folds "
        "of the whole snapshot (folds, samples, method, float, int8).",
    )
    input_scaling: dict[str, Any] | None = Field(
        default=None,
        description="How inputs in sensor units are scaled before the model (method, offset and scale "
        "per feature or channel, learnt from the train split); None: inputs go in as measured.",
    )
    source_file: str
    created_at: str
    sandbox: bool = Field(
        default=False,
        description="Made by a dry run: listed under the Pipeline's dry runs only, never deployed.",
    )

    @classmethod
    def of(cls, row: ModelRow) -> ModelSummary:
        return cls(
            id=row.id,
            name=row.name,
            version=row.version,
            origin=row.origin,
            arch=row.arch,
            params=row.params,
            training_run=row.training_run_id,
            float_metric=row.float_metric,
            input_scaling=row.input_scaling,
            cross_validation=row.cross_validation,
            source_file=row.source_file,
            created_at=row.created_at.isoformat(),
            sandbox=row.sandbox,
        )


def model_view(row: ModelRow) -> dict[str, Any]:
    return ModelSummary.of(row).model_dump()


class VariantView(BaseModel):
    """A model converted to one quantization, with the figures measured on it."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    model: str
    quantization: str = Field(description="float32, float16 or int8.")
    size_bytes: int
    arena_bytes: int | None = Field(description="The tensor arena TFLM needed, as measured.")
    ops: list[str]
    params: int
    macs: int
    metrics: dict[str, Any] = Field(description="Runtime -> its score on the test split, measured in it.")
    runtime_errors: dict[str, str] = Field(description="Runtime -> why it cannot run this variant.")
    evaluated_on: str | None = Field(description="The snapshot the metrics were measured on.")
    method: str | None = Field(
        default=None, description="int8: 'ptq' (post-training) or 'qat' (quantization-aware training)."
    )
    quantization_report: dict[str, Any] | None = Field(
        default=None, description="int8: every quantization attempt with its metric, and which was kept."
    )
    degraded: bool = Field(
        default=False,
        description="Worse than the float model by more than the allowed drop: deploy refuses it "
        "unless allowed explicitly.",
    )
    degraded_reason: str | None = Field(default=None, description="Why it is degraded, with the figures.")
    drop: float | None = Field(
        default=None,
        description="Accuracy points lost against the float model (regression: percent more error), "
        "in the runtime it ships in.",
    )
    quality_basis: str | None = Field(
        default=None, description="What the drop rests on: the test split, or k-fold cross-validation."
    )

    @classmethod
    def of(
        cls,
        row: VariantRow,
        float_metric: dict[str, Any] | None = None,
        *,
        cross_validation: dict[str, Any] | None = None,
        threshold_points: float = DEFAULT_DEGRADED_POINTS,
    ) -> VariantView:
        """The variant; with its model's metrics, also its quality verdict against the float model."""
        quality = judge_variant(
            row.quantization,
            row.method,
            row.metrics,
            float_metric,
            cross_validation,
            threshold_points=threshold_points,
        )
        return cls(
            id=row.id,
            model=row.model_id,
            quantization=row.quantization,
            size_bytes=row.size_bytes,
            arena_bytes=row.arena_bytes,
            ops=row.info["ops"],
            params=sum(layer["params"] for layer in row.info["layers"]),
            macs=sum(layer["macs"] for layer in row.info["layers"]),
            metrics=row.metrics,
            runtime_errors=row.runtime_errors,
            evaluated_on=row.evaluated_on,
            method=row.method,
            quantization_report=row.quantization_report,
            degraded=quality.degraded if quality else False,
            degraded_reason=quality.reason if quality else None,
            drop=quality.drop if quality else None,
            quality_basis=quality.basis if quality else None,
        )


class ModuleView(BaseModel):
    """A variant compiled for one board, with what it needs and whether that fits."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    variant: str
    board: str
    compiler: str
    runtime: str
    flash_bytes: int | None = Field(description="Flash the module needs: model, runtime code and kernels.")
    ram_bytes: int | None = Field(description="RAM the module needs; None when it was never measured.")
    fits: bool
    reasons: list[str] = Field(description="Every reason it does not fit or was refused.")
    package: str | None = Field(description="sha256 of the unsigned module zip; None when refused.")
    on_target: dict[str, Any] | None = Field(
        None,
        description="What the compiler measured by building the module for the board's core and running "
        "it in QEMU: instructions per inference and per layer, flash and RAM from the linker, the painted "
        "stack, the latency estimate for the board with its range and basis. None: estimates only.",
    )

    @classmethod
    def of(cls, row: ModuleRow) -> ModuleView:
        return cls(
            id=row.id,
            variant=row.variant_id,
            board=row.board_id,
            compiler=row.compiler,
            runtime=row.runtime,
            flash_bytes=row.flash_bytes,
            ram_bytes=row.ram_bytes,
            fits=row.fits,
            reasons=row.reasons,
            package=row.package_blob,
            on_target=(row.manifest or {}).get("target"),
        )

    @computed_field(
        description="The runtime whose measured metric describes this module: its own, or the one it was "
        "checked bit-exact against (a native module: tflm)."
    )
    @property
    def metric_runtime(self) -> str:
        reference = ((self.on_target or {}).get("bit_exact") or {}).get("reference")
        return str(reference) if reference else self.runtime

    @computed_field(description="Whether a campaign may send it: it fits its board and was packaged.")
    @property
    def deployable(self) -> bool:
        return self.fits and self.package is not None


def variant_view(
    row: VariantRow,
    model: ModelRow | None = None,
    *,
    threshold_points: float = DEFAULT_DEGRADED_POINTS,
) -> dict[str, Any]:
    """The variant as JSON; with its ``model``, its quality verdict too."""
    return VariantView.of(
        row,
        model.float_metric if model else None,
        cross_validation=model.cross_validation if model else None,
        threshold_points=threshold_points,
    ).model_dump()


def module_view(row: ModuleRow) -> dict[str, Any]:
    return ModuleView.of(row).model_dump(exclude={"deployable"})

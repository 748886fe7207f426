"""Rows to plain, JSON-ready dicts: the one shape the CLI (and later the API) render."""

from __future__ import annotations

from typing import Any

from tinymlaas.storage.tables import ModelRow, ModuleRow, TrainingRunRow, VariantRow

__all__ = ["model_view", "module_view", "run_view", "variant_view"]


def run_view(row: TrainingRunRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "snapshot": row.snapshot_id,
        "recipe": row.recipe,
        "split_counts": row.split_counts,
        "metric": {"name": row.metric_name, "value": row.metric_value},
        "epochs_run": row.epochs_run,
        "duration_s": round(row.duration_s, 2),
        "history": row.history,
    }


def model_view(row: ModelRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "version": row.version,
        "origin": row.origin,
        "arch": row.arch,
        "params": row.params,
        "training_run": row.training_run_id,
        "float_metric": row.float_metric,
        "source_file": row.source_file,
        "created_at": row.created_at.isoformat(),
    }


def variant_view(row: VariantRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "model": row.model_id,
        "quantization": row.quantization,
        "size_bytes": row.size_bytes,
        "arena_bytes": row.arena_bytes,
        "ops": row.info["ops"],
        "params": sum(layer["params"] for layer in row.info["layers"]),
        "macs": sum(layer["macs"] for layer in row.info["layers"]),
        "metrics": row.metrics,
        "runtime_errors": row.runtime_errors,
        "evaluated_on": row.evaluated_on,
    }


def module_view(row: ModuleRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "variant": row.variant_id,
        "board": row.board_id,
        "compiler": row.compiler,
        "runtime": row.runtime,
        "flash_bytes": row.flash_bytes,
        "ram_bytes": row.ram_bytes,
        "fits": row.fits,
        "reasons": row.reasons,
        "package": row.package_blob,
    }

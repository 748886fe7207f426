"""What the Models pages show, laid out from the model details the services return.

Pure functions: each model's variants side by side with the module compiled from each for each board
(the latest one, when a variant was compiled for a board more than once), and Plotly figures of size,
metric and fit. Every figure is a stored measurement; a board's usable flash and RAM come from the
catalog, passed in as ``usable`` (board id -> (flash bytes, RAM bytes)). Whether a model can be
squeezed is the service's verdict.
"""

from __future__ import annotations

from typing import Any

from tinymlaas.formatting import fmt_bytes, fmt_metric
from tinymlaas.services.models import ModelDetail
from tinymlaas.services.views import ModuleView, VariantView

__all__ = ["fit_figure", "metric_figures", "model_section", "size_figure"]

Usable = dict[str, tuple[int, int]]

_LAYOUT = {"margin": {"t": 40, "r": 10, "b": 90, "l": 60}, "height": 340, "legend": {"orientation": "h"}}


def _label(model: ModelDetail, variant: VariantView) -> str:
    return f"{model.name} v{model.version} · {variant.quantization}"


def _latest_modules(model: ModelDetail) -> dict[tuple[str, str], ModuleView]:
    # Modules come oldest first, so a later compile for the same board replaces the earlier one.
    return {(m.variant, m.board): m for m in model.modules}


def _cell(module: ModuleView | None, usable: Usable) -> dict[str, Any] | None:
    if module is None:
        return None
    flash_usable, ram_usable = usable.get(module.board, (None, None))
    return {
        **module.model_dump(),
        "flash": fmt_bytes(module.flash_bytes),
        "ram": fmt_bytes(module.ram_bytes),
        "flash_usable": fmt_bytes(flash_usable),
        "ram_usable": fmt_bytes(ram_usable),
    }


def model_section(model: ModelDetail, usable: Usable) -> dict[str, Any]:
    """One model: its figures, and a row per variant with a cell per board it was compiled for."""
    modules = _latest_modules(model)
    boards = sorted({board for _, board in modules})
    rows = [
        {
            **variant.model_dump(),
            "label": _label(model, variant),
            "size": fmt_bytes(variant.size_bytes),
            "arena": fmt_bytes(variant.arena_bytes),
            "tflm": fmt_metric(variant.metrics.get("tflm")),
            "litert": fmt_metric(variant.metrics.get("litert")),
            "errors": "; ".join(f"{k}: {v}" for k, v in variant.runtime_errors.items()),
            "cells": [_cell(modules.get((variant.id, board)), usable) for board in boards],
        }
        for variant in model.variants
    ]
    return {"model": model, "float": fmt_metric(model.float_metric), "boards": boards, "rows": rows}


def _bars(title: str, y_title: str, x: list[str], series: dict[str, list[Any]]) -> dict[str, Any]:
    return {
        "data": [{"type": "bar", "name": name, "x": x, "y": y} for name, y in series.items()],
        "layout": {
            **_LAYOUT,
            "barmode": "group",
            "title": {"text": title},
            "xaxis": {"type": "category"},
            "yaxis": {"title": {"text": y_title}, "rangemode": "tozero"},
        },
    }


def size_figure(models: list[ModelDetail]) -> dict[str, Any]:
    """The .tflite size and the measured tensor arena of every variant, in KiB."""
    variants = [(m, v) for m in models for v in m.variants]
    return _bars(
        "Size and tensor arena per variant",
        "KiB",
        [_label(m, v) for m, v in variants],
        {
            "model (.tflite)": [round(v.size_bytes / 1024, 2) for _, v in variants],
            "tensor arena": [
                None if v.arena_bytes is None else round(v.arena_bytes / 1024, 2) for _, v in variants
            ],
        },
    )


def _value(metric: dict[str, Any] | None, name: str) -> float | None:
    return metric["value"] if metric and metric["name"] == name else None


def metric_figures(models: list[ModelDetail]) -> list[dict[str, Any]]:
    """Per metric (accuracy, mse): each variant's score in TFLM and LiteRT next to its float model's."""
    names = sorted(
        {m.float_metric["name"] for m in models if m.float_metric}
        | {s["name"] for m in models for v in m.variants for s in v.metrics.values()}
    )
    figures = []
    for name in names:
        rows = [
            (m, v)
            for m in models
            for v in m.variants
            if _value(m.float_metric, name) is not None
            or any(_value(s, name) is not None for s in v.metrics.values())
        ]
        series = {
            "float (Keras)": [_value(m.float_metric, name) for m, _ in rows],
            "TFLM": [_value(v.metrics.get("tflm"), name) for _, v in rows],
            "LiteRT": [_value(v.metrics.get("litert"), name) for _, v in rows],
        }
        if rows:
            labels = [_label(m, v) for m, v in rows]
            figures.append(_bars(f"{name} on the test split: runtime vs float", name, labels, series))
    return figures


def fit_figure(models: list[ModelDetail], usable: Usable) -> dict[str, Any]:
    """Flash and RAM each module needs as a share of what its board leaves; over 100 % does not fit."""
    entries = sorted(
        (
            (board, _label(model, variant), module)
            for model in models
            for variant in model.variants
            for (variant_id, board), module in _latest_modules(model).items()
            if variant_id == variant.id and board in usable
        ),
        key=lambda entry: entry[0],
    )
    x = [f"{board}<br>{label}" for board, label, _ in entries]
    flash = [_share(module.flash_bytes, usable[board][0]) for board, _, module in entries]
    ram = [_share(module.ram_bytes, usable[board][1]) for board, _, module in entries]
    figure = _bars(
        "Fit per board (share of what the board leaves for a model)", "%", x, {"flash": flash, "RAM": ram}
    )
    figure["layout"]["xaxis"]["tickangle"] = 0
    figure["layout"]["legend"] = {"orientation": "h", "x": 1, "xanchor": "right", "y": 1.12}
    figure["layout"]["margin"] = {**_LAYOUT["margin"], "b": 70}
    figure["layout"]["shapes"] = [
        {
            "type": "line",
            "xref": "paper",
            "x0": 0,
            "x1": 1,
            "y0": 100,
            "y1": 100,
            "line": {"color": "#c62828", "dash": "dash"},
        }
    ]
    return figure


def _share(needed: int | None, usable: int) -> float | None:
    return None if needed is None or not usable else round(100 * needed / usable, 2)

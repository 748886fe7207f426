"""What the Models pages show, laid out from the model details the services return.

Pure functions: a row per model name for the list; for one model its variants side by side with the
module compiled from each for each board (the latest one, when a variant was compiled for a board more
than once), Plotly figures of size, metric and metric against memory per board (whether each module
fits is marked on that scatter and spelled out in the variants table, so no bar per board and variant
crowds a chart), and its confusion matrix as a table. Every figure is a stored measurement; a board's
usable flash and RAM come from the catalog, passed in as ``usable`` (board id -> (flash bytes, RAM
bytes)). Whether a model can be squeezed is the service's verdict.

Scores differ by a few points between variants, so a score axis is zoomed to the values shown and its
title says the range it spans; a bar would mislead on such an axis, so scores are drawn as dots.

A runtime that cannot run a variant says why at length (a TFLM error can span lines), and every module
compiled from that variant for that runtime repeats the reason; the page shows it once per variant as a
short note and lets each module cell point to it.
"""

from __future__ import annotations

import re
from dataclasses import asdict
from typing import Any

from tinymlaas.formatting import (
    fmt_bytes,
    fmt_cross_validation,
    fmt_drop,
    fmt_metric,
    fmt_on_target,
    fmt_target_basis,
)
from tinymlaas.services.model_pages import ConfusionMatrix, ModelLine
from tinymlaas.services.models import ModelDetail
from tinymlaas.services.views import ModuleView, VariantView

__all__ = [
    "board_figure",
    "confusion_table",
    "line_row",
    "metric_figures",
    "model_section",
    "runtime_notes",
    "score_axis",
    "size_figure",
]

Usable = dict[str, tuple[int, int]]

_LAYOUT = {"margin": {"t": 40, "r": 10, "b": 90, "l": 60}, "height": 340, "legend": {"orientation": "h"}}
_RAM_AXIS = "RAM the module needs (KiB)"
_FLASH_AXIS = "flash the module needs (KiB)"
_LABELLED_POINTS = 12  # beyond this many points on the board scatter, names go to the hover and the table
_NOTE_CHARS = 120  # how much of an error's first line a note shows; the full text is folded away
_HINT = re.compile(r"\([^()]*\)\s*$")  # a closing "(what to do instead)" the runners add to an error


def line_row(line: ModelLine) -> dict[str, Any]:
    """One model name on the list, its scores formatted for people."""
    return {**asdict(line), "float": fmt_metric(line.float_metric), "int8": fmt_metric(line.best_int8)}


def _short(error: str) -> str:
    # With a closing hint, the hint says what to do and the clause before the first colon what went
    # wrong; the kernel-level detail between them is for the full text.
    first = error.strip().splitlines()[0] if error.strip() else error
    hint = _HINT.search(error)
    if hint:
        return f"{first.split(': ', 1)[0]} {hint.group(0).strip()}"
    return first if len(first) <= _NOTE_CHARS else first[: _NOTE_CHARS - 1].rstrip() + "…"


def runtime_notes(variant: VariantView) -> list[dict[str, str]]:
    """Per runtime that cannot run the variant: a one-line note and, when that shortens it, the full error."""
    notes = []
    for runtime, error in sorted(variant.runtime_errors.items()):
        short = _short(error)
        notes.append({"runtime": runtime, "short": short, "full": "" if short == error else error})
    return notes


def _label(model: ModelDetail, variant: VariantView) -> str:
    return f"{model.name} v{model.version} · {variant.quantization}"


def _latest_modules(model: ModelDetail) -> dict[tuple[str, str], ModuleView]:
    # Modules come oldest first, so a later compile for the same board replaces the earlier one.
    return {(m.variant, m.board): m for m in model.modules}


def _cell(module: ModuleView | None, variant: VariantView, usable: Usable) -> dict[str, Any] | None:
    if module is None:
        return None
    flash_usable, ram_usable = usable.get(module.board, (None, None))
    runtime_error = variant.runtime_errors.get(module.runtime)
    return {
        **module.model_dump(),
        "reasons": [
            f"{module.runtime} cannot run this variant (see the note)" if reason == runtime_error else reason
            for reason in module.reasons
        ],
        "flash": fmt_bytes(module.flash_bytes),
        "ram": fmt_bytes(module.ram_bytes),
        "on_target_text": fmt_on_target(module.on_target) if module.on_target else None,
        "flash_usable": fmt_bytes(flash_usable),
        "ram_usable": fmt_bytes(ram_usable),
    }


def target_section(module: ModuleView) -> dict[str, Any]:
    """A module measured on its core: one line per figure's basis and instructions per layer as bars."""
    target = module.on_target or {}
    layers = target.get("layers") or []
    figure = _bars(
        f"Instructions per layer, {module.board} ({target.get('core')} in QEMU {target.get('machine')})",
        "instructions per inference",
        [f"{layer['index']} {layer['op']}" for layer in layers],
        {"instructions": [layer["instructions"] for layer in layers]},
    )
    figure["layout"]["showlegend"] = False
    return {
        "module": module.id,
        "board": module.board,
        "summary": fmt_on_target(target),
        "basis": fmt_target_basis(target),
        "figure": figure if layers else None,
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
            "drop_text": fmt_drop(variant.model_dump()),
            "notes": runtime_notes(variant),
            "cells": [_cell(modules.get((variant.id, board)), variant, usable) for board in boards],
        }
        for variant in model.variants
    ]
    return {
        "model": model,
        "float": fmt_metric(model.float_metric),
        "boards": boards,
        "rows": rows,
        "cross_validation": fmt_cross_validation(model.cross_validation) if model.cross_validation else None,
        "targets": [target_section(m) for m in modules.values() if m.on_target],
    }


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


def score_axis(name: str, values: list[float | None], title: str | None = None) -> dict[str, Any]:
    """A y axis for metric ``name`` zoomed to ``values`` with a little margin, its title (``title``,
    by default the metric's name) stating the range it spans.

    Accuracy is a share, so its axis never leaves 0–1 and reads in percent."""
    title = title or name
    shown = [v for v in values if v is not None]
    if not shown:
        return {"title": {"text": title}}
    low, high = min(shown), max(shown)
    pad = max((high - low) * 0.15, 0.005 if name == "accuracy" else abs(high) * 0.05 or 0.01)
    low, high = low - pad, high + pad
    if name == "accuracy":
        low, high = max(0.0, low), min(1.0, high)
        span = f"{100 * low:.1f}–{100 * high:.1f} %"
        return {"title": {"text": f"{title} (axis {span})"}, "range": [low, high], "tickformat": ".1%"}
    return {"title": {"text": f"{title} (axis {low:.3g} to {high:.3g})"}, "range": [low, high]}


def metric_figures(models: list[ModelDetail]) -> list[dict[str, Any]]:
    """Per metric (accuracy, mse): each variant's score in TFLM and LiteRT next to its float model's,
    as dots on an axis zoomed to the scores."""
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
        if not rows:
            continue
        series = {
            "float (Keras)": [_value(m.float_metric, name) for m, _ in rows],
            "TFLM": [_value(v.metrics.get("tflm"), name) for _, v in rows],
            "LiteRT": [_value(v.metrics.get("litert"), name) for _, v in rows],
        }
        labels = [_label(m, v) for m, v in rows]
        markers = {
            "float (Keras)": {"symbol": "line-ew-open", "size": 28, "line": {"width": 3}},
            "TFLM": {"symbol": "circle-open", "size": 14, "line": {"width": 2}},
            "LiteRT": {"symbol": "diamond-open", "size": 10, "line": {"width": 2}},
        }
        figures.append(
            {
                "data": [
                    {
                        "type": "scatter",
                        "mode": "markers",
                        "name": series_name,
                        "x": labels,
                        "y": values,
                        "marker": markers[series_name],
                    }
                    for series_name, values in series.items()
                    if any(v is not None for v in values)
                ],
                "layout": {
                    **_LAYOUT,
                    "title": {"text": f"{name} on the test split: runtime vs float"},
                    "xaxis": {"type": "category", "automargin": True},
                    "yaxis": score_axis(name, [v for values in series.values() for v in values]),
                },
            }
        )
    return figures


def _kib(n: int | None) -> float | None:
    return None if n is None else round(n / 1024, 2)


def _score(variant: VariantView, module: ModuleView) -> dict[str, Any] | None:
    # The variant's score in the runtime the module was compiled for: what that board would get.
    return variant.metrics.get(module.metric_runtime)


def board_figure(model: ModelDetail) -> dict[str, Any] | None:
    """One point per variant and board it was compiled for: the memory the module needs across, the
    score measured in that module's runtime up, and the marker saying whether it fits the board. The
    buttons switch the axis between RAM and flash; the dashed line is the float model's score. None
    when no module has a score to plot (nothing compiled yet, or only for runtimes that cannot run it).
    """
    variants = {v.id: v for v in model.variants}
    points = [
        (variants[variant_id], module, score)
        for (variant_id, _), module in sorted(_latest_modules(model).items(), key=lambda e: e[0][1])
        if variant_id in variants and (score := _score(variants[variant_id], module)) is not None
    ]
    if not points:
        return None
    name = points[0][2]["name"]
    labelled = len(points) <= _LABELLED_POINTS
    traces, flash = [], []
    # An open circle around a cross stays readable where a fitting and a refused module coincide.
    for fits, label, marker, position in (
        (
            True,
            "fits",
            {"symbol": "circle-open", "size": 16, "line": {"width": 2}, "color": "#2e7d32"},
            "top",
        ),
        (False, "does not fit", {"symbol": "x", "size": 10, "color": "#c62828"}, "bottom"),
    ):
        chosen = [(v, m, s) for v, m, s in points if m.fits is fits]
        flash.append([_kib(m.flash_bytes) for _, m, _ in chosen])
        traces.append(
            {
                "type": "scatter",
                "mode": "markers+text" if labelled else "markers",
                "name": label,
                "x": [_kib(m.ram_bytes) for _, m, _ in chosen],
                "y": [s["value"] for _, _, s in chosen],
                "text": [f"{v.quantization} · {m.board}" for v, m, _ in chosen],
                "customdata": [m.runtime for _, m, _ in chosen],
                "textposition": f"{position} center",
                "hovertemplate": f"%{{text}} (%{{customdata}})<br>%{{x}} KiB<br>{name} %{{y}}<extra></extra>",
                "marker": marker,
            }
        )
    ram = [trace["x"] for trace in traces]
    layout: dict[str, Any] = {
        **_LAYOUT,
        "title": {"text": "Variants across boards: score in each board's runtime against the memory needed"},
        "xaxis": {"title": {"text": _RAM_AXIS}, "rangemode": "tozero"},
        "yaxis": score_axis(name, [s["value"] for _, _, s in points] + [_value(model.float_metric, name)]),
        "updatemenus": [
            {
                "type": "buttons",
                "direction": "right",
                "x": 1,
                "xanchor": "right",
                "y": 1.18,
                "buttons": [
                    {
                        "label": "RAM",
                        "method": "update",
                        "args": [{"x": ram}, {"xaxis.title.text": _RAM_AXIS}],
                    },
                    {
                        "label": "flash",
                        "method": "update",
                        "args": [{"x": flash}, {"xaxis.title.text": _FLASH_AXIS}],
                    },
                ],
            }
        ],
    }
    if model.float_metric and model.float_metric["name"] == name:
        value = model.float_metric["value"]
        line = {"color": "#607d8b", "dash": "dash"}
        layout["shapes"] = [
            {"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": value, "y1": value, "line": line}
        ]
        layout["annotations"] = [
            {"xref": "paper", "x": 0, "xanchor": "left", "y": value, "yanchor": "bottom", "showarrow": False,
             "text": "float model", "font": {"color": "#607d8b"}}
        ]  # fmt: skip
    return {"data": traces, "layout": layout}


def confusion_table(matrix: ConfusionMatrix) -> list[dict[str, Any]]:
    """A row per true class with its counts per predicted class, each shaded (``alpha``) by its share
    of the largest count so the classes that mix stand out."""
    top = max((n for row in matrix.counts for n in row), default=0) or 1
    return [
        {
            "label": label,
            "cells": [
                {
                    "predicted": predicted,
                    "count": n,
                    "alpha": round(0.6 * n / top, 2),
                    "hit": label == predicted,
                }
                for predicted, n in zip(matrix.labels, row, strict=True)
            ],
        }
        for label, row in zip(matrix.labels, matrix.counts, strict=True)
    ]

"""What the Training pages show, worked out from the job and run views the services return.

Pure functions over plain dicts: learning curves as Plotly figure dicts, one run's or several runs'
overlaid for comparison; the recipe as rows; a warning when a test score rests on too few samples to
be read as a number; and the links a finished job gives to the run and model it produced.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tinymlaas.formatting import fmt_metric
from tinymlaas.jobs.states import JobState

__all__ = [
    "FEW_TEST_SAMPLES",
    "JOB_STYLE",
    "WIDE_INTERVAL_POINTS",
    "comparison",
    "curve_figures",
    "fmt_metric",
    "job_outcome",
    "recipe_rows",
    "score_warning",
]

JOB_STYLE = {JobState.SUCCEEDED.value: "ok", JobState.FAILED.value: "bad", JobState.CANCELLED.value: "muted"}
"""The CSS class a job's state is shown in; states not named here are shown plain."""

FEW_TEST_SAMPLES = 30
"""Below this many test samples a score moves by whole points when one sample flips: warned about."""
WIDE_INTERVAL_POINTS = 20.0
"""A 95 % interval wider than this many percentage points says too little to compare runs by: warned about."""

_LAYOUT = {"margin": {"t": 40, "r": 10, "b": 50, "l": 60}, "height": 320, "legend": {"orientation": "h"}}


def _curve(history: dict[str, list[float]], keys: list[str], title: str, y_title: str) -> dict[str, Any]:
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": "validation" if key.startswith("val_") else "train",
                "x": list(range(1, len(history[key]) + 1)),
                "y": history[key],
            }
            for key in keys
        ],
        "layout": {
            **_LAYOUT,
            "title": {"text": title},
            "xaxis": {"title": {"text": "epoch"}, "dtick": 1 if len(history[keys[0]]) <= 20 else None},
            "yaxis": {"title": {"text": y_title}},
        },
    }


def curve_figures(history: dict[str, list[float]]) -> list[dict[str, Any]]:
    """Loss, then each metric Keras recorded, train and validation on one chart each."""
    metrics = sorted({key.removeprefix("val_") for key in history} - {"loss"})
    figures = []
    for name in ["loss", *metrics]:
        keys = [key for key in (name, f"val_{name}") if history.get(key)]
        if keys:
            figures.append(_curve(history, keys, f"{name} per epoch", name))
    return figures


def job_outcome(job: dict[str, Any]) -> dict[str, Any]:
    """The run, model and module a succeeded job's result names, for links on its page."""
    result = job.get("result") or {}
    made = str(result.get("id", ""))
    run = result.get("run")
    variants = [v for v in result.get("variants", []) if isinstance(v, dict)]
    model = result.get("model") if isinstance(result.get("model"), str) else None
    if made.startswith("mdl_"):
        model = made
    elif variants and model is None:
        model = variants[0].get("model")
    return {
        "run": run["id"] if isinstance(run, dict) else None,
        "model": model,
        "module": result if made.startswith("mod_") else None,
    }


def score_warning(metric: Mapping[str, Any] | None) -> str | None:
    """Why a run's test score should not be read as a precise number, naming the samples it rests on;
    None when the test split is large enough and the interval narrow enough."""
    if not metric or metric.get("value") is None or not metric.get("n"):
        return None
    n = int(metric["n"])
    low, high = metric.get("low"), metric.get("high")
    width = None if low is None or high is None else 100 * (float(high) - float(low))
    few, wide = n < FEW_TEST_SAMPLES, width is not None and width > WIDE_INTERVAL_POINTS
    if not few and not wide:
        return None
    samples = f"{n} test sample{'' if n == 1 else 's'}"
    if width is None:
        return f"Rests on only {samples}: one sample more or less right moves this score noticeably."
    spread = f"its 95 % interval is {width:.0f} points wide ({100 * low:.1f}–{100 * high:.1f} %)"
    only = "only " if few else ""
    return f"Rests on {only}{samples}: {spread}, so runs closer than that cannot be told apart."


def recipe_rows(recipe: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The recipe as (field, value) rows, in the order it was stored, each value as people read it."""
    return [(name.replace("_", " "), _text(value)) for name, value in recipe.items()]


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, Mapping):
        return ", ".join(f"{k} {_text(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(_text(v) for v in value)
    return "—" if value is None else str(value)


def _run_name(run: Mapping[str, Any]) -> str:
    return f"{run['id']} ({run.get('arch') or 'no architecture'})"


def _overlay(runs: list[Mapping[str, Any]], key: str) -> dict[str, Any]:
    longest = max(len(run["history"].get(key, [])) for run in runs)
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": _run_name(run),
                "x": list(range(1, len(run["history"][key]) + 1)),
                "y": run["history"][key],
            }
            for run in runs
            if run["history"].get(key)
        ],
        "layout": {
            **_LAYOUT,
            "title": {"text": f"{key} per epoch"},
            "xaxis": {"title": {"text": "epoch"}, "dtick": 1 if longest <= 20 else None},
            "yaxis": {"title": {"text": key}},
        },
    }


def comparison(runs: list[Mapping[str, Any]]) -> dict[str, Any]:
    """Several runs side by side: one chart per recorded figure with a line per run (loss and val_loss
    first), and a table row per run with every recipe field as a column, the fields that differ
    between the runs marked, and the test metric with its sample count and interval."""
    keys = {key for run in runs for key, values in run["history"].items() if values}
    ordered = [k for k in ("loss", "val_loss") if k in keys] + sorted(keys - {"loss", "val_loss"})
    fields: list[str] = []
    for run in runs:
        fields += [name for name in run["recipe"] if name not in fields]
    differs = {name for name in fields if len({_text(run["recipe"].get(name)) for run in runs}) > 1}
    rows = []
    for run in runs:
        metric = run["metric"]
        low, high = metric.get("low"), metric.get("high")
        rows.append(
            {
                "run": run,
                "recipe": [_text(run["recipe"].get(name)) for name in fields],
                "value": _value_text(metric),
                "n": metric.get("n"),
                "interval": None if low is None or high is None else f"{100 * low:.1f}–{100 * high:.1f} %",
                "warning": score_warning(metric),
            }
        )
    return {
        "figures": [_overlay(list(runs), key) for key in ordered],
        "fields": [{"name": name.replace("_", " "), "differs": name in differs} for name in fields],
        "rows": rows,
        "metric_names": sorted({run["metric"]["name"] for run in runs}),
    }


def _value_text(metric: Mapping[str, Any]) -> str:
    if metric.get("value") is None:
        return "—"
    value = float(metric["value"])
    return f"{100 * value:.1f} %" if metric["name"] == "accuracy" else f"{value:.4g}"

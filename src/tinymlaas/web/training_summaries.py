"""What the Training pages show, worked out from the job and run views the services return.

Pure functions over plain dicts: learning curves and the confusion matrix as Plotly figure dicts,
and the links a finished job gives to the run and model it produced.
"""

from __future__ import annotations

from typing import Any

from tinymlaas.formatting import fmt_metric
from tinymlaas.jobs.states import JobState

__all__ = ["JOB_STYLE", "confusion_figure", "curve_figures", "fmt_metric", "job_outcome"]

JOB_STYLE = {JobState.SUCCEEDED.value: "ok", JobState.FAILED.value: "bad", JobState.CANCELLED.value: "muted"}
"""The CSS class a job's state is shown in; states not named here are shown plain."""

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


def confusion_figure(matrix: dict[str, Any]) -> dict[str, Any]:
    """A heatmap with true classes down and predicted classes across, each cell labelled with its count."""
    labels, counts = matrix["labels"], matrix["counts"]
    return {
        "data": [
            {
                "type": "heatmap",
                "z": counts,
                "x": labels,
                "y": labels,
                "text": counts,
                "texttemplate": "%{text}",
                "colorscale": "Blues",
                "reversescale": True,  # plotly.js "Blues" runs dark to light; many hits should read dark
                "hovertemplate": "true %{y}, predicted %{x}: %{z}<extra></extra>",
            }
        ],
        "layout": {
            **_LAYOUT,
            "height": max(320, 60 + 40 * len(labels)),
            "title": {"text": "Confusion matrix on the test split"},
            "xaxis": {"title": {"text": "predicted"}, "type": "category"},
            "yaxis": {"title": {"text": "true"}, "type": "category", "autorange": "reversed"},
        },
    }


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

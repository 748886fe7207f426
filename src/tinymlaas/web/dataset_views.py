"""What the dataset pages show, worked out from the dataset service's summaries and sample views.

Pure functions, so the pages stay thin and every number comes straight from the store. Charts are
Plotly figure dicts the browser draws with plotly.js.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from tinymlaas.data.types import Task
from tinymlaas.errors import InvalidInput
from tinymlaas.services.datasets import DatasetSummary
from tinymlaas.services.explorer import Exploration, Projection
from tinymlaas.services.samples import Origin, PreviewKind, SamplePreview

__all__ = [
    "PAGE_SIZE",
    "BrowserView",
    "browser_view",
    "classes",
    "dataset_row",
    "done_notice",
    "explorer_view",
    "pager",
    "projection_figure",
    "sample_cards",
]

PAGE_SIZE = 24  # samples per page of the browser: a screenful of thumbnails or small charts
_MAX_POINTS = 400  # per channel in a card's chart; longer windows (audio) are drawn every n-th value
_UNLABELLED = "(no label)"  # how samples without a label read in the projection's legend
# One colour per channel of a card's chart, named beside the chart since the chart is too small for a
# legend of its own (plotly.js's default colours, so a chart and the explorer's look alike).
_CHANNEL_COLOURS = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip


@dataclass(frozen=True)
class BrowserView:
    """Which samples the browser shows: its filters and page, as they appear in its query string."""

    label: str | None = None
    unlabelled: bool = False
    origin: Origin | None = None
    offset: int = 0

    def query(self, **changes: Any) -> str:
        values = {**self.__dict__, **changes}
        parts = []
        if values["label"]:
            parts.append(("label", values["label"]))
        if values["unlabelled"]:
            parts.append(("unlabelled", "1"))
        if values["origin"]:
            parts.append(("origin", str(values["origin"])))
        if values["offset"]:
            parts.append(("offset", str(values["offset"])))
        return urlencode(parts)


def browser_view(params: Mapping[str, str]) -> BrowserView:
    """The view a query string asks for; InvalidInput naming a value that makes no sense."""
    origin = params.get("origin") or None
    if origin is not None and origin not in {o.value for o in Origin}:
        raise InvalidInput(f"origin {origin!r} is not one of {', '.join(o.value for o in Origin)}")
    offset = params.get("offset") or "0"
    if not offset.isdigit():
        raise InvalidInput(f"offset {offset!r} must be a whole number of samples")
    return BrowserView(
        label=params.get("label") or None,
        unlabelled=params.get("unlabelled", "") not in ("", "0"),
        origin=Origin(origin) if origin else None,
        offset=int(offset),
    )


def classes(summary: DatasetSummary) -> list[str]:
    """The labels a sample may take: the declared classes, or (open classes) those in use."""
    return list(summary.spec.labels) or sorted(summary.label_counts)


def dataset_row(summary: DatasetSummary) -> dict[str, Any]:
    return {
        "name": summary.name,
        "description": summary.description,
        "task": str(summary.spec.task),
        "kind": str(summary.spec.kind),
        "shape": " × ".join(str(d) for d in summary.spec.input_shape),
        "samples": summary.sample_count,
        "labelled": summary.sample_count - summary.unlabelled,
        "unlabelled": summary.unlabelled,
        "collected": summary.collected,
        "field_labels": str(summary.field_labels),
        "classes": classes(summary),
        "label_counts": summary.label_counts,
        "snapshots": len(summary.snapshots),
        "regression": summary.spec.task is Task.REGRESSION,
        "open_classes": summary.spec.task is Task.CLASSIFICATION and not summary.spec.labels,
    }


def _channel(index: int) -> dict[str, str]:
    return {"name": f"channel {index + 1}", "colour": _CHANNEL_COLOURS[index % len(_CHANNEL_COLOURS)]}


def _mini_chart(channels: list[list[float]]) -> dict[str, Any]:
    step = max(1, -(-max(len(c) for c in channels) // _MAX_POINTS))
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "lines",
                "name": _channel(i)["name"],
                "x": list(range(0, len(values), step)),
                "y": [round(v, 5) for v in values[::step]],
                "line": {"width": 1, "color": _channel(i)["colour"]},
            }
            for i, values in enumerate(channels)
        ],
        "layout": {
            "height": 110,
            "margin": {"t": 4, "r": 4, "b": 18, "l": 30},
            "showlegend": False,
            "xaxis": {"title": {"text": ""}, "tickfont": {"size": 9}},
            "yaxis": {"tickfont": {"size": 9}},
        },
    }


def _short_number(value: Any) -> Any:
    """Floats to four significant digits, so a card shows a value and not the last bits of its float."""
    if isinstance(value, float):
        return float(f"{value:.4g}")
    if isinstance(value, list):
        return [_short_number(v) for v in value]
    return value


def _values_text(values: list[Any]) -> str:
    flat = str(_short_number(values))
    return flat if len(flat) <= 160 else flat[:157] + "…"


def sample_cards(
    samples: list[dict[str, Any]], previews: Mapping[str, SamplePreview]
) -> list[dict[str, Any]]:
    """One card per sample: its view plus how to draw it (thumbnail, small line chart, or values)."""
    cards = []
    for sample in samples:
        shown = previews.get(sample["id"])
        target = sample.get("target")
        card = {**sample, "show": "image", "figure": None, "channels": [], "values": ""}
        card["target_text"] = None if target is None else f"{target:.4g}"
        if shown is not None and shown.kind is PreviewKind.SERIES and shown.channels is not None:
            channels = [_channel(i) for i in range(len(shown.channels))]
            card.update(show="chart", figure=_mini_chart(shown.channels), channels=channels)
        elif shown is not None and shown.kind is PreviewKind.VALUES and shown.values is not None:
            card.update(show="values", values=_values_text(shown.values))
        cards.append(card)
    return cards


def done_notice(params: Mapping[str, str]) -> str | None:
    """The confirmation a form's redirect asks for (``done`` and its details in the query), or None.

    Only the known kinds are worded, and a count must be a number, so a crafted link can at most
    name a sample or label that does not exist.
    """
    done, to, sample = params.get("done"), params.get("to") or "", params.get("sample") or ""
    n = params.get("n") or ""
    count = f"{n} sample{'' if n == '1' else 's'}"
    if done == "label" and sample:
        return f"Sample {sample} labelled {to}." if to else f"Label of sample {sample} cleared."
    if done == "labels" and n.isdigit():
        return f"{count} labelled {to}." if to else f"Labels of {count} cleared."
    if done == "upload" and sample:
        return f"Sample {sample} uploaded, {'labelled ' + to if to else 'unlabelled'}."
    if done == "snapshot" and params.get("snapshot") and n.isdigit():
        return f"Snapshot {params['snapshot']} taken of {count}: training can start from it."
    return None


def pager(count: int, view: BrowserView, size: int = PAGE_SIZE) -> dict[str, Any]:
    """Where this page starts and ends, and the query strings of the pages before and after it."""
    first = min(view.offset, count)
    last = min(view.offset + size, count)
    return {
        "first": first + 1 if last > first else 0,
        "last": last,
        "count": count,
        "previous": view.query(offset=max(0, view.offset - size)) if view.offset > 0 else None,
        "next": view.query(offset=view.offset + size) if last < count else None,
    }


def _axis(number: int, share: float) -> dict[str, Any]:
    return {"title": {"text": f"component {number} ({share:.0%} of the variance)"}, "zeroline": False}


def projection_figure(projection: Projection, *, regression: bool) -> dict[str, Any]:
    """The projection as a scatter: one trace per class (or one coloured by target for regression).

    Every point carries ``[sample id, label or target]`` in ``customdata`` (an unlabelled sample's
    label is empty), shown on hover and read by the page's click handler to show that sample.
    """
    points = projection.points
    if regression:
        traces = [
            {
                "type": "scatter",
                "mode": "markers",
                "name": "samples",
                "x": [p.x for p in points],
                "y": [p.y for p in points],
                "customdata": [[p.id, "none" if p.target is None else f"{p.target:g}"] for p in points],
                "hovertemplate": "%{customdata[0]}<br>target %{customdata[1]}<extra></extra>",
                "marker": {
                    "size": 7,
                    "color": [p.target for p in points],
                    "colorscale": "Viridis",
                    "showscale": True,
                    "colorbar": {"title": {"text": "target"}},
                },
            }
        ]
    else:
        by_label: dict[str, list[Any]] = {}
        for point in points:
            by_label.setdefault(point.label or _UNLABELLED, []).append(point)
        traces = [
            {
                "type": "scatter",
                "mode": "markers",
                "name": label,
                "x": [p.x for p in members],
                "y": [p.y for p in members],
                "customdata": [[p.id, p.label or ""] for p in members],
                "hovertemplate": "%{customdata[0]}<br>%{fullData.name}<extra></extra>",
                "marker": {"size": 7, "opacity": 0.8}
                | ({"color": "#9aa0a6", "symbol": "x"} if label == _UNLABELLED else {}),
            }
            for label, members in sorted(by_label.items(), key=lambda item: (item[0] == _UNLABELLED, item[0]))
        ]
    return {
        "data": traces,
        "layout": {
            "height": 420,
            "margin": {"t": 10, "r": 10, "b": 50, "l": 60},
            "xaxis": _axis(1, projection.explained[0]),
            "yaxis": _axis(2, projection.explained[1]),
            "legend": {"title": {"text": "label"}},
            "hovermode": "closest",
        },
    }


def explorer_view(exploration: Exploration, previews: Mapping[str, SamplePreview]) -> dict[str, Any]:
    """The data explorer: each class with a few of its samples drawn as cards, and the projection."""
    projection = exploration.projection
    return {
        "total": exploration.total,
        "classes": [
            {
                "label": c.label,
                "count": c.count,
                "cards": sample_cards([{"id": i, "label": c.label} for i in c.sample_ids], previews),
            }
            for c in exploration.classes
        ],
        "projection": projection,
        "figure": None
        if projection is None
        else projection_figure(projection, regression=exploration.regression),
    }

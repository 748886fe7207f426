"""What the Fleet and Devices pages show, laid out from the services' device views and fleet health.

Pure functions, so the numbers on a page and in its JSON poll are computed once, from stored device
reports only; which devices need attention is decided by ``services.fleet_health``. Chart specs are
Plotly figure dicts (``data`` + ``layout``) the browser draws with plotly.js.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from tinymlaas.services.fleet import DeviceView, FleetGroup
from tinymlaas.services.fleet_health import FleetHealth

__all__ = [
    "activity_chart",
    "confidence_chart",
    "count_chart",
    "fleet_summary",
    "latency_chart",
]

_NO_BOARD = "unknown"  # a device that has not reported its board yet
_NO_MODEL = "none"  # a device that has not reported an installed model


def _bar(x: list[str], y: list[int | float], title: str, x_title: str, y_title: str) -> dict[str, Any]:
    return {
        "data": [{"type": "bar", "x": x, "y": y}],
        "layout": {
            "title": {"text": title},
            "xaxis": {"title": {"text": x_title}, "type": "category"},
            "yaxis": {"title": {"text": y_title}, "rangemode": "tozero"},
            "margin": {"t": 40, "r": 10, "b": 50, "l": 60},
            "height": 300,
        },
    }


def _over_time(traces: list[dict[str, Any]], title: str, y_title: str) -> dict[str, Any]:
    return {
        "data": [{"type": "scatter", "mode": "lines+markers", **trace} for trace in traces],
        "layout": {
            "title": {"text": title},
            "xaxis": {"title": {"text": "time (UTC)"}, "type": "date"},
            "yaxis": {"title": {"text": y_title}, "rangemode": "tozero"},
            "margin": {"t": 40, "r": 10, "b": 50, "l": 60},
            "height": 300,
            "showlegend": len(traces) > 1,
        },
    }


def activity_chart(health: FleetHealth) -> dict[str, Any] | None:
    """The fleet's inferences per minute as bars over the span the health covers; None before any."""
    if not health.activity:
        return None
    figure = _over_time(
        [
            {
                "x": [point.minute for point in health.activity],
                "y": [point.inferences for point in health.activity],
                "name": "fleet",
            }
        ],
        "Inferences per minute, whole fleet",
        "inferences",
    )
    figure["data"][0].update(type="bar")
    span = (datetime.fromisoformat(health.since), datetime.fromisoformat(health.at))
    figure["layout"]["xaxis"]["range"] = [f"{moment:%Y-%m-%d %H:%M:%S}" for moment in span]
    return figure


def count_chart(samples: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The device's reported inference count over time; None before it reported one."""
    points = [s for s in samples if isinstance(s["inference_count"], int)]
    if not points:
        return None
    return _over_time(
        [{"x": [p["at"] for p in points], "y": [p["inference_count"] for p in points], "name": "count"}],
        "Inference count",
        "inferences since the model started",
    )


def latency_chart(samples: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Reported mean and p95 inference latency over time; None before either was reported."""
    traces = []
    for key, name in (("mean_latency_ms", "mean"), ("p95_latency_ms", "p95")):
        points = [s for s in samples if isinstance(s[key], int | float)]
        if points:
            traces.append({"x": [p["at"] for p in points], "y": [p[key] for p in points], "name": name})
    return _over_time(traces, "Inference latency", "ms") if traces else None


def fleet_summary(
    groups_counted: list[FleetGroup], devices: list[DeviceView], health: FleetHealth
) -> dict[str, Any]:
    """Counts, devices by board and model version, alerts (active and resolved), and inference activity.

    ``groups_counted`` covers the whole fleet; ``devices`` are the ones listed (and charted) by name,
    a page of them, so a large fleet is summed in SQL rather than read row by row.
    """
    groups: Counter[tuple[str, str, bool]] = Counter()
    for group in groups_counted:
        groups[group.board or _NO_BOARD, group.model or _NO_MODEL, group.online] += group.devices
    by_board_model = [
        {
            "board": board,
            "model": model,
            "online": groups[board, model, True],
            "offline": groups[board, model, False],
            "total": groups[board, model, True] + groups[board, model, False],
        }
        for board, model in sorted({(board, model) for board, model, _ in groups})
    ]
    # Only devices that reported an inference count are charted: a missing report is not a zero.
    reported = [d for d in devices if isinstance(d.telemetry.get("inference_count"), int | float)]
    return {
        "counts": {"devices": health.devices, "online": health.online, "offline": health.offline},
        "by_board_model": by_board_model,
        "devices": [
            {
                "endpoint": d.endpoint,
                "board": d.board,
                "online": d.online,
                "model": d.model,
                "last_result": d.last_result,
                "last_seen": d.last_seen,
                "inference_count": d.telemetry.get("inference_count"),
            }
            for d in devices
        ],
        "alerts": [alert.model_dump() for alert in health.alerts],
        "alerts_total": health.alerts_total,
        "resolved": [alert.model_dump() for alert in health.resolved],
        "activity_chart": activity_chart(health),
        "inferences_chart": _bar(
            [d.endpoint for d in reported],
            [d.telemetry["inference_count"] for d in reported],
            "Inferences per device",
            "device",
            "inferences since the model started",
        ),
    }


def confidence_chart(telemetry: dict[str, Any]) -> dict[str, Any] | None:
    """The reported top-class confidence histogram (equal bins over [0, 1]); None if none was reported."""
    histogram = telemetry.get("confidence_histogram")
    if not isinstance(histogram, list) or not histogram:
        return None
    bins = len(histogram)
    labels = [f"{i / bins:.2f}–{(i + 1) / bins:.2f}" for i in range(bins)]
    return _bar(labels, histogram, "Top-class confidence", "confidence", "inferences")

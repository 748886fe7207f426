"""What the dashboard pages show, worked out from the services' device and campaign views.

Pure functions over the plain dicts ``services.fleet`` and ``services.campaigns`` return, so the
numbers on a page and in its JSON poll are computed once, from stored device reports only. Chart
specs are Plotly figure dicts (``data`` + ``layout``) the browser draws with plotly.js.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

__all__ = ["ALERT_STATES", "confidence_chart", "device_updates", "fleet_summary"]

# Installation states that need someone's attention: the device did not end up on the intended model.
ALERT_STATES = ("failed", "rolled_back", "rollback_failed")
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


def _alerts(devices: list[dict[str, Any]], campaigns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    alerts = [
        {
            "kind": installation["state"],
            "endpoint": installation["endpoint"],
            "campaign": campaign["id"],
            "detail": installation["update_result_text"] or "",
            "at": installation["finished_at"],
        }
        for campaign in campaigns
        for installation in campaign["installations"]
        if installation["state"] in ALERT_STATES
    ]
    alerts += [
        {"kind": "offline", "endpoint": d["endpoint"], "campaign": None, "detail": "", "at": d["last_seen"]}
        for d in devices
        if not d["online"]
    ]
    return alerts


def fleet_summary(devices: list[dict[str, Any]], campaigns: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts, devices by board and model version, alerts, and inferences per device."""
    groups: Counter[tuple[str, str, bool]] = Counter(
        (d["board"] or _NO_BOARD, d["model"] or _NO_MODEL, bool(d["online"])) for d in devices
    )
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
    reported = [d for d in devices if isinstance(d["telemetry"].get("inference_count"), int | float)]
    online = sum(1 for d in devices if d["online"])
    return {
        "counts": {"devices": len(devices), "online": online, "offline": len(devices) - online},
        "by_board_model": by_board_model,
        "devices": [
            {
                "endpoint": d["endpoint"],
                "board": d["board"],
                "online": d["online"],
                "model": d["model"],
                "last_result": d["last_result"],
                "last_seen": d["last_seen"],
                "inference_count": d["telemetry"].get("inference_count"),
            }
            for d in devices
        ],
        "alerts": _alerts(devices, campaigns),
        "inferences_chart": _bar(
            [d["endpoint"] for d in reported],
            [d["telemetry"]["inference_count"] for d in reported],
            "Inferences per device",
            "device",
            "inferences since the model started",
        ),
    }


def device_updates(endpoint: str, campaigns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The device's installations across campaigns, newest campaign first: its update history."""
    return [
        {"campaign": campaign["id"], "module": campaign["module"], **installation}
        for campaign in campaigns
        for installation in campaign["installations"]
        if installation["endpoint"] == endpoint
    ]


def confidence_chart(telemetry: dict[str, Any]) -> dict[str, Any] | None:
    """The reported top-class confidence histogram (equal bins over [0, 1]); None if none was reported."""
    histogram = telemetry.get("confidence_histogram")
    if not isinstance(histogram, list) or not histogram:
        return None
    bins = len(histogram)
    labels = [f"{i / bins:.2f}–{(i + 1) / bins:.2f}" for i in range(bins)]
    return _bar(labels, histogram, "Top-class confidence", "confidence", "inferences")

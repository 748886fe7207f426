"""What the dashboard pages show, worked out from the services' device and campaign views.

Pure functions over the plain dicts ``services.fleet`` and ``services.campaigns`` return, so the
numbers on a page and in its JSON poll are computed once, from stored device reports only. Chart
specs are Plotly figure dicts (``data`` + ``layout``) the browser draws with plotly.js.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

__all__ = [
    "ACTIVITY_WINDOW",
    "ALERT_STATES",
    "confidence_chart",
    "count_chart",
    "filter_choices",
    "fleet_summary",
    "inference_activity",
    "latency_chart",
]

# How far back the fleet's inference activity chart reaches.
ACTIVITY_WINDOW = timedelta(hours=1)

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


def _silent(device: dict[str, Any], now: datetime) -> bool:
    """Online on record, but not heard from within the lifetime it promised to update in."""
    if not device["online"] or not device["last_seen"] or not device["lifetime_s"]:
        return False
    return datetime.fromisoformat(device["last_seen"]) + timedelta(seconds=device["lifetime_s"]) < now


def _alerts(
    devices: list[dict[str, Any]], campaigns: list[dict[str, Any]], now: datetime
) -> list[dict[str, Any]]:
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
    alerts += [
        {
            "kind": "silent",
            "endpoint": d["endpoint"],
            "campaign": None,
            "detail": f"no word within its {d['lifetime_s']} s lifetime",
            "at": d["last_seen"],
        }
        for d in devices
        if _silent(d, now)
    ]
    return alerts


def inference_activity(
    samples: list[dict[str, Any]], since: datetime, now: datetime
) -> dict[str, Any] | None:
    """Inferences per minute across the fleet, from how each device's reported count grew.

    ``samples`` are telemetry samples oldest first, taken from ``since`` to ``now``, the span the time
    axis shows. A device's first sample in the window is only its
    baseline; a count lower than the one before means the counter restarted (a new model), so all of
    it is new. None when no device reported a count twice.
    """
    last: dict[str, int] = {}
    per_minute: Counter[str] = Counter()
    for sample in samples:
        count = sample["inference_count"]
        if not isinstance(count, int) or sample["at"] is None:
            continue
        before = last.get(sample["endpoint"])
        last[sample["endpoint"]] = count
        if before is not None:
            minute = datetime.fromisoformat(sample["at"]).strftime("%Y-%m-%d %H:%M")
            per_minute[minute] += count - before if count >= before else count
    if not per_minute:
        return None
    minutes = sorted(per_minute)
    figure = _over_time(
        [{"x": minutes, "y": [per_minute[m] for m in minutes], "name": "fleet"}],
        "Inferences per minute, whole fleet",
        "inferences",
    )
    figure["data"][0].update(type="bar")
    figure["layout"]["xaxis"]["range"] = [f"{moment:%Y-%m-%d %H:%M:%S}" for moment in (since, now)]
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
    devices: list[dict[str, Any]],
    campaigns: list[dict[str, Any]],
    samples: list[dict[str, Any]],
    now: datetime,
) -> dict[str, Any]:
    """Counts, devices by board and model version, alerts, and inference activity.

    ``samples`` are the fleet's telemetry samples since ``now - ACTIVITY_WINDOW``, oldest first.
    """
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
        "alerts": _alerts(devices, campaigns, now),
        "activity_chart": inference_activity(samples, now - ACTIVITY_WINDOW, now),
        "inferences_chart": _bar(
            [d["endpoint"] for d in reported],
            [d["telemetry"]["inference_count"] for d in reported],
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


def filter_choices(devices: list[dict[str, Any]]) -> dict[str, list[str]]:
    """The boards, tags and installed models (name:version) the fleet's devices reported, for filters."""
    return {
        "boards": sorted({d["board"] for d in devices if d["board"]}),
        "tags": sorted({tag for d in devices for tag in d["tags"]}),
        "models": sorted(
            {
                f"{d['installed']['name']}:{d['installed'].get('version', '')}".rstrip(":")
                for d in devices
                if d["installed"].get("name")
            }
        ),
    }

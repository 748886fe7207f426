"""What the Cost page shows, worked out from the query string and the cost services' plain results.

Pure functions: the query string becomes the parameters a person gave (with every unreadable one
named), a choice of measured figure becomes a baseline, and an estimate becomes two Plotly figures
and formatted numbers. The form echoes every value, so the URL of a result is the result.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DEFAULT_BOARD",
    "CostForm",
    "cumulative_chart",
    "fleet_chart",
    "form_value",
    "measured_baselines",
    "money",
    "read_form",
]

DEFAULT_BOARD = "pico"  # the board the default device cost is the list price of
# A selector -> the parameter it fills; when the selector changes, the echoed old value gives way.
_DRIVEN = {
    "board": "tinyml_device_usd",
    "energy_from": "energy_per_inference_j",
    "payload_from": "payload_bytes",
}


@dataclass(frozen=True)
class CostForm:
    """The parameters read from a query string, what was typed (to show back), and what was wrong."""

    given: dict[str, float | int] = field(default_factory=dict)
    typed: dict[str, str] = field(default_factory=dict)
    board: str | None = DEFAULT_BOARD
    energy_from: str = ""
    payload_from: str = ""
    errors: list[str] = field(default_factory=list)


def read_form(query: Mapping[str, str], parameters: list[dict[str, Any]]) -> CostForm:
    """``parameters`` are the cost defaults (name, label, value): they say what to read and as what."""
    form = CostForm(
        board=query.get("board", DEFAULT_BOARD) or None,
        energy_from=query.get("energy_from", ""),
        payload_from=query.get("payload_from", ""),
    )
    changed = {
        name
        for selector, name in _DRIVEN.items()
        if query.get(f"{selector}_was", query.get(selector)) != query.get(selector)
    }
    for parameter in parameters:
        name = parameter["name"]
        text = query.get(name, "").strip()
        if not text or name in changed:
            continue
        form.typed[name] = text
        try:
            number = float(text)
        except ValueError:
            form.errors.append(f"{parameter['label']} ({name}): {text!r} is not a number")
            continue
        whole = isinstance(parameter["value"], int)
        form.given[name] = int(number) if whole and number.is_integer() else number
    return form


def measured_baselines(
    form: CostForm, measured: Mapping[str, list[dict[str, Any]]]
) -> tuple[dict[str, tuple[float, str]], list[str]]:
    """The measured figures the form chose, as (value, source) baselines, and why any cannot be used."""
    baselines: dict[str, tuple[float, str]] = {}
    errors: list[str] = []
    for name, key in (("energy_per_inference_j", form.energy_from), ("payload_bytes", form.payload_from)):
        if not key:
            continue
        entry = next((e for e in measured[name] if e["key"] == key), None)
        if entry is None:
            errors.append(f"{key} has no stored figure for {name}; choose another")
        elif entry["value"] is None:
            errors.append(f"{key} cannot give {name}: {entry['source']}")
        else:
            baselines[name] = (entry["value"], entry["source"])
    return baselines, errors


def form_value(value: float) -> str:
    """A value as the form shows it: eight significant digits, which the model reads back as the same."""
    return f"{value:.8g}"


def money(value: float) -> str:
    """US dollars for people: whole dollars when large, two significant digits when below a cent."""
    if value == 0:
        return "$0"
    if abs(value) >= 100:
        return f"${value:,.0f}"
    if abs(value) >= 0.01:
        return f"${value:,.2f}"
    digits = 1 - math.floor(math.log10(abs(value)))
    return f"${value:.{digits}f}"


def _layout(title: str, x_title: str, y_title: str, **axes: Any) -> dict[str, Any]:
    return {
        "title": {"text": title},
        "xaxis": {"title": {"text": x_title}, **axes.get("x", {})},
        "yaxis": {"title": {"text": y_title}, **axes.get("y", {})},
        "legend": {"orientation": "h", "y": -0.25},
        "margin": {"t": 40, "r": 10, "b": 80, "l": 70},
        "height": 360,
    }


def _line(name: str, x: list[Any], y: list[float], mode: str) -> dict[str, Any]:
    return {"type": "scatter", "mode": mode, "name": name, "x": x, "y": y}


def cumulative_chart(result: Mapping[str, Any]) -> dict[str, Any]:
    """Cumulative cost of both options month by month, with the break-even month marked."""
    months = result["months"]
    layout = _layout("Cumulative cost", "month", "USD", y={"rangemode": "tozero"})
    month = result["break_even_month"]
    if month is not None and 0 < month <= months[-1]:
        layout["shapes"] = [
            {
                "type": "line",
                "x0": month,
                "x1": month,
                "yref": "paper",
                "y0": 0,
                "y1": 1,
                "line": {"dash": "dot"},
            }
        ]
        layout["annotations"] = [
            {
                "x": month,
                "yref": "paper",
                "y": 1,
                "text": f"break-even: month {month:.1f}",
                "showarrow": False,
            }
        ]
    data = [
        _line("cloud inference", months, result["cloud_cumulative_usd"], "lines"),
        _line("TinyML on device", months, result["tinyml_cumulative_usd"], "lines"),
    ]
    return {"data": data, "layout": layout}


def fleet_chart(result: Mapping[str, Any]) -> dict[str, Any]:
    """Total cost at the horizon over fleet sizes; logarithmic axes where every value allows it."""
    horizon = result["inputs"]["horizon_months"]
    totals = [*result["cloud_total_by_fleet_usd"], *result["tinyml_total_by_fleet_usd"]]
    y_axis = {"type": "log"} if min(totals) > 0 else {"rangemode": "tozero"}
    layout = _layout(
        f"Total cost after {horizon} months by fleet size", "devices", "USD", x={"type": "log"}, y=y_axis
    )
    sizes = result["fleet_sizes"]
    data = [
        _line("cloud inference", sizes, result["cloud_total_by_fleet_usd"], "lines+markers"),
        _line("TinyML on device", sizes, result["tinyml_total_by_fleet_usd"], "lines+markers"),
    ]
    return {"data": data, "layout": layout}

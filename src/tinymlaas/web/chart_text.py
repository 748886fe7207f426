"""A chart's text alternative: one sentence that says what a Plotly figure dict shows.

A screen reader cannot read a drawn plot, so every chart carries this sentence as its ``aria-label``;
it names the title and axes, and per trace how many points it has and the range they span, which is
what someone glancing at the chart takes from it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["describe"]

_LISTED = 8  # a bar trace with at most this many bars is read out bar by bar


def _title(part: Any) -> str:
    """The text of a title, given as a string, ``{"text": …}``, or an axis holding either."""
    while isinstance(part, Mapping):
        part = part.get("text", part.get("title"))
    return str(part).replace("<br>", " ") if part else ""


def _number(value: float) -> str:
    return f"{value:.3g}"


def _numbers(values: Any) -> list[float]:
    if not isinstance(values, Sequence) or isinstance(values, str):
        return []
    return [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)]


def _trace(trace: Mapping[str, Any]) -> str:
    name = str(trace.get("name") or trace.get("type") or "series")
    if trace.get("type") == "heatmap":
        rows = trace.get("z") or []
        return f"{name}: a grid of {len(rows)} by {len(rows[0]) if rows else 0} cells"
    ys, xs = _numbers(trace.get("y")), trace.get("x") or []
    if not ys:
        return f"{name}: no values"
    if trace.get("type") == "bar" and len(ys) <= _LISTED and len(xs) == len(trace.get("y") or []):
        pairs = [f"{str(x).replace('<br>', ' ')} {_number(y)}" for x, y in zip(xs, trace["y"], strict=True)
                 if isinstance(y, int | float)]  # fmt: skip
        return f"{name}: " + ", ".join(pairs)
    points = f"{len(ys)} point{'' if len(ys) == 1 else 's'}"
    if len(ys) == 1:
        return f"{name}: {points}, {_number(ys[0])}"
    span = f"lowest {_number(min(ys))}, highest {_number(max(ys))}"
    return f"{name}: {points} from {_number(ys[0])} to {_number(ys[-1])}, {span}"


def describe(figure: Mapping[str, Any] | None) -> str:
    """``Chart: loss per epoch; across epoch, up loss. train: 5 points from …; validation: …``."""
    if not figure:
        return "Chart with nothing to show"
    layout = figure.get("layout") or {}
    title = _title(layout.get("title")) or "untitled"
    axes = [
        f"{way} {text}"
        for way, key in (("across", "xaxis"), ("up", "yaxis"))
        if (text := _title(layout.get(key)))
    ]
    traces = [_trace(t) for t in figure.get("data") or [] if isinstance(t, Mapping)]
    sentence = f"Chart: {title}"
    if axes:
        sentence += "; " + ", ".join(axes)
    return sentence + ". " + ("; ".join(traces) if traces else "No data") + "."

"""Byte counts and scores as people read them, the same in the CLI's tables and on the dashboard."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["fmt_bytes", "fmt_metric"]

_NOTHING = "—"  # what a figure that was never measured reads as


def fmt_bytes(n: int | None) -> str:
    """``512 B``, ``12.3 KiB``, ``1.5 MiB``; a dash when nothing was measured."""
    if n is None:
        return _NOTHING
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def fmt_metric(metric: Mapping[str, Any] | None) -> str:
    """``accuracy 91.2 %`` or ``mse 0.0123``; a dash when nothing was measured."""
    if not metric or metric.get("value") is None:
        return _NOTHING
    value = float(metric["value"])
    if metric["name"] == "accuracy":
        return f"accuracy {value:.1%}".replace("%", " %")
    return f"{metric['name']} {value:.4g}"

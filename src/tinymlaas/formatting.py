"""Byte counts and scores as people read them, the same in the CLI's tables and on the dashboard."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["fmt_bytes", "fmt_cross_validation", "fmt_drop", "fmt_metric", "variant_label"]

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
    """``accuracy 91.2 % (95 % CI 85.0–95.3 %, n=74)`` or ``mse 0.0123 (…)``; a dash when nothing
    was measured. The interval and count appear whenever the metric carries them."""
    if not metric or metric.get("value") is None:
        return _NOTHING
    value = float(metric["value"])
    accuracy = metric["name"] == "accuracy"
    text = f"accuracy {_percent(value)}" if accuracy else f"{metric['name']} {value:.4g}"
    low, high, n = metric.get("low"), metric.get("high"), metric.get("n")
    if low is not None and high is not None and n:
        span = f"{_percent(low, unit=False)}–{_percent(high)}" if accuracy else f"{low:.4g}–{high:.4g}"
        text += f" (95 % CI {span}, n={n})"
    elif n:
        text += f" (n={n})"
    return text


def _percent(value: float, *, unit: bool = True) -> str:
    return f"{value * 100:.1f}" + (" %" if unit else "")


def variant_label(variant: Mapping[str, Any]) -> str:
    """``int8 · qat``: the quantization, and for int8 how it was reached."""
    method = variant.get("method")
    return f"{variant['quantization']} · {method}" if method else str(variant["quantization"])


def fmt_drop(variant: Mapping[str, Any]) -> str:
    """What squeezing cost against the float model: ``−0.4 pt`` of accuracy, ``+3 %`` of error."""
    drop = variant.get("drop")
    if drop is None:
        return _NOTHING
    metric = next(iter(variant.get("metrics", {}).values()), {}) or {}
    if metric.get("name", "accuracy") == "accuracy":
        return f"{round(-drop, 1) + 0.0:+.1f} pt".replace("-", "−")
    return f"{round(drop) + 0:+d} % error".replace("-", "−")


def fmt_cross_validation(figures: Mapping[str, Any]) -> str:
    """The cross-validated float and int8 figures of a model whose test split was small, as a sentence."""
    runtime, int8 = next(iter(figures["int8"].items()))
    return (
        f"The test split is small, so the int8 drop was cross-validated over {figures['folds']} folds of "
        f"all {figures['samples']} samples: float {fmt_metric(figures['float'])}, "
        f"int8 in {runtime} {fmt_metric(int8)}."
    )


def fmt_on_target(target: Mapping[str, Any] | None) -> str:
    """A module's on-target figures in one line: instructions and the board's latency estimate."""
    if not target:
        return "not measured on the target"
    text = f"{target['instructions']:,} instructions ({target['core']} in QEMU {target['machine']})"
    if target.get("latency_ms") is None:
        return f"{text}; no latency estimate for this core"
    return (
        f"{text}; ≈ {target['latency_ms']:.3g} ms at {target['clock_mhz']:g} MHz "
        f"(estimate {target['latency_low_ms']:.3g}–{target['latency_high_ms']:.3g} ms)"
    )


def fmt_target_basis(target: Mapping[str, Any]) -> str:
    """Where each on-target figure comes from, in the words a user can check."""
    exact = target["bit_exact"]
    return (
        f"Flash {fmt_bytes(target['flash_bytes'])} and static RAM {fmt_bytes(target['static_ram_bytes'])} "
        f"from the linker map of the {target['core']} build; stack {fmt_bytes(target['stack_bytes'])} "
        f"measured by painting; outputs bit-exact with TFLM on {exact['host_vectors']} vectors (host "
        f"build) and {exact['target_vectors']} (in QEMU). Latency {target.get('latency_basis', '')}."
    )

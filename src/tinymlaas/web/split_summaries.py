"""What a model page shows of its split plans, laid out from the plans the splitting service keeps.

Pure functions over ``services.splitting``'s plan dicts. A plan costs every cut of the model on a
chain device → link → node; the page shows one plan at a time (the newest unless another is asked
for) as a table of every cut and a stacked horizontal bar per cut, so the device's compute, the
transfer and the next node's compute read as one end-to-end time and the two extremes sit at either
end of the list. Whether a head fits the device decides whether a cut can be chosen at all, so a cut
that does not fit is hatched and says so in its bar's name as well as in the table. The sentence
saying where each column's figures come from is the planner's own, repeated per distinct sentence
rather than per cut, since cuts timed the same way share it.
"""

from __future__ import annotations

from typing import Any

from tinymlaas.formatting import fmt_bytes

__all__ = ["cut_chart_text", "cut_figure", "split_section"]

_PARTS = (
    ("device", "device compute", "#3f6ad8"),
    ("transfer", "transfer", "#f0a030"),
    ("remote", "remote compute", "#2e7d32"),
)
_BAR_PX = 30  # height per cut in the chart, so many cuts stay legible
_NO_FIT = " (does not fit)"
_CHOSEN = " ★ chosen"


def _chain(plan: dict[str, Any]) -> str:
    return f"{plan['device']} → {plan['link']} → {plan['remote']}"


def _ms(value: float) -> str:
    return f"{value:,.2f} ms"


def _range(figure: dict[str, Any]) -> str:
    """The figure in ms with its range when the range is wider than the figure's rounding."""
    low, high = figure["low_ms"], figure["high_ms"]
    if round(low, 2) == round(high, 2):
        return _ms(figure["ms"])
    return f"{_ms(figure['ms'])} ({low:,.2f}–{high:,.2f})"


def _extreme(index: int, plan: dict[str, Any]) -> str | None:
    if index == 0:
        return f"everything on {plan['remote']}"
    if index == plan["operators"]:
        return f"everything on {plan['device']}"
    return None


def _bar_name(candidate: dict[str, Any], chosen: int | None) -> str:
    name = f"cut {candidate['index']}"
    if candidate["index"] == chosen:
        name += _CHOSEN
    if not candidate["fits"]:
        name += _NO_FIT
    return name


def _row(candidate: dict[str, Any], plan: dict[str, Any]) -> dict[str, Any]:
    head_flash, head_ram = candidate["head_flash_bytes"], candidate["head_ram_bytes"]
    return {
        "index": candidate["index"],
        "label": candidate["label"],
        "extreme": _extreme(candidate["index"], plan),
        "payload": f"{candidate['payload_bytes']:,} B",
        "tensor": fmt_bytes(candidate["tensor_bytes"]),
        "head_flash": fmt_bytes(head_flash) if head_flash else "—",
        "head_ram": fmt_bytes(head_ram) if head_ram else "—",
        "fits": candidate["fits"],
        "reasons": candidate["reasons"],
        "device": _range(candidate["device"]),
        "transfer": _range(candidate["transfer"]),
        "remote": _range(candidate["remote"]),
        "total": _ms(candidate["total_ms"]),
        "total_ms": candidate["total_ms"],
        "energy": _energy(candidate.get("device_energy")),
        "chosen": candidate["index"] == plan["chosen"],
    }


def _energy(energy: dict[str, Any] | None) -> str | None:
    """The device's millijoules with their range; None where the board file gives no power figures."""
    if not energy:
        return None
    return f"{energy['mj']:.3f} mJ ({energy['low_mj']:.3f}–{energy['high_mj']:.3f})"


def cut_figure(plan: dict[str, Any]) -> dict[str, Any]:
    """A stacked horizontal bar per cut, first cut at the top: device compute, transfer, remote
    compute in ms. A cut whose head does not fit the device is hatched and named so."""
    candidates = plan["candidates"]
    names = [_bar_name(c, plan["chosen"]) for c in candidates]
    patterns = ["x" if not c["fits"] else "" for c in candidates]
    traces = [
        {
            "type": "bar",
            "orientation": "h",
            "name": label,
            "y": names,
            "x": [round(c[key]["ms"], 3) for c in candidates],
            "customdata": [c["label"] for c in candidates],
            "hovertemplate": f"%{{y}}: %{{customdata}}<br>{label} %{{x:.2f}} ms<extra></extra>",
            "marker": {"color": color, "pattern": {"shape": patterns, "solidity": 0.35}},
        }
        for key, label, color in _PARTS
    ]
    return {
        "data": traces,
        "layout": {
            "barmode": "stack",
            "height": 120 + _BAR_PX * len(candidates),
            "margin": {"t": 40, "r": 10, "b": 50, "l": 10},
            "legend": {"orientation": "h", "y": -0.12, "yanchor": "top"},
            "title": {"text": f"Predicted time per cut, {_chain(plan)}"},
            "xaxis": {"title": {"text": "end-to-end time per inference (ms)"}, "rangemode": "tozero"},
            "yaxis": {"type": "category", "autorange": "reversed", "automargin": True},
        },
    }


def cut_chart_text(plan: dict[str, Any]) -> str:
    """The chart's text alternative: per cut, its three parts and the total, in the chart's order.

    The shared ``describe`` reads bars as values up a y axis; these bars lie along x, per cut."""
    parts = [
        f"{_bar_name(c, plan['chosen'])}: "
        + ", ".join(f"{label} {c[key]['ms']:.2f}" for key, label, _ in _PARTS)
        + f", total {c['total_ms']:.2f} ms"
        for c in plan["candidates"]
    ]
    return f"Chart: predicted time per cut, {_chain(plan)}, stacked bars in ms. " + "; ".join(parts) + "."


def _bases(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """Per column, each distinct sentence the planner gave for it and the cuts it covers."""
    columns = []
    energies = {c["index"]: c["device_energy"]["basis"] for c in plan["candidates"] if c.get("device_energy")}
    for key, label, _ in _PARTS:
        sentences: dict[str, list[int]] = {}
        for c in plan["candidates"]:
            sentences.setdefault(c[key]["basis"], []).append(c["index"])
        columns.append(
            {
                "column": label,
                "sentences": [
                    {"text": text, "cuts": indices, "all": len(indices) == len(plan["candidates"])}
                    for text, indices in sentences.items()
                ],
            }
        )
    if energies:
        by_text: dict[str, list[int]] = {}
        for index, text in energies.items():
            by_text.setdefault(text, []).append(index)
        columns.append(
            {
                "column": "device energy",
                "sentences": [
                    {"text": text, "cuts": indices, "all": len(indices) == len(plan["candidates"])}
                    for text, indices in by_text.items()
                ],
            }
        )
    return columns


def _accuracy(accuracy: dict[str, Any] | None) -> dict[str, Any] | None:
    if not accuracy:
        return None
    percent = accuracy["metric"] == "accuracy"

    def shown(value: float) -> str:
        return f"{100 * value:.1f} %" if percent else f"{value:.4g}"

    return {
        **accuracy,
        "split_text": shown(accuracy["split"]),
        "unsplit_text": shown(accuracy["unsplit"]),
    }


def _build(build: dict[str, Any] | None) -> dict[str, Any] | None:
    if not build:
        return None
    return {
        "cut": build["cut"],
        "label": build["label"],
        "parts": [
            {"role": role, **build[role], "size": fmt_bytes(build[role].get("bytes"))}
            for role in ("head", "tail")
            if role in build
        ],
        "accuracy": _accuracy(build.get("accuracy")),
    }


def _summary(plan: dict[str, Any]) -> dict[str, Any]:
    chosen = next((c for c in plan["candidates"] if c["index"] == plan["chosen"]), None)
    return {
        "id": plan["id"],
        "created_at": plan["created_at"],
        "chain": plan["chain"],
        "objective": plan["objective"],
        "chosen": None if chosen is None else f"cut {chosen['index']}, {_ms(chosen['total_ms'])}",
        "built": plan["build"] is not None,
    }


def split_section(plans: list[dict[str, Any]], selected: str | None = None) -> dict[str, Any] | None:
    """The plan ``selected`` names (the newest when it names none of ``plans``), laid out, with every
    plan listed to switch to; None when the model has no plan."""
    if not plans:
        return None
    plan = next((p for p in plans if p["id"] == selected), plans[0])
    chosen = next((c for c in plan["candidates"] if c["index"] == plan["chosen"]), None)
    speedup = plan.get("speedup_vs_worse_extreme")
    return {
        "plan": _summary(plan),
        "plans": [_summary(p) for p in plans],
        "device": plan["device"],
        "link": plan["link"],
        "remote": plan["remote"],
        "operators": plan["operators"],
        "rows": [_row(c, plan) for c in plan["candidates"]],
        "chosen": None if chosen is None else _row(chosen, plan),
        "speedup": None if not speedup else f"{speedup:.2f}×",
        "figure": cut_figure(plan),
        "figure_text": cut_chart_text(plan),
        "bases": _bases(plan),
        "notes": plan["notes"],
        "skipped": plan["skipped"],
        "build": _build(plan["build"]),
    }

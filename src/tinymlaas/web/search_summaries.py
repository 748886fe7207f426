"""What the Search pages show of a model search, laid out from the search service's views.

Pure functions over ``services.search``'s dicts and the boards' catalog entries. Per board the page
draws two scatters, accuracy against RAM and against latency, with every measured trial: the ones
within the budget there as filled circles, the ones over it as grey crosses, so a dense front stays
readable beside a cloud of misses. The front's points are joined by a step line (the best accuracy
reachable at each cost) and labelled with the model each was stored as; the budget's effective limit
on the board (the smaller of the budget and what the board leaves for a model) is a dashed vertical
line. Hover text carries the config, the accuracy's interval and sample count, and where the figures
come from, since a latency from QEMU instruction counts and one from a MAC estimate differ in trust.
"""

from __future__ import annotations

from typing import Any

from tinymlaas.catalog.board import Board
from tinymlaas.formatting import fmt_bytes
from tinymlaas.training.search_space import Budget, describe

__all__ = [
    "board_sections",
    "budget_text",
    "closest_trial",
    "progress",
    "ram_basis",
    "search_row",
    "trial_problems",
]

_WITHIN = "#2e7d32"
_OVER = "#9e9e9e"
_FRONT = "#3f6ad8"
_BUDGET = "#c62828"
_AXES = {
    "ram": ("RAM (KiB)", "ram_bytes"),
    "latency": ("latency per inference (ms)", "latency_ms"),
}


# A budget more than this many times the costliest trial is named at the chart's edge, not drawn.
_BUDGET_OFF_CHART = 3


def budget_text(budget: dict[str, Any]) -> str:
    """``RAM ≤ 64.0 KiB, flash ≤ 256.0 KiB, latency ≤ 50 ms``; what a search with no budget held to."""
    parts = []
    if budget.get("max_ram"):
        parts.append(f"RAM ≤ {fmt_bytes(budget['max_ram'])}")
    if budget.get("max_flash"):
        parts.append(f"flash ≤ {fmt_bytes(budget['max_flash'])}")
    if budget.get("max_latency_ms"):
        parts.append(f"latency ≤ {budget['max_latency_ms']:g} ms")
    return ", ".join(parts) if parts else "each board's own usable RAM and flash"


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f} %"


def _accuracy(metric: dict[str, Any]) -> str:
    """``81.7 % ± 9.6`` (half the 95 % interval's width, in points) or the bare value."""
    if metric.get("name", "accuracy") != "accuracy":
        return f"{metric['name']} {metric['value']:.4g}"
    low, high = metric.get("low"), metric.get("high")
    if low is None or high is None:
        return _percent(metric["value"])
    return f"{100 * metric['value']:.1f} % ± {100 * (high - low) / 2:.1f}"


def _interval(metric: dict[str, Any]) -> str:
    low, high = metric.get("low"), metric.get("high")
    if low is None or high is None:
        return "no interval"
    return f"95 % CI {_percent(low)}–{_percent(high)}"


def search_row(search: dict[str, Any]) -> dict[str, Any]:
    """One line of the list of searches."""
    counts = search["summary"].get("counts", {})
    best = search.get("best")
    return {
        "id": search["id"],
        "dataset": search["dataset"],
        "arch": search["arch"],
        "boards": ", ".join(search["boards"]),
        "budget": budget_text(search["budget"]),
        "state": search["state"],
        "planned": search["trials_planned"],
        "measured": counts.get("measured"),
        "pruned": counts.get("pruned"),
        "failed": counts.get("failed"),
        "best": None
        if best is None
        else {
            "accuracy": _accuracy(best["accuracy"]),
            "n": best["accuracy"].get("n"),
            "trial": best["trial"],
            "boards": ", ".join(best["boards"]),
        },
        "nothing_fit": bool(search["summary"].get("sentence")),
        "created_at": search["created_at"],
    }


def ram_basis(figures: dict[str, Any]) -> str:
    """Where a trial's RAM and flash on a board come from."""
    if figures.get("runtime") == "native":
        return "native module as linked (flash) and measured in QEMU (static RAM + painted stack)"
    runtime = figures.get("runtime", "the interpreter")
    return f"fit check: the arena measured in TFLM + {runtime}'s footprint from the catalog"


def _short_basis(basis: str) -> str:
    """The kind of a latency figure: QEMU instruction counts, a MAC estimate or a host timing."""
    if "QEMU" in basis:
        return "QEMU instruction counts"
    if "MAC" in basis:
        return "MAC estimate"
    if "LiteRT" in basis:
        return "timed on this host"
    return basis.split(":")[0]


def _hover(trial: dict[str, Any], figures: dict[str, Any], model: dict[str, Any] | None) -> str:
    metric = trial["accuracy"]
    lines = [
        f"trial {trial['trial']}: {describe(trial['config'])}",
        f"accuracy {_percent(metric['value'])} ({_interval(metric)}, n={metric.get('n') or '?'})",
        f"RAM {fmt_bytes(figures['ram_bytes'])}, flash {fmt_bytes(figures['flash_bytes'])}",
        ram_basis(figures),
    ]
    if figures.get("latency_ms") is not None:
        lines.append(f"latency {figures['latency_ms']:.3g} ms ({_short_basis(figures['latency_basis'])})")
    lines.append(
        "within budget" if figures["within_budget"] else "over budget: " + "; ".join(figures["over"])
    )
    if model:
        lines.append(f"stored as {model['name']}:{model['version']}")
    return "<br>".join(lines)


def _x(figures: dict[str, Any], key: str) -> float | None:
    value = figures.get(key)
    if value is None:
        return None
    return round(value / 1024, 3) if key == "ram_bytes" else round(float(value), 4)


def _y(trial: dict[str, Any]) -> float:
    return round(100 * trial["accuracy"]["value"], 2)


def _scatter(
    search: dict[str, Any], board: str, axis: str, limit: float | None, samples: str
) -> dict[str, Any]:
    title, key = _AXES[axis]
    front = search["fronts"].get(board, {})
    models = front.get("models", {})
    measured = [
        t for t in search["trials"] if t["state"] == "measured" and _x(t["boards"][board], key) is not None
    ]
    traces = []
    for within, name, color, symbol in (
        (True, "within budget", _WITHIN, "circle"),
        (False, "over budget", _OVER, "x"),
    ):
        shown = [t for t in measured if t["boards"][board]["within_budget"] is within]
        traces.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": f"{name} ({len(shown)})",
                "x": [_x(t["boards"][board], key) for t in shown],
                "y": [_y(t) for t in shown],
                "hovertext": [_hover(t, t["boards"][board], models.get(str(t["trial"]))) for t in shown],
                "hovertemplate": "%{hovertext}<extra></extra>",
                "marker": {"color": color, "symbol": symbol, "size": 9},
            }
        )
    trials = {t["trial"]: t for t in measured}
    points = [trials[n] for n in front.get(axis, []) if n in trials]
    if points:
        traces.append(
            {
                "type": "scatter",
                "mode": "lines+markers+text",
                "name": "Pareto front",
                "x": [_x(t["boards"][board], key) for t in points],
                "y": [_y(t) for t in points],
                "text": [
                    f"{m['name']}:{m['version']}"
                    if (m := models.get(str(t["trial"])))
                    else f"trial {t['trial']}"
                    for t in points
                ],
                "textposition": "top left",
                "hovertext": [_hover(t, t["boards"][board], models.get(str(t["trial"]))) for t in points],
                "hovertemplate": "%{hovertext}<extra></extra>",
                "line": {"shape": "hv", "color": _FRONT},
                "marker": {"color": _FRONT, "size": 11, "symbol": "circle-open", "line": {"width": 2}},
            }
        )
    layout: dict[str, Any] = {
        "height": 380,
        "margin": {"t": 60, "r": 20, "b": 50, "l": 60},
        "title": {
            "text": f"Accuracy vs {axis.replace('ram', 'RAM')} on {board}<br>{samples}",
            "font": {"size": 14},
        },
        "xaxis": {"title": {"text": title}, "rangemode": "tozero"},
        "yaxis": {"title": {"text": "accuracy (%)"}},
        "legend": {"orientation": "h", "y": -0.2, "yanchor": "top"},
        "shapes": [],
        "annotations": [],
    }
    if limit is not None:
        x = round(limit / 1024, 3) if key == "ram_bytes" else limit
        shown = fmt_bytes(int(limit)) if key == "ram_bytes" else f"{limit:g} ms"
        farthest = max((v for trace in traces for v in trace.get("x", ()) if v is not None), default=0)
        if farthest and x > _BUDGET_OFF_CHART * farthest:
            # A budget far beyond every trial would squeeze the trials against the axis: the chart keeps
            # to the trials and says where the budget lies.
            layout["xaxis"]["range"] = [0, farthest * 1.15]
            layout["annotations"].append(
                {
                    "x": 1,
                    "xref": "paper",
                    "yref": "paper",
                    "y": 1,
                    "text": f"budget {shown} (beyond the chart) →",
                    "showarrow": False,
                    "xanchor": "right",
                }
            )
            return {"data": traces, "layout": layout}
        layout["shapes"].append(
            {
                "type": "line",
                "x0": x,
                "x1": x,
                "yref": "paper",
                "y0": 0,
                "y1": 1,
                "line": {"color": _BUDGET, "dash": "dash"},
            }
        )
        layout["annotations"].append(
            {
                "x": x,
                "yref": "paper",
                "y": 1,
                "text": f"budget {shown}",
                "showarrow": False,
                "xanchor": "left",
            }
        )
    return {"data": traces, "layout": layout}


def _samples(search: dict[str, Any]) -> str:
    """The chart's second title line: how many trials it draws and on how many test samples."""
    measured = [t for t in search["trials"] if t["state"] == "measured"]
    counts = sorted({t["accuracy"].get("n") for t in measured if t["accuracy"].get("n")})
    return f"{len(measured)} measured trials, accuracy on n={'/'.join(map(str, counts)) or '?'} test samples"


def _source(search: dict[str, Any], board: str) -> str:
    """Where the charts' figures on ``board`` come from, each kind named once."""
    measured = [t for t in search["trials"] if t["state"] == "measured"]
    sizes = sorted({ram_basis(t["boards"][board]) for t in measured})
    latencies = sorted({_short_basis(t["boards"][board]["latency_basis"]) for t in measured})
    return (
        f"Accuracy: the int8 model in TFLM on the test split of snapshot {search['snapshot']}. "
        f"RAM and flash: {'; '.join(sizes) or '—'}. Latency: {', '.join(latencies) or '—'}."
    )


def _front_rows(search: dict[str, Any], board: str) -> list[dict[str, Any]]:
    front = search["fronts"].get(board, {})
    trials = {t["trial"]: t for t in search["trials"]}
    numbers = sorted(
        {n for n in front.get("ram", []) + front.get("latency", []) if n in trials},
        key=lambda n: trials[n]["boards"][board]["ram_bytes"],
    )
    rows = []
    for number in numbers:
        trial, figures = trials[number], trials[number]["boards"][board]
        latency = figures.get("latency_ms")
        rows.append(
            {
                "trial": number,
                "config": describe(trial["config"]),
                "accuracy": _accuracy(trial["accuracy"]),
                "interval": _interval(trial["accuracy"]),
                "n": trial["accuracy"].get("n"),
                "ram": fmt_bytes(figures["ram_bytes"]),
                "flash": fmt_bytes(figures["flash_bytes"]),
                "size_basis": ram_basis(figures),
                "latency": "—" if latency is None else f"{latency:.3g} ms",
                "latency_kind": _short_basis(figures["latency_basis"]),
                "latency_basis": figures["latency_basis"],
                "on": " + ".join(
                    name
                    for name, key in (("RAM", "ram"), ("latency", "latency"))
                    if number in front.get(key, [])
                ),
                "model": front.get("models", {}).get(str(number)),
            }
        )
    return rows


def board_sections(search: dict[str, Any], boards: dict[str, Board]) -> list[dict[str, Any]]:
    """Per board of the search: its two scatters, their text alternatives' inputs, the front's table,
    and the budget's effective limits there."""
    budget = Budget(**{k: search["budget"].get(k) for k in ("max_ram", "max_flash", "max_latency_ms")})
    sections = []
    for board in search["boards"]:
        found = boards.get(board)
        ram, flash, latency = (
            budget.limits(found.usable_ram_bytes, found.usable_flash_bytes)
            if found is not None
            else (budget.max_ram, budget.max_flash, budget.max_latency_ms)
        )
        samples = _samples(search)
        front = search["fronts"].get(board, {})
        sections.append(
            {
                "board": board,
                "limits": (
                    f"RAM ≤ {fmt_bytes(ram)}, flash ≤ {fmt_bytes(flash)}"
                    + (f", latency ≤ {latency:g} ms" if latency is not None else "")
                ),
                "figures": [
                    _scatter(search, board, axis, limit, samples)
                    for axis, limit in (("ram", ram), ("latency", latency))
                ],
                "source": _source(search, board),
                "rows": _front_rows(search, board),
                "empty": not (front.get("ram") or front.get("latency")),
            }
        )
    return sections


def trial_problems(search: dict[str, Any]) -> list[dict[str, Any]]:
    """The trials that were pruned before training or failed, with why, in trial order."""
    return [
        {
            "trial": t["trial"],
            "state": t["state"],
            "config": describe(t["config"]) if t.get("config") else "—",
            "why": t.get("reason") or t.get("error") or "no reason recorded",
        }
        for t in search["trials"]
        if t["state"] in ("pruned", "failed")
    ]


def closest_trial(search: dict[str, Any], number: int) -> dict[str, Any]:
    """One of the trials nearest the budget when none met it: its number, how it ended, its config."""
    trial = next((t for t in search["trials"] if t["trial"] == number), {})
    config = trial.get("config")
    return {"trial": number, "state": trial.get("state", "?"), "config": describe(config) if config else "—"}


def progress(job: dict[str, Any]) -> dict[str, Any]:
    """A running search job's progress as trials done of those planned (its progress is done/planned)."""
    planned = int(job["params"].get("trials", 0))
    return {
        "id": job["id"],
        "state": job["state"],
        "dataset": job["params"].get("dataset", ""),
        "boards": ", ".join(job["params"].get("boards", [])),
        "planned": planned,
        "done": round(job["progress"] * planned),
        "percent": round(job["progress"] * 100, 1),
        "message": job["message"],
        "created_at": job["created_at"],
    }

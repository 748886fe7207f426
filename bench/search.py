"""Constraint-aware model search: wall time with 1 and 2 concurrent trials, and what the search finds
under a RAM budget against the zoo's default model.

A fresh store gets the generated ``gestures`` dataset (800 windows). The same search (same seed, so
the same sampled configs) runs twice on a local Ray: ``--trials`` cnn1d configs for nano33ble within
``--max-ram``, once with 1 worker and once with 2. Each trial trains (``--epochs``, early-stopped),
converts to int8, is scored in TFLM on the test split and compiled natively and counted in QEMU for
its RAM, flash and latency. The zoo's default cnn1d (the model ``tinymlaas train`` builds) runs
through the same trial, so its figures are measured the same way. Reported: wall time of each run,
the speed-up, the best accuracy within the budget against the default model's accuracy (and
whether the default fits the budget at all), and the Pareto front of the 2-worker run.

Writes ``bench/results/search.json`` and prints a table.

    python bench/search.py [--trials 24] [--max-ram 2k] [--epochs 20]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from tinymlaas.formatting import fmt_bytes
from tinymlaas.services.context import Context
from tinymlaas.services.datasets import DatasetService
from tinymlaas.services.search import run_search
from tinymlaas.settings import Settings
from tinymlaas.training.search_space import Budget, describe, parse_bytes

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
BOARD = "nano33ble"
console = Console()


def _search(
    ctx: Context, budget: Budget, trials: int, workers: int, epochs: int, **extra: Any
) -> dict[str, Any]:
    def on_trial(done: int, total: int, trial: dict[str, Any]) -> None:
        config = describe(trial["config"]) if trial.get("config") else ""
        console.print(
            f"[dim]  {workers} worker(s): trial {done}/{total} {trial.get('state', 'failed')} {config}[/]"
        )

    started = time.perf_counter()
    result = run_search(
        ctx,
        "gestures",
        [BOARD],
        budget=budget,
        trials=trials,
        workers=workers,
        epochs=epochs,
        on_trial=on_trial,
        **extra,
    )
    result["bench_wall_s"] = time.perf_counter() - started
    return result


def _best(search: dict[str, Any]) -> dict[str, Any] | None:
    within = [t for t in search["trials"] if t["state"] == "measured" and t["boards"][BOARD]["within_budget"]]
    return max(within, key=lambda t: (t["accuracy"]["value"], -t["boards"][BOARD]["ram_bytes"]), default=None)


def _point(trial: dict[str, Any]) -> dict[str, Any]:
    figures = trial["boards"][BOARD]
    return {
        "trial": trial["trial"],
        "config": trial["config"],
        "accuracy": trial["accuracy"],
        "ram_bytes": figures["ram_bytes"],
        "flash_bytes": figures["flash_bytes"],
        "latency_ms": figures["latency_ms"],
        "latency_basis": figures["latency_basis"],
        "tflm_ram_bytes": figures.get("tflm", {}).get("ram_bytes"),
        "within_budget": figures["within_budget"],
    }


def _acc(metric: dict[str, Any]) -> str:
    low, high = metric["low"] * 100, metric["high"] * 100
    return f"{metric['value'] * 100:.1f} % ({low:.1f}–{high:.1f}, n={metric['n']})"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--max-ram", default="2k", help="RAM budget on nano33ble (bytes, 4k, 1M …)")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--out", type=Path, default=RESULTS / "search.json")
    args = parser.parse_args()
    budget = Budget(max_ram=parse_bytes(args.max_ram, what="--max-ram"))
    with tempfile.TemporaryDirectory(prefix="tinymlaas-bench-search-") as root:
        ctx = Context(Settings(data_dir=Path(root) / "data"))
        settings = ctx.settings
        DatasetService(ctx).generate("gestures", "gestures", samples=None, seed=settings.seed)
        console.print("[bold]the zoo's default cnn1d, measured as a trial[/]")
        default = _search(ctx, Budget(), 1, 1, args.epochs, space={"width": [1.0]}, configs=[{"width": 1.0}])
        runs = {}
        for workers in (1, 2):
            console.print(f"[bold]{args.trials} trials, {workers} worker(s), RAM budget {args.max_ram}[/]")
            runs[workers] = _search(ctx, budget, args.trials, workers, args.epochs)
    default_trial = default["trials"][0]
    default_ram = default_trial["boards"][BOARD]["ram_bytes"]
    walls = {w: r["bench_wall_s"] for w, r in runs.items()}
    two = runs[2]
    best = {w: _best(r) for w, r in runs.items()}
    front_numbers = two["fronts"][BOARD]["ram"]
    results = {
        "board": BOARD,
        "budget": budget.as_dict(),
        "trials": args.trials,
        "epochs": args.epochs,
        "wall_s": {str(w): s for w, s in walls.items()},
        "speedup": walls[1] / walls[2],
        "counts": {str(w): r["summary"]["counts"] for w, r in runs.items()},
        "default": {**_point(default_trial), "fits_budget": default_ram <= (budget.max_ram or default_ram)},
        "best_within_budget": {str(w): (_point(b) if b else None) for w, b in best.items()},
        "front_ram": [_point(next(t for t in two["trials"] if t["trial"] == n)) for n in front_numbers],
        "front_latency": two["fronts"][BOARD]["latency"],
        "sentence": two["summary"].get("sentence"),
        "searches": {str(w): r["id"] for w, r in runs.items()},
        "trial_records": {
            str(w): [{k: v for k, v in t.items() if k != "history"} for t in r["trials"]]
            for w, r in runs.items()
        },
    }
    RESULTS.mkdir(exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))

    table = Table(
        title=f"Search: {args.trials} cnn1d trials on gestures for {BOARD}, RAM ≤ {fmt_bytes(budget.max_ram)}"
    )
    for column in ("run", "wall s", "measured", "pruned", "failed", "best accuracy within budget", "its RAM"):
        table.add_column(column)
    for w, r in runs.items():
        counts, b = r["summary"]["counts"], best[w]
        table.add_row(
            f"{w} worker(s)",
            f"{walls[w]:.0f}",
            str(counts["measured"]),
            str(counts["pruned"]),
            str(counts["failed"]),
            _acc(b["accuracy"]) if b else "none",
            fmt_bytes(b["boards"][BOARD]["ram_bytes"]) if b else "—",
        )
    d = default_trial["boards"][BOARD]
    table.add_row(
        "zoo default",
        f"{default['bench_wall_s']:.0f}",
        "1",
        "0",
        "0",
        _acc(default_trial["accuracy"]) + ("" if results["default"]["fits_budget"] else " (over budget)"),
        fmt_bytes(d["ram_bytes"]),
    )
    console.print(table)
    front = Table(title="Pareto front, accuracy vs RAM (2-worker run)")
    for column in ("trial", "config", "accuracy", "RAM", "flash", "latency ms"):
        front.add_column(column)
    for p in results["front_ram"]:
        front.add_row(
            str(p["trial"]),
            describe(p["config"]),
            _acc(p["accuracy"]),
            fmt_bytes(p["ram_bytes"]),
            fmt_bytes(p["flash_bytes"]),
            f"{p['latency_ms']:.2f}",
        )
    console.print(front)
    console.print(f"speed-up with 2 workers: {results['speedup']:.2f}×; written to {args.out}")


if __name__ == "__main__":
    main()

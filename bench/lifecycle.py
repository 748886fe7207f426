"""Benchmark the offline lifecycle on each built-in dataset.

For every dataset: seconds per phase (snapshot, train, squeeze, compile+fit), float32 vs int8 size
and metric (int8 measured in TFLM, float32 measured in TFLM too), and the int8 tensor arena.
Writes ``bench/results/lifecycle.json`` and prints a table. Each dataset runs ``--repeats`` times in
a fresh store; the figures quoted are medians over the repeats.

    python bench/lifecycle.py [--datasets sine,gestures,digits] [--repeats 3] [--board nano33ble]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from tinymlaas.services.context import Context
from tinymlaas.services.datasets import DatasetService
from tinymlaas.services.lifecycle import run_lifecycle
from tinymlaas.settings import Settings

RESULTS = Path(__file__).parent / "results"


def _one_run(dataset: str, board: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="tinymlaas-bench-") as tmp:
        context = Context(Settings(data_dir=Path(tmp)))
        DatasetService(context).generate(dataset, dataset, samples=None, seed=context.settings.seed)
        report = run_lifecycle(context, dataset, [board])
    rows = {row["quantization"]: row for row in report["variants"]}
    return {
        "timings_s": report["timings_s"],
        "float_metric": report["float_metric"],
        "float32": {k: rows["float32"][k] for k in ("size_bytes", "arena_bytes", "metric")},
        "int8": {k: rows["int8"][k] for k in ("size_bytes", "arena_bytes", "metric")},
    }


def _median(values: list[float]) -> float:
    return float(statistics.median(values))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--datasets", default="sine,gestures,digits")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--board", default="nano33ble", help="MCU board: the metric is measured in TFLM")
    args = parser.parse_args()

    results: dict[str, Any] = {"board": args.board, "repeats": args.repeats, "datasets": {}}
    for dataset in args.datasets.split(","):
        runs = [_one_run(dataset, args.board) for _ in range(args.repeats)]
        phases = runs[0]["timings_s"].keys()
        results["datasets"][dataset] = {
            "runs": runs,
            "median": {
                "timings_s": {p: _median([r["timings_s"][p] for r in runs]) for p in phases},
                "float_metric": _median([r["float_metric"]["value"] for r in runs]),
                "metric_name": runs[0]["float_metric"]["name"],
                "float32_tflm_metric": _median([r["float32"]["metric"]["value"] for r in runs]),
                "int8_tflm_metric": _median([r["int8"]["metric"]["value"] for r in runs]),
                "float32_size_bytes": _median([r["float32"]["size_bytes"] for r in runs]),
                "int8_size_bytes": _median([r["int8"]["size_bytes"] for r in runs]),
                "int8_arena_bytes": _median([r["int8"]["arena_bytes"] for r in runs]),
            },
        }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "lifecycle.json").write_text(json.dumps(results, indent=2))

    table = Table(
        title=f"Lifecycle benchmark (medians of {args.repeats} runs, metric in TFLM on {args.board})"
    )
    for column in (
        "dataset",
        "snapshot s",
        "train s",
        "squeeze s",
        "compile s",
        "metric",
        "float",
        "f32 TFLM",
        "int8 TFLM",
        "f32 size",
        "int8 size",
        "int8/f32",
        "int8 arena",
    ):
        table.add_column(column, justify="right")
    for dataset, data in results["datasets"].items():
        m = data["median"]
        t = m["timings_s"]
        table.add_row(
            dataset,
            f"{t['snapshot']:.2f}",
            f"{t['train']:.1f}",
            f"{t['squeeze']:.1f}",
            f"{t['compile']:.2f}",
            m["metric_name"],
            f"{m['float_metric']:.4f}",
            f"{m['float32_tflm_metric']:.4f}",
            f"{m['int8_tflm_metric']:.4f}",
            f"{m['float32_size_bytes']:.0f}",
            f"{m['int8_size_bytes']:.0f}",
            f"{m['int8_size_bytes'] / m['float32_size_bytes']:.3f}",
            f"{m['int8_arena_bytes']:.0f}",
        )
    # Wide enough for every column even when the output is a file or a CI log.
    console = Console(width=160)
    console.print(table)
    console.print(f"written to {RESULTS / 'lifecycle.json'}")


if __name__ == "__main__":
    main()

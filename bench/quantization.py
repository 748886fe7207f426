"""Benchmark how much int8 costs, on every built-in data set and scikit-learn's bundled ones.

Each data set goes the way a user's would: the built-ins through their generators, scikit-learn's
iris, breast_cancer, digits (as 64-feature rows) and diabetes (regression) written to CSV and
imported; then the lifecycle (train, squeeze, compile for one MCU board). For each: the float
metric, the int8 metric measured in TFLM with its 95 % interval and sample count, how int8 was
reached (ptq or qat), the int8/float32 size ratio, whether the variant is degraded, and, where the
test split was small, the cross-validated float and int8 figures the verdict rests on.

Targets: int8 within 1 point of float on every classification set (on the cross-validated figures
where they exist); regression int8 error inside the float model's own 95 % interval; int8/float32
size at most 0.30 on non-trivial models (over 10 KiB in float32).

Writes ``bench/results/quantization.json`` and prints a table.

    python bench/quantization.py [--datasets sine,gestures,digits,iris,breast_cancer,sk_digits,diabetes]
        [--board nano33ble] [--scaling standardize]
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from tinymlaas.data.types import Task
from tinymlaas.formatting import fmt_metric
from tinymlaas.services.context import Context
from tinymlaas.services.datasets import DatasetService
from tinymlaas.services.lifecycle import run_lifecycle
from tinymlaas.settings import Settings

RESULTS = Path(__file__).parent / "results"
BUILT_IN = ("sine", "gestures", "digits")
SCIKIT_LEARN = {"iris": "load_iris", "breast_cancer": "load_breast_cancer", "sk_digits": "load_digits"}
REGRESSION = {"diabetes": "load_diabetes"}
NON_TRIVIAL_BYTES = 10 * 1024


def _write_csv(path: Path, loader: str) -> None:
    import sklearn.datasets

    data = getattr(sklearn.datasets, loader)()
    names = [f"f{i}" for i in range(data.data.shape[1])]
    regression = loader in REGRESSION.values()
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*names, "target"])
        for row, target in zip(data.data, data.target, strict=True):
            writer.writerow([*row, float(target) if regression else f"class_{target}"])


def _fill(context: Context, name: str, tmp: Path) -> None:
    service = DatasetService(context)
    if name in BUILT_IN:
        service.generate(name, name, samples=None, seed=context.settings.seed)
        return
    loader = {**SCIKIT_LEARN, **REGRESSION}[name]
    path = tmp / f"{name}.csv"
    _write_csv(path, loader)
    task = Task.REGRESSION if name in REGRESSION else Task.CLASSIFICATION
    service.import_path(name, path, label_column="target", task=task)


def _verdict(report: dict[str, Any], int8: dict[str, Any]) -> dict[str, Any]:
    """The figures the target is judged on: cross-validated where the test split was small."""
    cv = report.get("cross_validation")
    if cv and int8["method"] == cv["method"]:
        float_metric, int8_metric = cv["float"], next(iter(cv["int8"].values()))
        basis = f"{cv['folds']}-fold CV, n={cv['samples']}"
    else:
        float_metric, int8_metric = report["float_metric"], int8["metric"]
        basis = f"test split, n={int8_metric['n']}"
    if float_metric["name"] == "accuracy":
        drop = (float_metric["value"] - int8_metric["value"]) * 100
        met = drop <= 1.0
        target = f"drop {drop:.2f} pt ≤ 1"
    else:
        met = int8_metric["value"] <= float_metric["high"]
        target = f"int8 mse {int8_metric['value']:.4g} ≤ float high {float_metric['high']:.4g}"
    return {"basis": basis, "target": target, "met": met}


def _one(name: str, board: str, scaling: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="tinymlaas-bench-") as tmp:
        context = Context(Settings(data_dir=Path(tmp) / "store"))
        _fill(context, name, Path(tmp))
        DatasetService(context).set_input_scaling(name, scaling)
        started = time.perf_counter()
        report = run_lifecycle(context, name, [board])
        seconds = time.perf_counter() - started
    rows = {row["quantization"]: row for row in report["variants"]}
    int8, float32 = rows["int8"], rows["float32"]
    ratio = int8["size_bytes"] / float32["size_bytes"]
    return {
        "seconds": round(seconds, 1),
        "float_metric": report["float_metric"],
        "int8_metric": int8["metric"],
        "method": int8["method"],
        "degraded": int8["degraded"],
        "degraded_reason": int8["degraded_reason"],
        "quantization_report": int8["quantization_report"],
        "cross_validation": report.get("cross_validation"),
        "float32_size_bytes": float32["size_bytes"],
        "int8_size_bytes": int8["size_bytes"],
        "size_ratio": round(ratio, 3),
        "size_target_met": ratio <= 0.30 or float32["size_bytes"] <= NON_TRIVIAL_BYTES,
        "quality": _verdict(report, int8),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--datasets", default=",".join([*BUILT_IN, *SCIKIT_LEARN, *REGRESSION]))
    parser.add_argument("--board", default="nano33ble", help="MCU board: int8 is measured in TFLM")
    parser.add_argument("--scaling", default="standardize", choices=["standardize", "minmax", "none"])
    args = parser.parse_args()

    results: dict[str, Any] = {"board": args.board, "scaling": args.scaling, "datasets": {}}
    for name in args.datasets.split(","):
        results["datasets"][name] = _one(name, args.board, args.scaling)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"quantization-{args.scaling}.json"
    out.write_text(json.dumps(results, indent=2))

    table = Table(title=f"int8 against float on {args.board} (TFLM), input scaling {args.scaling}")
    for column in ("dataset", "float (test split)", "int8 in TFLM (test split)", "method", "judged on",
                   "target", "met", "int8/f32 size", "degraded", "s"):  # fmt: skip
        table.add_column(column)
    for name, r in results["datasets"].items():
        table.add_row(
            name,
            fmt_metric(r["float_metric"]),
            fmt_metric(r["int8_metric"]),
            r["method"],
            r["quality"]["basis"],
            r["quality"]["target"],
            "yes" if r["quality"]["met"] else "NO",
            f"{r['size_ratio']:.2f}" + ("" if r["size_target_met"] else " (NO)"),
            "yes" if r["degraded"] else "no",
            f"{r['seconds']:.0f}",
        )
    console = Console(width=240)
    console.print(table)
    console.print(f"written to {out}")


if __name__ == "__main__":
    main()

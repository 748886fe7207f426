"""Benchmark the native compiler on a Cortex-M4F in QEMU against TFLM and published MLPerf Tiny figures.

For each built-in zoo model (the zoo's choice at default width for each built-in data set's input
shape) and the four MLPerf-Tiny-shaped models (``mlperf_models.py``), with random weights: compile
to C with the native compiler, cross-build for Cortex-M4F and run seeded random int8 vectors in
QEMU mps2-an386; check every output byte against the TFLM interpreter on the same vectors; and
report flash, static RAM + stack against TFLM's minimal arena, instructions per inference, and the
latency those instructions mean on nano33ble (64 MHz) and nucleo-l4r5zi (120 MHz) with the CPI
range of ``tinymlaas/catalog/cores.toml``. MLPerf rows set the published latencies
(``mlperf_tiny.toml``) beside ours.

Targets: RAM (static + stack) at most 0.6 of the TFLM arena; KWS and VWW instruction counts
within 1.5x of the best published vendor latency x clock (instructions vs cycles: at CPI 1 that
is latency parity).

Writes ``bench/results/mcu.json`` and prints a table.

    python bench/mcu.py [--models sine,gestures,digits,kws,ic,vww,ad] [--vectors 8] [--quick]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).parent))

import mlperf_models  # a sibling script, importable once bench/ is on the path
from tinymlaas.catalog import load_catalog
from tinymlaas.catalog.cores import estimate_ms
from tinymlaas.compilers.native import compile_tflite
from tinymlaas.compilers.native.qemu import measure_on_qemu
from tinymlaas.data.generators import GENERATORS, generate
from tinymlaas.squeeze.arena import measure_arena
from tinymlaas.squeeze.convert import Quantization, convert
from tinymlaas.training import zoo

BENCH = Path(__file__).parent
RESULTS = BENCH / "results"
BOARDS = ("nano33ble", "nucleo-l4r5zi")
CORE = "cortex-m4f"
RAM_TARGET = 0.6
MLPERF_TARGET = 1.5  # KWS and VWW: instructions within 1.5x of best vendor latency x clock
MLPERF_TARGETED = ("kws", "vww")
MAX_ARENA = 2 * 1024 * 1024
SEED = 7


def _zoo_tflite(name: str) -> bytes:
    """The zoo's model for a built-in data set's shape, random weights, int8 with int8 I/O."""
    spec = generate(name, 16, seed=SEED).spec
    model = zoo.build(zoo.choose(spec), spec)
    representative = np.random.default_rng(SEED).normal(size=(32, *spec.input_shape)).astype(np.float32)
    return convert(model, Quantization.INT8, representative)


def _tflite(name: str) -> bytes:
    return mlperf_models.build_tflite(name) if name in mlperf_models.BUILDERS else _zoo_tflite(name)


def _tflm_outputs(tflite: bytes, vectors: list[bytes], arena: int) -> list[bytes]:
    from tflite_micro import runtime as tflm

    interpreter = tflm.Interpreter.from_bytes(tflite, arena_size=arena)
    shape = interpreter.get_input_details(0)["shape"]
    outputs = []
    for vector in vectors:
        interpreter.set_input(np.frombuffer(vector, dtype=np.int8).reshape(shape), 0)
        interpreter.invoke()
        outputs.append(np.asarray(interpreter.get_output(0), dtype=np.int8).tobytes())
    return outputs


def _input_bytes(tflite: bytes) -> int:
    from tflite_micro import runtime as tflm

    interpreter = tflm.Interpreter.from_bytes(tflite, arena_size=MAX_ARENA)
    return int(np.prod(interpreter.get_input_details(0)["shape"]))


def _one(name: str, count: int, published: dict[str, Any], clocks: dict[str, int]) -> dict[str, Any]:
    started = time.perf_counter()
    tflite = _tflite(name)
    arena = measure_arena(tflite, max_bytes=MAX_ARENA)
    rng = np.random.default_rng(SEED)
    size = _input_bytes(tflite)
    vectors = [rng.integers(-128, 128, size=size, dtype=np.int8).tobytes() for _ in range(count)]
    files = compile_tflite(tflite, title=name)
    measured = measure_on_qemu(files, vectors, core=CORE)
    expected = _tflm_outputs(tflite, vectors, arena.arena_bytes or MAX_ARENA)
    ram = measured.static_ram_bytes + measured.stack_bytes
    row: dict[str, Any] = {
        "tflite_bytes": len(tflite),
        "tflm_arena_bytes": arena.arena_bytes,
        "tflm_arena_error": arena.error,
        "flash_bytes": measured.flash_bytes,
        "static_ram_bytes": measured.static_ram_bytes,
        "stack_bytes": measured.stack_bytes,
        "ram_bytes": ram,
        "ram_ratio": round(ram / arena.arena_bytes, 3) if arena.arena_bytes else None,
        "instructions": measured.instructions,
        "instructions_min": measured.instructions_min,
        "instructions_max": measured.instructions_max,
        "layer_instructions": list(measured.layer_instructions),
        "vectors": measured.vectors,
        "bit_exact": list(measured.outputs) == expected,
        "mismatched_vectors": sum(a != b for a, b in zip(measured.outputs, expected, strict=True)),
        "estimate_ms": {
            board: estimate_ms(measured.instructions, CORE, clock) for board, clock in clocks.items()
        },
        "toolchain": measured.toolchain,
        "flags": measured.flags,
    }
    row["ram_target_met"] = row["ram_ratio"] is not None and row["ram_ratio"] <= RAM_TARGET
    if name in published:
        vendor = published[name]["best_vendor"]
        vendor_cycles = vendor["latency_ms"] * 1e-3 * vendor["clock_mhz"] * 1e6
        row["published"] = published[name]
        row["instructions_vs_vendor_cycles"] = round(measured.instructions / vendor_cycles, 3)
        if name in MLPERF_TARGETED:
            row["mlperf_target_met"] = row["instructions_vs_vendor_cycles"] <= MLPERF_TARGET
    row["seconds"] = round(time.perf_counter() - started, 1)
    return row


def _ms(estimate: tuple[float, float, float] | None) -> str:
    if estimate is None:
        return "no estimate"
    mid, low, high = estimate
    return f"{mid:.1f} ({low:.1f}–{high:.1f})"


def _print(results: dict[str, Any]) -> None:
    table = Table(title=f"native C on {CORE} in QEMU, against TFLM and published MLPerf Tiny latencies")
    for column in ("model", ".tflite", "TFLM arena", "flash", "RAM+stack", "RAM/arena", "bit-exact",
                   "instr/inf", *(f"ms {b}" for b in BOARDS), "published ref / best (ms)",
                   "instr / best cycles"):  # fmt: skip
        table.add_column(column)
    for name, r in results["models"].items():
        if "error" in r:
            table.add_row(name, *(["-"] * 11), r["error"][:60])
            continue
        published = r.get("published")
        ratio = r.get("instructions_vs_vendor_cycles")
        verdict = "" if "mlperf_target_met" not in r else (" ok" if r["mlperf_target_met"] else " (NO)")
        table.add_row(
            name,
            f"{r['tflite_bytes']:,}",
            f"{r['tflm_arena_bytes']:,}" if r["tflm_arena_bytes"] else "failed",
            f"{r['flash_bytes']:,}",
            f"{r['static_ram_bytes']:,}+{r['stack_bytes']:,}",
            "-"
            if r["ram_ratio"] is None
            else f"{r['ram_ratio']:.2f}" + ("" if r["ram_target_met"] else " (NO)"),
            "yes" if r["bit_exact"] else f"NO ({r['mismatched_vectors']}/{r['vectors']})",
            f"{r['instructions']:,}",
            *(_ms(r["estimate_ms"][b]) for b in BOARDS),
            ""
            if published is None
            else (f"{published['reference']['latency_ms']:g} / {published['best_vendor']['latency_ms']:g}"),
            "" if ratio is None else f"{ratio:.2f}{verdict}",
        )
    console = Console(width=260)
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", default=",".join([*GENERATORS, *mlperf_models.BUILDERS]))
    parser.add_argument("--vectors", type=int, default=8, help="random int8 inputs per model")
    parser.add_argument("--quick", action="store_true", help="2 vectors per model")
    args = parser.parse_args()
    count = 2 if args.quick else args.vectors

    catalog = load_catalog()
    clocks = {board: catalog.board(board).clock_mhz for board in BOARDS}
    published = tomllib.loads((BENCH / "mlperf_tiny.toml").read_text())
    results: dict[str, Any] = {"core": CORE, "vectors": count, "clocks_mhz": clocks, "models": {}}
    for name in args.models.split(","):
        try:
            results["models"][name] = _one(name, count, published, clocks)
        except Exception as exc:  # one model failing must not hide the others' figures
            results["models"][name] = {"error": f"{type(exc).__name__}: {exc}"}
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "mcu.json"
    out.write_text(json.dumps(results, indent=2))
    _print(results)
    Console().print(f"written to {out}")


if __name__ == "__main__":
    main()

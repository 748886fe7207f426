"""The CTO's automated dry-run: snapshot -> train -> squeeze -> compile and fit for every board.

It composes the same services the single-step commands use, so a dry-run proves exactly the path
a user would take by hand.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from enum import Enum
from typing import Any

from tinymlaas.catalog.board import Board
from tinymlaas.errors import InvalidInput
from tinymlaas.services.compiling import compile_module
from tinymlaas.services.context import Context
from tinymlaas.services.datasets import DatasetService
from tinymlaas.services.models import show_model
from tinymlaas.services.squeezing import squeeze_model
from tinymlaas.services.training import train_model
from tinymlaas.squeeze.variants import Progress, no_progress
from tinymlaas.training.trainer import EpochCallback

__all__ = ["LifecyclePhase", "PhaseCallback", "run_lifecycle"]

NATIVE = "native"  # the runtime whose modules are built and measured for a board's own core


class LifecyclePhase(Enum):
    """The lifecycle's phases, in the order it runs them; a single-step job runs one of them."""

    SNAPSHOT = "snapshot"
    TRAIN = "train"
    SQUEEZE = "squeeze"
    COMPILE = "compile"


PhaseCallback = Callable[[LifecyclePhase], None]


def _compilations(
    boards: Sequence[Board], variants: Sequence[dict[str, Any]]
) -> Iterator[tuple[Board, dict[str, Any], str | None]]:
    """(board, variant, runtime) to compile: each variant for the board's first runtime, and the int8
    variant once more as a native module where the board's core runs one, for on-target figures."""
    for board in boards:
        for variant in variants:
            yield board, variant, None
            if variant["quantization"] == "int8" and NATIVE in board.runtimes[1:]:
                yield board, variant, NATIVE


def run_lifecycle(
    ctx: Context,
    dataset: str,
    boards: Sequence[str],
    *,
    arch: str | None = None,
    epochs: int | None = None,
    seed: int | None = None,
    on_epoch: EpochCallback | None = None,
    progress: Progress = no_progress,
    on_phase: PhaseCallback | None = None,
) -> dict[str, Any]:
    """Run the offline lifecycle; returns the report documented for ``lifecycle run --json``.

    ``on_phase`` is told as each phase starts, for a caller that records phases as data; without it
    the start of a phase is a progress line ("train …").
    """
    if not boards:
        raise InvalidInput("give at least one board (see 'tinymlaas boards list')")
    board_profiles = [ctx.catalog.board(b) for b in boards]  # unknown boards fail before any work
    timings: dict[str, float] = {}

    announce = on_phase or (lambda started: progress(f"{started.value} …"))

    @contextmanager
    def phase(which: LifecyclePhase) -> Iterator[None]:
        announce(which)
        started = time.perf_counter()
        yield
        timings[which.value] = round(time.perf_counter() - started, 3)

    with phase(LifecyclePhase.SNAPSHOT):
        snapshot = DatasetService(ctx).snapshot(dataset)
    with phase(LifecyclePhase.TRAIN):
        model = train_model(
            ctx, dataset, snapshot=snapshot, arch=arch, epochs=epochs, seed=seed, on_epoch=on_epoch
        )
    with phase(LifecyclePhase.SQUEEZE):
        variants = squeeze_model(ctx, model["id"], progress=progress)
    rows = []
    with phase(LifecyclePhase.COMPILE):
        for board, variant, runtime in _compilations(board_profiles, variants):
            module = compile_module(ctx, variant["id"], board.id, runtime=runtime, progress=progress)
            metric = variant["metrics"].get(module["metric_runtime"])
            rows.append(
                {
                    "board": board.id,
                    "quantization": variant["quantization"],
                    "runtime": module["runtime"],
                    "module": module["id"],
                    "variant": variant["id"],
                    "size_bytes": variant["size_bytes"],
                    "arena_bytes": variant["arena_bytes"],
                    "flash_bytes": module["flash_bytes"],
                    "ram_bytes": module["ram_bytes"],
                    "metric": metric,
                    "method": variant["method"],
                    "degraded": variant["degraded"],
                    "degraded_reason": variant["degraded_reason"],
                    "drop": variant["drop"],
                    "quality_basis": variant["quality_basis"],
                    "quantization_report": variant["quantization_report"],
                    "fits": module["fits"],
                    "reasons": module["reasons"],
                    "on_target": module["on_target"],
                }
            )
    return {
        "dataset": dataset,
        "snapshot": snapshot,
        "model": model["id"],
        "arch": model["arch"],
        "float_metric": model["float_metric"],
        "cross_validation": show_model(ctx, model["id"]).cross_validation,
        "input_scaling": model["input_scaling"],
        "variants": rows,
        "timings_s": timings,
    }

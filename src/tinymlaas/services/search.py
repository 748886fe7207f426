"""Constraint-aware model search: N Ray Tune trials over a zoo family's hyperparameters, each held to
a RAM, flash and latency budget on one or more boards.

A trial builds its Keras model from the sampled config and first estimates what an int8 build needs
(``training.search_space.Estimate``, a lower bound): when no chosen board could hold it within the
budget it is pruned there, before any training. Otherwise it trains, converts to int8, is scored in
TFLM on the snapshot's test split with its measured arena, and gets its figures per board: flash and
RAM of the module the board would run (the native module as linked and measured in QEMU where the
native compiler builds for the board's core, else the fit check on the TFLM arena), and latency from
QEMU instruction counts, or a labelled MAC estimate where there are none. Trials get the data from
Ray's object store (``tune.with_parameters``) and write their Keras and int8 bytes to the blob store,
so the front's models are stored without training again. A trial that raises or whose worker dies
is recorded failed with its error; the search goes on.

The Pareto front (accuracy against RAM, and against latency) is taken per board among the trials
within budget there; its models are stored as ordinary models with one int8 variant each, so any
point compiles and deploys with the usual commands.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import socket
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from tinymlaas.catalog.board import Board, BoardClass
from tinymlaas.catalog.cores import core_timing, estimate_ms
from tinymlaas.catalog.loader import load_catalog
from tinymlaas.compilers.fit import check_fit
from tinymlaas.compilers.native import compile_tflite
from tinymlaas.compilers.native.armbuild import CORES
from tinymlaas.compilers.native.qemu import measure_on_qemu, toolchain_problem
from tinymlaas.data.scaling import InputScaling
from tinymlaas.data.types import Arrays, DatasetSpec
from tinymlaas.errors import InvalidInput, NotFound, RuntimeFailure, TinymlaasError
from tinymlaas.services import _keras_io
from tinymlaas.services.context import Context, new_id
from tinymlaas.services.datasets import DatasetService, spec_to_dict
from tinymlaas.services.squeezing import store_variant
from tinymlaas.settings import Settings
from tinymlaas.squeeze.convert import Quantization, convert
from tinymlaas.squeeze.runtimes import litert_host_times_ms
from tinymlaas.squeeze.variants import Evaluation, assess
from tinymlaas.storage.repositories import ModelRepository, SearchRepository
from tinymlaas.storage.tables import ModelRow, SearchRow, TrainingRunRow
from tinymlaas.training import zoo
from tinymlaas.training.search_space import (
    MAX_EPOCHS,
    MAX_TRIALS,
    MAX_WORKERS,
    Budget,
    Estimate,
    Point,
    SearchState,
    TrialState,
    check_space,
    closest,
    describe,
    distinct_configs,
    estimate,
    excess,
    largest_activation_pair,
    pareto_front,
    split_config,
)
from tinymlaas.training.trainer import Recipe, scaled, train

if TYPE_CHECKING:
    import keras

__all__ = ["TrialCallback", "check_search", "count_searches", "list_searches", "run_search", "show_search"]

# A search trains many models: fewer epochs than the trainer's default, with early stopping.
DEFAULT_EPOCHS = 20
PATIENCE = 5
QEMU_VECTORS = 2  # random int8 inputs counted in QEMU; the count barely depends on the data
HOST_RUNS = 15  # LiteRT runs on this host for a Linux board's latency; the median is kept
# Cycles per MAC for the fastest int8 kernels on a microcontroller (the low end of the planner's
# range): the pre-training latency bound, and the MAC estimate with its range for a core that the
# native compiler does not build for.
CYCLES_PER_MAC = 4.0
CYCLES_PER_MAC_RANGE = (1.0, 10.0)
CLOSEST = 3
RAY_CONNECT_TIMEOUT_S = 5.0

# (trials finished, trials planned, that trial's record)
TrialCallback = Callable[[int, int, dict[str, Any]], None]


def _no_trials(_done: int, _total: int, _trial: dict[str, Any]) -> None:
    """Callback for callers that show no progress."""


@dataclass(frozen=True)
class _Payload:
    """What every trial needs, put once in Ray's object store."""

    spec: DatasetSpec
    arrays: Arrays
    arch: str
    scaling: str
    boards: tuple[str, ...]
    budget: Budget
    epochs: int
    seed: int
    settings: Settings


# ---------------------------------------------------------------------------------------------- trial


def _cpus() -> int:
    """The CPUs Ray gave this trial, so concurrent trials do not fight over every core."""
    with contextlib.suppress(Exception):
        from ray import tune

        resources = tune.get_context().get_trial_resources()
        return max(1, int(resources.required_resources.get("CPU", 1)))
    return 1


def _pin_threads(cpus: int) -> None:
    import tensorflow as tf

    # Only possible before TensorFlow's first operation in this process; a reused worker keeps its own.
    with contextlib.suppress(RuntimeError):
        tf.config.threading.set_intra_op_parallelism_threads(cpus)
        tf.config.threading.set_inter_op_parallelism_threads(cpus)


def _elements(shape: Any) -> int:
    return math.prod(int(d) for d in tuple(shape)[1:] if d is not None)


def _layer_macs(layer: Any) -> int:
    """Multiply-accumulates of one Keras layer per inference (convolutions and dense layers)."""
    kind = type(layer).__name__
    out = _elements(layer.output.shape)
    if kind in ("Conv1D", "Conv2D"):
        kernel = math.prod(layer.kernel_size)
        return out * kernel * int(layer.input.shape[-1])
    if kind == "DepthwiseConv2D":
        return out * math.prod(layer.kernel_size)
    if kind == "Dense":
        return out * int(layer.input.shape[-1])
    return 0


def _shape_figures(model: keras.Model) -> tuple[int, int, int]:
    """(weights, largest activation pair in elements, MACs) from the Keras graph alone."""
    pairs, macs = [], 0
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        pairs.append((_elements(layer.input.shape), _elements(layer.output.shape)))
        macs += _layer_macs(layer)
    return int(model.count_params()), largest_activation_pair(pairs), macs


def _builds_native(board: Board) -> bool:
    """Whether the native compiler builds for the board, so its figures are measured in QEMU."""
    return board.board_class is BoardClass.MCU and "native" in board.runtimes and board.core in CORES


def _estimates(model: keras.Model, boards: Sequence[Board], payload: _Payload) -> dict[str, Estimate]:
    """The lower bound per board, with the footprint of the runtime whose figures the trial reports.

    A native module's RAM is measured whole (its own state is in its static RAM), so only the
    activations count towards it; its flash still carries the runtime's code.
    """
    catalog = load_catalog(payload.settings.boards_dirs)
    params, pair, macs = _shape_figures(model)
    estimates = {}
    for board in boards:
        native = _builds_native(board) and toolchain_problem() is None
        footprint = catalog.runtime("native" if native else board.runtimes[0]).footprint_for(board.core)
        mcu = board.board_class is BoardClass.MCU
        estimates[board.id] = estimate(
            params,
            pair,
            macs,
            runtime_flash=footprint.flash_bytes,
            runtime_ram=0 if native else footprint.ram_bytes,
            clock_mhz=board.clock_mhz if mcu else None,
            cycles_per_mac=CYCLES_PER_MAC_RANGE[0],
        )
    return estimates


def _limits(board: Board, budget: Budget) -> tuple[int, int, float | None]:
    return budget.limits(board.usable_ram_bytes, board.usable_flash_bytes)


def _native(tflite: bytes, scaling: InputScaling, board: Board, input_elements: int) -> dict[str, Any]:
    """The native module built for the board's core and run in QEMU: linked flash, static RAM plus
    the painted stack, and instructions per inference × the core's cycles per instruction."""
    rng = np.random.default_rng(0)
    vectors = [rng.integers(-128, 128, input_elements, dtype=np.int8).tobytes() for _ in range(QEMU_VECTORS)]
    measured = measure_on_qemu(compile_tflite(tflite, scaling=scaling), vectors, core=board.core)
    timing = core_timing(board.core)
    figures = estimate_ms(measured.instructions, board.core, board.clock_mhz)
    if figures is None or timing is None:
        raise RuntimeFailure(f"no cycles-per-instruction figures for core {board.core!r}")
    ms, low, high = figures
    return {
        "runtime": "native",
        "flash_bytes": measured.flash_bytes,
        "ram_bytes": measured.static_ram_bytes + measured.stack_bytes,
        "latency_ms": ms,
        "latency_low": low,
        "latency_high": high,
        "latency_basis": (
            f"estimate: {measured.instructions:,} instructions counted in QEMU {measured.machine} "
            f"× {timing.cpi:g} cycles per instruction ÷ {board.clock_mhz:g} MHz"
        ),
    }


def _mac_latency(macs: int, board: Board) -> dict[str, Any]:
    per_ms = board.clock_mhz * 1e3
    low, high = CYCLES_PER_MAC_RANGE
    return {
        "latency_ms": macs * CYCLES_PER_MAC / per_ms,
        "latency_low": macs * low / per_ms,
        "latency_high": macs * high / per_ms,
        "latency_basis": (
            f"rough MAC-based estimate: {macs:,} MACs × {CYCLES_PER_MAC:g} cycles per MAC "
            f"({low:g}–{high:g}) ÷ {board.clock_mhz:g} MHz; no instruction count for {board.core}"
        ),
    }


def _host_latency(tflite: bytes, board: Board) -> dict[str, Any]:
    times = litert_host_times_ms(tflite, HOST_RUNS)
    return {
        "latency_ms": statistics.median(times),
        "latency_low": min(times),
        "latency_high": max(times),
        "latency_basis": f"measured in LiteRT on this host (median of {HOST_RUNS} runs), not on a {board.id}",
    }


def _board_figures(
    variant: Any, scaling: InputScaling, board: Board, payload: _Payload, notes: list[str]
) -> dict[str, Any]:
    """Flash, RAM and latency of the module ``board`` would run, and whether they meet the budget."""
    catalog = load_catalog(payload.settings.boards_dirs)
    figures: dict[str, Any] | None = None
    if _builds_native(board):
        problem = toolchain_problem()
        if problem is None:
            try:
                figures = _native(variant.tflite, scaling, board, math.prod(variant.info.inputs[0].shape))
            except TinymlaasError as exc:
                notes.append(f"{board.id}: the native build could not be measured ({exc.detail})")
        else:
            notes.append(f"{board.id}: {problem}")
    runtime = catalog.runtime(board.runtimes[0])
    verdict = check_fit(
        board,
        runtime,
        variant.info,
        arena_bytes=variant.arena.arena_bytes,
        runtime_error=variant.runtime_errors.get("tflm") if runtime.id == "tflm" else None,
    )
    # The interpreter's figures (measured arena + the runtime's footprint) beside the native ones.
    interpreted = {"runtime": runtime.id, "flash_bytes": verdict.flash_bytes, "ram_bytes": verdict.ram_bytes}
    if figures is None:
        timing = (
            _mac_latency(variant.info.macs, board)
            if board.board_class is BoardClass.MCU
            else _host_latency(variant.tflite, board)
        )
        figures = {**interpreted, **timing}
    else:
        figures[runtime.id] = interpreted
    over, reasons = excess(
        (figures["ram_bytes"], figures["flash_bytes"], figures["latency_ms"]), _limits(board, payload.budget)
    )
    return {**figures, "within_budget": not reasons, "excess": over, "over": reasons}


def _recipe(payload: _Payload, config: Mapping[str, Any]) -> Recipe:
    """The trainer's recipe for one trial, kept with its stored model so squeezing rebuilds the same
    architecture (quantization-aware training, cross-validation)."""
    width, hyper = split_config(payload.arch, config)
    return Recipe(
        arch=payload.arch,
        epochs=payload.epochs,
        patience=PATIENCE,
        width=width,
        seed=payload.seed,
        scaling=payload.scaling,
        hyper=hyper,
    )


def _run_trial(config: Mapping[str, Any], payload: _Payload) -> dict[str, Any]:
    """One trial, start to end; raises on any failure (the search records it and goes on)."""
    import keras

    started = time.perf_counter()
    _pin_threads(_cpus())
    catalog = load_catalog(payload.settings.boards_dirs)
    boards = [catalog.board(b) for b in payload.boards]
    width, hyper = split_config(payload.arch, config)
    keras.utils.set_random_seed(payload.seed)
    model = zoo.build(payload.arch, payload.spec, width, hyper=hyper)
    estimates = _estimates(model, boards, payload)
    record: dict[str, Any] = {
        "config": dict(config),
        "params": int(model.count_params()),
        "estimate": {board: e.as_dict() for board, e in estimates.items()},
    }
    refusals = {}
    for board in boards:
        e = estimates[board.id]
        _, reasons = excess((e.ram_bytes, e.flash_bytes, e.latency_ms), _limits(board, payload.budget))
        if reasons:
            refusals[board.id] = reasons
    if len(refusals) == len(boards):
        reason = "; ".join(f"{b}: estimated {', '.join(r)}" for b, r in refusals.items())
        return {
            **record,
            "state": TrialState.PRUNED.value,
            "reason": reason,
            "train_s": 0.0,
            "total_s": time.perf_counter() - started,
        }
    trained_at = time.perf_counter()
    trained = train(payload.spec, payload.arrays, _recipe(payload, config))
    train_s = time.perf_counter() - trained_at
    model, scaling = trained.model, trained.scaling
    tflite = convert(model, Quantization.INT8, scaled(payload.arrays, scaling).x_train)
    variant = assess(
        tflite,
        Evaluation(payload.spec.task, payload.arrays.x_test, payload.arrays.y_test),
        max_arena_bytes=payload.settings.arena_search_max_bytes,
        name=f"{payload.arch} ({describe(config)}, int8)",
        scaling=scaling,
        method="ptq",
    )
    if "tflm" not in variant.metrics:
        raise RuntimeFailure(variant.runtime_errors.get("tflm", "TFLM could not score the int8 model"))
    notes: list[str] = []
    per_board = {board.id: _board_figures(variant, scaling, board, payload, notes) for board in boards}
    blobs = Context(payload.settings).blobs
    return {
        **record,
        "state": TrialState.MEASURED.value,
        "accuracy": variant.metrics["tflm"].as_dict(),
        "float_metric": trained.test_metric.as_dict(),
        "size_bytes": variant.info.size_bytes,
        "arena_bytes": variant.arena.arena_bytes,
        "macs": variant.info.macs,
        "boards": per_board,
        "notes": notes,
        "epochs_run": trained.epochs_run,
        "history": trained.history,
        "input_scaling": scaling.as_dict(),
        "keras_blob": blobs.put(_keras_io.to_bytes(model)),
        "tflite_blob": blobs.put(tflite),
        "train_s": train_s,
        "total_s": time.perf_counter() - started,
    }


def _trainable(config: dict[str, Any], payload: _Payload) -> None:
    """The Ray Tune function trainable: one report with the whole trial record."""
    from ray import tune

    tune.report({"record": _run_trial(config, payload)})


# --------------------------------------------------------------------------------------------- driver


def _check_reachable(address: str) -> None:
    """Refuse an address nothing answers on at once: Ray itself retries an absent cluster for minutes."""
    if address == "auto":
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise InvalidInput(f"ray_address {address!r} is not host:port, ray://host:port or auto")
    try:
        socket.create_connection((host, int(port)), timeout=RAY_CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise RuntimeFailure(f"cannot reach the Ray cluster at {address!r}: {exc}") from exc


@contextlib.contextmanager
def _ray(settings: Settings, workers: int) -> Iterator[str]:
    """A Ray to run trials on: the one this process is already in, the cluster at ``ray_address``, or
    a local one started for this search with ``workers`` CPUs (and shut down after it)."""
    import ray

    if ray.is_initialized():
        yield "the Ray this process is connected to"
        return
    if settings.ray_address:
        _check_reachable(settings.ray_address)
        try:
            ray.init(address=settings.ray_address, log_to_driver=False, logging_level=logging.WARNING)
        except Exception as exc:  # Ray raises ConnectionError, RuntimeError or ValueError here
            raise RuntimeFailure(f"cannot reach the Ray cluster at {settings.ray_address!r}: {exc}") from exc
        where = f"the Ray cluster at {settings.ray_address}"
    else:
        # "local" starts a new instance even where `ray start` left a cluster this process would join.
        ray.init(
            address="local",
            num_cpus=workers,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.WARNING,
        )
        where = f"a local Ray with {workers} CPUs"
    try:
        yield where
    finally:
        ray.shutdown()


def _error_text(error: BaseException | None) -> str:
    """The last line of what a trial raised (Ray wraps it in its own traceback)."""
    text = str(error or "the trial's worker stopped").strip()
    lines = [line for line in text.splitlines() if line.strip()]
    return (lines[-1] if lines else type(error).__name__)[:1000]


def _tune(
    payload: _Payload,
    space: Mapping[str, Sequence[Any]],
    configs: Sequence[Mapping[str, Any]],
    *,
    trials: int,
    workers: int,
    on_trial: TrialCallback,
) -> list[dict[str, Any]]:
    from ray import tune
    from ray.tune.search import BasicVariantGenerator

    finished: list[int] = []

    class _Progress(tune.Callback):
        """Tells ``on_trial`` of each trial as it ends. Tune also pickles its callbacks to save the
        experiment's state; that copy is never run, so it leaves the caller's callback behind."""

        def __init__(self, listener: TrialCallback) -> None:
            self.listener = listener

        def __getstate__(self) -> dict[str, Any]:
            return {}

        def __setstate__(self, _state: dict[str, Any]) -> None:
            self.listener = _no_trials

        def _tell(self, record: dict[str, Any]) -> None:
            finished.append(1)
            self.listener(len(finished), trials, record)

        def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
            self._tell(dict((trial.last_result or {}).get("record") or {}))

        def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
            self._tell({"state": TrialState.FAILED.value, "config": dict(trial.config)})

    # Tune's console reporter would print tables over the caller's own progress.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    with tempfile.TemporaryDirectory(prefix="tinymlaas-search-") as storage:
        tuner = tune.Tuner(
            tune.with_resources(tune.with_parameters(_trainable, payload=payload), {"cpu": 1}),
            param_space={name: tune.choice(list(values)) for name, values in space.items()},
            tune_config=tune.TuneConfig(
                num_samples=trials,
                search_alg=BasicVariantGenerator(
                    points_to_evaluate=distinct_configs(space, trials, payload.seed, configs) or None,
                    max_concurrent=workers,
                    random_state=payload.seed,
                ),
                reuse_actors=True,
            ),
            run_config=tune.RunConfig(
                storage_path=storage,
                name="search",
                verbose=0,
                callbacks=[_Progress(on_trial)],
                failure_config=tune.FailureConfig(max_failures=0, fail_fast=False),
            ),
        )
        grid = tuner.fit()
        records = []
        for result in grid:
            if result.error is not None or not (result.metrics or {}).get("record"):
                records.append(
                    {
                        "state": TrialState.FAILED.value,
                        "config": dict(result.config or {}),
                        "error": _error_text(result.error),
                    }
                )
            else:
                records.append(dict(result.metrics["record"]))
    return records


def _fronts(records: list[dict[str, Any]], boards: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per board, the trial numbers on the accuracy-vs-RAM and accuracy-vs-latency fronts."""
    fronts = {}
    for board in boards:
        within = [
            r
            for r in records
            if r["state"] == TrialState.MEASURED.value and r["boards"][board]["within_budget"]
        ]
        ram = [Point(r["trial"], r["accuracy"]["value"], r["boards"][board]["ram_bytes"]) for r in within]
        latency = [
            Point(r["trial"], r["accuracy"]["value"], r["boards"][board]["latency_ms"])
            for r in within
            if r["boards"][board]["latency_ms"] is not None
        ]
        fronts[board] = {
            "ram": [p.key for p in pareto_front(ram)],
            "latency": [p.key for p in pareto_front(latency)],
        }
    return fronts


def _trial_excess(record: dict[str, Any], boards: Sequence[Board], budget: Budget) -> float | None:
    """How far a trial is from the budget on its nearest board: measured figures, else the estimate."""
    if record["state"] == TrialState.MEASURED.value:
        return min(record["boards"][b.id]["excess"] for b in boards)
    if record["state"] == TrialState.PRUNED.value:
        return min(
            excess((e["ram_bytes"], e["flash_bytes"], e["latency_ms"]), _limits(b, budget))[0]
            for b in boards
            for e in (record["estimate"][b.id],)
        )
    return None


def _summary(
    records: list[dict[str, Any]],
    fronts: dict[str, dict[str, Any]],
    boards: Sequence[Board],
    budget: Budget,
) -> dict[str, Any]:
    counts = {state.value: sum(r["state"] == state.value for r in records) for state in TrialState}
    summary: dict[str, Any] = {"counts": counts, "closest": [], "sentence": None, "notes": []}
    if any(front["ram"] or front["latency"] for front in fronts.values()):
        summary["notes"] = [
            f"nothing met the budget on {board}" for board, front in fronts.items() if not front["ram"]
        ]
        return summary
    excesses = {r["trial"]: x for r in records if (x := _trial_excess(r, boards, budget)) is not None}
    summary["closest"] = closest(excesses, CLOSEST)
    names = ", ".join(b.id for b in boards)
    if summary["closest"]:
        nearest = next(r for r in records if r["trial"] == summary["closest"][0])
        why = (
            "; ".join(f"{b}: {', '.join(f['over'])}" for b, f in nearest["boards"].items())
            if nearest["state"] == TrialState.MEASURED.value
            else nearest.get("reason", "")
        )
        summary["sentence"] = (
            f"No trial met the budget on {names}: of {len(records)} trials, "
            f"{counts['pruned']} were pruned and {counts['failed']} failed; the closest was trial "
            f"{nearest['trial']} ({describe(nearest['config'])}), {why}."
        )
    else:
        summary["sentence"] = f"No trial met the budget on {names}: all {len(records)} trials failed."
    return summary


def _store_point(
    ctx: Context, search_id: str, record: dict[str, Any], loaded: Any, payload: _Payload
) -> dict[str, Any]:
    """The trial's model as an ordinary trained model with its int8 variant, lineage naming the search."""
    scaling = InputScaling.from_dict(record["input_scaling"])
    tflite = ctx.blobs.get(record["tflite_blob"])
    variant = assess(
        tflite,
        Evaluation(loaded.spec.task, loaded.arrays.x_test, loaded.arrays.y_test),
        max_arena_bytes=ctx.settings.arena_search_max_bytes,
        name=f"{payload.arch} ({describe(record['config'])}, int8)",
        scaling=scaling,
        method="ptq",
    )
    recipe = _recipe(payload, record["config"])
    name = f"{loaded.dataset}-search"
    lineage = f"search {search_id} trial {record['trial']}: {payload.arch} {describe(record['config'])}"
    with ctx.session() as session:
        repo = ModelRepository(session)
        run = repo.add(
            TrainingRunRow(
                id=new_id("run"),
                snapshot_id=loaded.snapshot_id,
                recipe=recipe.as_dict(),
                split_counts=loaded.split_counts,
                history=record["history"],
                metric_name=record["float_metric"]["name"],
                metric_value=record["float_metric"]["value"],
                epochs_run=record["epochs_run"],
                duration_s=record["train_s"],
                confusion_matrix=None,
            )
        )
        model = repo.add(
            ModelRow(
                id=new_id("mdl"),
                name=name,
                version=repo.next_version(name, sandbox=loaded.sandbox),
                origin="trained",
                training_run_id=run.id,
                dataset_id=loaded.dataset_id,
                keras_blob=record["keras_blob"],
                arch=payload.arch,
                params=record["params"],
                spec=spec_to_dict(loaded.spec),
                float_metric=record["float_metric"],
                input_scaling=record["input_scaling"],
                source_file=lineage,
                sandbox=loaded.sandbox,
            )
        )
        model_id, version = model.id, model.version
    stored = store_variant(ctx, model_id, variant, loaded.snapshot_id)
    return {"id": model_id, "name": name, "version": version, "variant": stored["id"]}


def _view(row: SearchRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "dataset": row.dataset,
        "snapshot": row.snapshot_id,
        "arch": row.arch,
        "boards": list(row.boards),
        "budget": dict(row.budget),
        "trials_planned": row.trials_planned,
        "workers": row.workers,
        "epochs": row.epochs,
        "state": row.state,
        "trials": list(row.trials),
        "fronts": dict(row.fronts),
        "summary": dict(row.summary),
        "error": row.error,
        "created_at": row.created_at.isoformat(),
        "finished_at": row.finished_at.isoformat() if row.finished_at else None,
    }


def _check(trials: int, workers: int, epochs: int) -> None:
    if not 1 <= trials <= MAX_TRIALS:
        raise InvalidInput(f"trials must be from 1 to {MAX_TRIALS}, got {trials}")
    if not 1 <= workers <= MAX_WORKERS:
        raise InvalidInput(f"workers must be from 1 to {MAX_WORKERS}, got {workers}")
    if not 1 <= epochs <= MAX_EPOCHS:
        raise InvalidInput(f"epochs must be from 1 to {MAX_EPOCHS}, got {epochs}")


def run_search(
    ctx: Context,
    dataset: str,
    boards: Sequence[str],
    *,
    budget: Budget | None = None,
    trials: int = 24,
    workers: int | None = None,
    epochs: int | None = None,
    arch: str | None = None,
    space: Mapping[str, Sequence[Any]] | None = None,
    configs: Sequence[Mapping[str, Any]] = (),
    seed: int | None = None,
    on_trial: TrialCallback = _no_trials,
) -> dict[str, Any]:
    """Search ``trials`` configs of ``arch`` (the dataset's zoo family by default) on a fresh snapshot
    of ``dataset``, within ``budget`` on each of ``boards``; store the search and its front's models.

    ``space`` narrows the values sampled per hyperparameter; ``configs`` are tried first, as given,
    before sampling fills the rest. Returns the stored search's view (``show_search``), with each
    front point's stored model under ``fronts[board]["models"]``.
    """
    budget = budget or Budget()
    workers = workers or ctx.settings.job_workers
    seed = ctx.settings.seed if seed is None else seed
    if not boards:
        raise InvalidInput("a search needs at least one board")
    if len(boards) > 16:
        raise InvalidInput(f"a search takes at most 16 boards, got {len(boards)}")
    board_rows = [ctx.catalog.board(b) for b in dict.fromkeys(boards)]
    datasets = DatasetService(ctx)
    snapshot_id = datasets.snapshot(dataset)
    loaded = datasets.load(snapshot_id, seed=seed)
    chosen = arch or zoo.choose(loaded.spec)
    if zoo.ARCHITECTURES.get(chosen, len(loaded.spec.input_shape)) != len(loaded.spec.input_shape):
        raise InvalidInput(
            f"architecture {chosen!r} needs inputs of rank {zoo.ARCHITECTURES[chosen]}, "
            f"the dataset's shape is {loaded.spec.input_shape}"
        )
    epochs = epochs or DEFAULT_EPOCHS
    _check(trials, workers, epochs)
    values = check_space(chosen, space)
    if len(configs) > trials:
        raise InvalidInput(f"{len(configs)} configs given for {trials} trials")
    for config in configs:
        split_config(chosen, config)
    payload = _Payload(
        spec=loaded.spec,
        arrays=loaded.arrays,
        arch=chosen,
        scaling=loaded.input_scaling,
        boards=tuple(b.id for b in board_rows),
        budget=budget,
        epochs=epochs,
        seed=seed,
        settings=ctx.settings,
    )
    search_id = new_id("srch")
    with ctx.session() as session:
        SearchRepository(session).add(
            SearchRow(
                id=search_id,
                dataset=loaded.dataset,
                snapshot_id=snapshot_id,
                arch=chosen,
                boards=list(payload.boards),
                budget=budget.as_dict(),
                trials_planned=trials,
                workers=workers,
                epochs=epochs,
                state=SearchState.RUNNING.value,
                trials=[],
                fronts={},
                summary={},
            )
        )
    started = time.perf_counter()
    try:
        with _ray(ctx.settings, workers) as where:
            records = _tune(payload, values, configs, trials=trials, workers=workers, on_trial=on_trial)
        for number, record in enumerate(records, start=1):
            record["trial"] = number
        fronts = _fronts(records, payload.boards)
        summary = _summary(records, fronts, board_rows, budget)
        summary.update({"wall_s": time.perf_counter() - started, "ray": where})
        stored: dict[int, dict[str, Any]] = {}
        for number in sorted({n for front in fronts.values() for n in front["ram"] + front["latency"]}):
            stored[number] = _store_point(ctx, search_id, records[number - 1], loaded, payload)
        for front in fronts.values():
            front["models"] = {str(n): stored[n] for n in front["ram"] + front["latency"]}
    except BaseException as exc:
        with ctx.session() as session:
            row = SearchRepository(session).get(search_id)
            row.state, row.error, row.finished_at = (
                SearchState.FAILED.value,
                str(exc)[:4000],
                datetime.now(UTC),
            )
        raise
    with ctx.session() as session:
        row = SearchRepository(session).get(search_id)
        row.state, row.trials, row.fronts, row.summary = SearchState.SUCCEEDED.value, records, fronts, summary
        row.finished_at = datetime.now(UTC)
        return _view(row)


def check_search(ctx: Context, dataset: str, boards: Sequence[str], arch: str | None = None) -> None:
    """Refuse a search naming a dataset, board or architecture that does not exist, naming the field,
    before a job is queued for it (the job would otherwise fail minutes later)."""
    try:
        spec = DatasetService(ctx).show(dataset).spec
    except NotFound:
        raise InvalidInput(f"dataset: there is no dataset {dataset!r}") from None
    unknown = ", ".join(repr(b) for b in boards if b not in ctx.catalog.boards)
    if unknown:
        raise InvalidInput(f"boards: no board {unknown} (known: {', '.join(sorted(ctx.catalog.boards))})")
    if arch is None:
        return
    if arch not in zoo.ARCHITECTURES:
        raise InvalidInput(f"arch: no architecture {arch!r}; choose one of {', '.join(zoo.ARCHITECTURES)}")
    if zoo.ARCHITECTURES[arch] != len(spec.input_shape):
        raise InvalidInput(
            f"arch: {arch} takes inputs of rank {zoo.ARCHITECTURES[arch]}, the samples of {dataset!r} "
            f"have shape {list(spec.input_shape)}"
        )


def show_search(ctx: Context, search_id: str) -> dict[str, Any]:
    with ctx.session() as session:
        return _view(SearchRepository(session).get(search_id))


def _best(row: SearchRow) -> dict[str, Any] | None:
    """The most accurate measured trial within budget on at least one board, with those boards: what a
    list of searches shows in place of the trials it leaves out."""
    best = None
    for trial in row.trials:
        if trial.get("state") != TrialState.MEASURED.value:
            continue
        within = [board for board, figures in trial["boards"].items() if figures["within_budget"]]
        if within and (best is None or trial["accuracy"]["value"] > best["accuracy"]["value"]):
            best = {"trial": trial["trial"], "accuracy": trial["accuracy"], "boards": within}
    return best


def list_searches(
    ctx: Context, dataset: str | None = None, *, limit: int = 100, offset: int = 0
) -> list[dict[str, Any]]:
    """Newest first, without each search's trial list (``show_search`` has it) but with its ``best``
    trial within budget (None when no trial met it)."""
    if not 1 <= limit <= 1000:
        raise InvalidInput(f"limit must be from 1 to 1000, got {limit}")
    if offset < 0:
        raise InvalidInput(f"offset must be at least 0, got {offset}")
    with ctx.session() as session:
        return [
            {**{k: v for k, v in _view(row).items() if k != "trials"}, "best": _best(row)}
            for row in SearchRepository(session).newest(dataset, limit=limit, offset=offset)
        ]


def count_searches(ctx: Context, dataset: str | None = None) -> int:
    """How many searches ``list_searches`` finds for ``dataset`` (every dataset's when None) before paging."""
    with ctx.session() as session:
        return SearchRepository(session).count(dataset)

"""One runner per job kind: the service call its validated parameters make.

A runner turns the services' own callbacks (``on_epoch`` from training, ``on_phase`` from the
lifecycle, ``progress`` lines from squeezing) into job progress: the lines go to the log, so a job
logs exactly what the CLI shows, and phase and epoch go to their own fields.
"""

from __future__ import annotations

from typing import Any

from tinymlaas.jobs.params import (
    CompileParams,
    JobParams,
    LifecycleParams,
    SearchParams,
    SplitParams,
    SqueezeParams,
    TrainParams,
)
from tinymlaas.jobs.records import JobReporter
from tinymlaas.services.compiling import compile_module
from tinymlaas.services.context import Context
from tinymlaas.services.lifecycle import LifecyclePhase, run_lifecycle
from tinymlaas.services.search import run_search
from tinymlaas.services.splitting import build_split, plan_model_split
from tinymlaas.services.squeezing import squeeze_model
from tinymlaas.services.training import train_model
from tinymlaas.squeeze.convert import DEFAULT_QUANTIZATIONS
from tinymlaas.training.search_space import Budget, describe
from tinymlaas.training.trainer import EpochCallback

__all__ = ["run"]


def _epochs(reporter: JobReporter, start: float, end: float) -> EpochCallback:
    def on_epoch(epoch: int, planned: int, logs: dict[str, float]) -> None:
        figures = " ".join(f"{k}={v:.4g}" for k, v in sorted(logs.items()))
        reporter.report(
            f"epoch {epoch}/{planned} {figures}".rstrip(),
            start + (end - start) * epoch / planned,
            epoch=epoch,
            epochs=planned,
            figures=logs,
        )

    return on_epoch


def _train(ctx: Context, params: TrainParams, reporter: JobReporter) -> dict[str, Any]:
    reporter.report("training …", 0.0, phase=LifecyclePhase.TRAIN)
    return train_model(
        ctx,
        params.dataset,
        arch=params.arch,
        epochs=params.epochs,
        seed=params.seed,
        on_epoch=_epochs(reporter, 0.0, 0.95),
    )


def _squeeze(ctx: Context, params: SqueezeParams, reporter: JobReporter) -> dict[str, Any]:
    chosen = tuple(params.quantizations) if params.quantizations else DEFAULT_QUANTIZATIONS
    reporter.report("squeezing …", 0.0, phase=LifecyclePhase.SQUEEZE)
    variants = squeeze_model(ctx, params.model, quantizations=chosen, progress=reporter.report)
    return {"variants": variants}


def _compile(ctx: Context, params: CompileParams, reporter: JobReporter) -> dict[str, Any]:
    reporter.report(f"compiling for {params.board} …", 0.0, phase=LifecyclePhase.COMPILE)
    return compile_module(
        ctx,
        params.variant,
        params.board,
        runtime=params.runtime,
        compiler=params.compiler,
        progress=reporter.report,
    )


def _split(ctx: Context, params: SplitParams, reporter: JobReporter) -> dict[str, Any]:
    reporter.report(
        f"planning the cuts of {params.model} on {params.chain} …", 0.0, phase=LifecyclePhase.COMPILE
    )
    plan = plan_model_split(
        ctx, params.model, params.chain, objective=params.objective, progress=reporter.report
    )
    if params.build:
        plan = build_split(ctx, plan["id"], cut=params.cut, progress=reporter.report)
    return plan


def _search(ctx: Context, params: SearchParams, reporter: JobReporter) -> dict[str, Any]:
    reporter.report(
        f"searching {params.trials} models for {', '.join(params.boards)} …", 0.0, phase=LifecyclePhase.TRAIN
    )

    def on_trial(done: int, total: int, trial: dict[str, Any]) -> None:
        config = describe(trial["config"]) if trial.get("config") else "?"
        reporter.report(f"trial {done}/{total} {trial.get('state', 'failed')}: {config}", done / total)

    return run_search(
        ctx,
        params.dataset,
        params.boards,
        budget=Budget(
            max_ram=params.max_ram, max_flash=params.max_flash, max_latency_ms=params.max_latency_ms
        ),
        trials=params.trials,
        workers=params.workers,
        epochs=params.epochs,
        arch=params.arch,
        seed=params.seed,
        on_trial=on_trial,
    )


# Where each lifecycle phase starts on the job's progress bar; training fills the span up to squeeze.
_STARTS = {
    LifecyclePhase.SNAPSHOT: 0.0,
    LifecyclePhase.TRAIN: 0.05,
    LifecyclePhase.SQUEEZE: 0.6,
    LifecyclePhase.COMPILE: 0.9,
}


def _lifecycle(ctx: Context, params: LifecycleParams, reporter: JobReporter) -> dict[str, Any]:
    def on_phase(phase: LifecyclePhase) -> None:
        reporter.report(f"{phase.value} …", _STARTS[phase], phase=phase)

    return run_lifecycle(
        ctx,
        params.dataset,
        params.boards,
        arch=params.arch,
        epochs=params.epochs,
        seed=params.seed,
        on_epoch=_epochs(reporter, _STARTS[LifecyclePhase.TRAIN], _STARTS[LifecyclePhase.SQUEEZE]),
        progress=reporter.report,
        on_phase=on_phase,
    )


def run(ctx: Context, params: JobParams, reporter: JobReporter) -> dict[str, Any]:
    """Run the service ``params`` are for; what it returns becomes the job's result."""
    match params:
        case TrainParams():
            return _train(ctx, params, reporter)
        case SqueezeParams():
            return _squeeze(ctx, params, reporter)
        case CompileParams():
            return _compile(ctx, params, reporter)
        case LifecycleParams():
            return _lifecycle(ctx, params, reporter)
        case SplitParams():
            return _split(ctx, params, reporter)
        case SearchParams():
            return _search(ctx, params, reporter)
    raise TypeError(f"no runner for {type(params).__name__}")

"""One runner per job kind: the parameters it takes and the service call it makes.

A runner turns the services' own progress callbacks (``on_epoch`` from training, ``progress`` lines
from squeezing and the lifecycle) into job progress, so a job reports exactly what the CLI shows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from tinymlaas.errors import InvalidInput
from tinymlaas.jobs.records import JobReporter
from tinymlaas.jobs.states import JobKind
from tinymlaas.services.compiling import compile_module
from tinymlaas.services.context import Context
from tinymlaas.services.lifecycle import run_lifecycle
from tinymlaas.services.squeezing import squeeze_model
from tinymlaas.services.training import train_model
from tinymlaas.squeeze.convert import Quantization
from tinymlaas.training.trainer import EpochCallback

__all__ = ["PARAMS", "RUNNERS", "Param", "Runner", "check_params"]

Runner = Callable[[Context, dict[str, Any], JobReporter], dict[str, Any]]


@dataclass(frozen=True)
class Param:
    type: type
    required: bool = False
    items: type | None = None  # element type when ``type`` is list


_TRAINING = {"arch": Param(str), "epochs": Param(int), "seed": Param(int)}

PARAMS: Mapping[JobKind, Mapping[str, Param]] = MappingProxyType(
    {
        JobKind.TRAIN: {"dataset": Param(str, required=True), **_TRAINING},
        JobKind.SQUEEZE: {"model": Param(str, required=True), "quantizations": Param(list, items=str)},
        JobKind.COMPILE: {
            "variant": Param(str, required=True),
            "board": Param(str, required=True),
            "runtime": Param(str),
        },
        JobKind.LIFECYCLE: {
            "dataset": Param(str, required=True),
            "boards": Param(list, required=True, items=str),
            **_TRAINING,
        },
    }
)


_NOUNS = {str: "a string", int: "an integer", list: "a list"}


def _fits(value: Any, param: Param) -> bool:
    if param.type is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if not isinstance(value, param.type):
        return False
    return param.items is None or all(isinstance(v, param.items) for v in value)


def check_params(kind: JobKind, params: Mapping[str, Any]) -> dict[str, Any]:
    """Reject unknown, missing and mistyped parameters before anything is queued."""
    allowed = PARAMS[kind]
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise InvalidInput(
            f"a {kind.value} job takes no {', '.join(unknown)} (it takes {', '.join(allowed)})"
        )
    for name, param in allowed.items():
        if name not in params or params[name] is None:
            if param.required:
                raise InvalidInput(f"a {kind.value} job needs {name!r}")
            continue
        if not _fits(params[name], param):
            expected = f"a list of {_NOUNS[param.items].split()[-1]}s" if param.items else _NOUNS[param.type]
            raise InvalidInput(f"{kind.value} job parameter {name!r} must be {expected}")
    if kind is JobKind.SQUEEZE and params.get("quantizations") is not None:
        known = {q.value for q in Quantization}
        bad = sorted(set(params["quantizations"]) - known)
        if bad:
            raise InvalidInput(f"unknown quantization {', '.join(bad)} (known: {', '.join(sorted(known))})")
    if kind is JobKind.LIFECYCLE and not params["boards"]:
        raise InvalidInput("a lifecycle job needs at least one board")
    return {name: value for name, value in params.items() if value is not None}


def _epochs(reporter: JobReporter, start: float, end: float) -> EpochCallback:
    def on_epoch(epoch: int, planned: int, logs: dict[str, float]) -> None:
        figures = " ".join(f"{k}={v:.4g}" for k, v in sorted(logs.items()))
        reporter.report(
            f"epoch {epoch}/{planned} {figures}".rstrip(), start + (end - start) * epoch / planned
        )

    return on_epoch


def _train(ctx: Context, params: dict[str, Any], reporter: JobReporter) -> dict[str, Any]:
    reporter.report("training …", 0.0)
    return train_model(
        ctx,
        params["dataset"],
        arch=params.get("arch"),
        epochs=params.get("epochs"),
        seed=params.get("seed"),
        on_epoch=_epochs(reporter, 0.0, 0.95),
    )


def _squeeze(ctx: Context, params: dict[str, Any], reporter: JobReporter) -> dict[str, Any]:
    quantizations = params.get("quantizations")
    chosen = tuple(Quantization(q) for q in quantizations) if quantizations else tuple(Quantization)
    reporter.report("squeezing …", 0.0)
    variants = squeeze_model(ctx, params["model"], quantizations=chosen, progress=reporter.report)
    return {"variants": variants}


def _compile(ctx: Context, params: dict[str, Any], reporter: JobReporter) -> dict[str, Any]:
    reporter.report(f"compiling for {params['board']} …", 0.0)
    return compile_module(ctx, params["variant"], params["board"], runtime=params.get("runtime"))


# Where each lifecycle phase starts on the job's progress bar; training fills the span up to squeeze.
_PHASES = {"snapshot": 0.0, "train": 0.05, "squeeze": 0.6, "compile": 0.9}


def _lifecycle(ctx: Context, params: dict[str, Any], reporter: JobReporter) -> dict[str, Any]:
    def progress(line: str) -> None:
        phase = line.removesuffix(" …")
        reporter.report(line, _PHASES.get(phase))

    return run_lifecycle(
        ctx,
        params["dataset"],
        params["boards"],
        arch=params.get("arch"),
        epochs=params.get("epochs"),
        seed=params.get("seed"),
        on_epoch=_epochs(reporter, _PHASES["train"], _PHASES["squeeze"]),
        progress=progress,
    )


RUNNERS: Mapping[JobKind, Runner] = MappingProxyType(
    {
        JobKind.TRAIN: _train,
        JobKind.SQUEEZE: _squeeze,
        JobKind.COMPILE: _compile,
        JobKind.LIFECYCLE: _lifecycle,
    }
)

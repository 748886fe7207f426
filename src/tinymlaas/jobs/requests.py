"""Jobs asked for over HTTP: what a job names is checked before it is queued.

``parse_params`` checks only the shape of the parameters; a dataset, model, variant or board that does
not exist would otherwise surface minutes later as a failed job. Here every name is looked up first,
so the caller is told at once which field is wrong, and nothing is queued.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tinymlaas.errors import InvalidInput, NotFound
from tinymlaas.jobs.executor import Executor
from tinymlaas.jobs.params import (
    CompileParams,
    JobParams,
    LifecycleParams,
    SearchParams,
    SqueezeParams,
    TrainParams,
    parse_params,
)
from tinymlaas.jobs.service import submit_job
from tinymlaas.jobs.states import JobKind
from tinymlaas.services.auth import Permission
from tinymlaas.services.compiling import choose_compiler
from tinymlaas.services.context import Context
from tinymlaas.services.datasets import DatasetService
from tinymlaas.services.search import check_search
from tinymlaas.storage.repositories import ModelRepository
from tinymlaas.training.zoo import ARCHITECTURES

__all__ = ["JOB_PERMISSIONS", "check_job", "request_job"]

# What a caller needs to start or cancel a job of each kind: the permission of what the job does.
JOB_PERMISSIONS: dict[JobKind, Permission] = {
    JobKind.TRAIN: Permission.TRAINING_WRITE,
    JobKind.LIFECYCLE: Permission.TRAINING_WRITE,
    JobKind.SQUEEZE: Permission.MODELS_WRITE,
    JobKind.COMPILE: Permission.MODELS_WRITE,
    JobKind.SPLIT: Permission.MODELS_WRITE,
    JobKind.SEARCH: Permission.TRAINING_WRITE,
}


def _kind(kind: str | JobKind) -> JobKind:
    try:
        return JobKind(kind)
    except ValueError:
        known = ", ".join(k.value for k in JobKind)
        raise InvalidInput(f"unknown job kind {kind!r} (known: {known})") from None


def _training(ctx: Context, params: TrainParams | LifecycleParams) -> None:
    name = params.dataset
    try:
        spec = DatasetService(ctx).show(name).spec
    except NotFound:
        raise InvalidInput(f"dataset: there is no dataset {name!r}") from None
    arch = params.arch
    if arch is not None:
        if arch not in ARCHITECTURES:
            raise InvalidInput(f"arch: no architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
        if ARCHITECTURES[arch] != len(spec.input_shape):
            raise InvalidInput(
                f"arch: {arch} takes inputs of rank {ARCHITECTURES[arch]}, the samples of {name!r} have "
                f"shape {list(spec.input_shape)}"
            )
    if params.epochs is not None and params.epochs < 1:
        raise InvalidInput("epochs: train for at least one epoch")


def _boards(ctx: Context, boards: list[str], field: str = "boards") -> None:
    unknown = ", ".join(repr(b) for b in boards if b not in ctx.catalog.boards)
    if unknown:
        known = ", ".join(sorted(ctx.catalog.boards))
        raise InvalidInput(f"{field}: no board {unknown} (known: {known})")


def _squeezable(ctx: Context, ref: str) -> None:
    with ctx.session() as session:
        try:
            model = ModelRepository(session).model(ref)
        except NotFound:
            raise InvalidInput(f"model: there is no model {ref!r}") from None
        if model.keras_blob is None:
            raise InvalidInput(
                f"model {model.name}:{model.version} was imported as .tflite: it is already a variant"
            )
        if model.training_run_id is None:
            raise InvalidInput(
                f"model {model.name}:{model.version} has no dataset to calibrate int8 with and score on"
            )


def _compilable(ctx: Context, params: CompileParams) -> None:
    with ctx.session() as session:
        try:
            ModelRepository(session).variant(params.variant)
        except NotFound:
            raise InvalidInput(f"variant: there is no variant {params.variant!r}") from None
    _boards(ctx, [params.board], "board")
    choose_compiler(ctx.catalog.board(params.board), params.runtime, params.compiler)


def check_job(ctx: Context, kind: str | JobKind, params: Mapping[str, Any]) -> tuple[JobKind, JobParams]:
    """The job's kind and parameters once all they name exists; else InvalidInput naming the field."""
    job_kind = _kind(kind)
    checked = parse_params(job_kind, params)
    match checked:
        case TrainParams():
            _training(ctx, checked)
        case LifecycleParams():
            _training(ctx, checked)
            _boards(ctx, checked.boards)
        case SqueezeParams():
            _squeezable(ctx, checked.model)
        case CompileParams():
            _compilable(ctx, checked)
        case SearchParams():
            check_search(ctx, checked.dataset, checked.boards, checked.arch)
    return job_kind, checked


def request_job(
    ctx: Context, kind: str | JobKind, params: Mapping[str, Any], *, executor: Executor | None
) -> dict[str, Any]:
    """Check the job, then queue it (and hand it to ``executor`` when the server has one)."""
    job_kind, checked = check_job(ctx, kind, params)
    return submit_job(ctx, job_kind, checked, executor=executor)

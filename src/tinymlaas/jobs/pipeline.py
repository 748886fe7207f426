"""The lifecycle as a line of steps, each with a state worked out from what is stored.

``stored_pipeline`` reads the production store (datasets, models with their variants and modules,
campaigns, devices, jobs under way) and lists the dry runs; ``find_dry_run`` reads one ``lifecycle``
job, whose phase and epoch fields say how far it got. A dry run is a lifecycle job on a sandbox
dataset: what it makes stays out of the production steps and lists, and ``delete_dry_run`` removes
it on request. The REST API, the CLI and the dashboard all show these results, so the rules for a
step's state live here only. It sits in the jobs layer because it reads job records.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

from pydantic import BaseModel, computed_field

from tinymlaas.deploy.campaigns import InstallationState
from tinymlaas.errors import Conflict, InvalidInput, NotFound
from tinymlaas.jobs.service import list_jobs, show_job
from tinymlaas.jobs.states import PHASE_STEPS, TERMINAL_STATES, JobKind, JobState, PipelineStep
from tinymlaas.services.campaigns import CampaignView, list_campaigns
from tinymlaas.services.context import Context
from tinymlaas.services.datasets import DatasetService, DatasetSummary
from tinymlaas.services.fleet import DeviceView, list_devices
from tinymlaas.services.lifecycle import LifecyclePhase
from tinymlaas.services.models import ModelDetail, list_model_details
from tinymlaas.services.sandbox import remove_sandbox

__all__ = [
    "DryRun",
    "DryRunRemoval",
    "DryRunSummary",
    "Pipeline",
    "Step",
    "StepState",
    "Tone",
    "Verdict",
    "delete_dry_run",
    "find_dry_run",
    "list_dry_runs",
    "show_pipeline",
    "stored_pipeline",
]


class Tone(Enum):
    """How a step reads at a glance; the values are the dashboard's style classes."""

    GOOD = "done"
    BUSY = "running"
    BAD = "failed"
    QUIET = ""


class StepState(Enum):
    """Where one step stands. The first four describe the store; the rest one dry run."""

    DONE = "done"  # it produced something
    RUNNING = "running"  # a job or campaign works on it now
    ATTENTION = "attention"  # what it produced needs a person
    WAITING = "waiting"  # nothing yet
    FAILED = "failed"  # the dry run failed in this phase
    CANCELLED = "cancelled"  # the dry run was cancelled in this phase
    NOT_REACHED = "not reached"  # the dry run ended before this phase
    FIT_CHECKED = "fit checked"  # a dry run's last word: each board's fit verdict
    NOT_IN_DRY_RUN = "not part of a dry run"

    @property
    def tone(self) -> Tone:
        if self is StepState.DONE:
            return Tone.GOOD
        if self is StepState.RUNNING:
            return Tone.BUSY
        if self in (StepState.ATTENTION, StepState.FAILED, StepState.CANCELLED):
            return Tone.BAD
        return Tone.QUIET


class Step(BaseModel):
    key: PipelineStep
    state: StepState
    headline: str
    detail: str = ""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def title(self) -> str:
        return self.key.value.capitalize()

    @computed_field  # type: ignore[prop-decorator]
    @property
    def tone(self) -> Tone:
        return self.state.tone


class Verdict(BaseModel):
    """One board × variant row of a finished dry run: does the compiled module fit the board."""

    board: str
    quantization: str
    runtime: str
    module: str
    variant: str
    size_bytes: int | None = None
    arena_bytes: int | None = None
    flash_bytes: int | None = None
    ram_bytes: int | None = None
    metric: dict[str, Any] | None = None
    fits: bool
    reasons: list[str] = []


class DryRun(BaseModel):
    """One lifecycle job, phase by phase."""

    job: str
    dataset: str
    boards: list[str]
    state: JobState
    progress: float
    message: str
    error: str | None
    log: str
    steps: list[Step]
    verdicts: list[Verdict]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def active(self) -> bool:
        """Still changing: a page showing it keeps polling."""
        return self.state not in TERMINAL_STATES

    @computed_field  # type: ignore[prop-decorator]
    @property
    def queued(self) -> bool:
        """Waiting for a job worker of the server."""
        return self.state is JobState.QUEUED


class DryRunSummary(BaseModel):
    """One dry run kept in the sandbox with its results, until someone deletes it."""

    job: str
    dataset: str
    boards: list[str]
    state: JobState
    created_at: str
    model: str | None = None  # the sandbox model it trained, once it finished
    arch: str | None = None
    float_metric: dict[str, Any] | None = None
    verdicts: list[Verdict] = []
    error: str | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def fitting(self) -> int:
        """Modules that fit their board."""
        return sum(1 for v in self.verdicts if v.fits)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def can_delete(self) -> bool:
        """Ended, so nothing writes into its sandbox any more; a running one is cancelled first."""
        return self.state in TERMINAL_STATES


class DryRunRemoval(BaseModel):
    """What deleting a dry run removed: its jobs, rows per table, and blobs no row names now."""

    job: str
    dataset: str
    rows: dict[str, int]
    blobs: int
    freed_bytes: int


class Pipeline(BaseModel):
    steps: list[Step]
    under_way: int  # jobs queued or running
    dry_runs: list[DryRunSummary] = []  # newest first
    dry_run: DryRun | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def live(self) -> bool:
        """Something still moves, so what is shown will change."""
        return bool(self.under_way) or (self.dry_run is not None and self.dry_run.active)


_PHASE_TEXT = {
    LifecyclePhase.SNAPSHOT: "freeze the labelled samples",
    LifecyclePhase.TRAIN: "train a model",
    LifecyclePhase.SQUEEZE: "quantize and measure in TFLM",
    LifecyclePhase.COMPILE: "compile and check the fit per board",
}
# What a running job of each kind works on; a lifecycle counts as training, its longest phase.
_KIND_STEPS = {
    JobKind.TRAIN: PipelineStep.TRAIN,
    JobKind.LIFECYCLE: PipelineStep.TRAIN,
    JobKind.SQUEEZE: PipelineStep.SQUEEZE,
    JobKind.COMPILE: PipelineStep.COMPILE,
    JobKind.SPLIT: PipelineStep.COMPILE,
    JobKind.SEARCH: PipelineStep.TRAIN,
}


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _state(running: bool, produced: bool, needs_attention: bool = False) -> StepState:
    if running:
        return StepState.RUNNING
    if needs_attention:
        return StepState.ATTENTION
    return StepState.DONE if produced else StepState.WAITING


def _latest_metric(trained: list[ModelDetail]) -> str:
    if not trained:
        return ""
    latest = max(trained, key=lambda m: m.created_at)
    metric = (latest.run or {})["metric"]
    return f"latest {latest.name} v{latest.version}: {metric['name']} {metric['value']:.3f}"


def _steps(
    datasets: list[DatasetSummary],
    models: list[ModelDetail],
    campaigns: list[CampaignView],
    devices: list[DeviceView],
    jobs: list[dict[str, Any]],
) -> list[Step]:
    """collect → label → train → squeeze → compile → deploy, as the store stands.

    ``models`` are ``show_model`` views; ``jobs`` are the jobs under way. A step is done once it
    produced something, running while a job or campaign works on it, attention when what it produced
    needs a person (unlabelled samples, no module that fits, failed installations), else waiting.
    """
    busy = {_KIND_STEPS[JobKind(j["kind"])] for j in jobs if j["state"] == JobState.RUNNING.value}
    samples = sum(d.sample_count for d in datasets)
    unlabelled = sum(d.unlabelled for d in datasets)
    collected = sum(d.collected for d in datasets)
    snapshots = sum(len(d.snapshots) for d in datasets)
    trained = [m for m in models if m.run is not None]
    variants = [v for m in models for v in m.variants]
    modules = [x for m in models for x in m.modules]
    fitting = [x for x in modules if x.fits]
    running = [c for c in campaigns if c.active]
    failed = sum(c.counts.get(InstallationState.FAILED.value, 0) for c in campaigns)
    on_model = sum(1 for d in devices if d.model)
    return [
        Step(
            key=PipelineStep.COLLECT,
            state=StepState.DONE if samples else StepState.WAITING,
            headline=f"{_plural(samples, 'sample')} in {_plural(len(datasets), 'dataset')}",
            detail=f"{collected} uploaded by devices" if samples else "generate, import or collect a dataset",
        ),
        Step(
            key=PipelineStep.LABEL,
            state=StepState.WAITING if not samples else StepState.ATTENTION if unlabelled else StepState.DONE,
            headline=f"{_plural(unlabelled, 'sample')} without a label"
            if unlabelled
            else "every sample labelled",
            detail=f"{_plural(snapshots, 'snapshot')} frozen",
        ),
        Step(
            key=PipelineStep.TRAIN,
            state=_state(PipelineStep.TRAIN in busy, bool(trained)),
            headline=_plural(len(trained), "training run"),
            detail=_latest_metric(trained),
        ),
        Step(
            key=PipelineStep.SQUEEZE,
            state=_state(PipelineStep.SQUEEZE in busy, bool(variants)),
            headline=_plural(len(variants), "variant"),
            detail=", ".join(sorted({v.quantization for v in variants})),
        ),
        Step(
            key=PipelineStep.COMPILE,
            state=_state(PipelineStep.COMPILE in busy, bool(modules), bool(modules) and not fitting),
            headline=f"{len(fitting)} of {_plural(len(modules), 'module')} fit their board",
            detail=", ".join(sorted({x.board for x in fitting})),
        ),
        Step(
            key=PipelineStep.DEPLOY,
            state=_state(bool(running), bool(campaigns), bool(failed)),
            headline=f"{_plural(len(campaigns), 'campaign')}, {len(running)} under way",
            detail=f"{on_model} of {_plural(len(devices), 'device')} report a model"
            + (f"; {_plural(failed, 'failed installation')}" if failed else ""),
        ),
    ]


def _sandboxed(job: dict[str, Any], sandbox: set[str]) -> bool:
    """Whether ``job`` works on a dry run's dataset."""
    return job["params"].get("dataset") in sandbox


def stored_pipeline(ctx: Context) -> Pipeline:
    """Every step as the production store stands, and the dry runs kept in the sandbox.

    Jobs under way count them all, so a page keeps following a dry run; a step is running only for
    production work.
    """
    jobs = list_jobs(ctx, state=JobState.RUNNING) + list_jobs(ctx, state=JobState.QUEUED)
    sandbox = set(DatasetService(ctx).names(sandbox=True))
    production = [j for j in jobs if not _sandboxed(j, sandbox)]
    models = list_model_details(ctx)
    steps = _steps(DatasetService(ctx).list(), models, list_campaigns(ctx), list_devices(ctx), production)
    return Pipeline(steps=steps, under_way=len(jobs), dry_runs=_dry_runs(ctx, sandbox))


def _dry_runs(ctx: Context, sandbox: set[str]) -> list[DryRunSummary]:
    runs = []
    for job in list_jobs(ctx, kind=JobKind.LIFECYCLE):
        if not _sandboxed(job, sandbox):
            continue
        result = job["result"] or {}
        runs.append(
            DryRunSummary(
                job=job["id"],
                dataset=job["params"]["dataset"],
                boards=job["params"]["boards"],
                state=JobState(job["state"]),
                created_at=job["created_at"],
                model=result.get("model"),
                arch=result.get("arch"),
                float_metric=result.get("float_metric"),
                verdicts=_verdicts(job),
                error=job["error"],
            )
        )
    return runs


def list_dry_runs(ctx: Context) -> list[DryRunSummary]:
    """Every dry run in the sandbox, newest first, with its model and fit verdicts once it finished."""
    return _dry_runs(ctx, set(DatasetService(ctx).names(sandbox=True)))


def delete_dry_run(ctx: Context, job_id: str) -> DryRunRemoval:
    """Remove the dry run ``job_id``: its sandbox dataset, everything made from it, its lifecycle
    jobs, and the blobs no row names any more.

    NotFound for an unknown job; InvalidInput for a job that is no dry run (production work is never
    deleted here); Conflict while a lifecycle job on its dataset is queued or running.
    """
    job = show_job(ctx, job_id)
    dataset = job["params"].get("dataset")
    if job["kind"] != JobKind.LIFECYCLE.value or dataset not in DatasetService(ctx).names(sandbox=True):
        raise InvalidInput(f"job {job_id} is not a dry run: only a dry run's sandbox is deleted")
    jobs = [j for j in list_jobs(ctx, kind=JobKind.LIFECYCLE) if j["params"].get("dataset") == dataset]
    busy = [j["id"] for j in jobs if j["active"]]
    if busy:
        raise Conflict(f"dry run {', '.join(busy)} on {dataset} has not ended: cancel it first")
    ended = max(datetime.fromisoformat(j["finished_at"] or j["updated_at"]) for j in jobs)
    removed = remove_sandbox(ctx, dataset, ended_at=ended, job_ids=[j["id"] for j in jobs])
    return DryRunRemoval(
        job=job_id, dataset=dataset, rows=removed.rows, blobs=removed.blobs, freed_bytes=removed.freed_bytes
    )


def _phase_state(phase: LifecyclePhase, reached: LifecyclePhase | None, job_state: JobState) -> StepState:
    order = list(LifecyclePhase)
    if reached is None or order.index(phase) > order.index(reached):
        return StepState.WAITING if job_state not in TERMINAL_STATES else StepState.NOT_REACHED
    if phase is not reached or job_state is JobState.SUCCEEDED:
        return StepState.DONE
    return StepState(job_state.value)  # running, failed or cancelled in this phase


def _dry_run_steps(job: dict[str, Any], dataset: DatasetSummary | None) -> list[Step]:
    """The job's phases as steps; deploying is not part of a dry run: it ends with each board's fit."""
    reached = None if job["phase"] is None else LifecyclePhase(job["phase"])
    state = JobState(job["state"])
    timings = (job["result"] or {}).get("timings_s", {})
    steps = [
        Step(
            key=PipelineStep.COLLECT,
            state=StepState.DONE if dataset and dataset.sample_count else StepState.ATTENTION,
            headline=f"{_plural(dataset.sample_count, 'sample')} in {dataset.name}"
            if dataset
            else f"dataset {job['params']['dataset']} no longer exists",
        )
    ]
    for phase in LifecyclePhase:
        phase_state = _phase_state(phase, reached, state)
        detail = f"{timings[phase.value]:.1f} s" if phase.value in timings else ""
        if phase is LifecyclePhase.TRAIN and phase_state is StepState.RUNNING and job["epoch"] is not None:
            detail = f"epoch {job['epoch']} of at most {job['epochs']}"
        steps.append(
            Step(key=PHASE_STEPS[phase], state=phase_state, headline=_PHASE_TEXT[phase], detail=detail)
        )
    verdicts = _verdicts(job)
    fits = sum(1 for v in verdicts if v.fits)
    steps.append(
        Step(
            key=PipelineStep.DEPLOY,
            state=StepState.FIT_CHECKED if verdicts else StepState.NOT_IN_DRY_RUN,
            headline=f"{fits} of {_plural(len(verdicts), 'module')} fit their board"
            if verdicts
            else "a dry run ends with each board's fit verdict",
        )
    )
    return steps


def _verdicts(job: dict[str, Any]) -> list[Verdict]:
    """The board × variant rows a finished lifecycle job reported, in its order."""
    return [Verdict.model_validate(row) for row in (job["result"] or {}).get("variants", [])]


def _dataset(ctx: Context, name: str) -> DatasetSummary | None:
    try:
        return DatasetService(ctx).show(name)
    except NotFound:
        return None


def find_dry_run(ctx: Context, job_id: str | None = None) -> DryRun | None:
    """The lifecycle job ``job_id``, or the newest one when not given (None when there is none).

    NotFound for an unknown job; InvalidInput for a job of another kind.
    """
    if job_id is None:
        latest = list_jobs(ctx, kind=JobKind.LIFECYCLE, limit=1)
        if not latest:
            return None
        job_id = latest[0]["id"]
    job = show_job(ctx, job_id)
    if job["kind"] != JobKind.LIFECYCLE.value:
        raise InvalidInput(f"job {job['id']} is a {job['kind']} job, not a dry run")
    return DryRun(
        job=job["id"],
        dataset=job["params"]["dataset"],
        boards=job["params"]["boards"],
        state=JobState(job["state"]),
        progress=job["progress"],
        message=job["message"],
        error=job["error"],
        log=job["log"],
        steps=_dry_run_steps(job, _dataset(ctx, job["params"]["dataset"])),
        verdicts=_verdicts(job),
    )


def show_pipeline(ctx: Context, job_id: str | None = None) -> Pipeline:
    """The stored steps and the dry run ``job_id`` names (the newest one when not given)."""
    return stored_pipeline(ctx).model_copy(update={"dry_run": find_dry_run(ctx, job_id)})

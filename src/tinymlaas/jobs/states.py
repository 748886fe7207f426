"""What a background job is and where it can go next."""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from types import MappingProxyType

from tinymlaas.services.lifecycle import LifecyclePhase

__all__ = ["JOB_TRANSITIONS", "PHASE_STEPS", "TERMINAL_STATES", "JobKind", "JobState", "PipelineStep"]


class JobKind(Enum):
    """The service a job runs; each maps to one runner in ``tinymlaas.jobs.runners``."""

    TRAIN = "train"
    SQUEEZE = "squeeze"
    COMPILE = "compile"
    LIFECYCLE = "lifecycle"
    SPLIT = "split"
    SEARCH = "search"


class JobState(Enum):
    """The life of one job."""

    # Recorded and waiting for a free worker; a restarted executor picks it up again.
    QUEUED = "queued"
    # A worker process owns it and reports progress; ``worker_pid`` names that process.
    RUNNING = "running"
    # The service returned; ``result`` holds what it returned. Terminal.
    SUCCEEDED = "succeeded"
    # The service raised, the worker died, or the server stopped under it; ``error`` says which. Terminal.
    FAILED = "failed"
    # Stopped by a person before it finished. Terminal.
    CANCELLED = "cancelled"


_S = JobState

JOB_TRANSITIONS: Mapping[JobState, frozenset[JobState]] = MappingProxyType(
    {
        # A queued job can fail without running: a server that stops with it queued and no executor left.
        _S.QUEUED: frozenset({_S.RUNNING, _S.CANCELLED, _S.FAILED}),
        _S.RUNNING: frozenset({_S.SUCCEEDED, _S.FAILED, _S.CANCELLED}),
        _S.SUCCEEDED: frozenset(),
        _S.FAILED: frozenset(),
        _S.CANCELLED: frozenset(),
    }
)

TERMINAL_STATES = frozenset(s for s, targets in JOB_TRANSITIONS.items() if not targets)


class PipelineStep(Enum):
    """The lifecycle from data to devices, as one line of steps (see docs/ARCHITECTURE.md)."""

    COLLECT = "collect"
    LABEL = "label"
    TRAIN = "train"
    SQUEEZE = "squeeze"
    COMPILE = "compile"
    DEPLOY = "deploy"


# The step of the line each lifecycle phase works on: freezing a snapshot fixes the labels.
PHASE_STEPS: Mapping[LifecyclePhase, PipelineStep] = MappingProxyType(
    {
        LifecyclePhase.SNAPSHOT: PipelineStep.LABEL,
        LifecyclePhase.TRAIN: PipelineStep.TRAIN,
        LifecyclePhase.SQUEEZE: PipelineStep.SQUEEZE,
        LifecyclePhase.COMPILE: PipelineStep.COMPILE,
    }
)

"""Moving a stored job through ``JOB_TRANSITIONS``, and the reporter a running job writes through."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from tinymlaas.jobs.states import JOB_TRANSITIONS, PHASE_STEPS, JobState
from tinymlaas.services.context import Context
from tinymlaas.services.lifecycle import LifecyclePhase
from tinymlaas.storage.repositories import JobRepository

__all__ = ["JobCancelled", "JobReporter", "move"]


def _now() -> datetime:
    return datetime.now(UTC)


def _sources(to: JobState) -> list[str]:
    return [s.value for s, targets in JOB_TRANSITIONS.items() if to in targets]


def move(ctx: Context, job_id: str, to: JobState, **values: Any) -> bool:
    """Move the job to ``to`` if the table allows it from the state it is in now; False if it does not.

    The check and the write are one conditional UPDATE, so two processes racing (a worker finishing,
    a person cancelling) cannot both win.
    """
    stamps: dict[str, Any] = {"state": to.value, "updated_at": _now()}
    if to is JobState.RUNNING:
        stamps["started_at"] = stamps["updated_at"]
    elif not JOB_TRANSITIONS[to]:
        stamps["finished_at"] = stamps["updated_at"]
    with ctx.session() as session:
        return JobRepository(session).update_if(job_id, _sources(to), {**values, **stamps})


class JobCancelled(Exception):
    """Raised inside a worker when its job left RUNNING under it (cancelled from another process)."""


class JobReporter:
    """Progress and log lines from a running job, written straight to its row.

    Every write is conditional on the job still RUNNING; when it is not, the job was cancelled (or
    failed) elsewhere and the reporter raises ``JobCancelled`` so the worker stops at its next report
    even when no one can signal its process.
    """

    def __init__(self, ctx: Context, job_id: str) -> None:
        self.ctx = ctx
        self.job_id = job_id
        # The worker is the only writer of its job's figures, so it keeps them and writes them whole.
        self._history: dict[str, list[float]] = {}

    def report(
        self,
        message: str,
        progress: float | None = None,
        *,
        phase: LifecyclePhase | None = None,
        epoch: int | None = None,
        epochs: int | None = None,
        figures: Mapping[str, float] | None = None,
    ) -> None:
        """Log ``message``; the fields given are stored as they are, so no reader parses the log.

        Fields left out keep their value: the epoch a lifecycle trained to stays known after training.
        ``figures`` are one epoch's values, appended to the job's history; epoch 1 starts it afresh,
        so a job that trains again (a second fit) shows the curves of the fit in progress.
        """
        values: dict[str, Any] = {"message": message[:1024], "updated_at": _now()}
        if progress is not None:
            values["progress"] = min(max(progress, 0.0), 1.0)
        if phase is not None:
            values["phase"] = phase.value
            values["step"] = PHASE_STEPS[phase].value
        if epoch is not None:
            values["epoch"] = epoch
        if epochs is not None:
            values["epochs"] = epochs
        if figures is not None:
            if epoch == 1:
                self._history = {}
            for name, value in figures.items():
                self._history.setdefault(name, []).append(float(value))
            values["history"] = {name: list(series) for name, series in self._history.items()}
        with self.ctx.session() as session:
            written = JobRepository(session).append_log_if(
                self.job_id, [JobState.RUNNING.value], message + "\n", values
            )
        if not written:
            raise JobCancelled(self.job_id)

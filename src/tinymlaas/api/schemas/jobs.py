"""Background jobs: what a job is asked to do, and how far it got."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from tinymlaas.jobs import JobKind

__all__ = ["JobCreate", "JobDetailPublic", "JobPublic", "JobsPublic"]


class JobCreate(BaseModel):
    """A job to run in the background; what it names (dataset, model, variant, board) must exist."""

    kind: JobKind = Field(examples=["train"])
    params: dict[str, Any] = Field(
        default_factory=dict,
        examples=[{"dataset": "sine-demo", "epochs": 20}],
        description=(
            "train: dataset, arch?, epochs?, seed?; squeeze: model, quantizations?; "
            "compile: variant, board, runtime?; lifecycle: dataset, boards, arch?, epochs?, seed?."
        ),
    )


class JobPublic(BaseModel):
    id: str
    kind: str
    state: str = Field(description="queued, running, succeeded, failed or cancelled.")
    active: bool = Field(description="Still queued or running: its progress and state will change.")
    failed: bool = Field(description="Ended in failure; ``error`` says why.")
    params: dict[str, Any]
    progress: float = Field(description="0.0 to 1.0.")
    message: str = Field(description="The latest progress line.")
    phase: str | None = Field(
        default=None, description="The phase running or last run: snapshot, train, squeeze or compile."
    )
    step: str | None = Field(
        default=None, description="The pipeline step that phase works on: label, train, squeeze or compile."
    )
    epoch: int | None = Field(default=None, description="The last epoch trained, counted from 1.")
    epochs: int | None = Field(
        default=None, description="The epochs planned (early stopping may end sooner)."
    )
    history: dict[str, list[float]] = Field(
        default_factory=dict,
        description="A training job's figures per epoch so far (loss, val_loss, the metric).",
    )
    result: dict[str, Any] | None = Field(description="What the job produced, once it succeeded.")
    error: str | None
    worker_pid: int | None
    created_at: str
    started_at: str | None
    finished_at: str | None
    updated_at: str


class JobDetailPublic(JobPublic):
    log: str = Field(description="Every progress line so far, oldest first.")


class JobsPublic(BaseModel):
    data: list[JobPublic]
    count: int

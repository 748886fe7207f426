"""Training runs: starting one, and what a finished one recorded."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

__all__ = [
    "ConfusionMatrixPublic",
    "RunModelPublic",
    "TrainingRunCreate",
    "TrainingRunDetailPublic",
    "TrainingRunPublic",
    "TrainingRunsPublic",
]


class TrainingRunCreate(BaseModel):
    """Train a model on a snapshot of a dataset, as a background job."""

    dataset: str = Field(min_length=1, examples=["gestures-demo"])
    arch: str | None = Field(None, examples=["cnn1d"], description="dense, cnn1d, cnn2d, mobilenet or gate.")
    epochs: int | None = Field(
        None, ge=1, le=10_000, description="Most epochs; early stopping may end sooner."
    )
    seed: int | None = Field(None, description="Seed for the split and the weights.")


class RunModelPublic(BaseModel):
    id: str
    name: str
    version: int


class ConfusionMatrixPublic(BaseModel):
    labels: list[str]
    counts: list[list[int]] = Field(description="Row: the true class; column: the predicted class.")


class TrainingRunPublic(BaseModel):
    id: str
    dataset: str
    snapshot: str
    task: str = Field(description="classification or regression.")
    labels: list[str]
    arch: str | None
    recipe: dict[str, Any]
    split_counts: dict[str, int]
    metric: dict[str, Any] = Field(description="The float model's score on the test split.")
    epochs_run: int
    duration_s: float
    created_at: str | None
    model: RunModelPublic | None = Field(description="The model the run produced.")


class TrainingRunDetailPublic(TrainingRunPublic):
    history: dict[str, list[float]] = Field(description="Per epoch: loss, val_loss, and the metric.")
    confusion_matrix: ConfusionMatrixPublic | None = Field(
        description="On the test split; classification runs only."
    )


class TrainingRunsPublic(BaseModel):
    data: list[TrainingRunPublic]
    count: int

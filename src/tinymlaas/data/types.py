"""Frozen values that describe a dataset and the samples going into it.

Importers and generators produce these; the store and the trainer consume them. Nothing here knows
where samples are kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

from tinymlaas.errors import InvalidInput

__all__ = [
    "Arrays",
    "DatasetSpec",
    "ImportedData",
    "LabelledSample",
    "SampleKind",
    "Task",
    "check_dataset_name",
    "check_model_name",
]

# Names also travel in URIs (a device uploads to /dc/<name>), so they are one unreserved path segment.
_DATASET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def _check_name(what: str, name: str) -> None:
    if not _DATASET_NAME.match(name):
        raise InvalidInput(
            f"{what} name {name!r} must be 1-128 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )


def check_dataset_name(name: str) -> None:
    """InvalidInput unless ``name`` can name a dataset."""
    _check_name("dataset", name)


def check_model_name(name: str) -> None:
    """InvalidInput unless ``name`` can name a model: the rule datasets follow, as a trained model is
    named after its dataset and names appear in URIs, file names and pages alike."""
    _check_name("model", name)


class Task(StrEnum):
    CLASSIFICATION = "classification"
    REGRESSION = "regression"


class SampleKind(StrEnum):
    """What one sample is; the model zoo picks an architecture from it."""

    VECTOR = "vector"  # shape (features,): tabular rows, scalar inputs
    TIMESERIES = "timeseries"  # shape (steps, channels): sensor windows
    AUDIO = "audio"  # shape (samples, 1): mono PCM scaled to [-1, 1]
    IMAGE = "image"  # shape (height, width, channels): pixels scaled to [0, 1]


@dataclass(frozen=True)
class DatasetSpec:
    """The contract every sample of a dataset must meet."""

    task: Task
    kind: SampleKind
    input_shape: tuple[int, ...]
    # Class names in index order (classification); empty for regression. Empty for classification too
    # while the classes are open (a dataset collected from devices): any label is taken, and a snapshot
    # fixes the classes to the labels its samples carry.
    labels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.input_shape or any(d <= 0 for d in self.input_shape):
            raise InvalidInput(f"input shape {self.input_shape} must have positive dimensions")
        if self.task is Task.CLASSIFICATION and len(set(self.labels)) != len(self.labels):
            raise InvalidInput(f"class labels must be unique, got {list(self.labels)}")
        if self.task is Task.REGRESSION and self.labels:
            raise InvalidInput("a regression dataset has no class labels")

    def check_input(self, x: np.ndarray, where: str) -> None:
        """Raise InvalidInput naming ``where`` if the array cannot be an input of this dataset.

        Separate from ``check_sample`` because a sample collected from a device may arrive unlabelled.
        """
        if tuple(x.shape) != self.input_shape:
            raise InvalidInput(
                f"{where}: sample shape {tuple(x.shape)} does not match the dataset's "
                f"input shape {self.input_shape}"
            )
        if not np.all(np.isfinite(x)):
            raise InvalidInput(f"{where}: sample contains NaN or infinite values")

    def check_sample(self, sample: LabelledSample, where: str) -> None:
        """Raise InvalidInput naming ``where`` if the sample breaks this spec."""
        self.check_input(sample.x, where)
        if self.task is Task.CLASSIFICATION:
            if sample.label is None:
                raise InvalidInput(f"{where}: a classification sample needs a label")
            if self.labels and sample.label not in self.labels:
                raise InvalidInput(
                    f"{where}: unknown label {sample.label!r}; the dataset's labels are {list(self.labels)}"
                )
        elif sample.target is None:
            raise InvalidInput(f"{where}: a regression sample needs a numeric target")


@dataclass(frozen=True)
class LabelledSample:
    """One input array and what it should produce.

    ``x`` is float32 in the dataset's input shape. Classification samples carry ``label`` (a class
    name); regression samples carry ``target``. ``source`` says where the sample came from (a file
    path relative to the import root, or ``generator:NAME``) so lineage survives into the store.
    """

    x: np.ndarray
    source: str
    label: str | None = None
    target: float | None = None


@dataclass(frozen=True)
class ImportedData:
    """What an importer or generator hands to the store: a spec plus samples that all meet it."""

    spec: DatasetSpec
    samples: tuple[LabelledSample, ...] = field(default=())

    def __post_init__(self) -> None:
        for sample in self.samples:
            self.spec.check_sample(sample, sample.source)


@dataclass(frozen=True)
class Arrays:
    """The three splits as arrays: x float32 in the input shape; y class indices or float targets."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

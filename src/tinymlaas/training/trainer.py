"""Train one model on a split dataset: seeded, early-stopped, scored on the held-out test split."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from tinymlaas.data.scaling import InputScaling, ScalingMethod, fit_scaling
from tinymlaas.data.types import Arrays, DatasetSpec, Task
from tinymlaas.errors import InvalidInput
from tinymlaas.metrics import Metric, confusion_matrix, score
from tinymlaas.training import zoo

if TYPE_CHECKING:
    import keras

__all__ = ["EpochCallback", "Recipe", "TrainResult", "default_recipe", "predict", "scaled", "train"]

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# (epoch number from 1, planned epochs, {"loss": ..., "val_loss": ..., ...})
EpochCallback = Callable[[int, int, dict[str, float]], None]


@dataclass(frozen=True)
class Recipe:
    """How to train; stored with the run so it can be repeated."""

    arch: str
    epochs: int
    batch_size: int = 32
    learning_rate: float = 0.003
    patience: int = 10  # epochs without val_loss improvement before stopping
    width: float = 1.0  # width multiplier for the architecture
    seed: int = 1234
    scaling: str = ScalingMethod.STANDARDIZE.value  # how inputs are scaled (data.scaling.ScalingMethod)
    # A search's hyperparameters beyond the width (training.search_space); empty: the family's default.
    # Kept with the run so squeezing (quantization-aware training, cross-validation) rebuilds this model.
    hyper: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        try:
            ScalingMethod(self.scaling)
        except ValueError:
            choices = ", ".join(m.value for m in ScalingMethod)
            raise InvalidInput(f"unknown input scaling {self.scaling!r}; choose one of {choices}") from None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class TrainResult:
    model: keras.Model
    recipe: Recipe
    history: dict[str, list[float]]
    test_metric: Metric
    epochs_run: int
    params: int
    scaling: InputScaling  # learnt from the train split; the model takes inputs only through it
    # Classification only: true class x predicted class on the test split (see metrics.confusion_matrix).
    confusion: list[list[int]] | None = None


# Default epochs per family: the tiny dense nets need many short epochs, the CNNs fewer long ones.
DEFAULT_EPOCHS = {"dense": 300, "cnn1d": 60, "cnn2d": 60, "mobilenet": 40, "gate": 30}
# Batch sizes where the default of 32 trains worse: MobileNet on ~1,000 images generalises from
# smaller batches (0.93 test accuracy on scenes at 16 against 0.83 at 32).
DEFAULT_BATCH = {"mobilenet": 16}


def default_recipe(
    spec: DatasetSpec,
    *,
    arch: str | None,
    epochs: int | None,
    seed: int,
    scaling: str = ScalingMethod.STANDARDIZE.value,
) -> Recipe:
    chosen = arch or zoo.choose(spec)
    return Recipe(
        arch=chosen,
        epochs=epochs or DEFAULT_EPOCHS.get(chosen, 50),
        seed=seed,
        scaling=scaling,
        batch_size=DEFAULT_BATCH.get(chosen, 32),
    )


def predict(model: keras.Model, x: np.ndarray, batch: int = 256) -> np.ndarray:
    """The model's outputs on ``x``, by direct calls: ``predict`` builds a new traced function for
    every model it sees, which cross-validation's fold models would each pay for (and warn about)."""
    outputs = [np.asarray(model(x[i : i + batch], training=False)) for i in range(0, len(x), batch)]
    return np.concatenate(outputs) if outputs else np.empty((0, *model.output_shape[1:]), np.float32)


def scaled(arrays: Arrays, scaling: InputScaling) -> Arrays:
    """The three splits in the model's input units."""
    return Arrays(
        x_train=scaling.apply(arrays.x_train),
        y_train=arrays.y_train,
        x_val=scaling.apply(arrays.x_val) if len(arrays.x_val) else arrays.x_val,
        y_val=arrays.y_val,
        x_test=scaling.apply(arrays.x_test),
        y_test=arrays.y_test,
    )


def _check(spec: DatasetSpec, arrays: Arrays) -> None:
    if len(arrays.x_train) == 0 or len(arrays.x_test) == 0:
        raise InvalidInput("training needs samples in both the train and the test split; add more samples")
    if spec.task is Task.CLASSIFICATION and len(np.unique(arrays.y_train)) < 2:
        raise InvalidInput("classification needs at least two classes in the train split")


def train(
    spec: DatasetSpec, arrays: Arrays, recipe: Recipe, on_epoch: EpochCallback | None = None
) -> TrainResult:
    """Learn the input scaling from the train split, build ``recipe.arch`` for ``spec`` and fit it on
    scaled inputs; the best epoch on validation loss is kept. ``arrays`` are in sensor units."""
    import keras

    _check(spec, arrays)
    scaling = fit_scaling(ScalingMethod(recipe.scaling), arrays.x_train)
    arrays = scaled(arrays, scaling)
    keras.utils.set_random_seed(recipe.seed)
    model = zoo.build(recipe.arch, spec, recipe.width, hyper=recipe.hyper or None)
    classification = spec.task is Task.CLASSIFICATION
    model.compile(
        optimizer=keras.optimizers.Adam(recipe.learning_rate),
        loss="sparse_categorical_crossentropy" if classification else "mse",
        metrics=["accuracy"] if classification else ["mae"],
    )
    has_val = len(arrays.x_val) > 0
    monitor = "val_loss" if has_val else "loss"
    callbacks: list[keras.callbacks.Callback] = [
        keras.callbacks.EarlyStopping(monitor=monitor, patience=recipe.patience, restore_best_weights=True)
    ]
    if on_epoch is not None:
        callbacks.append(
            keras.callbacks.LambdaCallback(
                on_epoch_end=lambda epoch, logs: on_epoch(
                    epoch + 1, recipe.epochs, {k: float(v) for k, v in (logs or {}).items()}
                )
            )
        )
    fit = model.fit(
        arrays.x_train,
        arrays.y_train,
        validation_data=(arrays.x_val, arrays.y_val) if has_val else None,
        epochs=recipe.epochs,
        batch_size=recipe.batch_size,
        shuffle=True,
        verbose=0,
        callbacks=callbacks,
    )
    predictions = predict(model, arrays.x_test)
    history = {key: [float(v) for v in values] for key, values in fit.history.items()}
    return TrainResult(
        model=model,
        recipe=recipe,
        history=history,
        test_metric=score(spec.task, arrays.y_test, predictions),
        epochs_run=len(history.get("loss", [])),
        params=int(model.count_params()),
        scaling=scaling,
        confusion=(
            confusion_matrix(arrays.y_test, predictions, len(spec.labels)) if classification else None
        ),
    )

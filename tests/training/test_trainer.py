import numpy as np
import pytest

from tinymlaas.data.types import Arrays, DatasetSpec, SampleKind, Task
from tinymlaas.errors import InvalidInput
from tinymlaas.training.trainer import Recipe, train


def _sine_arrays(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 2 * np.pi, (600, 1)).astype("float32")
    y = np.sin(x[:, 0]).astype("float32")
    return Arrays(x[:400], y[:400], x[400:500], y[400:500], x[500:], y[500:])


SPEC = DatasetSpec(Task.REGRESSION, SampleKind.VECTOR, (1,))


def test_trains_sine_and_reports_history_and_test_mse():
    epochs_seen = []
    result = train(
        SPEC,
        _sine_arrays(),
        Recipe(arch="dense", epochs=40, batch_size=32, learning_rate=0.01),
        on_epoch=lambda e, total, logs: epochs_seen.append((e, total, "val_loss" in logs)),
    )
    assert result.test_metric.name == "mse"
    assert result.test_metric.value < 0.05  # sin has variance 0.5: the model learned the curve
    assert result.epochs_run == len(result.history["loss"]) == len(epochs_seen)
    assert epochs_seen[0] == (1, 40, True)
    assert result.history["loss"][-1] < result.history["loss"][0]


def test_same_seed_gives_the_same_model():
    recipe = Recipe(arch="dense", epochs=3, seed=5)
    a = train(SPEC, _sine_arrays(), recipe)
    b = train(SPEC, _sine_arrays(), recipe)
    assert a.history["loss"] == pytest.approx(b.history["loss"], rel=1e-5)


def test_early_stopping_ends_before_the_epoch_budget():
    arrays = _sine_arrays()
    noise = Arrays(
        arrays.x_train,
        np.random.default_rng(1).normal(size=400).astype("float32"),
        arrays.x_val,
        np.random.default_rng(2).normal(size=100).astype("float32"),
        arrays.x_test,
        arrays.y_test,
    )
    result = train(SPEC, noise, Recipe(arch="dense", epochs=200, patience=3, learning_rate=0.01))
    assert result.epochs_run < 200


def test_a_single_class_is_refused():
    spec = DatasetSpec(Task.CLASSIFICATION, SampleKind.VECTOR, (1,), ("a", "b"))
    arrays = _sine_arrays()
    zeros = np.zeros(400, "int32")
    with pytest.raises(InvalidInput, match="at least two classes"):
        train(
            spec,
            Arrays(arrays.x_train, zeros, arrays.x_val, zeros[:100], arrays.x_test, zeros[:100]),
            Recipe(arch="dense", epochs=1),
        )


def test_a_recipes_search_hyperparameters_shape_the_model_and_survive_storage():
    recipe = Recipe(arch="dense", epochs=2, width=0.5, hyper={"depth": 1})
    shallow = train(SPEC, _sine_arrays(), recipe)
    default = train(SPEC, _sine_arrays(), Recipe(arch="dense", epochs=2, width=0.5))
    dense_layers = [layer for layer in shallow.model.layers if layer.__class__.__name__ == "Dense"]
    assert len(dense_layers) < len([la for la in default.model.layers if la.__class__.__name__ == "Dense"])
    stored = Recipe(**recipe.as_dict())
    assert stored == recipe and stored.hyper == {"depth": 1}
    assert Recipe(**{k: v for k, v in recipe.as_dict().items() if k != "hyper"}).hyper == {}


def test_quantization_aware_training_rebuilds_a_searched_model_from_its_hyperparameters():
    from tinymlaas.training.qat import QatUnavailable, quantization_aware
    from tinymlaas.training.trainer import scaled

    recipe = Recipe(arch="dense", epochs=2, width=0.5, hyper={"depth": 1})
    trained = train(SPEC, _sine_arrays(), recipe)
    arrays = scaled(_sine_arrays(), trained.scaling)
    tuned = quantization_aware(
        trained.model, "dense", 0.5, SPEC, arrays, learning_rate=0.003, seed=1, epochs=1, hyper=recipe.hyper
    )
    assert tuned.model is not None
    with pytest.raises(QatUnavailable, match="do not match its zoo architecture"):
        quantization_aware(trained.model, "dense", 0.5, SPEC, arrays, learning_rate=0.003, seed=1, epochs=1)

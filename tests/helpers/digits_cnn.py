"""A store holding a digits snapshot and a small CNN trained on it with an int8 variant: what the
splitting and pipeline tests cut, compile and deploy."""

from __future__ import annotations

from pathlib import Path

from tinymlaas.metrics import score
from tinymlaas.services import _keras_io
from tinymlaas.services.context import Context
from tinymlaas.services.datasets import DatasetService, spec_to_dict
from tinymlaas.services.squeezing import store_variant
from tinymlaas.settings import Settings
from tinymlaas.squeeze.convert import Quantization, convert
from tinymlaas.squeeze.variants import Evaluation, assess
from tinymlaas.storage.tables import ModelRow, TrainingRunRow

SEED = 5


def digits_cnn_store(data_dir: Path) -> tuple[Context, int]:
    """A digits snapshot and a small CNN for it with an int8 variant; returns the test split size."""
    import keras

    context = Context(Settings(data_dir=data_dir))
    datasets = DatasetService(context)
    datasets.generate("digits", "digits", samples=400, seed=1)
    snapshot = datasets.snapshot("digits")
    loaded = datasets.load(snapshot, seed=SEED)
    keras.utils.set_random_seed(SEED)
    model = keras.Sequential(
        [
            keras.Input(loaded.spec.input_shape),
            keras.layers.Conv2D(8, 3, activation="relu"),
            keras.layers.DepthwiseConv2D(3, activation="relu"),
            keras.layers.Conv2D(16, 1, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(len(loaded.spec.labels), activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(loaded.arrays.x_train, loaded.arrays.y_train, epochs=40, verbose=0)
    float_metric = score(
        loaded.spec.task, loaded.arrays.y_test, model.predict(loaded.arrays.x_test, verbose=0)
    )
    with context.session() as session:
        session.add(
            TrainingRunRow(
                id="run_split", snapshot_id=snapshot, recipe={"arch": "cnn2d", "epochs": 40, "seed": SEED},
                split_counts={}, history={}, metric_name="accuracy", metric_value=float_metric.value,
                epochs_run=40, duration_s=0.1, confusion_matrix=None,
            )
        )  # fmt: skip
        session.flush()
        session.add(
            ModelRow(
                id="mdl_split", name="digits-cnn", version=1, origin="trained", training_run_id="run_split",
                keras_blob=context.blobs.put(_keras_io.to_bytes(model)), arch="cnn2d", params=1,
                spec=spec_to_dict(loaded.spec), float_metric=float_metric.as_dict(),
            )
        )  # fmt: skip
    evaluation = Evaluation(loaded.spec.task, loaded.arrays.x_test, loaded.arrays.y_test)
    squeezed = assess(
        convert(model, Quantization.INT8, loaded.arrays.x_train), evaluation, max_arena_bytes=256 * 1024
    )
    store_variant(context, "mdl_split", squeezed, snapshot)
    return context, len(loaded.arrays.x_test)

"""Quantization-aware training: the next attempt when post-training int8 loses accuracy.

TensorFlow Model Optimization's quantizer is the field's tool for it, but it wraps ``tf_keras``
layers, not Keras 3 ones. So the zoo builds the same architecture with ``tf_keras``, the trained
weights are copied over, and the twin is fine-tuned with fake-quantized weights and activations
before conversion. Layers the default registry does not know (Conv1D, the 1-D pools) get the
registry's own per-tensor configs: Conv1D's per-channel config assumes 4-D kernels.

Only zoo models can be rebuilt this way; an imported Keras model keeps its post-training result.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from tinymlaas.data.types import Arrays, DatasetSpec, Task
from tinymlaas.errors import InvalidInput
from tinymlaas.training import zoo

if TYPE_CHECKING:
    import keras

__all__ = ["QatResult", "QatUnavailable", "available", "quantization_aware"]

FINE_TUNE_EPOCHS = 12
LEARNING_RATE_FACTOR = 0.1  # fine-tuning starts from trained weights: a tenth of the recipe's rate


class QatUnavailable(InvalidInput):
    """Quantization-aware training cannot run for this model here (and why)."""


@dataclass(frozen=True)
class QatResult:
    model: Any  # a tf_keras model with fake-quantization, ready for the TFLite converter
    epochs_run: int


def available() -> str | None:
    """None when the QAT toolchain imports; otherwise why not, for the variant's report."""
    try:
        import tensorflow_model_optimization  # noqa: F401
        import tf_keras  # noqa: F401
    except ImportError as exc:
        return f"quantization-aware training needs tf_keras and tensorflow-model-optimization ({exc})"
    return None


def _annotate(k: Any, tfmot: Any) -> Any:
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
        default_8bit_quantize_configs as configs,
    )
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
        default_8bit_quantize_registry as registry,
    )

    annotate = tfmot.quantization.keras.quantize_annotate_layer

    def clone(layer: Any) -> Any:
        if isinstance(layer, k.layers.InputLayer):
            return layer
        if isinstance(layer, k.layers.Conv1D) and not isinstance(layer, k.layers.Conv2D):
            return annotate(layer, registry.Default8BitQuantizeConfig(["kernel"], ["activation"], False))
        if isinstance(layer, k.layers.MaxPooling1D):
            return annotate(layer, configs.NoOpQuantizeConfig())
        if isinstance(layer, k.layers.GlobalAveragePooling1D):
            return annotate(layer, configs.Default8BitOutputQuantizeConfig())
        return annotate(layer)

    scope = {
        "Default8BitQuantizeConfig": registry.Default8BitQuantizeConfig,
        "NoOpQuantizeConfig": configs.NoOpQuantizeConfig,
        "Default8BitOutputQuantizeConfig": configs.Default8BitOutputQuantizeConfig,
    }
    return clone, scope


def quantization_aware(
    model: keras.Model,
    arch: str,
    width: float,
    spec: DatasetSpec,
    arrays: Arrays,
    *,
    learning_rate: float,
    seed: int,
    epochs: int = FINE_TUNE_EPOCHS,
    hyper: Mapping[str, int] | None = None,
) -> QatResult:
    """Fine-tune a fake-quantized twin of the zoo model ``model`` on scaled ``arrays``."""
    why = available()
    if why is not None:
        raise QatUnavailable(why)
    if arch not in zoo.ARCHITECTURES:
        raise QatUnavailable(f"quantization-aware training rebuilds zoo architectures; {arch!r} is not one")
    import tensorflow_model_optimization as tfmot
    import tf_keras as k

    k.utils.set_random_seed(seed)
    twin = zoo.build(arch, spec, width, keras_module=k, hyper=hyper)
    weights = model.get_weights()
    if [w.shape for w in twin.get_weights()] != [w.shape for w in weights]:
        raise QatUnavailable(f"the {arch} model's weights do not match its zoo architecture")
    twin.set_weights(weights)
    clone, scope = _annotate(k, tfmot)
    annotated = k.models.clone_model(twin, clone_function=clone)
    with tfmot.quantization.keras.quantize_scope(scope):
        quantized = tfmot.quantization.keras.quantize_apply(annotated)
    classification = spec.task is Task.CLASSIFICATION
    quantized.compile(
        optimizer=k.optimizers.Adam(learning_rate * LEARNING_RATE_FACTOR),
        loss="sparse_categorical_crossentropy" if classification else "mse",
    )
    has_val = len(arrays.x_val) > 0
    fit = quantized.fit(
        arrays.x_train,
        arrays.y_train,
        validation_data=(arrays.x_val, arrays.y_val) if has_val else None,
        epochs=epochs,
        batch_size=32,
        shuffle=True,
        verbose=0,
        callbacks=[
            k.callbacks.EarlyStopping(
                monitor="val_loss" if has_val else "loss", patience=4, restore_best_weights=True
            )
        ],
    )
    return QatResult(model=quantized, epochs_run=len(np.atleast_1d(fit.history.get("loss", []))))

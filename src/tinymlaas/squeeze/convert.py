"""Keras model -> ``.tflite`` bytes at one of the three post-training quantization levels."""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from collections.abc import Iterator
from enum import StrEnum
from typing import TYPE_CHECKING

import numpy as np

from tinymlaas.errors import InvalidInput, RuntimeFailure
from tinymlaas.quiet import native_chatter_filtered

if TYPE_CHECKING:
    import keras

__all__ = ["DEFAULT_QUANTIZATIONS", "Quantization", "convert"]

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Enough calibration samples for stable int8 ranges on small models; more only costs time.
REPRESENTATIVE_SAMPLES = 200


class Quantization(StrEnum):
    FLOAT32 = "float32"  # no quantization: the reference for size and accuracy
    FLOAT16 = "float16"  # weights stored as fp16, dequantized at load; halves size, needs float kernels
    INT8 = "int8"  # full integer: int8 weights, activations, input and output (what MCUs run fast)
    # int8 weights with int16 activations, input and output: finer activation steps for models whose
    # int8 activations lose too much, at twice the arena; TFLM has kernels for the common ops.
    INT16X8 = "int16x8"


# What a squeeze makes unless asked otherwise; int16x8 is an option, not a default.
DEFAULT_QUANTIZATIONS = (Quantization.FLOAT32, Quantization.FLOAT16, Quantization.INT8)


def convert(
    model: keras.Model, quantization: Quantization, representative: np.ndarray | None = None
) -> bytes:
    """Convert ``model`` (Keras 3, or a ``tf_keras`` model after quantization-aware training); int8
    needs ``representative`` inputs from the train split, in the model's input units, to calibrate."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if quantization is Quantization.FLOAT16:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quantization in (Quantization.INT8, Quantization.INT16X8):
        if representative is None or len(representative) == 0:
            raise InvalidInput(
                f"{quantization} quantization needs representative samples from the train split"
            )
        # A seeded subset spread over the whole split: the first rows of a file sorted by class
        # would calibrate the activation ranges on one class only.
        order = np.random.default_rng(0).permutation(len(representative))[:REPRESENTATIVE_SAMPLES]
        calibration = np.asarray(representative, dtype=np.float32)[np.sort(order)]

        def samples() -> Iterator[list[np.ndarray]]:
            for x in calibration:
                yield [x[np.newaxis, ...]]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = samples
        if quantization is Quantization.INT8:
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            io_type = tf.int8
        else:
            ops = tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
            converter.target_spec.supported_ops = [ops]
            io_type = tf.int16
        converter.inference_input_type = io_type
        converter.inference_output_type = io_type
    # The converter exports a SavedModel first and prints about it; keep the terminal for progress.
    # It also warns about input statistics that only apply to the legacy int8 inference type.
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings(), native_chatter_filtered():
            warnings.filterwarnings("ignore", message="Statistics for quantized inputs were expected")
            return bytes(converter.convert())
    except Exception as exc:  # the converter raises many unrelated types; all mean "cannot convert"
        raise RuntimeFailure(f"TFLite conversion to {quantization} failed: {exc}") from exc

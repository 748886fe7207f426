"""Squeeze a model into variants and measure each one as it would ship.

For every variant the figures come from the bytes themselves: size and layers from the flatbuffer,
the minimal arena from TFLM, and the test-split metric from running those exact bytes in TFLM
(microcontrollers) and in LiteRT (Linux-class boards).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

import numpy as np

from tinymlaas.data.scaling import InputScaling
from tinymlaas.data.types import Task
from tinymlaas.errors import RuntimeFailure
from tinymlaas.metrics import Metric, score
from tinymlaas.squeeze.arena import ArenaResult, measure_arena
from tinymlaas.squeeze.convert import DEFAULT_QUANTIZATIONS, Quantization, convert
from tinymlaas.squeeze.info import ModelInfo, SelfTest, TensorInfo
from tinymlaas.squeeze.inspect import inspect_tflite
from tinymlaas.squeeze.runtimes import LiteRtRunner, Runner, TflmRunner

if TYPE_CHECKING:
    import keras

__all__ = ["Evaluation", "Progress", "SqueezedVariant", "assess", "no_progress", "squeeze"]

SELFTEST_VECTORS = 4
# Largest per-element difference a device may see on the self-test: integer outputs may differ by
# a few LSB between TFLM builds (reference vs optimized kernels); float outputs by rounding.
INT_TOLERANCE_LSB = 3.0
FLOAT_TOLERANCE = 1e-3

Progress = Callable[[str], None]


def no_progress(_message: str) -> None:
    """Progress sink for callers that show none."""


@dataclass(frozen=True)
class Evaluation:
    """Held-out data in sensor units to score variants on (None labels when only self-test inputs
    are wanted)."""

    task: Task
    x: np.ndarray
    y: np.ndarray | None


@dataclass(frozen=True)
class SqueezedVariant:
    quantization: str
    tflite: bytes
    info: ModelInfo
    arena: ArenaResult
    metrics: Mapping[str, Metric] = field(default_factory=dict)  # runtime -> metric on the test split
    runtime_errors: Mapping[str, str] = field(default_factory=dict)  # runtime -> why it cannot run
    selftests: Mapping[str, SelfTest] = field(default_factory=dict)  # runtime -> vectors it produced
    # How an int8 variant was quantized: "ptq" (post-training) or "qat" (quantization-aware
    # training); None for float variants and for imported .tflite files.
    method: str | None = None

    def __post_init__(self) -> None:
        for name in ("metrics", "runtime_errors", "selftests"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))


def _selftest_inputs(tensor: TensorInfo, evaluation: Evaluation | None, scaling: InputScaling) -> np.ndarray:
    """Inputs in sensor units: the first held-out samples, or made-up ones when there are none."""
    if evaluation is not None and len(evaluation.x):
        return evaluation.x[:SELFTEST_VECTORS]
    # Without data, seeded values spread over the input's representable range still pin the model.
    rng = np.random.default_rng(0)
    shape = (SELFTEST_VECTORS, *tensor.shape[1:])
    if tensor.scale is not None:
        low = (-128 - (tensor.zero_point or 0)) * tensor.scale
        made_up = rng.uniform(low, low + 255 * tensor.scale, shape).astype(np.float32)
    else:
        made_up = rng.standard_normal(shape).astype(np.float32)
    return scaling.invert(made_up)


def _selftest(runner: Runner, xs: np.ndarray) -> SelfTest:
    inputs, expected = [], []
    for x in xs:
        raw = runner.prepare(x)
        inputs.append(tuple(raw.ravel().tolist()))
        expected.append(tuple(runner.run_raw(raw).ravel().tolist()))
    integer = not runner.output.dtype.startswith("float")
    return SelfTest(
        runtime=runner.runtime,
        inputs=tuple(inputs),
        expected=tuple(expected),
        tolerance=INT_TOLERANCE_LSB if integer else FLOAT_TOLERANCE,
    )


def assess(
    tflite: bytes,
    evaluation: Evaluation | None,
    *,
    max_arena_bytes: int,
    name: str = "model",
    scaling: InputScaling | None = None,
    method: str | None = None,
    progress: Progress = no_progress,
) -> SqueezedVariant:
    """Inspect, measure the arena, and score ``tflite`` in TFLM and LiteRT.

    ``evaluation`` is in sensor units; each runner applies ``scaling`` as a device would.
    """
    scaling = scaling or InputScaling.from_dict(None)
    info = inspect_tflite(tflite, name=name)
    if len(info.inputs) != 1 or len(info.outputs) != 1:
        raise RuntimeFailure(
            f"{name}: models with {len(info.inputs)} inputs and {len(info.outputs)} outputs are not "
            "supported yet (one input and one output)"
        )
    progress(f"{info.quantization}: measuring the TFLM arena")
    arena = measure_arena(tflite, max_bytes=max_arena_bytes)
    runners: dict[str, Runner] = {}
    errors: dict[str, str] = {}
    if arena.arena_bytes is None:
        hint = (
            " (TFLM has no float16 kernels: ship the int8 or float32 variant)"
            if info.quantization == "float16"
            else ""
        )
        errors["tflm"] = f"TFLM cannot run this model: {arena.error}{hint}"
    else:
        runners["tflm"] = TflmRunner(
            tflite, info.inputs[0], info.outputs[0], arena_bytes=arena.arena_bytes, scaling=scaling
        )
    try:
        runners["litert"] = LiteRtRunner(tflite, info.inputs[0], info.outputs[0], scaling=scaling)
    except RuntimeFailure as exc:
        errors["litert"] = exc.detail
    metrics: dict[str, Metric] = {}
    selftests: dict[str, SelfTest] = {}
    for runtime, runner in runners.items():
        if evaluation is not None and evaluation.y is not None:
            progress(f"{info.quantization}: evaluating {len(evaluation.x)} test samples in {runtime}")
            metrics[runtime] = score(evaluation.task, evaluation.y, runner.run_many(evaluation.x))
        selftests[runtime] = _selftest(runner, _selftest_inputs(info.inputs[0], evaluation, scaling))
    return SqueezedVariant(
        quantization=info.quantization,
        tflite=tflite,
        info=info,
        arena=arena,
        metrics=metrics,
        runtime_errors=errors,
        selftests=selftests,
        method=method if info.quantization in ("int8", "int16x8") else None,
    )


def squeeze(
    model: keras.Model,
    representative: np.ndarray,
    evaluation: Evaluation,
    *,
    quantizations: Sequence[Quantization] = DEFAULT_QUANTIZATIONS,
    max_arena_bytes: int,
    scaling: InputScaling | None = None,
    progress: Progress = no_progress,
) -> list[SqueezedVariant]:
    """Convert ``model`` at each quantization level and assess every result.

    ``representative`` (from the train split) and ``evaluation`` are in sensor units; int8 is
    calibrated on them after ``scaling``, the way the device will feed the model.
    """
    scaling = scaling or InputScaling.from_dict(None)
    calibration = scaling.apply(representative) if len(representative) else representative
    variants = []
    for quantization in quantizations:
        progress(f"{quantization}: converting")
        tflite = convert(model, quantization, calibration)
        variants.append(
            assess(
                tflite,
                evaluation,
                max_arena_bytes=max_arena_bytes,
                name=f"{model.name} ({quantization})",
                scaling=scaling,
                method="ptq",
                progress=progress,
            )
        )
    return variants

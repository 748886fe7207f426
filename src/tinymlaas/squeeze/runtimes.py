"""Run a ``.tflite`` in the real runtimes: TFLite Micro (``tflite-micro``) and LiteRT.

Both runners take inputs in sensor units and give float outputs: they apply the model's input
scaling, then quantize and dequantize at the edges exactly as firmware would with the tensors' scale
and zero point, so metrics from either runtime are comparable with the float model's.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

from tinymlaas.data.scaling import InputScaling, ScalingMethod
from tinymlaas.errors import RuntimeFailure
from tinymlaas.quiet import native_chatter_filtered
from tinymlaas.squeeze.info import TensorInfo
from tinymlaas.squeeze.inspect import inspect_tflite

__all__ = ["LiteRtRunner", "Runner", "TflmRunner", "dequantize", "litert_host_times_ms", "quantize"]


def quantize(x: np.ndarray, tensor: TensorInfo) -> np.ndarray:
    """Float values to the tensor's dtype (identity cast for float tensors)."""
    if tensor.scale is None or tensor.dtype.startswith("float"):
        return x.astype(tensor.dtype)
    info = np.iinfo(tensor.dtype)
    q = np.round(x / tensor.scale + (tensor.zero_point or 0))
    return np.clip(q, info.min, info.max).astype(tensor.dtype)


def dequantize(q: np.ndarray, tensor: TensorInfo) -> np.ndarray:
    if tensor.scale is None or tensor.dtype.startswith("float"):
        return q.astype(np.float32)
    return ((q.astype(np.float32) - (tensor.zero_point or 0)) * tensor.scale).astype(np.float32)


class Runner(ABC):
    """One loaded model in one runtime; batch size 1, as on a device."""

    runtime: ClassVar[str]

    def __init__(self, input: TensorInfo, output: TensorInfo, scaling: InputScaling | None = None) -> None:
        self.input = input
        self.output = output
        self.scaling = scaling or InputScaling(ScalingMethod.NONE)

    @abstractmethod
    def run_raw(self, raw: np.ndarray) -> np.ndarray:
        """Invoke on one input already in the tensor's dtype and shape; return the raw output."""

    def prepare(self, x: np.ndarray) -> np.ndarray:
        """One sample in sensor units (without batch axis) to the input tensor's dtype and shape."""
        scaled = self.scaling.apply(np.asarray(x, np.float32).reshape(self.input.shape[1:]))
        return quantize(scaled.reshape(self.input.shape), self.input)

    def run(self, x: np.ndarray) -> np.ndarray:
        """One sample in sensor units (without batch axis) in, dequantized float output out."""
        return dequantize(self.run_raw(self.prepare(x)), self.output).reshape(self.output.shape[1:])

    def run_many(self, xs: np.ndarray) -> np.ndarray:
        return np.stack([self.run(x) for x in xs]) if len(xs) else np.empty((0,))


class TflmRunner(Runner):
    """TFLite Micro, the runtime that ships on microcontrollers, with an explicit arena size."""

    runtime = "tflm"

    def __init__(
        self,
        tflite: bytes,
        input: TensorInfo,
        output: TensorInfo,
        *,
        arena_bytes: int,
        scaling: InputScaling | None = None,
    ) -> None:
        super().__init__(input, output, scaling)
        from tflite_micro import runtime as tflm

        try:
            self._interpreter = tflm.Interpreter.from_bytes(tflite, arena_size=arena_bytes)
        except (RuntimeError, ValueError) as exc:
            raise RuntimeFailure(
                f"TFLM could not load the model with a {arena_bytes}-byte arena: {exc}"
            ) from exc

    def run_raw(self, raw: np.ndarray) -> np.ndarray:
        self._interpreter.set_input(raw, 0)
        self._interpreter.invoke()
        return np.array(self._interpreter.get_output(0))


class LiteRtRunner(Runner):
    """LiteRT (the TFLite runtime for Linux-class devices), single-threaded as on a small board."""

    runtime = "litert"

    def __init__(
        self, tflite: bytes, input: TensorInfo, output: TensorInfo, *, scaling: InputScaling | None = None
    ) -> None:
        super().__init__(input, output, scaling)
        from ai_edge_litert.interpreter import Interpreter

        try:
            with native_chatter_filtered():
                self._interpreter = Interpreter(model_content=tflite, num_threads=1)
                self._interpreter.allocate_tensors()
        except (RuntimeError, ValueError) as exc:
            raise RuntimeFailure(f"LiteRT could not load the model: {exc}") from exc
        self._in = self._interpreter.get_input_details()[0]["index"]
        self._out = self._interpreter.get_output_details()[0]["index"]

    def run_raw(self, raw: np.ndarray) -> np.ndarray:
        self._interpreter.set_tensor(self._in, raw)
        self._interpreter.invoke()
        return np.array(self._interpreter.get_tensor(self._out))


def litert_host_times_ms(tflite: bytes, runs: int) -> list[float]:
    """Milliseconds of each of ``runs`` invokes of an int8 model in LiteRT on this host, on one random
    input, after a first run that allocates and warms caches: what an emulated Linux node spends per
    inference, since it runs the same runtime on this host."""
    info = inspect_tflite(tflite)
    runner = LiteRtRunner(tflite, info.inputs[0], info.outputs[0])
    raw = np.random.default_rng(0).integers(-128, 128, info.inputs[0].shape, dtype=np.int8)
    runner.run_raw(raw)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        runner.run_raw(raw)
        times.append((time.perf_counter() - started) * 1000.0)
    return times

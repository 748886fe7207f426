"""The agent's inference loop: one window from the sensor per tick, through the installed model.

The loop feeds the TinyML Runtime object's telemetry (count, mean and p95 latency, last result,
confidence histogram), which the server observes to watch a model in the field. An install swaps the
runner between two ticks, so the device never stops sampling while a new model goes in.

Each inference runs in a worker thread: a Linux-class model can take milliseconds, and the event loop
must keep answering the server meanwhile. Latency is measured around ``Runner.run`` in that thread, so
it is the model's time (quantizing the input included), not the scheduler's; a module that carries
its board's on-target estimate reports that estimate, which the run is held to (``PacedRunner``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import numpy as np

from tinymlaas.agent.runtime import PacedRunner, latency_basis
from tinymlaas.agent.sensors import SensorSource
from tinymlaas.errors import InvalidInput
from tinymlaas.squeeze.runtimes import Runner, dequantize

__all__ = ["HISTOGRAM_BINS", "InferenceLoop", "InferenceOutput", "Telemetry", "fit_window"]

_log = logging.getLogger(__name__)

HISTOGRAM_BINS = 10  # bin i counts top-class probabilities in [i/10, (i+1)/10); 1.0 goes to the last
LATENCY_WINDOW = 200  # inferences the mean and p95 latency are taken over
MAX_RATE_HZ = 1000.0


@dataclass(frozen=True)
class Telemetry:
    """What the loop reports. ``count`` and ``errors`` run since the agent started; the latency figures
    and the histogram describe the model running now and restart when it is swapped."""

    count: int
    errors: int
    mean_latency_ms: float
    p95_latency_ms: float
    last_result: str
    histogram: tuple[int, ...]
    latency_basis: str = ""  # where the latency figures come from (runtime.latency_basis)


@dataclass(frozen=True)
class InferenceOutput:
    """One inference as a pipeline stage needs it: the raw output tensor (what goes on to the next
    node, never dequantized on the way), the result as the Last Result resource shows it, and when
    and what the window was."""

    raw: np.ndarray  # the output tensor in its own dtype and shape, batch axis included
    raw_input: np.ndarray  # the quantized input the model ran on (a cascade passes the window on)
    text: str
    confidence: float | None  # top-class probability; None for a regression output
    seconds: float  # the inference's latency, on the runner's latency basis
    read_at: float  # unix seconds when the window was read from the sensor
    label: str | None  # the sensor's ground truth for the window, when it knows one


def fit_window(window: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``window`` in the model's input ``shape`` (batch axis excluded).

    A window with the same number of values is reshaped. A time series with the model's channels but
    another number of steps keeps its newest steps, or is zero-padded in front: a sensor that samples
    a longer window than the model was trained on still yields the latest stretch of motion.
    """
    if window.size == math.prod(shape):
        return window.reshape(shape)
    if window.ndim == len(shape) >= 2 and window.shape[1:] == shape[1:]:
        steps = shape[0]
        if window.shape[0] >= steps:
            return window[-steps:]
        padding = np.zeros((steps - window.shape[0], *shape[1:]), dtype=window.dtype)
        return np.concatenate([padding, window])
    raise InvalidInput(f"A sensor window of shape {window.shape} cannot feed a model input of shape {shape}")


def _result(output: np.ndarray) -> tuple[str, float | None]:
    """The result as the Last Result resource shows it, and the top-class probability (None: regression)."""
    values = np.asarray(output, dtype=np.float64).ravel()
    if values.size == 1:
        return f"{values[0]:.6g}", None
    index = int(np.argmax(values))
    return str(index), float(values[index])


class InferenceLoop:
    """Runs ``runner`` on windows from ``source`` at ``rate_hz`` until stopped.

    ``runner`` may be None (no model installed yet); the loop then leaves the source unread, so a
    directory of files waits for a model instead of being consumed, unless ``on_window`` takes the
    windows (the data uploader, which collects the data a first model is trained on). ``on_window``
    gets every window read, before the model sees it; ``on_result`` the result text after each inference;
    ``on_output`` the whole output (a pipeline stage passes it on), awaited before the next tick so a
    stage that persists each output slows sampling down rather than queueing outputs without bound.
    """

    def __init__(
        self,
        runner: Runner | None,
        source: SensorSource,
        rate_hz: float,
        *,
        on_result: Callable[[str], None] | None = None,
        on_window: Callable[[np.ndarray], None] | None = None,
        on_output: Callable[[InferenceOutput], Awaitable[None]] | None = None,
    ) -> None:
        self._runner = runner
        self.source = source
        self.rate_hz = rate_hz
        self._on_result = on_result
        self.on_window = on_window
        self.on_output = on_output
        self._count = 0
        self._errors = 0
        self._latencies: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self._histogram = [0] * HISTOGRAM_BINS
        self._last_result = ""
        self._task: asyncio.Task[None] | None = None

    @property
    def rate_hz(self) -> float:
        return self._rate_hz

    @rate_hz.setter
    def rate_hz(self, value: float) -> None:
        if not 0 < value <= MAX_RATE_HZ:
            raise InvalidInput(f"An inference rate is above 0 and at most {MAX_RATE_HZ:g} Hz, got {value}")
        self._rate_hz = float(value)

    @property
    def runner(self) -> Runner | None:
        return self._runner

    def swap(self, runner: Runner | None) -> None:
        """Run ``runner`` from the next tick on; the per-model figures start afresh."""
        self._runner = runner
        self._latencies.clear()
        self._histogram = [0] * HISTOGRAM_BINS
        self._last_result = ""

    def telemetry(self) -> Telemetry:
        latencies = sorted(self._latencies)
        mean = sum(latencies) / len(latencies) if latencies else 0.0
        p95 = latencies[min(len(latencies) - 1, math.ceil(0.95 * len(latencies)) - 1)] if latencies else 0.0
        return Telemetry(
            count=self._count,
            errors=self._errors,
            mean_latency_ms=mean,
            p95_latency_ms=p95,
            last_result=self._last_result,
            histogram=tuple(self._histogram),
            latency_basis=latency_basis(self._runner),
        )

    async def step(self) -> bool:
        """Read one window and run it; False when there was no model or no new window."""
        runner = self._runner
        if runner is None and self.on_window is None:
            return False
        window = self.source.read()
        if window is None:
            return False
        read_at = time.time()
        label = getattr(self.source, "last_label", None)
        if self.on_window is not None:
            try:
                self.on_window(window)
            except Exception:  # a failing consumer must not stop inference either
                _log.exception("the window consumer failed")
        if runner is None:
            return False
        try:
            raw_input, raw, seconds = await asyncio.to_thread(_timed_run, runner, window)
        except Exception as exc:  # a failing model must not stop the device's loop
            self._errors += 1
            if self._errors == 1 or self._errors % 1000 == 0:
                _log.warning("inference failed (%d so far): %s", self._errors, exc)
            return False
        if runner is not self._runner:
            return True  # swapped while this ran: the result belongs to the model that left
        text, confidence = _result(dequantize(raw, runner.output))
        self._count += 1
        self._latencies.append(seconds * 1000.0)
        self._last_result = text
        if confidence is not None:
            clipped = min(max(confidence, 0.0), 1.0)
            self._histogram[min(int(clipped * HISTOGRAM_BINS), HISTOGRAM_BINS - 1)] += 1
        if self._on_result is not None:
            self._on_result(text)
        if self.on_output is not None:
            output = InferenceOutput(
                raw, raw_input, text, confidence, seconds, read_at, label if isinstance(label, str) else None
            )
            try:
                await self.on_output(output)
            except Exception:  # a failing stage must not stop inference
                _log.exception("the output consumer failed")
        return True

    async def run(self) -> None:
        """Tick at ``rate_hz`` until cancelled; a slow inference delays the next tick, never queues ticks."""
        loop = asyncio.get_running_loop()
        next_tick = loop.time()
        while True:
            await self.step()
            next_tick = max(next_tick + 1.0 / self._rate_hz, loop.time())
            await asyncio.sleep(next_tick - loop.time())

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.run(), name="inference loop")

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None


def _timed_run(runner: Runner, window: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """The raw input and output tensors and the latency; quantizing the input counts, as
    ``Runner.run`` does."""
    shape = tuple(int(d) for d in runner.input.shape[1:])
    x = fit_window(np.asarray(window, dtype=np.float32), shape)
    started = time.perf_counter()
    raw_input = runner.prepare(x)
    output = runner.run_raw(raw_input)
    if isinstance(runner, PacedRunner):
        return raw_input, output, runner.latency_s  # the board's estimate, which the run was held to
    return raw_input, output, time.perf_counter() - started

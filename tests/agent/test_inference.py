from __future__ import annotations

import asyncio

import numpy as np
import pytest

from tinymlaas.agent import GestureStream, InferenceLoop, SensorSource, fit_window
from tinymlaas.agent.runtime import PacedRunner
from tinymlaas.errors import InvalidInput
from tinymlaas.squeeze.info import TensorInfo
from tinymlaas.squeeze.runtimes import Runner


class FixedRunner(Runner):
    """Answers every window with the same float output."""

    runtime = "fake"

    def __init__(self, output: list[float], input_shape=(1, 32, 3)) -> None:
        super().__init__(
            TensorInfo("in", input_shape, "float32", None, None),
            TensorInfo("out", (1, len(output)), "float32", None, None),
        )
        self.answer = np.asarray([output], np.float32)
        self.seen: list[tuple[int, ...]] = []

    def run_raw(self, raw: np.ndarray) -> np.ndarray:
        self.seen.append(raw.shape)
        return self.answer


class Windows(SensorSource):
    def __init__(self, *windows: np.ndarray | None) -> None:
        self.windows = list(windows)

    @property
    def shape(self):
        return None

    def read(self):
        return self.windows.pop(0) if self.windows else None


def test_fit_window_reshapes_crops_and_pads():
    assert fit_window(np.zeros(96, np.float32), (32, 3)).shape == (32, 3)
    long = np.arange(64 * 3, dtype=np.float32).reshape(64, 3)
    assert np.array_equal(fit_window(long, (32, 3)), long[-32:])
    padded = fit_window(np.ones((10, 3), np.float32), (32, 3))
    assert padded.shape == (32, 3) and padded[:22].sum() == 0 and padded[22:].sum() == 30
    with pytest.raises(InvalidInput):
        fit_window(np.zeros((5, 4)), (32, 3))


def test_telemetry_counts_results_latency_and_confidence():
    async def scenario() -> None:
        runner = FixedRunner([0.1, 0.75, 0.15])
        loop = InferenceLoop(runner, GestureStream(), rate_hz=100)
        for _ in range(5):
            assert await loop.step()
        telemetry = loop.telemetry()
        assert telemetry.count == 5 and telemetry.errors == 0
        assert telemetry.last_result == "1"
        assert telemetry.histogram[7] == 5 and sum(telemetry.histogram) == 5
        assert 0 < telemetry.mean_latency_ms <= telemetry.p95_latency_ms
        assert runner.seen == [(1, 32, 3)] * 5  # the 64-step windows keep their newest 32 steps

        loop.swap(FixedRunner([2.5]))
        assert await loop.step()
        telemetry = loop.telemetry()
        assert telemetry.count == 6 and telemetry.last_result == "2.5" and sum(telemetry.histogram) == 0

    asyncio.run(scenario())


def test_no_model_or_no_window_skips_the_tick_and_bad_windows_count_as_errors():
    async def scenario() -> None:
        source = Windows(np.zeros((5, 4), np.float32), None)
        loop = InferenceLoop(None, source, rate_hz=10)
        assert not await loop.step() and len(source.windows) == 2  # no model: the source is left alone
        loop.swap(FixedRunner([1.0, 0.0]))
        assert not await loop.step()
        assert not await loop.step()
        assert (loop.telemetry().count, loop.telemetry().errors) == (0, 1)
        with pytest.raises(InvalidInput):
            loop.rate_hz = 0

    asyncio.run(scenario())


def test_the_loop_runs_at_its_rate_until_stopped():
    async def scenario() -> None:
        loop = InferenceLoop(FixedRunner([0.5, 0.5]), GestureStream(), rate_hz=200)
        loop.start()
        await asyncio.sleep(0.3)
        await loop.stop()
        count = loop.telemetry().count
        assert 5 <= count <= 70
        await asyncio.sleep(0.05)
        assert loop.telemetry().count == count

    asyncio.run(scenario())


def test_a_window_consumer_gets_every_window_read_with_or_without_a_model():
    async def scenario() -> None:
        first, second = np.zeros((32, 3), np.float32), np.ones((32, 3), np.float32)
        taken: list[np.ndarray] = []
        loop = InferenceLoop(None, Windows(first, second, None), rate_hz=10, on_window=taken.append)
        assert not await loop.step()  # read for the consumer, though no model runs
        loop.swap(FixedRunner([1.0, 0.0]))
        assert await loop.step()
        assert not await loop.step()
        assert [w is first for w in taken] == [True, False] and taken[1] is second
        assert loop.telemetry().count == 1

        def broken(_window: np.ndarray) -> None:
            raise RuntimeError("consumer failed")

        loop = InferenceLoop(FixedRunner([1.0, 0.0]), GestureStream(), rate_hz=10, on_window=broken)
        assert await loop.step()  # inference goes on

    asyncio.run(scenario())


def test_a_paced_runner_takes_the_boards_time_and_reports_that_figure():
    async def scenario() -> None:
        paced = PacedRunner(FixedRunner([0.2, 0.8]), 0.04, "estimate: 2,560,000 instructions in QEMU")
        loop = InferenceLoop(paced, GestureStream(), rate_hz=100)
        started = asyncio.get_running_loop().time()
        for _ in range(3):
            assert await loop.step()
        assert asyncio.get_running_loop().time() - started >= 3 * 0.04
        telemetry = loop.telemetry()
        assert telemetry.mean_latency_ms == pytest.approx(40.0) and telemetry.p95_latency_ms == pytest.approx(
            40.0
        )
        assert telemetry.latency_basis == "estimate: 2,560,000 instructions in QEMU"
        loop.swap(FixedRunner([1.0, 0.0]))
        assert await loop.step()
        assert loop.telemetry().latency_basis.startswith("measured: wall time of the fake runtime")

    asyncio.run(scenario())

"""Object 26241, TinyML Runtime, on the agent: what the board runs and how the inference loop does.

The capabilities come from the board profile and the runtime catalog: the board's preferred runtime,
its version and operators, the RAM left for the tensor arena and the flash of a model slot. The
telemetry is the inference loop's, which observers receive every ``telemetry_interval`` seconds while
it changes; the Inference Rate is the one writable resource.

Hand-written on the aiocoap-free LwM2M core, as every provider is (see ``objects.base``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping

import tflite

from tinymlaas.agent.active_model import ActiveModel
from tinymlaas.agent.inference import HISTOGRAM_BINS, MAX_RATE_HZ, Telemetry
from tinymlaas.agent.objects.base import ObjectProvider, package_version
from tinymlaas.catalog import load_catalog
from tinymlaas.catalog.board import Board
from tinymlaas.lwm2m.core import TINYML_RUNTIME, Path, Value
from tinymlaas.lwm2m.transport import CoapResponse

__all__ = ["TELEMETRY_PATHS", "TinymlRuntimeProvider"]

INFERENCE_RATE = Path(26241, 0, 15)
TELEMETRY_PATHS = (
    *(Path(26241, 0, resource) for resource in (10, 11, 12, 13, 14, 16)),
    *(Path(26241, 0, 14, bin_) for bin_ in range(HISTOGRAM_BINS)),
)
# Markers in the generated TFLite schema, not operators a model can use.
_NOT_OPERATORS = frozenset({"CUSTOM", "DELEGATE", "PLACEHOLDER_FOR_GREATER_OP_CODES"})
_RUNTIME_PACKAGES = {"tflm": "tflite-micro", "litert": "ai-edge-litert", "native": "tinymlaas"}
_NO_TELEMETRY = Telemetry(0, 0, 0.0, 0.0, "", (0,) * HISTOGRAM_BINS)


def _supported_ops(board: Board) -> tuple[str, ...]:
    """The operators the board's preferred runtime implements; LiteRT has every TFLite builtin."""
    profile = load_catalog().runtime(board.runtimes[0])
    if profile.supported_ops is not None:
        return tuple(sorted(profile.supported_ops))
    names = (name for name in vars(tflite.BuiltinOperator) if name.isupper() and name not in _NOT_OPERATORS)
    return tuple(sorted(names))


class TinymlRuntimeProvider(ObjectProvider):
    """``/26241/0`` for the board's preferred runtime, ``name`` at ``version``."""

    definition = TINYML_RUNTIME
    writable = frozenset({INFERENCE_RATE})

    def __init__(
        self, board: Board, model: ActiveModel, rate_hz: float, changed: Callable[[Iterable[Path]], None]
    ) -> None:
        self._board = board
        self._model = model
        self._rate_hz = rate_hz
        self._changed = changed
        self.name = board.runtimes[0]
        self.version = package_version(_RUNTIME_PACKAGES.get(self.name, self.name))
        self._ops = _supported_ops(board)

    def values(self) -> dict[Path, Value]:
        board = self._board
        telemetry = self._model.telemetry() or _NO_TELEMETRY
        values: dict[Path, Value] = {
            Path(26241, 0, 0): self.name,
            Path(26241, 0, 1): self.version,
            Path(26241, 0, 3): board.usable_ram_bytes,
            Path(26241, 0, 4): board.usable_flash_bytes,
            Path(26241, 0, 6): board.id,
            Path(26241, 0, 10): telemetry.count,
            Path(26241, 0, 11): telemetry.mean_latency_ms,
            Path(26241, 0, 12): telemetry.p95_latency_ms,
            Path(26241, 0, 13): telemetry.last_result,
            INFERENCE_RATE: self._rate_hz,
            Path(26241, 0, 16): telemetry.latency_basis,
        }
        values.update({Path(26241, 0, 2, index): op for index, op in enumerate(self._ops)})
        values.update({Path(26241, 0, 14, index): n for index, n in enumerate(telemetry.histogram)})
        if board.accelerator:
            values[Path(26241, 0, 5)] = board.accelerator
        return values

    async def write(self, values: Mapping[Path, Value]) -> CoapResponse:
        rate = values.get(INFERENCE_RATE)
        if isinstance(rate, float):
            if not 0 < rate <= MAX_RATE_HZ:
                return CoapResponse("4.00", f"an inference rate is in (0, {MAX_RATE_HZ:g}] Hz".encode())
            if self._model.inference is not None:
                self._model.inference.rate_hz = rate
            self._rate_hz = rate
            self._changed([INFERENCE_RATE])
        return CoapResponse("2.04")

    async def report_telemetry(self, interval: float) -> None:
        """Notify telemetry observers every ``interval`` seconds while the figures change."""
        last: Telemetry | None = None
        while True:
            await asyncio.sleep(interval)
            current = self._model.telemetry()
            if current is not None and current != last:
                last = current
                self._changed(TELEMETRY_PATHS)

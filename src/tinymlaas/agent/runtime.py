"""Load an installed module into its real runtime and prove it computes what the server measured.

An MCU-class module runs in TFLM with exactly the tensor arena its firmware would reserve
(``kTensorArenaSize`` from the bundle's ``model_config.h``), and only if the emulated board has
that much RAM; a Linux-class module runs in LiteRT; a native module's own C sources are built with
the host's C compiler and called, so the device runs the code that ships. The self-test replays the
manifest's vectors through the raw tensors, so quantization at the edges cannot hide a difference.
Sensor windows reach the model through the manifest's input scaling, as the generated firmware
applies it.

A module measured on its target core carries the board's latency estimate (``target`` in the
manifest); an emulated device then takes that long per inference and reports that figure, not the
host's time, so everything timed downstream sees the board's pace.
"""

from __future__ import annotations

import platform
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from tinymlaas.agent.slots import SlotInfo
from tinymlaas.data.scaling import InputScaling, ScalingMethod
from tinymlaas.errors import InvalidInput
from tinymlaas.squeeze.info import TensorInfo
from tinymlaas.squeeze.runtimes import LiteRtRunner, Runner, TflmRunner

__all__ = [
    "MODEL_FILE",
    "TFLM_CONFIG_FILE",
    "NativeRunner",
    "PacedRunner",
    "SelfTestReport",
    "latency_basis",
    "load_model",
    "self_test",
    "tflm_arena_bytes",
]

MODEL_FILE = "model.tflite"
TFLM_CONFIG_FILE = "model_config.h"
_ARENA_DECLARATION = re.compile(r"^\s*constexpr\s+unsigned\s+int\s+kTensorArenaSize\s*=\s*(\d+)\s*;", re.M)


@dataclass(frozen=True)
class SelfTestReport:
    """How the installed model did on the manifest's vectors (differences in raw output units)."""

    passed: bool
    vectors: int
    max_abs_diff: float
    tolerance: float
    detail: str


def _tensor(described: Mapping[str, Any]) -> TensorInfo:
    return TensorInfo(
        name=str(described["name"]),
        shape=tuple(int(d) for d in described["shape"]),
        dtype=str(described["dtype"]),
        scale=described.get("scale"),
        zero_point=described.get("zero_point"),
    )


def tflm_arena_bytes(slot: SlotInfo) -> int:
    """The arena the module's firmware reserves: ``kTensorArenaSize`` in its ``model_config.h``."""
    try:
        config = (slot.path / TFLM_CONFIG_FILE).read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"The tflm module in slot {slot.slot} has no {TFLM_CONFIG_FILE}: {exc}") from exc
    match = _ARENA_DECLARATION.search(config)
    if match is None:
        raise InvalidInput(f"{TFLM_CONFIG_FILE} in slot {slot.slot} does not declare kTensorArenaSize")
    return int(match.group(1))


class NativeRunner(Runner):
    """A native module's C sources, built for this host and called in process."""

    runtime = "native"

    def __init__(
        self, files: Mapping[str, bytes], input: TensorInfo, output: TensorInfo, *, scaling: InputScaling
    ) -> None:
        super().__init__(input, output, scaling)
        from tinymlaas.compilers.native.host import HostModule

        self._module = HostModule(files)

    def run_raw(self, raw: np.ndarray) -> np.ndarray:
        out = self._module.run(np.asarray(raw, dtype=np.int8))
        return np.asarray(out, dtype=np.int8).reshape(self.output.shape)


class PacedRunner(Runner):
    """Another runner held to the board's estimated latency: each inference takes at least that long,
    and ``latency_s`` is what the device reports."""

    runtime = "paced"

    def __init__(self, inner: Runner, latency_s: float, basis: str) -> None:
        super().__init__(inner.input, inner.output, inner.scaling)
        self.inner = inner
        self.latency_s = latency_s
        self.basis = basis

    def run_raw(self, raw: np.ndarray) -> np.ndarray:
        started = time.perf_counter()
        output = self.inner.run_raw(raw)
        remaining = self.latency_s - (time.perf_counter() - started)
        if remaining > 0:
            time.sleep(remaining)
        return output


def latency_basis(runner: Runner | None) -> str:
    """Where the latency a device reports comes from, in one sentence."""
    if runner is None:
        return ""
    if isinstance(runner, PacedRunner):
        return runner.basis
    return (
        f"measured: wall time of the {runner.runtime} runtime on the emulating host "
        f"({platform.machine()}), not on the board"
    )


def _module_files(slot: SlotInfo) -> dict[str, bytes]:
    files = {}
    for name in slot.manifest.get("files") or {}:
        if name.endswith((".c", ".h")) and "/" not in name:
            try:
                files[name] = (slot.path / name).read_bytes()
            except OSError as exc:
                raise InvalidInput(f"Slot {slot.slot} lacks the module file {name}: {exc}") from exc
    return files


def _paced(runner: Runner, manifest: Mapping[str, Any]) -> Runner:
    """``runner`` held to the manifest's on-target latency estimate when it carries one."""
    target = manifest.get("target")
    if not isinstance(target, Mapping):
        return runner
    latency_ms = target.get("latency_ms")
    if not isinstance(latency_ms, int | float) or not 0 <= latency_ms < 60_000:
        return runner
    return PacedRunner(runner, latency_ms / 1000.0, str(target.get("latency_basis", "")))


def load_model(slot: SlotInfo, *, arena_limit_bytes: int | None) -> Runner:
    """A runner for the slot's model.

    ``arena_limit_bytes`` is the RAM the emulated board leaves for the tensor arena (None: no limit);
    a TFLM module that needs more is refused with InvalidInput, as the real board could not run it.
    LiteRT plans its own memory, so the limit applies to TFLM only.
    """
    manifest = slot.manifest
    try:
        input_tensor, output_tensor = _tensor(manifest["inputs"][0]), _tensor(manifest["outputs"][0])
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise InvalidInput(f"The manifest in slot {slot.slot} does not describe input and output 0") from exc
    scaling = _scaling(slot, input_tensor)
    try:
        tflite = (slot.path / MODEL_FILE).read_bytes()
    except OSError as exc:
        raise InvalidInput(f"Slot {slot.slot} has no {MODEL_FILE}: {exc}") from exc
    runtime = manifest.get("runtime")
    if runtime == "tflm":
        arena = tflm_arena_bytes(slot)
        if arena_limit_bytes is not None and arena > arena_limit_bytes:
            raise InvalidInput(
                f"The model needs a {arena}-byte tensor arena but this board leaves {arena_limit_bytes} "
                "bytes of RAM for it"
            )
        return TflmRunner(tflite, input_tensor, output_tensor, arena_bytes=arena, scaling=scaling)
    if runtime == "litert":
        return LiteRtRunner(tflite, input_tensor, output_tensor, scaling=scaling)
    if runtime == "native":
        ram = manifest.get("ram_bytes")
        if arena_limit_bytes is not None and isinstance(ram, int) and ram > arena_limit_bytes:
            raise InvalidInput(
                f"The module needs {ram} bytes of RAM but this board leaves {arena_limit_bytes} bytes for it"
            )
        native = NativeRunner(_module_files(slot), input_tensor, output_tensor, scaling=scaling)
        return _paced(native, manifest)
    raise InvalidInput(f"This agent runs tflm, litert and native modules, not {runtime!r}")


def _scaling(slot: SlotInfo, input_tensor: TensorInfo) -> InputScaling:
    """The manifest's input scaling, checked against input 0 (a manifest without one scales nothing)."""
    try:
        scaling = InputScaling.from_dict(slot.manifest.get("input_scaling"))
    except InvalidInput as exc:
        raise InvalidInput(f"The manifest in slot {slot.slot}: {exc.detail}") from exc
    channels = input_tensor.shape[-1] if input_tensor.shape else 1
    if scaling.method is not ScalingMethod.NONE and scaling.channels != channels:
        raise InvalidInput(
            f"The manifest in slot {slot.slot} scales {scaling.channels} input channels; "
            f"input 0 has {channels}"
        )
    return scaling


def self_test(runner: Runner, manifest: Mapping[str, Any]) -> SelfTestReport:
    """Run every self-test input and compare with the expected output; fail on the first miss.

    A manifest without vectors fails: a model the device cannot check must not be confirmed.
    """
    selftest = manifest.get("selftest") or {}
    inputs, expected = selftest.get("inputs") or [], selftest.get("expected") or []
    tolerance = float(selftest.get("tolerance", 0.0))
    if not inputs or len(inputs) != len(expected):
        return SelfTestReport(
            passed=False,
            vectors=0,
            max_abs_diff=float("inf"),
            tolerance=tolerance,
            detail="The manifest carries no usable self-test vectors (none, or inputs and outputs unpaired)",
        )
    worst = 0.0
    for index, (values, wanted) in enumerate(zip(inputs, expected, strict=True)):
        raw = np.asarray(values, dtype=runner.input.dtype)
        if raw.size != int(np.prod(runner.input.shape)):
            return SelfTestReport(
                False, index, float("inf"), tolerance, f"Self-test input {index} has {raw.size} values"
            )
        got = np.asarray(runner.run_raw(raw.reshape(runner.input.shape)), dtype=np.float64).ravel()
        want = np.asarray(wanted, dtype=np.float64).ravel()
        if got.shape != want.shape:
            return SelfTestReport(
                False,
                index + 1,
                float("inf"),
                tolerance,
                f"Self-test vector {index}: {got.size} output values, the manifest expects {want.size}",
            )
        diff = float(np.max(np.abs(got - want))) if got.size else 0.0
        worst = max(worst, diff)
        if diff > tolerance:
            return SelfTestReport(
                False,
                index + 1,
                worst,
                tolerance,
                f"Self-test vector {index}: output differs by {diff:g} (tolerance {tolerance:g})",
            )
    return SelfTestReport(
        True, len(inputs), worst, tolerance, f"{len(inputs)} vectors within {tolerance:g} (max {worst:g})"
    )

"""The native module checked and measured where it will run: bit-exact on the host and on the core.

Every figure the ``native`` compiler reports comes from here. The module is built for the host and
run on the model's test vectors beside the TFLM interpreter; then it is built for the board's core
with arm-none-eabi-gcc and run in QEMU, where the outputs are compared once more and the
instructions per inference, the linker's flash and RAM and the painted stack are read. A module
that differs from TFLM on a single output byte is refused: the tflm compiler still builds the model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tinymlaas.catalog.board import Board
from tinymlaas.catalog.cores import core_timing, estimate_ms
from tinymlaas.compilers.base import OnTarget, VariantArtifact
from tinymlaas.compilers.native.host import HostModule
from tinymlaas.compilers.native.qemu import TargetMeasurement, measure_on_qemu
from tinymlaas.errors import UnsupportedModel
from tinymlaas.squeeze.arena import generous_arena
from tinymlaas.squeeze.runtimes import TflmRunner

__all__ = ["HOST_VECTORS", "TARGET_VECTORS", "measure_native", "reference_vectors"]

HOST_VECTORS = 1_000  # test vectors compared on the host build, at most
TARGET_VECTORS = 16  # of those, run in QEMU on the core's build (each is a full emulated inference)
_ARENA_LIMIT = 8 * 1024 * 1024


def reference_vectors(variant: VariantArtifact) -> list[bytes]:
    """The quantized inputs to check on: the dataset's test vectors, else the TFLM self-test inputs."""
    vectors = list(variant.test_vectors[:HOST_VECTORS])
    if not vectors:
        selftest = variant.selftests.get("tflm")
        if selftest is not None:
            vectors = [np.asarray(v, dtype=np.int8).tobytes() for v in selftest.inputs]
    if not vectors:
        raise UnsupportedModel(
            f"Variant {variant.variant_id} has neither test vectors nor TFLM self-test vectors, so the "
            "native module cannot be checked against TFLM"
        )
    return vectors


def _tflm_outputs(variant: VariantArtifact, vectors: Sequence[bytes]) -> list[bytes]:
    info = variant.info
    arena = variant.arena_bytes or generous_arena(variant.tflite, _ARENA_LIMIT)
    runner = TflmRunner(variant.tflite, info.inputs[0], info.outputs[0], arena_bytes=arena)
    shape = info.inputs[0].shape
    return [
        np.asarray(runner.run_raw(np.frombuffer(v, dtype=np.int8).reshape(shape)), dtype=np.int8).tobytes()
        for v in vectors
    ]


def _first_difference(got: Sequence[bytes], want: Sequence[bytes]) -> tuple[int, int] | None:
    """(vector index, differing bytes) of the first vector whose output differs, or None."""
    for index, (a, b) in enumerate(zip(got, want, strict=True)):
        if a != b:
            diff = int(np.count_nonzero(np.frombuffer(a, np.int8) != np.frombuffer(b, np.int8)))
            return index, diff
    return None


def _refuse_difference(where: str, found: tuple[int, int], out_bytes: int) -> UnsupportedModel:
    index, differing = found
    return UnsupportedModel(
        f"the native module's output differs from TFLM {where} on vector {index} ({differing} of "
        f"{out_bytes} bytes); it is not shipped. The tflm compiler builds this model."
    )


def _latency(measured: TargetMeasurement, board: Board) -> dict[str, Any]:
    timing = core_timing(board.core)
    estimate = estimate_ms(measured.instructions, board.core, board.clock_mhz)
    if timing is None or estimate is None:
        return {
            "latency_ms": None,
            "latency_basis": f"no cycles-per-instruction figure for {board.core}: no latency estimate",
        }
    ms, low, high = estimate
    return {
        "latency_ms": ms,
        "latency_low_ms": low,
        "latency_high_ms": high,
        "clock_mhz": board.clock_mhz,
        "cpi": timing.cpi,
        "cpi_low": timing.cpi_low,
        "cpi_high": timing.cpi_high,
        "cpi_source": timing.source,
        "latency_basis": (
            f"estimate: {measured.instructions:,} instructions per inference counted in QEMU "
            f"{measured.machine} ({measured.core} build) × {timing.cpi:g} cycles per instruction "
            f"({timing.cpi_low:g}–{timing.cpi_high:g}) ÷ {board.clock_mhz:g} MHz"
        ),
    }


def measure_native(variant: VariantArtifact, board: Board, files: Mapping[str, bytes]) -> OnTarget:
    """Check ``files`` against TFLM on the host and in QEMU, and return the figures measured there."""
    vectors = reference_vectors(variant)
    expected = _tflm_outputs(variant, vectors)
    out_bytes = len(expected[0])
    host = HostModule(files)
    shape = variant.info.inputs[0].shape
    host_outputs = [
        np.asarray(host.run(np.frombuffer(v, dtype=np.int8).reshape(shape)), dtype=np.int8).tobytes()
        for v in vectors
    ]
    found = _first_difference(host_outputs, expected)
    if found is not None:
        raise _refuse_difference("on the host build", found, out_bytes)
    measured = measure_on_qemu(files, vectors[:TARGET_VECTORS], core=board.core)
    found = _first_difference(measured.outputs, expected[: len(measured.outputs)])
    if found is not None:
        raise _refuse_difference(f"on the {measured.core} build in QEMU", found, out_bytes)
    ops = variant.info.layers
    layers = [
        {"index": index, "op": ops[index].op if index < len(ops) else "", "instructions": count}
        for index, count in enumerate(measured.layer_instructions)
    ]
    details: dict[str, Any] = {
        "basis": "qemu-icount",
        "machine": measured.machine,
        "core": measured.core,
        "board": board.id,
        "instructions": measured.instructions,
        "instructions_min": measured.instructions_min,
        "instructions_max": measured.instructions_max,
        "vectors": measured.vectors,
        "layers": layers,
        "flash_bytes": measured.flash_bytes,
        "static_ram_bytes": measured.static_ram_bytes,
        "stack_bytes": measured.stack_bytes,
        "bit_exact": {"host_vectors": len(vectors), "target_vectors": measured.vectors, "reference": "tflm"},
        "toolchain": measured.toolchain,
        "flags": measured.flags,
    } | _latency(measured, board)
    return OnTarget(
        flash_bytes=measured.flash_bytes,
        ram_bytes=measured.static_ram_bytes + measured.stack_bytes,
        details=details,
    )

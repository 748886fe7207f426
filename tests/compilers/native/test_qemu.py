"""The Cortex-M measurement: exact instruction counts, module-only sizes, painted stack, every core.

The hand-written probe module (fixtures/probe) has work of known size: a loop of exactly three
instructions per iteration, a 10,000-byte constant table, a 5,000-byte static buffer and a function
with a 2,000-byte local array. Input bytes: [mode, index, iterations high, iterations low].
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from tinymlaas.compilers.native.armbuild import CORES, build_image, core_for, header_macros, module_footprint
from tinymlaas.compilers.native.qemu import (
    QemuRun,
    TargetMeasurement,
    measure_on_qemu,
    run_image,
    toolchain_problem,
)
from tinymlaas.errors import InvalidInput, RuntimeFailure

PROBE = Path(__file__).parent / "fixtures" / "probe"
LOOP_START = 1000
LOOP_VECTORS = 12


def probe_vector(mode: int, index: int, iterations: int) -> bytes:
    return bytes([mode, index, iterations >> 8, iterations & 0xFF])


def probe_output(vector: bytes) -> bytes:
    """What the probe computes, from its C source."""
    mode, index = vector[0], vector[1]
    if mode == 0:
        return bytes(4)
    table = 1 if index == 0 else 0
    deep = (mode + index * 7 % 2000) & 0xFF
    return bytes([0, table, deep, mode])


@pytest.fixture(scope="module")
def probe_files() -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in PROBE.iterdir() if p.suffix in (".c", ".h")}


@pytest.fixture(scope="module")
def loop_image(probe_files, tmp_path_factory):
    vectors = [probe_vector(0, 0, LOOP_START + i) for i in range(LOOP_VECTORS)]
    return build_image(
        probe_files, vectors, core_for("cortex-m4f"), tmp_path_factory.mktemp("loop"), instrumented=False
    )


@pytest.fixture(scope="module")
def loop_run(loop_image) -> QemuRun:
    return run_image(loop_image, "mps2-an386", layer_count=2)


@pytest.fixture(scope="module")
def probe_m4f(probe_files) -> TargetMeasurement:
    vectors = [probe_vector(1, index, 3000) for index in (0, 3, 77, 255)]
    return measure_on_qemu(probe_files, vectors, core="cortex-m4f")


@pytest.fixture(scope="module")
def zoo_cnn1d() -> tuple[dict[str, bytes], list[bytes], list[bytes]]:
    """The zoo's 1-D CNN, int8, compiled to a native module; 16 random inputs and TFLM's outputs."""
    from tflite_micro import runtime as tflm

    from tinymlaas.compilers.native import compile_tflite
    from tinymlaas.data.types import DatasetSpec, SampleKind, Task
    from tinymlaas.squeeze.convert import Quantization, convert
    from tinymlaas.training import zoo

    spec = DatasetSpec(Task.CLASSIFICATION, SampleKind.TIMESERIES, (64, 3), ("a", "b", "c", "d"))
    rng = np.random.default_rng(0)
    representative = rng.normal(size=(50, *spec.input_shape)).astype(np.float32)
    tflite = convert(zoo.build("cnn1d", spec), Quantization.INT8, representative)
    files = compile_tflite(tflite)
    vectors = [rng.integers(-128, 128, size=spec.input_shape, dtype=np.int8) for _ in range(16)]
    interpreter = tflm.Interpreter.from_bytes(tflite, arena_size=256 * 1024)
    expected = []
    for vector in vectors:
        interpreter.set_input(vector[np.newaxis], 0)
        interpreter.invoke()
        expected.append(np.asarray(interpreter.get_output(0), dtype=np.int8).tobytes())
    return files, [v.tobytes() for v in vectors], expected


def test_toolchain_is_installed():
    assert toolchain_problem() is None


def test_a_known_loop_reads_as_three_instructions_per_iteration(loop_run):
    counts = [v.instructions for v in loop_run.vectors]
    assert len(counts) == LOOP_VECTORS
    # One more iteration is exactly three more instructions, whatever the timer's phase.
    assert [b - a for a, b in itertools.pairwise(counts)] == [3] * (LOOP_VECTORS - 1)
    overhead = {count - 3 * (LOOP_START + i) for i, count in enumerate(counts)}
    assert len(overhead) == 1
    # Call, argument unpacking, prologue/epilogue and the loop's set-up: a few instructions.
    assert 0 < overhead.pop() <= 40
    assert loop_run.empty_instructions <= 3


def test_counts_are_deterministic(loop_image, loop_run):
    assert run_image(loop_image, "mps2-an386", layer_count=2) == loop_run


def test_outputs_come_from_the_target(probe_m4f):
    vectors = [probe_vector(1, index, 3000) for index in (0, 3, 77, 255)]
    assert probe_m4f.outputs == tuple(probe_output(v) for v in vectors)
    assert probe_m4f.vectors == 4


def test_flash_counts_the_constant_table_but_not_the_static_buffer(probe_m4f):
    assert 10_000 <= probe_m4f.flash_bytes < 10_000 + 1024
    assert probe_m4f.static_ram_bytes == 5000


def test_stack_peak_covers_the_local_array(probe_m4f):
    assert 2000 <= probe_m4f.stack_bytes < 2000 + 256


def test_layers_sum_to_the_total(probe_m4f):
    assert len(probe_m4f.layer_instructions) == 2
    loop, probe = probe_m4f.layer_instructions
    assert 3 * 3000 <= loop <= 3 * 3000 + 40
    assert probe > 2000  # the local array is filled byte by byte
    assert abs(sum(probe_m4f.layer_instructions) - probe_m4f.instructions) <= 0.02 * probe_m4f.instructions
    assert probe_m4f.instructions_min <= probe_m4f.instructions <= probe_m4f.instructions_max


def test_as_dict_is_plain(probe_m4f):
    data = probe_m4f.as_dict()
    assert data["core"] == "cortex-m4f"
    assert data["machine"] == "mps2-an386"
    assert data["outputs"][0] == probe_m4f.outputs[0].hex()
    assert data["layer_instructions"] == list(probe_m4f.layer_instructions)
    assert "arm-none-eabi-gcc" in data["toolchain"]
    assert "QEMU" in data["toolchain"]
    assert "-mcpu=cortex-m4" in data["flags"]


@pytest.mark.parametrize(("core", "machine"), [("cortex-m0plus", "mps2-an385"), ("cortex-m7", "mps2-an500")])
def test_other_cores(probe_files, core, machine):
    vectors = [probe_vector(0, 0, 2000), probe_vector(1, 9, 1)]
    measured = measure_on_qemu(probe_files, vectors, core=core)
    assert measured.machine == machine
    assert measured.outputs == tuple(probe_output(v) for v in vectors)
    assert measured.instructions_max > 3 * 2000
    assert 3 * 2000 <= measured.instructions_min <= 3 * 2000 + 40
    assert 10_000 <= measured.flash_bytes < 10_000 + 1024
    assert measured.static_ram_bytes == 5000
    assert measured.stack_bytes >= 2000
    assert CORES[core].cpu_flags[0] in measured.flags


def test_unknown_core_is_refused(probe_files):
    with pytest.raises(InvalidInput, match="cortex-a72"):
        measure_on_qemu(probe_files, [probe_vector(0, 0, 1)], core="cortex-a72")


@pytest.mark.parametrize(
    ("vectors", "message"),
    [([], "No test vectors"), ([b"\x00" * 3], "3 bytes"), ([probe_vector(0, 0, 1)] * 65, "at most 64")],
)
def test_bad_vectors_are_refused(probe_files, vectors, message):
    with pytest.raises(InvalidInput, match=message):
        measure_on_qemu(probe_files, vectors)


def _with_invoke(probe_files: dict[str, bytes], body: str) -> dict[str, bytes]:
    source = f'#include "tmn_model.h"\nint tmn_invoke(const int8_t *input, int8_t *output)\n{{\n{body}\n}}\n'
    return {"tmn_model.h": probe_files["tmn_model.h"], "tmn_model.c": source.encode()}


def test_a_build_error_carries_the_compiler_message(probe_files):
    files = _with_invoke(probe_files, "return undeclared_name;")
    with pytest.raises(RuntimeFailure, match="undeclared_name"):
        measure_on_qemu(files, [probe_vector(0, 0, 1)])


def test_a_fault_is_reported(probe_files):
    files = _with_invoke(probe_files, '(void)input; (void)output; __asm__ volatile("udf #0"); return 0;')
    with pytest.raises(RuntimeFailure, match="faulted"):
        measure_on_qemu(files, [probe_vector(0, 0, 1)])


def test_a_hung_target_is_killed(probe_files):
    files = _with_invoke(probe_files, '(void)input; (void)output; for (;;) { __asm__ volatile(""); }')
    with pytest.raises(RuntimeFailure, match="did not finish"):
        measure_on_qemu(files, [probe_vector(0, 0, 1)], timeout_s=3)


def test_a_stack_overflow_is_reported(probe_files):
    body = (
        "volatile int8_t big[129 * 1024]; uint32_t i; (void)output;\n"
        "for (i = 0; i < sizeof big; ++i) { big[i] = input[0]; }\nreturn big[input[1]];"
    )
    with pytest.raises(RuntimeFailure, match="overflowed"):
        measure_on_qemu(_with_invoke(probe_files, body), [probe_vector(0, 0, 1)])


def test_an_error_code_from_invoke_is_reported(probe_files):
    files = _with_invoke(probe_files, "(void)input; (void)output; return 7;")
    with pytest.raises(RuntimeFailure, match="returned 7"):
        measure_on_qemu(files, [probe_vector(0, 0, 1)])


def test_library_routines_pulled_in_by_the_module_are_its_own():
    library = "/lib/libgcc.a(_udivsi3.o)"
    map_text = (
        "Archive member included to satisfy reference by file (symbol)\n\n"
        f"{library}\n                              /b/tmn_model.o (__aeabi_uidiv)\n"
        "/lib/libc.a(memcpy.o)\n                              /b/harness.o (memcpy)\n\n"
        "Discarded input sections\n\n .text.unused   0x00000000      0x400 /b/tmn_model.o\n\n"
        "Linker script and memory map\n\n"
        ".text           0x00000000     0x1000\n"
        " .text.tmn_invoke\n                0x00000040       0x20 /b/tmn_model.o\n"
        "                0x00000040                tmn_invoke\n"
        f" .text          0x00000060       0x10 {library}\n"
        " .text          0x00000070       0x80 /lib/libc.a(memcpy.o)\n"
        " .rodata.w      0x00000100       0x30 /b/tmn_model.o\n"
        " *fill*         0x00000130        0x2 \n"
        " .data.q        0x20000000        0x8 /b/tmn_model.o\n"
        " .bss.tmn_scratch\n                0x20000008      0x100 /b/tmn_model.o\n"
        " .bss.out       0x20000108       0x10 /b/harness.o\n"
        " .comment       0x00000000       0x27 /b/tmn_model.o\n"
    )
    footprint = module_footprint(map_text, ["/b/tmn_model.o"])
    assert footprint.flash_bytes == 0x20 + 0x10 + 0x30 + 0x8
    assert footprint.static_ram_bytes == 0x8 + 0x100


def test_zoo_model_is_bit_exact_on_the_target(zoo_cnn1d):
    files, vectors, expected = zoo_cnn1d
    measured = measure_on_qemu(files, vectors, core="cortex-m4f")
    macros = header_macros(files)
    assert measured.outputs == tuple(expected)
    assert measured.vectors == 16
    assert len(measured.layer_instructions) == macros["TMN_LAYER_COUNT"]
    assert 0 < measured.instructions_min <= measured.instructions <= measured.instructions_max
    assert abs(sum(measured.layer_instructions) - measured.instructions) <= 0.02 * measured.instructions
    assert measured.static_ram_bytes >= macros["TMN_SCRATCH_BYTES"]
    assert measured.flash_bytes > 0
    assert measured.stack_bytes > 0

"""A native module measured on an emulated Cortex-M: instructions, flash, RAM, stack and outputs.

The module is cross-built twice (``armbuild``): plainly, for the reported totals and sizes, and with
its layer hooks bound to the harness, for the per-layer split. Each image runs in QEMU with
``-icount shift=8``: virtual time then advances exactly 256 ns per executed guest instruction, and the
boards' CMSDK timer counts that virtual time in 40 ns ticks (25 MHz), so the ticks between two reads
convert back to an exact instruction count (the 40 ns read granularity is well under half an
instruction). The cost of the reads themselves (an empty pair, and an empty hook pair) is measured in
the same run and subtracted. QEMU models no pipeline or wait states: these are instructions, not
cycles; a core's cycles per instruction is the catalog's business.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

from tinymlaas.compilers.native.armbuild import (
    ARM_CC,
    Core,
    Image,
    build_image,
    check_vectors,
    compile_flags,
    core_for,
    header_macros,
    module_footprint,
)
from tinymlaas.errors import RuntimeFailure

__all__ = [
    "ICOUNT_SHIFT",
    "QemuRun",
    "TargetMeasurement",
    "VectorRun",
    "measure_on_qemu",
    "run_image",
    "toolchain_problem",
]

QEMU = "qemu-system-arm"
ICOUNT_SHIFT = 8  # 2**8 ns of virtual time per instruction: 6.4 timer ticks, up to ~670 M per inference
_TICK_NS = 40  # CMSDK APB timer on SYSCLK, 25 MHz on every MPS2 board
_OUTPUT_TAIL = 2000


@dataclass(frozen=True)
class TargetMeasurement:
    """What one module costs on one core, as measured in QEMU."""

    core: str  # catalog core name, e.g. "cortex-m4f"
    machine: str  # QEMU machine, e.g. "mps2-an386"
    flash_bytes: int  # module only, from the link map
    static_ram_bytes: int  # module only: .data + .bss (includes the scratch buffer)
    stack_bytes: int  # peak stack during tmn_invoke, by painting
    instructions: int  # per inference, median over the vectors (uninstrumented build)
    instructions_min: int
    instructions_max: int
    layer_instructions: tuple[int, ...]  # per layer, medians (instrumented build)
    outputs: tuple[bytes, ...]  # output 0 per vector, from the ARM build
    vectors: int
    toolchain: str  # first lines of `arm-none-eabi-gcc --version` and `qemu-system-arm --version`
    flags: str  # the compile flags used

    def as_dict(self) -> dict[str, object]:
        """Plain values for JSON: tuples become lists and outputs hex strings."""
        data = asdict(self)
        data["layer_instructions"] = list(self.layer_instructions)
        data["outputs"] = [o.hex() for o in self.outputs]
        return data


@dataclass(frozen=True)
class VectorRun:
    """One inference of one image: counts already net of the measuring overhead."""

    rc: int
    instructions: int
    stack_bytes: int
    output: bytes
    layer_instructions: tuple[int, ...]  # empty for an uninstrumented image


@dataclass(frozen=True)
class QemuRun:
    """Everything one QEMU run of an image reported."""

    vectors: tuple[VectorRun, ...]
    empty_instructions: int  # an empty pair of timer reads (subtracted from every inference)
    hook_instructions: int  # an empty begin/end hook pair (subtracted from every layer); 0 if none


def _first_line(command: Sequence[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    lines = (done.stdout or done.stderr).strip().splitlines()
    return lines[0].strip() if lines else ""


@lru_cache(maxsize=1)
def toolchain_problem() -> str | None:
    """None when the cross compiler, newlib-nano and QEMU are usable; else what is missing."""
    missing = [tool for tool in (ARM_CC, QEMU) if shutil.which(tool) is None]
    if missing:
        return (
            f"{' and '.join(missing)} not found on PATH; run `make setup` to install the Cortex-M toolchain"
        )
    libc = _first_line([ARM_CC, "-print-file-name=libc_nano.a"])
    if not Path(libc).is_absolute() or not Path(libc).is_file():
        return f"{ARM_CC} has no newlib-nano (libc_nano.a); run `make setup` to install it"
    return None


@lru_cache(maxsize=1)
def _toolchain() -> str:
    return "; ".join(filter(None, (_first_line([ARM_CC, "--version"]), _first_line([QEMU, "--version"]))))


def _instructions(ticks: int) -> int:
    return round(ticks * _TICK_NS / 2**ICOUNT_SHIFT)


def _parse(text: str, layer_count: int) -> QemuRun:
    empty = hook = 0
    runs: dict[int, VectorRun] = {}
    layers: dict[int, tuple[int, ...]] = {}
    ended = False
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 2 or fields[0] != "TMN":
            continue
        kind, values = fields[1], fields[2:]
        if kind == "FAULT":
            raise RuntimeFailure(f"The target faulted (exception {int(values[0])}) during the measurement")
        if kind == "CAL":
            empty, hook = _instructions(int(values[0])), _instructions(int(values[1]))
        elif kind == "V":
            index, rc, ticks, stack, wrapped, overflow = (int(v) for v in values[:6])
            if wrapped:
                raise RuntimeFailure(f"Vector {index}: one inference ran past the timer's range of counting")
            if overflow:
                raise RuntimeFailure(f"Vector {index}: tmn_invoke overflowed the harness's stack")
            output = bytes.fromhex(values[6]) if len(values) > 6 else b""
            rc = rc - 2**32 if rc >= 2**31 else rc
            runs[index] = VectorRun(rc, _instructions(ticks) - empty, stack, output, ())
        elif kind == "L":
            layers[int(values[0])] = tuple(
                max(0, _instructions(int(t)) - hook) if int(t) else 0 for t in values[1:]
            )
        elif kind == "END":
            ended = True
    if not ended:
        raise RuntimeFailure(f"The target stopped before reporting every vector:\n{text[-_OUTPUT_TAIL:]}")
    ordered = []
    for index in sorted(runs):
        run = runs[index]
        per_layer = layers.get(index, ())
        if per_layer and len(per_layer) != layer_count:
            raise RuntimeFailure(f"Vector {index}: {len(per_layer)} layer counts for {layer_count} layers")
        ordered.append(VectorRun(run.rc, run.instructions, run.stack_bytes, run.output, per_layer))
    return QemuRun(tuple(ordered), empty, hook)


def run_image(image: Image, machine: str, layer_count: int, timeout_s: float = 300.0) -> QemuRun:
    """Run a linked image in QEMU with instruction counting and parse what the harness reports.

    QEMU is killed when ``timeout_s`` runs out (a hung model, a stray loop) and that is an error.
    """
    command = [
        QEMU,
        "-M",
        machine,
        "-nographic",
        "-monitor",
        "none",
        "-serial",
        "none",
        "-icount",
        f"shift={ICOUNT_SHIFT},align=off,sleep=off",
        "-semihosting-config",
        "enable=on,target=native",
        "-kernel",
        str(image.elf),
    ]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout_s, check=False, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        raise RuntimeFailure(
            f"QEMU ({machine}) did not finish within {timeout_s:.0f} s and was killed"
        ) from None
    text = done.stdout + done.stderr
    run = _parse(text, layer_count)
    if done.returncode != 0:
        raise RuntimeFailure(
            f"QEMU ({machine}) exited with status {done.returncode}:\n{text[-_OUTPUT_TAIL:]}"
        )
    return run


def _median(values: Sequence[int]) -> int:
    return round(statistics.median(values))


def _measure(
    files: Mapping[str, bytes], vectors: Sequence[bytes], core: Core, timeout_s: float
) -> TargetMeasurement:
    layer_count = header_macros(files).get("TMN_LAYER_COUNT", 0)
    with tempfile.TemporaryDirectory(prefix="tmn-qemu-") as tmp:
        plain = build_image(
            files, vectors, core, Path(tmp) / "plain", instrumented=False, timeout_s=timeout_s
        )
        hooked = build_image(
            files, vectors, core, Path(tmp) / "hooked", instrumented=True, timeout_s=timeout_s
        )
        footprint = module_footprint(plain.map_file.read_text(), plain.module_objects)
        totals = run_image(plain, core.machine, layer_count, timeout_s)
        split = run_image(hooked, core.machine, layer_count, timeout_s)
    if len(totals.vectors) != len(vectors) or len(split.vectors) != len(vectors):
        raise RuntimeFailure(f"The target reported {len(totals.vectors)} of {len(vectors)} vectors")
    for index, (a, b) in enumerate(zip(totals.vectors, split.vectors, strict=True)):
        if a.rc != 0 or b.rc != 0:
            raise RuntimeFailure(f"tmn_invoke returned {a.rc or b.rc} on vector {index}")
        if a.output != b.output:
            raise RuntimeFailure(
                f"Vector {index}: the instrumented build's output differs from the plain build's"
            )
    counts = [v.instructions for v in totals.vectors]
    per_layer = tuple(
        _median(column) for column in zip(*(v.layer_instructions for v in split.vectors), strict=True)
    )
    return TargetMeasurement(
        core=core.name,
        machine=core.machine,
        flash_bytes=footprint.flash_bytes,
        static_ram_bytes=footprint.static_ram_bytes,
        stack_bytes=max(v.stack_bytes for v in totals.vectors),
        instructions=_median(counts),
        instructions_min=min(counts),
        instructions_max=max(counts),
        layer_instructions=per_layer,
        outputs=tuple(v.output for v in totals.vectors),
        vectors=len(vectors),
        toolchain=_toolchain(),
        flags=" ".join(compile_flags(core)),
    )


def measure_on_qemu(
    files: Mapping[str, bytes],
    vectors: Sequence[bytes],
    *,
    core: str = "cortex-m4f",
    timeout_s: float = 300.0,
) -> TargetMeasurement:
    """Cross-build the module for ``core``, run ``vectors`` (raw int8 inputs) in QEMU and measure it.

    ``timeout_s`` bounds each compiler and QEMU invocation. Fails with ``InvalidInput`` for an unknown
    core or unusable vectors and with ``RuntimeFailure`` when the toolchain is missing, a build fails
    (with the compiler's message), the target faults or times out, or ``tmn_invoke`` reports an error.
    """
    target = core_for(core)
    problem = toolchain_problem()
    if problem is not None:
        raise RuntimeFailure(problem)
    check_vectors(vectors, header_macros(files).get("TMN_INPUT_SIZE", -1))
    return _measure(files, vectors, target, timeout_s)

"""Cross-build of a generated native module into a bare-metal image for QEMU's MPS2 boards.

The image is the module's own ``.c`` files, the measuring harness, the test vectors as a const array
and a minimal startup (``firmware/``), linked with arm-none-eabi-gcc against newlib-nano for the few
library routines the code needs. The link map is kept because the module's flash and RAM are read
from it: only the input sections that the module's objects (and the library members they pulled in)
contribute count, never the harness, the vectors, the startup code or what only they use.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from tinymlaas.errors import InvalidInput, RuntimeFailure

__all__ = [
    "ARM_CC",
    "CORES",
    "MAX_VECTORS",
    "MAX_VECTOR_BYTES",
    "Core",
    "Footprint",
    "Image",
    "build_image",
    "check_vectors",
    "compile_flags",
    "core_for",
    "header_macros",
    "module_footprint",
]

ARM_CC = "arm-none-eabi-gcc"
MAX_VECTORS = 64
MAX_VECTOR_BYTES = 1024 * 1024  # of the 4 MiB code region, leaving room for the module's weights
_STDERR_TAIL = 3000
_FIRMWARE_FILES = ("harness.c", "link.ld", "semihost.h", "startup.c", "tmn_hooks.h")


@dataclass(frozen=True)
class Core:
    """A catalog core and how it is built and emulated.

    Cortex-M0+ has no QEMU board of its own: its build (ARMv6-M, soft float) runs on the AN385's
    Cortex-M3, which executes the ARMv6-M Thumb subset unchanged, so the instruction count of an M0+
    build is measured faithfully (cycle counts would differ, instruction counts do not).
    """

    name: str
    machine: str
    cpu_flags: tuple[str, ...]


CORES: Mapping[str, Core] = {
    core.name: core
    for core in (
        Core("cortex-m4f", "mps2-an386", ("-mcpu=cortex-m4", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard")),
        Core("cortex-m0plus", "mps2-an385", ("-mcpu=cortex-m0plus", "-mfloat-abi=soft")),
        Core("cortex-m7", "mps2-an500", ("-mcpu=cortex-m7", "-mfpu=fpv5-d16", "-mfloat-abi=hard")),
    )
}


@dataclass(frozen=True)
class Image:
    """A linked firmware image and the paths its measurement needs."""

    elf: Path
    map_file: Path
    module_objects: tuple[Path, ...]


@dataclass(frozen=True)
class Footprint:
    """The module's share of the image, from the link map."""

    flash_bytes: int  # text + rodata + the load image of initialised data
    static_ram_bytes: int  # data + bss


def core_for(name: str) -> Core:
    """The build recipe for a catalog core; anything else is refused with the list we can emulate."""
    try:
        return CORES[name]
    except KeyError:
        raise InvalidInput(
            f"No QEMU measurement for core {name!r}: supported cores are {', '.join(sorted(CORES))}"
        ) from None


def compile_flags(core: Core) -> tuple[str, ...]:
    """The flags every C file of the image is compiled with (size-optimised, one section per symbol)."""
    return ("-std=c99", *core.cpu_flags, "-mthumb", "-Os", "-ffunction-sections", "-fdata-sections")


def header_macros(files: Mapping[str, bytes]) -> dict[str, int]:
    """The integer ``#define TMN_...`` macros of the module's ``tmn_model.h``."""
    header = files.get("tmn_model.h")
    if header is None:
        raise InvalidInput("The native module has no tmn_model.h")
    found = re.findall(rb"^\s*#\s*define\s+(TMN_\w+)\s+\(?(\d+)[uU]?\)?\s*$", header, flags=re.MULTILINE)
    return {name.decode(): int(value) for name, value in found}


def _vectors_source(vectors: Sequence[bytes]) -> str:
    rows = ",\n".join("    {" + ", ".join(str(b - 256 if b > 127 else b) for b in v) + "}" for v in vectors)
    return (
        '#include <stdint.h>\n#include "tmn_model.h"\n'
        f"const uint32_t tmn_vector_count = {len(vectors)}u;\n"
        f"const int8_t tmn_vectors[{len(vectors)}][TMN_INPUT_SIZE] = {{\n{rows}\n}};\n"
    )


def check_vectors(vectors: Sequence[bytes], input_size: int) -> None:
    """Refuse vector sets that are empty, of the wrong size, or too large for the image."""
    if not vectors:
        raise InvalidInput("No test vectors to run on the target")
    if len(vectors) > MAX_VECTORS:
        raise InvalidInput(f"{len(vectors)} test vectors for QEMU; at most {MAX_VECTORS} fit one run")
    wrong = next((i for i, v in enumerate(vectors) if len(v) != input_size), None)
    if wrong is not None:
        raise InvalidInput(
            f"Test vector {wrong} has {len(vectors[wrong])} bytes; the module's input is {input_size} bytes"
        )
    if input_size * len(vectors) > MAX_VECTOR_BYTES:
        raise InvalidInput(
            f"{len(vectors)} test vectors of {input_size} bytes exceed the {MAX_VECTOR_BYTES} bytes the "
            "image keeps for them; pass fewer vectors"
        )


def _run(command: Sequence[str], cwd: Path, timeout_s: float, what: str) -> None:
    try:
        done = subprocess.run(
            command, cwd=cwd, capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired:
        raise RuntimeFailure(f"{what} did not finish within {timeout_s:.0f} s") from None
    if done.returncode != 0:
        tail = (done.stderr or done.stdout)[-_STDERR_TAIL:]
        raise RuntimeFailure(f"{what} failed (exit {done.returncode}):\n{tail}")


def _copy_firmware(target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    source = resources.files("tinymlaas.compilers.native").joinpath("firmware")
    for name in _FIRMWARE_FILES:
        (target / name).write_bytes(source.joinpath(name).read_bytes())


def build_image(
    files: Mapping[str, bytes],
    vectors: Sequence[bytes],
    core: Core,
    workdir: Path,
    *,
    instrumented: bool,
    timeout_s: float = 300.0,
) -> Image:
    """Compile the module, harness, vectors and startup for ``core`` and link them in ``workdir``.

    With ``instrumented`` the module's layer hooks are bound to the harness (``-include tmn_hooks.h``)
    so per-layer counts are recorded; the uninstrumented image is the one whose counts and sizes are
    reported, since the hooks change the code they surround.
    """
    macros = header_macros(files)
    check_vectors(vectors, macros.get("TMN_INPUT_SIZE", -1))
    module_dir = workdir / "module"
    firmware_dir = workdir / "firmware"
    module_dir.mkdir(parents=True)
    _copy_firmware(firmware_dir)
    for name, data in files.items():
        if "/" in name or "\\" in name or name.startswith("."):
            raise InvalidInput(f"Module file name {name!r} is not a plain file name")
        (module_dir / name).write_bytes(data)
    (firmware_dir / "tmn_vectors.c").write_text(_vectors_source(vectors))

    flags = compile_flags(core)
    hooks = ("-include", str(firmware_dir / "tmn_hooks.h")) if instrumented else ()
    module_objects: list[Path] = []
    for source in sorted(module_dir.glob("*.c")):
        obj = source.with_suffix(".o")
        command = [ARM_CC, *flags, *hooks, "-I", str(module_dir), "-c", str(source), "-o", str(obj)]
        _run(command, workdir, timeout_s, f"Compiling {source.name} for {core.name}")
        module_objects.append(obj)
    if not module_objects:
        raise InvalidInput("The native module has no .c files")
    harness_objects: list[Path] = []
    for name in ("harness.c", "tmn_vectors.c", "startup.c"):
        obj = firmware_dir / f"{name[:-2]}.o"
        command = [
            ARM_CC,
            *flags,
            f"-DTMN_INSTRUMENTED={int(instrumented)}",
            "-I",
            str(module_dir),
            "-I",
            str(firmware_dir),
            "-c",
            str(firmware_dir / name),
            "-o",
            str(obj),
        ]
        _run(command, workdir, timeout_s, f"Compiling the measuring harness ({name}) for {core.name}")
        harness_objects.append(obj)

    elf = workdir / "app.elf"
    map_file = workdir / "app.map"
    # Module objects first: a library routine both sides use is then charged to the module.
    link = [
        ARM_CC,
        *core.cpu_flags,
        "-mthumb",
        "-nostartfiles",
        "-specs=nano.specs",
        "-T",
        str(firmware_dir / "link.ld"),
        "-Wl,--gc-sections",
        f"-Wl,-Map={map_file}",
        "-o",
        str(elf),
        *map(str, module_objects),
        *map(str, harness_objects),
    ]
    _run(link, workdir, timeout_s, f"Linking the {core.name} image")
    return Image(elf=elf, map_file=map_file, module_objects=tuple(module_objects))


_SECTION_LINE = re.compile(r"^ (\S+)?\s+0x([0-9a-fA-F]+)\s+0x([0-9a-fA-F]+)\s+(\S.*?)\s*$")
_NAME_ONLY = re.compile(r"^ (\S+)\s*$")
_FLASH_ONLY = (".text", ".rodata", ".ARM.exidx", ".ARM.extab")


def _library_owners(map_text: str) -> dict[str, str]:
    """Archive member -> the file whose reference pulled it into the link."""
    block = map_text.split("Archive member included to satisfy reference by file (symbol)", 1)
    if len(block) < 2:
        return {}
    body = re.split(
        r"\n(?:Discarded input sections|Memory Configuration|Linker script and memory map)", block[1]
    )[0]
    owners: dict[str, str] = {}
    member: str | None = None
    for line in body.splitlines():
        if not line.strip():
            continue
        if not line[0].isspace():
            parts = line.split()
            member = parts[0]
            if len(parts) > 1:  # short member names share the line with their referrer
                owners[member] = parts[1]
                member = None
        elif member is not None:
            owners[member] = line.split()[0]
            member = None
    return owners


def module_footprint(map_text: str, module_objects: Sequence[Path | str]) -> Footprint:
    """Sum the sections the module contributes to the linked image.

    A library member counts as the module's when a module object (or another such member) is what
    pulled it in. Sections dropped by ``--gc-sections`` are listed before the memory map and so never
    counted; ``.data`` counts twice, once in flash (its load image) and once in RAM.
    """
    ours = {str(p) for p in module_objects}
    owners = _library_owners(map_text)
    grew = True
    while grew:
        grew = False
        for member, owner in owners.items():
            if member not in ours and owner in ours:
                ours.add(member)
                grew = True
    memory_map = map_text.split("Linker script and memory map", 1)
    if len(memory_map) < 2:
        raise RuntimeFailure("The linker map has no memory map section")
    flash = ram = 0
    pending: str | None = None
    for line in memory_map[1].splitlines():
        match = _SECTION_LINE.match(line)
        if match is None:
            named = _NAME_ONLY.match(line)
            pending = named.group(1) if named else None
            continue
        name = match.group(1) or pending
        pending = None
        if name is None or match.group(4) not in ours:
            continue
        size = int(match.group(3), 16)
        if name.startswith(_FLASH_ONLY):
            flash += size
        elif name.startswith(".data"):
            flash += size
            ram += size
        elif name.startswith(".bss") or name == "COMMON":
            ram += size
    return Footprint(flash_bytes=flash, static_ram_bytes=ram)

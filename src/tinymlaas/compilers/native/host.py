"""Build a generated module for the host and call it through ctypes: the bit-exactness harness.

The shared library is cached under the system temp dir, keyed by the sha256 of the C sources, so
tests and benchmarks that compile the same model twice build it once.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from tinymlaas.errors import RuntimeFailure

__all__ = ["HOST_CFLAGS", "HostModule", "find_c_compiler"]

HOST_CFLAGS = ("-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC")
_BUILD_TIMEOUT_S = 300


def find_c_compiler() -> str:
    """The host C compiler (``$CC``, else cc/gcc/clang); a clear error when there is none."""
    candidates = [os.environ["CC"]] if os.environ.get("CC") else ["cc", "gcc", "clang"]
    for candidate in candidates:
        path = shutil.which(candidate)
        if path:
            return path
    raise RuntimeFailure("no C compiler found (set CC or install gcc/clang) to build the native module")


def _source_digest(sources: Mapping[str, bytes]) -> str:
    digest = hashlib.sha256()
    for name in sorted(sources):
        digest.update(name.encode() + b"\0" + hashlib.sha256(sources[name]).digest())
    digest.update(" ".join(HOST_CFLAGS).encode())
    return digest.hexdigest()


def _build(sources: Mapping[str, bytes], cache: Path) -> Path:
    library = cache / "libtmn.so"
    if library.is_file():
        return library
    compiler = find_c_compiler()
    cache.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="build-", dir=cache.parent))
    try:
        for name, data in sources.items():
            (work / name).write_bytes(data)
        c_files = sorted(name for name in sources if name.endswith(".c"))
        command = [compiler, *HOST_CFLAGS, "-o", "libtmn.so", *c_files]
        done = subprocess.run(
            command, cwd=work, capture_output=True, text=True, timeout=_BUILD_TIMEOUT_S, check=False
        )
        if done.returncode != 0:
            raise RuntimeFailure(f"building the native module failed:\n{done.stderr.strip()[-4000:]}")
        try:
            work.rename(cache)
        except OSError:
            if not library.is_file():  # lost a race to a parallel build of the same sources: fine
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return library


class HostModule:
    """A generated module compiled into a host shared library, called through ctypes."""

    def __init__(self, files: Mapping[str, bytes], cache_dir: Path | None = None) -> None:
        sources = {name: data for name, data in files.items() if name.endswith((".c", ".h"))}
        if "tmn_model.c" not in sources:
            raise RuntimeFailure("the files are not a native module (no tmn_model.c)")
        root = cache_dir or Path(tempfile.gettempdir()) / "tinymlaas-native"
        self.library_path = _build(sources, root / _source_digest(sources))
        self._lib = ctypes.CDLL(str(self.library_path))
        self._lib.tmn_invoke.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        self._lib.tmn_invoke.restype = ctypes.c_int
        self._lib.tmn_infer.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        self._lib.tmn_infer.restype = ctypes.c_int
        header = sources["tmn_model.h"].decode()
        self.input_size = _macro(header, "TMN_INPUT_SIZE")
        self.output_size = _macro(header, "TMN_OUTPUT_SIZE")
        self.layer_count = _macro(header, "TMN_LAYER_COUNT")
        self.scratch_bytes = _macro(header, "TMN_SCRATCH_BYTES")

    def run(self, x: np.ndarray) -> np.ndarray:
        """Quantized input 0 (int8, any shape with TMN_INPUT_SIZE elements) to quantized output 0."""
        data = np.ascontiguousarray(x, dtype=np.int8).reshape(-1)
        if data.size != self.input_size:
            raise RuntimeFailure(f"input has {data.size} values, the module expects {self.input_size}")
        out = np.zeros(self.output_size, dtype=np.int8)
        status = self._lib.tmn_invoke(data.ctypes.data, out.ctypes.data)
        if status != 0:
            raise RuntimeFailure(f"tmn_invoke returned {status}")
        return out

    def infer(self, raw: np.ndarray) -> np.ndarray:
        """Sensor-unit float input to dequantized float output 0, through ``tmn_infer``."""
        data = np.ascontiguousarray(raw, dtype=np.float32).reshape(-1)
        if data.size != self.input_size:
            raise RuntimeFailure(f"input has {data.size} values, the module expects {self.input_size}")
        out = np.zeros(self.output_size, dtype=np.float32)
        status = self._lib.tmn_infer(data.ctypes.data, out.ctypes.data)
        if status != 0:
            raise RuntimeFailure(f"tmn_infer returned {status}")
        return out


def _macro(header: str, name: str) -> int:
    for line in header.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "#define" and parts[1] == name:
            return int(parts[2])
    raise RuntimeFailure(f"{name} is not defined in tmn_model.h")

"""TensorFlow's chatter kept off the terminal, its real errors kept on it.

Importing TensorFlow prints, from C++ before absl logging is initialised, lines that
``TF_CPP_MIN_LOG_LEVEL`` does not reach ("All log messages before absl::InitializeLog()", "oneDNN
custom operations are on", the CPU-feature note); the int8 converter prints "fully_quantize: …" and
LiteRT "Created TensorFlow Lite XNNPACK delegate" on every use. They bury a command's output and every
job's log. Only ``TF_ENABLE_ONEDNN_OPTS=0`` would stop the oneDNN line, and it changes the numerics,
so instead those calls run with file descriptor 2 captured: the known lines are dropped and anything
else, an error above all, is written back to stderr.

Foundation module: imports nothing of the product.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.abc
import importlib.machinery
import os
import re
import sys
import tempfile
from collections.abc import Iterator, Sequence
from types import ModuleType

__all__ = ["install", "native_chatter_filtered"]

_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|I\d{4} .*\] (oneDNN custom operations are on|This TensorFlow binary is optimized).*"
    r"|To enable the following instructions: .*rebuild TensorFlow with the appropriate compiler flags\."
    r"|fully_quantize: \d+, inference_type: \d+, input_inference_type: \w+, output_inference_type: \w+"
    r"|INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.)$"
)


def _filtered(text: str) -> str:
    return "".join(line for line in text.splitlines(keepends=True) if not _NOISE.match(line.rstrip("\n")))


def _flush_c_streams() -> None:
    """Native code may buffer what it writes to stderr; flush it while it still goes to the capture."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).fflush(None)


@contextlib.contextmanager
def native_chatter_filtered() -> Iterator[None]:
    """Run the block with file descriptor 2 captured; write back all but the known chatter."""
    sys.stderr.flush()
    with tempfile.TemporaryFile(mode="w+b") as captured:
        saved = os.dup(2)
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            _flush_c_streams()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            rest = _filtered(captured.read().decode("utf-8", "replace"))
            if rest:
                sys.stderr.write(rest)


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        with native_chatter_filtered():
            self._loader.exec_module(module)


class _QuietFinder(importlib.abc.MetaPathFinder):
    """Wraps the loader of the top-level ``tensorflow`` package, once."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def install() -> None:
    """Quiet the first import of TensorFlow in this process (a no-op once it is imported)."""
    if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietFinder())

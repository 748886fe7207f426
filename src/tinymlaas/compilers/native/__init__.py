"""Native compiler: a full-integer int8 ``.tflite`` to self-contained C99 with no interpreter.

``compile_tflite`` gives the module's files; ``memory_plan`` gives the static memory plan (scratch
size, per-tensor offsets) without generating the files' text for a benchmark to read.
"""

from __future__ import annotations

from tinymlaas.compilers.native.codegen import Compiled, compile_graph, generate
from tinymlaas.compilers.native.compiler import NativeCompiler
from tinymlaas.compilers.native.host import HostModule
from tinymlaas.compilers.native.plan import MemoryPlan
from tinymlaas.data.scaling import InputScaling

__all__ = ["Compiled", "HostModule", "MemoryPlan", "NativeCompiler", "compile_tflite", "memory_plan"]


def compile_tflite(
    tflite: bytes, *, scaling: InputScaling | None = None, title: str = "model"
) -> dict[str, bytes]:
    """The module's files (C sources, headers, README, memory_plan.json, model.tflite) for a model."""
    return generate(tflite, scaling=scaling, title=title)


def memory_plan(tflite: bytes) -> Compiled:
    """Compile and return the result with ``scratch_bytes``, the plan and per-layer ops and MACs."""
    return compile_graph(tflite)

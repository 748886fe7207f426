"""The native compiler plugin: a model variant to a self-contained C99 module with no interpreter."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from tinymlaas.catalog.board import Board
from tinymlaas.compilers.base import Compiler, OnTarget, VariantArtifact
from tinymlaas.compilers.native.codegen import generate
from tinymlaas.errors import UnsupportedModel

__all__ = ["NativeCompiler"]


class NativeCompiler(Compiler):
    """Full-integer int8 variants only: the kernels are integer and bit-exact with TFLM."""

    name: ClassVar[str] = "native"
    runtime: ClassVar[str] = "native"
    # Bit-exact with the TFLM interpreter (checked on every compile), so TFLM's vectors self-test it.
    selftest_runtime: ClassVar[str | None] = "tflm"
    measures_on_target: ClassVar[bool] = True

    def compile_files(self, variant: VariantArtifact, board: Board) -> dict[str, bytes]:
        if variant.quantization != "int8":
            raise UnsupportedModel(
                f"the native compiler needs a full-integer int8 variant, not {variant.quantization}"
            )
        title = f"{variant.model_name} v{variant.model_version} ({variant.variant_id})"
        return generate(variant.tflite, scaling=variant.input_scaling, title=title)

    def measure(self, variant: VariantArtifact, board: Board, files: Mapping[str, bytes]) -> OnTarget:
        """Bit-exact against TFLM on the host and in QEMU, then the figures of the core's build."""
        from tinymlaas.compilers.native.measure import measure_native

        return measure_native(variant, board, files)

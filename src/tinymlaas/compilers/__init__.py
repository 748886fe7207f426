"""ML compiler plugins: a model variant plus a board profile in, an inference module out."""

from tinymlaas.compilers.base import CompiledModule, Compiler, SelfTest, VariantArtifact
from tinymlaas.compilers.registry import (
    PluginLoadError,
    available_compilers,
    compiler_for,
    get_compiler,
    refresh_compilers,
)

__all__ = [
    "CompiledModule",
    "Compiler",
    "PluginLoadError",
    "SelfTest",
    "VariantArtifact",
    "available_compilers",
    "compiler_for",
    "get_compiler",
    "refresh_compilers",
]

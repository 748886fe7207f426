"""The built-in LiteRT compiler plugin: the ``.tflite`` file plus a description, for Linux-class boards."""

from tinymlaas.compilers.litert.compiler import LiteRtCompiler

__all__ = ["LiteRtCompiler"]

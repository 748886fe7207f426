"""The built-in TFLM compiler plugin: C++ sources for TensorFlow Lite for Microcontrollers."""

from tinymlaas.compilers.tflm.compiler import TflmCompiler
from tinymlaas.compilers.tflm.config import tensor_arena_size
from tinymlaas.compilers.tflm.resolver import TFLM_BUILTIN_OPS, resolver_method

__all__ = ["TFLM_BUILTIN_OPS", "TflmCompiler", "resolver_method", "tensor_arena_size"]

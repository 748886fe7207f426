"""Frozen values describing a ``.tflite`` model: what a compiler, a fit check or a manifest needs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["LayerInfo", "ModelInfo", "SelfTest", "TensorInfo"]


@dataclass(frozen=True)
class TensorInfo:
    """An input or output tensor as the runtime sees it."""

    name: str
    shape: tuple[int, ...]
    dtype: str  # numpy dtype name: "float32", "int8", ...
    # Affine quantization (real = scale * (q - zero_point)); None for float tensors.
    scale: float | None = None
    zero_point: int | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "shape": list(self.shape),
            "dtype": self.dtype,
            "scale": self.scale,
            "zero_point": self.zero_point,
        }


@dataclass(frozen=True)
class LayerInfo:
    """One operator of the graph, with its parameter count and multiply-accumulates per inference."""

    index: int
    op: str  # builtin op name as TFLite spells it: "CONV_2D", "FULLY_CONNECTED", ...
    output_shape: tuple[int, ...]
    params: int  # elements in the op's constant inputs (weights, biases)
    macs: int  # multiply-accumulate operations for one inference (batch 1)


@dataclass(frozen=True)
class ModelInfo:
    """The whole model: size, operator set, I/O and per-layer cost."""

    size_bytes: int
    ops: tuple[str, ...]  # distinct builtin op names, sorted
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    layers: tuple[LayerInfo, ...]
    # "int8" when all weights and I/O are int8, "float16" when weights are stored as fp16, else "float32".
    quantization: str
    # Bytes of all non-constant tensors added up: an upper bound on tensor memory without the
    # buffer reuse a runtime's memory planner achieves (used where no arena was measured).
    activation_bytes: int = 0

    @property
    def params(self) -> int:
        return sum(layer.params for layer in self.layers)

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)


@dataclass(frozen=True)
class SelfTest:
    """Vectors a device runs after install: raw runtime inputs and the outputs that runtime gave.

    Values are in the tensors' own dtypes (int8 lists for an int8 model). ``tolerance`` is the
    largest absolute difference per output element a device may see and still pass (in output
    units: LSBs for integer outputs).
    """

    runtime: str
    inputs: tuple[tuple[Any, ...], ...]
    expected: tuple[tuple[Any, ...], ...]
    tolerance: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "runtime": self.runtime,
            "inputs": [list(v) for v in self.inputs],
            "expected": [list(v) for v in self.expected],
            "tolerance": self.tolerance,
        }

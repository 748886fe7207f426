"""The native compiler's intermediate representation of a TFLite graph.

Decoupled from the ``tflite`` flatbuffer classes so lowerings, the memory planner and the code
generator work on plain, hashable Python values and can be unit-tested without a model file.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Graph", "Node", "Quant", "Tensor"]


@dataclass(frozen=True)
class Quant:
    """Affine quantization ``real = scale * (q - zero_point)``; per-channel along ``axis`` if several."""

    scale: tuple[float, ...]
    zero_point: tuple[int, ...]
    axis: int


@dataclass(frozen=True)
class Tensor:
    """One tensor of the graph; ``data`` holds a constant's buffer bytes, None for activations."""

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    quant: Quant | None
    data: bytes | None

    @property
    def elements(self) -> int:
        return math.prod(self.shape)

    @property
    def is_constant(self) -> bool:
        return self.data is not None


@dataclass(frozen=True)
class Node:
    """One operator in execution order; ``inputs`` uses -1 for an absent optional input."""

    index: int
    op: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: Mapping[str, Any]


@dataclass(frozen=True)
class Graph:
    """A single-subgraph model: tensors by index, nodes in execution order, graph I/O tensor indices."""

    tensors: tuple[Tensor, ...]
    nodes: tuple[Node, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]

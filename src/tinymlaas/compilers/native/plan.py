"""Static memory plan: every activation tensor gets a fixed offset in one scratch buffer.

Lifetimes are known at compile time (execution order is fixed), so tensors whose live intervals do
not overlap can share bytes. Placing the largest first, each at the lowest aligned offset that does
not collide with an already placed tensor live at the same time, is the greedy strategy TFLM's own
planner uses; with no interpreter bookkeeping, the buffer is just the activations.

The graph input lives in the caller's input buffer and the tensor of output 0 in the caller's output
buffer, so neither takes scratch space. Aliasing ops (reshapes) share their input's storage, and so
does the output of an op that can run in place (``lowering.inplace_inputs``) on an input whose
storage dies at that op: the two lifetimes chain into one block instead of overlapping.
"""

from __future__ import annotations

from dataclasses import dataclass

from tinymlaas.compilers.native.ir import Graph
from tinymlaas.compilers.native.lowering import ALIASING_OPS, inplace_inputs

__all__ = ["ALIGNMENT", "Buffer", "MemoryPlan", "Placement", "plan_memory"]

ALIGNMENT = 8


@dataclass(frozen=True)
class Buffer:
    """An activation tensor's storage: scratch (with offset), the caller's ``input`` or ``output``."""

    kind: str  # "scratch" | "input" | "output"
    offset: int  # byte offset in the scratch buffer; 0 for "input"/"output"


@dataclass(frozen=True)
class Placement:
    """One storage root: the tensor that owns bytes, its size, live interval and offset."""

    tensor: int
    size: int
    first: int  # index of the producing node, -1 for a graph input
    last: int  # index of the last node reading it (or of the producer if never read)
    offset: int


@dataclass(frozen=True)
class MemoryPlan:
    """Where each activation tensor lives; ``scratch_bytes`` is the static buffer's size."""

    scratch_bytes: int
    placements: tuple[Placement, ...]  # scratch roots only, by tensor index
    storage: dict[int, Buffer]  # every activation tensor (aliases included) -> its storage
    roots: dict[int, int]  # every activation tensor -> the tensor that owns its bytes

    def live_peak(self) -> int:
        """The largest sum of aligned sizes of scratch tensors live at one node: a lower bound."""
        if not self.placements:
            return 0
        steps = range(min(p.first for p in self.placements), max(p.last for p in self.placements) + 1)
        return max(
            sum(_align(p.size) for p in self.placements if p.first <= step <= p.last) for step in steps
        )


def _align(value: int) -> int:
    return -(-value // ALIGNMENT) * ALIGNMENT


def _roots(graph: Graph) -> dict[int, int]:
    roots: dict[int, int] = {}
    for tensor in graph.tensors:
        if tensor.data is None:
            roots[tensor.index] = tensor.index
    for node in graph.nodes:
        if node.op in ALIASING_OPS and node.inputs and node.outputs:
            source = node.inputs[0]
            roots[node.outputs[0]] = roots.get(source, source)
    return roots


def _merge_inplace(graph: Graph, roots: dict[int, int]) -> None:
    """Give an in-place op's output its input's root where that input's storage dies at the op."""
    fixed = {roots[index] for index in (*graph.inputs, *graph.outputs)}
    readers: dict[int, list[int]] = {}
    for node in graph.nodes:
        for index in node.inputs:
            if index >= 0 and index in roots:
                readers.setdefault(index, []).append(node.index)
    for node in graph.nodes:
        if node.op in ALIASING_OPS or not node.outputs or roots.get(node.outputs[0]) in fixed:
            continue
        out = node.outputs[0]
        for position in inplace_inputs(node, graph):
            root = roots[node.inputs[position]]
            shared = [t for t, r in roots.items() if r == root]
            others = [
                i for p, i in enumerate(node.inputs) if p != position and i >= 0 and roots.get(i) == root
            ]
            later = any(reader > node.index for t in shared for reader in readers.get(t, ()))
            if root in fixed or others or later:
                continue
            for tensor, owner in roots.items():
                if owner == out:
                    roots[tensor] = root
            break


def plan_memory(graph: Graph) -> MemoryPlan:
    """Compute lifetimes of the activation storage roots and assign scratch offsets greedily."""
    roots = _roots(graph)
    _merge_inplace(graph, roots)
    input_root = roots[graph.inputs[0]]
    output_root = roots[graph.outputs[0]]
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for index in graph.inputs:
        first[roots[index]] = -1
    for node in graph.nodes:
        for index in node.inputs:
            if index >= 0 and index in roots:
                last[roots[index]] = max(last.get(roots[index], -1), node.index)
        if node.op in ALIASING_OPS:
            continue
        for index in node.outputs:
            root = roots[index]
            first.setdefault(root, node.index)
            last[root] = max(last.get(root, node.index), node.index)
    end = len(graph.nodes)
    for index in graph.outputs:
        last[roots[index]] = end  # read by the caller after the last node
    storage_of_root: dict[int, Buffer] = {}
    candidates = []
    for root in sorted(set(roots.values())):
        if root not in first:
            continue  # never produced nor a graph input: unused
        if root == input_root:
            storage_of_root[root] = Buffer("input", 0)
        elif root == output_root:
            storage_of_root[root] = Buffer("output", 0)
        else:
            size = graph.tensors[root].elements
            candidates.append((root, size, first[root], last.get(root, first[root])))
    placed: list[Placement] = []
    for root, size, start, stop in sorted(candidates, key=lambda c: (-_align(c[1]), c[2], c[0])):
        offset = 0
        overlapping = sorted(
            (p for p in placed if p.first <= stop and start <= p.last), key=lambda p: p.offset
        )
        for other in overlapping:
            if offset + size <= other.offset:
                break
            offset = max(offset, _align(other.offset + other.size))
        placed.append(Placement(root, size, start, stop, offset))
        storage_of_root[root] = Buffer("scratch", offset)
    total = max((_align(p.offset + p.size) for p in placed), default=0)
    storage = {t: storage_of_root[r] for t, r in roots.items() if r in storage_of_root}
    return MemoryPlan(
        scratch_bytes=total,
        placements=tuple(sorted(placed, key=lambda p: p.tensor)),
        storage=storage,
        roots={t: r for t, r in roots.items() if r in storage_of_root},
    )

"""The static memory plan: live tensors never overlap, reshapes alias, I/O stays in caller buffers."""

from __future__ import annotations

import itertools
import random

from tinymlaas.compilers.native.ir import Graph, Node, Quant, Tensor
from tinymlaas.compilers.native.plan import ALIGNMENT, plan_memory

Q = Quant(scale=(0.1,), zero_point=(0,), axis=0)


def _activation(index: int, size: int) -> Tensor:
    return Tensor(index, f"t{index}", (1, size), "int8", Q, None)


def _graph(sizes: list[int], edges: list[tuple[str, list[int], int]]) -> Graph:
    tensors = tuple(_activation(i, s) for i, s in enumerate(sizes))
    nodes = tuple(Node(i, op, tuple(ins), (out,), {}) for i, (op, ins, out) in enumerate(edges))
    return Graph(tensors=tensors, nodes=nodes, inputs=(0,), outputs=(edges[-1][2],))


def _assert_no_live_overlap(graph: Graph) -> None:
    plan = plan_memory(graph)
    for a, b in itertools.combinations(plan.placements, 2):
        assert a.offset % ALIGNMENT == 0
        live_together = a.first <= b.last and b.first <= a.last
        disjoint = a.offset + a.size <= b.offset or b.offset + b.size <= a.offset
        assert not live_together or disjoint, (a, b)
    assert all(p.offset + p.size <= plan.scratch_bytes for p in plan.placements)


def test_chain_reuses_memory_and_keeps_io_outside() -> None:
    graph = _graph(
        [100, 400, 300, 200, 10],
        [("CONV_2D", [0], 1), ("CONV_2D", [1], 2), ("CONV_2D", [2], 3), ("FULLY_CONNECTED", [3], 4)],
    )
    plan = plan_memory(graph)
    assert plan.storage[0].kind == "input" and plan.storage[4].kind == "output"
    # Tensors 1 and 3 are never live together, so they share bytes: 400 + 304 (aligned 300).
    assert plan.scratch_bytes == 704 == plan.live_peak()
    _assert_no_live_overlap(graph)


def test_reshape_aliases_its_input() -> None:
    graph = _graph([16, 32, 32, 8], [("CONV_2D", [0], 1), ("RESHAPE", [1], 2), ("FULLY_CONNECTED", [2], 3)])
    plan = plan_memory(graph)
    assert plan.roots[2] == 1 and plan.storage[2] == plan.storage[1]
    assert plan.scratch_bytes == 32


def test_skip_connection_keeps_tensor_alive() -> None:
    graph = _graph(
        [8, 64, 64, 64, 4],
        [("CONV_2D", [0], 1), ("CONV_2D", [1], 2), ("ADD", [1, 2], 3), ("FULLY_CONNECTED", [3], 4)],
    )
    plan = plan_memory(graph)
    assert plan.scratch_bytes == 3 * 64
    _assert_no_live_overlap(graph)


def test_random_graphs_never_overlap() -> None:
    rng = random.Random(0)
    for _ in range(200):
        count = rng.randint(2, 12)
        sizes = [rng.randint(1, 300) for _ in range(count + 1)]
        edges = []
        for i in range(count):
            inputs = sorted({i, *rng.sample(range(i + 1), k=min(i + 1, rng.randint(1, 2)))})
            op = rng.choice(["CONV_2D", "ADD", "RESHAPE"]) if len(inputs) == 1 else "ADD"
            edges.append((op, inputs[:1] if op == "RESHAPE" else inputs, i + 1))
        graph = _graph(sizes, edges)
        _assert_no_live_overlap(graph)
        plan = plan_memory(graph)
        assert plan.scratch_bytes >= plan.live_peak()

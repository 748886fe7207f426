"""Where a full-integer int8 model can be cut in two, and the two halves as ``.tflite`` models.

TFLite stores a subgraph's operators in execution order, so cut ``k`` puts operators ``[0, k)`` on the
device (the head) and ``[k, N)`` behind it (the tail). Only cuts where exactly one activation crosses
are offered: a node sends one tensor to the next, and a cut through a residual branch would have to
send two. Each half is written with only the operators, tensors, buffers and operator codes it uses,
so a half's file size is its own weights and running head then tail reproduces the unsplit model
operator for operator, hence byte for byte.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import tflite

from tinymlaas.errors import InvalidInput, UnsupportedModel
from tinymlaas.squeeze.inspect import DTYPES, inspect_tflite, op_name

if TYPE_CHECKING:
    from tensorflow.lite.python import schema_py_generated as schema_t

__all__ = ["Cut", "CutSearch", "find_cuts", "split_model"]

_IDENTIFIER = b"TFL3"
# TFLite's converter aligns every buffer to 16 bytes so kernels may read int32 biases and SIMD loads
# in place; the halves keep that.
_BUFFER_ALIGNMENT = 16


@dataclass(frozen=True)
class Cut:
    """One place to cut: what crosses it, and what each side computes and stores."""

    index: int  # operators in the head
    tensor: str  # the crossing tensor's name
    shape: tuple[int, ...]
    scale: float
    zero_point: int
    nbytes: int  # int8: one byte per element
    head_ops: tuple[str, ...]  # builtin op names in the head, in order
    tail_ops: tuple[str, ...]
    head_macs: int  # from squeeze.inspect's per-layer MACs
    tail_macs: int
    head_weight_bytes: int  # constant tensor bytes (weights, biases) in each half
    tail_weight_bytes: int

    @property
    def label(self) -> str:
        if not self.head_ops:
            return "all offloaded"
        if not self.tail_ops:
            return "all on device"
        dims = self.shape[1:] if len(self.shape) > 1 and self.shape[0] == 1 else self.shape
        return (
            f"after node {self.index - 1} ({self.head_ops[-1]}) → {self.tensor!r} "
            f"{'×'.join(str(d) for d in dims)}"
        )


@dataclass(frozen=True)
class CutSearch:
    """Every cut of one model: the usable ones, and those a branch makes unusable."""

    operators: int
    cuts: tuple[Cut, ...]  # valid cuts, index ascending, both extremes included
    skipped: tuple[tuple[int, int], ...]  # (index, tensors crossing) for every cut with > 1 crossing
    # Cuts where one tensor crosses but it is not per-tensor int8 (a shape computed at run time):
    # no node can send it as an int8 activation.
    not_int8: tuple[int, ...] = ()


@dataclass(frozen=True)
class _Graph:
    """Subgraph 0 reduced to what the cut search needs, read without TensorFlow."""

    ops: tuple[str, ...]
    op_inputs: tuple[tuple[int, ...], ...]
    op_outputs: tuple[tuple[int, ...], ...]
    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    dtypes: tuple[str, ...]
    quant: tuple[tuple[float, int] | None, ...]  # per-tensor scale and zero point
    buffers: tuple[int, ...]  # buffer index per tensor
    buffer_bytes: tuple[int, ...]  # data bytes per buffer; > 0 marks a constant
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]

    def constant(self, tensor: int) -> bool:
        return self.buffer_bytes[self.buffers[tensor]] > 0

    def weight_bytes(self, ops: range) -> int:
        used = {self.buffers[t] for i in ops for t in self.op_inputs[i] if t >= 0 and self.constant(t)}
        return sum(self.buffer_bytes[b] for b in used)

    def crossing(self, k: int) -> list[int]:
        """Non-constant tensors made before ``k`` (or fed in) and needed from ``k`` on (or fed out)."""
        made = set(self.inputs)
        for i in range(k):
            made.update(self.op_outputs[i])
        needed = set(self.outputs)
        for i in range(k, len(self.ops)):
            needed.update(self.op_inputs[i])
        return sorted(t for t in made & needed if t >= 0 and not self.constant(t))


def _read(data: bytes) -> _Graph:
    if len(data) < 8 or data[4:8] != _IDENTIFIER:
        raise UnsupportedModel("not a TFLite model (no 'TFL3' flatbuffer identifier)")
    try:
        model = tflite.Model.GetRootAsModel(data, 0)
        if model.SubgraphsLength() != 1:
            raise UnsupportedModel(
                f"the model has {model.SubgraphsLength()} subgraphs; only single-subgraph models can be cut"
            )
        graph = model.Subgraphs(0)
        buffer_bytes = []
        for b in range(model.BuffersLength()):
            buffer = model.Buffers(b)
            if buffer.DataLength() == 0 and buffer.Size() > 0:
                raise UnsupportedModel(f"buffer {b} lies outside the flatbuffer; such models cannot be cut")
            buffer_bytes.append(int(buffer.DataAsNumpy().size) if buffer.DataLength() else 0)
        tensors = [graph.Tensors(i) for i in range(graph.TensorsLength())]
        quant: list[tuple[float, int] | None] = []
        for tensor in tensors:
            q = tensor.Quantization()
            if q is not None and q.ScaleLength() == 1 and q.ZeroPointLength() == 1:
                quant.append((float(q.ScaleAsNumpy()[0]), int(q.ZeroPointAsNumpy()[0])))
            else:
                quant.append(None)
        operators = [graph.Operators(i) for i in range(graph.OperatorsLength())]
        result = _Graph(
            ops=tuple(op_name(model, o.OpcodeIndex()) for o in operators),
            op_inputs=tuple(
                tuple(int(j) for j in o.InputsAsNumpy()) if o.InputsLength() else () for o in operators
            ),
            op_outputs=tuple(
                tuple(int(j) for j in o.OutputsAsNumpy()) if o.OutputsLength() else () for o in operators
            ),
            names=tuple((t.Name() or b"").decode(errors="replace") for t in tensors),
            shapes=tuple(tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else () for t in tensors),
            dtypes=tuple(DTYPES.get(t.Type(), f"type{t.Type()}") for t in tensors),
            quant=tuple(quant),
            buffers=tuple(int(t.Buffer()) for t in tensors),
            buffer_bytes=tuple(buffer_bytes),
            inputs=tuple(int(j) for j in graph.InputsAsNumpy()) if graph.InputsLength() else (),
            outputs=tuple(int(j) for j in graph.OutputsAsNumpy()) if graph.OutputsLength() else (),
        )
    except UnsupportedModel:
        raise
    except (IndexError, struct.error, ValueError, TypeError, AttributeError) as exc:
        raise UnsupportedModel(f"the TFLite flatbuffer is truncated or corrupt ({exc})") from exc
    if len(result.inputs) != 1 or len(result.outputs) != 1:
        raise UnsupportedModel(
            f"the model has {len(result.inputs)} inputs and {len(result.outputs)} outputs; "
            "only models with one of each can be cut"
        )
    for role, index in (("input", result.inputs[0]), ("output", result.outputs[0])):
        if result.dtypes[index] != "int8":
            raise UnsupportedModel(
                f"model {role} {result.names[index]!r} is {result.dtypes[index]}; "
                "only full-integer int8 models can be cut"
            )
        if result.quant[index] is None:
            raise UnsupportedModel(
                f"model {role} {result.names[index]!r} has no per-tensor quantization; "
                "only full-integer int8 models can be cut"
            )
    return result


def find_cuts(tflite: bytes) -> CutSearch:
    """Every cut where one int8 tensor crosses, with the cost on each side; no TensorFlow needed."""
    graph = _read(tflite)
    macs = [layer.macs for layer in inspect_tflite(tflite).layers]
    n = len(graph.ops)
    cuts = []
    skipped = []
    not_int8 = []
    for k in range(n + 1):
        crossing = graph.crossing(k)
        if len(crossing) > 1:
            skipped.append((k, len(crossing)))
            continue
        if len(crossing) == 0:
            raise UnsupportedModel(
                f"no tensor crosses cut {k}: the model's output does not depend on its input"
            )
        (tensor,) = crossing
        quant = graph.quant[tensor]
        if graph.dtypes[tensor] != "int8" or quant is None:
            not_int8.append(k)
            continue
        shape = graph.shapes[tensor]
        cuts.append(
            Cut(
                index=k,
                tensor=graph.names[tensor],
                shape=shape,
                scale=quant[0],
                zero_point=quant[1],
                nbytes=math.prod(shape),
                head_ops=graph.ops[:k],
                tail_ops=graph.ops[k:],
                head_macs=sum(macs[:k]),
                tail_macs=sum(macs[k:]),
                head_weight_bytes=graph.weight_bytes(range(k)),
                tail_weight_bytes=graph.weight_bytes(range(k, n)),
            )
        )
    return CutSearch(operators=n, cuts=tuple(cuts), skipped=tuple(skipped), not_int8=tuple(not_int8))


def split_model(tflite: bytes, index: int) -> tuple[bytes | None, bytes | None]:
    """``(head, tail)`` at cut ``index``; None for the side with no operators."""
    graph = _read(tflite)
    n = len(graph.ops)
    if not 0 <= index <= n:
        raise InvalidInput(f"cut {index} is out of range: the model has {n} operators, so cuts are 0..{n}")
    crossing = graph.crossing(index)
    if len(crossing) != 1:
        raise InvalidInput(
            f"cut {index} is not a valid cut: {len(crossing)} tensors cross it "
            f"({', '.join(repr(graph.names[t]) for t in crossing)}), a node can send only one"
        )
    (tensor,) = crossing
    if graph.dtypes[tensor] != "int8" or graph.quant[tensor] is None:
        raise UnsupportedModel(
            f"tensor {graph.names[tensor]!r} crossing cut {index} is {graph.dtypes[tensor]}; "
            "only int8 tensors with per-tensor quantization can cross a cut"
        )
    from tensorflow.lite.python import schema_py_generated as schema

    head = _half(schema, tflite, range(index), graph.inputs[0], tensor) if index > 0 else None
    tail = _half(schema, tflite, range(index, n), tensor, graph.outputs[0]) if index < n else None
    return head, tail


def _half(schema: Any, tflite: bytes, ops: range, source: int, sink: int) -> bytes:
    """A model of ``ops`` alone, fed ``source`` and giving ``sink``, holding only what those ops use."""
    import flatbuffers

    # A tree of its own per half: the half renumbers operators and tensors in place.
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(tflite, 0))
    subgraph = model.subgraphs[0]
    operators = [subgraph.operators[i] for i in ops]
    tensor_map: dict[int, int] = {}
    opcode_map: dict[int, int] = {}
    buffer_map: dict[int, int] = {}
    half = schema.ModelT()
    half.version = model.version
    half.description = model.description
    half.operatorCodes = []
    half.buffers = [schema.BufferT()]  # buffer 0 stays empty, as TFLite expects
    new_graph = schema.SubGraphT()
    new_graph.name = subgraph.name
    new_graph.tensors = []

    def buffer(old: int) -> int:
        if old not in buffer_map:
            data = model.buffers[old].data
            if data is None or len(data) == 0:
                return 0
            copy = _AlignedBuffer(schema)
            copy.data = np.asarray(data, dtype=np.uint8)
            buffer_map[old] = len(half.buffers)
            half.buffers.append(copy)
        return buffer_map[old]

    def tensor(old: int) -> int:
        if old < 0:
            return old
        if old not in tensor_map:
            original = subgraph.tensors[old]
            original.buffer = buffer(original.buffer)
            tensor_map[old] = len(new_graph.tensors)
            new_graph.tensors.append(original)
        return tensor_map[old]

    def remap(indices: Any) -> list[int] | None:
        return None if indices is None else [tensor(int(j)) for j in indices]

    new_graph.inputs = [tensor(source)]
    new_graph.operators = []
    for operator in operators:
        if operator.opcodeIndex not in opcode_map:
            opcode_map[operator.opcodeIndex] = len(half.operatorCodes)
            half.operatorCodes.append(model.operatorCodes[operator.opcodeIndex])
        operator.opcodeIndex = opcode_map[operator.opcodeIndex]
        operator.inputs = remap(operator.inputs)
        operator.outputs = remap(operator.outputs)
        operator.intermediates = remap(operator.intermediates)
        new_graph.operators.append(operator)
    new_graph.outputs = [tensor(sink)]
    half.subgraphs = [new_graph]
    half.metadata = []
    for entry in model.metadata or []:
        kept = schema.MetadataT()
        kept.name = entry.name
        copy = _AlignedBuffer(schema)
        copy.data = model.buffers[entry.buffer].data
        kept.buffer = len(half.buffers)
        half.buffers.append(copy)
        half.metadata.append(kept)
    half.signatureDefs = [_signature(schema, model, source, sink, tensor_map)]
    builder = flatbuffers.Builder(1024)
    builder.Finish(half.Pack(builder), file_identifier=_IDENTIFIER)
    return bytes(builder.Output())


def _signature(
    schema: Any, model: schema_t.ModelT, source: int, sink: int, tensor_map: dict[int, int]
) -> Any:
    """The half's one signature, keeping the unsplit model's key for its own input or output."""
    original = (model.signatureDefs or [None])[0]
    keys = {}
    if original is not None:
        for entry in [*(original.inputs or []), *(original.outputs or [])]:
            keys[entry.tensorIndex] = entry.name
    tensors = model.subgraphs[0].tensors

    def entry(old: int) -> Any:
        item = schema.TensorMapT()
        item.name = keys.get(old) or tensors[old].name or f"tensor_{old}"
        item.tensorIndex = tensor_map[old]
        return item

    signature = schema.SignatureDefT()
    signature.signatureKey = original.signatureKey if original is not None else "serving_default"
    signature.subgraphIndex = 0
    signature.inputs = [entry(source)]
    signature.outputs = [entry(sink)]
    return signature


class _AlignedBuffer:
    """A ``BufferT`` whose data is packed on a 16-byte boundary (the generated code aligns to 1)."""

    def __init__(self, schema: Any) -> None:
        self._schema = schema
        self.data: np.ndarray | None = None
        self.offset = 0
        self.size = 0

    def Pack(self, builder: Any) -> int:  # noqa: N802 - the name ModelT.Pack calls
        schema = self._schema
        data = None
        if self.data is not None:
            payload = np.asarray(self.data, dtype=np.uint8).tobytes()
            builder.StartVector(1, len(payload), _BUFFER_ALIGNMENT)
            builder.head = builder.head - len(payload)
            builder.Bytes[builder.head : builder.head + len(payload)] = payload
            builder.vectorNumElems = len(payload)
            data = builder.EndVector()
        schema.BufferStart(builder)
        if data is not None:
            schema.BufferAddData(builder, data)
        return int(schema.BufferEnd(builder))

"""Read a ``.tflite`` flatbuffer into the native compiler's IR, refusing what it cannot compile.

The checks happen here, before any code is generated, so an unsupported model fails with one clear
message naming the operator and its index instead of a C compiler error later.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from typing import Any

import tflite

from tinymlaas.compilers.native.ir import Graph, Node, Quant, Tensor
from tinymlaas.errors import UnsupportedModel
from tinymlaas.squeeze.inspect import DTYPES, op_name

__all__ = ["read_graph"]

_PADDING = {v: k for k, v in vars(tflite.Padding).items() if not k.startswith("_")}
_ACTIVATION = {v: k for k, v in vars(tflite.ActivationFunctionType).items() if not k.startswith("_")}
_OPTION_CLASSES = {v: k for k, v in vars(tflite.BuiltinOptions).items() if not k.startswith("_")}
_NOT_FIELDS = re.compile(r"^(Init|GetRootAs.*|.*BufferHasIdentifier|.*AsNumpy|.*Length|.*IsNone)$")


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


@cache
def _fields(class_name: str) -> tuple[str, ...]:
    cls = getattr(tflite, class_name)
    return tuple(
        name
        for name, member in vars(cls).items()
        if callable(member) and not name.startswith("_") and not _NOT_FIELDS.match(name)
    )


def _options(operator: tflite.Operator) -> Mapping[str, Any]:
    """Decode the builtin options table into plain values with TFLite's snake_case field names."""
    class_name = _OPTION_CLASSES.get(operator.BuiltinOptionsType())
    table = operator.BuiltinOptions()
    if class_name is None or class_name == "NONE" or table is None:
        return {}
    options = getattr(tflite, class_name)()
    options.Init(table.Bytes, table.Pos)
    decoded: dict[str, Any] = {}
    for field in _fields(class_name):
        if hasattr(options, f"{field}AsNumpy"):
            length = getattr(options, f"{field}Length")()
            decoded[_snake(field)] = (
                tuple(int(v) for v in getattr(options, f"{field}AsNumpy")()) if length else ()
            )
            continue
        value = getattr(options, field)()
        if field == "Padding":
            value = _PADDING.get(value, str(value))
        elif field == "FusedActivationFunction":
            value = _ACTIVATION.get(value, str(value))
        elif isinstance(value, bytes):
            value = value.decode(errors="replace")
        elif not isinstance(value, (bool, int, float)):
            continue
        decoded[_snake(field)] = value
    return decoded


def _quant(tensor: tflite.Tensor) -> Quant | None:
    quant = tensor.Quantization()
    if quant is None or quant.ScaleLength() == 0:
        return None
    return Quant(
        scale=tuple(float(s) for s in quant.ScaleAsNumpy()),
        zero_point=tuple(int(z) for z in quant.ZeroPointAsNumpy()) if quant.ZeroPointLength() else (0,),
        axis=int(quant.QuantizedDimension()),
    )


def _tensor(model: tflite.Model, graph: tflite.SubGraph, index: int) -> Tensor:
    tensor = graph.Tensors(index)
    buffer = model.Buffers(tensor.Buffer())
    data = None
    if buffer is not None and buffer.DataLength() > 0:
        data = buffer.DataAsNumpy().tobytes()
    type_code = tensor.Type()
    return Tensor(
        index=index,
        name=(tensor.Name() or b"").decode(errors="replace"),
        shape=tuple(int(d) for d in tensor.ShapeAsNumpy()) if tensor.ShapeLength() else (),
        dtype=DTYPES.get(type_code, f"type{type_code}"),
        quant=_quant(tensor),
        data=data,
    )


def _check_node(node: Node, tensors: tuple[Tensor, ...], supported: frozenset[str] | None) -> None:
    if supported is not None and node.op not in supported:
        raise UnsupportedModel(f"node {node.index} ({node.op}): operator {node.op} is not supported")
    for index in (*node.inputs, *node.outputs):
        if index < 0:
            continue
        tensor = tensors[index]
        if tensor.data is None and tensor.dtype != "int8":
            raise UnsupportedModel(
                f"node {node.index} ({node.op}): tensor {tensor.name!r} is {tensor.dtype}; "
                "only full-integer int8 models are supported"
            )
        if tensor.data is None and tensor.quant is None:
            raise UnsupportedModel(
                f"node {node.index} ({node.op}): tensor {tensor.name!r} has no quantization"
            )
        if tensor.data is None and any(d < 1 for d in tensor.shape):
            raise UnsupportedModel(
                f"node {node.index} ({node.op}): tensor {tensor.name!r} has a dynamic shape"
            )


def read_graph(tflite_bytes: bytes, supported: frozenset[str] | None = None) -> Graph:
    """Parse subgraph 0; refuse non-int8 activations, batch > 1 and ops outside ``supported``."""
    try:
        model = tflite.Model.GetRootAsModel(tflite_bytes, 0)
        if model.SubgraphsLength() < 1:
            raise UnsupportedModel("the model has no subgraph")
        graph = model.Subgraphs(0)
        tensors = tuple(_tensor(model, graph, i) for i in range(graph.TensorsLength()))
        nodes = []
        for i in range(graph.OperatorsLength()):
            operator = graph.Operators(i)
            nodes.append(
                Node(
                    index=i,
                    op=op_name(model, operator.OpcodeIndex()),
                    inputs=tuple(int(j) for j in operator.InputsAsNumpy()) if operator.InputsLength() else (),
                    outputs=tuple(int(j) for j in operator.OutputsAsNumpy())
                    if operator.OutputsLength()
                    else (),
                    options=_options(operator),
                )
            )
        inputs = tuple(int(j) for j in graph.InputsAsNumpy()) if graph.InputsLength() else ()
        outputs = tuple(int(j) for j in graph.OutputsAsNumpy()) if graph.OutputsLength() else ()
    except UnsupportedModel:
        raise
    except Exception as exc:  # a corrupt flatbuffer raises anything from struct.error to IndexError
        raise UnsupportedModel(f"cannot read the model: {exc}") from exc
    if not inputs or not outputs:
        raise UnsupportedModel("the model has no input or no output tensor")
    for node in nodes:
        _check_node(node, tensors, supported)
    for index in (*inputs, *outputs):
        tensor = tensors[index]
        if tensor.dtype != "int8":
            raise UnsupportedModel(
                f"model I/O tensor {tensor.name!r} is {tensor.dtype}; "
                "only full-integer int8 models are supported"
            )
        if len(tensor.shape) >= 2 and tensor.shape[0] != 1:
            raise UnsupportedModel(
                f"tensor {tensor.name!r} has batch {tensor.shape[0]}; only batch 1 is supported"
            )
    return Graph(tensors=tensors, nodes=tuple(nodes), inputs=inputs, outputs=outputs)

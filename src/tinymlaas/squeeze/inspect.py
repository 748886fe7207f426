"""Read a ``.tflite`` flatbuffer into a ``ModelInfo``: ops, I/O, per-layer parameters and MACs.

Parsing uses the ``tflite`` package (the generated FlatBuffers schema), so inspection works on any
model file, ours or another tool's, without loading a runtime.
"""

from __future__ import annotations

import math
import struct

import numpy as np
import tflite

from tinymlaas.errors import UnsupportedModel
from tinymlaas.squeeze.info import LayerInfo, ModelInfo, TensorInfo

__all__ = ["DTYPES", "inspect_tflite", "op_name"]

_TFLITE_IDENTIFIER = b"TFL3"
# TFLite tensor types by the numpy dtype names the product uses.
DTYPES = {
    tflite.TensorType.FLOAT32: "float32",
    tflite.TensorType.FLOAT16: "float16",
    tflite.TensorType.INT32: "int32",
    tflite.TensorType.UINT8: "uint8",
    tflite.TensorType.INT64: "int64",
    tflite.TensorType.BOOL: "bool",
    tflite.TensorType.INT16: "int16",
    tflite.TensorType.INT8: "int8",
}
_ITEMSIZE = {"float32": 4, "float16": 2, "int32": 4, "uint8": 1, "int64": 8, "bool": 1, "int16": 2, "int8": 1}


def op_name(model: tflite.Model, opcode_index: int) -> str:
    """The builtin op name as TFLite spells it (``CUSTOM:<name>`` for custom ops)."""
    code = model.OperatorCodes(opcode_index)
    # Op codes above 127 live in BuiltinCode(); older files only fill DeprecatedBuiltinCode().
    builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
    if builtin == tflite.BuiltinOperator.CUSTOM:
        custom = code.CustomCode()
        return f"CUSTOM:{custom.decode() if custom else '?'}"
    try:
        return tflite.opcode2name(builtin)
    except ValueError:
        return f"BUILTIN_{builtin}"


def _tensor_info(tensor: tflite.Tensor) -> TensorInfo:
    quant = tensor.Quantization()
    scale = zero_point = None
    if quant is not None and quant.ScaleLength() == 1:
        scale = float(quant.ScaleAsNumpy()[0])
        zero_point = int(quant.ZeroPointAsNumpy()[0])
    return TensorInfo(
        name=(tensor.Name() or b"").decode(errors="replace"),
        shape=tuple(int(d) for d in tensor.ShapeAsNumpy()) if tensor.ShapeLength() else (),
        dtype=DTYPES.get(tensor.Type(), f"type{tensor.Type()}"),
        scale=scale,
        zero_point=zero_point,
    )


# Ops whose int32 constant input is a bias (a learned parameter); elsewhere int32/int64 constants
# are shapes, axes or paddings and are not counted as parameters.
_BIASED_OPS = frozenset({"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV", "CONV_3D"})


def _is_parameter(op: str, tensor: TensorInfo) -> bool:
    if not tensor.shape:
        return False
    return tensor.dtype not in ("int32", "int64") or op in _BIASED_OPS


def _macs(op: str, inputs: list[TensorInfo], output: TensorInfo) -> int:
    """Multiply-accumulates for one inference; only the ops that dominate compute are counted."""
    out_elems = math.prod(output.shape) if output.shape else 0
    if op == "CONV_2D" and len(inputs) > 1:
        _, kh, kw, in_c = inputs[1].shape
        return out_elems * kh * kw * in_c
    if op == "DEPTHWISE_CONV_2D" and len(inputs) > 1:
        _, kh, kw, _ = inputs[1].shape
        return out_elems * kh * kw
    if op == "FULLY_CONNECTED" and len(inputs) > 1 and len(inputs[1].shape) == 2:
        return out_elems * inputs[1].shape[1]
    return 0


def _parse(data: bytes) -> ModelInfo:
    model = tflite.Model.GetRootAsModel(data, 0)
    if model.SubgraphsLength() < 1:
        raise UnsupportedModel("the model has no subgraph")
    graph = model.Subgraphs(0)
    tensors = [graph.Tensors(i) for i in range(graph.TensorsLength())]
    infos = [_tensor_info(t) for t in tensors]

    def is_constant(index: int) -> bool:
        buffer = model.Buffers(tensors[index].Buffer())
        if buffer is None or buffer.DataLength() == 0:
            return buffer is not None and buffer.Size() > 0
        # Slicing the data checks that the whole buffer lies inside the file (catches truncation).
        if buffer.DataAsNumpy().size != buffer.DataLength():
            raise ValueError(f"buffer of tensor {index} runs past the end of the file")
        return True

    layers = []
    weight_types: set[str] = set()
    for i in range(graph.OperatorsLength()):
        operator = graph.Operators(i)
        op = op_name(model, operator.OpcodeIndex())
        input_ids = [int(j) for j in operator.InputsAsNumpy()] if operator.InputsLength() else []
        output_ids = [int(j) for j in operator.OutputsAsNumpy()] if operator.OutputsLength() else []
        inputs = [infos[j] if j >= 0 else TensorInfo("", (), "none") for j in input_ids]
        constants = [j for j in input_ids if j >= 0 and is_constant(j)]
        weight_types.update(infos[j].dtype for j in constants)
        output = infos[output_ids[0]] if output_ids else TensorInfo("", (), "none")
        layers.append(
            LayerInfo(
                index=i,
                op=op,
                output_shape=output.shape,
                params=sum(math.prod(infos[j].shape) for j in constants if _is_parameter(op, infos[j])),
                macs=_macs(op, inputs, output),
            )
        )
    model_inputs = tuple(infos[int(j)] for j in graph.InputsAsNumpy())
    model_outputs = tuple(infos[int(j)] for j in graph.OutputsAsNumpy())
    if "float16" in weight_types:
        quantization = "float16"
    elif all(t.dtype == "int8" for t in (*model_inputs, *model_outputs)) and (
        "int8" in weight_types or weight_types <= {"int32"}
    ):
        # Full-integer: int8 in and out with int8 weights, or no weights at all (a part of a split
        # model made only of reshapes, pooling or softmax is int8 all the same).
        quantization = "int8"
    elif all(t.dtype == "int16" for t in (*model_inputs, *model_outputs)) and "int8" in weight_types:
        quantization = "int16x8"
    elif "int8" in weight_types:
        quantization = "dynamic-int8"
    else:
        quantization = "float32"
    constant_ids = {j for j in range(len(tensors)) if is_constant(j)}
    activation_bytes = sum(
        math.prod(info.shape) * _ITEMSIZE.get(info.dtype, 4)
        for j, info in enumerate(infos)
        if j not in constant_ids and info.shape
    )
    return ModelInfo(
        size_bytes=len(data),
        ops=tuple(sorted({layer.op for layer in layers})),
        inputs=model_inputs,
        outputs=model_outputs,
        layers=tuple(layers),
        quantization=quantization,
        activation_bytes=activation_bytes,
    )


def inspect_tflite(data: bytes, *, name: str = "model") -> ModelInfo:
    """Parse ``data``; raise ``UnsupportedModel`` naming ``name`` if it is not a whole TFLite model."""
    if len(data) < 8 or data[4:8] != _TFLITE_IDENTIFIER:
        raise UnsupportedModel(f"{name}: not a TFLite model (no 'TFL3' flatbuffer identifier)")
    try:
        info = _parse(data)
    except UnsupportedModel as exc:
        raise UnsupportedModel(f"{name}: {exc.detail}") from exc
    except (IndexError, struct.error, ValueError, TypeError, AttributeError, np.exceptions.AxisError) as exc:
        raise UnsupportedModel(f"{name}: the TFLite flatbuffer is truncated or corrupt ({exc})") from exc
    if not info.inputs or not info.outputs:
        raise UnsupportedModel(f"{name}: the model declares no inputs or no outputs")
    return info

"""Lowerings of the element-wise and data-movement ops: ADD, MUL, PAD, CONCATENATION, LOGISTIC, QUANTIZE.

Each ``*_params`` function derives a kernel's integer parameters the way the named TFLM ``Prepare``
does, from the float32 scales in the model, so the kernels in ``runtime/tmn_extra.c`` reproduce the
interpreter bit for bit; the lowerings only format those parameters into one C call.

DEQUANTIZE, and QUANTIZE from float32, are refused: the module's ``tmn_invoke`` takes and returns
int8 by contract, and ``tmn_infer`` already does the float conversion at both ends, so a float tensor
inside the graph has no storage to live in.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tinymlaas.compilers.native.ir import Graph, Node, Tensor
from tinymlaas.compilers.native.lowering import Emitter, Lowering
from tinymlaas.compilers.native.qmath import (
    calculate_input_radius,
    quantize_multiplier,
    quantize_multiplier_smaller_than_one,
    round_half_away,
)
from tinymlaas.errors import UnsupportedModel

__all__ = [
    "BCAST_DIMS",
    "EXTRA_LOWERINGS",
    "PAD_DIMS",
    "AddParams",
    "Broadcast",
    "ConcatParams",
    "LogisticParams",
    "MulParams",
    "PadParams",
    "QuantizeParams",
    "add_params",
    "broadcast",
    "concat_params",
    "logistic_params",
    "mul_params",
    "pad_params",
    "quantize_params",
]

BCAST_DIMS = 6  # TMN_BCAST_DIMS: the element-wise kernels iterate over this many (merged) dimensions
PAD_DIMS = 5  # TFLM's Pad handles up to five dimensions
ADD_LEFT_SHIFT = 20  # CalculateOpDataAdd's headroom for int8 operands
LOGISTIC_INPUT_INTEGER_BITS = 4  # the Q4.27 input format of TFLM's int8 logistic


def _op_error(node: Node, reason: str) -> UnsupportedModel:
    return UnsupportedModel(f"{node.op} (node {node.index}): {reason}")


def _int8_quant(node: Node, tensor: Tensor) -> tuple[float, int]:
    """The per-tensor (scale, zero point) of an int8 operand; anything else is refused."""
    if tensor.dtype.lower() != "int8":
        raise _op_error(node, f"tensor {tensor.name!r} is {tensor.dtype}, only int8 is supported")
    quant = tensor.quant
    if quant is None or not quant.scale:
        raise _op_error(node, f"tensor {tensor.name!r} is not quantized")
    if len(quant.scale) != 1:
        raise _op_error(node, f"tensor {tensor.name!r} is quantized per channel")
    return quant.scale[0], quant.zero_point[0]


def _carray(emit: Emitter, values: Sequence[int], hint: str) -> str:
    return emit.const_array("int32_t", [int(v) for v in values], hint)


@dataclass(frozen=True)
class Broadcast:
    """Numpy-style broadcast of two operands over an output, as the kernels iterate it.

    Adjacent output dimensions along which both operands behave the same (both present, or one
    broadcast) are merged, so the innermost loop runs as long as possible; ``dims`` is left-padded
    with 1s to ``BCAST_DIMS`` and ``stride1``/``stride2`` are element strides, 0 where broadcast.
    """

    dims: tuple[int, ...]
    stride1: tuple[int, ...]
    stride2: tuple[int, ...]


def broadcast(shape1: Sequence[int], shape2: Sequence[int], out_shape: Sequence[int]) -> Broadcast:
    """The merged iteration space of ``out = f(in1, in2)`` (TFLM's NdArrayDescsForElementwiseBroadcast)."""
    rank = max(len(shape1), len(shape2), len(out_shape))
    ext1 = (1,) * (rank - len(shape1)) + tuple(shape1)
    ext2 = (1,) * (rank - len(shape2)) + tuple(shape2)
    ext_out = (1,) * (rank - len(out_shape)) + tuple(out_shape)
    runs: list[list[int]] = []  # [size, operand 1 present, operand 2 present]
    for d1, d2, n in zip(ext1, ext2, ext_out, strict=True):
        if d1 not in (1, n) or d2 not in (1, n) or max(d1, d2) != n:
            raise UnsupportedModel(
                f"shapes {tuple(shape1)} and {tuple(shape2)} do not broadcast to {tuple(out_shape)}"
            )
        if n == 1:
            continue
        full1, full2 = int(d1 == n), int(d2 == n)
        if runs and runs[-1][1] == full1 and runs[-1][2] == full2:
            runs[-1][0] *= n
        else:
            runs.append([n, full1, full2])
    if len(runs) > BCAST_DIMS:
        raise UnsupportedModel(
            f"broadcast of {tuple(shape1)} and {tuple(shape2)} needs more than {BCAST_DIMS} dims"
        )
    dims: list[int] = []
    stride1: list[int] = []
    stride2: list[int] = []
    size1 = size2 = 1
    for n, full1, full2 in reversed(runs):
        dims.insert(0, n)
        stride1.insert(0, size1 if full1 else 0)
        stride2.insert(0, size2 if full2 else 0)
        size1 *= n if full1 else 1
        size2 *= n if full2 else 1
    pad = BCAST_DIMS - len(dims)
    return Broadcast((1,) * pad + tuple(dims), (0,) * pad + tuple(stride1), (0,) * pad + tuple(stride2))


@dataclass(frozen=True)
class AddParams:
    """``tmn_add_s8``'s scalar arguments (TFLM's OpDataAdd for int8)."""

    in1_offset: int
    in1_multiplier: int
    in1_shift: int
    in2_offset: int
    in2_multiplier: int
    in2_shift: int
    left_shift: int
    out_offset: int
    out_multiplier: int
    out_shift: int


def add_params(node: Node, in1: Tensor, in2: Tensor, out: Tensor) -> AddParams:
    """TFLM's CalculateOpDataAdd: both operands go to twice the larger input scale, 20 bits up."""
    s1, z1 = _int8_quant(node, in1)
    s2, z2 = _int8_quant(node, in2)
    so, zo = _int8_quant(node, out)
    twice_max_input_scale = 2.0 * max(s1, s2)
    try:
        m1, sh1 = quantize_multiplier_smaller_than_one(s1 / twice_max_input_scale)
        m2, sh2 = quantize_multiplier_smaller_than_one(s2 / twice_max_input_scale)
        mo, sho = quantize_multiplier_smaller_than_one(twice_max_input_scale / ((1 << ADD_LEFT_SHIFT) * so))
    except UnsupportedModel as exc:
        raise _op_error(node, f"scales out of TFLM's range ({exc})") from exc
    return AddParams(-z1, m1, sh1, -z2, m2, sh2, ADD_LEFT_SHIFT, zo, mo, sho)


@dataclass(frozen=True)
class MulParams:
    """``tmn_mul_s8``'s scalar arguments (TFLM's OpDataMul for int8)."""

    in1_offset: int
    in2_offset: int
    out_offset: int
    out_multiplier: int
    out_shift: int


def mul_params(node: Node, in1: Tensor, in2: Tensor, out: Tensor) -> MulParams:
    """TFLM's CalculateOpDataMul: one multiplier for s1 * s2 / s_out."""
    s1, z1 = _int8_quant(node, in1)
    s2, z2 = _int8_quant(node, in2)
    so, zo = _int8_quant(node, out)
    multiplier, shift = quantize_multiplier(s1 * s2 / so)
    return MulParams(-z1, -z2, zo, multiplier, shift)


@dataclass(frozen=True)
class PadParams:
    """``tmn_pad_s8``'s arguments: output shape and paddings left-padded to five dims, the pad value."""

    out_dims: tuple[int, ...]
    before: tuple[int, ...]
    after: tuple[int, ...]
    pad_value: int


def pad_params(node: Node, inp: Tensor, paddings: Tensor, out: Tensor, value: Tensor | None) -> PadParams:
    """TFLM's PadPrepare/PadEval: constant paddings; the pad value is the output zero point (PAD) or
    PADV2's constant value."""
    _int8_quant(node, inp)
    _, zo = _int8_quant(node, out)
    if paddings.data is None:
        raise _op_error(node, "paddings must be a constant tensor")
    dtypes = {"int32": "<i4", "int64": "<i8"}
    if paddings.dtype.lower() not in dtypes:
        raise _op_error(node, f"paddings of type {paddings.dtype} are not supported")
    pads = np.frombuffer(paddings.data, dtype=dtypes[paddings.dtype.lower()]).reshape(-1, 2)
    rank = len(out.shape)
    if pads.shape[0] != rank or len(inp.shape) != rank or rank > PAD_DIMS:
        raise _op_error(
            node, f"paddings {pads.tolist()} do not fit a rank-{rank} tensor of at most {PAD_DIMS}"
        )
    if (pads < 0).any():
        raise _op_error(node, "negative paddings are not supported")
    for d in range(rank):
        if inp.shape[d] + int(pads[d, 0]) + int(pads[d, 1]) != out.shape[d]:
            raise _op_error(node, f"paddings {pads.tolist()} do not turn {inp.shape} into {out.shape}")
    pad_value = zo
    if value is not None:
        if value.data is None or value.dtype.lower() != "int8":
            raise _op_error(node, "the pad value must be a constant int8 tensor")
        pad_value = int(np.frombuffer(value.data, dtype=np.int8)[0])
    lead = PAD_DIMS - rank
    return PadParams(
        out_dims=(1,) * lead + tuple(out.shape),
        before=(0,) * lead + tuple(int(p) for p in pads[:, 0]),
        after=(0,) * lead + tuple(int(p) for p in pads[:, 1]),
        pad_value=pad_value,
    )


@dataclass(frozen=True)
class ConcatParams:
    """``tmn_concatenation_s8``'s arguments: each input's slab size and the count of slabs."""

    copy_sizes: tuple[int, ...]
    outer: int


def concat_params(node: Node, inputs: Sequence[Tensor], out: Tensor, axis: int) -> ConcatParams:
    """TFLM's Concatenation: a byte copy. TFLM does not rescale int8 inputs whose scale or zero point
    differs from the output's (the converter never produces that), so neither does this."""
    _int8_quant(node, out)
    rank = len(out.shape)
    axis = axis + rank if axis < 0 else axis
    if not 0 <= axis < rank:
        raise _op_error(node, f"axis {axis} is out of range for rank {rank}")
    sizes: list[int] = []
    for tensor in inputs:
        _int8_quant(node, tensor)
        if len(tensor.shape) != rank:
            raise _op_error(node, f"input {tensor.name!r} has rank {len(tensor.shape)}, the output {rank}")
        sizes.append(math.prod(tensor.shape[axis:]))
    if sum(sizes) * math.prod(out.shape[:axis]) != math.prod(out.shape):
        raise _op_error(node, f"inputs do not fill the output {out.shape}")
    return ConcatParams(tuple(sizes), math.prod(out.shape[:axis]))


@dataclass(frozen=True)
class LogisticParams:
    """``tmn_logistic_s8``'s scalar arguments (TFLM's OpDataLogistic for int8)."""

    in_zero_point: int
    range_radius: int
    in_multiplier: int
    in_left_shift: int


def logistic_params(node: Node, inp: Tensor, out: Tensor) -> LogisticParams:
    """TFLM's CalculateArithmeticOpDataLogistic: the input rescale to Q4.27 by frexp (no
    QuantizeMultiplier special cases) and the radius beyond which the output saturates."""
    scale, zero_point = _int8_quant(node, inp)
    _, out_zero_point = _int8_quant(node, out)
    if out_zero_point != -128:
        raise _op_error(node, f"output zero point {out_zero_point}, TFLM requires -128")
    fraction, left_shift = math.frexp(scale * (1 << (31 - LOGISTIC_INPUT_INTEGER_BITS)))
    if left_shift < 0:
        raise _op_error(node, f"input scale {scale!r} is too small")
    multiplier = int(round_half_away(fraction * (1 << 31)))
    radius = calculate_input_radius(LOGISTIC_INPUT_INTEGER_BITS, left_shift)
    return LogisticParams(zero_point, radius, multiplier, left_shift)


@dataclass(frozen=True)
class QuantizeParams:
    """``tmn_quantize_s8``'s scalar arguments (TFLM's OpDataQuantizeReference for int8 -> int8)."""

    in_zero_point: int
    out_zero_point: int
    multiplier: int
    shift: int


def quantize_params(node: Node, inp: Tensor, out: Tensor) -> QuantizeParams:
    """TFLM's PrepareQuantizeReference for int8 -> int8: QuantizeMultiplier(s_in / s_out)."""
    if inp.dtype.lower() != "int8":
        raise _op_error(
            node,
            f"quantizing from {inp.dtype} is not supported: the module's input is int8 (convert with "
            "an int8 input type; tmn_infer quantizes sensor values)",
        )
    s_in, z_in = _int8_quant(node, inp)
    s_out, z_out = _int8_quant(node, out)
    multiplier, shift = quantize_multiplier(s_in / s_out)
    return QuantizeParams(z_in, z_out, multiplier, shift)


def _tensors(node: Node, graph: Graph, count: int) -> list[Tensor]:
    present = [i for i in node.inputs if i >= 0]
    if len(present) < count:
        raise _op_error(node, f"expects {count} inputs, has {len(present)}")
    return [graph.tensors[i] for i in present[:count]]


def _lower_add(node: Node, graph: Graph, emit: Emitter) -> str:
    in1, in2 = _tensors(node, graph, 2)
    out = graph.tensors[node.outputs[0]]
    p = add_params(node, in1, in2, out)
    b = broadcast(in1.shape, in2.shape, out.shape)
    act_min, act_max = emit.activation_range(node, out)
    return (
        f"tmn_add_s8({emit.tensor(in1.index)}, {emit.tensor(in2.index)}, {emit.tensor(out.index)}, "
        f"{_carray(emit, b.dims, 'add_dims')}, {_carray(emit, b.stride1, 'add_stride1')}, "
        f"{_carray(emit, b.stride2, 'add_stride2')}, {p.in1_offset}, {p.in1_multiplier}, {p.in1_shift}, "
        f"{p.in2_offset}, {p.in2_multiplier}, {p.in2_shift}, {p.left_shift}, {p.out_offset}, "
        f"{p.out_multiplier}, {p.out_shift}, {act_min}, {act_max});"
    )


def _lower_mul(node: Node, graph: Graph, emit: Emitter) -> str:
    in1, in2 = _tensors(node, graph, 2)
    out = graph.tensors[node.outputs[0]]
    p = mul_params(node, in1, in2, out)
    b = broadcast(in1.shape, in2.shape, out.shape)
    act_min, act_max = emit.activation_range(node, out)
    return (
        f"tmn_mul_s8({emit.tensor(in1.index)}, {emit.tensor(in2.index)}, {emit.tensor(out.index)}, "
        f"{_carray(emit, b.dims, 'mul_dims')}, {_carray(emit, b.stride1, 'mul_stride1')}, "
        f"{_carray(emit, b.stride2, 'mul_stride2')}, {p.in1_offset}, {p.in2_offset}, {p.out_offset}, "
        f"{p.out_multiplier}, {p.out_shift}, {act_min}, {act_max});"
    )


def _lower_pad(node: Node, graph: Graph, emit: Emitter) -> str:
    inp, paddings = _tensors(node, graph, 2)
    value = None
    if node.op == "PADV2" and len(node.inputs) > 2 and node.inputs[2] >= 0:
        value = graph.tensors[node.inputs[2]]
    out = graph.tensors[node.outputs[0]]
    p = pad_params(node, inp, paddings, out, value)
    return (
        f"tmn_pad_s8({emit.tensor(inp.index)}, {emit.tensor(out.index)}, "
        f"{_carray(emit, p.out_dims, 'pad_dims')}, {_carray(emit, p.before, 'pad_before')}, "
        f"{_carray(emit, p.after, 'pad_after')}, {p.pad_value});"
    )


def _lower_concatenation(node: Node, graph: Graph, emit: Emitter) -> str:
    activation = node.options.get("fused_activation_function", "NONE")
    if activation != "NONE":
        raise _op_error(node, f"fused activation {activation} is not supported (TFLM refuses it too)")
    inputs = [graph.tensors[i] for i in node.inputs if i >= 0]
    out = graph.tensors[node.outputs[0]]
    p = concat_params(node, inputs, out, int(node.options.get("axis", 0)))
    pointers = ", ".join(emit.tensor(t.index) for t in inputs)
    return (
        f"tmn_concatenation_s8((const int8_t *const[]){{{pointers}}}, "
        f"{_carray(emit, p.copy_sizes, 'concat_sizes')}, {len(inputs)}, {p.outer}, {emit.tensor(out.index)});"
    )


def _lower_logistic(node: Node, graph: Graph, emit: Emitter) -> str:
    (inp,) = _tensors(node, graph, 1)
    out = graph.tensors[node.outputs[0]]
    p = logistic_params(node, inp, out)
    return (
        f"tmn_logistic_s8({emit.tensor(inp.index)}, {emit.tensor(out.index)}, {out.elements}, "
        f"{p.in_zero_point}, {p.range_radius}, {p.in_multiplier}, {p.in_left_shift});"
    )


def _lower_quantize(node: Node, graph: Graph, emit: Emitter) -> str:
    (inp,) = _tensors(node, graph, 1)
    out = graph.tensors[node.outputs[0]]
    p = quantize_params(node, inp, out)
    return (
        f"tmn_quantize_s8({emit.tensor(inp.index)}, {emit.tensor(out.index)}, {out.elements}, "
        f"{p.in_zero_point}, {p.out_zero_point}, {p.multiplier}, {p.shift});"
    )


def _lower_dequantize(node: Node, graph: Graph, emit: Emitter) -> str:
    raise _op_error(
        node,
        "a float32 output is not supported: the module's output is int8 (convert with an int8 output "
        "type; tmn_infer dequantizes it)",
    )


EXTRA_LOWERINGS: dict[str, Lowering] = {
    "ADD": _lower_add,
    "MUL": _lower_mul,
    "PAD": _lower_pad,
    "PADV2": _lower_pad,
    "CONCATENATION": _lower_concatenation,
    "LOGISTIC": _lower_logistic,
    "QUANTIZE": _lower_quantize,
    "DEQUANTIZE": _lower_dequantize,
}

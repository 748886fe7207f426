"""Lowering of IR nodes to C statements calling the runtime kernels.

Each lowering derives the kernel parameters exactly as TFLM's ``Prepare`` does (multipliers,
shifts, offsets, clamps), so the generated code is bit-exact with the interpreter while all of
that work happens once, at compile time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import numpy as np

from tinymlaas.compilers.native.ir import Graph, Node, Tensor
from tinymlaas.compilers.native.qmath import (
    calculate_input_radius,
    compute_padding,
    f32,
    per_channel_multipliers,
    preprocess_softmax_scaling,
    quantize_multiplier,
)
from tinymlaas.errors import UnsupportedModel

__all__ = ["ALIASING_OPS", "LOWERINGS", "Emitter", "Lowering", "inplace_inputs", "lowerings"]

# The output shares its input's storage: these ops only reinterpret the shape.
ALIASING_OPS = frozenset({"RESHAPE", "EXPAND_DIMS", "SQUEEZE"})


def inplace_inputs(node: Node, graph: Graph) -> tuple[int, ...]:
    """Positions in ``node.inputs`` whose storage the node's output may overwrite as it runs.

    The kernels below read each such input's bytes before writing the output over them, so the
    memory planner may place the output on an input that dies at this node (see plan.py): a
    requantising QUANTIZE of the same shape; a pointwise (1x1, stride 1,
    unpadded) CONV_2D with no more output than input channels, written back a batch of pixels at
    a time; a stride-1 same-size depthwise convolution on the packed path, whose output rows are
    held back in a small ring until no later row reads the input rows beneath them.
    """
    if not node.outputs or not node.inputs or node.inputs[0] < 0:
        return ()
    out = graph.tensors[node.outputs[0]]
    inp = graph.tensors[node.inputs[0]]
    if out.dtype != "int8" or inp.dtype != "int8" or inp.data is not None:
        return ()
    if node.op == "QUANTIZE":
        return (0,) if inp.shape == out.shape else ()
    if node.op not in ("CONV_2D", "DEPTHWISE_CONV_2D") or len(out.shape) != 4:
        return ()
    weights = graph.tensors[node.inputs[1]]
    if len(inp.shape) != 4 or len(weights.shape) != 4 or inp.shape[:3] != out.shape[:3]:
        return ()
    if int(node.options.get("stride_h", 1)) != 1 or int(node.options.get("stride_w", 1)) != 1:
        return ()
    if node.op == "CONV_2D":
        pointwise = weights.shape[1:3] == (1, 1) and out.shape[3] <= inp.shape[3]
        return (0,) if pointwise else ()
    taps = weights.shape[1] * weights.shape[2]
    packed = inp.shape[3] == out.shape[3] and out.shape[3] % 4 == 0 and taps <= _DW_FAST_TAPS
    return (0,) if packed else ()


class Emitter(Protocol):
    """What a lowering needs from the code generator."""

    def tensor(self, index: int) -> str:
        """C expression for the tensor's storage (scratch offset or const array), cast as needed."""

    def const_array(self, ctype: str, values: Sequence[int], hint: str) -> str:
        """Add ``static const <ctype> <name>[] = {...};`` to the model file and return its name."""

    def activation_range(self, node: Node, out: Tensor) -> tuple[int, int]:
        """The node's fused activation clamp in the output's quantized domain, as TFLM computes it."""


Lowering = Callable[[Node, Graph, Emitter], str]

LOWERINGS: dict[str, Lowering] = {}


def lowerings() -> dict[str, Lowering]:
    """The full table: the core lowerings plus the extra ops'."""
    from tinymlaas.compilers.native.extra import EXTRA_LOWERINGS

    table = dict(LOWERINGS)
    table.update(EXTRA_LOWERINGS)
    return table


def _check_int8(node: Node, graph: Graph, index: int, what: str) -> Tensor:
    tensor = graph.tensors[index]
    if tensor.dtype != "int8" or tensor.quant is None:
        raise UnsupportedModel(
            f"node {node.index} ({node.op}): {what} must be quantized int8, is {tensor.dtype}"
        )
    return tensor


def _scale(tensor: Tensor) -> float:
    assert tensor.quant is not None
    return tensor.quant.scale[0]


def _zero_point(tensor: Tensor) -> int:
    assert tensor.quant is not None
    return tensor.quant.zero_point[0]


def _nhwc(node: Node, tensor: Tensor) -> tuple[int, int, int]:
    if len(tensor.shape) != 4 or tensor.shape[0] != 1:
        raise UnsupportedModel(
            f"node {node.index} ({node.op}): expects an NHWC tensor with batch 1, "
            f"got shape {list(tensor.shape)}"
        )
    return tensor.shape[1], tensor.shape[2], tensor.shape[3]


def _bias(node: Node, graph: Graph, e: Emitter, channels: int) -> str:
    if len(node.inputs) < 3 or node.inputs[2] < 0:
        return "(const int32_t *)0"
    bias = graph.tensors[node.inputs[2]]
    if bias.dtype != "int32" or bias.data is None or bias.elements != channels:
        raise UnsupportedModel(
            f"node {node.index} ({node.op}): bias must be a constant int32 vector of {channels}"
        )
    return e.tensor(bias.index)


def _folded_bias(
    node: Node, graph: Graph, weights: Tensor, sum_axes: tuple[int, ...], input_offset: int
) -> list[int]:
    """bias[c] + input_offset * sum of channel c's weights, wrapped to int32 like the accumulator.

    With the input offset folded in at compile time the kernels' inner loops multiply raw int8
    values. The sum is exact integer algebra; int32 wrap-around gives the same final accumulator
    as TFLM's int32 arithmetic.
    """
    assert weights.data is not None
    filt = np.frombuffer(weights.data, np.int8).reshape(weights.shape).astype(np.int64)
    sums = filt.sum(axis=sum_axes).reshape(-1)
    if len(node.inputs) >= 3 and node.inputs[2] >= 0:
        bias = graph.tensors[node.inputs[2]]
        if bias.dtype != "int32" or bias.data is None or bias.elements != sums.size:
            raise UnsupportedModel(
                f"node {node.index} ({node.op}): bias must be a constant int32 vector of {sums.size}"
            )
        base = np.frombuffer(bias.data, "<i4").astype(np.int64)
    else:
        base = np.zeros(sums.size, np.int64)
    folded = base + input_offset * sums
    return (((folded + 2**31) % 2**32) - 2**31).tolist()


def _struct(ctype: str, fields: Mapping[str, int]) -> str:
    body = ", ".join(f".{name} = {int(value)}" for name, value in fields.items())
    return f"static const {ctype} p = {{{body}}};"


def _conv_like(node: Node, graph: Graph, e: Emitter, depthwise: bool) -> str:
    inp = _check_int8(node, graph, node.inputs[0], "input")
    out = _check_int8(node, graph, node.outputs[0], "output")
    weights = _check_int8(node, graph, node.inputs[1], "filter")
    if weights.data is None:
        raise UnsupportedModel(f"node {node.index} ({node.op}): the filter must be constant")
    in_h, in_w, in_c = _nhwc(node, inp)
    out_h, out_w, out_c = _nhwc(node, out)
    if depthwise:
        _, k_h, k_w, filter_c = weights.shape
        if filter_c != out_c or out_c % in_c:
            raise UnsupportedModel(
                f"node {node.index} ({node.op}): filter shape {list(weights.shape)} mismatch"
            )
    else:
        filter_out, k_h, k_w, filter_in = weights.shape
        if filter_out != out_c or filter_in != in_c:
            raise UnsupportedModel(
                f"node {node.index} ({node.op}): grouped convolution "
                f"(filter {list(weights.shape)}) is not supported"
            )
    options = node.options
    stride_h, stride_w = int(options.get("stride_h", 1)), int(options.get("stride_w", 1))
    dil_h, dil_w = int(options.get("dilation_h_factor", 1)), int(options.get("dilation_w_factor", 1))
    assert weights.quant is not None
    multipliers, shifts = per_channel_multipliers(_scale(inp), weights.quant.scale, _scale(out), out_c)
    act_min, act_max = e.activation_range(node, out)
    params = {
        "in_h": in_h,
        "in_w": in_w,
        "in_c": in_c,
        "out_h": out_h,
        "out_w": out_w,
        "out_c": out_c,
        "k_h": k_h,
        "k_w": k_w,
        "stride_h": stride_h,
        "stride_w": stride_w,
        "dilation_h": dil_h,
        "dilation_w": dil_w,
        "pad_h": compute_padding(stride_h, dil_h, in_h, k_h, out_h),
        "pad_w": compute_padding(stride_w, dil_w, in_w, k_w, out_w),
        "depth_multiplier": out_c // in_c if depthwise else 1,
        "input_offset": -_zero_point(inp),
        "output_offset": _zero_point(out),
        "act_min": act_min,
        "act_max": act_max,
        "col_depth": -(-k_h * k_w * in_c // 4) * 4,
    }
    mult = e.const_array("int32_t", multipliers, f"n{node.index}_mult")
    shift = e.const_array("int32_t", shifts, f"n{node.index}_shift")
    folded = _folded_bias(node, graph, weights, (0, 1, 2) if depthwise else (1, 2, 3), -_zero_point(inp))
    bias = e.const_array("int32_t", folded, f"n{node.index}_bias")
    if depthwise:
        pad = e.const_array("int8_t", [_zero_point(inp)] * in_c, f"n{node.index}_pad")
        filt = _depthwise_filter(weights, params, e)
        call = f"tmn_depthwise_conv2d(&p, {e.tensor(inp.index)}, {filt}, {bias}, "
        call += f"{mult}, {shift}, {pad}, {e.tensor(out.index)});"
    else:
        call = f"tmn_conv2d(&p, {e.tensor(inp.index)}, {_conv_filter(weights, params, e)}, {bias}, "
        call += f"{mult}, {shift}, {e.tensor(out.index)});"
    return f"{{\n    {_struct('tmn_conv_params', params)}\n    {call}\n}}"


def _conv_filter(weights: Tensor, params: Mapping[str, int], e: Emitter) -> str:
    """The CONV_2D filter as the kernel reads it: rows padded with zeros to ``col_depth`` for im2col.

    Mirrors TMN_CONV_DIRECT in tmn_kernels.h: a 1x1 stride-1 unpadded convolution reads TFLite's
    [out_c][in_c] rows as they are. Through im2col, rows of a multiple of 4 bytes keep the
    four-lane inner loop free of a scalar tail; the zero weights meet zero columns.
    """
    p = params
    direct = (p["k_h"], p["k_w"], p["stride_h"], p["stride_w"], p["pad_h"], p["pad_w"]) == (1, 1, 1, 1, 0, 0)
    direct = direct and (p["out_h"], p["out_w"]) == (p["in_h"], p["in_w"])
    depth = p["k_h"] * p["k_w"] * p["in_c"]
    if direct or depth == p["col_depth"]:
        return e.tensor(weights.index)
    assert weights.data is not None
    rows = np.frombuffer(weights.data, np.int8).reshape(p["out_c"], depth)
    padded = np.zeros((p["out_c"], p["col_depth"]), np.int8)
    padded[:, :depth] = rows
    return e.const_array("int8_t", padded.reshape(-1).tolist(), f"t{weights.index}_padded")


# Mirrors TMN_DW_PACKED in tmn_kernels.h: which depthwise filters the kernel reads regrouped.
_DW_FAST_TAPS = 25


def _depthwise_filter(weights: Tensor, params: Mapping[str, int], e: Emitter) -> str:
    """The depthwise filter as the kernel reads it: [channel / 4][tap][4] where TMN_DW_PACKED holds.

    Four channels' weights for one tap are then one word and a pixel's taps follow each other, so
    the kernel's inner loop reads the filter sequentially.
    """
    taps = params["k_h"] * params["k_w"]
    channels = params["out_c"]
    if params["depth_multiplier"] != 1 or channels % 4 or taps > _DW_FAST_TAPS:
        return e.tensor(weights.index)
    assert weights.data is not None
    filt = np.frombuffer(weights.data, np.int8).reshape(taps, channels // 4, 4)
    return e.const_array("int8_t", filt.transpose(1, 0, 2).reshape(-1).tolist(), f"t{weights.index}_packed")


def lower_conv_2d(node: Node, graph: Graph, e: Emitter) -> str:
    """CONV_2D with per-channel (or per-tensor) int8 weights, as TFLM's ConvPerChannel."""
    return _conv_like(node, graph, e, depthwise=False)


def lower_depthwise_conv_2d(node: Node, graph: Graph, e: Emitter) -> str:
    """DEPTHWISE_CONV_2D, as TFLM's DepthwiseConvPerChannel."""
    return _conv_like(node, graph, e, depthwise=True)


def lower_fully_connected(node: Node, graph: Graph, e: Emitter) -> str:
    """FULLY_CONNECTED; per-tensor multiplier from the float32 product of scales, as TFLM's Prepare."""
    inp = _check_int8(node, graph, node.inputs[0], "input")
    out = _check_int8(node, graph, node.outputs[0], "output")
    weights = _check_int8(node, graph, node.inputs[1], "weights")
    if weights.data is None or len(weights.shape) != 2:
        raise UnsupportedModel(f"node {node.index} ({node.op}): weights must be a constant 2-D tensor")
    out_depth, accum_depth = weights.shape
    if inp.elements % accum_depth:
        raise UnsupportedModel(
            f"node {node.index} ({node.op}): input size is not a multiple of {accum_depth}"
        )
    assert weights.quant is not None
    per_channel = len(weights.quant.scale) > 1
    if per_channel:
        multipliers, shifts = per_channel_multipliers(
            _scale(inp), weights.quant.scale, _scale(out), out_depth
        )
    else:
        product = float(np.float32(_scale(inp)) * np.float32(_scale(weights)))
        multiplier, shift = quantize_multiplier(product / _scale(out))
        # One entry per output even for a per-tensor scale: the kernel indexes by output channel.
        multipliers, shifts = [multiplier] * out_depth, [shift] * out_depth
    act_min, act_max = e.activation_range(node, out)
    # A zero filter offset (symmetric weights, the int8 norm) lets the input offset fold into the bias.
    fold = _zero_point(weights) == 0
    if fold:
        bias = e.const_array(
            "int32_t", _folded_bias(node, graph, weights, (1,), -_zero_point(inp)), f"n{node.index}_bias"
        )
    else:
        bias = _bias(node, graph, e, out_depth)
    params = {
        "batches": inp.elements // accum_depth,
        "accum_depth": accum_depth,
        "out_depth": out_depth,
        "input_offset": 0 if fold else -_zero_point(inp),
        "filter_offset": -_zero_point(weights),
        "output_offset": _zero_point(out),
        "act_min": act_min,
        "act_max": act_max,
    }
    mult = e.const_array("int32_t", multipliers, f"n{node.index}_mult")
    shift_name = e.const_array("int32_t", shifts, f"n{node.index}_shift")
    return (
        f"{{\n    {_struct('tmn_fc_params', params)}\n"
        f"    tmn_fully_connected(&p, {e.tensor(inp.index)}, {e.tensor(weights.index)}, "
        f"{bias}, {mult}, {shift_name}, {e.tensor(out.index)});\n}}"
    )


def _pool(node: Node, graph: Graph, e: Emitter, kernel: str) -> str:
    inp = _check_int8(node, graph, node.inputs[0], "input")
    out = _check_int8(node, graph, node.outputs[0], "output")
    in_h, in_w, channels = _nhwc(node, inp)
    out_h, out_w, _ = _nhwc(node, out)
    options = node.options
    k_h, k_w = int(options["filter_height"]), int(options["filter_width"])
    stride_h, stride_w = int(options.get("stride_h", 1)), int(options.get("stride_w", 1))
    act_min, act_max = e.activation_range(node, out)
    params = {
        "in_h": in_h,
        "in_w": in_w,
        "channels": channels,
        "out_h": out_h,
        "out_w": out_w,
        "k_h": k_h,
        "k_w": k_w,
        "stride_h": stride_h,
        "stride_w": stride_w,
        "pad_h": compute_padding(stride_h, 1, in_h, k_h, out_h),
        "pad_w": compute_padding(stride_w, 1, in_w, k_w, out_w),
        "act_min": act_min,
        "act_max": act_max,
    }
    return (
        f"{{\n    {_struct('tmn_pool_params', params)}\n"
        f"    {kernel}(&p, {e.tensor(inp.index)}, {e.tensor(out.index)});\n}}"
    )


def lower_max_pool_2d(node: Node, graph: Graph, e: Emitter) -> str:
    """MAX_POOL_2D, as TFLM's reference MaxPool."""
    return _pool(node, graph, e, "tmn_max_pool")


def lower_average_pool_2d(node: Node, graph: Graph, e: Emitter) -> str:
    """AVERAGE_POOL_2D, as TFLM's reference AveragePool (rounded division by the window count)."""
    return _pool(node, graph, e, "tmn_average_pool")


def lower_mean(node: Node, graph: Graph, e: Emitter) -> str:
    """MEAN over contiguous axes, following reduce_common.cc's int8 path.

    Equal input/output scale and zero point: truncating integer division of the sum. Otherwise the
    sum is requantised with the input/output multiplier folded with 1/count as TFLM does.
    """
    inp = _check_int8(node, graph, node.inputs[0], "input")
    out = _check_int8(node, graph, node.outputs[0], "output")
    axis_tensor = graph.tensors[node.inputs[1]]
    if axis_tensor.data is None or axis_tensor.dtype != "int32":
        raise UnsupportedModel(f"node {node.index} ({node.op}): the axis must be a constant int32 tensor")
    rank = len(inp.shape)
    axes = sorted({a + rank if a < 0 else a for a in np.frombuffer(axis_tensor.data, "<i4").tolist()})
    if not axes or axes != list(range(axes[0], axes[-1] + 1)):
        raise UnsupportedModel(f"node {node.index} ({node.op}): only a contiguous block of axes is supported")
    outer = math.prod(inp.shape[: axes[0]])
    reduce = math.prod(inp.shape[axes[0] : axes[-1] + 1])
    inner = math.prod(inp.shape[axes[-1] + 1 :])
    same = _zero_point(inp) == _zero_point(out) and np.float32(_scale(inp)) == np.float32(_scale(out))
    multiplier, shift = quantize_multiplier(_scale(inp) / _scale(out))
    if not same and reduce > 0:
        fold = min(reduce.bit_length() - 1, 32, 31 + shift)
        multiplier = (multiplier << fold) // reduce
        shift -= fold
    params = {
        "outer": outer,
        "reduce": reduce,
        "inner": inner,
        "requantize": int(not same),
        "input_zero_point": _zero_point(inp),
        "output_zero_point": _zero_point(out),
        "multiplier": multiplier,
        "shift": shift,
    }
    return (
        f"{{\n    {_struct('tmn_mean_params', params)}\n"
        f"    tmn_mean(&p, {e.tensor(inp.index)}, {e.tensor(out.index)});\n}}"
    )


def lower_softmax(node: Node, graph: Graph, e: Emitter) -> str:
    """SOFTMAX int8 -> int8 with the parameters SoftmaxPrepare derives from beta and the input scale."""
    inp = _check_int8(node, graph, node.inputs[0], "input")
    out = _check_int8(node, graph, node.outputs[0], "output")
    if _zero_point(out) != -128 or np.float32(_scale(out)) != np.float32(1.0 / 256):
        raise UnsupportedModel(
            f"node {node.index} ({node.op}): the output must have scale 1/256, zero point -128"
        )
    beta = f32(float(node.options.get("beta", 1.0)))
    multiplier, left_shift = preprocess_softmax_scaling(beta, _scale(inp), _SCALED_DIFF_INTEGER_BITS)
    depth = inp.shape[-1]
    params = {
        "outer": inp.elements // depth,
        "depth": depth,
        "input_multiplier": multiplier,
        "input_left_shift": left_shift,
        "diff_min": -calculate_input_radius(_SCALED_DIFF_INTEGER_BITS, left_shift),
    }
    return (
        f"{{\n    {_struct('tmn_softmax_params', params)}\n"
        f"    tmn_softmax(&p, {e.tensor(inp.index)}, {e.tensor(out.index)});\n}}"
    )


def lower_alias(node: Node, graph: Graph, e: Emitter) -> str:
    """Reshapes share their input's storage (see the memory plan): nothing to execute."""
    return ""


_SCALED_DIFF_INTEGER_BITS = 5

LOWERINGS.update(
    {
        "CONV_2D": lower_conv_2d,
        "DEPTHWISE_CONV_2D": lower_depthwise_conv_2d,
        "FULLY_CONNECTED": lower_fully_connected,
        "MAX_POOL_2D": lower_max_pool_2d,
        "AVERAGE_POOL_2D": lower_average_pool_2d,
        "MEAN": lower_mean,
        "SOFTMAX": lower_softmax,
        "RESHAPE": lower_alias,
        "EXPAND_DIMS": lower_alias,
        "SQUEEZE": lower_alias,
    }
)

"""The figures ``model_config.h`` declares: tensor arena size and the I/O tensors' layout."""

from __future__ import annotations

import math

from tinymlaas.data.scaling import InputScaling, ScalingMethod
from tinymlaas.errors import UnsupportedModel
from tinymlaas.squeeze.info import TensorInfo

__all__ = [
    "ARENA_ALIGNMENT",
    "ARENA_MARGIN_FRACTION",
    "ARENA_MARGIN_MIN_BYTES",
    "scaling_constants",
    "tensor_arena_size",
    "tensor_constants",
]

ARENA_ALIGNMENT = 16  # bytes; TFLM aligns tensor buffers to 16 inside the arena
# The arena was measured with TFLM's reference kernels on a 64-bit host. Optimized kernels
# (CMSIS-NN, ESP-NN) request scratch buffers the reference kernels do not, and another TFLM
# release may plan the arena differently, so the compiled arena carries a margin on top.
ARENA_MARGIN_FRACTION = 0.10
ARENA_MARGIN_MIN_BYTES = 1024


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def tensor_arena_size(measured_bytes: int) -> int:
    """Bytes to reserve for the arena on a device, given the measured minimum (see the margin above)."""
    base = _round_up(measured_bytes, ARENA_ALIGNMENT)
    margin = max(ARENA_MARGIN_MIN_BYTES, math.ceil(base * ARENA_MARGIN_FRACTION))
    return _round_up(base + margin, ARENA_ALIGNMENT)


def _float_literal(value: float) -> str:
    # repr always has a '.' or an exponent, so appending 'f' gives a valid C++ float literal.
    return repr(float(value)) + "f"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def tensor_constants(prefix: str, index: int, tensor: TensorInfo) -> str:
    """C++ constants describing one tensor, named ``k<prefix>Dims``, ``k<prefix>Scale``, ...

    A scalar tensor is described as shape [1] because C++ has no zero-length arrays. TFLM plans the
    arena ahead of time, so every dimension must be known.
    """
    dims = tensor.shape or (1,)
    if any(dim < 1 for dim in dims):
        raise UnsupportedModel(
            f"{prefix} tensor {tensor.name!r} has a dynamic shape {list(tensor.shape)}; "
            "TensorFlow Lite Micro needs fixed shapes"
        )
    quantized = tensor.scale is not None and tensor.dtype not in ("float32", "float16")
    scale = tensor.scale if quantized and tensor.scale is not None else 0.0
    zero_point = tensor.zero_point if quantized and tensor.zero_point is not None else 0
    real = "; real = scale * (q - zero_point)" if quantized else ""
    return "\n".join(
        [
            f'// {prefix} {index} "{_one_line(tensor.name)}": {tensor.dtype}, '
            f"shape [{', '.join(map(str, dims))}]{real}.",
            f"constexpr int k{prefix}Rank = {len(dims)};",
            f"constexpr int k{prefix}Dims[k{prefix}Rank] = {{{', '.join(map(str, dims))}}};",
            f"constexpr unsigned int k{prefix}Elements = {math.prod(dims)};",
            f'constexpr const char k{prefix}Type[] = "{tensor.dtype}";',
            f"constexpr bool k{prefix}Quantized = {'true' if quantized else 'false'};",
            f"constexpr float k{prefix}Scale = {_float_literal(scale)};",
            f"constexpr int k{prefix}ZeroPoint = {zero_point};",
        ]
    )


def scaling_constants(scaling: InputScaling, tensor: TensorInfo) -> str:
    """C++ constants for the input scaling ``(x - kInputOffset[c]) / kInputSpread[c]``, channel ``c``
    being the last axis, so the module's API takes values in sensor units."""
    dims = tensor.shape or (1,)
    channels = dims[-1]
    if scaling.method is ScalingMethod.NONE:
        offset, spread = (0.0,), (1.0,)
        channels_used = 1
    else:
        if scaling.channels != channels:
            raise UnsupportedModel(
                f"the input scaling has {scaling.channels} channels but input 0 has {channels} "
                f"(shape {list(dims)})"
            )
        offset, spread, channels_used = scaling.offset, scaling.scale, channels
    method = scaling.method.value
    return "\n".join(
        [
            f"// Input scaling ({method}), learnt from the train split: the model sees",
            "// (x - kInputOffset[c]) / kInputSpread[c] for the value x of channel c (the last axis).",
            f"constexpr bool kInputScaled = {'false' if scaling.method is ScalingMethod.NONE else 'true'};",
            f"constexpr unsigned int kInputChannels = {channels_used};",
            f"constexpr float kInputOffset[kInputChannels] = {{{', '.join(map(_float_literal, offset))}}};",
            f"constexpr float kInputSpread[kInputChannels] = {{{', '.join(map(_float_literal, spread))}}};",
        ]
    )

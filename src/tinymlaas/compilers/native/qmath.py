"""Compile-time quantization arithmetic, reproducing TFLite's ``quantization_util`` and kernel_util.

TFLM derives every kernel's fixed-point parameters in ``Prepare`` from the float32 scales stored in
the model. Doing the same computation here, with the same float32/double mix and the same rounding,
is what makes the generated C bit-exact with the interpreter.
"""

from __future__ import annotations

import math

import numpy as np

from tinymlaas.errors import UnsupportedModel

__all__ = [
    "INT8_MAX",
    "INT8_MIN",
    "activation_range",
    "calculate_input_radius",
    "compute_padding",
    "f32",
    "per_channel_multipliers",
    "preprocess_softmax_scaling",
    "quantize_multiplier",
    "quantize_multiplier_greater_than_one",
    "quantize_multiplier_smaller_than_one",
    "round_half_away",
]

INT8_MIN = -128
INT8_MAX = 127


def f32(value: float) -> float:
    """``value`` rounded to float32, as a Python float (what a C ``float`` holds)."""
    return float(np.float32(value))


def round_half_away(value: float) -> float:
    """C's ``round``/TfLiteRound: halfway cases go away from zero (Python's ``round`` goes to even)."""
    magnitude = math.floor(abs(value) + 0.5)
    return float(magnitude if value >= 0 else -magnitude)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite's ``QuantizeMultiplier`` (double-rounding build): Q0.31 multiplier and power-of-two shift.

    ``real ~= multiplier * 2**(shift - 31)``; zero maps to (0, 0), a shift below -31 flushes to zero.
    """
    if real == 0.0:
        return 0, 0
    fraction, shift = math.frexp(real)
    q_fixed = int(round_half_away(fraction * (1 << 31)))
    if q_fixed > (1 << 31):
        raise UnsupportedModel(f"quantized multiplier {real!r} out of range")
    if q_fixed == 1 << 31:
        q_fixed //= 2
        shift += 1
    if q_fixed > 2**31 - 1:
        raise UnsupportedModel(f"quantized multiplier {real!r} out of range")
    if shift < -31:
        return 0, 0
    return q_fixed, shift


def quantize_multiplier_smaller_than_one(real: float) -> tuple[int, int]:
    """``QuantizeMultiplierSmallerThanOneExp``: for 0 < real < 1, the shift is <= 0."""
    if not 0.0 < real < 1.0:
        raise UnsupportedModel(f"multiplier {real!r} is not in (0, 1)")
    multiplier, shift = quantize_multiplier(real)
    if shift > 0:
        raise UnsupportedModel(f"multiplier {real!r} gives a positive shift")
    return multiplier, shift


def quantize_multiplier_greater_than_one(real: float) -> tuple[int, int]:
    """``QuantizeMultiplierGreaterThanOne``: for real > 1, the shift (a left shift) is >= 0.

    TFLM aborts on a smaller multiplier (e.g. a softmax whose input scale times beta is below
    2**-26), so such a model is refused rather than compiled to something TFLM cannot run.
    """
    if not real > 1.0:
        raise UnsupportedModel(f"multiplier {real!r} is not greater than one (TFLM refuses it too)")
    multiplier, shift = quantize_multiplier(real)
    if shift < 0:
        raise UnsupportedModel(f"multiplier {real!r} gives a negative shift")
    return multiplier, shift


def per_channel_multipliers(
    input_scale: float, filter_scales: tuple[float, ...], output_scale: float, channels: int
) -> tuple[list[int], list[int]]:
    """``PopulateConvolutionQuantizationParams``: one (multiplier, shift) per output channel.

    The effective scale is computed in double from the float32 scales; a single filter scale is
    broadcast over all channels.
    """
    multipliers: list[int] = []
    shifts: list[int] = []
    for channel in range(channels):
        filter_scale = filter_scales[channel] if len(filter_scales) > 1 else filter_scales[0]
        effective = f32(input_scale) * f32(filter_scale) / f32(output_scale)
        multiplier, shift = quantize_multiplier(effective)
        multipliers.append(multiplier)
        shifts.append(shift)
    return multipliers, shifts


def _quantize_float(scale: float, zero_point: int, value: float) -> int:
    # kernel_util's Quantize: the division and rounding happen in float32.
    quotient = np.float32(value) / np.float32(scale)
    return zero_point + int(round_half_away(float(quotient)))


def activation_range(
    activation: str, scale: float, zero_point: int, qmin: int = INT8_MIN, qmax: int = INT8_MAX
) -> tuple[int, int]:
    """``CalculateActivationRangeQuantized``: the fused activation's clamp in the quantized domain."""
    if activation == "NONE":
        return qmin, qmax
    if activation == "RELU":
        return max(qmin, _quantize_float(scale, zero_point, 0.0)), qmax
    if activation == "RELU6":
        low = max(qmin, _quantize_float(scale, zero_point, 0.0))
        return low, min(qmax, _quantize_float(scale, zero_point, 6.0))
    if activation == "RELU_N1_TO_1":
        low = max(qmin, _quantize_float(scale, zero_point, -1.0))
        return low, min(qmax, _quantize_float(scale, zero_point, 1.0))
    raise UnsupportedModel(f"fused activation {activation} is not supported")


def compute_padding(stride: int, dilation: int, in_size: int, filter_size: int, out_size: int) -> int:
    """``ComputePaddingWithOffset``: the leading padding (SAME puts any odd pixel at the end)."""
    effective_filter = (filter_size - 1) * dilation + 1
    total = (out_size - 1) * stride + effective_filter - in_size
    return max(total, 0) // 2


def preprocess_softmax_scaling(beta: float, input_scale: float, input_integer_bits: int) -> tuple[int, int]:
    """``PreprocessSoftmaxScaling`` (double-rounding build): input multiplier and left shift."""
    real = min(beta * input_scale * (1 << (31 - input_integer_bits)), (1 << 31) - 1.0)
    return quantize_multiplier_greater_than_one(real)


def calculate_input_radius(
    input_integer_bits: int, input_left_shift: int, total_signed_bits: int = 31
) -> int:
    """``CalculateInputRadius``: the largest input difference the softmax exp still resolves."""
    max_input_rescaled = (
        1.0
        * ((1 << input_integer_bits) - 1)
        * (1 << (total_signed_bits - input_integer_bits))
        / (1 << input_left_shift)
    )
    return math.floor(max_input_rescaled)

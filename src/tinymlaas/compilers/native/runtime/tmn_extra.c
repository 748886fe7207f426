/* Extra int8 kernels of the native runtime; see tmn_extra.h for the parameters.
 *
 * The arithmetic follows TFLM's reference kernels (named per function) with the fixed-point
 * helpers of tmn_kernels.h, so results are bit-exact with the interpreter.
 */
#include "tmn_extra.h"

#include <string.h>

#include "tmn_kernels.h"

/* Advances the index over all but the innermost broadcast dimension and moves both operand offsets
 * along; returns 0 once every outer index has wrapped (the whole output is done). */
static int tmn_x_bcast_next(int32_t *idx, const int32_t *dims, const int32_t *stride1,
                            const int32_t *stride2, int32_t *off1, int32_t *off2)
{
    int d;
    for (d = TMN_BCAST_DIMS - 2; d >= 0; --d) {
        if (++idx[d] < dims[d]) {
            *off1 += stride1[d];
            *off2 += stride2[d];
            return 1;
        }
        *off1 -= stride1[d] * (dims[d] - 1);
        *off2 -= stride2[d] * (dims[d] - 1);
        idx[d] = 0;
    }
    return 0;
}

/* TFLM reference_integer_ops::AddFunc: both operands are moved to a common scale with 20 bits of
 * headroom, summed, rescaled to the output, offset and clamped. */
void tmn_add_s8(const int8_t *in1, const int8_t *in2, int8_t *out, const int32_t *dims,
                const int32_t *stride1, const int32_t *stride2, int32_t in1_offset,
                int32_t in1_multiplier, int in1_shift, int32_t in2_offset, int32_t in2_multiplier,
                int in2_shift, int left_shift, int32_t out_offset, int32_t out_multiplier, int out_shift,
                int32_t act_min, int32_t act_max)
{
    int32_t idx[TMN_BCAST_DIMS] = {0};
    int32_t off1 = 0, off2 = 0, c;
    const int32_t inner = dims[TMN_BCAST_DIMS - 1];
    const int32_t step1 = stride1[TMN_BCAST_DIMS - 1], step2 = stride2[TMN_BCAST_DIMS - 1];
    do {
        for (c = 0; c < inner; ++c) {
            const int32_t a = (in1_offset + in1[off1 + c * step1]) * (1 << left_shift);
            const int32_t b = (in2_offset + in2[off2 + c * step2]) * (1 << left_shift);
            const int32_t sum = tmn_mul_by_quantized_multiplier(a, in1_multiplier, in1_shift) +
                                tmn_mul_by_quantized_multiplier(b, in2_multiplier, in2_shift);
            const int32_t raw = tmn_mul_by_quantized_multiplier(sum, out_multiplier, out_shift) + out_offset;
            out[c] = (int8_t)tmn_clamp(raw, act_min, act_max);
        }
        out += inner;
    } while (tmn_x_bcast_next(idx, dims, stride1, stride2, &off1, &off2));
}

/* TFLM reference_integer_ops::MulElementwise: the product of the offset operands, rescaled once. */
void tmn_mul_s8(const int8_t *in1, const int8_t *in2, int8_t *out, const int32_t *dims,
                const int32_t *stride1, const int32_t *stride2, int32_t in1_offset, int32_t in2_offset,
                int32_t out_offset, int32_t out_multiplier, int out_shift, int32_t act_min,
                int32_t act_max)
{
    int32_t idx[TMN_BCAST_DIMS] = {0};
    int32_t off1 = 0, off2 = 0, c;
    const int32_t inner = dims[TMN_BCAST_DIMS - 1];
    const int32_t step1 = stride1[TMN_BCAST_DIMS - 1], step2 = stride2[TMN_BCAST_DIMS - 1];
    do {
        for (c = 0; c < inner; ++c) {
            const int32_t a = in1_offset + in1[off1 + c * step1];
            const int32_t b = in2_offset + in2[off2 + c * step2];
            const int32_t raw = tmn_mul_by_quantized_multiplier(a * b, out_multiplier, out_shift) + out_offset;
            out[c] = (int8_t)tmn_clamp(raw, act_min, act_max);
        }
        out += inner;
    } while (tmn_x_bcast_next(idx, dims, stride1, stride2, &off1, &off2));
}

/* TFLM reference_ops::PadImpl over 5 dimensions; the innermost run of input values is copied whole. */
void tmn_pad_s8(const int8_t *in, int8_t *out, const int32_t *out_dims, const int32_t *before,
                const int32_t *after, int8_t pad_value)
{
    int32_t b, p, h, w;
    const int32_t depth = out_dims[4];
    const int32_t in_depth = depth - before[4] - after[4];
    for (b = 0; b < out_dims[0]; ++b) {
        const int pad_b = b < before[0] || b >= out_dims[0] - after[0];
        for (p = 0; p < out_dims[1]; ++p) {
            const int pad_p = pad_b || p < before[1] || p >= out_dims[1] - after[1];
            for (h = 0; h < out_dims[2]; ++h) {
                const int pad_h = pad_p || h < before[2] || h >= out_dims[2] - after[2];
                for (w = 0; w < out_dims[3]; ++w) {
                    if (pad_h || w < before[3] || w >= out_dims[3] - after[3]) {
                        memset(out, pad_value, (size_t)depth);
                    } else {
                        memset(out, pad_value, (size_t)before[4]);
                        memcpy(out + before[4], in, (size_t)in_depth);
                        memset(out + before[4] + in_depth, pad_value, (size_t)after[4]);
                        in += in_depth;
                    }
                    out += depth;
                }
            }
        }
    }
}

/* TFLM reference_ops::Concatenation: for each outer index, each input's slab is copied in turn. */
void tmn_concatenation_s8(const int8_t *const *inputs, const int32_t *copy_sizes, int count,
                          int32_t outer, int8_t *out)
{
    int32_t k;
    int i;
    for (k = 0; k < outer; ++k) {
        for (i = 0; i < count; ++i) {
            memcpy(out, inputs[i] + k * copy_sizes[i], (size_t)copy_sizes[i]);
            out += copy_sizes[i];
        }
    }
}

/* gemmlowp exp_on_interval_between_negative_one_quarter_and_0_excl: exp(a) for a in [-1/4, 0), Q0.31,
 * by a Taylor expansion around -1/8. */
static int32_t tmn_x_exp_quarter(int32_t a)
{
    const int32_t exp_minus_one_eighth = 1895147668;
    const int32_t one_third = 715827883;
    const int32_t x = a + (1 << 28);
    const int32_t x2 = tmn_saturating_rounding_doubling_high_mul(x, x);
    const int32_t x3 = tmn_saturating_rounding_doubling_high_mul(x2, x);
    const int32_t x4 = tmn_saturating_rounding_doubling_high_mul(x2, x2);
    const int32_t x4_over_4 = tmn_rounding_divide_by_pot(x4, 2);
    const int32_t poly = tmn_rounding_divide_by_pot(
        tmn_saturating_rounding_doubling_high_mul(x4_over_4 + x3, one_third) + x2, 1);
    return exp_minus_one_eighth + tmn_saturating_rounding_doubling_high_mul(exp_minus_one_eighth, x + poly);
}

/* gemmlowp exp_on_negative_values for a Q4.27 input a <= 0: exp(a) in Q0.31. The input is split into
 * a remainder in [-1/4, 0) and a multiple of 1/4 whose bits select precomputed exp(-2^k) factors. */
static int32_t tmn_x_exp_negative_q4(int32_t a)
{
    static const int32_t factors[6] = {1672461947, 1302514674, 790015084, 290630308, 39332535, 720401};
    const int32_t one_quarter = 1 << 25;
    const int32_t a_mod_quarter_minus_quarter = (a & (one_quarter - 1)) - one_quarter;
    const int32_t remainder = a_mod_quarter_minus_quarter - a;
    int32_t result = tmn_x_exp_quarter(tmn_saturating_shift_left(a_mod_quarter_minus_quarter, 4));
    int k;
    for (k = 0; k < 6; ++k) {
        if (remainder & (1 << (25 + k))) {
            result = tmn_saturating_rounding_doubling_high_mul(result, factors[k]);
        }
    }
    return a == 0 ? INT32_MAX : result;
}

/* gemmlowp one_over_one_plus_x_for_x_in_0_1: 1 / (1 + a) for a Q0.31 in [0, 1), by three Newton-Raphson
 * steps in Q2.29. */
static int32_t tmn_x_one_over_one_plus(int32_t a)
{
    const int64_t sum = (int64_t)a + INT32_MAX;
    const int32_t half_denominator = (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
    const int32_t one_q2 = 1 << 29;
    int32_t x = 1515870810 + tmn_saturating_rounding_doubling_high_mul(half_denominator, -1010580540);
    int i;
    for (i = 0; i < 3; ++i) {
        const int32_t one_minus = one_q2 - tmn_saturating_rounding_doubling_high_mul(half_denominator, x);
        x = x + tmn_saturating_shift_left(tmn_saturating_rounding_doubling_high_mul(x, one_minus), 2);
    }
    return tmn_saturating_shift_left(x, 1);
}

/* gemmlowp logistic for a Q4.27 input, result in Q0.31. */
static int32_t tmn_x_logistic_q4(int32_t a)
{
    int32_t positive;
    if (a == 0) {
        return 1 << 30;
    }
    positive = tmn_x_one_over_one_plus(tmn_x_exp_negative_q4(a > 0 ? -a : a));
    return a > 0 ? positive : INT32_MAX - positive;
}

/* TFLM reference_integer_ops::Logistic (int8). */
void tmn_logistic_s8(const int8_t *in, int8_t *out, int32_t size, int32_t in_zero_point,
                     int32_t range_radius, int32_t in_multiplier, int in_left_shift)
{
    int32_t i;
    for (i = 0; i < size; ++i) {
        const int32_t x = (int32_t)in[i] - in_zero_point;
        if (x <= -range_radius) {
            out[i] = INT8_MIN;
        } else if (x >= range_radius) {
            out[i] = INT8_MAX;
        } else {
            const int32_t x_q4 = tmn_mul_by_quantized_multiplier(x, in_multiplier, in_left_shift);
            const int32_t y = tmn_rounding_divide_by_pot(tmn_x_logistic_q4(x_q4), 23) - 128;
            out[i] = (int8_t)tmn_clamp(y, INT8_MIN, INT8_MAX);
        }
    }
}

/* TFLM reference_ops::Requantize (int8 -> int8). */
void tmn_quantize_s8(const int8_t *in, int8_t *out, int32_t size, int32_t in_zero_point,
                     int32_t out_zero_point, int32_t multiplier, int shift)
{
    int32_t i;
    for (i = 0; i < size; ++i) {
        const int32_t v = tmn_mul_by_quantized_multiplier((int32_t)in[i] - in_zero_point, multiplier, shift);
        out[i] = (int8_t)tmn_clamp(v + out_zero_point, INT8_MIN, INT8_MAX);
    }
}

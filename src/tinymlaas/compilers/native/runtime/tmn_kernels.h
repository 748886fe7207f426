/*
 * tmn_kernels.h - int8 kernels of a TinyMLaaS native module.
 *
 * The arithmetic follows TensorFlow Lite Micro's reference integer kernels
 * (tensorflow/lite/kernels/internal/reference/integer_ops/ and the gemmlowp
 * fixed-point helpers they use) in the default double-rounding build, so the
 * results are bit-exact with the TFLM interpreter. All parameters are computed
 * at compile time; these kernels only loop. Tensors are NHWC, batch 1.
 */
#ifndef TMN_KERNELS_H
#define TMN_KERNELS_H

#include <stdint.h>

/* Hot helpers must inline even in size-optimised (-Os) builds, where a call per MAC would dominate. */
#if defined(__GNUC__)
#define TMN_INLINE static inline __attribute__((always_inline))
#define TMN_NOINLINE __attribute__((noinline))
#else
#define TMN_INLINE static inline
#define TMN_NOINLINE
#endif

/*
 * gemmlowp SaturatingRoundingDoublingHighMul: (a * b * 2) >> 32, rounded to nearest.
 * gemmlowp adds 2^30 (1 - 2^30 for a negative product) and divides by 2^31 truncating toward
 * zero; adding 2^30 and shifting right arithmetically gives the same value for every product
 * (-floor((y + 2^30 - 1) / 2^31) == floor((2^30 - y) / 2^31)), as CMSIS-NN relies on, and
 * compiles to a multiply-accumulate and a shift.
 */
TMN_INLINE int32_t tmn_saturating_rounding_doubling_high_mul(int32_t a, int32_t b)
{
    if (a == b && a == INT32_MIN) {
        return INT32_MAX;
    }
    return (int32_t)(((int64_t)a * (int64_t)b + ((int64_t)1 << 30)) >> 31);
}

/* gemmlowp RoundingDivideByPOT: x / 2^exponent, rounding half away from zero. */
TMN_INLINE int32_t tmn_rounding_divide_by_pot(int32_t x, int exponent)
{
    const int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* x * 2^exponent with saturation (gemmlowp SaturatingRoundingMultiplyByPOT for exponent > 0). */
TMN_INLINE int32_t tmn_saturating_shift_left(int32_t x, int exponent)
{
    const int32_t threshold = (int32_t)(((int64_t)1 << (31 - exponent)) - 1);
    if (x > threshold) {
        return INT32_MAX;
    }
    if (x < -threshold) {
        return INT32_MIN;
    }
    return (int32_t)((uint32_t)x << exponent);
}

/* TFLite MultiplyByQuantizedMultiplier, double-rounding variant (TFLITE_SINGLE_ROUNDING unset). */
TMN_INLINE int32_t tmn_mul_by_quantized_multiplier(int32_t x, int32_t multiplier, int shift)
{
    const int left_shift = shift > 0 ? shift : 0;
    const int right_shift = shift > 0 ? 0 : -shift;
    /* The left shift wraps like the reference's int multiply, without signed overflow. */
    const int32_t shifted = (int32_t)((uint32_t)x << left_shift);
    return tmn_rounding_divide_by_pot(tmn_saturating_rounding_doubling_high_mul(shifted, multiplier),
                                      right_shift);
}

TMN_INLINE int32_t tmn_clamp(int32_t x, int32_t low, int32_t high)
{
    return x < low ? low : (x > high ? high : x);
}

/* Per-output requantisation of a layer: one multiplier and shift per output channel. */
typedef struct {
    const int32_t *multiplier;
    const int32_t *shift;
    int32_t output_offset;
    int32_t act_min, act_max;
    int32_t right_only; /* 1: every shift is -2 or less (see tmn_requantize_q) */
} tmn_requant;

/* Whether the first `count` shifts are all right shifts of at least two bits. */
static inline int32_t tmn_right_only(const int32_t *shift, int32_t count)
{
    int32_t i;
    for (i = 0; i < count; ++i) {
        if (shift[i] > -2) {
            return 0;
        }
    }
    return 1;
}

/* One channel's requantisation, derived once per channel and applied to several accumulators. */
typedef struct {
    int32_t multiplier;
    int32_t left, right; /* TFLite's shift: left if positive, right otherwise */
    int32_t mask, half;  /* RoundingDivideByPOT: remainder mask and its half (general form) */
} tmn_channel_q;

TMN_INLINE tmn_channel_q tmn_channel(const tmn_requant *rq, int32_t channel, int right_only)
{
    const int32_t shift = rq->shift[channel];
    tmn_channel_q c;
    c.multiplier = rq->multiplier[channel];
    if (right_only) {
        /* right - 1 and 2^(right - 2), the final shift and rounding term below. */
        c.left = -shift - 1;
        c.right = (int32_t)(1u << (-shift - 2));
        c.mask = c.half = 0;
    } else {
        c.left = shift > 0 ? shift : 0;
        c.right = shift > 0 ? 0 : -shift;
        c.mask = (int32_t)(((uint32_t)1 << c.right) - 1u);
        c.half = c.mask >> 1;
    }
    return c;
}

/*
 * tmn_mul_by_quantized_multiplier + output offset + clamp, with the channel's parts precomputed.
 * Compile-time multipliers are never INT32_MIN, so the doubling high multiply cannot saturate and
 * its check is left out; the rounding divide is gemmlowp's (threshold = half + 1 when negative).
 *
 * right_only (right shift e >= 2): both roundings from one 64-bit multiply-accumulate. With
 * P = x * m + 2^30, SaturatingRoundingDoublingHighMul is floor(P / 2^31) and RoundingDivideByPOT
 * adds 2^(e-1), less one for a negative value, before flooring by 2^e; that value is negative
 * exactly when x < 0 (m >= 2^30, or m = 0, where the result is 0 either way). So the result is
 * floor((x * m + 2^30 - (x < 0) * 2^31 + 2^(e+30)) / 2^(e+31)), which is
 * (high word of (x * m +/- 2^30) + 2^(e-2)) >> (e-1): no overflow, same value for every int32 x.
 */
TMN_INLINE int32_t tmn_requantize_q(int32_t acc, const tmn_channel_q *c, int right_only, int32_t output_offset,
                                    int32_t act_min, int32_t act_max)
{
    int32_t rounded;
    if (right_only) {
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
        /* Compilers build the +/- 2^30 start value and the clamp with branches; this is 12. */
        int32_t lo;
        __asm__("asr %[hi], %[x], #31\n\t"
                "and %[lo], %[x], #0x80000000\n\t"
                "orr %[lo], %[lo], #0x40000000\n\t"
                "smlal %[lo], %[hi], %[x], %[m]\n\t"
                "add %[hi], %[hi], %[round]\n\t"
                "asr %[hi], %[hi], %[sh]\n\t"
                "add %[hi], %[hi], %[off]\n\t"
                "cmp %[hi], %[amin]\n\t"
                "it lt\n\t"
                "movlt %[hi], %[amin]\n\t"
                "cmp %[hi], %[amax]\n\t"
                "it gt\n\t"
                "movgt %[hi], %[amax]"
                : [lo] "=&r"(lo), [hi] "=&r"(rounded)
                : [x] "r"(acc), [m] "r"(c->multiplier), [round] "r"(c->right), [sh] "r"(c->left),
                  [off] "r"(output_offset), [amin] "r"(act_min), [amax] "r"(act_max)
                : "cc");
        (void)lo;
        return rounded;
#else
        const int64_t p = (int64_t)acc * c->multiplier + (acc < 0 ? -0x40000000 : 0x40000000);
        rounded = ((int32_t)(p >> 32) + c->right) >> c->left;
#endif
    } else {
        const int32_t x = (int32_t)((uint32_t)acc << c->left);
        const int32_t high = (int32_t)(((int64_t)x * c->multiplier + ((int64_t)1 << 30)) >> 31);
        rounded = (high >> c->right) + ((high & c->mask) > c->half - (high >> 31) ? 1 : 0);
    }
    rounded += output_offset;
    rounded = rounded < act_min ? act_min : rounded;
    return rounded > act_max ? act_max : rounded;
}

TMN_INLINE int8_t tmn_requantize(int32_t acc, const tmn_requant *rq, int32_t channel)
{
    const tmn_channel_q c = tmn_channel(rq, channel, 0);
    return (int8_t)tmn_requantize_q(acc, &c, 0, rq->output_offset, rq->act_min, rq->act_max);
}

/*
 * out[r * out_stride + c] = requantize(bias[c] + sum_i a[r * depth + i] * w[c * depth + i]) for
 * r < rows, c < cols: the one int8 matrix product behind pointwise and im2col convolutions and
 * fully connected layers. The input offset is already folded into `bias` at compile time.
 */
void tmn_gemm(const int8_t *a, int32_t rows, const int8_t *w, int32_t depth, int32_t cols, const int32_t *bias,
              const tmn_requant *rq, int8_t *out, int32_t out_stride);

/* CONV_2D and DEPTHWISE_CONV_2D geometry and requantisation. */
typedef struct {
    int32_t in_h, in_w, in_c;
    int32_t out_h, out_w, out_c;
    int32_t k_h, k_w;
    int32_t stride_h, stride_w;
    int32_t dilation_h, dilation_w;
    int32_t pad_h, pad_w;
    int32_t depth_multiplier; /* depthwise only */
    int32_t input_offset;     /* -input zero point */
    int32_t output_offset;    /* output zero point */
    int32_t act_min, act_max;
    int32_t col_depth; /* conv2d through im2col: k_h * k_w * in_c rounded up to a multiple of 4 */
} tmn_conv_params;

/* A CONV_2D that multiplies input pixels directly, without im2col: 1x1, stride 1, no padding. */
#define TMN_CONV_DIRECT(p)                                                                                 \
    ((p)->k_h == 1 && (p)->k_w == 1 && (p)->stride_h == 1 && (p)->stride_w == 1 && (p)->pad_h == 0 &&      \
     (p)->pad_w == 0 && (p)->out_h == (p)->in_h && (p)->out_w == (p)->in_w)

/* FULLY_CONNECTED: `batches` rows of `accum_depth` inputs to `out_depth` outputs each. */
typedef struct {
    int32_t batches, accum_depth, out_depth;
    int32_t input_offset, filter_offset, output_offset;
    int32_t act_min, act_max;
} tmn_fc_params;

/* MAX_POOL_2D and AVERAGE_POOL_2D. */
typedef struct {
    int32_t in_h, in_w, channels;
    int32_t out_h, out_w;
    int32_t k_h, k_w;
    int32_t stride_h, stride_w;
    int32_t pad_h, pad_w;
    int32_t act_min, act_max;
} tmn_pool_params;

/* MEAN over a contiguous block of axes: input viewed as [outer, reduce, inner]. */
typedef struct {
    int32_t outer, reduce, inner;
    int32_t requantize; /* 0: same scale and zero point, plain truncating division */
    int32_t input_zero_point, output_zero_point;
    int32_t multiplier, shift; /* already divided by `reduce`, as TFLM does */
} tmn_mean_params;

/* SOFTMAX int8 -> int8 over the last axis. */
typedef struct {
    int32_t outer, depth;
    int32_t input_multiplier, input_left_shift, diff_min;
} tmn_softmax_params;

/*
 * Convolutions take the bias with the input offset folded in (bias[c] + input_offset * sum of the
 * filter of channel c), so their inner loops are plain int8 products; taps in the padding read
 * the input zero point, which contributes exactly nothing, as TFLM's skipped taps do.
 * `pad` (depthwise) is in_c bytes of the input zero point. A depthwise filter that meets
 * TMN_DW_PACKED is regrouped as [channel / 4][tap][4 channels] (see tmn_kernels.c).
 */
#define TMN_DW_FAST_TAPS 25
#define TMN_DW_PACKED(p) \
    ((p)->depth_multiplier == 1 && (p)->out_c % 4 == 0 && (p)->k_h * (p)->k_w <= TMN_DW_FAST_TAPS)
void tmn_conv2d(const tmn_conv_params *p, const int8_t *input, const int8_t *filter, const int32_t *bias,
                const int32_t *multiplier, const int32_t *shift, int8_t *output);
void tmn_depthwise_conv2d(const tmn_conv_params *p, const int8_t *input, const int8_t *filter,
                          const int32_t *bias, const int32_t *multiplier, const int32_t *shift,
                          const int8_t *pad, int8_t *output);
void tmn_fully_connected(const tmn_fc_params *p, const int8_t *input, const int8_t *filter,
                         const int32_t *bias, const int32_t *multiplier, const int32_t *shift,
                         int8_t *output);
void tmn_max_pool(const tmn_pool_params *p, const int8_t *input, int8_t *output);
void tmn_average_pool(const tmn_pool_params *p, const int8_t *input, int8_t *output);
void tmn_mean(const tmn_mean_params *p, const int8_t *input, int8_t *output);
void tmn_softmax(const tmn_softmax_params *p, const int8_t *input, int8_t *output);

#endif /* TMN_KERNELS_H */

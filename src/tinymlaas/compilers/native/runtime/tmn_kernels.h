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

/* gemmlowp SaturatingRoundingDoublingHighMul: (a * b * 2) >> 32, rounded to nearest. */
static inline int32_t tmn_saturating_rounding_doubling_high_mul(int32_t a, int32_t b)
{
    int64_t ab;
    int64_t nudge;
    if (a == b && a == INT32_MIN) {
        return INT32_MAX;
    }
    ab = (int64_t)a * (int64_t)b;
    nudge = ab >= 0 ? ((int64_t)1 << 30) : (1 - ((int64_t)1 << 30));
    /* C division truncates toward zero, as gemmlowp requires. */
    return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}

/* gemmlowp RoundingDivideByPOT: x / 2^exponent, rounding half away from zero. */
static inline int32_t tmn_rounding_divide_by_pot(int32_t x, int exponent)
{
    const int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* x * 2^exponent with saturation (gemmlowp SaturatingRoundingMultiplyByPOT for exponent > 0). */
static inline int32_t tmn_saturating_shift_left(int32_t x, int exponent)
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
static inline int32_t tmn_mul_by_quantized_multiplier(int32_t x, int32_t multiplier, int shift)
{
    const int left_shift = shift > 0 ? shift : 0;
    const int right_shift = shift > 0 ? 0 : -shift;
    /* The left shift wraps like the reference's int multiply, without signed overflow. */
    const int32_t shifted = (int32_t)((uint32_t)x << left_shift);
    return tmn_rounding_divide_by_pot(tmn_saturating_rounding_doubling_high_mul(shifted, multiplier),
                                      right_shift);
}

static inline int32_t tmn_clamp(int32_t x, int32_t low, int32_t high)
{
    return x < low ? low : (x > high ? high : x);
}

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
} tmn_conv_params;

/* FULLY_CONNECTED: `batches` rows of `accum_depth` inputs to `out_depth` outputs each. */
typedef struct {
    int32_t batches, accum_depth, out_depth;
    int32_t input_offset, filter_offset, output_offset;
    int32_t act_min, act_max;
    int32_t per_channel; /* 1: multiplier/shift arrays have out_depth entries; 0: one entry */
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

void tmn_conv2d(const tmn_conv_params *p, const int8_t *input, const int8_t *filter, const int32_t *bias,
                const int32_t *multiplier, const int32_t *shift, int8_t *output);
void tmn_depthwise_conv2d(const tmn_conv_params *p, const int8_t *input, const int8_t *filter,
                          const int32_t *bias, const int32_t *multiplier, const int32_t *shift,
                          int8_t *output);
void tmn_fully_connected(const tmn_fc_params *p, const int8_t *input, const int8_t *filter,
                         const int32_t *bias, const int32_t *multiplier, const int32_t *shift,
                         int8_t *output);
void tmn_max_pool(const tmn_pool_params *p, const int8_t *input, int8_t *output);
void tmn_average_pool(const tmn_pool_params *p, const int8_t *input, int8_t *output);
void tmn_mean(const tmn_mean_params *p, const int8_t *input, int8_t *output);
void tmn_softmax(const tmn_softmax_params *p, const int8_t *input, int8_t *output);

#endif /* TMN_KERNELS_H */

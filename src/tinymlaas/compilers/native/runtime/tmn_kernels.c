/*
 * tmn_kernels.c - int8 kernels of a TinyMLaaS native module.
 *
 * Each kernel reproduces the arithmetic of the TFLM reference kernel named
 * beside it, so outputs are bit-exact with the interpreter. No allocation,
 * no floating point.
 */
#include "tmn_kernels.h"

/* reference/integer_ops/conv.h: ConvPerChannel. */
void tmn_conv2d(const tmn_conv_params *p, const int8_t *input, const int8_t *filter, const int32_t *bias,
                const int32_t *multiplier, const int32_t *shift, int8_t *output)
{
    int32_t oy, ox, oc, ky, kx, ic;
    for (oy = 0; oy < p->out_h; ++oy) {
        const int32_t in_y0 = oy * p->stride_h - p->pad_h;
        for (ox = 0; ox < p->out_w; ++ox) {
            const int32_t in_x0 = ox * p->stride_w - p->pad_w;
            for (oc = 0; oc < p->out_c; ++oc) {
                int32_t acc = 0;
                for (ky = 0; ky < p->k_h; ++ky) {
                    const int32_t iy = in_y0 + p->dilation_h * ky;
                    if (iy < 0 || iy >= p->in_h) {
                        continue;
                    }
                    for (kx = 0; kx < p->k_w; ++kx) {
                        const int32_t ix = in_x0 + p->dilation_w * kx;
                        const int8_t *in_px;
                        const int8_t *f_px;
                        if (ix < 0 || ix >= p->in_w) {
                            continue;
                        }
                        in_px = input + (iy * p->in_w + ix) * p->in_c;
                        f_px = filter + ((oc * p->k_h + ky) * p->k_w + kx) * p->in_c;
                        for (ic = 0; ic < p->in_c; ++ic) {
                            acc += (int32_t)f_px[ic] * ((int32_t)in_px[ic] + p->input_offset);
                        }
                    }
                }
                if (bias) {
                    acc += bias[oc];
                }
                acc = tmn_mul_by_quantized_multiplier(acc, multiplier[oc], (int)shift[oc]) + p->output_offset;
                output[(oy * p->out_w + ox) * p->out_c + oc] = (int8_t)tmn_clamp(acc, p->act_min, p->act_max);
            }
        }
    }
}

/* reference/integer_ops/depthwise_conv.h: DepthwiseConvPerChannel. */
void tmn_depthwise_conv2d(const tmn_conv_params *p, const int8_t *input, const int8_t *filter,
                          const int32_t *bias, const int32_t *multiplier, const int32_t *shift,
                          int8_t *output)
{
    int32_t oy, ox, ic, m, ky, kx;
    for (oy = 0; oy < p->out_h; ++oy) {
        const int32_t in_y0 = oy * p->stride_h - p->pad_h;
        for (ox = 0; ox < p->out_w; ++ox) {
            const int32_t in_x0 = ox * p->stride_w - p->pad_w;
            for (ic = 0; ic < p->in_c; ++ic) {
                for (m = 0; m < p->depth_multiplier; ++m) {
                    const int32_t oc = m + ic * p->depth_multiplier;
                    int32_t acc = 0;
                    for (ky = 0; ky < p->k_h; ++ky) {
                        const int32_t iy = in_y0 + p->dilation_h * ky;
                        if (iy < 0 || iy >= p->in_h) {
                            continue;
                        }
                        for (kx = 0; kx < p->k_w; ++kx) {
                            const int32_t ix = in_x0 + p->dilation_w * kx;
                            int32_t in_val;
                            if (ix < 0 || ix >= p->in_w) {
                                continue;
                            }
                            in_val = input[(iy * p->in_w + ix) * p->in_c + ic];
                            acc += (int32_t)filter[(ky * p->k_w + kx) * p->out_c + oc] * (in_val + p->input_offset);
                        }
                    }
                    if (bias) {
                        acc += bias[oc];
                    }
                    acc = tmn_mul_by_quantized_multiplier(acc, multiplier[oc], (int)shift[oc]) + p->output_offset;
                    output[(oy * p->out_w + ox) * p->out_c + oc] =
                        (int8_t)tmn_clamp(acc, p->act_min, p->act_max);
                }
            }
        }
    }
}

/* reference/integer_ops/fully_connected.h: FullyConnected and FullyConnectedPerChannel. */
void tmn_fully_connected(const tmn_fc_params *p, const int8_t *input, const int8_t *filter,
                         const int32_t *bias, const int32_t *multiplier, const int32_t *shift,
                         int8_t *output)
{
    int32_t b, o, d;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *row = input + b * p->accum_depth;
        for (o = 0; o < p->out_depth; ++o) {
            const int8_t *weights = filter + o * p->accum_depth;
            const int32_t q = p->per_channel ? o : 0;
            int32_t acc = 0;
            for (d = 0; d < p->accum_depth; ++d) {
                acc += ((int32_t)weights[d] + p->filter_offset) * ((int32_t)row[d] + p->input_offset);
            }
            if (bias) {
                acc += bias[o];
            }
            acc = tmn_mul_by_quantized_multiplier(acc, multiplier[q], (int)shift[q]) + p->output_offset;
            output[b * p->out_depth + o] = (int8_t)tmn_clamp(acc, p->act_min, p->act_max);
        }
    }
}

/* reference/integer_ops/pooling.h: MaxPool. */
void tmn_max_pool(const tmn_pool_params *p, const int8_t *input, int8_t *output)
{
    int32_t oy, ox, c, fy, fx;
    for (oy = 0; oy < p->out_h; ++oy) {
        const int32_t in_y0 = oy * p->stride_h - p->pad_h;
        const int32_t fy_start = in_y0 < 0 ? -in_y0 : 0;
        const int32_t fy_end = p->k_h < p->in_h - in_y0 ? p->k_h : p->in_h - in_y0;
        for (ox = 0; ox < p->out_w; ++ox) {
            const int32_t in_x0 = ox * p->stride_w - p->pad_w;
            const int32_t fx_start = in_x0 < 0 ? -in_x0 : 0;
            const int32_t fx_end = p->k_w < p->in_w - in_x0 ? p->k_w : p->in_w - in_x0;
            for (c = 0; c < p->channels; ++c) {
                int32_t best = INT8_MIN;
                for (fy = fy_start; fy < fy_end; ++fy) {
                    for (fx = fx_start; fx < fx_end; ++fx) {
                        const int32_t v = input[((in_y0 + fy) * p->in_w + in_x0 + fx) * p->channels + c];
                        best = v > best ? v : best;
                    }
                }
                output[(oy * p->out_w + ox) * p->channels + c] = (int8_t)tmn_clamp(best, p->act_min, p->act_max);
            }
        }
    }
}

/* reference/integer_ops/pooling.h: AveragePool (round half away from zero). */
void tmn_average_pool(const tmn_pool_params *p, const int8_t *input, int8_t *output)
{
    int32_t oy, ox, c, fy, fx;
    for (oy = 0; oy < p->out_h; ++oy) {
        const int32_t in_y0 = oy * p->stride_h - p->pad_h;
        const int32_t fy_start = in_y0 < 0 ? -in_y0 : 0;
        const int32_t fy_end = p->k_h < p->in_h - in_y0 ? p->k_h : p->in_h - in_y0;
        for (ox = 0; ox < p->out_w; ++ox) {
            const int32_t in_x0 = ox * p->stride_w - p->pad_w;
            const int32_t fx_start = in_x0 < 0 ? -in_x0 : 0;
            const int32_t fx_end = p->k_w < p->in_w - in_x0 ? p->k_w : p->in_w - in_x0;
            for (c = 0; c < p->channels; ++c) {
                int32_t acc = 0;
                int32_t count = 0;
                for (fy = fy_start; fy < fy_end; ++fy) {
                    for (fx = fx_start; fx < fx_end; ++fx) {
                        acc += input[((in_y0 + fy) * p->in_w + in_x0 + fx) * p->channels + c];
                        ++count;
                    }
                }
                if (count > 0) {
                    acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
                }
                output[(oy * p->out_w + ox) * p->channels + c] = (int8_t)tmn_clamp(acc, p->act_min, p->act_max);
            }
        }
    }
}

/* micro/kernels/reduce_common.cc EvalIntegerMean: reference Mean or QuantizedMeanOrSum. */
void tmn_mean(const tmn_mean_params *p, const int8_t *input, int8_t *output)
{
    int32_t o, i, r;
    for (o = 0; o < p->outer; ++o) {
        for (i = 0; i < p->inner; ++i) {
            const int8_t *base = input + o * p->reduce * p->inner + i;
            int32_t sum = 0;
            int32_t value;
            for (r = 0; r < p->reduce; ++r) {
                sum += base[r * p->inner];
            }
            if (p->requantize) {
                value = tmn_mul_by_quantized_multiplier(sum - p->input_zero_point * p->reduce, p->multiplier,
                                                        (int)p->shift) +
                        p->output_zero_point;
                value = tmn_clamp(value, INT8_MIN, INT8_MAX);
            } else {
                value = sum / p->reduce;
            }
            output[o * p->inner + i] = (int8_t)value;
        }
    }
}

/* gemmlowp exp_on_interval_between_negative_one_quarter_and_0_excl, Q0.31 in and out. */
static int32_t tmn_exp_on_interval(int32_t a)
{
    const int32_t constant_term = 1895147668; /* exp(-1/8) */
    const int32_t one_third = 715827883;
    const int32_t x = a + (1 << 28);
    const int32_t x2 = tmn_saturating_rounding_doubling_high_mul(x, x);
    const int32_t x3 = tmn_saturating_rounding_doubling_high_mul(x2, x);
    const int32_t x4 = tmn_saturating_rounding_doubling_high_mul(x2, x2);
    const int32_t x4_over_4 = tmn_rounding_divide_by_pot(x4, 2);
    const int32_t poly = tmn_rounding_divide_by_pot(
        tmn_saturating_rounding_doubling_high_mul(x4_over_4 + x3, one_third) + x2, 1);
    return constant_term + tmn_saturating_rounding_doubling_high_mul(constant_term, x + poly);
}

/* gemmlowp exp_on_negative_values: Q5.26 input (<= 0), Q0.31 output. */
static int32_t tmn_exp_on_negative_values(int32_t a)
{
    static const int32_t barrel[7] = {1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242};
    const int32_t one_quarter = 1 << 24;
    const int32_t a_mod_quarter_minus_quarter = (a & (one_quarter - 1)) - one_quarter;
    const int32_t remainder = a_mod_quarter_minus_quarter - a;
    int32_t result = tmn_exp_on_interval(tmn_saturating_shift_left(a_mod_quarter_minus_quarter, 5));
    int k;
    for (k = 0; k < 7; ++k) {
        if (remainder & ((int32_t)1 << (24 + k))) {
            result = tmn_saturating_rounding_doubling_high_mul(result, barrel[k]);
        }
    }
    return a == 0 ? INT32_MAX : result;
}

/* gemmlowp one_over_one_plus_x_for_x_in_0_1: Newton-Raphson in Q2.29, Q0.31 in and out. */
static int32_t tmn_one_over_one_plus_x(int32_t a)
{
    const int64_t sum = (int64_t)a + INT32_MAX;
    const int32_t half_denominator = (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
    int32_t x = 1515870810 + tmn_saturating_rounding_doubling_high_mul(half_denominator, -1010580540);
    int i;
    for (i = 0; i < 3; ++i) {
        const int32_t half_denominator_times_x = tmn_saturating_rounding_doubling_high_mul(half_denominator, x);
        const int32_t one_minus = (1 << 29) - half_denominator_times_x;
        x = x + tmn_saturating_shift_left(tmn_saturating_rounding_doubling_high_mul(x, one_minus), 2);
    }
    return tmn_saturating_shift_left(x, 1);
}

/* reference/softmax.h: Softmax<int8_t, int8_t> with TFLM's fixed-point exp and reciprocal. */
void tmn_softmax(const tmn_softmax_params *p, const int8_t *input, int8_t *output)
{
    int32_t i, c;
    for (i = 0; i < p->outer; ++i) {
        const int8_t *row = input + i * p->depth;
        int8_t *out = output + i * p->depth;
        int32_t max_in_row = INT8_MIN;
        int32_t sum_of_exps = 0;
        int headroom_plus_one;
        int num_bits_over_unit;
        int32_t shifted_scale;
        int exponent;
        for (c = 0; c < p->depth; ++c) {
            max_in_row = row[c] > max_in_row ? row[c] : max_in_row;
        }
        for (c = 0; c < p->depth; ++c) {
            const int32_t diff = (int32_t)row[c] - max_in_row;
            if (diff >= p->diff_min) {
                const int32_t rescaled = tmn_saturating_rounding_doubling_high_mul(
                    (int32_t)((uint32_t)diff << p->input_left_shift), p->input_multiplier);
                sum_of_exps += tmn_rounding_divide_by_pot(tmn_exp_on_negative_values(rescaled), 12);
            }
        }
        headroom_plus_one = __builtin_clz((uint32_t)sum_of_exps);
        num_bits_over_unit = 12 - headroom_plus_one;
        shifted_scale = tmn_one_over_one_plus_x(
            (int32_t)(((uint32_t)sum_of_exps << headroom_plus_one) - ((uint32_t)1 << 31)));
        exponent = num_bits_over_unit + 31 - 8;
        for (c = 0; c < p->depth; ++c) {
            const int32_t diff = (int32_t)row[c] - max_in_row;
            if (diff >= p->diff_min) {
                const int32_t rescaled = tmn_saturating_rounding_doubling_high_mul(
                    (int32_t)((uint32_t)diff << p->input_left_shift), p->input_multiplier);
                const int32_t exp_in_0 = tmn_exp_on_negative_values(rescaled);
                const int32_t unsat = tmn_rounding_divide_by_pot(
                    tmn_saturating_rounding_doubling_high_mul(shifted_scale, exp_in_0), exponent);
                out[c] = (int8_t)tmn_clamp(unsat + INT8_MIN, INT8_MIN, INT8_MAX);
            } else {
                out[c] = INT8_MIN;
            }
        }
    }
}

/*
 * tmn_kernels.c - int8 kernels of a TinyMLaaS native module.
 *
 * Each kernel reproduces the arithmetic of the TFLM reference kernel named
 * beside it, so outputs are bit-exact with the interpreter. No allocation,
 * no floating point.
 */
#include "tmn_kernels.h"

#include <string.h>

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
/*
 * Cortex-M with the DSP extension: two 16x16 multiply-accumulates per SMLAD. Four int8 lanes are
 * sign-extended into two int16 pairs (lanes 0,2 and 1,3); both operands are split the same way,
 * so the pairs line up without reordering. Integer arithmetic: results are unchanged.
 */
#include <arm_acle.h>
#define TMN_SIMD 1

TMN_INLINE int32_t tmn_load4(const int8_t *p)
{
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

TMN_INLINE int32_t tmn_sxtb16_ror8(int32_t x)
{
    int32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}
#else
#define TMN_SIMD 0
#endif

/* s[0..3] += dot(a0, b0), dot(a0, b1), dot(a1, b0), dot(a1, b1) over n lanes; a1 = a0 + n, b1 = b0 + n. */
TMN_INLINE void tmn_dot_2x2(const int8_t *a0, const int8_t *b0, int32_t n, int32_t *s)
{
    int32_t s00 = s[0], s01 = s[1], s10 = s[2], s11 = s[3];
    const int8_t *end = a0 + (n & ~3);
#if TMN_SIMD
    if (a0 != end) {
        /*
         * Fourteen live registers (4 sums, 2 pointers, offset, end, 6 lanes): compilers spill
         * them at -Os, so the loop is written out: 22 instructions per 16 multiply-accumulates.
         */
        int32_t t0, t1, t2, t3, t4, t5;
        __asm__ volatile(
            "1:\n\t"
            "ldr %[t1], [%[a0], %[n]]\n\t"
            "ldr %[t0], [%[a0]], #4\n\t"
            "sxtb16 %[t2], %[t0]\n\t"
            "sxtb16 %[t0], %[t0], ror #8\n\t"
            "sxtb16 %[t3], %[t1]\n\t"
            "sxtb16 %[t1], %[t1], ror #8\n\t"
            "ldr %[t4], [%[b0], %[n]]\n\t"
            "sxtb16 %[t5], %[t4]\n\t"
            "smlad %[s01], %[t2], %[t5], %[s01]\n\t"
            "smlad %[s11], %[t3], %[t5], %[s11]\n\t"
            "sxtb16 %[t4], %[t4], ror #8\n\t"
            "smlad %[s01], %[t0], %[t4], %[s01]\n\t"
            "smlad %[s11], %[t1], %[t4], %[s11]\n\t"
            "ldr %[t4], [%[b0]], #4\n\t"
            "sxtb16 %[t5], %[t4]\n\t"
            "smlad %[s00], %[t2], %[t5], %[s00]\n\t"
            "smlad %[s10], %[t3], %[t5], %[s10]\n\t"
            "sxtb16 %[t4], %[t4], ror #8\n\t"
            "smlad %[s00], %[t0], %[t4], %[s00]\n\t"
            "smlad %[s10], %[t1], %[t4], %[s10]\n\t"
            "cmp %[a0], %[end]\n\t"
            "bne 1b"
            : [s00] "+r"(s00), [s01] "+r"(s01), [s10] "+r"(s10), [s11] "+r"(s11), [a0] "+r"(a0), [b0] "+r"(b0),
              [t0] "=&r"(t0), [t1] "=&r"(t1), [t2] "=&r"(t2), [t3] "=&r"(t3), [t4] "=&r"(t4), [t5] "=&r"(t5)
            : [n] "r"(n), [end] "r"(end)
            : "cc", "memory");
    }
#endif
    end = a0 + (n & 3) + (TMN_SIMD ? 0 : n - (n & 3));
    while (a0 != end) {
        const int32_t x0 = a0[0], x1 = a0[n], y0 = b0[0], y1 = b0[n];
        s00 += x0 * y0;
        s01 += x0 * y1;
        s10 += x1 * y0;
        s11 += x1 * y1;
        ++a0;
        ++b0;
    }
    s[0] = s00;
    s[1] = s01;
    s[2] = s10;
    s[3] = s11;
}

/* s[0..1] += dot(a, b0), dot(a, b1) over n lanes; b1 = b0 + n. */
TMN_INLINE void tmn_dot_1x2(const int8_t *a, const int8_t *b0, int32_t n, int32_t *s)
{
    int32_t s0 = s[0], s1 = s[1];
    const int8_t *end = a + (n & ~3);
#if TMN_SIMD
    while (a != end) {
        const int32_t x = tmn_load4(a), y0 = tmn_load4(b0), y1 = tmn_load4(b0 + n);
        const int32_t xe = __sxtb16(x), xo = tmn_sxtb16_ror8(x);
        s0 = __smlad(xe, __sxtb16(y0), __smlad(xo, tmn_sxtb16_ror8(y0), s0));
        s1 = __smlad(xe, __sxtb16(y1), __smlad(xo, tmn_sxtb16_ror8(y1), s1));
        a += 4;
        b0 += 4;
    }
#endif
    end = a + (n & 3) + (TMN_SIMD ? 0 : n - (n & 3));
    while (a != end) {
        const int32_t x = *a++;
        s0 += x * b0[0];
        s1 += x * b0[n];
        ++b0;
    }
    s[0] = s0;
    s[1] = s1;
}

/* tmn_gemm for one requantisation form; inlined twice so each copy drops the other form. */
TMN_INLINE void tmn_gemm_body(const int8_t *a, int32_t rows, const int8_t *w, int32_t depth, int32_t cols,
                              const int32_t *bias, const tmn_requant *rq, int8_t *out, int32_t out_stride,
                              int right_only)
{
    const int32_t off = rq->output_offset, lo = rq->act_min, hi = rq->act_max;
    int32_t r, c;
    /* Channel pairs outside, rows inside: each channel's requantisation is derived once. */
    for (c = 0; c + 1 < cols; c += 2) {
        const tmn_channel_q q0 = tmn_channel(rq, c, right_only);
        const tmn_channel_q q1 = tmn_channel(rq, c + 1, right_only);
        const int8_t *w0 = w + c * depth;
        const int32_t b0 = bias[c], b1 = bias[c + 1];
        int8_t *o = out + c;
        for (r = 0; r + 1 < rows; r += 2) {
            int32_t s[4];
            s[0] = s[2] = b0;
            s[1] = s[3] = b1;
            tmn_dot_2x2(a + r * depth, w0, depth, s);
            o[0] = (int8_t)tmn_requantize_q(s[0], &q0, right_only, off, lo, hi);
            o[1] = (int8_t)tmn_requantize_q(s[1], &q1, right_only, off, lo, hi);
            o += out_stride;
            o[0] = (int8_t)tmn_requantize_q(s[2], &q0, right_only, off, lo, hi);
            o[1] = (int8_t)tmn_requantize_q(s[3], &q1, right_only, off, lo, hi);
            o += out_stride;
        }
        if (r < rows) {
            int32_t s[2];
            s[0] = b0;
            s[1] = b1;
            tmn_dot_1x2(a + r * depth, w0, depth, s);
            o[0] = (int8_t)tmn_requantize_q(s[0], &q0, right_only, off, lo, hi);
            o[1] = (int8_t)tmn_requantize_q(s[1], &q1, right_only, off, lo, hi);
        }
    }
    if (c < cols) {
        /* The odd last channel: pairs of rows as one row of a transposed 1x2 product. */
        const tmn_channel_q q0 = tmn_channel(rq, c, right_only);
        const int8_t *w0 = w + c * depth;
        int8_t *o = out + c;
        for (r = 0; r + 1 < rows; r += 2) {
            int32_t s[2];
            s[0] = s[1] = bias[c];
            tmn_dot_1x2(w0, a + r * depth, depth, s);
            o[0] = (int8_t)tmn_requantize_q(s[0], &q0, right_only, off, lo, hi);
            o[out_stride] = (int8_t)tmn_requantize_q(s[1], &q0, right_only, off, lo, hi);
            o += 2 * out_stride;
        }
        if (r < rows) {
            const int8_t *a0 = a + r * depth;
            int32_t acc = bias[c];
            int32_t i;
            for (i = 0; i < depth; ++i) {
                acc += (int32_t)a0[i] * w0[i];
            }
            o[0] = (int8_t)tmn_requantize_q(acc, &q0, right_only, off, lo, hi);
        }
    }
}

void tmn_gemm(const int8_t *a, int32_t rows, const int8_t *w, int32_t depth, int32_t cols, const int32_t *bias,
              const tmn_requant *rq, int8_t *out, int32_t out_stride)
{
    if (rq->right_only) {
        tmn_gemm_body(a, rows, w, depth, cols, bias, rq, out, out_stride, 1);
    } else {
        tmn_gemm_body(a, rows, w, depth, cols, bias, rq, out, out_stride, 0);
    }
}

/* Pixels gathered per im2col batch: 2 to 8, within 256 bytes of stack where the rows allow. */
#define TMN_IM2COL_PIXELS(depth) ((depth) * 8 <= 256 ? 8 : ((depth) * 4 <= 256 ? 4 : 2))

/* Pixels per batch of an in-place pointwise convolution: 2 to 16, within 512 bytes where possible. */
#define TMN_INPLACE_PIXELS(out_c) ((out_c) * 16 <= 512 ? 16 : ((out_c) * 2 <= 512 ? 512 / (out_c) : 2))

/* n bytes; on DSP cores a word at a time (unaligned loads are legal there), for short runs. */
TMN_INLINE void tmn_copy(int8_t *dst, const int8_t *src, int32_t n)
{
    int32_t i = 0;
    for (; TMN_SIMD && i + 4 <= n; i += 4) {
        uint32_t word;
        memcpy(&word, src + i, 4);
        memcpy(dst + i, &word, 4);
    }
    for (; i < n; ++i) {
        dst[i] = src[i];
    }
}

/*
 * Copies the receptive field of output pixel (oy, ox) to col: k_h * k_w * in_c bytes, the input
 * zero point where a tap is padding (the bytes up to col_depth stay zero: their weights are zero).
 * A row of taps inside the input is one contiguous run of k_w * in_c bytes. Kept out of line:
 * inlined into the convolution loop, its locals spill.
 */
TMN_NOINLINE static void tmn_im2col(const tmn_conv_params *p, const int8_t *input, int32_t oy, int32_t ox,
                                    int8_t *col)
{
    const int32_t in_y0 = oy * p->stride_h - p->pad_h;
    const int32_t in_x0 = ox * p->stride_w - p->pad_w;
    const int32_t in_c = p->in_c;
    const int32_t in_h = p->in_h, in_w = p->in_w;
    const int32_t row = p->k_w * in_c;
    const int8_t zero_point = (int8_t)(-p->input_offset);
    const int whole_rows = p->dilation_w == 1 && in_x0 >= 0 && in_x0 + p->k_w <= in_w;
    int32_t ky, kx, i;
    for (ky = 0; ky < p->k_h; ++ky, col += row) {
        const int32_t iy = in_y0 + p->dilation_h * ky;
        if (iy < 0 || iy >= in_h) {
            for (i = 0; i < row; ++i) {
                col[i] = zero_point;
            }
        } else if (whole_rows) {
            tmn_copy(col, input + (iy * in_w + in_x0) * in_c, row);
        } else {
            for (kx = 0; kx < p->k_w; ++kx) {
                const int32_t ix = in_x0 + p->dilation_w * kx;
                if (ix >= 0 && ix < in_w) {
                    tmn_copy(col + kx * in_c, input + (iy * in_w + ix) * in_c, in_c);
                } else {
                    for (i = 0; i < in_c; ++i) {
                        col[kx * in_c + i] = zero_point;
                    }
                }
            }
        }
    }
}

/*
 * reference/integer_ops/conv.h: ConvPerChannel, as a matrix product. A 1x1 stride-1 unpadded
 * convolution multiplies the input pixels directly (filter [out_c][in_c]); otherwise
 * TMN_IM2COL_PIXELS output pixels at a time are gathered (im2col) into a stack buffer of at most
 * max(256, 2 * col_depth) bytes, and the filter rows are padded with zeros to col_depth, a
 * multiple of 4 (see TMN_CONV_DIRECT). More pixels per batch spread each channel's setup wider.
 */
void tmn_conv2d(const tmn_conv_params *p, const int8_t *input, const int8_t *filter, const int32_t *bias,
                const int32_t *multiplier, const int32_t *shift, int8_t *output)
{
    const int32_t pixels = p->out_h * p->out_w;
    tmn_requant rq;
    rq.multiplier = multiplier;
    rq.shift = shift;
    rq.output_offset = p->output_offset;
    rq.act_min = p->act_min;
    rq.act_max = p->act_max;
    rq.right_only = tmn_right_only(shift, p->out_c);
    if (TMN_CONV_DIRECT(p) && output != input) {
        tmn_gemm(input, pixels, filter, p->in_c, p->out_c, bias, &rq, output, p->out_c);
    } else if (TMN_CONV_DIRECT(p)) {
        /* In place (out_c <= in_c, see inplace_inputs in lowering.py): a batch of pixels goes to
         * a stack buffer, then over input bytes of pixels already consumed. */
        const int32_t batch = TMN_INPLACE_PIXELS(p->out_c);
        int8_t buf[batch * p->out_c];
        int32_t px;
        for (px = 0; px < pixels; px += batch) {
            const int32_t rows = pixels - px < batch ? pixels - px : batch;
            tmn_gemm(input + px * p->in_c, rows, filter, p->in_c, p->out_c, bias, &rq, buf, p->out_c);
            memcpy(output + px * p->out_c, buf, (size_t)(rows * p->out_c));
        }
    } else {
        const int32_t depth = p->col_depth;
        const int32_t batch = TMN_IM2COL_PIXELS(depth);
        int8_t col[batch * depth];
        int32_t px, i;
        memset(col, 0, (size_t)(batch * depth));
        for (px = 0; px < pixels; px += batch) {
            const int32_t rows = pixels - px < batch ? pixels - px : batch;
            for (i = 0; i < rows; ++i) {
                tmn_im2col(p, input, (px + i) / p->out_w, (px + i) % p->out_w, col + i * depth);
            }
            tmn_gemm(col, rows, filter, depth, p->out_c, bias, &rq, output + px * p->out_c, p->out_c);
        }
    }
}

/*
 * reference/integer_ops/depthwise_conv.h: DepthwiseConvPerChannel. Per output pixel the taps are
 * resolved to pointers once (the zero-point row `pad` for padding). With a depth multiplier of 1,
 * up to TMN_DW_FAST_TAPS taps and channels a multiple of 4, four channels are accumulated
 * together and the filter arrives regrouped at compile time as [channel / 4][tap][4], so the inner
 * loop walks it sequentially; otherwise the filter is TFLite's [tap][channel].
 */
static void tmn_depthwise_generic(const tmn_conv_params *p, const int8_t *input, const int8_t *filter,
                                  const int32_t *bias, const tmn_requant *rq, const int8_t *pad, int8_t *output)
{
    int32_t oy, ox, ky, kx, c;
    for (oy = 0; oy < p->out_h; ++oy) {
        for (ox = 0; ox < p->out_w; ++ox) {
            int8_t *out = output + (oy * p->out_w + ox) * p->out_c;
            for (c = 0; c < p->out_c; ++c) {
                const int32_t ic = c / p->depth_multiplier;
                int32_t s = bias[c];
                for (ky = 0; ky < p->k_h; ++ky) {
                    const int32_t iy = oy * p->stride_h - p->pad_h + p->dilation_h * ky;
                    for (kx = 0; kx < p->k_w; ++kx) {
                        const int32_t ix = ox * p->stride_w - p->pad_w + p->dilation_w * kx;
                        const int inside = iy >= 0 && iy < p->in_h && ix >= 0 && ix < p->in_w;
                        const int8_t *px = inside ? input + (iy * p->in_w + ix) * p->in_c : pad;
                        s += (int32_t)px[ic] * filter[(ky * p->k_w + kx) * p->out_c + c];
                    }
                }
                out[c] = tmn_requantize(s, rq, c);
            }
        }
    }
}

/*
 * The packed depthwise loop for one requantisation form (see tmn_gemm_body). With `ring`
 * (in place: output == input, stride 1, same size), output rows go to a ring of pad_h + 1 rows
 * and each is copied over its input row once no later output row reads that row.
 */
TMN_INLINE void tmn_depthwise_body(const tmn_conv_params *p, const int8_t *input, const int8_t *filter,
                                   const int32_t *bias, const tmn_requant *rq, const int8_t *pad, int8_t *output,
                                   int8_t *ring, int right_only)
{
    const int32_t taps = p->k_h * p->k_w;
    const int32_t channels = p->out_c;
    const int32_t off = rq->output_offset, lo = rq->act_min, hi = rq->act_max;
    const int8_t *tap[TMN_DW_FAST_TAPS];
    int32_t offset[TMN_DW_FAST_TAPS];
    tmn_channel_q q;
    const int32_t ring_rows = p->pad_h + 1;
    const size_t row_bytes = (size_t)(p->out_w * channels);
    int32_t oy, ox, ky, kx, t;
    for (ky = 0, t = 0; ky < p->k_h; ++ky) {
        for (kx = 0; kx < p->k_w; ++kx, ++t) {
            offset[t] = (p->dilation_h * ky * p->in_w + p->dilation_w * kx) * channels;
        }
    }
    for (oy = 0; oy < p->out_h; ++oy) {
        const int32_t in_y0 = oy * p->stride_h - p->pad_h;
        const int rows_inside = in_y0 >= 0 && in_y0 + p->dilation_h * (p->k_h - 1) < p->in_h;
        for (ox = 0; ox < p->out_w; ++ox) {
            const int32_t in_x0 = ox * p->stride_w - p->pad_w;
            int8_t *out = ring ? ring + ((oy % ring_rows) * p->out_w + ox) * channels
                               : output + (oy * p->out_w + ox) * channels;
            const int8_t *f = filter;
            int32_t c;
            if (rows_inside && in_x0 >= 0 && in_x0 + p->dilation_w * (p->k_w - 1) < p->in_w) {
                const int8_t *base = input + (in_y0 * p->in_w + in_x0) * channels;
                for (t = 0; t < taps; ++t) {
                    tap[t] = base + offset[t];
                }
            } else {
                for (ky = 0, t = 0; ky < p->k_h; ++ky) {
                    const int32_t iy = in_y0 + p->dilation_h * ky;
                    for (kx = 0; kx < p->k_w; ++kx, ++t) {
                        const int32_t ix = in_x0 + p->dilation_w * kx;
                        const int inside = iy >= 0 && iy < p->in_h && ix >= 0 && ix < p->in_w;
                        tap[t] = inside ? input + (iy * p->in_w + ix) * channels : pad;
                    }
                }
            }
            for (c = 0; c < channels; c += 4) {
                int32_t s0 = bias[c], s1 = bias[c + 1], s2 = bias[c + 2], s3 = bias[c + 3];
                const int8_t *const *tp = tap;
                const int8_t *const *tend = tap + taps;
#if TMN_SIMD
                {
                    /* 13 instructions per tap and 4 channels; compilers spill this loop at -Os. */
                    int32_t x, xo, w, wo;
                    __asm__ volatile(
                        "1:\n\t"
                        "ldr %[x], [%[tp]], #4\n\t"
                        "ldr %[w], [%[f]], #4\n\t"
                        "ldr %[x], [%[x], %[c]]\n\t"
                        "sxtb16 %[wo], %[w], ror #8\n\t"
                        "sxtb16 %[w], %[w]\n\t"
                        "sxtb16 %[xo], %[x], ror #8\n\t"
                        "sxtb16 %[x], %[x]\n\t"
                        "smlabb %[s0], %[x], %[w], %[s0]\n\t"
                        "smlatt %[s2], %[x], %[w], %[s2]\n\t"
                        "smlabb %[s1], %[xo], %[wo], %[s1]\n\t"
                        "smlatt %[s3], %[xo], %[wo], %[s3]\n\t"
                        "cmp %[tp], %[tend]\n\t"
                        "bne 1b"
                        : [s0] "+r"(s0), [s1] "+r"(s1), [s2] "+r"(s2), [s3] "+r"(s3), [tp] "+r"(tp), [f] "+r"(f),
                          [x] "=&r"(x), [xo] "=&r"(xo), [w] "=&r"(w), [wo] "=&r"(wo)
                        : [tend] "r"(tend), [c] "r"(c)
                        : "cc", "memory");
                }
#else
                do {
                    const int8_t *x = *tp++ + c;
                    s0 += (int32_t)x[0] * f[0];
                    s1 += (int32_t)x[1] * f[1];
                    s2 += (int32_t)x[2] * f[2];
                    s3 += (int32_t)x[3] * f[3];
                    f += 4;
                } while (tp != tend);
#endif
                q = tmn_channel(rq, c, right_only);
                out[c] = (int8_t)tmn_requantize_q(s0, &q, right_only, off, lo, hi);
                q = tmn_channel(rq, c + 1, right_only);
                out[c + 1] = (int8_t)tmn_requantize_q(s1, &q, right_only, off, lo, hi);
                q = tmn_channel(rq, c + 2, right_only);
                out[c + 2] = (int8_t)tmn_requantize_q(s2, &q, right_only, off, lo, hi);
                q = tmn_channel(rq, c + 3, right_only);
                out[c + 3] = (int8_t)tmn_requantize_q(s3, &q, right_only, off, lo, hi);
            }
        }
        if (ring && oy >= p->pad_h) {
            const int32_t done = oy - p->pad_h;
            memcpy(output + done * (int32_t)row_bytes, ring + (done % ring_rows) * (int32_t)row_bytes, row_bytes);
        }
    }
    for (oy = p->out_h - p->pad_h; ring && oy < p->out_h; ++oy) {
        if (oy >= 0) {
            memcpy(output + oy * (int32_t)row_bytes, ring + (oy % ring_rows) * (int32_t)row_bytes, row_bytes);
        }
    }
}

/* Out of line, so the caller's variable-length ring does not take a register from the loop. */
TMN_NOINLINE static void tmn_depthwise_packed(const tmn_conv_params *p, const int8_t *input, const int8_t *filter,
                                              const int32_t *bias, const tmn_requant *rq, const int8_t *pad,
                                              int8_t *output, int8_t *ring)
{
    if (rq->right_only) {
        tmn_depthwise_body(p, input, filter, bias, rq, pad, output, ring, 1);
    } else {
        tmn_depthwise_body(p, input, filter, bias, rq, pad, output, ring, 0);
    }
}

void tmn_depthwise_conv2d(const tmn_conv_params *p, const int8_t *input, const int8_t *filter,
                          const int32_t *bias, const int32_t *multiplier, const int32_t *shift,
                          const int8_t *pad, int8_t *output)
{
    tmn_requant rq;
    rq.multiplier = multiplier;
    rq.shift = shift;
    rq.output_offset = p->output_offset;
    rq.act_min = p->act_min;
    rq.act_max = p->act_max;
    rq.right_only = tmn_right_only(shift, p->out_c);
    if (!TMN_DW_PACKED(p)) {
        tmn_depthwise_generic(p, input, filter, bias, &rq, pad, output);
    } else if (output == input) {
        /* In place (see inplace_inputs in lowering.py): pad_h + 1 output rows held back. */
        int8_t ring[(p->pad_h + 1) * p->out_w * p->out_c];
        tmn_depthwise_packed(p, input, filter, bias, &rq, pad, output, ring);
    } else {
        tmn_depthwise_packed(p, input, filter, bias, &rq, pad, output, (int8_t *)0);
    }
}

/*
 * reference/integer_ops/fully_connected.h: FullyConnected and FullyConnectedPerChannel. With a
 * zero filter offset the input offset arrives folded into the bias (input_offset 0) and the layer
 * is one matrix product; otherwise both offsets are applied per product, as the reference does.
 */
void tmn_fully_connected(const tmn_fc_params *p, const int8_t *input, const int8_t *filter,
                         const int32_t *bias, const int32_t *multiplier, const int32_t *shift,
                         int8_t *output)
{
    tmn_requant rq;
    int32_t b, o, d;
    rq.multiplier = multiplier;
    rq.shift = shift;
    rq.output_offset = p->output_offset;
    rq.act_min = p->act_min;
    rq.act_max = p->act_max;
    rq.right_only = tmn_right_only(shift, p->out_depth);
    if (bias && p->input_offset == 0 && p->filter_offset == 0) {
        tmn_gemm(input, p->batches, filter, p->accum_depth, p->out_depth, bias, &rq, output,
                 p->out_depth);
        return;
    }
    for (b = 0; b < p->batches; ++b) {
        const int8_t *row = input + b * p->accum_depth;
        for (o = 0; o < p->out_depth; ++o) {
            const int8_t *weights = filter + o * p->accum_depth;
            int32_t acc = bias ? bias[o] : 0;
            for (d = 0; d < p->accum_depth; ++d) {
                acc += ((int32_t)weights[d] + p->filter_offset) * ((int32_t)row[d] + p->input_offset);
            }
            output[b * p->out_depth + o] = tmn_requantize(acc, &rq, o);
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

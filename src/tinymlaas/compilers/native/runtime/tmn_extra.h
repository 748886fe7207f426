/* Extra int8 kernels of the native runtime: ADD, MUL, PAD, CONCATENATION, LOGISTIC, QUANTIZE.
 *
 * Every parameter (multipliers, shifts, offsets, clamps, strides) is computed at compile time by
 * the lowering in extra.py exactly as TFLM's Prepare computes it, so these kernels only do the
 * integer arithmetic of TFLM's reference kernels and stay bit-exact with the interpreter.
 * No float, no malloc; C99.
 */
#ifndef TMN_EXTRA_H
#define TMN_EXTRA_H

#include <stdint.h>

/* Number of dimensions the broadcasting element-wise kernels iterate over (TFLM's 6D broadcast). */
#define TMN_BCAST_DIMS 6

/* Element-wise int8 ADD with numpy-style broadcasting (TFLM reference_integer_ops::AddFunc over
 * BroadcastBinaryFunction6DSlow).
 *
 * dims[TMN_BCAST_DIMS]: output shape, left-padded with 1s; stride1/stride2[TMN_BCAST_DIMS]: element
 * stride of each operand along each output dimension (0 where that operand is broadcast).
 * in*_offset: minus the operand's zero point; in*_multiplier/in*_shift: the operand's rescale to the
 * common scale (shift <= 0); left_shift: 20 for int8; out_multiplier/out_shift: the rescale of the sum
 * to the output scale; out_offset: output zero point; act_min/act_max: fused activation clamp. */
void tmn_add_s8(const int8_t *in1, const int8_t *in2, int8_t *out, const int32_t *dims,
                const int32_t *stride1, const int32_t *stride2, int32_t in1_offset,
                int32_t in1_multiplier, int in1_shift, int32_t in2_offset, int32_t in2_multiplier,
                int in2_shift, int left_shift, int32_t out_offset, int32_t out_multiplier, int out_shift,
                int32_t act_min, int32_t act_max);

/* Element-wise int8 MUL with numpy-style broadcasting (TFLM reference_integer_ops::MulElementwise /
 * BroadcastMul4DSlow). dims/stride1/stride2 as for tmn_add_s8; in*_offset: minus the operands' zero
 * points; out_multiplier/out_shift: QuantizeMultiplier(s1 * s2 / s_out); out_offset: output zero point;
 * act_min/act_max: fused activation clamp. */
void tmn_mul_s8(const int8_t *in1, const int8_t *in2, int8_t *out, const int32_t *dims,
                const int32_t *stride1, const int32_t *stride2, int32_t in1_offset, int32_t in2_offset,
                int32_t out_offset, int32_t out_multiplier, int out_shift, int32_t act_min,
                int32_t act_max);

/* Constant padding of an int8 tensor of up to 5 dimensions (TFLM reference_ops::PadImpl).
 * out_dims[5]: output shape, left-padded with 1s; before[5]/after[5]: padding before and after each
 * dimension (the input shape is out_dims - before - after); pad_value: the value written in the
 * padding (the output zero point for PAD). */
void tmn_pad_s8(const int8_t *in, int8_t *out, const int32_t *out_dims, const int32_t *before,
                const int32_t *after, int8_t pad_value);

/* Concatenation of count int8 tensors along one axis (TFLM reference_ops::Concatenation: a byte copy,
 * TFLM does not rescale int8 inputs). inputs[count]: the operands; copy_sizes[count]: each operand's
 * elements from the axis inwards (product of its dims from the axis on); outer: product of the
 * output dims before the axis. */
void tmn_concatenation_s8(const int8_t *const *inputs, const int32_t *copy_sizes, int count,
                          int32_t outer, int8_t *out);

/* int8 logistic (TFLM reference_integer_ops::Logistic, gemmlowp fixed-point sigmoid on Q4.27 input;
 * output scale 1/256, zero point -128). size: elements; in_zero_point: input zero point;
 * range_radius: |input - zero point| at or beyond which the output saturates; in_multiplier and
 * in_left_shift: the rescale of the input to Q4.27, as LogisticPrepare computes them. */
void tmn_logistic_s8(const int8_t *in, int8_t *out, int32_t size, int32_t in_zero_point,
                     int32_t range_radius, int32_t in_multiplier, int in_left_shift);

/* int8 -> int8 requantisation (TFLM reference_ops::Requantize, as QUANTIZE evaluates it).
 * size: elements; multiplier/shift: QuantizeMultiplier(in_scale / out_scale). */
void tmn_quantize_s8(const int8_t *in, int8_t *out, int32_t size, int32_t in_zero_point,
                     int32_t out_zero_point, int32_t multiplier, int shift);

#endif /* TMN_EXTRA_H */

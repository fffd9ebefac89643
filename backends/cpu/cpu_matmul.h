/* The CPU matmul kernel's introspection, for benchmarks and tests. */
#ifndef VLZOO_CPU_MATMUL_H
#define VLZOO_CPU_MATMUL_H

#include "vlzoo/ops.h"

/* Which of the CPU matmul kernel's strategies runs `call` (a matmul call
 * whose inputs are on the CPU backend and have passed the op's checks):
 *   "onednn_sgemm"        f32 operands read in place by oneDNN's sgemm
 *   "onednn_sgemm_padded" f32, one operand first copied to a leading
 *                         dimension that is not a multiple of 4 KiB
 *   "onednn_sgemm_packed" f32, an operand whose strides oneDNN cannot take
 *                         (neither of its last two dimensions has stride 1)
 *                         copied first
 *   "onednn_bf16_matmul"  a bf16 operand; oneDNN's bf16 matmul primitive
 *                         (processors with native bf16 support)
 *   "bf16_widen_sgemm"    a bf16 operand; both rounded to bf16 and widened
 *                         to f32 in cache-sized panels, then sgemm
 *   "f16_widen_sgemm"     an f16 operand (no bf16); widened to f32 exactly
 *                         in panels, then sgemm
 * NULL when the call is not such a matmul. */
const char *vz_cpu_matmul_kernel_name(const vz_op_call *call);

#endif

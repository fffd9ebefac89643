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
 *   "packed_sgemm"        AVX2 processors, one b for 32 rows or more:
 *                         vlzoo's own packed GEMM, any dtype converted
 *                         while packing
 *   "onednn_bf16_matmul"  a bf16 operand; oneDNN's bf16 matmul primitive
 *                         (where oneDNN runs it on AMX tiles)
 *   "bf16_widen_sgemm"    a bf16 operand; both rounded to bf16 and widened
 *                         to f32 in cache-sized panels, then sgemm
 *   "f16_widen_sgemm"     an f16 operand (no bf16); widened to f32 exactly
 *                         in panels, then sgemm
 *   "f16_products_avx512fp16", "bf16_f16_products_avx512fp16"
 *                         AVX512-FP16 processors, f32 a times one f16 or
 *                         bf16 weight [N, K]: f16 products
 *                         (cpu_gemm_f16.c), the widening strategy above
 *                         as the fallback
 * NULL when the call is not such a matmul. */
const char *vz_cpu_matmul_kernel_name(const vz_op_call *call);

/* The same for x w^T, a Linear layer's product (x [..., K], w [N, K]). */
const char *vz_cpu_linear_kernel_name(const vz_tensor *x, const vz_tensor *w);

#endif

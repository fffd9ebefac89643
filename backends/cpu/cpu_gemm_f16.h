/* GEMM with f16 products for f16 and bf16 weights (cpu_gemm_f16.c). Both functions
 * run AVX512-FP16 instructions: call them only on the avx512fp16 path. */
#ifndef VLZOO_CPU_GEMM_F16_H
#define VLZOO_CPU_GEMM_F16_H

#include <stdbool.h>
#include <stdint.h>

/* Rounds `rows` rows of k floats (src_ld apart) to f16 (dst_ld apart).
 * Returns false when a value is NaN or beyond f16's range (the rows are
 * then unusable for vz_cpu_gemm_f16). */
bool vz_cpu_f16_round_rows(const float *src, int64_t src_ld, int64_t rows, int64_t k, uint16_t *dst,
                           int64_t dst_ld, int threads);

/* c [m, n] (rows ldc apart) = a [m, k] (f16, rows lda apart) times w^T, w
 * [n, k] (f16, or bf16 when w_bf16, rows ldw apart): f16 products summed
 * in f16 lanes over at most 96 steps, the lanes in f16, then the chunks of
 * K in f32; bf16 weights are converted to f16 on the way. Returns false
 * when an output came out infinite or NaN (an f16 product or lane sum
 * overflowed, or an input held an infinity) or a bf16 weight row was too
 * small for f16 (see cpu_gemm_f16.c): c is then to be recomputed another
 * way. */
bool vz_cpu_gemm_f16(const uint16_t *a, int64_t lda, const uint16_t *w, int64_t ldw, bool w_bf16,
                     int64_t m, int64_t n, int64_t k, float *c, int64_t ldc, int threads);

#endif

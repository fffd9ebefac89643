/* Vector kernels on contiguous f32 rows, compiled once per instruction-set
 * path (scalar, AVX2, AVX-512) from one source, simd_kernels.inc. Every
 * path computes the same function; only rounding may differ. */
#ifndef VLZOO_CPU_SIMD_H
#define VLZOO_CPU_SIMD_H

#include <stdbool.h>
#include <stdint.h>

#include "vlzoo/ops.h"

/* The packed GEMM's register tile: VZ_GEMM_MR rows of a by the path's
 * gemm_nr columns of b (see cpu_matmul.c for the blocking around it). */
enum { VZ_GEMM_MR = 6 };

/* What the GEMM does to a finished tile before storing it, in this order:
 * add the bias, apply the activation, add the residual (a Linear layer's
 * bias, its activation and the residual connection after it). */
typedef struct vz_gemm_epilogue {
  const float *bias;     /* the tile's columns, contiguous; NULL: none */
  vz_op_kind activation; /* an activation op (VZ_OP_GELU_ERF, ...); VZ_OP_COUNT: none */
  const float *residual; /* the tile's element [0, 0]; NULL: none */
  int64_t residual_ld;   /* floats between the residual's rows */
} vz_gemm_epilogue;

typedef struct vz_cpu_simd {
  const char *name;
  /* out[i] = a[i*a_step] (op) b[i*b_step], op one of add, sub, mul, div;
   * a step of 0 repeats one value, 1 walks a row. */
  void (*binary)(vz_op_kind op, const float *a, int64_t a_step, const float *b, int64_t b_step,
                 float *out, int64_t n);
  /* out[i] = f(x[i]) for the activation ops and scale (by `factor`). */
  void (*unary)(vz_op_kind op, const float *x, float *out, int64_t n, float factor);
  float (*sum)(const float *x, int64_t n);
  float (*max)(const float *x, int64_t n);
  float (*dot)(const float *a, const float *b, int64_t n);
  /* y[i] += alpha * x[i] */
  void (*axpy)(float alpha, const float *x, float *y, int64_t n);
  /* out = softmax(x * scale + mask) over the first `valid` entries (mask may
   * be NULL); out[valid..n) = 0. All entries -inf gives zeros. */
  void (*softmax_row)(const float *x, const float *mask, float scale, int64_t valid, int64_t n,
                      float *out);
  /* LayerNorm / RMSNorm of one row; w and b may be NULL. */
  void (*layer_norm_row)(const float *x, const float *w, const float *b, float eps, int64_t n,
                         float *out);
  void (*rms_norm_row)(const float *x, const float *w, float eps, int64_t n, float *out);
  /* 16-bit float rows to and from f32 (round to nearest even). */
  void (*f16_to_f32)(const uint16_t *x, float *out, int64_t n);
  void (*bf16_to_f32)(const uint16_t *x, float *out, int64_t n);
  void (*f32_to_f16)(const float *x, uint16_t *out, int64_t n);
  void (*f32_to_bf16)(const float *x, uint16_t *out, int64_t n);
  /* The packed GEMM, on paths that have one (else gemm_nr is 0 and the
   * functions NULL). A packed a holds kc steps of VZ_GEMM_MR row values, a
   * packed b kc steps of gemm_nr column values.
   * gemm_pack_a: steps [0, kc) of VZ_GEMM_MR rows (each contiguous) into a
   * packed a.
   * gemm_pack_bt: b's columns as `cols` (<= gemm_nr) rows of w, each kc
   * contiguous floats ldw apart, into a packed b (columns past `cols`
   * zero).
   * gemm_tile: c [rows x cols] (rows <= VZ_GEMM_MR, cols <= gemm_nr, rows
   * ldc apart) = (accumulate ? c : 0) + a b over the kc steps, then the
   * epilogue when ep is not NULL; a is packed when lda is 0, else `rows`
   * rows of kc contiguous floats, lda apart. Each element sums its kc
   * products in order, in one lane. */
  int gemm_nr;
  void (*gemm_pack_a)(const float *const *rows, int64_t kc, float *dst);
  void (*gemm_pack_bt)(const float *w, int64_t ldw, int cols, int64_t kc, float *dst);
  void (*gemm_tile)(int64_t kc, const float *a, int64_t lda, const float *b, float *c, int64_t ldc,
                    int rows, int cols, bool accumulate, const vz_gemm_epilogue *ep);
} vz_cpu_simd;

extern const vz_cpu_simd vz_cpu_simd_scalar;
extern const vz_cpu_simd vz_cpu_simd_avx2;
extern const vz_cpu_simd vz_cpu_simd_avx512;

#endif

/* Vector kernels on contiguous f32 rows, compiled once per instruction-set
 * path (scalar, AVX2, AVX-512) from one source, simd_kernels.inc. Every
 * path computes the same function; only rounding may differ. */
#ifndef VLZOO_CPU_SIMD_H
#define VLZOO_CPU_SIMD_H

#include <stdint.h>

#include "vlzoo/ops.h"

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
} vz_cpu_simd;

extern const vz_cpu_simd vz_cpu_simd_scalar;
extern const vz_cpu_simd vz_cpu_simd_avx2;
extern const vz_cpu_simd vz_cpu_simd_avx512;

#endif

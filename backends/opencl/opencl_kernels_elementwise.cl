/* Element-wise kernels: arithmetic with broadcasting (f32, i32, i64), the
 * activations, and where.
 *
 * Binary ops and where run over a vz_cl_layout (VZ_LAYOUT_ITEM); each
 * operand has its own strides (0 where it broadcasts). Outputs are
 * contiguous. */

#define BINARY_ARGS(T)                                                                             \
  __global T *out, long out_off, __global const T *a, long a_off, __global const T *b, long b_off, \
      long4 shape, long4 sa, long4 sb, __global int *status

#define BINARY_BODY(T, EXPR)                                                                       \
  VZ_LAYOUT_ITEM(shape)                                                                            \
  T x = a[a_off + VZ_AT(sa)];                                                                      \
  T y = b[b_off + VZ_AT(sb)];                                                                      \
  out[out_off + r * shape.s3 + j] = (EXPR);

#define FLOAT_BINARY(NAME, OP)                                                                     \
  __kernel void NAME(BINARY_ARGS(float)) {                                                         \
    (void)status;                                                                                  \
    BINARY_BODY(float, x OP y)                                                                     \
  }
FLOAT_BINARY(add_f32, +)
FLOAT_BINARY(sub_f32, -)
FLOAT_BINARY(mul_f32, *)
FLOAT_BINARY(div_f32, /)

/* Integers wrap (the arithmetic is done unsigned) and divide truncating
 * toward zero; x / -1 is negation (wrapping), a zero divisor gives 0 and is
 * reported. */
#define INT_BINARY(SUFFIX, T, U)                                                                   \
  __kernel void add_##SUFFIX(BINARY_ARGS(T)) {                                                     \
    (void)status;                                                                                  \
    BINARY_BODY(T, (T)((U)x + (U)y))                                                               \
  }                                                                                                \
  __kernel void sub_##SUFFIX(BINARY_ARGS(T)) {                                                     \
    (void)status;                                                                                  \
    BINARY_BODY(T, (T)((U)x - (U)y))                                                               \
  }                                                                                                \
  __kernel void mul_##SUFFIX(BINARY_ARGS(T)) {                                                     \
    (void)status;                                                                                  \
    BINARY_BODY(T, (T)((U)x * (U)y))                                                               \
  }                                                                                                \
  T divide_##SUFFIX(T x, T y, __global int *status) {                                              \
    if (y == 0) {                                                                                  \
      vz_report(status, VZ_FAIL_DIVISION_BY_ZERO, 0, 0, 0, 0);                                     \
      return 0;                                                                                    \
    }                                                                                              \
    return y == (T)-1 ? (T)((U)0 - (U)x) : x / y;                                                  \
  }                                                                                                \
  __kernel void div_##SUFFIX(BINARY_ARGS(T)) { BINARY_BODY(T, divide_##SUFFIX(x, y, status)) }
INT_BINARY(i32, int, uint)
INT_BINARY(i64, long, ulong)

/* ---- Activations (contiguous f32; out may be x) ---- */

/* 1 / (1 + e^-x), as e^x / (1 + e^x) below 0 so that e^-x cannot overflow
 * (sigmoid(-100) is a subnormal, not 0) */
float vz_sigmoid(float x) {
  if (x >= 0.0f)
    return 1.0f / (1.0f + exp(-x));
  float e = exp(x);
  return e / (1.0f + e);
}

/* Phi(x), the normal CDF, as backends/cpu/simd_kernels.inc computes it
 * (PoCL's erfc is a scalar routine that made GELU the slowest kernel of a
 * ViT layer): for |x| < 1.25, 1/2 + x S(x^2) with S a degree-5 fit; in the
 * tails e^(-x^2/2) t P(t), t = 1 / (1 + |x|/4), P a degree-8 fit of erfcx,
 * with x^2's rounding error taken back through an FMA; both branches are
 * computed and one selected, so that work-items vectorize. */
float vz_normal_cdf(float x) {
  float ax = fabs(x), x2 = x * x;
  float s = -6.822396781e-06f;
  s = fma(s, x2, 1.110920276e-04f);
  s = fma(s, x2, -1.183907620e-03f);
  s = fma(s, x2, 9.972322709e-03f);
  s = fma(s, x2, -6.649021594e-02f);
  s = fma(s, x2, 3.989422768e-01f);
  float small = fma(x, s, 0.5f);
  float y = fmin(14.5f, ax); /* Phi(-14.5) is below the smallest float */
  float y2 = y * y, y2lo = fma(y, y, -y2);
  float t = 1.0f / fma(y, 0.25f, 1.0f);
  float p = 5.883514579e-03f;
  p = fma(p, t, -7.119671866e-02f);
  p = fma(p, t, 1.526666843e-01f);
  p = fma(p, t, -6.532271669e-02f);
  p = fma(p, t, 1.181249298e-01f);
  p = fma(p, t, 6.388550551e-02f);
  p = fma(p, t, 9.679910154e-02f);
  p = fma(p, t, 9.938036547e-02f);
  p = fma(p, t, 9.975198771e-02f);
  float e = exp(y2 * -0.5f);
  e = fma(-e, y2lo * 0.5f, e); /* e^(-lo/2) ~ 1 - lo/2 */
  float tail = e * (t * p);
  float large = x < 0.0f ? tail : 1.0f - tail;
  return ax < 1.25f ? small : large;
}

float vz_gelu_erf(float x) { return x * vz_normal_cdf(x); }
float vz_gelu_tanh(float x) {
  return x * vz_sigmoid(x * (1.5957691216057308f + 0.0713548162726008f * (x * x)));
}
float vz_quick_gelu(float x) { return x * vz_sigmoid(1.702f * x); }
float vz_silu(float x) { return x * vz_sigmoid(x); }
float vz_relu(float x) { return isnan(x) ? x : fmax(x, 0.0f); }

#define UNARY(NAME, EXPR)                                                                          \
  __kernel void NAME(__global float *out, long out_off, __global const float *in, long in_off,     \
                     long n, float factor) {                                                       \
    long i = get_global_id(0);                                                                     \
    if (i >= n)                                                                                    \
      return;                                                                                      \
    float x = in[in_off + i];                                                                      \
    (void)factor;                                                                                  \
    out[out_off + i] = (EXPR);                                                                     \
  }

UNARY(scale_f32, x *factor)
/* x Phi(x), accurate in both tails */
UNARY(gelu_erf_f32, vz_gelu_erf(x))
/* 0.5 x (1 + tanh(u)) = x sigmoid(2u): no cancellation for negative x */
UNARY(gelu_tanh_f32, vz_gelu_tanh(x))
UNARY(quick_gelu_f32, vz_quick_gelu(x))
UNARY(silu_f32, vz_silu(x))
UNARY(relu_f32, vz_relu(x))
UNARY(sigmoid_f32, vz_sigmoid(x))

/* ---- The tail of a fused Linear layer: out = act(y + bias) + residual ----
 *
 * y is the GEMM's result, bias broadcasts along the last dimension and
 * residual has out's shape (both NULL when absent); all three with any
 * strides (a vz_cl_layout). out may be y or the residual (same elements).
 * act: 0 none, then gelu_erf, gelu_tanh, quick_gelu, silu, relu, sigmoid. */
float activate(float x, int act) {
  switch (act) {
  case 1: return vz_gelu_erf(x);
  case 2: return vz_gelu_tanh(x);
  case 3: return vz_quick_gelu(x);
  case 4: return vz_silu(x);
  case 5: return vz_relu(x);
  case 6: return vz_sigmoid(x);
  default: return x;
  }
}

__kernel void linear_epilogue(__global float *out, long out_off, __global const float *y,
                              long y_off, __global const float *bias, long bias_off,
                              __global const float *res, long res_off, long4 shape, long4 sy,
                              long4 sb, long4 sr, int act) {
  VZ_LAYOUT_ITEM(shape)
  float v = y[y_off + VZ_AT(sy)];
  if (bias)
    v += bias[bias_off + VZ_AT(sb)];
  v = activate(v, act);
  if (res)
    v += res[res_off + VZ_AT(sr)];
  out[out_off + r * shape.s3 + j] = v;
}

/* ---- where (cond bool/u8; values of 1, 2, 4 or 8 bytes) ---- */

#define WHERE(BYTES, T)                                                                            \
  __kernel void where_##BYTES(__global T *out, long out_off, __global const uchar *c, long c_off,  \
                              __global const T *a, long a_off, __global const T *b, long b_off,    \
                              long4 shape, long4 sc, long4 sa, long4 sb) {                         \
    VZ_LAYOUT_ITEM(shape)                                                                          \
    bool take_a = c[c_off + VZ_AT(sc)] != 0;                                                       \
    out[out_off + r * shape.s3 + j] = take_a ? a[a_off + VZ_AT(sa)] : b[b_off + VZ_AT(sb)];        \
  }
WHERE(1, uchar)
WHERE(2, ushort)
WHERE(4, uint)
WHERE(8, ulong)

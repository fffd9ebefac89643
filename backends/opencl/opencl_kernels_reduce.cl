/* Reductions and scans along one axis of a contiguous tensor seen as
 * [outer, n, inner]: NDRange dimension 0 walks inner positions, dimension 1
 * the outer index; each work-item reduces its own column in order. Softmax
 * and top-k take one row of the last axis per work-item. */

/* max that keeps NaN: a NaN anywhere gives NaN */
float max_nan(float acc, float v) { return (v > acc || isnan(v)) ? v : acc; }

#define REDUCE(NAME, INIT, STEP, FINISH)                                                           \
  __kernel void NAME(__global float *out, long out_off, __global const float *x, long x_off,       \
                     long outer, long n, long inner) {                                             \
    long j = get_global_id(0), o = get_global_id(1);                                               \
    if (j >= inner || o >= outer)                                                                  \
      return;                                                                                      \
    __global const float *p = x + x_off + o * n * inner + j;                                       \
    float acc = INIT;                                                                              \
    for (long k = 1; k < n; k++) {                                                                 \
      float v = p[k * inner];                                                                      \
      acc = STEP;                                                                                  \
    }                                                                                              \
    out[out_off + o * inner + j] = FINISH;                                                         \
  }
REDUCE(reduce_sum, p[0], acc + v, acc)
REDUCE(reduce_mean, p[0], acc + v, acc / (float)n)
REDUCE(reduce_max, p[0], max_nan(acc, v), acc)

/* The first largest entry of each column, NaN counting as the largest. */
__kernel void argmax(__global long *out, long out_off, __global const float *x, long x_off,
                     long outer, long n, long inner) {
  long j = get_global_id(0), o = get_global_id(1);
  if (j >= inner || o >= outer)
    return;
  __global const float *p = x + x_off + o * n * inner + j;
  float best = p[0];
  long at = 0;
  for (long k = 1; k < n && !isnan(best); k++) {
    float v = p[k * inner];
    if (v > best || isnan(v)) {
      best = v;
      at = k;
    }
  }
  out[out_off + o * inner + j] = at;
}

#define CUMSUM(SUFFIX, T, U)                                                                       \
  __kernel void cumsum_##SUFFIX(__global T *out, long out_off, __global const T *x, long x_off,    \
                                long outer, long n, long inner) {                                  \
    long j = get_global_id(0), o = get_global_id(1);                                               \
    if (j >= inner || o >= outer)                                                                  \
      return;                                                                                      \
    __global const T *p = x + x_off + o * n * inner + j;                                           \
    __global T *q = out + out_off + o * n * inner + j;                                             \
    T acc = p[0];                                                                                  \
    q[0] = acc;                                                                                    \
    for (long k = 1; k < n; k++) {                                                                 \
      acc = (T)((U)acc + (U)p[k * inner]);                                                         \
      q[k * inner] = acc;                                                                          \
    }                                                                                              \
  }
CUMSUM(f32, float, float)
CUMSUM(i32, int, uint)
CUMSUM(i64, long, ulong)

/* 8 entries of an additive input from p with a uniform stride (1 along a
 * row, 0 when it broadcasts along it, anything for a view). */
float8 load8_strided(__global const float *p, long stride) {
  if (stride == 1)
    return vload8(0, p);
  if (stride == 0)
    return (float8)(p[0]);
  return (float8)(p[0], p[stride], p[2 * stride], p[3 * stride], p[4 * stride], p[5 * stride],
                  p[6 * stride], p[7 * stride]);
}

/* softmax over row r of x [rows_total, cols] of x * scale + m1 + m2, where
 * m1 and m2 (NULL when absent) broadcast to x seen as `shape` (4-D, right
 * aligned) with strides s1, s2. causal hides column j of row i (i counted
 * within its matrix of shape.s2 rows) when j > i + cols - shape.s2. A row
 * with nothing visible gives zeros (NaN when an entry is NaN). out may be
 * x. One work-item per row, in float8 steps (exp of 8 lanes at once is
 * what makes this fast on CPU devices) and a scalar tail. */
__kernel void softmax_rows(__global float *out, long out_off, __global const float *x, long x_off,
                           __global const float *m1, long m1_off, long4 s1,
                           __global const float *m2, long m2_off, long4 s2, long4 shape,
                           float scale, int causal) {
  long r = get_global_id(0);
  long cols = shape.s3;
  if (r >= shape.s0 * shape.s1 * shape.s2)
    return;
  __global const float *xr = x + x_off + r * cols;
  __global float *yr = out + out_off + r * cols;
  __global const float *a = m1 ? m1 + m1_off + vz_row_offset(r, shape, s1) : 0;
  __global const float *b = m2 ? m2 + m2_off + vz_row_offset(r, shape, s2) : 0;
  long valid = cols;
  if (causal) {
    long i = r % shape.s2;
    valid = i + (cols - shape.s2) + 1;
    valid = valid < 0 ? 0 : valid > cols ? cols : valid;
  }
  /* pass 1: y = x * scale + extras, into out, and its maximum */
  float8 m8 = -INFINITY;
  int8 nan8 = 0;
  long j = 0;
  for (; j + 8 <= valid; j += 8) {
    float8 y = vload8(0, xr + j) * scale;
    if (a)
      y += load8_strided(a + j * s1.s3, s1.s3);
    if (b)
      y += load8_strided(b + j * s2.s3, s2.s3);
    vstore8(y, 0, yr + j);
    m8 = fmax(m8, y);
    nan8 |= isnan(y);
  }
  float4 m4 = fmax(m8.lo, m8.hi);
  float m = fmax(fmax(m4.s0, m4.s1), fmax(m4.s2, m4.s3));
  bool any_nan = any(nan8);
  for (; j < valid; j++) {
    float y = xr[j] * scale;
    if (a)
      y += a[j * s1.s3];
    if (b)
      y += b[j * s2.s3];
    yr[j] = y;
    m = fmax(m, y);
    any_nan |= isnan(y);
  }
  if (m == -INFINITY) { /* fmax skips NaN: every other entry is hidden */
    float fill = any_nan ? NAN : 0.0f;
    for (j = 0; j < valid; j++)
      yr[j] = fill;
    for (j = valid; j < cols; j++)
      yr[j] = 0.0f;
    return;
  }
  /* pass 2: e = exp(y - max) and its sum */
  float8 sum8 = 0.0f;
  for (j = 0; j + 8 <= valid; j += 8) {
    float8 e = exp(vload8(0, yr + j) - m);
    vstore8(e, 0, yr + j);
    sum8 += e;
  }
  float4 s4 = sum8.lo + sum8.hi;
  float sum = (s4.s0 + s4.s1) + (s4.s2 + s4.s3);
  for (; j < valid; j++) {
    float e = exp(yr[j] - m);
    yr[j] = e;
    sum += e;
  }
  /* pass 3: scale by 1 / sum; zeros where hidden */
  float inv = 1.0f / sum;
  for (j = 0; j + 8 <= valid; j += 8)
    vstore8(vload8(0, yr + j) * inv, 0, yr + j);
  for (; j < valid; j++)
    yr[j] *= inv;
  for (j = valid; j < cols; j++)
    yr[j] = 0.0f;
}

/* The k largest entries of each row of n, largest first, lower index first
 * among equals, NaN ranking above everything: insertion into the sorted
 * output, O(n k). */
bool ranks_before(float a, long ia, float b, long ib) {
  bool an = isnan(a), bn = isnan(b);
  if (an != bn)
    return an;
  if (!an && a != b)
    return a > b;
  return ia < ib;
}

__kernel void topk_rows(__global float *values, long values_off, __global long *indices,
                        long indices_off, __global const float *x, long x_off, long rows, long n,
                        long k) {
  long r = get_global_id(0);
  if (r >= rows)
    return;
  __global const float *xr = x + x_off + r * n;
  __global float *v = values + values_off + r * k;
  __global long *ix = indices + indices_off + r * k;
  long filled = 0;
  for (long i = 0; i < n; i++) {
    float e = xr[i];
    if (filled == k && !ranks_before(e, i, v[k - 1], ix[k - 1]))
      continue;
    long at = filled < k ? filled++ : k - 1;
    while (at > 0 && ranks_before(e, i, v[at - 1], ix[at - 1])) {
      v[at] = v[at - 1];
      ix[at] = ix[at - 1];
      at--;
    }
    v[at] = e;
    ix[at] = i;
  }
}

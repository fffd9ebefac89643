/* Normalizations: LayerNorm and RMSNorm over rows of the last axis (one row
 * per work-item, summed in 8 lanes with float8 loads), and L2 along any
 * axis of a tensor seen as [outer, n, inner]. */

/* Sum of p[0..n) (with p[i] - c squared when `squares`), in 8 lanes. */
float row_sum(__global const float *p, long n, float c, int squares) {
  float8 acc = 0.0f;
  long i = 0;
  for (; i + 8 <= n; i += 8) {
    float8 v = vload8(0, p + i);
    if (squares) {
      v -= c;
      v *= v;
    }
    acc += v;
  }
  float s = ((acc.s0 + acc.s1) + (acc.s2 + acc.s3)) + ((acc.s4 + acc.s5) + (acc.s6 + acc.s7));
  for (; i < n; i++) {
    float v = p[i];
    if (squares) {
      v -= c;
      v *= v;
    }
    s += v;
  }
  return s;
}

/* (x - mean) / sqrt(var + eps) * weight + bias (weight, bias may be NULL) */
__kernel void layer_norm_rows(__global float *out, long out_off, __global const float *x,
                              long x_off, __global const float *w, long w_off,
                              __global const float *b, long b_off, long rows, long cols,
                              float eps) {
  long r = get_global_id(0);
  if (r >= rows)
    return;
  __global const float *xr = x + x_off + r * cols;
  __global float *yr = out + out_off + r * cols;
  float mean = row_sum(xr, cols, 0.0f, 0) / (float)cols;
  float var = row_sum(xr, cols, mean, 1) / (float)cols;
  float inv = 1.0f / sqrt(var + eps);
  for (long i = 0; i < cols; i++) {
    float y = (xr[i] - mean) * inv;
    if (w)
      y *= w[w_off + i];
    if (b)
      y += b[b_off + i];
    yr[i] = y;
  }
}

/* x / sqrt(mean(x^2) + eps) * weight (weight may be NULL) */
__kernel void rms_norm_rows(__global float *out, long out_off, __global const float *x, long x_off,
                            __global const float *w, long w_off, long rows, long cols, float eps) {
  long r = get_global_id(0);
  if (r >= rows)
    return;
  __global const float *xr = x + x_off + r * cols;
  __global float *yr = out + out_off + r * cols;
  float inv = 1.0f / sqrt(row_sum(xr, cols, 0.0f, 1) / (float)cols + eps);
  for (long i = 0; i < cols; i++) {
    float y = xr[i] * inv;
    if (w)
      y *= w[w_off + i];
    yr[i] = y;
  }
}

/* x / max(||x||_2, eps) along the axis (torch.nn.functional.normalize; a
 * NaN norm passes through the max) */
__kernel void l2_normalize(__global float *out, long out_off, __global const float *x, long x_off,
                           long outer, long n, long inner, float eps) {
  long j = get_global_id(0), o = get_global_id(1);
  if (j >= inner || o >= outer)
    return;
  __global const float *p = x + x_off + o * n * inner + j;
  __global float *q = out + out_off + o * n * inner + j;
  float s = 0.0f;
  for (long k = 0; k < n; k++)
    s += p[k * inner] * p[k * inner];
  float norm = sqrt(s);
  float d = norm < eps ? eps : norm;
  for (long k = 0; k < n; k++)
    q[k * inner] = p[k * inner] / d;
}

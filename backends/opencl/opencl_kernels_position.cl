/* Position encodings: rotary embedding (RoPE, rotate-half pairs), ALiBi
 * biases and T5's relative position bias, as backends/cpu/cpu_position.c
 * computes them. */

/* powf, cosf and sinf as C libraries give them (correctly rounded in all
 * but rare cases): through doubles where the device has them, so that
 * angles of large positions agree with the CPU's to the last bit or two
 * rather than to OpenCL's few-ulp allowance. */
#ifdef VZ_FP64
float rounded_pow(float x, float y) { return (float)pow((double)x, (double)y); }
float rounded_cos(float x) { return (float)cos((double)x); }
float rounded_sin(float x) { return (float)sin((double)x); }
#else
float rounded_pow(float x, float y) { return pow(x, y); }
float rounded_cos(float x) { return cos(x); }
float rounded_sin(float x) { return sin(x); }
#endif

/* x [rows, D] (rows = ... x S), positions [S] -> out: pairs (i, i + r/2) of
 * the first r entries rotated by pos * theta^(-2i/r); the rest copied. */
__kernel void rope(__global float *out, long out_off, __global const float *x, long x_off,
                   __global const int *pos, long pos_off, int pos64, long rows, long S, long D,
                   int rotary_dim, float theta) {
  long i = get_global_id(0), row = get_global_id(1);
  if (i >= D || row >= rows)
    return;
  __global const float *xr = x + x_off + row * D;
  int half_dim = rotary_dim / 2;
  float y;
  if (i < rotary_dim) {
    long pair = i < half_dim ? i : i - half_dim;
    float exponent = (float)(2 * pair) / (float)rotary_dim;
    float angle_step = 1.0f / rounded_pow(theta, exponent);
    float angle = (float)vz_read_id(pos, pos64, pos_off + row % S) * angle_step;
    float c = rounded_cos(angle), s = rounded_sin(angle);
    float a = xr[pair], b = xr[pair + half_dim];
    y = i < half_dim ? a * c - b * s : b * c + a * s;
  } else {
    y = xr[i];
  }
  out[out_off + row * D + i] = y;
}

/* BLOOM's slope of head h of `heads` (ops/op_position.c's series, whose
 * terms are powers of 2: base^(h+1) = 2^(-8 (h+1) / pow2)). */
float alibi_slope(int h, int heads) {
  int pow2 = 1;
  while (pow2 * 2 <= heads)
    pow2 *= 2;
#ifdef VZ_FP64
  double e = h < pow2 ? -8.0 * (h + 1) / pow2 : -4.0 * (2 * (h - pow2) + 1) / pow2;
  return (float)exp2(e);
#else
  float e = h < pow2 ? -8.0f * (float)(h + 1) / (float)pow2
                     : -4.0f * (float)(2 * (h - pow2) + 1) / (float)pow2;
  return exp2(e);
#endif
}

/* out [B, heads, 1, K] = slope_h * key_positions[b, k] (f32, i32 or i64:
 * pos_dt 0, 5, 4 as vz_dtype) */
__kernel void alibi(__global float *out, long out_off, __global const uchar *pos, long pos_off,
                    int pos_dt, long batch, int heads, long K) {
  long k = get_global_id(0), row = get_global_id(1);
  if (k >= K || row >= batch * heads)
    return;
  long b = row / heads;
  long at = pos_off + b * K + k;
  float p = pos_dt == 0   ? ((__global const float *)pos)[at]
            : pos_dt == 5 ? (float)((__global const int *)pos)[at]
                          : (float)((__global const long *)pos)[at];
  out[out_off + row * K + k] = alibi_slope((int)(row % heads), heads) * p;
}

/* The bucket T5 puts a relative position (key - query) in (ops/op_position.c;
 * span = log(max_distance / max_exact), computed by the host). */
int t5_bucket(long relative, int bidirectional, int num_buckets, float span) {
  int bucket = 0;
  long n;
  if (bidirectional) {
    num_buckets /= 2;
    if (relative > 0)
      bucket += num_buckets;
    n = relative < 0 ? -relative : relative;
  } else {
    n = relative < 0 ? -relative : 0;
  }
  int max_exact = num_buckets / 2;
  if (n < max_exact)
    return bucket + (int)n;
  float ratio = log((float)n / (float)max_exact);
  long large = max_exact + (long)(ratio / span * (float)(num_buckets - max_exact));
  if (large > num_buckets - 1)
    large = num_buckets - 1;
  return bucket + (int)large;
}

/* out [1, H, Q, K] = table[bucket(k - (offset + q)), h] */
__kernel void t5_bias(__global float *out, long out_off, __global const float *table,
                      long table_off, long H, long Q, long K, long offset, int bidirectional,
                      int num_buckets, float span) {
  long k = get_global_id(0), row = get_global_id(1);
  if (k >= K || row >= H * Q)
    return;
  long h = row / Q, q = row % Q;
  int b = t5_bucket(k - (offset + q), bidirectional, num_buckets, span);
  out[out_off + row * K + k] = table[table_off + (long)b * H + h];
}

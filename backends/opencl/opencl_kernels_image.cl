/* Image-shaped ops: the im2col step of conv2d (its GEMM is the gemm
 * family's) and torch's bicubic resize. */

/* cols [B * OH * OW, C * KH * KW]: the receptive field of each output pixel
 * of each image, in (channel, ky, kx) order (the weight's), zeros where it
 * falls outside the input. NDRange: dimension 0 over the K entries of a
 * row, dimension 1 over the rows. */
__kernel void im2col(__global float *cols, __global const float *x, long x_off, long batch, long C,
                     long H, long W, long KH, long KW, long sh, long sw, long ph, long pw, long OH,
                     long OW) {
  long kk = get_global_id(0), row = get_global_id(1);
  long K = C * KH * KW, N = OH * OW;
  if (kk >= K || row >= batch * N)
    return;
  long b = row / N, n = row % N;
  long oy = n / OW, ox = n % OW;
  long c = kk / (KH * KW), rest = kk % (KH * KW);
  long ky = rest / KW, kx = rest % KW;
  long iy = oy * sh - ph + ky, ix = ox * sw - pw + kx;
  float v = 0.0f;
  if (iy >= 0 && iy < H && ix >= 0 && ix < W)
    v = x[x_off + ((b * C + c) * H + iy) * W + ix];
  cols[row * K + kk] = v;
}

/* ---- bicubic: as backends/cpu/cpu_image.c, step for step ---- */

float cubic1(float x, float a) { return ((a + 2) * x - (a + 3)) * x * x + 1; }
float cubic2(float x, float a) { return fma(fma(a, x, -5 * a), x, 8 * a) * x - 4 * a; }

/* The 4 source indices (clamped to the border) and weights of output
 * position i along an axis of `in` source pixels. */
void taps(long i, long in, float scale, int align_corners, long *index, float *weight) {
  const float a = -0.75f;
  float real = align_corners ? scale * (float)i : fma(scale, (float)i + 0.5f, -0.5f);
  long base = (long)floor(real);
  if (base > in - 1)
    base = in - 1;
  float t = real - (float)base;
  t = t < 0.0f ? 0.0f : (t > 1.0f ? 1.0f : t);
  weight[0] = cubic2(t + 1.0f, a);
  weight[1] = cubic1(t, a);
  weight[2] = cubic1(1.0f - t, a);
  weight[3] = cubic2((1.0f - t) + 1.0f, a);
  for (int j = 0; j < 4; j++) {
    long k = base - 1 + j;
    index[j] = k < 0 ? 0 : (k > in - 1 ? in - 1 : k);
  }
}

/* out [planes, OH, OW] from x [planes, H, W]: each of the 4 source rows is
 * summed along x first, then those along y, both left to right (the CPU's
 * separable passes, which give the same sums). */
__kernel void bicubic(__global float *out, long out_off, __global const float *x, long x_off,
                      long planes, long H, long W, long OH, long OW, float scale_h, float scale_w,
                      int align_corners) {
  long ox = get_global_id(0), row = get_global_id(1);
  if (ox >= OW || row >= planes * OH)
    return;
  long p = row / OH, oy = row % OH;
  long iy[4], ix[4];
  float wy[4], wx[4];
  taps(oy, H, scale_h, align_corners, iy, wy);
  taps(ox, W, scale_w, align_corners, ix, wx);
  float rows[4];
  for (int r = 0; r < 4; r++) {
    __global const float *src = x + x_off + (p * H + iy[r]) * W;
    float v = src[ix[0]] * wx[0];
    v += src[ix[1]] * wx[1];
    v += src[ix[2]] * wx[2];
    v += src[ix[3]] * wx[3];
    rows[r] = v;
  }
  float v = rows[0] * wy[0];
  v += rows[1] * wy[1];
  v += rows[2] * wy[2];
  v += rows[3] * wy[3];
  out[out_off + row * OW + ox] = v;
}

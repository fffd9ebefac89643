/* CPU kernels for the image ops: conv2d as im2col plus a oneDNN GEMM, and
 * torch's bicubic resize. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include <oneapi/dnnl/dnnl.h>

#include "backends/cpu/cpu.h"

bool vz_cpu_image_supports(const vz_op_call *call) {
  for (int i = 0; i < call->n_inputs; i++)
    if (call->inputs[i] && call->inputs[i]->dtype != VZ_F32)
      return false;
  return call->op == VZ_OP_CONV2D || call->op == VZ_OP_BICUBIC;
}

/* ---- conv2d ----
 *
 * Per image, out [O, OH*OW] = weight [O, K] x cols^T, with K = C*KH*KW and
 * cols [OH*OW, K] holding one output pixel's receptive field per row in
 * (channel, ky, kx) order, the order of the weight's rows. Each row is built
 * from runs of KW input pixels that lie next to each other in memory, so
 * the patch embedding (stride = kernel, no padding) is a sequence of short
 * memcpys. A 1x1 kernel with stride 1 and no padding uses the input as is. */

/* Fills cols for one image: rows [first, last) of the OH*OW output pixels. */
static void im2col_rows(const float *x, int64_t C, int64_t H, int64_t W, int64_t KH, int64_t KW,
                        int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t OW, float *cols,
                        int64_t n) {
  const int64_t K = C * KH * KW;
  const int64_t oy = n / OW, ox = n % OW;
  const int64_t y0 = oy * sh - ph, x0 = ox * sw - pw;
  /* The columns kx in [kx_lo, kx_hi) fall inside the input row. */
  int64_t kx_lo = x0 < 0 ? -x0 : 0;
  int64_t kx_hi = W - x0 < KW ? W - x0 : KW;
  if (kx_hi < kx_lo)
    kx_hi = kx_lo;
  float *row = cols + n * K;
  for (int64_t c = 0; c < C; c++) {
    for (int64_t ky = 0; ky < KH; ky++) {
      float *dst = row + (c * KH + ky) * KW;
      const int64_t iy = y0 + ky;
      if (iy < 0 || iy >= H || kx_hi == kx_lo) {
        memset(dst, 0, (size_t)KW * sizeof *dst);
        continue;
      }
      const float *src = x + (c * H + iy) * W + x0;
      if (kx_lo > 0)
        memset(dst, 0, (size_t)kx_lo * sizeof *dst);
      memcpy(dst + kx_lo, src + kx_lo, (size_t)(kx_hi - kx_lo) * sizeof *dst);
      if (kx_hi < KW)
        memset(dst + kx_hi, 0, (size_t)(KW - kx_hi) * sizeof *dst);
    }
  }
}

/* dnnl_sgemm with the OpenMP thread count set to the backend's for the call
 * and restored afterwards (oneDNN sizes its parallel regions from it). */
static vz_status sgemm(const vz_cpu *cpu, char transa, char transb, int64_t M, int64_t N, int64_t K,
                       const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
                       float *C, int64_t ldc) {
  int saved = omp_get_max_threads();
  omp_set_num_threads(cpu->threads);
  dnnl_status_t st = dnnl_sgemm(transa, transb, M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc);
  omp_set_num_threads(saved);
  if (st != dnnl_success)
    return vz_fail(VZ_ERR_BACKEND, "oneDNN sgemm (%lld x %lld x %lld) failed with status %d",
                   (long long)M, (long long)N, (long long)K, (int)st);
  return VZ_OK;
}

vz_status vz_cpu_conv2d(const vz_cpu *cpu, const vz_op_call *call) {
  const vz_tensor *x = call->inputs[0], *w = call->inputs[1];
  const vz_tensor *bias = call->n_inputs > 2 ? call->inputs[2] : NULL;
  vz_tensor *out = call->outputs[0];
  const int64_t B = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
  const int64_t O = w->shape[0], KH = w->shape[2], KW = w->shape[3];
  const int64_t OH = out->shape[2], OW = out->shape[3];
  const int64_t sh = call->attrs.conv2d.stride_h, sw = call->attrs.conv2d.stride_w;
  const int64_t ph = call->attrs.conv2d.pad_h, pw = call->attrs.conv2d.pad_w;
  const int64_t N = OH * OW;
  const float *xd = vz_cpu_data(x), *wd = vz_cpu_data(w);
  const float *bd = bias ? vz_cpu_data(bias) : NULL;
  float *od = vz_cpu_data(out);

  if (C == 0 || KH == 0 || KW == 0) { /* an empty sum: the bias alone */
    for (int64_t i = 0; i < B * O; i++)
      for (int64_t j = 0; j < N; j++)
        od[i * N + j] = bd ? bd[i % O] : 0.0f;
    return VZ_OK;
  }
  if (KH > INT64_MAX / KW || C > INT64_MAX / (KH * KW))
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "conv2d: kernel size overflows");
  const int64_t K = C * KH * KW;
  const bool direct = KH == 1 && KW == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0;
  float *cols = NULL;
  if (!direct) {
    if (N > 0 && (uint64_t)K > SIZE_MAX / sizeof(float) / (uint64_t)N)
      return vz_fail(VZ_ERR_OUT_OF_MEMORY, "conv2d: im2col buffer of %lld x %lld overflows",
                     (long long)N, (long long)K);
    size_t bytes = (size_t)N * (size_t)K * sizeof(float);
    cols = malloc(bytes ? bytes : 1);
    if (!cols)
      return vz_fail(VZ_ERR_OUT_OF_MEMORY, "conv2d: cannot allocate %zu bytes for im2col", bytes);
  }
  vz_status st = VZ_OK;
  for (int64_t b = 0; b < B && st == VZ_OK; b++) {
    const float *xb = xd + b * C * H * W;
    float *ob = od + b * O * N;
    float beta = 0.0f;
    if (bd) {
#pragma omp parallel for num_threads(vz_cpu_threads_for(cpu, O *N)) schedule(static)
      for (int64_t o = 0; o < O; o++)
        for (int64_t j = 0; j < N; j++)
          ob[o * N + j] = bd[o];
      beta = 1.0f;
    }
    if (direct) {
      st = sgemm(cpu, 'N', 'N', O, N, K, wd, K, xb, N, beta, ob, N);
      continue;
    }
#pragma omp parallel for num_threads(vz_cpu_threads_for(cpu, N *K)) schedule(static)
    for (int64_t n = 0; n < N; n++)
      im2col_rows(xb, C, H, W, KH, KW, sh, sw, ph, pw, OW, cols, n);
    st = sgemm(cpu, 'N', 'T', O, N, K, wd, K, cols, K, beta, ob, N);
  }
  free(cols);
  return st;
}

/* ---- bicubic ----
 *
 * torch.nn.functional.interpolate(mode="bicubic", antialias=False) on the
 * CPU, step by step in f32: scale = in/out (align_corners=False) or
 * (in-1)/(out-1) (True; 0 for one output pixel); source coordinate
 * (dst + 0.5) * scale - 0.5 or dst * scale, not clamped; index = floor,
 * t = the fraction; Keys' cubic with A = -0.75 for the 4 taps at index-1 ..
 * index+2, each clamped to the border. torch sums each tap row along x
 * first, then those 4 row values along y, both left to right; doing the x
 * pass over the whole image first (separable) gives the same sums.
 *
 * torch's x86-64 build (the AVX2 / AVX-512 kernels every current processor
 * runs) has its compiler fuse some of these multiply-adds. The coordinate
 * and the weights below use fmaf exactly where that reproduces torch 2.x's
 * weights bit for bit (checked against impulse responses of
 * F.interpolate); without it, a coordinate such as 6.5 * (16/26) - 0.5
 * lands one ulp away and results differ by up to ~2e-6. The sums stay
 * plain f32 and may differ from torch's in the last bit or two. */

typedef struct cubic_taps {
  int64_t index[4];
  float weight[4];
} cubic_taps;

/* ((a + 2) x - (a + 3)) x x + 1, for |x| <= 1 */
static inline float cubic1(float x, float a) { return ((a + 2) * x - (a + 3)) * x * x + 1; }

/* ((a x - 5 a) x + 8 a) x - 4 a, for 1 <= |x| <= 2; torch fuses the first two
 * steps. */
static inline float cubic2(float x, float a) {
  return fmaf(fmaf(a, x, -5 * a), x, 8 * a) * x - 4 * a;
}

static void compute_taps(int64_t in, int64_t out, bool align_corners, cubic_taps *taps) {
  float scale;
  if (align_corners)
    scale = out > 1 ? (float)(in - 1) / (float)(out - 1) : 0.0f;
  else
    scale = (float)in / (float)out;
  const float a = -0.75f;
  for (int64_t i = 0; i < out; i++) {
    float real = align_corners ? scale * (float)i : fmaf(scale, (float)i + 0.5f, -0.5f);
    int64_t index = (int64_t)floorf(real);
    if (index > in - 1)
      index = in - 1;
    float t = real - (float)index;
    t = t < 0.0f ? 0.0f : (t > 1.0f ? 1.0f : t);
    taps[i].weight[0] = cubic2(t + 1.0f, a);
    taps[i].weight[1] = cubic1(t, a);
    taps[i].weight[2] = cubic1(1.0f - t, a);
    taps[i].weight[3] = cubic2((1.0f - t) + 1.0f, a);
    for (int j = 0; j < 4; j++) {
      int64_t k = index - 1 + j;
      taps[i].index[j] = k < 0 ? 0 : (k > in - 1 ? in - 1 : k);
    }
  }
}

vz_status vz_cpu_bicubic(const vz_cpu *cpu, const vz_op_call *call) {
  const vz_tensor *x = call->inputs[0];
  vz_tensor *out = call->outputs[0];
  const int64_t planes = x->shape[0] * x->shape[1];
  const int64_t H = x->shape[2], W = x->shape[3];
  const int64_t OH = out->shape[2], OW = out->shape[3];
  const bool ac = call->attrs.bicubic.align_corners;
  if (planes == 0 || H == 0 || W == 0)
    return VZ_OK; /* nothing to read (an empty output is never run) */
  /* The x pass of one plane ([H, OW]) per plane, and the taps of both axes. */
  if ((uint64_t)H > SIZE_MAX / sizeof(float) / (uint64_t)OW / (uint64_t)planes)
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "bicubic: scratch of %lld planes of %lld x %lld overflows",
                   (long long)planes, (long long)H, (long long)OW);
  size_t tmp_bytes = (size_t)planes * (size_t)H * (size_t)OW * sizeof(float);
  size_t taps_bytes = (size_t)(OH + OW) * sizeof(cubic_taps);
  float *tmp = malloc(tmp_bytes ? tmp_bytes : 1);
  cubic_taps *taps = malloc(taps_bytes);
  if (!tmp || !taps) {
    free(tmp);
    free(taps);
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "bicubic: cannot allocate %zu bytes of scratch",
                   tmp_bytes + taps_bytes);
  }
  cubic_taps *ty = taps, *tx = taps + OH;
  compute_taps(H, OH, ac, ty);
  compute_taps(W, OW, ac, tx);
  const float *xd = vz_cpu_data(x);
  float *od = vz_cpu_data(out);
  const int64_t rows_in = planes * H, rows_out = planes * OH;
#pragma omp parallel for num_threads(vz_cpu_threads_for(cpu, rows_in *OW * 8)) schedule(static)
  for (int64_t r = 0; r < rows_in; r++) {
    const float *src = xd + r * W;
    float *dst = tmp + r * OW;
    for (int64_t j = 0; j < OW; j++) {
      const cubic_taps *t = &tx[j];
      float v = src[t->index[0]] * t->weight[0];
      v += src[t->index[1]] * t->weight[1];
      v += src[t->index[2]] * t->weight[2];
      v += src[t->index[3]] * t->weight[3];
      dst[j] = v;
    }
  }
#pragma omp parallel for num_threads(vz_cpu_threads_for(cpu, rows_out *OW * 8)) schedule(static)
  for (int64_t r = 0; r < rows_out; r++) {
    const int64_t p = r / OH, i = r % OH;
    const cubic_taps *t = &ty[i];
    const float *r0 = tmp + (p * H + t->index[0]) * OW, *r1 = tmp + (p * H + t->index[1]) * OW;
    const float *r2 = tmp + (p * H + t->index[2]) * OW, *r3 = tmp + (p * H + t->index[3]) * OW;
    float *dst = od + r * OW;
    for (int64_t j = 0; j < OW; j++) {
      float v = r0[j] * t->weight[0];
      v += r1[j] * t->weight[1];
      v += r2[j] * t->weight[2];
      v += r3[j] * t->weight[3];
      dst[j] = v;
    }
  }
  free(tmp);
  free(taps);
  return VZ_OK;
}

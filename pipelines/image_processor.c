/* Pillow's bicubic resize on 8-bit RGB, bit for bit, and the BLIP-2 image
 * processor built on it.
 *
 * The algorithm is that of Pillow's libImaging/Resample.c (ImagingResample
 * with the BICUBIC filter, 8 bits per channel), reached from Image.resize
 * with box = (0, 0, width, height) and reducing_gap = None (Image.py):
 * - for each output coordinate, center = (i + 0.5) * scale with
 *   scale = in / out; the kernel is widened by filterscale = max(scale, 1)
 *   (antialiasing when reducing), support = 2 * filterscale; the taps run from
 *   (int)(center - support + 0.5) to (int)(center + support + 0.5), clipped to
 *   the image, each weighted by bicubic((j - center + 0.5) / filterscale) with
 *   a = -0.5, and normalized by their sum (all in double);
 * - weights become 22-bit fixed point (PRECISION_BITS = 32 - 8 - 2), rounded
 *   half away from zero; each sum starts at 1 << 21 (rounding) and is clamped
 *   to 0..255 after >> 22;
 * - the horizontal pass runs first (over the rows the vertical pass needs)
 *   and its 8-bit result feeds the vertical pass, except that Pillow 13 runs
 *   the vertical pass first when the height shrinks by more than twice what
 *   the width shrinks (Resample.c since python-pillow/Pillow#9549; found by
 *   testing against Pillow 13.0.0, which older Pillow does not do); a pass
 *   whose size does not change is skipped (it would be the identity).
 * The sums are accumulated in 64 bits: the same values as Pillow's 32-bit
 * sums, which never overflow for these kernels, without undefined behaviour
 * on hostile sizes. */
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ops/internal.h"
#include "vlzoo/image.h"

/* The weights must be computed with the same double roundings as Pillow's:
 * no fused multiply-add contraction. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#define PRECISION_BITS (32 - 8 - 2)

const float VZ_CLIP_MEAN[3] = {0.48145466f, 0.4578275f, 0.40821073f};
const float VZ_CLIP_STD[3] = {0.26862954f, 0.26130258f, 0.27577711f};

static double bicubic(double x) {
  const double a = -0.5;
  if (x < 0.0)
    x = -x;
  if (x < 1.0)
    return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0)
    return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

/* The taps of one pass: for output i, input first[i] .. first[i]+count[i]-1
 * with weights k[i * ksize ..]. */
typedef struct taps {
  int ksize;
  int *first, *count;
  int32_t *k;
} taps;

static void taps_free(taps *t) {
  free(t->first);
  free(t->count);
  free(t->k);
}

static vz_status taps_make(int in_size, int out_size, taps *t) {
  memset(t, 0, sizeof *t);
  double scale = (double)((float)in_size) / out_size;
  double filterscale = scale < 1.0 ? 1.0 : scale;
  double support = 2.0 * filterscale;
  double ksize_d = ceil(support) * 2 + 1;
  if (ksize_d > INT_MAX || (size_t)ksize_d > SIZE_MAX / sizeof(double) / (size_t)out_size)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "resize: %d -> %d needs too many weights", in_size,
                   out_size);
  int ksize = (int)ksize_d;
  double *w = malloc((size_t)ksize * sizeof *w);
  t->first = malloc((size_t)out_size * sizeof *t->first);
  t->count = malloc((size_t)out_size * sizeof *t->count);
  t->k = malloc((size_t)out_size * (size_t)ksize * sizeof *t->k);
  if (!w || !t->first || !t->count || !t->k) {
    free(w);
    taps_free(t);
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "resize: out of memory for %d x %d weights", out_size,
                   ksize);
  }
  t->ksize = ksize;
  double ss = 1.0 / filterscale;
  for (int i = 0; i < out_size; i++) {
    double center = (i + 0.5) * scale;
    int lo = (int)(center - support + 0.5);
    if (lo < 0)
      lo = 0;
    int hi = (int)(center + support + 0.5);
    if (hi > in_size)
      hi = in_size;
    int n = hi - lo;
    double sum = 0.0;
    for (int j = 0; j < n; j++) {
      w[j] = bicubic((j + lo - center + 0.5) * ss);
      sum += w[j];
    }
    int32_t *k = t->k + (size_t)i * (size_t)ksize;
    for (int j = 0; j < ksize; j++) {
      double v = j < n ? (sum != 0.0 ? w[j] / sum : w[j]) : 0.0;
      k[j] = v < 0 ? (int32_t)(-0.5 + v * (1 << PRECISION_BITS))
                   : (int32_t)(0.5 + v * (1 << PRECISION_BITS));
    }
    t->first[i] = lo;
    t->count[i] = n;
  }
  free(w);
  return VZ_OK;
}

static inline uint8_t clip8(int64_t acc) {
  if (acc < 0)
    return 0;
  acc >>= PRECISION_BITS;
  return (uint8_t)(acc > 255 ? 255 : acc);
}

/* rows [y0, y1) of `in` (width in_w), resampled horizontally into `out`
 * (width out_w, rows from 0). */
static void pass_horizontal(const uint8_t *in, int in_w, int y0, int y1, const taps *t, int out_w,
                            uint8_t *out) {
  for (int y = y0; y < y1; y++) {
    const uint8_t *src = in + (size_t)y * (size_t)in_w * 3;
    uint8_t *dst = out + (size_t)(y - y0) * (size_t)out_w * 3;
    for (int x = 0; x < out_w; x++) {
      const int32_t *k = t->k + (size_t)x * (size_t)t->ksize;
      const uint8_t *p = src + (size_t)t->first[x] * 3;
      int64_t r = 1 << (PRECISION_BITS - 1), g = r, b = r;
      for (int j = 0; j < t->count[x]; j++, p += 3) {
        r += (int64_t)p[0] * k[j];
        g += (int64_t)p[1] * k[j];
        b += (int64_t)p[2] * k[j];
      }
      dst[3 * x] = clip8(r);
      dst[3 * x + 1] = clip8(g);
      dst[3 * x + 2] = clip8(b);
    }
  }
}

/* `in` (width w, its row 0 being source row `offset`) resampled vertically
 * into out_h rows; acc holds w*3 sums. */
static void pass_vertical(const uint8_t *in, int w, int offset, const taps *t, int out_h,
                          uint8_t *out, int64_t *acc) {
  size_t row = (size_t)w * 3;
  for (int y = 0; y < out_h; y++) {
    const int32_t *k = t->k + (size_t)y * (size_t)t->ksize;
    for (size_t i = 0; i < row; i++)
      acc[i] = 1 << (PRECISION_BITS - 1);
    for (int j = 0; j < t->count[y]; j++) {
      const uint8_t *src = in + (size_t)(t->first[y] - offset + j) * row;
      int64_t kj = k[j];
      for (size_t i = 0; i < row; i++)
        acc[i] += (int64_t)src[i] * kj;
    }
    uint8_t *dst = out + (size_t)y * row;
    for (size_t i = 0; i < row; i++)
      dst[i] = clip8(acc[i]);
  }
}

vz_status vz_image_resize_bicubic(const vz_image *in, int out_w, int out_h, vz_image **out) {
  if (!out)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "resize: NULL output");
  *out = NULL;
  if (!in || !in->pixels || in->width <= 0 || in->height <= 0)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "resize: no input image");
  if (out_w <= 0 || out_h <= 0)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "resize: target size %dx%d is not positive", out_w,
                   out_h);
  vz_image *res;
  vz_status st = vz_image_new(out_w, out_h, &res);
  if (st != VZ_OK)
    return vz_fail_context(st, "resize: ");
  int need_h = out_w != in->width, need_v = out_h != in->height;
  if (!need_h && !need_v) {
    memcpy(res->pixels, in->pixels, (size_t)in->width * (size_t)in->height * 3);
    *out = res;
    return VZ_OK;
  }

  taps th = {0}, tv = {0};
  uint8_t *tmp = NULL;
  int64_t *acc = NULL;
  st = taps_make(in->height, out_h, &tv);
  if (st == VZ_OK && need_h)
    st = taps_make(in->width, out_w, &th);
  if (st != VZ_OK)
    goto fail;
  /* Pillow >= 13 runs the vertical pass first when the height shrinks by
   * more than twice what the width shrinks (an enlarged width counts as a
   * negative reduction); the order changes the 8-bit intermediate. */
  bool vertical_first = need_h && need_v && out_h < in->height &&
                        (long long)in->height - out_h > 2 * ((long long)in->width - out_w);
  if (need_v) {
    acc = malloc((size_t)(vertical_first ? in->width : out_w) * 3 * sizeof *acc);
    if (!acc) {
      st = vz_fail(VZ_ERR_OUT_OF_MEMORY, "resize: out of memory for the vertical pass");
      goto fail;
    }
  }
  if (!need_v) {
    pass_horizontal(in->pixels, in->width, 0, in->height, &th, out_w, res->pixels);
  } else if (!need_h) {
    pass_vertical(in->pixels, in->width, 0, &tv, out_h, res->pixels, acc);
  } else if (vertical_first) {
    tmp = malloc((size_t)in->width * (size_t)out_h * 3);
    if (!tmp) {
      st = vz_fail(VZ_ERR_OUT_OF_MEMORY, "resize: out of memory for the vertical pass");
      goto fail;
    }
    pass_vertical(in->pixels, in->width, 0, &tv, out_h, tmp, acc);
    pass_horizontal(tmp, in->width, 0, out_h, &th, out_w, res->pixels);
  } else {
    /* Only the source rows the vertical pass reads. */
    int y_first = tv.first[0];
    int y_last = tv.first[out_h - 1] + tv.count[out_h - 1];
    tmp = malloc((size_t)(y_last - y_first) * (size_t)out_w * 3);
    if (!tmp) {
      st = vz_fail(VZ_ERR_OUT_OF_MEMORY, "resize: out of memory for the horizontal pass");
      goto fail;
    }
    pass_horizontal(in->pixels, in->width, y_first, y_last, &th, out_w, tmp);
    pass_vertical(tmp, out_w, y_first, &tv, out_h, res->pixels, acc);
  }
  free(acc);
  free(tmp);
  taps_free(&th);
  taps_free(&tv);
  *out = res;
  return VZ_OK;

fail:
  free(acc);
  free(tmp);
  taps_free(&th);
  taps_free(&tv);
  vz_image_free(res);
  return st;
}

/* ---- BLIP-2 image processor ---- */

static vz_status check_norm(const float *mean, const float *std) {
  for (int c = 0; c < 3; c++)
    if (!(std[c] != 0.0f) || !isfinite(std[c]) || !isfinite(mean[c]))
      return vz_fail(VZ_ERR_INVALID_ARGUMENT,
                     "image_to_tensor: mean/std of channel %d (%g, %g) are not usable", c,
                     (double)mean[c], (double)std[c]);
  return VZ_OK;
}

/* Resizes one image to size x size and writes its [3, size, size] values. */
static vz_status normalize_into(const vz_image *img, int size, const float *mean, const float *std,
                                float *dst) {
  vz_image *resized = NULL;
  const vz_image *src = img;
  if (img->width != size || img->height != size) {
    vz_status st = vz_image_resize_bicubic(img, size, size, &resized);
    if (st != VZ_OK)
      return st;
    src = resized;
  }
  /* torchvision: ToTensor divides by 255 in f32, Normalize subtracts and
   * divides in f32 (Hugging Face's float64 rescale rounds to the same). */
  float lut[3][256];
  for (int c = 0; c < 3; c++)
    for (int v = 0; v < 256; v++)
      lut[c][v] = ((float)v / 255.0f - mean[c]) / std[c];
  size_t plane = (size_t)size * (size_t)size;
  const uint8_t *p = src->pixels;
  for (size_t i = 0; i < plane; i++, p += 3) {
    dst[i] = lut[0][p[0]];
    dst[plane + i] = lut[1][p[1]];
    dst[2 * plane + i] = lut[2][p[2]];
  }
  vz_image_free(resized);
  return VZ_OK;
}

vz_status vz_image_batch_to_tensor(const vz_image *const *imgs, int n, int size,
                                   const float mean[3], const float std[3], vz_backend *be,
                                   vz_tensor **out) {
  if (!out)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "image_to_tensor: NULL output");
  *out = NULL;
  if (!imgs || n <= 0)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "image_to_tensor: no images (n = %d)", n);
  if (!be)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "image_to_tensor: NULL backend");
  if (size <= 0 || (long long)size * size > VZ_IMAGE_MAX_PIXELS)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "image_to_tensor: size %d is out of range", size);
  if (!mean)
    mean = VZ_CLIP_MEAN;
  if (!std)
    std = VZ_CLIP_STD;
  vz_status st = check_norm(mean, std);
  if (st != VZ_OK)
    return st;
  for (int i = 0; i < n; i++)
    if (!imgs[i] || !imgs[i]->pixels || imgs[i]->width <= 0 || imgs[i]->height <= 0)
      return vz_fail(VZ_ERR_INVALID_ARGUMENT, "image_to_tensor: image %d is empty", i);
  size_t per_image = (size_t)3 * (size_t)size * (size_t)size;
  if (per_image > SIZE_MAX / sizeof(float) / (size_t)n)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "image_to_tensor: %d images of %d x %d are too many", n,
                   size, size);
  int64_t shape[4] = {n, 3, size, size};
  vz_tensor *t;
  st = vz_tensor_new(be, VZ_F32, 4, shape, &t);
  if (st != VZ_OK)
    return st;
  /* Write in place when the tensor lives in host memory, else stage. */
  float *host = vz_tensor_host_data(t);
  float *staging = NULL;
  if (!host) {
    staging = malloc(per_image * (size_t)n * sizeof(float));
    if (!staging) {
      vz_tensor_free(t);
      return vz_fail(VZ_ERR_OUT_OF_MEMORY, "image_to_tensor: out of memory");
    }
    host = staging;
  }
  for (int i = 0; i < n && st == VZ_OK; i++) {
    st = normalize_into(imgs[i], size, mean, std, host + (size_t)i * per_image);
    if (st != VZ_OK && n > 1)
      st = vz_fail_context(st, "image %d: ", i);
  }
  if (st == VZ_OK && staging)
    st = vz_tensor_write(t, staging, per_image * (size_t)n * sizeof(float));
  free(staging);
  if (st != VZ_OK) {
    vz_tensor_free(t);
    return st;
  }
  *out = t;
  return VZ_OK;
}

vz_status vz_image_to_tensor(const vz_image *img, int size, const float mean[3], const float std[3],
                             vz_backend *be, vz_tensor **out) {
  const vz_image *one[1] = {img};
  return vz_image_batch_to_tensor(one, 1, size, mean, std, be, out);
}

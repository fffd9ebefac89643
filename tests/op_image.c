/* conv2d against a direct convolution, bicubic against a plain 4x4-tap
 * loop and against torch's interpolate (tests/fixtures/ops, read from
 * $VLZOO_FIXTURES_DIR/ops; see tests/fixtures/make_op_references.py). */
#include <math.h>
#include <string.h>
#include <time.h>

#include "tests/test_util.h"

/* ---- conv2d ---- */

/* Direct convolution in double, one output at a time. */
static void conv_reference(const float *x, const float *w, const float *bias, int64_t B, int64_t C,
                           int64_t H, int64_t W, int64_t O, int64_t KH, int64_t KW, int sh, int sw,
                           int ph, int pw, int64_t OH, int64_t OW, float *out, int64_t o_step) {
  for (int64_t b = 0; b < B; b++)
    for (int64_t o = 0; o < O; o += o_step)
      for (int64_t oy = 0; oy < OH; oy++)
        for (int64_t ox = 0; ox < OW; ox++) {
          double acc = bias ? bias[o] : 0.0;
          for (int64_t c = 0; c < C; c++)
            for (int64_t ky = 0; ky < KH; ky++)
              for (int64_t kx = 0; kx < KW; kx++) {
                int64_t iy = oy * sh - ph + ky, ix = ox * sw - pw + kx;
                if (iy < 0 || iy >= H || ix < 0 || ix >= W)
                  continue;
                acc += (double)x[((b * C + c) * H + iy) * W + ix] *
                       w[((o * C + c) * KH + ky) * KW + kx];
              }
          out[((b * O + o) * OH + oy) * OW + ox] = (float)acc;
        }
}

/* Runs one convolution and compares every o_step-th output channel. */
static void check_conv(vz_backend *be, const char *what, int64_t B, int64_t C, int64_t H, int64_t W,
                       int64_t O, int64_t KH, int64_t KW, int sh, int sw, int ph, int pw,
                       bool with_bias, int64_t o_step) {
  const int64_t OH = (H + 2 * ph - KH) / sh + 1, OW = (W + 2 * pw - KW) / sw + 1;
  float *x = test_random_floats(B * C * H * W, -1.0f, 1.0f);
  float *w = test_random_floats(O * C * KH * KW, -0.5f, 0.5f);
  float *bias = test_random_floats(O, -1.0f, 1.0f);
  int64_t xs[4] = {B, C, H, W}, ws[4] = {O, C, KH, KW}, bs[1] = {O};
  vz_tensor *xt = test_tensor(be, 4, xs, x), *wt = test_tensor(be, 4, ws, w);
  vz_tensor *bt = with_bias ? test_tensor(be, 1, bs, bias) : NULL;
  vz_tensor *out = NULL;
  clock_t start = clock();
  CHECK_OK(vz_conv2d(xt, wt, bt, sh, sw, ph, pw, &out));
  double seconds = (double)(clock() - start) / CLOCKS_PER_SEC;
  if (out) {
    CHECK(out->ndim == 4 && out->shape[0] == B && out->shape[1] == O && out->shape[2] == OH &&
          out->shape[3] == OW);
    int64_t n = B * O * OH * OW;
    float *want = calloc((size_t)n, sizeof *want);
    conv_reference(x, w, with_bias ? bias : NULL, B, C, H, W, O, KH, KW, sh, sw, ph, pw, OH, OW,
                   want, o_step);
    float *got = test_read_f32(out);
    if (o_step > 1) /* only the checked channels */
      for (int64_t i = 0; got && i < n; i++)
        if ((i / (OH * OW)) % O % o_step)
          got[i] = 0.0f;
    test_close(what, got, want, n, 1e-4f, 1e-4f);
    if (seconds > 0.05)
      printf("%s: %.3f s of processor time\n", what, seconds);
    free(got);
    free(want);
  }
  vz_tensor_free(out);
  vz_tensor_free(xt);
  vz_tensor_free(wt);
  vz_tensor_free(bt);
  free(x);
  free(w);
  free(bias);
}

static void test_conv2d(vz_backend *be) {
  test_seed(3);
  check_conv(be, "conv 3x3 s1 p1", 2, 3, 9, 11, 4, 3, 3, 1, 1, 1, 1, true, 1);
  check_conv(be, "conv 3x2 s(2,1) p(1,2)", 2, 3, 9, 11, 5, 3, 2, 2, 1, 1, 2, true, 1);
  check_conv(be, "conv 5x3 s3 p(2,0) no bias", 1, 2, 13, 7, 3, 5, 3, 3, 3, 2, 0, false, 1);
  check_conv(be, "conv odd 7x5 k3 s2", 3, 1, 7, 5, 2, 3, 3, 2, 2, 0, 0, true, 1);
  check_conv(be, "conv 1x1", 2, 6, 5, 7, 4, 1, 1, 1, 1, 0, 0, true, 1);
  check_conv(be, "conv 1x1 s2", 1, 6, 5, 7, 4, 1, 1, 2, 2, 0, 0, false, 1);
  check_conv(be, "conv kernel = input", 2, 3, 4, 6, 5, 4, 6, 1, 1, 0, 0, true, 1);
  check_conv(be, "conv pad > kernel", 1, 2, 3, 3, 2, 2, 2, 1, 1, 3, 3, true, 1);
  check_conv(be, "patch 14x14 small", 2, 3, 56, 42, 16, 14, 14, 14, 14, 0, 0, true, 1);
  /* EVA's patch embedding: 3x224x224, 14x14 patches, 1408 channels; the
   * reference checks every 11th channel. */
  check_conv(be, "patch 14x14 EVA", 1, 3, 224, 224, 1408, 14, 14, 14, 14, 0, 0, true, 11);

  /* Bad inputs. */
  float buf[3 * 3 * 8 * 8] = {0};
  int64_t xs[4] = {1, 3, 8, 8}, ws[4] = {2, 3, 3, 3}, w2[4] = {2, 2, 3, 3}, big[4] = {2, 3, 9, 9};
  int64_t bs[1] = {3};
  vz_tensor *xt = test_tensor(be, 4, xs, buf), *wt = test_tensor(be, 4, ws, buf);
  vz_tensor *wc = test_tensor(be, 4, w2, buf), *wb = test_tensor(be, 4, big, buf);
  vz_tensor *bt = test_tensor(be, 1, bs, buf);
  vz_tensor *xh = test_tensor_of(be, VZ_F16, 4, xs, buf);
  vz_tensor *bad = NULL;
  CHECK_FAILS(vz_conv2d(xt, wc, NULL, 1, 1, 0, 0, &bad), VZ_ERR_SHAPE);
  CHECK_FAILS(vz_conv2d(xt, wb, NULL, 1, 1, 0, 0, &bad), VZ_ERR_SHAPE);
  CHECK_FAILS(vz_conv2d(xt, wt, bt, 1, 1, 0, 0, &bad), VZ_ERR_SHAPE);
  CHECK_FAILS(vz_conv2d(xt, wt, NULL, 0, 1, 0, 0, &bad), VZ_ERR_INVALID_ARGUMENT);
  CHECK_FAILS(vz_conv2d(xt, wt, NULL, 1, 1, -1, 0, &bad), VZ_ERR_INVALID_ARGUMENT);
  CHECK_FAILS(vz_conv2d(xh, wt, NULL, 1, 1, 0, 0, &bad), VZ_ERR_DTYPE);
  CHECK_FAILS(vz_conv2d(NULL, wt, NULL, 1, 1, 0, 0, &bad), VZ_ERR_INVALID_ARGUMENT);
  CHECK(bad == NULL);
  vz_tensor_free(xt);
  vz_tensor_free(wt);
  vz_tensor_free(wc);
  vz_tensor_free(wb);
  vz_tensor_free(bt);
  vz_tensor_free(xh);
}

/* ---- bicubic ---- */

/* The exact f32 input the fixture script uses. */
static float bicubic_input(int64_t p, int64_t y, int64_t x) {
  return (float)((p * 977 + y * 131 + x * 71) % 257 - 128) / 64.0f;
}

/* Keys' cubic kernel with a = -0.75, in double. */
static double keys(double d) {
  const double a = -0.75;
  d = fabs(d);
  if (d <= 1)
    return ((a + 2) * d - (a + 3)) * d * d + 1;
  if (d < 2)
    return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a;
  return 0;
}

/* Direct 4x4 taps in double, from the definition of interpolate(). */
static void bicubic_reference(const float *x, int64_t planes, int64_t H, int64_t W, int64_t OH,
                              int64_t OW, bool ac, float *out) {
  double sy = ac ? (OH > 1 ? (double)(H - 1) / (OH - 1) : 0) : (double)H / OH;
  double sx = ac ? (OW > 1 ? (double)(W - 1) / (OW - 1) : 0) : (double)W / OW;
  for (int64_t p = 0; p < planes; p++)
    for (int64_t i = 0; i < OH; i++)
      for (int64_t j = 0; j < OW; j++) {
        double fy = ac ? i * sy : (i + 0.5) * sy - 0.5;
        double fx = ac ? j * sx : (j + 0.5) * sx - 0.5;
        int64_t iy = (int64_t)floor(fy), ix = (int64_t)floor(fx);
        double acc = 0;
        for (int64_t m = -1; m <= 2; m++)
          for (int64_t n = -1; n <= 2; n++) {
            int64_t yy = iy + m < 0 ? 0 : (iy + m >= H ? H - 1 : iy + m);
            int64_t xx = ix + n < 0 ? 0 : (ix + n >= W ? W - 1 : ix + n);
            acc += keys(fy - (double)(iy + m)) * keys(fx - (double)(ix + n)) *
                   x[(p * H + yy) * W + xx];
          }
        out[(p * OH + i) * OW + j] = (float)acc;
      }
}

static void check_bicubic(vz_backend *be, int64_t B, int64_t C, int64_t H, int64_t W, int64_t OH,
                          int64_t OW, bool ac, const char *fixture) {
  const int64_t planes = B * C, n = planes * OH * OW;
  float *x = malloc((size_t)(planes * H * W) * sizeof *x);
  for (int64_t p = 0; p < planes; p++)
    for (int64_t y = 0; y < H; y++)
      for (int64_t xx = 0; xx < W; xx++)
        x[(p * H + y) * W + xx] = bicubic_input(p, y, xx);
  int64_t shape[4] = {B, C, H, W};
  vz_tensor *xt = test_tensor(be, 4, shape, x);
  vz_tensor *out = NULL;
  char what[96];
  snprintf(what, sizeof what, "bicubic %lldx%lld -> %lldx%lld align_corners=%d", (long long)H,
           (long long)W, (long long)OH, (long long)OW, (int)ac);
  CHECK_OK(vz_bicubic(xt, OH, OW, ac, &out));
  if (out) {
    CHECK(out->ndim == 4 && out->shape[0] == B && out->shape[1] == C && out->shape[2] == OH &&
          out->shape[3] == OW);
    float *got = test_read_f32(out);
    float *want = malloc((size_t)n * sizeof *want);
    bicubic_reference(x, planes, H, W, OH, OW, ac, want);
    test_close(what, got, want, n, 1e-5f, 1e-5f);
    int64_t count = 0;
    float *ref = fixture ? test_load_fixture(fixture, "f32", &count) : NULL;
    if (ref) {
      CHECK(count == n);
      char name[128];
      snprintf(name, sizeof name, "%s vs torch", what);
      /* The same f32 weights as torch; its sums may round differently in the
       * last bit or two. */
      test_close(name, got, ref, n, 5e-7f, 1e-6f);
    }
    free(ref);
    free(got);
    free(want);
  }
  vz_tensor_free(out);
  vz_tensor_free(xt);
  free(x);
}

static void test_bicubic(vz_backend *be) {
  for (int ac = 0; ac <= 1; ac++) {
    char name[64];
    snprintf(name, sizeof name, "bicubic_16x16_26x26_ac%d", ac);
    check_bicubic(be, 1, 1, 16, 16, 26, 26, ac, name);
    snprintf(name, sizeof name, "bicubic_7x5_11x13_ac%d", ac);
    check_bicubic(be, 1, 2, 7, 5, 11, 13, ac, name);
    snprintf(name, sizeof name, "bicubic_11x13_5x7_ac%d", ac);
    check_bicubic(be, 1, 1, 11, 13, 5, 7, ac, name);
    check_bicubic(be, 2, 3, 6, 4, 1, 1, ac, NULL);
    check_bicubic(be, 1, 1, 1, 1, 3, 2, ac, NULL);
    check_bicubic(be, 1, 2, 3, 5, 9, 2, ac, NULL);
  }
  /* EVA at 364 px: the 16x16 grid of 1408 channels to 26x26. */
  check_bicubic(be, 1, 1408, 16, 16, 26, 26, false, NULL);

  /* Same size: every weight is 0 or 1, so the input comes back exactly. */
  float x[2 * 5 * 7];
  for (int i = 0; i < 70; i++)
    x[i] = bicubic_input(0, i / 7, i % 7) * 1.37f;
  int64_t shape[4] = {1, 2, 5, 7};
  vz_tensor *xt = test_tensor(be, 4, shape, x);
  for (int ac = 0; ac <= 1; ac++) {
    vz_tensor *out = NULL;
    CHECK_OK(vz_bicubic(xt, 5, 7, ac, &out));
    float *got = out ? test_read_f32(out) : NULL;
    CHECK(got && memcmp(got, x, sizeof x) == 0);
    free(got);
    vz_tensor_free(out);
  }
  vz_tensor *bad = NULL;
  CHECK_FAILS(vz_bicubic(xt, 0, 4, false, &bad), VZ_ERR_INVALID_ARGUMENT);
  CHECK_FAILS(vz_bicubic(xt, 4, -1, false, &bad), VZ_ERR_INVALID_ARGUMENT);
  int64_t s3[3] = {2, 5, 7};
  vz_tensor *x3 = test_tensor(be, 3, s3, x);
  CHECK_FAILS(vz_bicubic(x3, 4, 4, false, &bad), VZ_ERR_SHAPE);
  vz_tensor *xh = test_tensor_of(be, VZ_BF16, 3, s3, x);
  CHECK_FAILS(vz_bicubic(xh, 4, 4, false, &bad), VZ_ERR_DTYPE);
  CHECK(bad == NULL);
  vz_tensor_free(x3);
  vz_tensor_free(xh);
  vz_tensor_free(xt);
}

int main(void) {
  vz_backend *be = test_backend();
  test_conv2d(be);
  test_bicubic(be);
  vz_backend_free(be);
  return test_finish("op_image");
}

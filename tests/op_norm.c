/* layer_norm, rms_norm and l2_normalize against plain double-precision
 * reference loops.
 *
 * Tolerances: |got - want| <= 1e-5 + 1e-5 |want| for the norms (outputs
 * are O(1) by construction, and the f32 mean carries an absolute error that
 * shows on values near zero); l2_normalize to a relative 1e-5 plus 1e-7.
 * A row with a large offset (mean 1000, spread 1) is held to 2e-3: a
 * one-pass E[x^2] - E[x]^2 variance would be off by far more there. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "tests/test_util.h"

static vz_backend *be;

static void layer_norm_reference(const float *x, const float *w, const float *b, float eps,
                                 int64_t rows, int64_t cols, float *out) {
  for (int64_t r = 0; r < rows; r++) {
    const float *row = x + r * cols;
    double mean = 0, var = 0;
    for (int64_t j = 0; j < cols; j++)
      mean += row[j];
    mean /= (double)cols;
    for (int64_t j = 0; j < cols; j++)
      var += (row[j] - mean) * (row[j] - mean);
    var /= (double)cols;
    double rstd = 1.0 / sqrt(var + eps);
    for (int64_t j = 0; j < cols; j++)
      out[r * cols + j] = (float)((row[j] - mean) * rstd * (w ? w[j] : 1.0) + (b ? b[j] : 0.0));
  }
}

static void rms_norm_reference(const float *x, const float *w, float eps, int64_t rows,
                               int64_t cols, float *out) {
  for (int64_t r = 0; r < rows; r++) {
    const float *row = x + r * cols;
    double ms = 0;
    for (int64_t j = 0; j < cols; j++)
      ms += (double)row[j] * row[j];
    double scale = 1.0 / sqrt(ms / (double)cols + eps);
    for (int64_t j = 0; j < cols; j++)
      out[r * cols + j] = (float)(row[j] * scale * (w ? w[j] : 1.0));
  }
}

/* Runs layer_norm (or rms_norm when rms) on x [rows, cols] and compares. */
static void check_norm(const char *what, bool rms, int ndim, const int64_t *shape, const float *hx,
                       const float *hw, const float *hb, float eps, float tol) {
  int64_t cols = shape[ndim - 1], rows = test_numel(ndim, shape) / cols, n = rows * cols;
  vz_tensor *x = test_tensor(be, ndim, shape, hx);
  vz_tensor *w = hw ? test_tensor(be, 1, &cols, hw) : NULL;
  vz_tensor *b = hb ? test_tensor(be, 1, &cols, hb) : NULL;
  float *want = malloc((size_t)n * sizeof *want);
  vz_tensor *out = NULL;
  if (rms) {
    rms_norm_reference(hx, hw, eps, rows, cols, want);
    CHECK_OK(vz_rms_norm(x, w, eps, &out));
  } else {
    layer_norm_reference(hx, hw, hb, eps, rows, cols, want);
    CHECK_OK(vz_layer_norm(x, w, b, eps, &out));
  }
  if (out)
    CHECK(out->ndim == ndim && test_numel(out->ndim, out->shape) == n);
  test_close_tensor(what, out, want, n, tol, tol);
  free(want);
  vz_tensor_free(out);
  vz_tensor_free(x);
  vz_tensor_free(w);
  vz_tensor_free(b);
}

static void test_norms(void) {
  const int64_t widths[] = {1, 7, 8, 13, 29, 33, 1000, 4099};
  for (size_t k = 0; k < sizeof widths / sizeof *widths; k++) {
    int64_t cols = widths[k];
    int64_t shape[] = {2, 3, cols};
    int64_t n = 6 * cols;
    float *hx = test_random_floats(n, 1.0f, 5.0f);
    float *hw = test_random_floats(cols, 0.5f, 1.5f);
    float *hb = test_random_floats(cols, -1.0f, 1.0f);
    char label[96];
    for (int variant = 0; variant < 4; variant++) {
      const float *w = variant & 1 ? hw : NULL, *b = variant & 2 ? hb : NULL;
      snprintf(label, sizeof label, "layer_norm [2,3,%lld] w=%d b=%d", (long long)cols, !!w, !!b);
      check_norm(label, false, 3, shape, hx, w, b, 1e-5f, 1e-5f);
      snprintf(label, sizeof label, "rms_norm [2,3,%lld] w=%d", (long long)cols, !!w);
      if (!b)
        check_norm(label, true, 3, shape, hx, w, NULL, 1e-6f, 1e-5f);
    }
    snprintf(label, sizeof label, "layer_norm 1-D [%lld] eps 0", (long long)cols);
    if (cols > 1)
      check_norm(label, false, 1, &cols, hx, hw, hb, 0.0f, 1e-5f);
    free(hx);
    free(hw);
    free(hb);
  }
  /* many rows (threads) */
  int64_t many[] = {3000, 65};
  float *hx = test_random_floats(3000 * 65, -2.0f, 2.0f);
  check_norm("layer_norm [3000, 65]", false, 2, many, hx, NULL, NULL, 1e-5f, 1e-5f);
  check_norm("rms_norm [3000, 65]", true, 2, many, hx, NULL, NULL, 1e-5f, 1e-5f);
  /* a large offset: the variance must be taken around the mean */
  int64_t off[] = {4, 1000};
  for (int64_t i = 0; i < 4000; i++)
    hx[i] = 1000.0f + test_uniform(-1.0f, 1.0f);
  check_norm("layer_norm offset 1000", false, 2, off, hx, NULL, NULL, 1e-5f, 2e-3f);
  /* constant rows: zero variance gives the bias */
  float hb[1000];
  for (int64_t i = 0; i < 4000; i++)
    hx[i] = 3.25f;
  for (int j = 0; j < 1000; j++)
    hb[j] = (float)j / 1000.0f;
  check_norm("layer_norm constant rows", false, 2, off, hx, NULL, hb, 1e-5f, 1e-6f);
  /* zero rows in rms_norm give zeros */
  memset(hx, 0, 4000 * sizeof *hx);
  check_norm("rms_norm zero rows", true, 2, off, hx, NULL, NULL, 1e-6f, 0.0f);
  free(hx);

  /* strided input and a reused output */
  int64_t s[] = {33, 17}, st[] = {17, 33};
  float *h = test_random_floats(33 * 17, -3.0f, 3.0f), ht[33 * 17], want[33 * 17];
  for (int i = 0; i < 17; i++)
    for (int j = 0; j < 33; j++)
      ht[i * 33 + j] = h[j * 17 + i];
  vz_tensor *x = test_tensor(be, 2, s, h), *tr = NULL, *out = NULL;
  CHECK_OK(vz_transpose(x, 0, 1, &tr));
  CHECK_OK(vz_tensor_new(be, VZ_F32, 2, st, &out));
  vz_tensor *given = out;
  CHECK_OK(vz_layer_norm(tr, NULL, NULL, 1e-5f, &out));
  CHECK(out == given);
  layer_norm_reference(ht, NULL, NULL, 1e-5f, 17, 33, want);
  test_close_tensor("layer_norm of a transposed view", out, want, 17 * 33, 1e-5f, 1e-5f);
  CHECK_OK(vz_rms_norm(tr, NULL, 1e-5f, &out));
  CHECK(out == given);
  rms_norm_reference(ht, NULL, 1e-5f, 17, 33, want);
  test_close_tensor("rms_norm of a transposed view", out, want, 17 * 33, 1e-5f, 1e-5f);
  vz_tensor_free(x);
  vz_tensor_free(tr);
  vz_tensor_free(out);
  free(h);
}

/* ---- l2_normalize ---- */

static void check_l2(const char *what, int ndim, const int64_t *shape, const float *hx, int axis,
                     float eps) {
  int ax = axis < 0 ? axis + ndim : axis;
  int64_t outer = 1, n = shape[ax], inner = 1, total = test_numel(ndim, shape);
  for (int d = 0; d < ax; d++)
    outer *= shape[d];
  for (int d = ax + 1; d < ndim; d++)
    inner *= shape[d];
  float *want = malloc((size_t)total * sizeof *want);
  for (int64_t o = 0; o < outer; o++)
    for (int64_t j = 0; j < inner; j++) {
      double s = 0;
      for (int64_t k = 0; k < n; k++) {
        double v = hx[(o * n + k) * inner + j];
        s += v * v;
      }
      double d = sqrt(s) < eps ? eps : sqrt(s);
      for (int64_t k = 0; k < n; k++)
        want[(o * n + k) * inner + j] = (float)(hx[(o * n + k) * inner + j] / d);
    }
  vz_tensor *x = test_tensor(be, ndim, shape, hx), *out = NULL;
  CHECK_OK(vz_l2_normalize(x, axis, eps, &out));
  test_close_tensor(what, out, want, total, 1e-7f, 1e-5f);
  free(want);
  vz_tensor_free(out);
  vz_tensor_free(x);
}

static void test_l2(void) {
  int64_t shape[] = {5, 7, 33};
  float *hx = test_random_floats(5 * 7 * 33, -2.0f, 2.0f);
  for (int64_t j = 0; j < 33; j++) /* a zero row along the last axis */
    hx[2 * 33 + j] = 0.0f;
  for (int64_t j = 0; j < 33; j++) /* a tiny one: the norm is below eps */
    hx[3 * 33 + j] = 1e-14f;
  for (int axis = -3; axis < 3; axis++) {
    char label[64];
    snprintf(label, sizeof label, "l2_normalize [5,7,33] axis %d", axis);
    check_l2(label, 3, shape, hx, axis, 1e-12f);
  }
  check_l2("l2_normalize eps 0.5", 3, shape, hx, -1, 0.5f);
  int64_t sizes[] = {1, 7, 1000, 4099};
  float *hb = test_random_floats(2 * 4099, -1.0f, 1.0f);
  for (int k = 0; k < 4; k++) {
    int64_t s2[] = {2, sizes[k]};
    char label[64];
    snprintf(label, sizeof label, "l2_normalize [2,%lld]", (long long)sizes[k]);
    check_l2(label, 2, s2, hb, -1, 1e-12f);
    check_l2(label, 2, s2, hb, 0, 1e-12f);
  }
  /* zero and tiny columns along axis 0 (the strided-reduction path) */
  int64_t cols[] = {4, 9};
  float hc[36];
  for (int k = 0; k < 36; k++)
    hc[k] = k % 9 == 2 ? 0.0f : k % 9 == 5 ? 1e-14f : test_uniform(-1.0f, 1.0f);
  check_l2("l2_normalize zero columns axis 0", 2, cols, hc, 0, 1e-12f);
  check_l2("l2_normalize columns axis 0 eps 0.5", 2, cols, hc, 0, 0.5f);
  int64_t wide[] = {3, 2, 700}; /* more inner positions than one task takes */
  check_l2("l2_normalize [3,2,700] axis 1", 3, wide, hb, 1, 1e-12f);
  free(hx);
  free(hb);
}

static void test_errors(void) {
  int64_t s[] = {2, 3}, s2[] = {2}, s3[] = {3}, s33[] = {3, 3};
  float f[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  int32_t i[6] = {0};
  uint16_t h[3] = {0};
  vz_tensor *x = test_tensor(be, 2, s, f), *xi = test_tensor_of(be, VZ_I32, 2, s, i);
  vz_tensor *w2 = test_tensor(be, 1, s2, f), *w3 = test_tensor(be, 1, s3, f);
  vz_tensor *wh = test_tensor_of(be, VZ_F16, 1, s3, h), *w33 = test_tensor(be, 2, s33, f);
  vz_tensor *scalar = test_tensor(be, 0, NULL, f), *out = NULL;
  CHECK_FAILS(vz_layer_norm(xi, NULL, NULL, 1e-5f, &out), VZ_ERR_DTYPE);
  CHECK_FAILS(vz_layer_norm(x, w2, NULL, 1e-5f, &out), VZ_ERR_SHAPE);
  CHECK_FAILS(vz_layer_norm(x, w3, w2, 1e-5f, &out), VZ_ERR_SHAPE);
  CHECK_FAILS(vz_layer_norm(x, wh, NULL, 1e-5f, &out), VZ_ERR_DTYPE);
  CHECK_FAILS(vz_layer_norm(x, NULL, NULL, -1.0f, &out), VZ_ERR_INVALID_ARGUMENT);
  CHECK_FAILS(vz_layer_norm(x, NULL, NULL, NAN, &out), VZ_ERR_INVALID_ARGUMENT);
  CHECK_FAILS(vz_layer_norm(scalar, NULL, NULL, 1e-5f, &out), VZ_ERR_SHAPE);
  CHECK_FAILS(vz_rms_norm(xi, NULL, 1e-5f, &out), VZ_ERR_DTYPE);
  CHECK_FAILS(vz_rms_norm(x, w33, 1e-5f, &out), VZ_ERR_SHAPE);
  CHECK_FAILS(vz_rms_norm(x, NULL, INFINITY, &out), VZ_ERR_INVALID_ARGUMENT);
  CHECK_FAILS(vz_l2_normalize(xi, 0, 1e-12f, &out), VZ_ERR_DTYPE);
  CHECK_FAILS(vz_l2_normalize(x, 2, 1e-12f, &out), VZ_ERR_INVALID_ARGUMENT);
  CHECK_FAILS(vz_l2_normalize(x, -3, 1e-12f, &out), VZ_ERR_INVALID_ARGUMENT);
  CHECK_FAILS(vz_l2_normalize(x, 0, -1.0f, &out), VZ_ERR_INVALID_ARGUMENT);
  CHECK(out == NULL);
  vz_tensor *ts[] = {x, xi, w2, w3, wh, w33, scalar};
  for (size_t k = 0; k < sizeof ts / sizeof *ts; k++)
    vz_tensor_free(ts[k]);
}

int main(void) {
  be = test_backend();
  test_seed(37);
  test_norms();
  test_l2();
  test_errors();
  vz_backend_free(be);
  return test_finish("op_norm");
}

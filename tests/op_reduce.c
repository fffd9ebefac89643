/* Reductions and scans (sum, mean, max, softmax, argmax, topk, cumsum)
 * against plain double-precision reference loops.
 *
 * Tolerances: sums and means to 1e-5 of the sum of |x| (f32 accumulation
 * in a different order than the reference); max, argmax, topk and integer
 * cumsum exactly; softmax to a relative 1e-5 plus 1e-9 absolute; f32
 * cumsum to 1e-5 of the running sum of |x|. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "tests/test_util.h"

static vz_backend *be;

/* [outer, n, inner] around axis ax. */
static void split(int ndim, const int64_t *shape, int ax, int64_t *outer, int64_t *n,
                  int64_t *inner) {
  *outer = *inner = 1;
  for (int d = 0; d < ax; d++)
    *outer *= shape[d];
  *n = shape[ax];
  for (int d = ax + 1; d < ndim; d++)
    *inner *= shape[d];
}

/* ---- sum, mean, max ---- */

typedef vz_status (*reduce_fn)(const vz_tensor *, int, bool, vz_tensor **);

/* sum, mean and max of x (host copy hx, dense shape) along axis. */
static void check_reduce(const char *what, const vz_tensor *x, const float *hx, int axis,
                         bool keepdim) {
  int ax = axis < 0 ? axis + x->ndim : axis;
  int64_t outer, n, inner;
  split(x->ndim, x->shape, ax, &outer, &n, &inner);
  int64_t m = outer * inner;
  float *want_sum = malloc((size_t)m * sizeof(float)), *want_mean = malloc((size_t)m * 4);
  float *want_max = malloc((size_t)m * sizeof(float));
  double *abs_sum = malloc((size_t)m * sizeof(double));
  for (int64_t o = 0; o < outer; o++)
    for (int64_t j = 0; j < inner; j++) {
      double s = 0, a = 0, mx = -INFINITY;
      bool nan = false;
      for (int64_t k = 0; k < n; k++) {
        double v = hx[(o * n + k) * inner + j];
        s += v;
        a += fabs(v);
        nan |= isnan(v);
        if (v > mx)
          mx = v;
      }
      want_sum[o * inner + j] = (float)s;
      want_mean[o * inner + j] = (float)(s / (double)n);
      want_max[o * inner + j] = nan ? NAN : (float)mx;
      abs_sum[o * inner + j] = a;
    }
  const reduce_fn fns[] = {vz_sum, vz_mean, vz_max};
  const char *names[] = {"sum", "mean", "max"};
  float *wants[] = {want_sum, want_mean, want_max};
  for (int f = 0; f < 3; f++) {
    vz_tensor *out = NULL;
    CHECK_OK(fns[f](x, axis, keepdim, &out));
    if (!out)
      continue;
    CHECK(out->ndim == (keepdim ? x->ndim : x->ndim - 1));
    CHECK(test_numel(out->ndim, out->shape) == m);
    if (keepdim)
      CHECK(out->shape[ax] == 1);
    float *got = test_read_f32(out);
    int bad = 0;
    for (int64_t i = 0; i < m && got; i++) {
      float w = wants[f][i], g = got[i];
      double tol = f == 2 ? 0.0 : 1e-5 * abs_sum[i] / (f == 1 ? (double)n : 1.0) + 1e-30;
      bool ok = isnan(w) ? isnan(g) : isinf(w) ? g == w : fabs((double)g - w) <= tol;
      if (!ok && bad++ < 3)
        fprintf(stderr, "%s %s: element %lld is %.9g, expected %.9g\n", what, names[f],
                (long long)i, g, w);
    }
    if (bad || !got) {
      fprintf(stderr, "%s %s: %d mismatches\n", what, names[f], bad);
      test_failures++;
    }
    free(got);
    vz_tensor_free(out);
  }
  free(want_sum);
  free(want_mean);
  free(want_max);
  free(abs_sum);
}

static void test_reduce(void) {
  static const struct {
    int ndim;
    int64_t shape[4];
    int axis;
  } cases[] = {
      {1, {1}, 0},          {1, {7}, 0},          {1, {33}, 0},         {1, {1000}, -1},
      {1, {4099}, 0},       {2, {7, 33}, 0},      {2, {7, 33}, 1},      {2, {33, 7}, -1},
      {3, {3, 5, 1000}, 1}, {3, {3, 1000, 5}, 1}, {4, {2, 3, 4, 5}, 2}, {4, {2, 3, 4, 5}, 0},
      {2, {100, 1001}, 1},  {2, {1001, 70}, 0},   {1, {70001}, 0},      {3, {2, 1, 9}, 1},
      {2, {3, 70000}, 0},   {2, {70000, 3}, 1},
  };
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
    float *hx;
    vz_tensor *x = test_random_tensor(be, cases[c].ndim, cases[c].shape, -4.0f, 4.0f, &hx);
    char label[64];
    snprintf(label, sizeof label, "case %zu", c);
    check_reduce(label, x, hx, cases[c].axis, c % 2 == 0);
    vz_tensor_free(x);
    free(hx);
  }
  /* special values: NaN anywhere makes max NaN; infinities; all -inf */
  int64_t shape[] = {4, 37};
  float *hx = test_random_floats(4 * 37, -1.0f, 1.0f);
  hx[0 * 37 + 36] = NAN;
  hx[1 * 37 + 3] = NAN;
  hx[2 * 37 + 17] = INFINITY;
  for (int j = 0; j < 37; j++)
    hx[3 * 37 + j] = -INFINITY;
  vz_tensor *x = test_tensor(be, 2, shape, hx);
  check_reduce("special values", x, hx, 1, false);
  /* a strided input (the dispatcher makes it dense) */
  vz_tensor *tr = NULL;
  int64_t s2[] = {33, 70};
  float *h2;
  vz_tensor *x2 = test_random_tensor(be, 2, s2, -2.0f, 2.0f, &h2);
  CHECK_OK(vz_transpose(x2, 0, 1, &tr));
  if (tr) {
    float *ht = test_read_f32(tr);
    check_reduce("transposed", tr, ht, 1, false);
    check_reduce("transposed", tr, ht, 0, true);
    free(ht);
  }
  /* a given output is reused */
  int64_t kept[] = {33, 1};
  vz_tensor *out = NULL;
  CHECK_OK(vz_tensor_new(be, VZ_F32, 2, kept, &out));
  vz_tensor *given = out;
  CHECK_OK(vz_max(x2, 1, true, &out));
  CHECK(out == given);
  float *got = test_read_f32(out);
  for (int i = 0; i < 33; i++) {
    float m = -INFINITY;
    for (int j = 0; j < 70; j++)
      m = h2[i * 70 + j] > m ? h2[i * 70 + j] : m;
    CHECK(got[i] == m);
  }
  free(got);
  vz_tensor_free(out);
  vz_tensor_free(x);
  vz_tensor_free(x2);
  vz_tensor_free(tr);
  free(hx);
  free(h2);
}

/* ---- softmax ---- */

/* Reference softmax of x * scale + mask (broadcast) over the last axis. */
static void softmax_reference(int ndim, const int64_t *shape, const float *x, int mdim,
                              const int64_t *mshape, const float *mask, float scale, bool causal,
                              float *out) {
  int64_t cols = shape[ndim - 1], rows = ndim >= 2 ? shape[ndim - 2] : 1;
  int64_t total = test_numel(ndim, shape) / cols;
  double *y = malloc((size_t)cols * sizeof *y);
  bool *shown = malloc((size_t)cols);
  for (int64_t r = 0; r < total; r++) {
    int64_t i = r % rows;
    double mx = -INFINITY;
    bool any = false, nan = false;
    for (int64_t j = 0; j < cols; j++) {
      double m = 0;
      if (mask) { /* broadcast index of element (r, j) into the mask */
        int64_t flat = r * cols + j, idx = 0, mul = 1;
        for (int d = ndim - 1; d >= 0; d--) {
          int64_t k = flat % shape[d];
          flat /= shape[d];
          int dm = d - (ndim - mdim);
          if (dm >= 0) {
            if (mshape[dm] != 1)
              idx += k * mul;
            mul *= mshape[dm];
          }
        }
        m = mask[idx];
      }
      shown[j] = !causal || j <= i + (cols - rows);
      y[j] = (double)x[r * cols + j] * scale + m;
      if (shown[j]) {
        nan |= isnan(y[j]);
        if (y[j] > mx)
          mx = y[j];
        any = true;
      }
    }
    double sum = 0;
    for (int64_t j = 0; j < cols; j++)
      if (shown[j] && mx > -INFINITY)
        sum += exp(y[j] - mx);
    for (int64_t j = 0; j < cols; j++) {
      double v = 0;
      if (shown[j] && nan)
        v = NAN;
      else if (shown[j] && any && mx > -INFINITY)
        v = exp(y[j] - mx) / sum;
      out[r * cols + j] = (float)v;
    }
  }
  free(y);
  free(shown);
}

static void check_softmax(const char *what, int ndim, const int64_t *shape, const float *hx,
                          int mdim, const int64_t *mshape, const float *hm, float scale,
                          bool causal) {
  int64_t n = test_numel(ndim, shape);
  vz_tensor *x = test_tensor(be, ndim, shape, hx);
  vz_tensor *m = hm ? test_tensor(be, mdim, mshape, hm) : NULL;
  float *want = malloc((size_t)n * sizeof *want);
  softmax_reference(ndim, shape, hx, mdim, mshape, hm, scale, causal, want);
  vz_tensor *out = NULL;
  CHECK_OK(vz_softmax(x, m, scale, causal, &out));
  test_close_tensor(what, out, want, n, 1e-9f, 1e-5f);
  free(want);
  vz_tensor_free(out);
  vz_tensor_free(x);
  vz_tensor_free(m);
}

static void test_softmax(void) {
  /* plain rows of every awkward width */
  const int64_t widths[] = {1, 7, 8, 13, 29, 33, 1000, 4099};
  for (size_t w = 0; w < sizeof widths / sizeof *widths; w++) {
    int64_t shape[] = {3, widths[w]};
    float *hx = test_random_floats(3 * widths[w], -10.0f, 10.0f);
    char label[64];
    snprintf(label, sizeof label, "softmax [3, %lld]", (long long)widths[w]);
    check_softmax(label, 2, shape, hx, 0, NULL, NULL, 1.0f, false);
    check_softmax(label, 1, shape + 1, hx, 0, NULL, NULL, 0.125f, false);
    check_softmax("softmax causal 1-D", 1, shape + 1, hx, 0, NULL, NULL, 1.0f, true);
    free(hx);
  }
  /* masks of several broadcast shapes, with scale and causal */
  int64_t xs[] = {2, 3, 5, 37};
  int64_t n = test_numel(4, xs);
  float *hx = test_random_floats(n, -6.0f, 6.0f);
  static const struct {
    int ndim;
    int64_t shape[4];
  } masks[] = {
      {2, {5, 37}}, {4, {2, 1, 1, 37}}, {2, {5, 1}}, {1, {1}}, {4, {2, 3, 5, 37}}, {3, {3, 1, 37}},
  };
  for (size_t k = 0; k < sizeof masks / sizeof *masks; k++) {
    int64_t mn = test_numel(masks[k].ndim, masks[k].shape);
    float *hm = test_random_floats(mn, -3.0f, 3.0f);
    for (int64_t i = 0; i < mn; i += 3) /* hidden entries */
      hm[i] = -INFINITY;
    if (masks[k].shape[masks[k].ndim - 1] > 1) /* a finite "hidden" (not row-wide) */
      hm[1] = -1e9f;
    for (int c = 0; c < 2; c++) {
      char label[64];
      snprintf(label, sizeof label, "softmax mask %zu causal %d", k, c);
      check_softmax(label, 4, xs, hx, masks[k].ndim, masks[k].shape, hm, 0.35f, c);
    }
    free(hm);
  }
  /* causal with more rows than columns: leading rows fully hidden, zeros */
  int64_t tall[] = {2, 9, 4};
  float *ht = test_random_floats(72, -3.0f, 3.0f);
  check_softmax("softmax causal rows > cols", 3, tall, ht, 0, NULL, NULL, 1.0f, true);
  int64_t wide[] = {5, 12};
  check_softmax("softmax causal rows < cols", 2, wide, ht, 0, NULL, NULL, 0.5f, true);

  /* a row whose every entry is masked gives zeros; NaN gives NaN */
  int64_t s[] = {3, 9};
  float hs[27], hm[27];
  for (int i = 0; i < 27; i++) {
    hs[i] = (float)(i % 5) - 2.0f;
    hm[i] = i < 9 || i % 2 ? -INFINITY : 0.0f;
  }
  hs[18 + 4] = NAN;
  hm[18 + 4] = 0.0f;
  vz_tensor *x = test_tensor(be, 2, s, hs), *m = test_tensor(be, 2, s, hm), *out = NULL;
  CHECK_OK(vz_softmax(x, m, 1.0f, false, &out));
  if (out) {
    float *g = test_read_f32(out);
    float total = 0;
    for (int j = 0; j < 9; j++) {
      CHECK(g[j] == 0.0f);
      total += g[9 + j];
      CHECK(isnan(g[18 + j])); /* a NaN anywhere in a row spreads to all of it */
    }
    CHECK(fabsf(total - 1.0f) < 1e-6f);
    free(g);
  }
  /* a given output is reused, and x may be its own output */
  vz_tensor *given = out;
  CHECK_OK(vz_softmax(x, NULL, 2.0f, false, &out));
  CHECK(out == given);
  float want[27];
  softmax_reference(2, s, hs, 0, NULL, NULL, 2.0f, false, want);
  float *g = test_read_f32(out);
  test_close("softmax into a given output", g, want, 27, 1e-9f, 1e-5f);
  free(g);
  vz_tensor *y = test_tensor(be, 2, s, hm);
  CHECK_OK(vz_softmax(y, NULL, 1.0f, false, &y));
  softmax_reference(2, s, hm, 0, NULL, NULL, 1.0f, false, want);
  g = test_read_f32(y);
  test_close("softmax in place", g, want, 27, 1e-9f, 1e-5f);
  free(g);
  /* strided input */
  vz_tensor *tr = NULL, *ts = NULL;
  CHECK_OK(vz_transpose(x, 0, 1, &tr));
  CHECK_OK(vz_softmax(tr, NULL, 1.0f, false, &ts));
  if (ts) {
    float ht2[27];
    for (int i = 0; i < 9; i++)
      for (int j = 0; j < 3; j++)
        ht2[i * 3 + j] = hs[j * 9 + i];
    int64_t st[] = {9, 3};
    softmax_reference(2, st, ht2, 0, NULL, NULL, 1.0f, false, want);
    g = test_read_f32(ts);
    test_close("softmax of a transposed view", g, want, 27, 1e-9f, 1e-5f);
    free(g);
  }
  vz_tensor *tensors[] = {x, m, out, y, tr, ts};
  for (size_t i = 0; i < sizeof tensors / sizeof *tensors; i++)
    vz_tensor_free(tensors[i]);
  free(hx);
  free(ht);
}

/* ---- argmax ---- */

static void check_argmax(const char *what, int ndim, const int64_t *shape, const float *hx,
                         int axis) {
  int ax = axis < 0 ? axis + ndim : axis;
  int64_t outer, n, inner;
  split(ndim, shape, ax, &outer, &n, &inner);
  vz_tensor *x = test_tensor(be, ndim, shape, hx), *out = NULL;
  CHECK_OK(vz_argmax(x, axis, &out));
  int64_t *got = out ? test_read_bytes(out) : NULL;
  if (got) {
    CHECK(out->dtype == VZ_I64 && out->ndim == ndim - 1);
    int bad = 0;
    for (int64_t o = 0; o < outer; o++)
      for (int64_t j = 0; j < inner; j++) {
        int64_t at = 0;
        double best = hx[o * n * inner + j];
        for (int64_t k = 1; k < n && !isnan(best); k++) {
          double v = hx[(o * n + k) * inner + j];
          if (isnan(v) || v > best) {
            best = v;
            at = k;
          }
        }
        bad += got[o * inner + j] != at;
      }
    if (bad) {
      fprintf(stderr, "%s: %d wrong indices\n", what, bad);
      test_failures++;
    }
  }
  free(got);
  vz_tensor_free(out);
  vz_tensor_free(x);
}

static void test_argmax(void) {
  /* small integers: many ties */
  int64_t shape[] = {5, 7, 33};
  int64_t n = test_numel(3, shape);
  float *hx = malloc((size_t)n * sizeof *hx);
  for (int64_t i = 0; i < n; i++)
    hx[i] = (float)(test_next() % 4);
  for (int axis = -3; axis < 3; axis++)
    check_argmax("argmax ties", 3, shape, hx, axis);
  hx[40] = NAN;
  hx[41] = NAN;
  hx[5 * 33 + 2] = -INFINITY;
  check_argmax("argmax NaN", 3, shape, hx, 2);
  check_argmax("argmax NaN", 3, shape, hx, 0);
  for (int64_t i = 0; i < 33; i++)
    hx[i] = -INFINITY;
  check_argmax("argmax -inf", 3, shape, hx, 2);
  int64_t big[] = {4099};
  float *hb = test_random_floats(4099, -1.0f, 1.0f);
  check_argmax("argmax [4099]", 1, big, hb, 0);
  free(hx);
  free(hb);
}

/* ---- topk ---- */

static void check_topk(const char *what, int ndim, const int64_t *shape, const float *hx, int k) {
  int64_t n = shape[ndim - 1], rows = test_numel(ndim, shape) / n;
  vz_tensor *x = test_tensor(be, ndim, shape, hx), *values = NULL, *indices = NULL;
  CHECK_OK(vz_topk(x, k, &values, &indices));
  float *gv = values ? test_read_f32(values) : NULL;
  int64_t *gi = indices ? test_read_bytes(indices) : NULL;
  bool *taken = malloc((size_t)n);
  int bad = 0;
  for (int64_t r = 0; gv && gi && r < rows; r++) {
    const float *row = hx + r * n;
    memset(taken, 0, (size_t)n);
    for (int t = 0; t < k; t++) { /* selection: the best entry not yet taken */
      int64_t best = -1;
      for (int64_t j = 0; j < n; j++) {
        if (taken[j])
          continue;
        if (best < 0 || (isnan(row[j]) && !isnan(row[best])) ||
            (!isnan(row[best]) && row[j] > row[best]))
          best = j;
      }
      taken[best] = true;
      float v = gv[r * k + t];
      bool same = isnan(row[best]) ? isnan(v) : v == row[best];
      bad += !same || gi[r * k + t] != best;
    }
  }
  if (bad || !gv || !gi) {
    fprintf(stderr, "%s: %d wrong entries\n", what, bad);
    test_failures++;
  }
  if (values)
    CHECK(values->shape[ndim - 1] == k && indices->dtype == VZ_I64);
  free(taken);
  free(gv);
  free(gi);
  vz_tensor_free(values);
  vz_tensor_free(indices);
  vz_tensor_free(x);
}

static void test_topk(void) {
  int64_t shape[] = {3, 100};
  float *hx = malloc(300 * sizeof *hx);
  for (int i = 0; i < 300; i++)
    hx[i] = (float)(test_next() % 10);
  const int ks[] = {1, 5, 33, 99, 100};
  for (size_t i = 0; i < sizeof ks / sizeof *ks; i++)
    check_topk("topk ties", 2, shape, hx, ks[i]);
  hx[7] = NAN;
  hx[150] = -INFINITY;
  hx[151] = INFINITY;
  check_topk("topk NaN and infinities", 2, shape, hx, 4);
  int64_t big[] = {2, 4099};
  float *hb = test_random_floats(2 * 4099, -5.0f, 5.0f);
  check_topk("topk [2, 4099]", 2, big, hb, 33);
  int64_t one[] = {1};
  check_topk("topk [1]", 1, one, hb, 1);
  free(hx);
  free(hb);
}

/* ---- cumsum ---- */

static void test_cumsum(void) {
  static const struct {
    int ndim;
    int64_t shape[3];
    int axis;
  } cases[] = {
      {1, {4099}, 0},       {2, {7, 33}, 1}, {2, {7, 33}, 0},     {3, {5, 3, 7}, 1},
      {3, {5, 3, 300}, -1}, {1, {1}, 0},     {3, {2, 600, 3}, 1},
  };
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
    int nd = cases[c].ndim;
    const int64_t *shape = cases[c].shape;
    int ax = cases[c].axis < 0 ? cases[c].axis + nd : cases[c].axis;
    int64_t total = test_numel(nd, shape), outer, n, inner;
    split(nd, shape, ax, &outer, &n, &inner);
    float *hx = test_random_floats(total, -3.0f, 3.0f);
    int64_t *h64 = malloc((size_t)total * sizeof *h64);
    int32_t *h32 = malloc((size_t)total * sizeof *h32);
    for (int64_t i = 0; i < total; i++)
      h32[i] = (int32_t)(h64[i] = (int64_t)(test_next() % 2001) - 1000);
    h64[0] = INT64_C(1) << 40;
    vz_tensor *xf = test_tensor(be, nd, shape, hx);
    vz_tensor *x64 = test_tensor_of(be, VZ_I64, nd, shape, h64);
    vz_tensor *x32 = test_tensor_of(be, VZ_I32, nd, shape, h32);
    vz_tensor *of = NULL, *o64 = NULL, *o32 = NULL;
    CHECK_OK(vz_cumsum(xf, cases[c].axis, &of));
    CHECK_OK(vz_cumsum(x64, cases[c].axis, &o64));
    CHECK_OK(vz_cumsum(x32, cases[c].axis, &o32));
    float *gf = of ? test_read_f32(of) : NULL;
    int64_t *g64 = o64 ? test_read_bytes(o64) : NULL;
    int32_t *g32 = o32 ? test_read_bytes(o32) : NULL;
    int bad = 0;
    for (int64_t o = 0; gf && g64 && g32 && o < outer; o++)
      for (int64_t j = 0; j < inner; j++) {
        double s = 0, a = 0;
        int64_t s64 = 0, s32 = 0;
        for (int64_t k = 0; k < n; k++) {
          int64_t i = (o * n + k) * inner + j;
          s += hx[i];
          a += fabs(hx[i]);
          s64 += h64[i];
          s32 += h32[i];
          bad += fabs((double)gf[i] - s) > 1e-5 * a + 1e-30;
          bad += g64[i] != s64;
          bad += g32[i] != (int32_t)s32;
        }
      }
    if (bad || !gf || !g64 || !g32) {
      fprintf(stderr, "cumsum case %zu: %d wrong elements\n", c, bad);
      test_failures++;
    }
    if (of)
      CHECK(of->dtype == VZ_F32 && o64->dtype == VZ_I64 && o32->dtype == VZ_I32);
    free(gf);
    free(g64);
    free(g32);
    vz_tensor *ts[] = {xf, x64, x32, of, o64, o32};
    for (size_t i = 0; i < 6; i++)
      vz_tensor_free(ts[i]);
    free(hx);
    free(h64);
    free(h32);
  }
}

/* ---- errors ---- */

static void test_errors(void) {
  int64_t s[] = {2, 3}, s4[] = {4}, empty[] = {0, 3};
  float f[6] = {1, 2, 3, 4, 5, 6};
  int32_t i[6] = {1, 2, 3, 4, 5, 6};
  uint16_t h[6] = {0};
  vz_tensor *x = test_tensor(be, 2, s, f), *xi = test_tensor_of(be, VZ_I32, 2, s, i);
  vz_tensor *xh = test_tensor_of(be, VZ_F16, 2, s, h), *m4 = test_tensor(be, 1, s4, f);
  vz_tensor *e = test_tensor(be, 2, empty, f), *out = NULL, *idx = NULL;
  CHECK_FAILS(vz_sum(xi, 0, false, &out), VZ_ERR_DTYPE);
  CHECK_FAILS(vz_mean(xh, 0, false, &out), VZ_ERR_DTYPE);
  CHECK_FAILS(vz_max(x, 2, false, &out), VZ_ERR_INVALID_ARGUMENT);
  CHECK_FAILS(vz_sum(x, -3, false, &out), VZ_ERR_INVALID_ARGUMENT);
  CHECK_FAILS(vz_sum(e, 0, false, &out), VZ_ERR_SHAPE);
  CHECK_FAILS(vz_softmax(xi, NULL, 1.0f, false, &out), VZ_ERR_DTYPE);
  CHECK_FAILS(vz_softmax(x, m4, 1.0f, false, &out), VZ_ERR_SHAPE);
  CHECK_FAILS(vz_softmax(x, xi, 1.0f, false, &out), VZ_ERR_DTYPE);
  CHECK_FAILS(vz_argmax(xi, 0, &out), VZ_ERR_DTYPE);
  CHECK_FAILS(vz_argmax(x, 5, &out), VZ_ERR_INVALID_ARGUMENT);
  CHECK_FAILS(vz_topk(x, 0, &out, &idx), VZ_ERR_INVALID_ARGUMENT);
  CHECK_FAILS(vz_topk(x, 4, &out, &idx), VZ_ERR_INVALID_ARGUMENT);
  CHECK_FAILS(vz_topk(xi, 1, &out, &idx), VZ_ERR_DTYPE);
  CHECK_FAILS(vz_cumsum(xh, 0, &out), VZ_ERR_DTYPE);
  CHECK_FAILS(vz_cumsum(x, 2, &out), VZ_ERR_INVALID_ARGUMENT);
  int64_t wrong[] = {3};
  CHECK_OK(vz_tensor_new(be, VZ_F32, 1, wrong, &out));
  CHECK_FAILS(vz_sum(x, 1, false, &out), VZ_ERR_SHAPE); /* the result is [2] */
  vz_tensor_free(out);
  vz_tensor *ts[] = {x, xi, xh, m4, e};
  for (size_t k = 0; k < 5; k++)
    vz_tensor_free(ts[k]);
}

int main(void) {
  be = test_backend();
  test_seed(23);
  test_reduce();
  test_softmax();
  test_argmax();
  test_topk();
  test_cumsum();
  test_errors();
  vz_backend_free(be);
  return test_finish("op_reduce");
}

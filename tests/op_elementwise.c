/* Element-wise ops (add, sub, mul, div, scale, the activations, where)
 * against plain double-precision reference loops, with broadcasting and
 * strided views; and the vector f16 / bf16 row conversions of the active
 * instruction-set path against the scalar conversion functions, bit for
 * bit.
 *
 * Tolerances: f32 arithmetic and scale are correctly rounded, so they must
 * match the reference (computed in double, rounded once) exactly. The
 * activations are checked to a relative 1e-5 (gelu_tanh 3e-5: its result
 * at x ~ -10 is e^(-87) and inherits 87 times the rounding error of its
 * f32 argument), plus 1e-37 absolute for results in the subnormal range;
 * exact GELU additionally to 1e-6 absolute everywhere. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "backends/cpu/cpu.h"
#include "tests/test_util.h"

static vz_backend *be;

/* ---- reference helpers ---- */

/* numpy broadcasting of two shapes (inputs assumed compatible). */
static int broadcast_shape(int na, const int64_t *a, int nb, const int64_t *b, int64_t *out) {
  int n = na > nb ? na : nb;
  for (int i = 0; i < n; i++) {
    int ia = i - (n - na), ib = i - (n - nb);
    int64_t da = ia >= 0 ? a[ia] : 1, db = ib >= 0 ? b[ib] : 1;
    out[i] = da == 1 ? db : da;
  }
  return n;
}

/* Row-major index into an input of shape `in` for element `flat` of an
 * output of shape `out` that `in` broadcasts to. */
static int64_t source_index(int nout, const int64_t *out, int64_t flat, int nin,
                            const int64_t *in) {
  int64_t idx = 0, mul = 1;
  for (int d = nout - 1; d >= 0; d--) {
    int64_t i = flat % out[d];
    flat /= out[d];
    int di = d - (nout - nin);
    if (di >= 0) {
      if (in[di] != 1)
        idx += i * mul;
      mul *= in[di];
    }
  }
  return idx;
}

static double apply_op(vz_op_kind op, double a, double b) {
  switch (op) {
  case VZ_OP_ADD: return a + b;
  case VZ_OP_SUB: return a - b;
  case VZ_OP_MUL: return a * b;
  default: return a / b;
  }
}

typedef vz_status (*binary_fn)(const vz_tensor *, const vz_tensor *, vz_tensor **);
static const binary_fn binary_fns[] = {vz_add, vz_sub, vz_mul, vz_div};
static const vz_op_kind binary_ops[] = {VZ_OP_ADD, VZ_OP_SUB, VZ_OP_MUL, VZ_OP_DIV};
static const char *const binary_names[] = {"add", "sub", "mul", "div"};

static vz_tensor *random_tensor(int ndim, const int64_t *shape, float lo, float hi) {
  return test_random_tensor(be, ndim, shape, lo, hi, NULL);
}

/* All four f32 ops on a and b (any views) against the reference. */
static void check_binary_f32(const char *what, const vz_tensor *a, const vz_tensor *b) {
  float *ha = test_read_f32(a), *hb = test_read_f32(b);
  int64_t shape[VZ_MAX_DIMS];
  int nd = broadcast_shape(a->ndim, a->shape, b->ndim, b->shape, shape);
  int64_t n = test_numel(nd, shape);
  float *want = malloc((size_t)n * sizeof *want);
  for (int k = 0; k < 4; k++) {
    for (int64_t i = 0; i < n; i++) {
      double x = ha[source_index(nd, shape, i, a->ndim, a->shape)];
      double y = hb[source_index(nd, shape, i, b->ndim, b->shape)];
      want[i] = (float)apply_op(binary_ops[k], x, y);
    }
    vz_tensor *out = NULL;
    CHECK_OK(binary_fns[k](a, b, &out));
    if (!out)
      continue;
    CHECK(out->ndim == nd && test_numel(out->ndim, out->shape) == n);
    char label[128];
    snprintf(label, sizeof label, "%s %s", what, binary_names[k]);
    test_close_tensor(label, out, want, n, 0.0f, 0.0f);
    vz_tensor_free(out);
  }
  free(want);
  free(ha);
  free(hb);
}

/* ---- binary f32 ---- */

static void test_binary_sizes(void) {
  const int64_t sizes[] = {1, 7, 8, 33, 1000, 4099};
  for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
    int64_t n = sizes[s];
    vz_tensor *a = random_tensor(1, &n, -3.0f, 3.0f);
    vz_tensor *b = random_tensor(1, &n, 0.25f, 4.0f);
    char label[64];
    snprintf(label, sizeof label, "same shape [%lld]", (long long)n);
    check_binary_f32(label, a, b);
    /* a length-1 operand on either side */
    int64_t one = 1;
    vz_tensor *c = random_tensor(1, &one, 0.5f, 2.0f);
    check_binary_f32("[n] op [1]", a, c);
    check_binary_f32("[1] op [n]", c, b);
    vz_tensor_free(a);
    vz_tensor_free(b);
    vz_tensor_free(c);
  }
}

static void test_binary_broadcast(void) {
  static const struct {
    int na;
    int64_t a[4];
    int nb;
    int64_t b[4];
  } cases[] = {
      {3, {3, 1, 5}, 2, {4, 5}},          {1, {5}, 3, {2, 3, 5}},     {2, {2, 1}, 2, {1, 3}},
      {4, {2, 3, 33, 17}, 3, {3, 1, 17}}, {2, {7, 1}, 3, {2, 7, 9}},  {3, {2, 1, 3}, 3, {1, 4, 1}},
      {2, {3, 40000}, 1, {40000}},        {2, {40000, 1}, 2, {1, 3}}, {4, {1, 1, 1, 1}, 2, {33, 9}},
      {1, {1}, 4, {2, 2, 2, 2}},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    vz_tensor *a = random_tensor(cases[i].na, cases[i].a, -2.0f, 2.0f);
    vz_tensor *b = random_tensor(cases[i].nb, cases[i].b, 0.5f, 3.0f);
    char label[64];
    snprintf(label, sizeof label, "broadcast case %zu", i);
    check_binary_f32(label, a, b);
    vz_tensor_free(a);
    vz_tensor_free(b);
  }
  /* a 0-d scalar on either side */
  float v = 1.75f;
  vz_tensor *s = test_tensor(be, 0, NULL, &v);
  int64_t shape[] = {5, 33};
  vz_tensor *m = random_tensor(2, shape, -2.0f, 2.0f);
  check_binary_f32("scalar op matrix", s, m);
  check_binary_f32("matrix op scalar", m, s);
  check_binary_f32("scalar op scalar", s, s);
  vz_tensor_free(s);
  vz_tensor_free(m);
}

static void test_binary_strided(void) {
  int64_t s1[] = {7, 33}, s2[] = {33, 7};
  vz_tensor *base = random_tensor(2, s1, -2.0f, 2.0f);
  vz_tensor *other = random_tensor(2, s2, 0.5f, 2.0f);
  vz_tensor *tr = NULL;
  CHECK_OK(vz_transpose(base, 0, 1, &tr));
  check_binary_f32("transposed op dense", tr, other);
  check_binary_f32("dense op transposed", other, tr);
  check_binary_f32("transposed op transposed", tr, tr);

  /* a slice with step 3 against an expanded row */
  int64_t s3[] = {10, 40}, s4[] = {1, 12}, s5[] = {10, 12};
  vz_tensor *wide = random_tensor(2, s3, -2.0f, 2.0f);
  vz_tensor *row = random_tensor(2, s4, 0.5f, 2.0f);
  vz_tensor *sl = NULL, *ex = NULL;
  CHECK_OK(vz_slice(wide, 1, 3, 38, 3, &sl));
  CHECK_OK(vz_expand(row, 2, s5, &ex));
  if (sl && ex) {
    CHECK(sl->shape[1] == 12);
    check_binary_f32("sliced op expanded", sl, ex);
    check_binary_f32("expanded op sliced", ex, sl);
  }

  /* a reversed view (negative stride) */
  int64_t n = 1000, stride = -1;
  vz_tensor *v = random_tensor(1, &n, -2.0f, 2.0f);
  vz_tensor *w = random_tensor(1, &n, 0.5f, 2.0f);
  vz_tensor *rev = NULL;
  CHECK_OK(vz_tensor_view(v, 1, &n, &stride, n - 1, &rev));
  if (rev) {
    check_binary_f32("reversed op dense", rev, w);
    check_binary_f32("dense op reversed", w, rev);
  }
  vz_tensor *tensors[] = {base, other, tr, wide, row, sl, ex, v, w, rev};
  for (size_t i = 0; i < sizeof tensors / sizeof *tensors; i++)
    vz_tensor_free(tensors[i]);
}

/* ---- integer arithmetic ---- */

static void test_binary_int(void) {
  int64_t sa[] = {3, 1, 37}, sb[] = {4, 37}, so[] = {3, 4, 37};
  int64_t na = 3 * 37, nb = 4 * 37, no = 3 * 4 * 37;
  int64_t *a64 = malloc(sizeof(int64_t) * (size_t)na), *b64 = malloc(sizeof(int64_t) * (size_t)nb);
  int32_t *a32 = malloc(sizeof(int32_t) * (size_t)na), *b32 = malloc(sizeof(int32_t) * (size_t)nb);
  for (int64_t i = 0; i < na; i++)
    a32[i] = (int32_t)(a64[i] = (int64_t)(test_next() % 2001) - 1000);
  for (int64_t i = 0; i < nb; i++) {
    int64_t v = (int64_t)(test_next() % 101) - 50;
    b32[i] = (int32_t)(b64[i] = v == 0 ? 7 : v);
  }
  vz_tensor *ta64 = test_tensor_of(be, VZ_I64, 3, sa, a64),
            *tb64 = test_tensor_of(be, VZ_I64, 2, sb, b64);
  vz_tensor *ta32 = test_tensor_of(be, VZ_I32, 3, sa, a32),
            *tb32 = test_tensor_of(be, VZ_I32, 2, sb, b32);
  for (int k = 0; k < 4; k++) {
    vz_tensor *o64 = NULL, *o32 = NULL;
    CHECK_OK(binary_fns[k](ta64, tb64, &o64));
    CHECK_OK(binary_fns[k](ta32, tb32, &o32));
    if (!o64 || !o32)
      continue;
    CHECK(o64->dtype == VZ_I64 && o32->dtype == VZ_I32 && o64->ndim == 3 && o64->shape[1] == so[1]);
    int64_t *g64 = test_read_bytes(o64);
    int32_t *g32 = test_read_bytes(o32);
    int bad = 0;
    for (int64_t i = 0; i < no; i++) {
      double x = (double)a64[source_index(3, so, i, 3, sa)];
      double y = (double)b64[source_index(3, so, i, 2, sb)];
      double r = binary_ops[k] == VZ_OP_DIV ? trunc(x / y) : apply_op(binary_ops[k], x, y);
      if (g64[i] != (int64_t)r || g32[i] != (int32_t)r)
        bad++;
    }
    if (bad) {
      fprintf(stderr, "integer %s: %d wrong elements\n", binary_names[k], bad);
      test_failures++;
    }
    free(g64);
    free(g32);
    vz_tensor_free(o64);
    vz_tensor_free(o32);
  }

  /* wrap-around and the one overflowing division, as two's complement */
  int32_t edge_a[] = {INT32_MAX, INT32_MIN, INT32_MIN, -7, 7};
  int32_t edge_b[] = {1, -1, -1, 2, -2};
  int64_t five = 5;
  vz_tensor *ea = test_tensor_of(be, VZ_I32, 1, &five, edge_a);
  vz_tensor *eb = test_tensor_of(be, VZ_I32, 1, &five, edge_b);
  vz_tensor *sum = NULL, *quot = NULL;
  CHECK_OK(vz_add(ea, eb, &sum));
  CHECK_OK(vz_div(ea, eb, &quot));
  if (sum && quot) {
    int32_t *s = test_read_bytes(sum), *q = test_read_bytes(quot);
    CHECK(s[0] == INT32_MIN);
    CHECK(q[1] == INT32_MIN && q[3] == -3 && q[4] == -3);
    free(s);
    free(q);
  }
  /* an integer zero divisor is an error */
  int32_t zeros[5] = {1, 2, 0, 4, 5};
  vz_tensor *ez = test_tensor_of(be, VZ_I32, 1, &five, zeros);
  vz_tensor *bad = NULL;
  CHECK_FAILS(vz_div(ea, ez, &bad), VZ_ERR_INVALID_ARGUMENT);
  CHECK(bad == NULL);
  vz_tensor *tensors[] = {ta64, tb64, ta32, tb32, ea, eb, sum, quot, ez};
  for (size_t i = 0; i < sizeof tensors / sizeof *tensors; i++)
    vz_tensor_free(tensors[i]);
  free(a64);
  free(b64);
  free(a32);
  free(b32);
}

/* ---- activations ---- */

static double ref_sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }
static double ref_silu(double x) { return x / (1.0 + exp(-x)); }
static double ref_quick_gelu(double x) { return x / (1.0 + exp(-(double)1.702f * x)); }
static double ref_gelu_erf(double x) { return x * 0.5 * erfc(-x / sqrt(2.0)); }
/* 0.5 x (1 + tanh(u)) written as x / (1 + e^(-2u)), exact in double */
static double ref_gelu_tanh(double x) {
  double u = sqrt(2.0 / 3.14159265358979323846) * (x + 0.044715 * x * x * x);
  return x / (1.0 + exp(-2.0 * u));
}
static double ref_relu(double x) { return isnan(x) ? x : x > 0 ? x : 0.0; }

typedef vz_status (*unary_fn)(const vz_tensor *, vz_tensor **);

static void test_activations(void) {
  static const float specials[] = {
      0.0f,     -0.0f,    1e-30f,   -1e-30f,   1e-8f,    -1e-8f, 0.5f,    -0.5f,  1.2499f,
      -1.2499f, 1.25f,    -1.25f,   1.2501f,   -1.2501f, 3.0f,   -3.0f,   5.0f,   -5.0f,
      10.0f,    -10.0f,   13.0f,    -13.0f,    14.4f,    -14.4f, 20.0f,   -20.0f, 50.0f,
      -50.0f,   87.0f,    -87.0f,   88.0f,     -88.0f,   100.0f, -100.0f, 1e10f,  -1e10f,
      FLT_MAX,  -FLT_MAX, INFINITY, -INFINITY, NAN};
  int64_t n_special = sizeof specials / sizeof *specials;
  int64_t n_ramp = 4099, n_rand = 1000;
  int64_t n = n_special + n_ramp + n_rand;
  float *x = malloc((size_t)n * sizeof *x);
  memcpy(x, specials, sizeof specials);
  for (int64_t i = 0; i < n_ramp; i++)
    x[n_special + i] = -20.0f + 40.0f * (float)i / (float)(n_ramp - 1);
  for (int64_t i = 0; i < n_rand; i++)
    x[n_special + n_ramp + i] = test_uniform(-8.0f, 8.0f);
  static const struct {
    const char *name;
    unary_fn fn;
    double (*ref)(double);
    float rtol;
  } acts[] = {
      {"sigmoid", vz_sigmoid, ref_sigmoid, 1e-5f},
      {"silu", vz_silu, ref_silu, 1e-5f},
      {"quick_gelu", vz_quick_gelu, ref_quick_gelu, 1e-5f},
      {"gelu_erf", vz_gelu_erf, ref_gelu_erf, 1e-5f},
      {"gelu_tanh", vz_gelu_tanh, ref_gelu_tanh, 3e-5f},
      {"relu", vz_relu, ref_relu, 0.0f},
  };
  float *want = malloc((size_t)n * sizeof *want);
  /* odd lengths: every tail size of a vector, and the whole set */
  const int64_t lengths[] = {1, 7, 33, n};
  for (size_t a = 0; a < sizeof acts / sizeof *acts; a++) {
    for (int64_t i = 0; i < n; i++)
      want[i] = (float)acts[a].ref(x[i]);
    for (size_t l = 0; l < sizeof lengths / sizeof *lengths; l++) {
      int64_t len = lengths[l];
      /* start past the specials for the short runs, so they see ramp values */
      const float *src = len == n ? x : x + n_special + 2000;
      const float *ref = len == n ? want : want + n_special + 2000;
      vz_tensor *t = test_tensor(be, 1, &len, src), *out = NULL;
      CHECK_OK(acts[a].fn(t, &out));
      float *got = out ? test_read_f32(out) : NULL;
      char label[64];
      snprintf(label, sizeof label, "%s [%lld]", acts[a].name, (long long)len);
      test_close(label, got, ref, len, 1e-37f, acts[a].rtol);
      if (got && a == 3) { /* exact GELU: absolute 1e-6 everywhere finite */
        for (int64_t i = 0; i < len; i++)
          if (isfinite(ref[i]) && fabsf(got[i] - ref[i]) > 1e-6f) {
            fprintf(stderr, "gelu_erf abs error %g at x=%g\n", fabsf(got[i] - ref[i]), src[i]);
            test_failures++;
            break;
          }
      }
      free(got);
      vz_tensor_free(out);
      vz_tensor_free(t);
    }
  }
  /* specific values: NaN in, NaN out; limits at the infinities (the
   * x * f(x) forms give NaN at -inf, as PyTorch's do) */
  int64_t four = 4;
  float sp[] = {NAN, INFINITY, -INFINITY, -100.0f};
  vz_tensor *t = test_tensor(be, 1, &four, sp);
  for (size_t a = 0; a < sizeof acts / sizeof *acts; a++) {
    vz_tensor *out = NULL;
    CHECK_OK(acts[a].fn(t, &out));
    float *g = out ? test_read_f32(out) : NULL;
    if (!g)
      continue;
    CHECK(isnan(g[0]));
    if (a == 0) {
      CHECK(g[1] == 1.0f && g[2] == 0.0f && g[3] > 0.0f && g[3] < 1e-40f);
    } else if (a == 5) {
      CHECK(g[1] == INFINITY && g[2] == 0.0f && g[3] == 0.0f);
    } else {
      CHECK(g[1] == INFINITY && isnan(g[2]) && g[3] <= 0.0f && g[3] > -1e-30f);
    }
    free(g);
    vz_tensor_free(out);
  }
  vz_tensor_free(t);
  free(x);
  free(want);
}

static void test_scale_and_reuse(void) {
  int64_t shape[] = {3, 1001};
  int64_t n = 3 * 1001;
  float *x = test_random_floats(n, -5.0f, 5.0f);
  vz_tensor *t = test_tensor(be, 2, shape, x);
  float *want = malloc((size_t)n * sizeof *want);
  const float factors[] = {0.125f, -3.0f, 0.37f};
  for (size_t f = 0; f < 3; f++) {
    for (int64_t i = 0; i < n; i++)
      want[i] = (float)((double)x[i] * factors[f]);
    vz_tensor *out = NULL;
    CHECK_OK(vz_scale(t, factors[f], &out));
    test_close_tensor("scale", out, want, n, 0.0f, 0.0f);
    vz_tensor_free(out);
  }

  /* a preallocated output is overwritten in place */
  vz_tensor *out = NULL;
  CHECK_OK(vz_tensor_zeros(be, VZ_F32, 2, shape, &out));
  vz_tensor *given = out;
  CHECK_OK(vz_scale(t, 2.0f, &out));
  CHECK(out == given);
  CHECK_OK(vz_add(t, t, &out));
  CHECK(out == given);
  for (int64_t i = 0; i < n; i++)
    want[i] = x[i] + x[i];
  test_close_tensor("add into a given output", out, want, n, 0.0f, 0.0f);
  /* in place: the input is its own output */
  CHECK_OK(vz_relu(out, &out));
  for (int64_t i = 0; i < n; i++)
    want[i] = want[i] > 0 ? want[i] : 0.0f;
  test_close_tensor("relu in place", out, want, n, 0.0f, 0.0f);
  /* strided input to an activation (the dispatcher makes it dense) */
  vz_tensor *tr = NULL, *act = NULL;
  CHECK_OK(vz_transpose(t, 0, 1, &tr));
  CHECK_OK(vz_sigmoid(tr, &act));
  if (act) {
    CHECK(act->shape[0] == 1001 && act->shape[1] == 3);
    float *g = test_read_f32(act);
    for (int64_t i = 0; i < 1001; i++)
      for (int64_t j = 0; j < 3; j++)
        want[i * 3 + j] = (float)ref_sigmoid(x[j * 1001 + i]);
    test_close("sigmoid of a transposed view", g, want, n, 0.0f, 1e-5f);
    free(g);
  }
  /* a given output of the wrong shape or dtype is refused */
  int64_t wrong_shape[] = {3, 1000};
  vz_tensor *wrong = NULL;
  CHECK_OK(vz_tensor_new(be, VZ_F32, 2, wrong_shape, &wrong));
  CHECK_FAILS(vz_add(t, t, &wrong), VZ_ERR_SHAPE);
  vz_tensor *wrong_dtype = NULL;
  CHECK_OK(vz_tensor_new(be, VZ_I32, 2, shape, &wrong_dtype));
  CHECK_FAILS(vz_gelu_erf(t, &wrong_dtype), VZ_ERR_SHAPE);
  vz_tensor *tensors[] = {t, out, tr, act, wrong, wrong_dtype};
  for (size_t i = 0; i < sizeof tensors / sizeof *tensors; i++)
    vz_tensor_free(tensors[i]);
  free(x);
  free(want);
}

/* ---- where ---- */

/* where for values of any dtype, checked byte for byte. */
static void check_where(const char *what, const vz_tensor *c, const vz_tensor *a,
                        const vz_tensor *b) {
  uint8_t *hc = test_read_bytes(c);
  char *ha = test_read_bytes(a), *hb = test_read_bytes(b);
  int64_t ab[VZ_MAX_DIMS], shape[VZ_MAX_DIMS];
  int nab = broadcast_shape(a->ndim, a->shape, b->ndim, b->shape, ab);
  int nd = broadcast_shape(c->ndim, c->shape, nab, ab, shape);
  int64_t n = test_numel(nd, shape);
  size_t es = vz_dtype_size(a->dtype);
  vz_tensor *out = NULL;
  CHECK_OK(vz_where(c, a, b, &out));
  char *got = out ? test_read_bytes(out) : NULL;
  if (got) {
    CHECK(out->dtype == a->dtype && out->ndim == nd);
    int bad = 0;
    for (int64_t i = 0; i < n; i++) {
      bool pick = hc[source_index(nd, shape, i, c->ndim, c->shape)] != 0;
      const char *src = pick ? ha + source_index(nd, shape, i, a->ndim, a->shape) * (int64_t)es
                             : hb + source_index(nd, shape, i, b->ndim, b->shape) * (int64_t)es;
      if (memcmp(got + i * (int64_t)es, src, es) != 0)
        bad++;
    }
    if (bad) {
      fprintf(stderr, "where %s: %d wrong elements\n", what, bad);
      test_failures++;
    }
  }
  free(got);
  vz_tensor_free(out);
  free(hc);
  free(ha);
  free(hb);
}

static vz_tensor *random_bytes(vz_dtype dt, int ndim, const int64_t *shape) {
  int64_t bytes = test_numel(ndim, shape) * (int64_t)vz_dtype_size(dt);
  uint8_t *p = malloc((size_t)bytes);
  for (int64_t i = 0; i < bytes; i++)
    p[i] = (uint8_t)test_next();
  if (dt == VZ_BOOL)
    for (int64_t i = 0; i < bytes; i++)
      p[i] &= 1;
  vz_tensor *t = test_tensor_of(be, dt, ndim, shape, p);
  free(p);
  return t;
}

static void test_where(void) {
  const vz_dtype dtypes[] = {VZ_F32, VZ_I64, VZ_F16, VZ_U8, VZ_I32, VZ_BOOL};
  int64_t s31[] = {3, 1}, s14[] = {1, 4}, s34[] = {3, 4}, s43[] = {4, 3}, s64[] = {6, 4};
  int64_t s4[] = {4}, s234[] = {2, 3, 4}, big[] = {2, 5000}, row[] = {5000};
  for (size_t d = 0; d < sizeof dtypes / sizeof *dtypes; d++) {
    vz_dtype dt = dtypes[d];
    vz_tensor *c31 = random_bytes(VZ_BOOL, 2, s31), *a14 = random_bytes(dt, 2, s14);
    vz_tensor *b34 = random_bytes(dt, 2, s34);
    check_where("broadcast [3,1] [1,4] [3,4]", c31, a14, b34);
    /* strided: a transposed b, an expanded a, a stepped cond (u8) */
    vz_tensor *b43 = random_bytes(dt, 2, s43), *c64 = random_bytes(VZ_U8, 2, s64);
    vz_tensor *bt = NULL, *ae = NULL, *cs = NULL;
    CHECK_OK(vz_transpose(b43, 0, 1, &bt));
    CHECK_OK(vz_expand(a14, 2, s34, &ae));
    CHECK_OK(vz_slice(c64, 0, 0, 6, 2, &cs));
    if (bt && ae && cs)
      check_where("strided", cs, ae, bt);
    /* rank differences and a 0-d value */
    vz_tensor *c4 = random_bytes(VZ_BOOL, 1, s4), *a234 = random_bytes(dt, 3, s234);
    vz_tensor *b0 = random_bytes(dt, 0, NULL);
    check_where("ranks [4] [2,3,4] []", c4, a234, b0);
    check_where("ranks [4] [] [2,3,4]", c4, b0, a234);
    /* long rows split between tasks */
    vz_tensor *cb = random_bytes(VZ_U8, 2, big), *ar = random_bytes(dt, 1, row);
    vz_tensor *bb = random_bytes(dt, 2, big);
    check_where("long rows", cb, ar, bb);
    vz_tensor *tensors[] = {c31, a14, b34, b43, c64, bt, ae, cs, c4, a234, b0, cb, ar, bb};
    for (size_t i = 0; i < sizeof tensors / sizeof *tensors; i++)
      vz_tensor_free(tensors[i]);
  }
}

/* ---- errors ---- */

static void test_errors(void) {
  int64_t s3[] = {3}, s4[] = {4};
  float f[4] = {1, 2, 3, 4};
  int32_t i[4] = {1, 2, 3, 4};
  uint8_t u[4] = {1, 0, 1, 0};
  vz_tensor *f3 = test_tensor(be, 1, s3, f), *f4 = test_tensor(be, 1, s4, f);
  vz_tensor *i3 = test_tensor_of(be, VZ_I32, 1, s3, i);
  vz_tensor *b3 = test_tensor_of(be, VZ_BOOL, 1, s3, u);
  vz_tensor *out = NULL;
  CHECK_FAILS(vz_add(f3, i3, &out), VZ_ERR_DTYPE);
  CHECK_FAILS(vz_mul(b3, b3, &out), VZ_ERR_DTYPE);
  CHECK_FAILS(vz_sub(f3, f4, &out), VZ_ERR_SHAPE);
  CHECK_FAILS(vz_add(NULL, f3, &out), VZ_ERR_INVALID_ARGUMENT);
  CHECK_FAILS(vz_gelu_erf(i3, &out), VZ_ERR_DTYPE);
  CHECK_FAILS(vz_silu(b3, &out), VZ_ERR_DTYPE);
  CHECK_FAILS(vz_scale(i3, 2.0f, &out), VZ_ERR_DTYPE);
  CHECK_FAILS(vz_where(f3, f3, f3, &out), VZ_ERR_DTYPE);
  CHECK_FAILS(vz_where(b3, f3, i3, &out), VZ_ERR_DTYPE);
  CHECK_FAILS(vz_where(b3, f4, f4, &out), VZ_ERR_SHAPE);
  CHECK(out == NULL);
  vz_tensor_free(f3);
  vz_tensor_free(f4);
  vz_tensor_free(i3);
  vz_tensor_free(b3);
}

/* ---- 16-bit conversions of the vector path ---- */

/* The table of the path VLZOO_CPU_ISA names (test_backend() has already
 * skipped a path this processor lacks), or of the best path. */
static const vz_cpu_simd *active_path(void) {
  vz_cpu_isa isa;
  return vz_cpu_simd_of(vz_cpu_select_isa(&isa) == VZ_OK ? isa : VZ_ISA_SCALAR);
}

/* Converts in[0..n) with the path, at offsets 0 and 1 (so every vector
 * sits misaligned once and every tail length occurs), against the scalar
 * functions. */
static void check_to_16(const vz_cpu_simd *simd, const float *in, int64_t n) {
  uint16_t *got = malloc((size_t)n * 2), *want = malloc((size_t)n * 2);
  for (int bf = 0; bf < 2; bf++) {
    for (int64_t i = 0; i < n; i++)
      want[i] = bf ? vz_f32_to_bf16(in[i]) : vz_f32_to_f16(in[i]);
    for (int64_t start = 0; start < 2 && start < n; start++) {
      memset(got, 0xa5, (size_t)n * 2);
      (bf ? simd->f32_to_bf16 : simd->f32_to_f16)(in + start, got + start, n - start);
      for (int64_t i = start; i < n; i++) {
        if (got[i] != want[i]) {
          fprintf(stderr, "%s f32_to_%s(0x%08x) = 0x%04x, scalar gives 0x%04x\n", simd->name,
                  bf ? "bf16" : "f16", test_float_bits(in[i]), got[i], want[i]);
          test_failures++;
          break;
        }
      }
    }
  }
  free(got);
  free(want);
}

static void test_conversions(void) {
  const vz_cpu_simd *simd = active_path();
  printf("16-bit conversions of the %s path\n", simd->name);
  /* every 16-bit pattern to f32, through both entry offsets and a tail */
  int64_t n = 65536 + 5;
  uint16_t *h = malloc((size_t)n * 2);
  float *f = malloc((size_t)n * sizeof *f);
  for (int64_t i = 0; i < n; i++)
    h[i] = (uint16_t)i;
  for (int bf = 0; bf < 2; bf++) {
    for (int64_t start = 0; start < 2; start++) {
      memset(f, 0xa5, (size_t)n * sizeof *f);
      (bf ? simd->bf16_to_f32 : simd->f16_to_f32)(h + start, f + start, n - start);
      for (int64_t i = start; i < n; i++) {
        float want = bf ? vz_bf16_to_f32(h[i]) : vz_f16_to_f32(h[i]);
        if (test_float_bits(f[i]) != test_float_bits(want)) {
          fprintf(stderr, "%s %s_to_f32(0x%04x) = 0x%08x, scalar gives 0x%08x\n", simd->name,
                  bf ? "bf16" : "f16", h[i], test_float_bits(f[i]), test_float_bits(want));
          test_failures++;
          break;
        }
      }
    }
  }
  free(h);
  free(f);

  /* f32 to 16 bits: structured patterns around every rounding boundary,
   * then random bit patterns */
  static const uint32_t lows[] = {0x0000, 0x0001, 0x0fff, 0x1000, 0x1001, 0x1fff, 0x2000,
                                  0x3000, 0x7fff, 0x8000, 0x8001, 0xbfff, 0xffff};
  int64_t nl = sizeof lows / sizeof *lows;
  int64_t m = 65536 * nl;
  float *in = malloc((size_t)m * sizeof *in);
  for (int64_t hi = 0; hi < 65536; hi++)
    for (int64_t k = 0; k < nl; k++)
      in[hi * nl + k] = test_bits_float((uint32_t)hi << 16 | lows[k]);
  check_to_16(simd, in, m);
  /* f16's own boundaries: each finite f16 value and the points half an f16
   * step around it (ties included) */
  int64_t p = 0;
  for (uint32_t v = 0; v < 0x10000; v++) {
    float x = vz_f16_to_f32((uint16_t)v);
    if (!isfinite(x))
      continue;
    uint32_t b = test_float_bits(x);
    const int32_t deltas[] = {0, 1, -1, 0x1000, -0x1000, 0xfff, 0x1001};
    for (int k = 0; k < 7 && p < m; k++)
      in[p++] = test_bits_float(b + (uint32_t)deltas[k]);
  }
  static const uint32_t specials[] = {
      0x00000000, 0x80000000, 0x00000001, 0x80000001, 0x007fffff, 0x00800000, 0x7f7fffff,
      0x7f800000, 0xff800000, 0x7f800001, 0xff800001, 0x7fc00000, 0xffc00000, 0x7fffffff,
      0xffffffff, 0x7fa00000, 0x477fe000, 0x477fefff, 0x477ff000, 0x477ff001, 0x33000000,
      0x33000001, 0x32ffffff, 0x387fc000, 0x387fe000, 0x38800000, 0x3f800000, 0xc77ff000};
  for (size_t k = 0; k < sizeof specials / sizeof *specials && p < m; k++)
    in[p++] = test_bits_float(specials[k]);
  check_to_16(simd, in, p);
  /* random bit patterns */
  for (int round = 0; round < 4; round++) {
    for (int64_t i = 0; i < m; i++)
      in[i] = test_bits_float((uint32_t)test_next());
    check_to_16(simd, in, m);
  }
  free(in);
}

int main(void) {
  be = test_backend();
  test_seed(11);
  test_binary_sizes();
  test_binary_broadcast();
  test_binary_strided();
  test_binary_int();
  test_activations();
  test_scale_and_reuse();
  test_where();
  test_errors();
  test_conversions();
  vz_backend_free(be);
  return test_finish("op_elementwise");
}

/* matmul against a double-precision reference: sizes, transposes, batch
 * broadcasting, strided views, the 4K-aliasing copy, bf16 and f16
 * operands, output reuse and errors; the packed GEMM's tails and its
 * independence from the thread count; linear (the fused Linear layer)
 * against the reference and against the separate ops. */
#define _POSIX_C_SOURCE 200809L /* setenv, strdup */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backends/cpu/cpu_matmul.h"
#include "tests/test_util.h"

static vz_backend *be;
static bool on_cpu;
static bool packed_path; /* the CPU's AVX2 path, which has the packed GEMM */
static bool f16_path;    /* the CPU's avx512fp16 path: f16 products for f16 weights */

/* Whether the CPU runs op(a) op(b) on its packed GEMM: on the AVX2 path,
 * for one b matrix and at least 32 rows of output (cpu_matmul.c). The
 * oneDNN strategies the checks below name are for the other cases. */
static bool packed_gemm_runs(const vz_tensor *a, const vz_tensor *b, bool ta) {
  if (!packed_path)
    return false;
  int64_t rows = a->shape[a->ndim - (ta ? 1 : 2)];
  for (int d = 0; d < a->ndim - 2; d++)
    rows *= a->shape[d];
  for (int d = 0; d < b->ndim - 2; d++)
    if (b->shape[d] != 1)
      return false;
  return rows >= 32;
}

/* The CPU's strategy for op(a) op(b). */
static const char *kernel_of(const vz_tensor *a, const vz_tensor *b, bool ta, bool tb) {
  vz_op_call call = {.op = VZ_OP_MATMUL, .n_inputs = 2, .inputs = {a, b}, .n_outputs = 1};
  call.attrs.matmul.trans_a = ta;
  call.attrs.matmul.trans_b = tb;
  const char *name = vz_cpu_matmul_kernel_name(&call);
  return name ? name : "(null)";
}

/* Whether the CPU multiplies op(a) op(b) with f16 products
 * (cpu_gemm_f16.c): on the avx512fp16 path, f32 a with K contiguous times
 * one f16 or bf16 weight [N, K] (the tests' 16-bit operands are
 * contiguous); bf16 only where oneDNN's bf16 primitive does not run on AMX
 * tiles, which only the kernel's name tells. */
static bool f16_products_run(const vz_tensor *a, const vz_tensor *b, bool ta, bool tb) {
  int64_t k = a->shape[a->ndim - (ta ? 2 : 1)];
  if (!f16_path || a->dtype != VZ_F32 || (b->dtype != VZ_F16 && b->dtype != VZ_BF16) || k == 0 ||
      vz_tensor_numel(a) == 0 || vz_tensor_numel(b) == 0)
    return false;
  for (int d = 0; d < b->ndim - 2; d++)
    if (b->shape[d] != 1)
      return false;
  if (b->dtype == VZ_BF16 && strcmp(kernel_of(a, b, ta, tb), "onednn_bf16_matmul") == 0)
    return false;
  return (tb || k == 1) && (!ta || k == 1) && a->stride[a->ndim - (ta ? 2 : 1)] == 1;
}

/* The name of the f16-product kernel for weight b. */
static const char *f16_products_kernel(const vz_tensor *b) {
  return b->dtype == VZ_BF16 ? "bf16_f16_products_avx512fp16" : "f16_products_avx512fp16";
}

/* A tensor of `dtype` holding `vals` converted (rounded) to it. */
static vz_tensor *make(vz_dtype dtype, int ndim, const int64_t *shape, const float *vals) {
  int64_t n = test_numel(ndim, shape);
  if (dtype == VZ_F32)
    return test_tensor(be, ndim, shape, vals);
  uint16_t *h = malloc((size_t)(n ? n : 1) * sizeof *h);
  for (int64_t i = 0; i < n; i++)
    h[i] = dtype == VZ_BF16 ? vz_f32_to_bf16(vals[i]) : vz_f32_to_f16(vals[i]);
  vz_tensor *t = test_tensor_of(be, dtype, ndim, shape, h);
  free(h);
  return t;
}

static vz_tensor *random_tensor(vz_dtype dtype, int ndim, const int64_t *shape, bool normal) {
  int64_t n = test_numel(ndim, shape);
  float *v = test_random_floats(n, -1.0f, 1.0f);
  if (normal)
    for (int64_t i = 0; i < n; i++)
      v[i] = test_normal();
  vz_tensor *t = make(dtype, ndim, shape, v);
  free(v);
  return t;
}

/* A tensor's elements in row-major order; views on the CPU are read
 * through their strides, so that the test does not depend on vz_copy. */
static void *gather(const vz_tensor *t) {
  const char *host = vz_tensor_host_data(t);
  if (vz_tensor_is_contiguous(t) || !host)
    return test_read_bytes(t);
  size_t es = vz_dtype_size(t->dtype);
  int64_t n = vz_tensor_numel(t);
  char *out = malloc((size_t)(n ? n : 1) * es);
  for (int64_t i = 0; i < n; i++) {
    int64_t rest = i, off = 0;
    for (int d = t->ndim - 1; d >= 0; d--) {
      off += rest % t->shape[d] * t->stride[d];
      rest /= t->shape[d];
    }
    memcpy(out + (size_t)i * es, host + off * (int64_t)es, es);
  }
  return out;
}

/* A tensor's elements as doubles (row-major), rounded to `round_to` (bf16
 * or f16; f32: not rounded) first. */
static double *read_values(const vz_tensor *t, vz_dtype round_to) {
  int64_t n = vz_tensor_numel(t);
  void *raw = gather(t);
  double *d = malloc((size_t)(n ? n : 1) * sizeof *d);
  for (int64_t i = 0; i < n; i++) {
    float f = t->dtype == VZ_F32    ? ((float *)raw)[i]
              : t->dtype == VZ_BF16 ? vz_bf16_to_f32(((uint16_t *)raw)[i])
                                    : vz_f16_to_f32(((uint16_t *)raw)[i]);
    d[i] = round_to == VZ_BF16  ? vz_bf16_to_f32(vz_f32_to_bf16(f))
           : round_to == VZ_F16 ? vz_f16_to_f32(vz_f32_to_f16(f))
                                : f;
  }
  free(raw);
  return d;
}

/* Row-major offset of batch index `ob` of the output batch shape in an
 * operand of rank nd, broadcasting dimensions of size 1. */
static int64_t batch_offset(const vz_tensor *t, int nbatch, const int64_t *batch, int64_t ob,
                            int64_t matrix) {
  int64_t off = 0, mul = matrix;
  for (int d = nbatch - 1; d >= 0; d--) {
    int64_t i = ob % batch[d];
    ob /= batch[d];
    int j = d - (nbatch - (t->ndim - 2));
    if (j < 0)
      continue;
    if (t->shape[j] > 1)
      off += i * mul;
    mul *= t->shape[j];
  }
  return off;
}

typedef struct ref_result {
  float *want; /* reference */
  double *mag; /* sum |a||b| per element */
  int64_t n;
} ref_result;

/* op(a) op(b) in double from the operands' values: both rounded to f16
 * when `f16` (f16 products: a rounded, a bf16 weight converted), else to
 * bf16 when `bf16`. */
static ref_result reference(const vz_tensor *a, const vz_tensor *b, bool ta, bool tb, bool bf16,
                            bool f16) {
  vz_dtype round_to = f16 ? VZ_F16 : bf16 ? VZ_BF16 : VZ_F32;
  double *av = read_values(a, round_to);
  double *bv = read_values(b, round_to);
  int64_t m = a->shape[a->ndim - (ta ? 1 : 2)], k = a->shape[a->ndim - (ta ? 2 : 1)];
  int64_t n = b->shape[b->ndim - (tb ? 2 : 1)];
  int nbatch = (a->ndim > b->ndim ? a->ndim : b->ndim) - 2;
  int64_t batch[2] = {1, 1}, nbat = 1;
  for (int d = 0; d < nbatch; d++) {
    int ja = d - (nbatch - (a->ndim - 2)), jb = d - (nbatch - (b->ndim - 2));
    int64_t sa = ja >= 0 ? a->shape[ja] : 1, sb = jb >= 0 ? b->shape[jb] : 1;
    batch[d] = sa > sb ? sa : sb;
    nbat *= batch[d];
  }
  ref_result r = {malloc((size_t)(nbat * m * n + 1) * sizeof(float)),
                  malloc((size_t)(nbat * m * n + 1) * sizeof(double)), nbat * m * n};
  for (int64_t ob = 0; ob < nbat; ob++) {
    const double *am = av + batch_offset(a, nbatch, batch, ob, m * k);
    const double *bm = bv + batch_offset(b, nbatch, batch, ob, k * n);
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < n; j++) {
        double s = 0, g = 0;
        for (int64_t l = 0; l < k; l++) {
          double x = ta ? am[l * m + i] : am[i * k + l], y = tb ? bm[j * k + l] : bm[l * n + j];
          s += x * y;
          g += fabs(x * y);
        }
        r.want[(ob * m + i) * n + j] = (float)s;
        r.mag[(ob * m + i) * n + j] = g;
      }
  }
  free(av);
  free(bv);
  return r;
}

static void ref_free(ref_result *r) {
  free(r->want);
  free(r->mag);
}

/* Every |got - want| within rel * sum|a||b| + abs (plus the smallest
 * normal). */
static bool within(const char *what, const float *got, const ref_result *r, double rel,
                   double abs) {
  int bad = 0;
  for (int64_t i = 0; got && i < r->n; i++) {
    double err = fabs((double)got[i] - r->want[i]);
    if (!(err <= rel * r->mag[i] + abs + 1e-30)) {
      if (bad++ < 5)
        fprintf(stderr, "%s: element %lld is %.9g, expected %.9g (scale %.3g)\n", what,
                (long long)i, got[i], r->want[i], r->mag[i]);
    }
  }
  if (bad || !got) {
    fprintf(stderr, "%s: %d mismatches\n", what, bad);
    test_failures++;
    return false;
  }
  return true;
}

static void check_kernel(const char *what, const vz_tensor *a, const vz_tensor *b, bool ta, bool tb,
                         const char *expected) {
  if (!on_cpu || !expected)
    return;
  if (packed_gemm_runs(a, b, ta))
    expected = "packed_sgemm";
  if (f16_products_run(a, b, ta, tb))
    expected = f16_products_kernel(b);
  const char *name = kernel_of(a, b, ta, tb);
  if (strcmp(name, expected) != 0) {
    fprintf(stderr, "%s: kernel %s, expected %s\n", what, name, expected);
    test_failures++;
  }
}

/* Bound of f16 products relative to sum |a||b|: a rounding of 2^-11 for
 * each product and each f16 addition on the way to an output: a lane adds
 * at most 96 products (the pair tile; 64 in the row tile), the lanes are
 * summed in four levels (five), then chunks in f32; plus, in absolute
 * terms, half of f16's subnormal step (2^-25) per rounding. */
#define F16_PRODUCTS_REL (101.0 / 2048.0)
#define F16_PRODUCTS_ABS (101.0 / 33554432.0)

/* ||got - want|| / ||want|| at most `limit`: the typical error, far below
 * the worst-case bound, and far below the error of a misplaced term. */
static void normwise(const char *what, const float *got, const ref_result *r, double limit) {
  double e = 0, w = 0;
  for (int64_t i = 0; got && i < r->n; i++) {
    e += ((double)got[i] - r->want[i]) * ((double)got[i] - r->want[i]);
    w += (double)r->want[i] * r->want[i];
  }
  if (getenv("VLZOO_TEST_VERBOSE"))
    fprintf(stderr, "%s: normwise %.3g\n", what, w > 0 ? sqrt(e / w) : sqrt(e));
  if (!got || !(sqrt(e) <= limit * sqrt(w))) {
    fprintf(stderr, "%s: normwise error %.3g > %.3g\n", what, w > 0 ? sqrt(e / w) : sqrt(e), limit);
    test_failures++;
  }
}

/* Runs vz_matmul and compares with the reference at f32 accumulation
 * accuracy (at f16-product accuracy where the CPU takes that path);
 * `kernel` (may be NULL) is the strategy the CPU must pick. */
static void check(const char *what, const vz_tensor *a, const vz_tensor *b, bool ta, bool tb,
                  const char *kernel) {
  bool bf16 = a->dtype == VZ_BF16 || b->dtype == VZ_BF16;
  bool f16 = f16_products_run(a, b, ta, tb);
  vz_tensor *out = NULL;
  CHECK_OK(vz_matmul(a, b, ta, tb, &out));
  if (!out)
    return;
  float *got = test_read_f32(out);
  ref_result r = reference(a, b, ta, tb, bf16, f16);
  CHECK(vz_tensor_numel(out) == r.n);
  within(what, got, &r, f16 ? F16_PRODUCTS_REL : 1e-5, f16 ? F16_PRODUCTS_ABS : 0.0);
  if (f16)
    normwise(what, got, &r, 5e-3);
  check_kernel(what, a, b, ta, tb, kernel);
  ref_free(&r);
  free(got);
  vz_tensor_free(out);
}

static void test_sizes_and_transposes(void) {
  static const int64_t sizes[][3] = {{1, 1, 1},       {1, 7, 33},   {7, 1, 33},     {7, 33, 1},
                                     {33, 7, 257},    {257, 33, 7}, {1, 257, 1000}, {33, 1001, 65},
                                     {257, 65, 1031}, {3, 2, 1408}, {600, 70, 90}};
  for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
    int64_t m = sizes[s][0], n = sizes[s][1], k = sizes[s][2];
    for (int t = 0; t < 4; t++) {
      bool ta = t & 1, tb = t & 2;
      int64_t as[2] = {ta ? k : m, ta ? m : k}, bs[2] = {tb ? n : k, tb ? k : n};
      vz_tensor *a = random_tensor(VZ_F32, 2, as, false), *b = random_tensor(VZ_F32, 2, bs, false);
      char what[96];
      snprintf(what, sizeof what, "%lldx%lldx%lld ta=%d tb=%d", (long long)m, (long long)n,
               (long long)k, ta, tb);
      check(what, a, b, ta, tb, "onednn_sgemm");
      vz_tensor_free(a);
      vz_tensor_free(b);
    }
  }
}

static void test_batches(void) {
  /* [2,3,M,K] x [K,N]: one GEMM over all rows */
  vz_tensor *a = random_tensor(VZ_F32, 4, (int64_t[]){2, 3, 33, 65}, false);
  vz_tensor *w = random_tensor(VZ_F32, 2, (int64_t[]){65, 7}, false);
  check("[2,3,33,65] x [65,7]", a, w, false, false, "onednn_sgemm");
  vz_tensor *wt = random_tensor(VZ_F32, 2, (int64_t[]){7, 65}, false);
  check("[2,3,33,65] x [7,65]^T", a, wt, false, true, "onednn_sgemm");
  vz_tensor *at = NULL;
  CHECK_OK(vz_transpose(a, 2, 3, &at));
  check("([2,3,33,65] viewed as [2,3,65,33])^T x [7,65]^T", at, wt, true, true, "onednn_sgemm");
  vz_tensor_free(at);
  /* [2,1,M,K] x [1,3,K,N] */
  vz_tensor *a2 = random_tensor(VZ_F32, 4, (int64_t[]){2, 1, 17, 40}, false);
  vz_tensor *b2 = random_tensor(VZ_F32, 4, (int64_t[]){1, 3, 40, 9}, false);
  check("[2,1,17,40] x [1,3,40,9]", a2, b2, false, false, "onednn_sgemm");
  /* a broadcast against a batched b, and ranks 3 and 4 */
  vz_tensor *b3 = random_tensor(VZ_F32, 3, (int64_t[]){3, 40, 9}, false);
  check("[2,1,17,40] x [3,40,9]", a2, b3, false, false, "onednn_sgemm");
  vz_tensor *m2 = random_tensor(VZ_F32, 2, (int64_t[]){17, 40}, false);
  check("[17,40] x [3,40,9]", m2, b3, false, false, "onednn_sgemm");
  /* many small GEMMs, as attention heads: run one per thread */
  vz_tensor *q = random_tensor(VZ_F32, 3, (int64_t[]){16, 57, 88}, false);
  vz_tensor *k = random_tensor(VZ_F32, 3, (int64_t[]){16, 57, 88}, false);
  check("[16,57,88] x [16,57,88]^T", q, k, false, true, "onednn_sgemm");
  /* the same result twice: deterministic for a thread count */
  vz_tensor *o1 = NULL, *o2 = NULL;
  CHECK_OK(vz_matmul(q, k, false, true, &o1));
  CHECK_OK(vz_matmul(q, k, false, true, &o2));
  if (o1 && o2) {
    float *g1 = test_read_f32(o1), *g2 = test_read_f32(o2);
    CHECK(memcmp(g1, g2, vz_tensor_nbytes(o1)) == 0);
    free(g1);
    free(g2);
  }
  vz_tensor *t[] = {a, w, wt, a2, b2, b3, m2, q, k, o1, o2};
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
    vz_tensor_free(t[i]);
}

static void test_views(void) {
  /* rows of a and b inside wider tensors: leading dimensions > K */
  vz_tensor *abig = random_tensor(VZ_F32, 2, (int64_t[]){33, 100}, false);
  vz_tensor *bbig = random_tensor(VZ_F32, 2, (int64_t[]){60, 80}, false);
  vz_tensor *a = NULL, *b = NULL, *at = NULL, *bt = NULL, *as = NULL, *bs = NULL;
  CHECK_OK(vz_slice(abig, 1, 3, 60, 1, &a)); /* [33, 57] row stride 100 */
  CHECK_OK(vz_slice(bbig, 0, 1, 58, 1, &b)); /* [57, 80] row stride 80 */
  check("sliced a x sliced b", a, b, false, false, "onednn_sgemm");
  CHECK_OK(vz_slice(bbig, 1, 0, 57, 1, &bt)); /* [60, 57] used transposed */
  check("sliced a x sliced b^T", a, bt, false, true, "onednn_sgemm");
  /* transposed views: column-major operands */
  vz_tensor *a_cm = NULL, *b_cm = NULL;
  CHECK_OK(vz_transpose(a, 0, 1, &at)); /* [57, 33] with unit row stride */
  check("a^T view, trans_a", at, b, true, false, "onednn_sgemm");
  CHECK_OK(vz_transpose(bt, 0, 1, &b_cm)); /* [57, 50] column-major */
  check("a x (b^T view)", a, b_cm, false, false, "onednn_sgemm");
  CHECK_OK(vz_transpose(at, 0, 1, &a_cm));
  check("view of view", a_cm, b_cm, false, false, "onednn_sgemm");
  /* no unit stride: every other column */
  CHECK_OK(vz_slice(abig, 1, 0, 100, 2, &as)); /* [33, 50] strides (100, 2) */
  CHECK_OK(vz_slice(bbig, 0, 0, 50, 1, &bs));
  vz_tensor *bs2 = bs;
  bs = NULL;
  CHECK_OK(vz_slice(bs2, 1, 0, 80, 2, &bs)); /* [50, 40] strides (80, 2) */
  vz_tensor_free(bs2);
  check("stepped a x stepped b", as, bs, false, false, "onednn_sgemm_packed");
  /* batched: a batch slice that does not stack, and an expanded b */
  vz_tensor *a4 = random_tensor(VZ_F32, 3, (int64_t[]){6, 21, 30}, false), *a4s = NULL;
  CHECK_OK(vz_slice(a4, 0, 0, 6, 2, &a4s)); /* [3, 21, 30], batch stride 2 * 630 */
  vz_tensor *w = random_tensor(VZ_F32, 2, (int64_t[]){30, 11}, false), *we = NULL;
  check("batch-sliced a x w", a4s, w, false, false, "onednn_sgemm");
  CHECK_OK(vz_expand(w, 3, (int64_t[]){3, 30, 11}, &we));
  check("batch-sliced a x expanded w", a4s, we, false, false, "onednn_sgemm");
  vz_tensor *a4t = NULL;
  CHECK_OK(vz_transpose(a4s, 1, 2, &a4t)); /* [3, 30, 21] */
  check("batch-sliced transposed a", a4t, we, true, false, "onednn_sgemm");
  /* an expanded a: rows repeat (stride 0), which oneDNN cannot take */
  vz_tensor *row = random_tensor(VZ_F32, 2, (int64_t[]){1, 30}, false), *rows = NULL;
  CHECK_OK(vz_expand(row, 2, (int64_t[]){5, 30}, &rows));
  check("expanded rows x w", rows, w, false, false, "onednn_sgemm_packed");
  vz_tensor *t[] = {abig, bbig, a, b, at, bt, as, bs, a_cm, b_cm, a4, a4s, w, we, a4t, row, rows};
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
    vz_tensor_free(t[i]);
}

static void test_aliasing(void) {
  /* K = 1024: a's rows are 4 KiB apart -> copied with a padded stride */
  vz_tensor *a = random_tensor(VZ_F32, 2, (int64_t[]){100, 1024}, false);
  vz_tensor *b = random_tensor(VZ_F32, 2, (int64_t[]){96, 1024}, false);
  check("[100,1024] x [96,1024]^T", a, b, false, true, "onednn_sgemm_padded");
  /* K = 2048, batched a collapsed into one GEMM, b transposed */
  vz_tensor *a3 = random_tensor(VZ_F32, 3, (int64_t[]){2, 40, 2048}, false);
  vz_tensor *b3 = random_tensor(VZ_F32, 2, (int64_t[]){70, 2048}, false);
  check("[2,40,2048] x [70,2048]^T", a3, b3, false, true, "onednn_sgemm_padded");
  /* only b aliased: N = 1024 rows of [K, N] */
  vz_tensor *a2 = random_tensor(VZ_F32, 2, (int64_t[]){9, 100}, false);
  vz_tensor *b2 = random_tensor(VZ_F32, 2, (int64_t[]){100, 1024}, false);
  check("[9,100] x [100,1024]", a2, b2, false, false, "onednn_sgemm_padded");
  /* small: not worth a copy */
  vz_tensor *a1 = random_tensor(VZ_F32, 2, (int64_t[]){3, 1024}, false);
  vz_tensor *b1 = random_tensor(VZ_F32, 2, (int64_t[]){5, 1024}, false);
  check("[3,1024] x [5,1024]^T", a1, b1, false, true, "onednn_sgemm");
  vz_tensor *t[] = {a, b, a3, b3, a2, b2, a1, b1};
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
    vz_tensor_free(t[i]);
}

/* Max |got - want| / rms(want) and ||got - want|| / ||want||. */
static void error_vs(const float *got, const float *want, int64_t n, double *max_rel,
                     double *norm_rel) {
  double err2 = 0, ref2 = 0, maxerr = 0;
  for (int64_t i = 0; i < n; i++) {
    double e = fabs((double)got[i] - want[i]);
    err2 += e * e;
    ref2 += (double)want[i] * want[i];
    if (e > maxerr)
      maxerr = e;
  }
  *max_rel = maxerr / sqrt(ref2 / (double)n);
  *norm_rel = sqrt(err2 / ref2);
}

static void test_bf16(void) {
  int64_t m = 33, n = 65, k = 1408;
  /* the same N(0,1) data as f32 and as a bf16 weight [N, K] */
  float *av = malloc((size_t)(m * k) * sizeof *av), *bv = malloc((size_t)(n * k) * sizeof *bv);
  for (int64_t i = 0; i < m * k; i++)
    av[i] = test_normal();
  for (int64_t i = 0; i < n * k; i++)
    bv[i] = test_normal();
  int64_t as[2] = {m, k}, bs[2] = {n, k};
  vz_tensor *a = make(VZ_F32, 2, as, av), *b32 = make(VZ_F32, 2, bs, bv);
  vz_tensor *b16 = make(VZ_BF16, 2, bs, bv), *abf = make(VZ_BF16, 2, as, av);
  vz_tensor *ah = make(VZ_F16, 2, as, av);
  const char *bf16_kernel = NULL; /* either bf16 strategy is correct */
  check("f32 x bf16^T", a, b16, false, true, bf16_kernel);
  check("bf16 x f32^T", abf, b32, false, true, bf16_kernel);
  check("bf16 x bf16^T", abf, b16, false, true, bf16_kernel);
  check("f16 x bf16^T", ah, b16, false, true, bf16_kernel);
  if (on_cpu) {
    const char *name = kernel_of(a, b16, false, true);
    CHECK((strcmp(name, "bf16_widen_sgemm") == 0 || strcmp(name, "onednn_bf16_matmul") == 0 ||
           (packed_path && strcmp(name, "packed_sgemm") == 0) ||
           (f16_path && strcmp(name, "bf16_f16_products_avx512fp16") == 0)));
  }
  /* accuracy of bf16 against the f32 product on N(0,1) data, K = 1408:
   * operands rounded to 8 significant bits give errors of about
   * 2^-9 / sqrt(3) * sqrt(2) = 0.16% of the outputs' size */
  vz_tensor *o16 = NULL, *o32 = NULL;
  CHECK_OK(vz_matmul(a, b16, false, true, &o16));
  CHECK_OK(vz_matmul(a, b32, false, true, &o32));
  if (o16 && o32) {
    float *g16 = test_read_f32(o16), *g32 = test_read_f32(o32);
    double max_rel, norm_rel;
    error_vs(g16, g32, m * n, &max_rel, &norm_rel);
    printf("bf16 vs f32 on N(0,1), K=%lld: max error / rms %.2e, normwise %.2e\n", (long long)k,
           max_rel, norm_rel);
    CHECK(max_rel <= 1e-2);
    CHECK(norm_rel <= 4e-3);
    free(g16);
    free(g32);
  }
  /* a bf16 weight used untransposed, strided and batched */
  vz_tensor *w = random_tensor(VZ_BF16, 2, (int64_t[]){257, 300}, false), *ws = NULL;
  vz_tensor *x = random_tensor(VZ_F32, 3, (int64_t[]){2, 5, 257}, false);
  check("[2,5,257] x bf16 [257,300]", x, w, false, false, NULL);
  CHECK_OK(vz_slice(w, 1, 1, 300, 3, &ws)); /* no unit stride */
  check("[2,5,257] x stepped bf16", x, ws, false, false, NULL);
  vz_tensor *wb = random_tensor(VZ_BF16, 3, (int64_t[]){2, 257, 300}, false);
  check("[2,5,257] x bf16 [2,257,300]", x, wb, false, false, NULL);
  vz_tensor *t[] = {a, b32, b16, abf, ah, o16, o32, w, ws, x, wb};
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
    vz_tensor_free(t[i]);
  free(av);
  free(bv);
}

/* Small integers times eighths: every product and sum is exact in f32, and
 * in the f16 lanes of the f16-product GEMM too (|a b| <= 8 in steps of
 * 1/8, at most 9 products per lane for K = 257: |lane| <= 72, well inside
 * f16's 11 bits at that step), so the result must be exact. */
static void test_exact_widening(vz_dtype dtype, const char *kernel) {
  int64_t m = 19, n = 130, k = 257;
  float *av = malloc((size_t)(m * k) * sizeof *av), *bv = malloc((size_t)(n * k) * sizeof *bv);
  for (int64_t i = 0; i < m * k; i++)
    av[i] = (float)((int)(test_next() % 9) - 4);
  for (int64_t i = 0; i < n * k; i++)
    bv[i] = (float)((int)(test_next() % 33) - 16) / 8.0f;
  vz_tensor *a = make(VZ_F32, 2, (int64_t[]){m, k}, av);
  vz_tensor *b = make(dtype, 2, (int64_t[]){n, k}, bv);
  float *want = malloc((size_t)(m * n) * sizeof *want);
  for (int64_t i = 0; i < m; i++)
    for (int64_t j = 0; j < n; j++) {
      double s = 0;
      for (int64_t l = 0; l < k; l++)
        s += (double)av[i * k + l] * bv[j * k + l];
      want[i * n + j] = (float)s;
    }
  vz_tensor *out = NULL;
  CHECK_OK(vz_matmul(a, b, false, true, &out));
  float *got = out ? test_read_f32(out) : NULL;
  char what[64];
  snprintf(what, sizeof what, "exact %s widening", vz_dtype_name(dtype));
  test_close(what, got, want, m * n, 0.0f, 0.0f);
  check_kernel(what, a, b, false, true, kernel);
  /* and the f16 weight at f32 accuracy on random data */
  free(got);
  free(want);
  free(av);
  free(bv);
  vz_tensor_free(a);
  vz_tensor_free(b);
  vz_tensor_free(out);
}

static void test_f16(void) {
  test_exact_widening(VZ_F16, "f16_widen_sgemm");
  test_exact_widening(VZ_BF16, NULL);
  vz_tensor *a = random_tensor(VZ_F32, 3, (int64_t[]){2, 33, 1031}, false);
  vz_tensor *w = random_tensor(VZ_F16, 2, (int64_t[]){257, 1031}, false);
  check("f32 x f16 [257,1031]^T", a, w, false, true, "f16_widen_sgemm");
  /* more rows than the tiled path takes: b converted in shared panels */
  vz_tensor *big = random_tensor(VZ_F32, 2, (int64_t[]){700, 64}, false);
  vz_tensor *wk = random_tensor(VZ_F16, 2, (int64_t[]){64, 1100}, false);
  check("[700,64] x f16 [64,1100]", big, wk, false, false, "f16_widen_sgemm");
  vz_tensor *wn = random_tensor(VZ_BF16, 2, (int64_t[]){1100, 64}, false);
  check("[700,64] x bf16 [1100,64]^T", big, wn, false, true, NULL);
  vz_tensor *a1k = random_tensor(VZ_F32, 2, (int64_t[]){600, 1024}, false);
  vz_tensor *w1k = random_tensor(VZ_F32, 2, (int64_t[]){40, 1024}, false);
  check("[600,1024] x [40,1024]^T", a1k, w1k, false, true, "onednn_sgemm_padded");
  vz_tensor *bk = random_tensor(VZ_F32, 2, (int64_t[]){64, 1024}, false);
  check("[700,64] x [64,1024]", big, bk, false, false, "onednn_sgemm_padded");
  vz_tensor *t[] = {big, wk, wn, a1k, w1k, bk};
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
    vz_tensor_free(t[i]);
  vz_tensor *ah = random_tensor(VZ_F16, 2, (int64_t[]){33, 64}, false);
  vz_tensor *b = random_tensor(VZ_F32, 2, (int64_t[]){64, 40}, false);
  check("f16 x f32", ah, b, false, false, "f16_widen_sgemm");
  check("f16 x f16^T", ah, ah, false, true, "f16_widen_sgemm");
  vz_tensor_free(a);
  vz_tensor_free(w);
  vz_tensor_free(ah);
  vz_tensor_free(b);
}

static void test_output_reuse(void) {
  vz_tensor *a = random_tensor(VZ_F32, 3, (int64_t[]){2, 9, 30}, false);
  vz_tensor *b = random_tensor(VZ_F32, 2, (int64_t[]){30, 12}, false);
  float *nan = malloc(2 * 9 * 12 * sizeof *nan);
  for (int i = 0; i < 2 * 9 * 12; i++)
    nan[i] = NAN;
  vz_tensor *out = test_tensor(be, 3, (int64_t[]){2, 9, 12}, nan), *given = out;
  CHECK_OK(vz_matmul(a, b, false, false, &out));
  CHECK(out == given);
  float *got = test_read_f32(out);
  ref_result r = reference(a, b, false, false, false, false);
  within("output reuse", got, &r, 1e-5, 0.0);
  ref_free(&r);
  free(got);
  vz_tensor *wrong = test_tensor(be, 3, (int64_t[]){2, 12, 9}, nan);
  CHECK_FAILS(vz_matmul(a, b, false, false, &wrong), VZ_ERR_SHAPE);
  free(nan);
  vz_tensor_free(out);
  vz_tensor_free(wrong);
  /* K = 0: empty sums give zeros */
  vz_tensor *a0 = NULL, *b0 = NULL, *o0 = NULL;
  CHECK_OK(vz_tensor_new(be, VZ_F32, 2, (int64_t[]){4, 0}, &a0));
  CHECK_OK(vz_tensor_new(be, VZ_F32, 2, (int64_t[]){0, 3}, &b0));
  CHECK_OK(vz_matmul(a0, b0, false, false, &o0));
  if (o0) {
    float *z = test_read_f32(o0);
    for (int i = 0; i < 12; i++)
      CHECK(z[i] == 0.0f);
    free(z);
  }
  vz_tensor_free(a0);
  vz_tensor_free(b0);
  vz_tensor_free(o0);
  vz_tensor_free(a);
  vz_tensor_free(b);
}

/* a x w^T on new CPU backends of 1 and 3 threads, bit for bit the result
 * of the default thread count. */
static void check_thread_independence(const char *what, const vz_tensor *a, const vz_tensor *w) {
  vz_tensor *want = NULL;
  CHECK_OK(vz_matmul(a, w, false, true, &want));
  float *ref = want ? test_read_f32(want) : NULL;
  const char *saved = getenv("VLZOO_THREADS");
  char *restore = saved ? strdup(saved) : NULL;
  for (int threads = 1; threads <= 3 && ref; threads += 2) {
    char count[8];
    snprintf(count, sizeof count, "%d", threads);
    setenv("VLZOO_THREADS", count, 1);
    vz_backend *other = NULL;
    CHECK_OK(vz_backend_create("cpu", &other));
    vz_tensor *a2 = NULL, *w2 = NULL, *got = NULL;
    void *av = test_read_bytes(a), *wv = test_read_bytes(w);
    CHECK_OK(vz_tensor_from_host(other, a->dtype, a->ndim, a->shape, av, vz_tensor_nbytes(a), &a2));
    CHECK_OK(vz_tensor_from_host(other, w->dtype, w->ndim, w->shape, wv, vz_tensor_nbytes(w), &w2));
    CHECK_OK(vz_matmul(a2, w2, false, true, &got));
    float *g = got ? test_read_f32(got) : NULL;
    if (!g || memcmp(g, ref, vz_tensor_nbytes(want)) != 0) {
      fprintf(stderr, "%s with %d threads differs from the default thread count\n", what, threads);
      test_failures++;
    }
    free(g);
    free(av);
    free(wv);
    vz_tensor_free(a2);
    vz_tensor_free(w2);
    vz_tensor_free(got);
    vz_backend_free(other);
  }
  if (restore)
    setenv("VLZOO_THREADS", restore, 1);
  else
    unsetenv("VLZOO_THREADS");
  free(restore);
  free(ref);
  vz_tensor_free(want);
}

/* The packed GEMM's edges: rows not a multiple of its 6-row tile, columns
 * not a multiple of its 16-column panel, K cut into several chunks, several
 * blocks of rows, 16-bit operands and strided b panels; then the same
 * product with 1 and 3 threads, bit for bit. */
static void test_packed_edges(void) {
  static const int64_t sizes[][3] = {{32, 1, 5},    {35, 17, 1537}, {259, 31, 3100},
                                     {517, 47, 64}, {40, 16, 1536}, {33, 100, 4097}};
  for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
    int64_t m = sizes[s][0], n = sizes[s][1], k = sizes[s][2];
    vz_tensor *a = random_tensor(VZ_F32, 2, (int64_t[]){m, k}, false);
    vz_tensor *w = random_tensor(VZ_F32, 2, (int64_t[]){n, k}, false);
    vz_tensor *wk = random_tensor(VZ_F32, 2, (int64_t[]){k, n}, false);
    vz_tensor *wh = random_tensor(VZ_BF16, 2, (int64_t[]){n, k}, false);
    char what[96];
    snprintf(what, sizeof what, "%lldx%lldx%lld, w [N, K]", (long long)m, (long long)n,
             (long long)k);
    check(what, a, w, false, true, NULL);
    snprintf(what, sizeof what, "%lldx%lldx%lld, w [K, N]", (long long)m, (long long)n,
             (long long)k);
    check(what, a, wk, false, false, NULL);
    snprintf(what, sizeof what, "%lldx%lldx%lld, bf16 w [N, K]", (long long)m, (long long)n,
             (long long)k);
    check(what, a, wh, false, true, NULL);
    vz_tensor *t[] = {a, w, wk, wh};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
      vz_tensor_free(t[i]);
  }
  if (!packed_path)
    return; /* oneDNN's sums may depend on its threads */
  /* each output element is summed by one task in a fixed order */
  vz_tensor *a = random_tensor(VZ_F32, 3, (int64_t[]){2, 257, 1600}, false);
  vz_tensor *w = random_tensor(VZ_F32, 2, (int64_t[]){333, 1600}, false);
  check_thread_independence("matmul", a, w);
  vz_tensor_free(a);
  vz_tensor_free(w);
}

/* act(v) in double, for the reference of linear. */
static double activation_ref(vz_op_kind act, double v) {
  switch (act) {
  case VZ_OP_GELU_ERF: return 0.5 * v * (1.0 + erf(v / sqrt(2.0)));
  case VZ_OP_GELU_TANH:
    return 0.5 * v * (1.0 + tanh(sqrt(2.0 / 3.14159265358979323846) * (v + 0.044715 * v * v * v)));
  case VZ_OP_QUICK_GELU: return v / (1.0 + exp(-1.702 * v));
  case VZ_OP_SILU: return v / (1.0 + exp(-v));
  case VZ_OP_RELU: return v > 0 ? v : 0.0;
  case VZ_OP_SIGMOID: return 1.0 / (1.0 + exp(-v));
  default: return v;
  }
}

/* vz_fused_linear(x, w, bias, act, res) against act(x w^T + bias) + res in
 * double (bf16 operands rounded as matmul does), with a tolerance of
 * `rel` times the product's sum of |terms| (times the activation's slope,
 * at most about 1.2) plus the residual's own rounding. `out` may be res
 * (in place) or NULL. */
static void check_linear(const char *what, const vz_tensor *x, const vz_tensor *w,
                         const vz_tensor *bias, vz_op_kind act, vz_tensor *res, bool in_place) {
  bool bf16 = x->dtype == VZ_BF16 || w->dtype == VZ_BF16;
  vz_tensor *x2 = NULL;
  if (x->ndim == 1)
    CHECK_OK(vz_reshape(x, 2, (int64_t[]){1, x->shape[0]}, &x2));
  bool f16 = f16_products_run(x2 ? x2 : x, w, false, true);
  ref_result r = reference(x2 ? x2 : x, w, false, true, bf16, f16);
  vz_tensor_free(x2);
  const double rel = f16 ? F16_PRODUCTS_REL : 2e-5;
  int64_t n = w->shape[0];
  double *bv = bias ? read_values(bias, VZ_F32) : NULL;
  double *rv = res ? read_values(res, VZ_F32) : NULL;
  double *want = malloc((size_t)r.n * sizeof *want);
  for (int64_t i = 0; i < r.n; i++) {
    double v = (double)r.want[i] + (bv ? bv[i % n] : 0.0);
    want[i] = activation_ref(act, v) + (rv ? rv[i] : 0.0);
  }
  vz_tensor *out = in_place ? res : NULL;
  CHECK_OK(vz_fused_linear(x, w, bias, act, res, &out));
  float *got = out ? test_read_f32(out) : NULL;
  int bad = 0;
  for (int64_t i = 0; got && i < r.n; i++) {
    double tol = rel * (r.mag[i] + (bv ? fabs(bv[i % n]) : 0.0)) + 1e-6 * fabs(want[i]) +
                 (f16 ? F16_PRODUCTS_ABS : 0.0) + 1e-30;
    if (!(fabs(got[i] - want[i]) <= tol) && bad++ < 5)
      fprintf(stderr, "%s: element %lld is %.9g, expected %.9g\n", what, (long long)i, got[i],
              want[i]);
  }
  if (bad || !got) {
    fprintf(stderr, "%s: %d mismatches\n", what, bad);
    test_failures++;
  }
  CHECK(!in_place || out == res);
  free(got);
  free(want);
  free(bv);
  free(rv);
  ref_free(&r);
  if (!in_place)
    vz_tensor_free(out);
}

static void test_linear(void) {
  static const vz_op_kind acts[] = {VZ_OP_COUNT, VZ_OP_GELU_ERF, VZ_OP_GELU_TANH, VZ_OP_QUICK_GELU,
                                    VZ_OP_SILU,  VZ_OP_RELU,     VZ_OP_SIGMOID};
  /* rows below and above the packed GEMM's 32, K in one and in three chunks */
  static const int64_t sizes[][3] = {{7, 21, 40}, {2 * 37, 45, 77}, {35, 18, 3100}};
  for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
    int64_t m = sizes[s][0], n = sizes[s][1], k = sizes[s][2];
    vz_tensor *x = random_tensor(VZ_F32, 2, (int64_t[]){m, k}, false);
    vz_tensor *w = random_tensor(VZ_F32, 2, (int64_t[]){n, k}, false);
    vz_tensor *b = random_tensor(VZ_F32, 1, (int64_t[]){n}, false);
    for (size_t a = 0; a < sizeof acts / sizeof acts[0]; a++) {
      char what[128];
      snprintf(what, sizeof what, "linear %lldx%lldx%lld %s", (long long)m, (long long)n,
               (long long)k, acts[a] == VZ_OP_COUNT ? "plain" : vz_op_name(acts[a]));
      check_linear(what, x, w, b, acts[a], NULL, false);
      /* with the separate residual, and with the residual as the output */
      vz_tensor *r = random_tensor(VZ_F32, 2, (int64_t[]){m, n}, false);
      strcat(what, " + residual");
      check_linear(what, x, w, b, acts[a], r, false);
      strcat(what, " in place");
      check_linear(what, x, w, b, acts[a], r, true);
      vz_tensor_free(r);
    }
    /* equal to the separate ops, bit for bit, while the residual comes last */
    vz_tensor *fused = NULL, *y = NULL, *r = random_tensor(VZ_F32, 2, (int64_t[]){m, n}, false);
    CHECK_OK(vz_fused_linear(x, w, b, VZ_OP_GELU_ERF, r, &fused));
    CHECK_OK(vz_matmul(x, w, false, true, &y));
    CHECK_OK(vz_add(y, b, &y));
    CHECK_OK(vz_gelu_erf(y, &y));
    CHECK_OK(vz_add(r, y, &y));
    if (fused && y) {
      float *g1 = test_read_f32(fused), *g2 = test_read_f32(y);
      CHECK(memcmp(g1, g2, vz_tensor_nbytes(y)) == 0);
      free(g1);
      free(g2);
    }
    vz_tensor *t[] = {x, w, b, fused, y, r};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
      vz_tensor_free(t[i]);
  }
  /* a vector, a 3-D x with a bf16 weight, strided x, bias and residual */
  vz_tensor *v = random_tensor(VZ_F32, 1, (int64_t[]){50}, false);
  vz_tensor *w = random_tensor(VZ_F32, 2, (int64_t[]){20, 50}, false);
  check_linear("linear of a vector", v, w, NULL, VZ_OP_RELU, NULL, false);
  vz_tensor *x3 = random_tensor(VZ_F32, 3, (int64_t[]){2, 33, 50}, false);
  vz_tensor *wh = random_tensor(VZ_BF16, 2, (int64_t[]){20, 50}, false);
  vz_tensor *r3 = random_tensor(VZ_F32, 3, (int64_t[]){2, 33, 20}, false);
  check_linear("linear [2,33,50] x bf16 w + residual", x3, wh, NULL, VZ_OP_SILU, r3, false);
  check_linear("linear [2,33,50] x bf16 w, in place", x3, wh, NULL, VZ_OP_COUNT, r3, true);
  vz_tensor *wide = random_tensor(VZ_F32, 2, (int64_t[]){40, 100}, false), *xs = NULL;
  CHECK_OK(vz_slice(wide, 1, 0, 100, 2, &xs)); /* [40, 50], column stride 2 */
  vz_tensor *bb = random_tensor(VZ_F32, 1, (int64_t[]){60}, false), *bs = NULL;
  CHECK_OK(vz_slice(bb, 0, 0, 60, 3, &bs)); /* [20], stride 3 */
  vz_tensor *rt = random_tensor(VZ_F32, 2, (int64_t[]){20, 40}, false), *rs = NULL;
  CHECK_OK(vz_transpose(rt, 0, 1, &rs)); /* [40, 20], column-major */
  check_linear("linear of strided x, bias and residual", xs, w, bs, VZ_OP_GELU_ERF, rs, false);
  /* bad inputs */
  vz_tensor *out = NULL;
  vz_tensor *b21 = random_tensor(VZ_F32, 1, (int64_t[]){21}, false);
  CHECK_FAILS(vz_fused_linear(x3, w, b21, VZ_OP_COUNT, NULL, &out), VZ_ERR_SHAPE);
  CHECK_FAILS(vz_fused_linear(x3, w, NULL, VZ_OP_COUNT, rt, &out), VZ_ERR_SHAPE);
  CHECK_FAILS(vz_fused_linear(x3, rt, NULL, VZ_OP_COUNT, NULL, &out), VZ_ERR_SHAPE);
  CHECK_FAILS(vz_fused_linear(x3, w, NULL, VZ_OP_ADD, NULL, &out), VZ_ERR_INVALID_ARGUMENT);
  CHECK_FAILS(vz_fused_linear(x3, x3, NULL, VZ_OP_COUNT, NULL, &out), VZ_ERR_SHAPE);
  CHECK(out == NULL);
  vz_tensor *t[] = {v, w, x3, wh, r3, wide, xs, bb, bs, rt, rs, b21};
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
    vz_tensor_free(t[i]);
}

/* a [m, k] of `a_val` but for element [1, 1], `odd`, times the weight
 * [n, k] of `w_val` in `dtype`, transposed: the result as a host array. */
static float *constant_product(int64_t m, int64_t n, int64_t k, float a_val, vz_dtype dtype,
                               float w_val, float odd) {
  float *av = malloc((size_t)(m * k) * sizeof *av), *wv = malloc((size_t)(n * k) * sizeof *wv);
  for (int64_t i = 0; i < m * k; i++)
    av[i] = a_val;
  av[k + 1] = odd; /* row 1 */
  for (int64_t i = 0; i < n * k; i++)
    wv[i] = w_val;
  vz_tensor *a = make(VZ_F32, 2, (int64_t[]){m, k}, av), *w = make(dtype, 2, (int64_t[]){n, k}, wv);
  vz_tensor *out = NULL;
  CHECK_OK(vz_matmul(a, w, false, true, &out));
  float *got = out ? test_read_f32(out) : NULL;
  vz_tensor_free(a);
  vz_tensor_free(w);
  vz_tensor_free(out);
  free(av);
  free(wv);
  return got;
}

/* Values the f16 products cannot take, for a weight of `dtype`: an
 * activation beyond f16's range (7e4), a product beyond it (300 x 300 =
 * 9e4, in f16 lanes), a NaN, and for bf16 a weight beyond f16's range and a
 * row of weights too small for f16 (2^-20 (1 + 2^-7): f16's subnormals
 * would drop the 2^-27). Every case is recomputed by the widening path,
 * exactly here (all products and sums are exact in f32). */
static void check_f16_fallbacks(vz_dtype dtype, int64_t m) {
  const int64_t n = 9, k = 40;
  /* the widening path takes a at bf16 precision for a bf16 weight */
  const float big = dtype == VZ_BF16 ? vz_bf16_to_f32(vz_f32_to_bf16(70000.0f)) : 70000.0f;
  float *g = constant_product(m, n, k, 2.0f, dtype, 3.0f, 70000.0f);
  for (int64_t i = 0; g && i < m * n; i++)
    CHECK(g[i] == (i / n == 1 ? big * 3 + 39 * 6 : (float)(k * 6)));
  free(g);
  g = constant_product(m, n, k, 300.0f, dtype, 300.0f, 300.0f);
  for (int64_t i = 0; g && i < m * n; i++)
    CHECK(g[i] == (float)(k * 90000));
  free(g);
  g = constant_product(m, n, k, 1.0f, dtype, 0.5f, NAN);
  for (int64_t i = 0; g && i < m * n; i++)
    CHECK(i / n == 1 ? isnan(g[i]) : g[i] == (float)k * 0.5f);
  free(g);
  if (dtype != VZ_BF16)
    return;
  g = constant_product(m, n, k, 1.0f, dtype, 1e5f, 1.0f); /* 99840 in bf16 */
  for (int64_t i = 0; g && i < m * n; i++)
    CHECK(g[i] == (float)k * 99840.0f);
  free(g);
  const float tiny = ldexpf(1.0f + ldexpf(1.0f, -7), -20);
  g = constant_product(m, n, k, 1.0f, dtype, tiny, 1.0f);
  for (int64_t i = 0; g && i < m * n; i++)
    CHECK(g[i] == (float)k * tiny);
  free(g);
}

/* A bf16 weight's conversion to f16, seen through the identity: a = I
 * (k x k) gives c = w^T, one product per output. Weights with all 8
 * significant bits from 2^-17 to 2^15 must come out exactly, smaller ones
 * within 2^-25 (each row also holds 1.5, so none is refused). */
static void check_bf16_conversion(int64_t k) {
  const int64_t n = 13;
  float *av = calloc((size_t)(k * k), sizeof *av), *wv = malloc((size_t)(n * k) * sizeof *wv);
  for (int64_t i = 0; i < k; i++)
    av[i * k + i] = 1.0f;
  for (int64_t i = 0; i < n * k; i++) {
    float mantissa = (float)(128 + test_next() % 128) / 128.0f; /* 8 bits */
    int e = (int)(test_next() % 46) - 31;                       /* 2^-31 .. 2^14 */
    wv[i] = (test_next() % 2 ? -1.0f : 1.0f) * ldexpf(mantissa, e);
  }
  for (int64_t j = 0; j < n; j++)
    wv[j * k + j % k] = 1.5f;
  vz_tensor *a = make(VZ_F32, 2, (int64_t[]){k, k}, av),
            *w = make(VZ_BF16, 2, (int64_t[]){n, k}, wv);
  vz_tensor *out = NULL;
  CHECK_OK(vz_matmul(a, w, false, true, &out));
  float *got = out ? test_read_f32(out) : NULL;
  int bad = 0;
  for (int64_t i = 0; got && i < k; i++)
    for (int64_t j = 0; j < n; j++) {
      float want = wv[j * k + i], g = got[i * n + j];
      bool ok = fabsf(want) >= ldexpf(1.0f, -17) ? g == want : fabsf(g - want) <= ldexpf(1.0f, -25);
      if (!ok && bad++ < 5)
        fprintf(stderr, "bf16 conversion: w[%lld, %lld] = %.9g came out %.9g\n", (long long)j,
                (long long)i, want, g);
    }
  CHECK(got && bad == 0);
  check_kernel("bf16 conversion", a, w, false, true, "bf16_f16_products_avx512fp16");
  free(got);
  free(av);
  free(wv);
  vz_tensor_free(a);
  vz_tensor_free(w);
  vz_tensor_free(out);
}

/* The f16-product GEMM (avx512fp16 path), for f16 and bf16 weights: tile
 * edges, K tails and chunks, blocks of rows, for the row tile (fewer than
 * 64 rows of a) and the pair tile; values beyond f16's range recomputed in
 * f32; the same sums for any thread count. */
static void test_f16_products(void) {
  if (!f16_path)
    return;
  /* row tiles: edges of 4 x 6 tiles and 32-step vectors, chunks of 2048
   * steps; pair tiles (64 rows and more): edges of 4 x 12 tiles and 16-step
   * halves, chunks of 1536 steps, 521 rows: two blocks of rows; empty
   * outputs */
  static const int64_t sizes[][3] = {
      {1, 1, 1},      {3, 5, 31},      {5, 7, 33},      {4, 6, 64},   {9, 13, 2048},
      {35, 13, 2049}, {6, 11, 4097},   {2, 3, 6145},    {64, 12, 16}, {67, 25, 1423},
      {130, 7, 3100}, {257, 70, 1408}, {521, 13, 2100}, {0, 5, 40},   {3, 0, 40}};
  static const vz_dtype weights[] = {VZ_F16, VZ_BF16};
  for (size_t d = 0; d < 2; d++) {
    const vz_dtype dtype = weights[d];
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
      int64_t m = sizes[s][0], n = sizes[s][1], k = sizes[s][2];
      vz_tensor *a = random_tensor(VZ_F32, 2, (int64_t[]){m, k}, true);
      vz_tensor *w = random_tensor(dtype, 2, (int64_t[]){n, k}, true);
      char what[96];
      snprintf(what, sizeof what, "%s products %lldx%lldx%lld", vz_dtype_name(dtype), (long long)m,
               (long long)n, (long long)k);
      /* bf16 takes them unless oneDNN runs bf16 on AMX tiles here */
      const char *name = kernel_of(a, w, false, true);
      if (dtype == VZ_BF16 && strcmp(name, "onednn_bf16_matmul") == 0)
        name = NULL;
      else
        name = m * n > 0          ? f16_products_kernel(w)
               : dtype == VZ_BF16 ? "bf16_widen_sgemm"
                                  : "f16_widen_sgemm";
      check(what, a, w, false, true, name);
      vz_tensor_free(a);
      vz_tensor_free(w);
    }
    /* a batch slice: its batches are rounded to f16 one at a time */
    vz_tensor *a6 = random_tensor(VZ_F32, 3, (int64_t[]){6, 21, 70}, true), *a3 = NULL;
    CHECK_OK(vz_slice(a6, 0, 0, 6, 2, &a3)); /* [3, 21, 70]: batches do not stack */
    vz_tensor *w13 = random_tensor(dtype, 2, (int64_t[]){13, 70}, true);
    const char *kernel =
        dtype == VZ_BF16 && strcmp(kernel_of(a3, w13, false, true), "onednn_bf16_matmul") == 0
            ? NULL
            : f16_products_kernel(w13);
    check("batch-sliced a x 16-bit w^T", a3, w13, false, true, kernel);
    vz_tensor_free(a6);
    vz_tensor_free(a3);
    vz_tensor_free(w13);
    for (int64_t m = 7; m <= 70; m += 63) /* a row tile, a pair tile */
      check_f16_fallbacks(dtype, m);
    if (dtype == VZ_BF16)
      for (int64_t k = 32; k <= 96; k += 64)
        check_bf16_conversion(k);
    /* each output's lanes and chunks are summed in a fixed order */
    vz_tensor *a = random_tensor(VZ_F32, 3, (int64_t[]){2, 257, 2100}, true);
    vz_tensor *w = random_tensor(dtype, 2, (int64_t[]){333, 2100}, true);
    check_thread_independence("f16 products", a, w);
    vz_tensor_free(a);
    vz_tensor_free(w);
    /* the fused Linear layer's epilogue after f16 products */
    vz_tensor *x = random_tensor(VZ_F32, 2, (int64_t[]){37, 300}, true);
    vz_tensor *wh = random_tensor(dtype, 2, (int64_t[]){50, 300}, true);
    vz_tensor *b = random_tensor(VZ_F32, 1, (int64_t[]){50}, false);
    vz_tensor *r = random_tensor(VZ_F32, 2, (int64_t[]){37, 50}, false);
    check_linear("linear 16-bit w, gelu + residual", x, wh, b, VZ_OP_GELU_ERF, r, false);
    check_linear("linear 16-bit w, in place", x, wh, b, VZ_OP_COUNT, r, true);
    vz_tensor *t[] = {x, wh, b, r};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
      vz_tensor_free(t[i]);
  }
}

static void test_errors(void) {
  vz_tensor *a = random_tensor(VZ_F32, 2, (int64_t[]){4, 5}, false);
  vz_tensor *b = random_tensor(VZ_F32, 2, (int64_t[]){6, 3}, false);
  vz_tensor *out = NULL;
  CHECK_FAILS(vz_matmul(a, b, false, false, &out), VZ_ERR_SHAPE); /* K 5 vs 6 */
  CHECK_FAILS(vz_matmul(a, b, true, true, &out), VZ_ERR_SHAPE);   /* K 4 vs 3 */
  int32_t ints[20] = {0};
  vz_tensor *ai = test_tensor_of(be, VZ_I32, 2, (int64_t[]){4, 5}, ints);
  vz_tensor *b5 = random_tensor(VZ_F32, 2, (int64_t[]){5, 3}, false);
  CHECK_FAILS(vz_matmul(ai, b5, false, false, &out), VZ_ERR_DTYPE);
  CHECK_FAILS(vz_matmul(b5, ai, true, true, &out), VZ_ERR_DTYPE);
  vz_tensor *v = random_tensor(VZ_F32, 1, (int64_t[]){5}, false);
  CHECK_FAILS(vz_matmul(a, v, false, false, &out), VZ_ERR_SHAPE);
  vz_tensor *a3 = random_tensor(VZ_F32, 3, (int64_t[]){2, 4, 5}, false);
  vz_tensor *b3 = random_tensor(VZ_F32, 3, (int64_t[]){3, 5, 3}, false);
  CHECK_FAILS(vz_matmul(a3, b3, false, false, &out), VZ_ERR_SHAPE); /* batch 2 vs 3 */
  CHECK(out == NULL);
  vz_tensor *t[] = {a, b, ai, b5, v, a3, b3};
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
    vz_tensor_free(t[i]);
}

int main(void) {
  be = test_backend();
  on_cpu = strcmp(vz_backend_name(be), "cpu") == 0;
  packed_path = on_cpu && strstr(vz_backend_description(be), "avx2 kernels") != NULL;
  f16_path = on_cpu && strstr(vz_backend_description(be), "avx512fp16 kernels") != NULL;
  test_seed(11);
  test_sizes_and_transposes();
  test_batches();
  test_views();
  test_aliasing();
  test_bf16();
  test_f16();
  test_output_reuse();
  test_packed_edges();
  test_linear();
  test_f16_products();
  test_errors();
  vz_backend_free(be);
  return test_finish("op_matmul");
}

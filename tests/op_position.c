/* rope, alibi and t5_bias against plain reference loops and against values
 * from PyTorch / transformers (tests/fixtures/ops, read from
 * $VLZOO_FIXTURES_DIR/ops; see tests/fixtures/make_op_references.py). */
#include <math.h>
#include <string.h>

#include "tests/test_util.h"

/* The exact f32 input the fixture script uses for rope. */
static float rope_input(int64_t s, int64_t d) {
  return (float)((s * 131 + d * 71) % 257 - 128) / 64.0f;
}

/* ---- rope ---- */

/* Plain reference in double: pairs (i, i + r/2) at pos * theta^(-2i/r). */
static void rope_reference(const float *x, const int64_t *pos, int64_t rows, int64_t S, int64_t D,
                           int r, double theta, float *out) {
  int h = r / 2;
  for (int64_t row = 0; row < rows; row++) {
    const float *xr = x + row * D;
    float *o = out + row * D;
    for (int64_t d = 0; d < D; d++)
      o[d] = xr[d];
    for (int i = 0; i < h; i++) {
      double angle = (double)pos[row % S] * pow(theta, -2.0 * i / r);
      double c = cos(angle), s = sin(angle);
      o[i] = (float)(xr[i] * c - xr[i + h] * s);
      o[i + h] = (float)(xr[i + h] * c + xr[i] * s);
    }
  }
}

static void test_rope_fixture(vz_backend *be, const char *name, int64_t D, int r) {
  int64_t n = 0;
  float *want = test_load_fixture(name, "f32", &n);
  if (!want)
    return;
  const int64_t S = 38;
  CHECK(n == S * D);
  float *x = malloc((size_t)(S * D) * sizeof *x);
  int32_t pos[38];
  for (int64_t s = 0; s < S; s++) {
    pos[s] = (int32_t)s;
    for (int64_t d = 0; d < D; d++)
      x[s * D + d] = rope_input(s, d);
  }
  int64_t shape[2] = {S, D}, pshape[1] = {S};
  vz_tensor *xt = test_tensor(be, 2, shape, x);
  vz_tensor *pt = test_tensor_of(be, VZ_I32, 1, pshape, pos);
  vz_tensor *out = NULL;
  CHECK_OK(vz_rope(xt, pt, 10000.0f, r, &out));
  if (out) {
    float *got = test_read_f32(out);
    /* f32 sin/cos/pow of libm and of torch's vector code may differ in the
     * last bit (seen: at most 1 ulp). */
    test_close(name, got, want, n, 1e-6f, 1e-6f);
    /* Entries past rotary_dim are copied bit for bit. */
    for (int64_t s = 0; got && s < S; s++)
      for (int64_t d = r; d < D; d++)
        CHECK(got[s * D + d] == x[s * D + d]);
    free(got);
  }
  vz_tensor_free(out);
  vz_tensor_free(xt);
  vz_tensor_free(pt);
  free(x);
  free(want);
}

static void test_rope(vz_backend *be) {
  test_rope_fixture(be, "rope_d128", 128, 128);
  test_rope_fixture(be, "rope_d40_r24", 40, 24);

  /* [B, H, S, D] with i64 positions out of order, partial rotary. */
  const int64_t B = 2, H = 3, S = 5, D = 20;
  const int r = 12;
  int64_t shape[4] = {B, H, S, D}, pshape[1] = {S};
  int64_t pos[5] = {7, 0, 1000, 3, 41};
  test_seed(11);
  float *x = test_random_floats(B * H * S * D, -2.0f, 2.0f);
  float *want = malloc((size_t)(B * H * S * D) * sizeof *want);
  rope_reference(x, pos, B * H * S, S, D, r, 500000.0, want);
  vz_tensor *xt = test_tensor(be, 4, shape, x);
  vz_tensor *pt = test_tensor_of(be, VZ_I64, 1, pshape, pos);
  vz_tensor *out = NULL;
  CHECK_OK(vz_rope(xt, pt, 500000.0f, r, &out));
  if (out) {
    float *got = test_read_f32(out);
    /* pos 1000: f32 angle rounding gives ~1e-4 rad */
    test_close("rope [2,3,5,20] r=12", got, want, B * H * S * D, 1e-3f, 1e-3f);
    free(got);
  }
  vz_tensor_free(out);

  /* Bad inputs. */
  vz_tensor *bad = NULL;
  CHECK_FAILS(vz_rope(xt, pt, 10000.0f, 11, &bad), VZ_ERR_INVALID_ARGUMENT); /* odd */
  CHECK_FAILS(vz_rope(xt, pt, 10000.0f, 22, &bad), VZ_ERR_INVALID_ARGUMENT); /* > D */
  CHECK_FAILS(vz_rope(xt, pt, 0.0f, 12, &bad), VZ_ERR_INVALID_ARGUMENT);
  int64_t pshape4[1] = {4};
  vz_tensor *p4 = test_tensor_of(be, VZ_I64, 1, pshape4, pos);
  CHECK_FAILS(vz_rope(xt, p4, 10000.0f, 12, &bad), VZ_ERR_SHAPE);
  vz_tensor *pf = test_tensor(be, 1, pshape, x);
  CHECK_FAILS(vz_rope(xt, pf, 10000.0f, 12, &bad), VZ_ERR_SHAPE);
  CHECK(bad == NULL);
  vz_tensor_free(p4);
  vz_tensor_free(pf);
  vz_tensor_free(xt);
  vz_tensor_free(pt);
  free(x);
  free(want);
}

/* ---- alibi ---- */

/* BLOOM's slopes, computed here in double from the paper's recipe. */
static double slope_reference(int heads, int h) {
  int p = 1;
  while (p * 2 <= heads)
    p *= 2;
  if (h < p)
    return pow(2.0, -8.0 * (h + 1) / p);
  return pow(2.0, -8.0 * (2 * (h - p) + 1) / (2.0 * p));
}

static void test_alibi(vz_backend *be) {
  /* The fixture mask: row 0 all ones, row 1 two left pads; key positions
   * are (cumsum(mask) - 1) * mask, as BLOOM derives them. */
  const int64_t B = 2, K = 9;
  int mask[2][9] = {{1, 1, 1, 1, 1, 1, 1, 1, 1}, {0, 0, 1, 1, 1, 1, 1, 1, 1}};
  int64_t pos64[18];
  int32_t pos32[18];
  float posf[18];
  for (int b = 0; b < B; b++)
    for (int k = 0, c = 0; k < K; k++) {
      c += mask[b][k];
      pos64[b * K + k] = (int64_t)(c - 1) * mask[b][k];
      pos32[b * K + k] = (int32_t)pos64[b * K + k];
      posf[b * K + k] = (float)pos64[b * K + k];
    }
  int64_t pshape[2] = {B, K};
  vz_tensor *p64 = test_tensor_of(be, VZ_I64, 2, pshape, pos64);
  vz_tensor *p32 = test_tensor_of(be, VZ_I32, 2, pshape, pos32);
  vz_tensor *pf = test_tensor(be, 2, pshape, posf);
  const int head_counts[] = {8, 12, 30, 32, 1, 5};
  for (size_t t = 0; t < sizeof head_counts / sizeof *head_counts; t++) {
    int heads = head_counts[t];
    int64_t n = B * heads * K;
    float *want = malloc((size_t)n * sizeof *want);
    for (int b = 0; b < B; b++)
      for (int h = 0; h < heads; h++)
        for (int k = 0; k < K; k++)
          want[(b * heads + h) * K + k] =
              (float)(slope_reference(heads, h) * (double)pos64[b * K + k]);
    char what[64];
    vz_tensor *inputs[3] = {p64, p32, pf};
    for (int i = 0; i < 3; i++) {
      vz_tensor *out = NULL;
      CHECK_OK(vz_alibi(inputs[i], heads, &out));
      if (!out)
        continue;
      CHECK(out->ndim == 4 && out->shape[0] == B && out->shape[1] == heads && out->shape[2] == 1 &&
            out->shape[3] == K);
      float *got = test_read_f32(out);
      snprintf(what, sizeof what, "alibi %d heads, %s positions", heads,
               vz_dtype_name(inputs[i]->dtype));
      test_close(what, got, want, n, 0.0f, 1e-6f);
      if (heads >= 8) {
        char name[32];
        int64_t count = 0;
        snprintf(name, sizeof name, "alibi_h%d", heads);
        float *ref = i == 0 ? test_load_fixture(name, "f32", &count) : NULL;
        if (ref) {
          CHECK(count == n);
          /* BLOOM raises an f32-rounded base to the head's power in f32;
           * vlzoo rounds the exact slope once (seen: up to 5.4e-7 apart). */
          snprintf(what, sizeof what, "alibi %d heads vs BLOOM", heads);
          test_close(what, got, ref, n, 0.0f, 1e-6f);
        }
        free(ref);
      }
      free(got);
      vz_tensor_free(out);
    }
    free(want);
  }
  vz_tensor *bad = NULL;
  CHECK_FAILS(vz_alibi(p64, 0, &bad), VZ_ERR_INVALID_ARGUMENT);
  CHECK_FAILS(vz_alibi(p64, 5000, &bad), VZ_ERR_INVALID_ARGUMENT);
  int64_t shape3[3] = {1, 2, 9};
  vz_tensor *p3 = test_tensor(be, 3, shape3, posf);
  CHECK_FAILS(vz_alibi(p3, 8, &bad), VZ_ERR_SHAPE);
  vz_tensor *pu8 = test_tensor_of(be, VZ_U8, 2, pshape, mask);
  CHECK_FAILS(vz_alibi(pu8, 8, &bad), VZ_ERR_DTYPE);
  vz_tensor_free(p3);
  vz_tensor_free(pu8);
  vz_tensor_free(p64);
  vz_tensor_free(p32);
  vz_tensor_free(pf);
}

/* ---- t5_bias ---- */

/* Bucket of a relative position, written from T5's definition in double. */
static int bucket_reference(int64_t rel, bool bidirectional, int buckets, int max_distance) {
  int base = 0;
  int64_t n;
  if (bidirectional) {
    buckets /= 2;
    base = rel > 0 ? buckets : 0;
    n = llabs(rel);
  } else {
    n = rel < 0 ? -rel : 0;
  }
  int exact = buckets / 2;
  if (n < exact)
    return base + (int)n;
  int64_t large = exact + (int64_t)(log((double)n / exact) / log((double)max_distance / exact) *
                                    (buckets - exact));
  return base + (int)(large < buckets - 1 ? large : buckets - 1);
}

/* Runs t5_bias with a table whose entry [b, h] is 100 b + h, so each output
 * names its bucket, and returns the buckets of head 0 [Q, K] (or NULL). */
static int *t5_buckets_of(vz_backend *be, int64_t Q, int64_t K, int64_t offset, bool bidirectional,
                          int buckets, int max_distance, int H) {
  float *table = malloc((size_t)buckets * H * sizeof *table);
  for (int b = 0; b < buckets; b++)
    for (int h = 0; h < H; h++)
      table[b * H + h] = (float)(100 * b + h);
  int64_t tshape[2] = {buckets, H};
  vz_tensor *tt = test_tensor(be, 2, tshape, table);
  vz_tensor *out = NULL;
  int *result = NULL;
  CHECK_OK(vz_t5_bias(tt, Q, K, offset, bidirectional, buckets, max_distance, &out));
  if (out) {
    CHECK(out->ndim == 4 && out->shape[0] == 1 && out->shape[1] == H && out->shape[2] == Q &&
          out->shape[3] == K);
    float *got = test_read_f32(out);
    result = malloc((size_t)(Q * K) * sizeof *result);
    bool heads_ok = true;
    for (int64_t q = 0; q < Q; q++)
      for (int64_t k = 0; k < K; k++) {
        float v0 = got[q * K + k];
        result[q * K + k] = (int)(v0 / 100.0f);
        for (int h = 1; h < H; h++)
          heads_ok &= got[(h * Q + q) * K + k] == v0 + (float)h;
      }
    CHECK(heads_ok);
    free(got);
  }
  vz_tensor_free(out);
  vz_tensor_free(tt);
  free(table);
  return result;
}

static void test_t5(vz_backend *be) {
  int64_t count = 0;
  int32_t *ref = test_load_fixture("t5_buckets", "i32", &count);
  const struct {
    bool bidirectional;
    int buckets, max_distance;
  } configs[4] = {{true, 32, 128}, {false, 32, 128}, {true, 16, 40}, {false, 16, 40}};
  if (ref)
    CHECK(count == 4 * 401);
  for (int c = 0; c < 4; c++) {
    const bool bi = configs[c].bidirectional;
    const int nb = configs[c].buckets, md = configs[c].max_distance;
    /* Queries at 150..169 against keys 0..339 cover relative -169..189. */
    const int64_t Q = 20, K = 340, offset = 150;
    int *got = t5_buckets_of(be, Q, K, offset, bi, nb, md, 3);
    int mismatches = 0, fixture_mismatches = 0;
    for (int64_t q = 0; got && q < Q; q++)
      for (int64_t k = 0; k < K; k++) {
        int64_t rel = k - (offset + q);
        int g = got[q * K + k];
        if (g != bucket_reference(rel, bi, nb, md) && mismatches++ < 5)
          fprintf(stderr, "t5 %d/%d/%d: rel %lld gives bucket %d, reference %d\n", bi, nb, md,
                  (long long)rel, g, bucket_reference(rel, bi, nb, md));
        if (ref && g != ref[c * 401 + rel + 200] && fixture_mismatches++ < 5)
          fprintf(stderr, "t5 %d/%d/%d: rel %lld gives bucket %d, transformers %d\n", bi, nb, md,
                  (long long)rel, g, ref[c * 401 + rel + 200]);
      }
    CHECK(got && mismatches == 0 && fixture_mismatches == 0);
    free(got);
    /* Without an offset, and past max_distance both ways. */
    got = t5_buckets_of(be, 3, 400, 0, bi, nb, md, 1);
    for (int64_t q = 0; got && q < 3; q++)
      for (int64_t k = 0; k < 400; k++)
        if (got[q * 400 + k] != bucket_reference(k - q, bi, nb, md) && mismatches++ < 5)
          fprintf(stderr, "t5 %d/%d/%d: q %lld k %lld wrong\n", bi, nb, md, (long long)q,
                  (long long)k);
    CHECK(got && mismatches == 0);
    free(got);
  }
  /* Spot values from T5's formula: bidirectional 32/128, relative +200 is
   * the last bucket of the positive half, -3 is exact. */
  CHECK(bucket_reference(200, true, 32, 128) == 31);
  CHECK(bucket_reference(-3, true, 32, 128) == 3);
  CHECK(bucket_reference(5, false, 32, 128) == 0);
  free(ref);

  float table[8] = {0};
  int64_t tshape[2] = {4, 2};
  vz_tensor *tt = test_tensor(be, 2, tshape, table);
  vz_tensor *bad = NULL;
  CHECK_FAILS(vz_t5_bias(tt, 2, 2, 0, true, 8, 16, &bad), VZ_ERR_INVALID_ARGUMENT);
  CHECK_FAILS(vz_t5_bias(tt, 0, 2, 0, true, 4, 16, &bad), VZ_ERR_INVALID_ARGUMENT);
  CHECK_FAILS(vz_t5_bias(tt, 2, 2, -1, true, 4, 16, &bad), VZ_ERR_INVALID_ARGUMENT);
  CHECK_FAILS(vz_t5_bias(tt, 2, 2, 0, true, 4, 1, &bad), VZ_ERR_INVALID_ARGUMENT);
  vz_tensor_free(tt);
}

int main(void) {
  vz_backend *be = test_backend();
  test_rope(be);
  test_alibi(be);
  test_t5(be);
  vz_backend_free(be);
  return test_finish("op_position");
}

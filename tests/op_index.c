/* embedding, index_select, gather, concat, copy and cast against plain
 * reference loops written here. The cast reference rounds by searching the
 * 16-bit formats and works in long double, which holds every value of every
 * dtype exactly (x86-64's 80-bit format). */
#include <float.h>
#include <math.h>
#include <string.h>

#include "tests/test_util.h"

/* ---- helpers ---- */

/* Element i of a host array of ids. */
static int64_t id_at(const void *ids, vz_dtype dtype, int64_t i) {
  return dtype == VZ_I32 ? ((const int32_t *)ids)[i] : ((const int64_t *)ids)[i];
}

static bool bytes_equal(const char *what, const void *got, const void *want, size_t bytes) {
  if (got && memcmp(got, want, bytes) == 0)
    return true;
  fprintf(stderr, "%s: bytes differ\n", what);
  test_failures++;
  return false;
}

/* The result of `status` must be an invalid-argument failure whose message
 * mentions `text`. */
static void check_message(vz_status status, const char *text) {
  CHECK(status == VZ_ERR_INVALID_ARGUMENT);
  if (!strstr(vz_last_error(), text)) {
    fprintf(stderr, "message '%s' lacks '%s'\n", vz_last_error(), text);
    test_failures++;
  }
}

/* ---- embedding ---- */

static float decode16(uint16_t h, vz_dtype dtype);

static void test_embedding(vz_backend *be) {
  const int64_t V = 13, D = 7;
  test_seed(5);
  float *values = test_random_floats(V * D, -3.0f, 3.0f);
  uint16_t half[13 * 7], brain[13 * 7];
  for (int64_t i = 0; i < V * D; i++) {
    half[i] = vz_f32_to_f16(values[i]);
    brain[i] = vz_f32_to_bf16(values[i]);
  }
  int64_t tshape[2] = {V, D};
  vz_tensor *tables[3] = {test_tensor(be, 2, tshape, values),
                          test_tensor_of(be, VZ_F16, 2, tshape, half),
                          test_tensor_of(be, VZ_BF16, 2, tshape, brain)};
  int32_t ids32[6] = {3, 0, 12, 3, 7, 1};
  int64_t ids64[5] = {12, 11, 0, 0, 5};
  int64_t s23[2] = {2, 3}, s5[1] = {5};
  vz_tensor *id_tensors[3] = {test_tensor_of(be, VZ_I32, 2, s23, ids32),
                              test_tensor_of(be, VZ_I64, 1, s5, ids64),
                              test_tensor_of(be, VZ_I64, 0, NULL, &ids64[4])};
  for (int t = 0; t < 3; t++) {
    for (int k = 0; k < 3; k++) {
      const vz_tensor *ids = id_tensors[k];
      const void *id_host = ids->dtype == VZ_I32 ? (const void *)ids32 : (const void *)ids64;
      int64_t n = vz_tensor_numel(ids);
      if (k == 2)
        id_host = &ids64[4];
      vz_tensor *out = NULL;
      CHECK_OK(vz_embedding(tables[t], ids, &out));
      if (!out)
        continue;
      CHECK(out->dtype == VZ_F32 && out->ndim == ids->ndim + 1 && out->shape[ids->ndim] == D);
      float *want = malloc((size_t)(n * D) * sizeof *want);
      for (int64_t i = 0; i < n; i++)
        for (int64_t d = 0; d < D; d++) {
          int64_t e = id_at(id_host, ids->dtype, i) * D + d;
          want[i * D + d] = t == 0   ? values[e]
                            : t == 1 ? decode16(half[e], VZ_F16)
                                     : decode16(brain[e], VZ_BF16);
        }
      test_close_tensor("embedding", out, want, n * D, 0.0f, 0.0f);
      free(want);
      vz_tensor_free(out);
    }
  }
  /* Out of range, both ends, with the position in the message. */
  int64_t bad_ids[6] = {0, 1, 2, 3, 13, 4};
  int64_t s6[1] = {6};
  vz_tensor *bad = test_tensor_of(be, VZ_I64, 1, s6, bad_ids), *out = NULL;
  vz_clear_error();
  check_message(vz_embedding(tables[1], bad, &out), "id 13 at position 4 is outside [0, 13)");
  CHECK(out == NULL);
  vz_tensor_free(bad);
  int32_t neg_ids[2] = {1, -1};
  int64_t s2[1] = {2};
  bad = test_tensor_of(be, VZ_I32, 1, s2, neg_ids);
  check_message(vz_embedding(tables[0], bad, &out), "id -1 at position 1");
  /* Wrong dtypes and shapes. */
  int64_t s3d[3] = {1, 13, 7};
  vz_tensor *t3 = test_tensor(be, 3, s3d, values);
  vz_tensor *ti = test_tensor_of(be, VZ_I32, 2, tshape, values);
  vz_tensor *idf = test_tensor(be, 1, s2, values);
  CHECK_FAILS(vz_embedding(t3, bad, &out), VZ_ERR_SHAPE);
  CHECK_FAILS(vz_embedding(ti, bad, &out), VZ_ERR_DTYPE);
  CHECK_FAILS(vz_embedding(tables[0], idf, &out), VZ_ERR_DTYPE);
  CHECK_FAILS(vz_embedding(NULL, bad, &out), VZ_ERR_INVALID_ARGUMENT);
  CHECK(out == NULL);
  vz_tensor_free(t3);
  vz_tensor_free(ti);
  vz_tensor_free(idf);
  vz_tensor_free(bad);
  for (int i = 0; i < 3; i++) {
    vz_tensor_free(tables[i]);
    vz_tensor_free(id_tensors[i]);
  }
  free(values);
}

/* ---- index_select and gather ---- */

static void test_index_select(vz_backend *be) {
  const int64_t shape[3] = {3, 4, 5};
  int16_t x[60];
  for (int i = 0; i < 60; i++)
    x[i] = (int16_t)(i * 7 - 100);
  vz_tensor *xt = test_tensor_of(be, VZ_I16, 3, shape, x);
  int64_t ids[4] = {2, 0, 2, 1};
  int32_t ids32[4] = {2, 0, 2, 1};
  int64_t s4[1] = {4};
  vz_tensor *it64 = test_tensor_of(be, VZ_I64, 1, s4, ids);
  vz_tensor *it32 = test_tensor_of(be, VZ_I32, 1, s4, ids32);
  for (int axis = -1; axis < 3; axis++) {
    int ax = axis < 0 ? 2 : axis;
    int64_t os[3] = {3, 4, 5};
    os[ax] = 4;
    int16_t want[80];
    for (int64_t i = 0; i < os[0]; i++)
      for (int64_t j = 0; j < os[1]; j++)
        for (int64_t k = 0; k < os[2]; k++) {
          int64_t c[3] = {i, j, k};
          c[ax] = ids[c[ax]];
          want[(i * os[1] + j) * os[2] + k] = x[(c[0] * 4 + c[1]) * 5 + c[2]];
        }
    for (int w = 0; w < 2; w++) {
      vz_tensor *out = NULL;
      CHECK_OK(vz_index_select(xt, axis, w ? it32 : it64, &out));
      if (!out)
        continue;
      CHECK(out->dtype == VZ_I16 && out->shape[ax] == 4);
      void *got = test_read_bytes(out);
      bytes_equal("index_select", got, want, 60 * 4 / (size_t)shape[ax] * sizeof(int16_t));
      free(got);
      vz_tensor_free(out);
    }
  }
  /* f64 rows of a 2-D table. */
  double table[12];
  for (int i = 0; i < 12; i++)
    table[i] = i / 3.0;
  int64_t ts[2] = {6, 2};
  vz_tensor *tt = test_tensor_of(be, VZ_F64, 2, ts, table), *out = NULL;
  CHECK_OK(vz_index_select(tt, 0, it32, &out));
  if (out) {
    double want[8];
    for (int i = 0; i < 4; i++) {
      want[2 * i] = table[2 * ids[i]];
      want[2 * i + 1] = table[2 * ids[i] + 1];
    }
    void *got = test_read_bytes(out);
    bytes_equal("index_select f64", got, want, sizeof want);
    free(got);
    vz_tensor_free(out);
    out = NULL;
  }
  /* Bad ids. */
  int64_t far[2] = {1, 3};
  int64_t s2[1] = {2}, s22[2] = {2, 2};
  vz_tensor *ft = test_tensor_of(be, VZ_I64, 1, s2, far);
  check_message(vz_index_select(xt, 0, ft, &out), "id 3 at position 1 is outside [0, 3)");
  vz_tensor *id2 = test_tensor_of(be, VZ_I64, 2, s22, ids);
  CHECK_FAILS(vz_index_select(xt, 0, id2, &out), VZ_ERR_DTYPE);
  CHECK_FAILS(vz_index_select(xt, 3, it64, &out), VZ_ERR_INVALID_ARGUMENT);
  CHECK(out == NULL);
  vz_tensor_free(ft);
  vz_tensor_free(id2);
  vz_tensor_free(tt);
  vz_tensor_free(it64);
  vz_tensor_free(it32);
  vz_tensor_free(xt);
}

static void test_gather(vz_backend *be) {
  const int64_t xs[3] = {3, 4, 5};
  float x[60];
  uint8_t xb[60];
  for (int i = 0; i < 60; i++) {
    x[i] = (float)i * 0.5f - 7.0f;
    xb[i] = (uint8_t)(i * 3 + 1);
  }
  vz_tensor *xt = test_tensor(be, 3, xs, x), *xbt = test_tensor_of(be, VZ_U8, 3, xs, xb);
  test_seed(9);
  for (int axis = 0; axis < 3; axis++) {
    /* index [2, 3, 4] (smaller than x off the axis) and x's own shape */
    for (int full = 0; full < 2; full++) {
      int64_t is[3] = {2, 3, 4};
      if (full)
        memcpy(is, xs, sizeof is);
      is[axis] = full ? 6 : 2; /* the gathered axis may be longer than x's */
      int64_t n = test_numel(3, is);
      int64_t idx[120];
      int32_t idx32[120];
      for (int64_t i = 0; i < n; i++) {
        idx[i] = (int64_t)(test_next() % (uint64_t)xs[axis]);
        idx32[i] = (int32_t)idx[i];
      }
      float want[120];
      uint8_t wantb[120];
      for (int64_t i = 0; i < is[0]; i++)
        for (int64_t j = 0; j < is[1]; j++)
          for (int64_t k = 0; k < is[2]; k++) {
            int64_t e = (i * is[1] + j) * is[2] + k, c[3] = {i, j, k};
            c[axis] = idx[e];
            want[e] = x[(c[0] * 4 + c[1]) * 5 + c[2]];
            wantb[e] = xb[(c[0] * 4 + c[1]) * 5 + c[2]];
          }
      vz_tensor *it =
          full ? test_tensor_of(be, VZ_I32, 3, is, idx32) : test_tensor_of(be, VZ_I64, 3, is, idx);
      vz_tensor *out = NULL, *outb = NULL;
      CHECK_OK(vz_gather(xt, axis - 3 * full, it, &out)); /* also a negative axis */
      CHECK_OK(vz_gather(xbt, axis, it, &outb));
      if (out) {
        test_close_tensor("gather f32", out, want, n, 0.0f, 0.0f);
      }
      if (outb) {
        void *got = test_read_bytes(outb);
        bytes_equal("gather u8", got, wantb, (size_t)n);
        free(got);
      }
      vz_tensor_free(out);
      vz_tensor_free(outb);
      vz_tensor_free(it);
    }
  }
  /* Bad index values and shapes. */
  int64_t ones[60];
  for (int i = 0; i < 60; i++)
    ones[i] = 1;
  ones[37] = 4;
  vz_tensor *it = test_tensor_of(be, VZ_I64, 3, xs, ones), *out = NULL;
  check_message(vz_gather(xt, 1, it, &out), "index 4 at position 37 is outside [0, 4)");
  CHECK_OK(vz_gather(xt, 2, it, &out)); /* 4 is fine along the axis of 5 */
  vz_tensor_free(out);
  out = NULL;
  ones[37] = -1;
  vz_tensor_free(it);
  it = test_tensor_of(be, VZ_I64, 3, xs, ones);
  check_message(vz_gather(xt, 2, it, &out), "index -1 at position 37");
  int64_t big[3] = {4, 1, 1}, flat[2] = {3, 20};
  vz_tensor *ib = test_tensor_of(be, VZ_I64, 3, big, ones);
  vz_tensor *i2 = test_tensor_of(be, VZ_I64, 2, flat, ones);
  vz_tensor *ifl = test_tensor(be, 3, xs, x);
  CHECK_FAILS(vz_gather(xt, 1, ib, &out), VZ_ERR_SHAPE);
  CHECK_FAILS(vz_gather(xt, 1, i2, &out), VZ_ERR_SHAPE);
  CHECK_FAILS(vz_gather(xt, 1, ifl, &out), VZ_ERR_DTYPE);
  CHECK_FAILS(vz_gather(xt, -4, it, &out), VZ_ERR_INVALID_ARGUMENT);
  CHECK(out == NULL);
  vz_tensor_free(ib);
  vz_tensor_free(i2);
  vz_tensor_free(ifl);
  vz_tensor_free(it);
  vz_tensor_free(xt);
  vz_tensor_free(xbt);
}

/* ---- concat ---- */

/* Joins three tensors of element size `es` along `axis`; `shapes` gives each
 * input's size on the axis, the others are base[]. */
static void check_concat(vz_backend *be, vz_dtype dtype, int ndim, const int64_t *base, int axis,
                         const int64_t *sizes) {
  const size_t es = vz_dtype_size(dtype);
  const int ax = axis < 0 ? axis + ndim : axis;
  vz_tensor *in[3];
  unsigned char *host[3];
  int64_t total = 0, shapes[3][4];
  for (int k = 0; k < 3; k++) {
    memcpy(shapes[k], base, (size_t)ndim * sizeof *base);
    shapes[k][ax] = sizes[k];
    total += sizes[k];
    int64_t n = test_numel(ndim, shapes[k]);
    host[k] = malloc((size_t)n * es + 1);
    for (size_t b = 0; b < (size_t)n * es; b++)
      host[k][b] = (unsigned char)(dtype == VZ_BOOL ? (b + k) % 2 : 31 * k + 7 * b + 1);
    in[k] = test_tensor_of(be, dtype, ndim, shapes[k], host[k]);
  }
  int64_t os[4];
  memcpy(os, base, (size_t)ndim * sizeof *base);
  os[ax] = total;
  /* Reference: outer blocks, each the inputs' slabs in turn. */
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < ax; i++)
    outer *= base[i];
  for (int i = ax + 1; i < ndim; i++)
    inner *= base[i];
  size_t bytes = (size_t)test_numel(ndim, os) * es;
  unsigned char *want = malloc(bytes + 1), *p = want;
  for (int64_t o = 0; o < outer; o++)
    for (int k = 0; k < 3; k++) {
      size_t slab = (size_t)(sizes[k] * inner) * es;
      memcpy(p, host[k] + (size_t)o * slab, slab);
      p += slab;
    }
  vz_tensor *out = NULL;
  CHECK_OK(vz_concat((const vz_tensor *const *)in, 3, axis, &out));
  if (out) {
    CHECK(out->ndim == ndim && out->shape[ax] == total && out->dtype == dtype);
    void *got = test_read_bytes(out);
    char what[64];
    snprintf(what, sizeof what, "concat %s axis %d", vz_dtype_name(dtype), axis);
    bytes_equal(what, got, want, bytes);
    free(got);
  }
  vz_tensor_free(out);
  for (int k = 0; k < 3; k++) {
    vz_tensor_free(in[k]);
    free(host[k]);
  }
  free(want);
}

static void test_concat(vz_backend *be) {
  const int64_t base3[3] = {2, 3, 4}, sizes[3] = {1, 3, 2}, zero_mid[3] = {2, 0, 1};
  for (int axis = 0; axis < 3; axis++) {
    check_concat(be, VZ_I32, 3, base3, axis, sizes);
    check_concat(be, VZ_BF16, 3, base3, axis, sizes);
    check_concat(be, VZ_F64, 3, base3, axis, zero_mid);
  }
  check_concat(be, VZ_U8, 3, base3, -1, sizes);
  const int64_t base4[4] = {2, 2, 3, 5};
  for (int axis = 0; axis < 4; axis++)
    check_concat(be, VZ_BOOL, 4, base4, axis, sizes);
  const int64_t base1[1] = {9}, big[3] = {1000, 20000, 7};
  check_concat(be, VZ_I64, 1, base1, 0, sizes);
  check_concat(be, VZ_F32, 1, base1, 0, big);

  /* One input is a copy; a transposed view is joined by value. */
  float a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {7, 8, 9, 10, 11, 12};
  int64_t s23[2] = {2, 3}, s32[2] = {3, 2};
  vz_tensor *at = test_tensor(be, 2, s23, a), *bt = test_tensor(be, 2, s32, b), *btt = NULL;
  vz_tensor *out = NULL;
  CHECK_OK(vz_concat((const vz_tensor *const[]){at}, 1, 0, &out));
  test_close_tensor("concat of one", out, a, 6, 0.0f, 0.0f);
  vz_tensor_free(out);
  out = NULL;
  CHECK_OK(vz_transpose(bt, 0, 1, &btt));
  CHECK_OK(vz_concat((const vz_tensor *const[]){at, btt}, 2, 1, &out));
  float want[12] = {1, 2, 3, 7, 9, 11, 4, 5, 6, 8, 10, 12};
  test_close_tensor("concat with a view", out, want, 12, 0.0f, 0.0f);
  vz_tensor_free(out);
  out = NULL;
  /* Bad inputs. */
  vz_tensor *ai = test_tensor_of(be, VZ_I32, 2, s23, a);
  CHECK_FAILS(vz_concat((const vz_tensor *const[]){at, ai}, 2, 0, &out), VZ_ERR_SHAPE);
  CHECK_FAILS(vz_concat((const vz_tensor *const[]){at, bt}, 2, 0, &out), VZ_ERR_SHAPE);
  CHECK_FAILS(vz_concat((const vz_tensor *const[]){at, at}, 2, 2, &out), VZ_ERR_INVALID_ARGUMENT);
  CHECK_FAILS(vz_concat((const vz_tensor *const[]){at, NULL}, 2, 0, &out), VZ_ERR_INVALID_ARGUMENT);
  CHECK_FAILS(vz_concat((const vz_tensor *const[]){at}, 0, 0, &out), VZ_ERR_INVALID_ARGUMENT);
  CHECK(out == NULL);
  vz_tensor_free(ai);
  vz_tensor_free(at);
  vz_tensor_free(bt);
  vz_tensor_free(btt);
}

/* ---- copy ---- */

/* Compares vz_copy of a view against reading the view's elements one by one
 * from the host bytes behind its buffer (`base`, element 0 of the buffer). */
static void check_copy(const char *what, const vz_tensor *view, const unsigned char *base) {
  const size_t es = vz_dtype_size(view->dtype);
  const int64_t n = vz_tensor_numel(view);
  unsigned char *want = malloc((size_t)n * es + 1);
  for (int64_t e = 0; e < n; e++) {
    int64_t off = view->offset, rem = e;
    for (int d = view->ndim - 1; d >= 0; d--) {
      off += (rem % view->shape[d]) * view->stride[d];
      rem /= view->shape[d];
    }
    memcpy(want + e * (int64_t)es, base + off * (int64_t)es, es);
  }
  vz_tensor *out = NULL;
  CHECK_OK(vz_copy(view, &out));
  if (out) {
    CHECK(vz_tensor_is_contiguous(out) && out->dtype == view->dtype && out->ndim == view->ndim);
    void *got = vz_tensor_host_data(out); /* read directly: to_host copies via vz_copy */
    char name[96];
    snprintf(name, sizeof name, "copy %s (%s)", what, vz_dtype_name(view->dtype));
    bytes_equal(name, got, want, (size_t)n * es);
  }
  vz_tensor_free(out);
  free(want);
}

static void test_copy(vz_backend *be) {
  const vz_dtype dtypes[4] = {VZ_U8, VZ_BF16, VZ_I32, VZ_F64};
  const int64_t shape[4] = {3, 4, 5, 6};
  for (int t = 0; t < 4; t++) {
    const size_t es = vz_dtype_size(dtypes[t]);
    unsigned char *host = malloc(360 * es);
    for (size_t b = 0; b < 360 * es; b++)
      host[b] = (unsigned char)(b * 13 + b / 7);
    vz_tensor *x = test_tensor_of(be, dtypes[t], 4, shape, host), *v = NULL, *w = NULL;
    check_copy("contiguous", x, host);
    CHECK_OK(vz_permute(x, (const int[]){3, 1, 0, 2}, &v));
    check_copy("permuted", v, host);
    vz_tensor_free(v);
    CHECK_OK(vz_transpose(x, 2, 3, &v));
    check_copy("transposed", v, host);
    vz_tensor_free(v);
    CHECK_OK(vz_slice(x, 2, 1, 5, 2, &v));
    CHECK_OK(vz_slice(v, 3, 1, 6, 1, &w));
    check_copy("sliced", w, host);
    vz_tensor_free(v);
    vz_tensor_free(w);
    /* [4, 1, 6] of the first row block, expanded to [3, 4, 5, 6]. */
    CHECK_OK(vz_tensor_view(x, 3, (const int64_t[]){4, 1, 6}, (const int64_t[]){30, 0, 1}, 0, &v));
    CHECK_OK(vz_expand(v, 4, shape, &w));
    CHECK(w && w->stride[0] == 0 && w->stride[2] == 0);
    check_copy("expanded", w, host);
    vz_tensor_free(v);
    vz_tensor_free(w);
    /* Negative strides: axes 1 and 3 reversed. */
    CHECK_OK(vz_tensor_view(x, 4, shape, (const int64_t[]){120, -30, 6, -1}, 3 * 30 + 5, &v));
    check_copy("reversed", v, host);
    vz_tensor_free(v);
    /* A reversed, expanded inner axis: stride 0 outside, -2 inside. */
    CHECK_OK(vz_tensor_view(x, 2, (const int64_t[]){7, 9}, (const int64_t[]){0, -2}, 40, &v));
    check_copy("reversed expanded", v, host);
    vz_tensor_free(v);
    CHECK_OK(vz_tensor_view(x, 0, NULL, NULL, 17, &v));
    check_copy("scalar", v, host);
    vz_tensor_free(v);
    CHECK_OK(vz_tensor_view(x, 1, (const int64_t[]){40}, (const int64_t[]){9}, 2, &v));
    check_copy("1-D stride 9", v, host);
    vz_tensor_free(v);
    vz_tensor_free(x);
    free(host);
  }
  /* Large enough for several threads and for split inner runs. */
  int64_t n = 700 * 300;
  float *big = test_random_floats(n, -1.0f, 1.0f);
  int64_t s2[2] = {700, 300}, s1[1] = {n};
  vz_tensor *x = test_tensor(be, 2, s2, big), *v = NULL;
  CHECK_OK(vz_transpose(x, 0, 1, &v));
  check_copy("large transposed", v, (const unsigned char *)big);
  vz_tensor_free(v);
  /* Transposed with the rows reversed: [i][j] = big[299 - i + 300 j]. */
  CHECK_OK(vz_tensor_view(x, 2, (const int64_t[]){300, 700}, (const int64_t[]){-1, 300}, 299, &v));
  check_copy("large transposed reversed", v, (const unsigned char *)big);
  vz_tensor_free(v);
  CHECK_OK(vz_tensor_view(x, 1, s1, (const int64_t[]){1}, 0, &v));
  check_copy("large contiguous", v, (const unsigned char *)big);
  vz_tensor_free(v);
  CHECK_OK(vz_tensor_view(x, 1, (const int64_t[]){n / 3}, (const int64_t[]){-3}, n - 1, &v));
  check_copy("large reversed step 3", v, (const unsigned char *)big);
  vz_tensor_free(v);
  vz_tensor_free(x);
  free(big);
}

/* ---- cast ---- */

typedef long double real;

/* IEEE binary16 / bfloat16 bits to their value, written out here. */
static real value16(uint16_t h, vz_dtype dtype) {
  int sign = h >> 15;
  int ebits = dtype == VZ_F16 ? 5 : 8, mbits = dtype == VZ_F16 ? 10 : 7;
  int bias = (1 << (ebits - 1)) - 1;
  int e = (h >> mbits) & ((1 << ebits) - 1), m = h & ((1 << mbits) - 1);
  real v;
  if (e == (1 << ebits) - 1)
    v = m ? (real)NAN : (real)INFINITY;
  else if (e == 0)
    v = ldexpl((real)m, 1 - bias - mbits);
  else
    v = ldexpl((real)(m + (1 << mbits)), e - bias - mbits);
  return sign ? -v : v;
}

static float decode16(uint16_t h, vz_dtype dtype) { return (float)value16(h, dtype); }

/* v rounded to the nearest f16 / bf16, ties to the even pattern, with
 * overflow to infinity past the largest finite value plus half a step. */
static uint16_t round16(real v, vz_dtype dtype) {
  const uint16_t inf = dtype == VZ_F16 ? 0x7c00 : 0x7f80;
  if (isnan(v))
    return dtype == VZ_F16 ? 0x7e00 : 0x7fc0;
  uint16_t sign = signbit(v) ? 0x8000 : 0;
  real a = fabsl(v);
  /* Positive finite patterns 0 .. inf-1 increase with their value. */
  uint16_t lo = 0, hi = inf - 1;
  if (a >= value16(hi, dtype)) {
    real next = ldexpl(1.0L, dtype == VZ_F16 ? 16 : 128); /* where inf would sit */
    real mid = (value16(hi, dtype) + next) / 2;
    return sign | (a >= mid ? inf : hi);
  }
  while (hi - lo > 1) { /* value(lo) <= a < value(hi) */
    uint16_t m = (uint16_t)((lo + hi) / 2);
    if (value16(m, dtype) <= a)
      lo = m;
    else
      hi = m;
  }
  real dl = a - value16(lo, dtype), dh = value16(hi, dtype) - a;
  uint16_t pick = dl < dh ? lo : dh < dl ? hi : (lo % 2 == 0 ? lo : hi);
  return sign | pick;
}

static bool is_float(vz_dtype d) {
  return d == VZ_F32 || d == VZ_F16 || d == VZ_BF16 || d == VZ_F64;
}

static void int_range(vz_dtype d, real *lo, real *hi) {
  switch (d) {
  case VZ_I64: *lo = (real)INT64_MIN, *hi = (real)INT64_MAX; break;
  case VZ_I32: *lo = INT32_MIN, *hi = INT32_MAX; break;
  case VZ_I16: *lo = INT16_MIN, *hi = INT16_MAX; break;
  case VZ_I8: *lo = INT8_MIN, *hi = INT8_MAX; break;
  case VZ_U8: *lo = 0, *hi = UINT8_MAX; break;
  default: *lo = 0, *hi = 1; break;
  }
}

/* Writes v (exactly representable, or rounded by the rules under test) as
 * one element of dtype `to`, from a source of kind `from_float`. */
static void expect(real v, bool from_float, vz_dtype to, unsigned char *dst) {
  switch (to) {
  case VZ_F32: {
    float f = (float)v;
    memcpy(dst, &f, 4);
    return;
  }
  case VZ_F64: {
    double d = (double)v;
    memcpy(dst, &d, 8);
    return;
  }
  case VZ_F16:
  case VZ_BF16: {
    uint16_t h = round16(v, to);
    memcpy(dst, &h, 2);
    return;
  }
  case VZ_BOOL: *dst = v != 0; return;
  default: break;
  }
  int64_t r;
  real lo, hi;
  int_range(to, &lo, &hi);
  if (from_float) { /* truncate, saturate, NaN to 0 */
    real t = truncl(v);
    r = isnan(v) ? 0 : t <= lo ? (int64_t)lo : t >= hi ? (int64_t)hi : (int64_t)t;
  } else { /* modulo 2^width, into the signed range for signed targets */
    int bits = to == VZ_I64 ? 64 : to == VZ_I32 ? 32 : to == VZ_I16 ? 16 : 8;
    uint64_t u = (uint64_t)(int64_t)v;
    if (bits < 64)
      u &= (UINT64_C(1) << bits) - 1;
    if (to != VZ_U8 && bits < 64 && (u >> (bits - 1)))
      r = -(int64_t)((UINT64_C(1) << bits) - u);
    else
      r = (int64_t)u;
  }
  switch (to) {
  case VZ_I64: memcpy(dst, &r, 8); break;
  case VZ_I32: {
    int32_t x = (int32_t)r;
    memcpy(dst, &x, 4);
    break;
  }
  case VZ_I16: {
    int16_t x = (int16_t)r;
    memcpy(dst, &x, 2);
    break;
  }
  case VZ_I8: {
    int8_t x = (int8_t)r;
    memcpy(dst, &x, 1);
    break;
  }
  default: {
    uint8_t x = (uint8_t)r;
    memcpy(dst, &x, 1);
    break;
  }
  }
}

/* Whether v can be stored exactly in `dtype`; *stored gets the element. */
static bool store_exact(real v, vz_dtype dtype, unsigned char *stored) {
  if (is_float(dtype)) {
    real back;
    if (dtype == VZ_F32) {
      back = (float)v;
    } else if (dtype == VZ_F64) {
      back = (double)v;
    } else {
      back = value16(round16(v, dtype), dtype);
    }
    if (!(isnan(v) || back == v))
      return false;
  } else {
    real lo, hi;
    int_range(dtype, &lo, &hi);
    if (isnan(v) || v != truncl(v) || v < lo || v > hi)
      return false;
  }
  expect(v, true, dtype, stored);
  return true;
}

static bool same_element(const unsigned char *got, const unsigned char *want, vz_dtype d) {
  if (d == VZ_F32) {
    float g, w;
    memcpy(&g, got, 4);
    memcpy(&w, want, 4);
    if (isnan(w))
      return isnan(g);
  } else if (d == VZ_F64) {
    double g, w;
    memcpy(&g, got, 8);
    memcpy(&w, want, 8);
    if (isnan(w))
      return isnan(g);
  } else if (d == VZ_F16 || d == VZ_BF16) {
    uint16_t g, w;
    memcpy(&g, got, 2);
    memcpy(&w, want, 2);
    if (isnan(value16(w, d)))
      return isnan(value16(g, d));
  }
  return memcmp(got, want, vz_dtype_size(d)) == 0;
}

static void test_cast_all_pairs(vz_backend *be) {
  const real two63 = ldexpl(1.0L, 63);
  const real values[] = {0.0L,
                         -0.0L,
                         1,
                         -1,
                         0.5L,
                         -0.5L,
                         1.5L,
                         2.5L,
                         -2.5L,
                         -0.9L,
                         0.3L,
                         1.0L / 3,
                         1 + ldexpl(1, -11),
                         1 + 3 * ldexpl(1, -11),
                         1 + ldexpl(1, -8),
                         1 + 3 * ldexpl(1, -8),
                         1 + ldexpl(1, -8) + ldexpl(1, -30),
                         1 + ldexpl(1, -11) + ldexpl(1, -40),
                         2049,
                         2051,
                         65504,
                         65519,
                         65520,
                         70000,
                         1e5L,
                         -1e10L,
                         3e9L,
                         127,
                         128,
                         -128,
                         -129,
                         255,
                         256,
                         255.9L,
                         300,
                         -300,
                         32767,
                         32768,
                         -32769,
                         65535,
                         2147483647.0L,
                         2147483648.0L,
                         -2147483648.0L,
                         -2147483649.0L,
                         16777217,
                         ldexpl(1, 53) + 1,
                         ldexpl(1, 53) + 3,
                         two63 - 1024,
                         -two63,
                         two63 - 1,
                         1e20L,
                         1e300L,
                         -1e300L,
                         6e-8L,
                         ldexpl(1, -25),
                         3 * ldexpl(1, -26),
                         1e-40L,
                         1e-320L,
                         (real)NAN,
                         (real)INFINITY,
                         -(real)INFINITY};
  const int nv = (int)(sizeof values / sizeof *values);
  int failures = 0;
  for (int from = 0; from < VZ_DTYPE_COUNT; from++) {
    const size_t fs = vz_dtype_size((vz_dtype)from);
    unsigned char *src = malloc((size_t)nv * 8);
    real kept[128];
    int n = 0;
    for (int i = 0; i < nv; i++) {
      real v = values[i];
      if (from == VZ_BOOL && !(v == 0 || v == 1))
        continue;
      if (store_exact(v, (vz_dtype)from, src + n * fs))
        kept[n++] = is_float((vz_dtype)from) ? v : v + 0.0L; /* integers have no -0 */
    }
    int64_t shape[1] = {n};
    vz_tensor *x = test_tensor_of(be, (vz_dtype)from, 1, shape, src);
    for (int to = 0; to < VZ_DTYPE_COUNT; to++) {
      const size_t ts = vz_dtype_size((vz_dtype)to);
      vz_tensor *out = NULL;
      CHECK_OK(vz_cast(x, (vz_dtype)to, &out));
      if (!out)
        continue;
      CHECK(out->dtype == (vz_dtype)to && out->ndim == 1 && out->shape[0] == n);
      unsigned char *got = test_read_bytes(out), want[8];
      for (int i = 0; got && i < n; i++) {
        expect(kept[i], is_float((vz_dtype)from), (vz_dtype)to, want);
        if (!same_element(got + i * ts, want, (vz_dtype)to) && failures++ < 10) {
          uint64_t g = 0, w = 0;
          memcpy(&g, got + i * ts, ts);
          memcpy(&w, want, ts);
          fprintf(stderr, "cast %s -> %s of %.21Lg: got bits %#llx, expected %#llx\n",
                  vz_dtype_name((vz_dtype)from), vz_dtype_name((vz_dtype)to), kept[i],
                  (unsigned long long)g, (unsigned long long)w);
        }
      }
      free(got);
      vz_tensor_free(out);
    }
    vz_tensor_free(x);
    free(src);
  }
  CHECK(failures == 0);
}

/* Casts one value of `from` (given as its bytes) and returns the bytes. */
static uint64_t cast1(vz_backend *be, vz_dtype from, const void *value, vz_dtype to) {
  vz_tensor *x = test_tensor_of(be, from, 0, NULL, value), *out = NULL;
  uint64_t bits = 0xdeadbeefdeadbeefull;
  CHECK_OK(vz_cast(x, to, &out));
  if (out) {
    bits = 0;
    CHECK_OK(vz_tensor_to_host(out, &bits, vz_dtype_size(to)));
  }
  vz_tensor_free(out);
  vz_tensor_free(x);
  return bits;
}

static uint64_t castf(vz_backend *be, float v, vz_dtype to) { return cast1(be, VZ_F32, &v, to); }
static uint64_t castd(vz_backend *be, double v, vz_dtype to) { return cast1(be, VZ_F64, &v, to); }
static uint64_t casti(vz_backend *be, int64_t v, vz_dtype to) { return cast1(be, VZ_I64, &v, to); }

static void test_cast_rules(vz_backend *be) {
  /* Round to nearest even, at the tie and just past it. */
  CHECK(castf(be, 1.0f + 0x1p-11f, VZ_F16) == 0x3c00);
  CHECK(castf(be, 1.0f + 3 * 0x1p-11f, VZ_F16) == 0x3c02);
  CHECK(castf(be, 1.0f + 0x1p-11f + 0x1p-20f, VZ_F16) == 0x3c01);
  CHECK(castf(be, 1.0f + 0x1p-8f, VZ_BF16) == 0x3f80);
  CHECK(castf(be, 1.0f + 3 * 0x1p-8f, VZ_BF16) == 0x3f82);
  CHECK(castf(be, 65519.0f, VZ_F16) == 0x7bff);
  CHECK(castf(be, 65520.0f, VZ_F16) == 0x7c00);
  CHECK(castf(be, -0x1p-25f, VZ_F16) == 0x8000); /* ties to even: -0 */
  CHECK(castf(be, 0x1p-24f, VZ_F16) == 0x0001);  /* smallest subnormal */
  /* f64 straight to f16 / bf16, not through a rounded f32. */
  CHECK(castd(be, 1.0 + 0x1p-11 + 0x1p-40, VZ_F16) == 0x3c01);
  CHECK(castd(be, 1.0 + 0x1p-8 + 0x1p-40, VZ_BF16) == 0x3f81);
  CHECK(castd(be, 1e300, VZ_F32) == 0x7f800000);
  CHECK(castd(be, 1e300, VZ_BF16) == 0x7f80);
  /* Infinities and NaN. */
  CHECK(castf(be, INFINITY, VZ_F16) == 0x7c00);
  CHECK(castf(be, -INFINITY, VZ_BF16) == 0xff80);
  CHECK((castf(be, NAN, VZ_F16) & 0x7c00) == 0x7c00 && (castf(be, NAN, VZ_F16) & 0x3ff));
  CHECK(castf(be, NAN, VZ_I32) == 0);
  CHECK(castf(be, NAN, VZ_U8) == 0);
  CHECK(castf(be, NAN, VZ_BOOL) == 1);
  CHECK((int32_t)castf(be, INFINITY, VZ_I32) == INT32_MAX);
  CHECK((int64_t)castf(be, -INFINITY, VZ_I64) == INT64_MIN);
  CHECK((int64_t)castf(be, 0x1p63f, VZ_I64) == INT64_MAX);
  CHECK((int64_t)castf(be, -0x1p63f, VZ_I64) == INT64_MIN);
  /* Float to integer truncates toward zero and saturates. */
  CHECK((int8_t)castf(be, -2.9f, VZ_I8) == -2);
  CHECK((int8_t)castf(be, -200.0f, VZ_I8) == INT8_MIN);
  CHECK(castf(be, -1.5f, VZ_U8) == 0);
  CHECK(castf(be, -0.5f, VZ_U8) == 0);
  CHECK(castf(be, 300.7f, VZ_U8) == 255);
  CHECK(castf(be, 255.9f, VZ_U8) == 255);
  CHECK((int32_t)castd(be, 1e10, VZ_I32) == INT32_MAX);
  CHECK((int32_t)castd(be, -2147483648.9, VZ_I32) == INT32_MIN);
  CHECK((int16_t)castd(be, 32767.99, VZ_I16) == 32767);
  /* Integer to integer wraps (two's complement), negative to unsigned too. */
  CHECK(casti(be, -1, VZ_U8) == 255);
  CHECK(casti(be, 300, VZ_U8) == 44);
  CHECK((int8_t)casti(be, 300, VZ_I8) == 44);
  CHECK((int8_t)casti(be, -129, VZ_I8) == 127);
  CHECK((int32_t)casti(be, INT64_C(1) << 32 | 5, VZ_I32) == 5);
  int32_t m1 = -1;
  CHECK(cast1(be, VZ_I32, &m1, VZ_U8) == 255);
  /* Integer to float rounds to nearest even. */
  CHECK(casti(be, (INT64_C(1) << 53) + 1, VZ_F64) == 0x4340000000000000ull);
  CHECK(casti(be, 16777217, VZ_F32) == 0x4b800000);
  CHECK(casti(be, 2049, VZ_F16) == 0x6800);
  CHECK(casti(be, 2051, VZ_F16) == 0x6802);
  CHECK(casti(be, INT64_MAX, VZ_F16) == 0x7c00);
  CHECK(casti(be, INT64_MAX, VZ_BF16) == 0x5f00);
  CHECK(casti(be, 257, VZ_BF16) == 0x4380); /* tie: 256 */
  CHECK(casti(be, (INT64_C(1) << 40) + 1, VZ_BF16) == 0x5380);
  /* Bool. */
  CHECK(castf(be, -0.0f, VZ_BOOL) == 0);
  CHECK(castf(be, 0x1p-149f, VZ_BOOL) == 1);
  CHECK(casti(be, 256, VZ_BOOL) == 1);
  uint8_t t = 1;
  CHECK(cast1(be, VZ_BOOL, &t, VZ_F32) == 0x3f800000);
  CHECK(cast1(be, VZ_BOOL, &t, VZ_I64) == 1);

  /* Strided inputs: a transposed f32 to f16 and an expanded i32 to f64. */
  float x[6] = {1.5f, -2.0f, 65520.0f, 0.25f, NAN, 3.0f};
  int64_t s23[2] = {2, 3};
  vz_tensor *xt = test_tensor(be, 2, s23, x), *tr = NULL, *out = NULL;
  CHECK_OK(vz_transpose(xt, 0, 1, &tr));
  CHECK_OK(vz_cast(tr, VZ_F16, &out));
  uint16_t want_h[6] = {0x3e00, 0x3400, 0xc000, 0x7e00, 0x7c00, 0x4200};
  uint16_t *got_h = out ? test_read_bytes(out) : NULL;
  for (int i = 0; got_h && i < 6; i++)
    CHECK(i == 3 ? (got_h[i] & 0x7c00) == 0x7c00 && (got_h[i] & 0x3ff) : got_h[i] == want_h[i]);
  free(got_h);
  vz_tensor_free(out);
  out = NULL;
  int32_t iv[3] = {-7, 0, 123456789};
  int64_t s3[1] = {3}, s43[2] = {4, 3};
  vz_tensor *it = test_tensor_of(be, VZ_I32, 1, s3, iv), *ex = NULL;
  CHECK_OK(vz_expand(it, 2, s43, &ex));
  CHECK_OK(vz_cast(ex, VZ_F64, &out));
  double *got_d = out ? test_read_bytes(out) : NULL;
  for (int i = 0; got_d && i < 12; i++)
    CHECK(got_d[i] == (double)iv[i % 3]);
  free(got_d);
  vz_tensor_free(out);
  out = NULL;
  /* Bad target dtype. */
  CHECK_FAILS(vz_cast(xt, (vz_dtype)VZ_DTYPE_COUNT, &out), VZ_ERR_DTYPE);
  CHECK_FAILS(vz_cast(xt, (vz_dtype)-1, &out), VZ_ERR_DTYPE);
  CHECK_FAILS(vz_cast(NULL, VZ_F32, &out), VZ_ERR_INVALID_ARGUMENT);
  CHECK(out == NULL);
  vz_tensor_free(ex);
  vz_tensor_free(it);
  vz_tensor_free(tr);
  vz_tensor_free(xt);
}

/* Casts between f32 and the 16-bit floats over many contiguous elements
 * (model loading), split among threads, against the scalar conversions:
 * random bit patterns (NaNs, infinities and subnormals among them) and
 * every 16-bit pattern back to f32, where a device may quiet a signalling
 * NaN (OpenCL on PoCL does) but must keep its sign and payload. */
static void test_cast_long_rows(vz_backend *be) {
  const int64_t n = 3 * 16384 + 77;
  test_seed(29);
  uint32_t *bits = malloc((size_t)n * sizeof *bits);
  uint16_t *halves = malloc((size_t)n * sizeof *halves);
  for (int64_t i = 0; i < n; i++) {
    bits[i] = (uint32_t)test_next();
    halves[i] = (uint16_t)i;
  }
  vz_tensor *f = test_tensor_of(be, VZ_F32, 2, (int64_t[]){1, n}, bits);
  const vz_dtype to[2] = {VZ_BF16, VZ_F16};
  for (int d = 0; d < 2; d++) {
    vz_tensor *out = NULL, *h = test_tensor_of(be, to[d], 1, (int64_t[]){n}, halves);
    CHECK_OK(vz_cast(f, to[d], &out));
    uint16_t *got = out ? test_read_bytes(out) : NULL;
    int64_t wrong = 0;
    for (int64_t i = 0; got && i < n; i++) {
      float v = test_bits_float(bits[i]);
      wrong += got[i] != (to[d] == VZ_BF16 ? vz_f32_to_bf16(v) : vz_f32_to_f16(v));
    }
    CHECK(got && wrong == 0);
    free(got);
    vz_tensor_free(out);
    out = NULL;
    CHECK_OK(vz_cast(h, VZ_F32, &out));
    uint32_t *back = out ? test_read_bytes(out) : NULL;
    wrong = 0;
    for (int64_t i = 0; back && i < n; i++) {
      uint16_t x = halves[i];
      float want = to[d] == VZ_BF16 ? vz_bf16_to_f32(x) : vz_f16_to_f32(x);
      uint32_t w = test_float_bits(want), quiet = 0x00400000u;
      wrong += back[i] != w && !(want != want && (back[i] | quiet) == (w | quiet));
    }
    CHECK(back && wrong == 0);
    free(back);
    vz_tensor_free(out);
    vz_tensor_free(h);
  }
  vz_tensor_free(f);
  free(bits);
  free(halves);
}

int main(void) {
  vz_backend *be = test_backend();
  test_embedding(be);
  test_index_select(be);
  test_gather(be);
  test_concat(be);
  test_copy(be);
  test_cast_all_pairs(be);
  test_cast_rules(be);
  test_cast_long_rows(be);
  vz_backend_free(be);
  return test_finish("op_index");
}

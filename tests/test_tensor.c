/* Tensors and views: shapes, strides, bounds and the element order each
 * view presents, checked against index arithmetic done here by hand. */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tests/test_util.h"

/* x[i] = i for a [2, 3, 4] tensor. */
static vz_tensor *iota_234(vz_backend *be) {
  float data[24];
  for (int i = 0; i < 24; i++)
    data[i] = (float)i;
  return test_tensor(be, 3, (int64_t[]){2, 3, 4}, data);
}

static void expect_values(const char *what, const vz_tensor *t, const float *want, int64_t n) {
  CHECK(vz_tensor_numel(t) == n);
  float *got = test_read_f32(t);
  test_close(what, got, want, n, 0, 0);
  free(got);
}

static void test_new_and_io(vz_backend *be) {
  vz_tensor *t = NULL;
  CHECK_OK(vz_tensor_zeros(be, VZ_I64, 2, (int64_t[]){3, 5}, &t));
  CHECK(t->ndim == 2 && t->stride[0] == 5 && t->stride[1] == 1 && vz_tensor_is_contiguous(t));
  CHECK(vz_tensor_nbytes(t) == 120 && vz_tensor_backend(t) == be);
  int64_t *z = test_read_bytes(t);
  for (int i = 0; i < 15; i++)
    CHECK(z[i] == 0);
  free(z);
  int64_t src[15];
  for (int i = 0; i < 15; i++)
    src[i] = -7 * i;
  CHECK_OK(vz_tensor_write(t, src, sizeof src));
  int64_t back[15];
  CHECK_OK(vz_tensor_to_host(t, back, sizeof back));
  CHECK(memcmp(src, back, sizeof src) == 0);
  CHECK_FAILS(vz_tensor_write(t, src, 8), VZ_ERR_SHAPE);
  CHECK_FAILS(vz_tensor_to_host(t, back, 16), VZ_ERR_SHAPE);
  vz_tensor_free(t);

  vz_tensor *scalar = NULL;
  float pi = 3.25f, got = 0;
  CHECK_OK(vz_tensor_from_host(be, VZ_F32, 0, NULL, &pi, 4, &scalar));
  CHECK(scalar && vz_tensor_numel(scalar) == 1);
  CHECK_OK(vz_tensor_to_host(scalar, &got, 4));
  CHECK(got == pi);
  vz_tensor_free(scalar);

  vz_tensor *bad = NULL;
  CHECK_FAILS(vz_tensor_new(be, VZ_F32, 5, (int64_t[]){1, 1, 1, 1, 1}, &bad), VZ_ERR_SHAPE);
  CHECK_FAILS(vz_tensor_new(be, VZ_F32, 2, (int64_t[]){-1, 3}, &bad), VZ_ERR_SHAPE);
  CHECK_FAILS(vz_tensor_new(be, VZ_F32, 3, (int64_t[]){1ll << 40, 1ll << 40, 1ll << 40}, &bad),
              VZ_ERR_SHAPE);
  CHECK_FAILS(vz_tensor_new(be, VZ_F32, 2, (int64_t[]){1ll << 31, 1ll << 31}, &bad),
              VZ_ERR_OUT_OF_MEMORY);
  CHECK_FAILS(vz_tensor_new(be, (vz_dtype)99, 1, (int64_t[]){1}, &bad), VZ_ERR_DTYPE);
  CHECK(bad == NULL);
}

static void test_permute_transpose(vz_backend *be) {
  vz_tensor *x = iota_234(be), *p = NULL, *t = NULL;
  CHECK_OK(vz_permute(x, (int[]){2, 0, 1}, &p));
  CHECK(p->shape[0] == 4 && p->shape[1] == 2 && p->shape[2] == 3 && !vz_tensor_is_contiguous(p));
  float want[24];
  for (int k = 0; k < 4; k++)
    for (int i = 0; i < 2; i++)
      for (int j = 0; j < 3; j++)
        want[(k * 2 + i) * 3 + j] = (float)(i * 12 + j * 4 + k);
  expect_values("permute", p, want, 24);
  CHECK_OK(vz_transpose(x, -1, 0, &t));
  for (int k = 0; k < 4; k++)
    for (int j = 0; j < 3; j++)
      for (int i = 0; i < 2; i++)
        want[(k * 3 + j) * 2 + i] = (float)(i * 12 + j * 4 + k);
  expect_values("transpose", t, want, 24);
  vz_tensor *bad = NULL;
  CHECK_FAILS(vz_permute(x, (int[]){0, 0, 1}, &bad), VZ_ERR_INVALID_ARGUMENT);
  CHECK_FAILS(vz_transpose(x, 0, 3, &bad), VZ_ERR_INVALID_ARGUMENT);
  vz_tensor_free(p);
  vz_tensor_free(t);
  vz_tensor_free(x);
}

static void test_slice(vz_backend *be) {
  vz_tensor *x = iota_234(be), *s = NULL, *s2 = NULL;
  CHECK_OK(vz_slice(x, 2, 1, 100, 2, &s)); /* columns 1 and 3 */
  CHECK(s->shape[2] == 2 && s->stride[2] == 2 && s->offset == 1);
  float want[12];
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 3; j++)
      for (int c = 0; c < 2; c++)
        want[(i * 3 + j) * 2 + c] = (float)(i * 12 + j * 4 + 1 + 2 * c);
  expect_values("slice step 2", s, want, 12);
  CHECK_OK(vz_slice(s, 1, -2, -1, 1, &s2)); /* row 1 only */
  CHECK(s2->shape[1] == 1);
  float want2[4] = {5, 7, 17, 19};
  expect_values("slice of slice", s2, want2, 4);
  vz_tensor *empty = NULL;
  CHECK_OK(vz_slice(x, 0, 5, 9, 1, &empty));
  CHECK(empty->shape[0] == 0 && vz_tensor_numel(empty) == 0);
  vz_tensor *bad = NULL;
  CHECK_FAILS(vz_slice(x, 0, 0, 1, 0, &bad), VZ_ERR_INVALID_ARGUMENT);
  CHECK_FAILS(vz_slice(x, 3, 0, 1, 1, &bad), VZ_ERR_INVALID_ARGUMENT);
  vz_tensor_free(empty);
  vz_tensor_free(s2);
  vz_tensor_free(s);
  vz_tensor_free(x);
}

static void test_reshape(vz_backend *be) {
  vz_tensor *x = iota_234(be), *r = NULL, *t = NULL, *rt = NULL;
  CHECK_OK(vz_reshape(x, 2, (int64_t[]){6, -1}, &r));
  CHECK(r->shape[0] == 6 && r->shape[1] == 4 && r->buffer == x->buffer);
  /* Splitting a transposed dimension has no view: a copy. */
  CHECK_OK(vz_transpose(x, 1, 2, &t));
  CHECK_OK(vz_reshape(t, 2, (int64_t[]){2, 12}, &rt));
  CHECK(rt->buffer != x->buffer && vz_tensor_is_contiguous(rt));
  float want[24];
  for (int i = 0; i < 2; i++)
    for (int k = 0; k < 4; k++)
      for (int j = 0; j < 3; j++)
        want[i * 12 + k * 3 + j] = (float)(i * 12 + j * 4 + k);
  expect_values("reshape of transpose", rt, want, 24);
  /* Merging uniformly strided leading dims of a column slice stays a view. */
  vz_tensor *cols = NULL, *lead = NULL;
  CHECK_OK(vz_slice(x, 2, 0, 2, 1, &cols)); /* [2, 3, 2], strides [12, 4, 1] */
  CHECK_OK(vz_reshape(cols, 2, (int64_t[]){6, 2}, &lead));
  CHECK(lead->buffer == x->buffer && lead->stride[0] == 4 && lead->stride[1] == 1);
  float want_lead[12];
  for (int r = 0; r < 6; r++)
    for (int c = 0; c < 2; c++)
      want_lead[r * 2 + c] = (float)(r * 4 + c);
  expect_values("reshape merging leading dims", lead, want_lead, 12);
  vz_tensor *bad = NULL;
  CHECK_FAILS(vz_reshape(x, 2, (int64_t[]){5, -1}, &bad), VZ_ERR_SHAPE);
  CHECK_FAILS(vz_reshape(x, 2, (int64_t[]){5, 5}, &bad), VZ_ERR_SHAPE);
  CHECK_FAILS(vz_reshape(x, 2, (int64_t[]){-1, -1}, &bad), VZ_ERR_SHAPE);
  vz_tensor_free(lead);
  vz_tensor_free(cols);
  vz_tensor_free(rt);
  vz_tensor_free(t);
  vz_tensor_free(r);
  vz_tensor_free(x);
}

static void test_expand_view_contiguous(vz_backend *be) {
  float row[3] = {1, 2, 3};
  vz_tensor *x = test_tensor(be, 2, (int64_t[]){1, 3}, row), *e = NULL, *c = NULL;
  CHECK_OK(vz_expand(x, 3, (int64_t[]){2, 4, 3}, &e));
  CHECK(e->stride[0] == 0 && e->stride[1] == 0 && e->stride[2] == 1);
  float want[24];
  for (int i = 0; i < 24; i++)
    want[i] = row[i % 3];
  expect_values("expand", e, want, 24);
  CHECK_OK(vz_contiguous(e, &c));
  CHECK(vz_tensor_is_contiguous(c) && c->buffer != x->buffer);
  expect_values("contiguous of expand", c, want, 24);
  vz_tensor *bad = NULL;
  CHECK_FAILS(vz_expand(x, 2, (int64_t[]){2, 4}, &bad), VZ_ERR_SHAPE);
  /* Views are checked against the buffer's bounds. */
  CHECK_FAILS(vz_tensor_view(x, 1, (int64_t[]){4}, (int64_t[]){1}, 0, &bad), VZ_ERR_SHAPE);
  CHECK_FAILS(vz_tensor_view(x, 1, (int64_t[]){2}, (int64_t[]){-1}, 0, &bad), VZ_ERR_SHAPE);
  vz_tensor *rev = NULL;
  CHECK_OK(vz_tensor_view(x, 1, (int64_t[]){3}, (int64_t[]){-1}, 2, &rev));
  float want_rev[3] = {3, 2, 1};
  expect_values("negative stride", rev, want_rev, 3);
  /* A view keeps its buffer alive after the base tensor is freed. */
  vz_tensor_free(x);
  expect_values("view outliving its base", rev, want_rev, 3);
  vz_tensor_free(rev);
  vz_tensor_free(c);
  vz_tensor_free(e);
}

static void count_release(void *calls) { ++*(int *)calls; }

/* Host memory lent to tensors (vz_tensor_wrap_host): used in place where
 * the backend reads host memory (the CPU) until the last view goes, never
 * written (the page is mapped read-only, so a write would crash the test),
 * copied elsewhere or when misaligned; release runs exactly once. */
static void test_wrap_host(vz_backend *be) {
  long page = sysconf(_SC_PAGESIZE);
  float *mem = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(mem != MAP_FAILED);
  if (mem == MAP_FAILED)
    return;
  float iota[24], twice[24], transposed[24];
  for (int i = 0; i < 24; i++) {
    mem[i] = iota[i] = (float)i;
    twice[i] = 2.0f * (float)i;
  }
  for (int c = 0; c < 4; c++) /* [4, 3, 2] of x[a][b][c] at a*12 + b*4 + c */
    for (int b = 0; b < 3; b++)
      for (int a = 0; a < 2; a++)
        transposed[c * 6 + b * 2 + a] = (float)(a * 12 + b * 4 + c);
  CHECK(mprotect(mem, (size_t)page, PROT_READ) == 0);
  const bool in_place = vz_backend_wraps_host_memory(be);
  if (strcmp(vz_backend_name(be), "cpu") == 0)
    CHECK(in_place);
  const int64_t shape[3] = {2, 3, 4};
  int calls = 0;
  vz_tensor *t = NULL, *sum = NULL, *view = NULL;
  CHECK_OK(vz_tensor_wrap_host(be, VZ_F32, 3, shape, mem, 96, count_release, &calls, &t));
  if (!t)
    goto unmap;
  CHECK(vz_tensor_is_read_only(t) == in_place && calls == !in_place);
  CHECK((vz_tensor_host_data(t) == mem) == in_place);
  expect_values("lent memory", t, iota, 24);
  CHECK_OK(vz_add(t, t, &sum));
  expect_values("an op reading lent memory", sum, twice, 24);
  if (in_place) {
    float zeros[24] = {0};
    CHECK_FAILS(vz_tensor_write(t, zeros, sizeof zeros), VZ_ERR_INVALID_ARGUMENT);
    CHECK(strstr(vz_last_error(), "read-only") != NULL);
    vz_tensor *given = t;
    CHECK_FAILS(vz_add(sum, sum, &given), VZ_ERR_INVALID_ARGUMENT);
    CHECK(given == t && strstr(vz_last_error(), "read-only") != NULL);
  }
  /* a view keeps the memory lent after the tensor goes */
  CHECK_OK(vz_transpose(t, 0, 2, &view));
  vz_tensor_free(t);
  CHECK(calls == !in_place);
  expect_values("a view of lent memory", view, transposed, 24);
  CHECK(vz_tensor_is_read_only(view) == in_place);
  vz_tensor_free(view);
  CHECK(calls == 1);
  vz_tensor_free(sum);

  /* floats 2 bytes off their alignment are copied, and released at once */
  calls = 0;
  const char *odd = (const char *)mem + 2;
  CHECK_OK(vz_tensor_wrap_host(be, VZ_F32, 1, (int64_t[]){4}, odd, 16, count_release, &calls, &t));
  CHECK(calls == 1);
  if (t) {
    CHECK(!vz_tensor_is_read_only(t) && vz_tensor_host_data(t) != odd);
    unsigned char back[16];
    CHECK_OK(vz_tensor_to_host(t, back, sizeof back));
    CHECK(memcmp(back, odd, sizeof back) == 0);
    vz_tensor_free(t);
  }
  /* the wrong size: an error, *out untouched, released once */
  calls = 0;
  t = NULL;
  CHECK_FAILS(
      vz_tensor_wrap_host(be, VZ_F32, 1, (int64_t[]){5}, mem, 16, count_release, &calls, &t),
      VZ_ERR_SHAPE);
  CHECK(t == NULL && calls == 1);
  CHECK_FAILS(
      vz_tensor_wrap_host(be, VZ_F32, 1, (int64_t[]){4}, mem, 17, count_release, &calls, &t),
      VZ_ERR_SHAPE);
  CHECK(t == NULL && calls == 2);
  /* no release function */
  CHECK_OK(vz_tensor_wrap_host(be, VZ_F32, 1, (int64_t[]){4}, mem, 16, NULL, NULL, &t));
  vz_tensor_free(t);
unmap:
  munmap(mem, (size_t)page);
}

int main(void) {
  vz_backend *be = test_backend();
  test_new_and_io(be);
  test_permute_transpose(be);
  test_slice(be);
  test_reshape(be);
  test_expand_view_contiguous(be);
  test_wrap_host(be);
  vz_backend_free(be);
  return test_finish("test_tensor");
}

/* Small helpers shared by the tests: a seeded generator, tensor builders on
 * the backend under test, comparisons that report where they failed, and
 * the skip convention (exit 77, which ctest reports as skipped). */
#ifndef VLZOO_TEST_UTIL_H
#define VLZOO_TEST_UTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "vlzoo/vlzoo.h"

#define TEST_SKIP 77

/* Counts failures; a test's main returns test_finish(). */
extern int test_failures;

#define CHECK(cond)                                                                                \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);                     \
      test_failures++;                                                                             \
    }                                                                                              \
  } while (0)

/* A vlzoo call that must succeed; prints the library's message otherwise. */
#define CHECK_OK(call)                                                                             \
  do {                                                                                             \
    vz_status check_ok_status_ = (call);                                                           \
    if (check_ok_status_ != VZ_OK) {                                                               \
      fprintf(stderr, "%s:%d: %s failed: %s: %s\n", __FILE__, __LINE__, #call,                     \
              vz_status_string(check_ok_status_), vz_last_error());                                \
      test_failures++;                                                                             \
    }                                                                                              \
  } while (0)

/* A vlzoo call that must fail with `expected` and leave a message. */
#define CHECK_FAILS(call, expected)                                                                \
  do {                                                                                             \
    vz_clear_error();                                                                              \
    vz_status check_fails_status_ = (call);                                                        \
    if (check_fails_status_ != (expected) || vz_last_error()[0] == '\0') {                         \
      fprintf(stderr, "%s:%d: %s gave '%s' (%s), expected '%s'\n", __FILE__, __LINE__, #call,      \
              vz_status_string(check_fails_status_), vz_last_error(), vz_status_string(expected)); \
      test_failures++;                                                                             \
    }                                                                                              \
  } while (0)

/* Creates the backend named by VLZOO_TEST_BACKEND (default "cpu"); exits
 * with TEST_SKIP, saying why, when it cannot be made here (for instance
 * VLZOO_CPU_ISA=avx512 on a processor without AVX-512). */
vz_backend *test_backend(void);

/* Deterministic pseudo-random numbers (xorshift), seeded per test. */
void test_seed(uint64_t seed);
uint64_t test_next(void);
float test_uniform(float lo, float hi);
float test_normal(void);

/* Host arrays of n values: uniform in [lo, hi), or standard normal. */
float *test_random_floats(int64_t n, float lo, float hi);

/* Number of elements of a shape (1 for ndim 0). */
int64_t test_numel(int ndim, const int64_t *shape);

/* The bits of an f32 and the f32 of some bits. */
uint32_t test_float_bits(float f);
float test_bits_float(uint32_t u);

/* A contiguous f32 tensor on `be` holding a copy of `data`. */
vz_tensor *test_tensor(vz_backend *be, int ndim, const int64_t *shape, const float *data);
/* Same for any dtype; `data` must hold numel * size bytes. */
vz_tensor *test_tensor_of(vz_backend *be, vz_dtype dtype, int ndim, const int64_t *shape,
                          const void *data);
/* An f32 tensor on `be` of values uniform in [lo, hi); their host copy goes
 * to *host (the caller frees it) when host is not NULL. */
vz_tensor *test_random_tensor(vz_backend *be, int ndim, const int64_t *shape, float lo, float hi,
                              float **host);

/* A tensor's elements copied to a new host array (row-major), or NULL. */
float *test_read_f32(const vz_tensor *t);
void *test_read_bytes(const vz_tensor *t);

/* Compares n values with |got - want| <= atol + rtol * |want|; NaN and
 * infinities must match exactly. Reports the first few mismatches under
 * `what` and returns whether all matched. */
bool test_close(const char *what, const float *got, const float *want, int64_t n, float atol,
                float rtol);

/* test_close on the elements of an f32 tensor (a NULL tensor fails as "no
 * data"). */
bool test_close_tensor(const char *what, const vz_tensor *t, const float *want, int64_t n,
                       float atol, float rtol);

/* Normalized squared error sum((g-w)^2) / sum(w^2) (0 when both are 0). */
double test_nmse(const float *got, const float *want, int64_t n);

/* ---- Files ---- */

/* The test fixtures folder (tests/fixtures): $VLZOO_FIXTURES_DIR, which
 * tests/CMakeLists.txt sets; NULL when it is unset or empty, and a test
 * that needs it then skips (exit TEST_SKIP). */
const char *test_fixtures_dir(void);

/* The shared assets folder (../shared/assets beside the repository):
 * $VLZOO_ASSETS_DIR when set and not empty, else found from the fixtures
 * folder; NULL when neither variable is set. The folder may not exist. */
const char *test_assets_dir(void);

/* out = dir + "/" + name (cut to size). */
void test_path_join(char *out, size_t size, const char *dir, const char *name);

/* The whole file, with a NUL after its bytes; *size (when not NULL) gets
 * their count. NULL when it cannot be read. */
void *test_read_file(const char *path, size_t *size);

/* Reads the op reference fixtures/ops/NAME.bin, a line "vlzoo-fixture
 * DTYPE NDIM DIMS..." then the little-endian elements, which must be of
 * `dtype` ("f32" or "i32"); returns the elements and sets *count. NULL
 * with a note when VLZOO_FIXTURES_DIR is not set, or NULL counted as a
 * failure when the file cannot be read. */
void *test_load_fixture(const char *name, const char *dtype, int64_t *count);

/* Prints a summary and returns the process exit code. */
int test_finish(const char *name);

#endif

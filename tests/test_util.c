/* Shared test helpers; see test_util.h. */
#include "tests/test_util.h"

#include <math.h>
#include <string.h>

int test_failures = 0;
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

vz_backend *test_backend(void) {
  const char *name = getenv("VLZOO_TEST_BACKEND");
  vz_backend *be = NULL;
  vz_status st = vz_backend_create(name && *name ? name : "cpu", &be);
  if (st != VZ_OK) {
    if (st == VZ_ERR_UNSUPPORTED || st == VZ_ERR_NOT_FOUND || st == VZ_ERR_BACKEND) {
      printf("SKIP: backend not available here: %s\n", vz_last_error());
      exit(TEST_SKIP);
    }
    fprintf(stderr, "cannot create backend: %s\n", vz_last_error());
    exit(1);
  }
  return be;
}

void test_seed(uint64_t seed) { rng_state = seed * 0x9e3779b97f4a7c15ull + 1; }

uint64_t test_next(void) {
  uint64_t x = rng_state;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return rng_state = x;
}

float test_uniform(float lo, float hi) {
  return lo + (hi - lo) * (float)((test_next() >> 40) * (1.0 / 16777216.0));
}

float test_normal(void) {
  double u1 = ((test_next() >> 11) + 1.0) * (1.0 / 9007199254740993.0);
  double u2 = (test_next() >> 11) * (1.0 / 9007199254740992.0);
  return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

float *test_random_floats(int64_t n, float lo, float hi) {
  float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof *p);
  for (int64_t i = 0; i < n; i++)
    p[i] = test_uniform(lo, hi);
  return p;
}

int64_t test_numel(int ndim, const int64_t *shape) {
  int64_t n = 1;
  for (int i = 0; i < ndim; i++)
    n *= shape[i];
  return n;
}

uint32_t test_float_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}

float test_bits_float(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}

vz_tensor *test_tensor_of(vz_backend *be, vz_dtype dtype, int ndim, const int64_t *shape,
                          const void *data) {
  int64_t n = test_numel(ndim, shape);
  vz_tensor *t = NULL;
  vz_status st =
      vz_tensor_from_host(be, dtype, ndim, shape, data, (size_t)n * vz_dtype_size(dtype), &t);
  if (st != VZ_OK) {
    fprintf(stderr, "cannot make a test tensor: %s\n", vz_last_error());
    exit(1);
  }
  return t;
}

vz_tensor *test_tensor(vz_backend *be, int ndim, const int64_t *shape, const float *data) {
  return test_tensor_of(be, VZ_F32, ndim, shape, data);
}

vz_tensor *test_random_tensor(vz_backend *be, int ndim, const int64_t *shape, float lo, float hi,
                              float **host) {
  float *data = test_random_floats(test_numel(ndim, shape), lo, hi);
  vz_tensor *t = test_tensor(be, ndim, shape, data);
  if (host)
    *host = data;
  else
    free(data);
  return t;
}

void *test_read_bytes(const vz_tensor *t) {
  size_t bytes = vz_tensor_nbytes(t);
  void *p = malloc(bytes ? bytes : 1);
  if (vz_tensor_to_host(t, p, bytes) != VZ_OK) {
    fprintf(stderr, "cannot read a tensor: %s\n", vz_last_error());
    free(p);
    return NULL;
  }
  return p;
}

float *test_read_f32(const vz_tensor *t) {
  if (t->dtype != VZ_F32) {
    fprintf(stderr, "test_read_f32 on a %s tensor\n", vz_dtype_name(t->dtype));
    return NULL;
  }
  return test_read_bytes(t);
}

bool test_close(const char *what, const float *got, const float *want, int64_t n, float atol,
                float rtol) {
  int reported = 0;
  bool ok = got && want;
  for (int64_t i = 0; ok && i < n; i++) {
    float g = got[i], w = want[i];
    bool match;
    if (isnan(w) || isinf(w))
      match = (isnan(w) && isnan(g)) || g == w;
    else
      match = !isnan(g) && fabsf(g - w) <= atol + rtol * fabsf(w);
    if (!match) {
      if (reported++ < 5)
        fprintf(stderr, "%s: element %lld is %.9g, expected %.9g\n", what, (long long)i, g, w);
    }
  }
  if (!got || !want) {
    fprintf(stderr, "%s: no data\n", what);
    ok = false;
  }
  if (reported) {
    fprintf(stderr, "%s: %d mismatches\n", what, reported);
    ok = false;
  }
  if (!ok)
    test_failures++;
  return ok;
}

bool test_close_tensor(const char *what, const vz_tensor *t, const float *want, int64_t n,
                       float atol, float rtol) {
  float *got = t ? test_read_f32(t) : NULL;
  bool ok = test_close(what, got, want, n, atol, rtol);
  free(got);
  return ok;
}

double test_nmse(const float *got, const float *want, int64_t n) {
  double err = 0, ref = 0;
  for (int64_t i = 0; i < n; i++) {
    double d = (double)got[i] - want[i];
    err += d * d;
    ref += (double)want[i] * want[i];
  }
  return ref == 0 ? err : err / ref;
}

const char *test_fixtures_dir(void) {
  const char *dir = getenv("VLZOO_FIXTURES_DIR");
  return dir && *dir ? dir : NULL;
}

const char *test_assets_dir(void) {
  static char found[4096];
  const char *dir = getenv("VLZOO_ASSETS_DIR");
  if (dir && *dir)
    return dir;
  const char *fixtures = test_fixtures_dir();
  if (!fixtures)
    return NULL;
  test_path_join(found, sizeof found, fixtures, "../../../shared/assets");
  return found;
}

void test_path_join(char *out, size_t size, const char *dir, const char *name) {
  snprintf(out, size, "%s/%s", dir, name);
}

void *test_read_file(const char *path, size_t *size) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  char *buf = NULL;
  size_t cap = 0, len = 0;
  for (;;) {
    if (len + 1 >= cap) { /* room for the bytes and the NUL */
      cap = cap ? 2 * cap : 65536;
      char *b = realloc(buf, cap);
      if (!b) {
        free(buf);
        fclose(f);
        return NULL;
      }
      buf = b;
    }
    size_t got = fread(buf + len, 1, cap - 1 - len, f);
    len += got;
    if (!got)
      break;
  }
  bool failed = ferror(f) != 0;
  fclose(f);
  if (failed) {
    free(buf);
    return NULL;
  }
  buf[len] = '\0';
  if (size)
    *size = len;
  return buf;
}

void *test_load_fixture(const char *name, const char *dtype, int64_t *count) {
  const char *dir = test_fixtures_dir();
  if (!dir) {
    printf("note: VLZOO_FIXTURES_DIR is not set; skipping the %s reference\n", name);
    return NULL;
  }
  char path[1024], line[256], kind[16];
  snprintf(path, sizeof path, "%s/ops/%s.bin", dir, name);
  FILE *f = fopen(path, "rb");
  int ndim = 0, used = 0;
  if (!f || !fgets(line, sizeof line, f) ||
      sscanf(line, "vlzoo-fixture %15s %d%n", kind, &ndim, &used) != 2 || strcmp(kind, dtype)) {
    fprintf(stderr, "cannot read fixture %s\n", path);
    test_failures++;
    if (f)
      fclose(f);
    return NULL;
  }
  int64_t n = 1;
  const char *p = line + used;
  for (int i = 0; i < ndim; i++) {
    long long d;
    int k;
    if (sscanf(p, "%lld%n", &d, &k) != 1)
      break;
    n *= d;
    p += k;
  }
  void *data = malloc((size_t)n * 4); /* f32 or i32 */
  if (fread(data, 4, (size_t)n, f) != (size_t)n) {
    fprintf(stderr, "fixture %s is short\n", path);
    test_failures++;
    free(data);
    data = NULL;
  }
  fclose(f);
  *count = n;
  return data;
}

int test_finish(const char *name) {
  if (test_failures) {
    printf("%s: %d check(s) failed\n", name, test_failures);
    return 1;
  }
  printf("%s: all checks passed\n", name);
  return 0;
}

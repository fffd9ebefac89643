#define _POSIX_C_SOURCE 200809L
/* The dispatcher and backend registry: names, settings from the
 * environment, output reuse, and the errors a caller can provoke. */
#include <string.h>

#include "tests/test_util.h"

static void test_registry(void) {
  const char *const *names = vz_backend_names();
  CHECK(names && names[0] && strcmp(names[0], "cpu") == 0);
  vz_backend *be = NULL;
  CHECK_FAILS(vz_backend_create("npu-that-is-not-there", &be), VZ_ERR_NOT_FOUND);
  CHECK(strstr(vz_last_error(), "available: cpu") != NULL);
  CHECK(be == NULL);

  setenv("VLZOO_DEVICE", "cpu", 1);
  CHECK_OK(vz_backend_create(NULL, &be));
  CHECK(be && strcmp(vz_backend_name(be), "cpu") == 0);
  CHECK(strstr(vz_backend_description(be), "threads") != NULL);
  vz_backend_free(be);
  unsetenv("VLZOO_DEVICE");
}

static void test_environment(void) {
  vz_backend *be = NULL;
  const char *isa = getenv("VLZOO_CPU_ISA");
  char *saved = isa ? strdup(isa) : NULL;
  setenv("VLZOO_CPU_ISA", "sse1", 1);
  CHECK_FAILS(vz_backend_create("cpu", &be), VZ_ERR_INVALID_ARGUMENT);
  CHECK(strstr(vz_last_error(), "VLZOO_CPU_ISA") != NULL);
  if (saved)
    setenv("VLZOO_CPU_ISA", saved, 1);
  else
    unsetenv("VLZOO_CPU_ISA");
  free(saved);

  setenv("VLZOO_THREADS", "0", 1);
  CHECK_FAILS(vz_backend_create("cpu", &be), VZ_ERR_INVALID_ARGUMENT);
  setenv("VLZOO_THREADS", "3", 1);
  CHECK_OK(vz_backend_create("cpu", &be));
  CHECK(be && strstr(vz_backend_description(be), "3 threads") != NULL);
  vz_backend_free(be);
  setenv("VLZOO_THREADS", "2", 1);
}

static void test_op_table(void) {
  for (int op = 0; op < VZ_OP_COUNT; op++) {
    const char *name = vz_op_name((vz_op_kind)op);
    CHECK(name && strcmp(name, "?") != 0);
    CHECK(vz_op_from_name(name) == (vz_op_kind)op);
  }
  CHECK(vz_op_from_name("frobnicate") == VZ_OP_COUNT);
  CHECK(strcmp(vz_op_name(VZ_OP_COUNT), "?") == 0);
  vz_op_call call = {.op = VZ_OP_COUNT};
  CHECK_FAILS(vz_op_execute(&call), VZ_ERR_INVALID_ARGUMENT);
  CHECK_FAILS(vz_op_execute(NULL), VZ_ERR_INVALID_ARGUMENT);
}

static void test_outputs(vz_backend *be) {
  float a[6] = {1, 2, 3, 4, 5, 6}, b[3] = {10, 20, 30};
  vz_tensor *ta = test_tensor(be, 2, (int64_t[]){2, 3}, a);
  vz_tensor *tb = test_tensor(be, 1, (int64_t[]){3}, b);

  vz_tensor *out = NULL;
  CHECK_OK(vz_tensor_new(be, VZ_F32, 2, (int64_t[]){2, 3}, &out));
  vz_tensor *given = out;
  CHECK_OK(vz_add(ta, tb, &out));
  CHECK(out == given);
  float want[6] = {11, 22, 33, 14, 25, 36};
  float *got = test_read_f32(out);
  test_close("add into a given output", got, want, 6, 0, 0);
  free(got);

  vz_tensor *wrong = NULL;
  CHECK_OK(vz_tensor_new(be, VZ_F32, 2, (int64_t[]){3, 2}, &wrong));
  CHECK_FAILS(vz_add(ta, tb, &wrong), VZ_ERR_SHAPE);
  CHECK(strncmp(vz_last_error(), "add: ", 5) == 0);
  vz_tensor *strided = NULL;
  CHECK_OK(vz_transpose(wrong, 0, 1, &strided));
  CHECK_FAILS(vz_add(ta, tb, &strided), VZ_ERR_INVALID_ARGUMENT);

  /* Inputs of two backend instances do not mix. */
  vz_backend *other = test_backend();
  vz_tensor *foreign = test_tensor(other, 1, (int64_t[]){3}, b);
  vz_tensor *mixed = NULL;
  CHECK_FAILS(vz_add(ta, foreign, &mixed), VZ_ERR_INVALID_ARGUMENT);
  CHECK(mixed == NULL);

  /* A failed call leaves no output behind. */
  vz_tensor *none = NULL;
  CHECK_FAILS(vz_add(ta, wrong, &none), VZ_ERR_SHAPE);
  CHECK(none == NULL);
  CHECK_FAILS(vz_add(ta, NULL, &none), VZ_ERR_INVALID_ARGUMENT);
  CHECK_FAILS(vz_add(ta, tb, NULL), VZ_ERR_INVALID_ARGUMENT);

  /* A dtype no CPU kernel handles is an error, not a crash or a loop. */
  vz_tensor *h = NULL;
  CHECK_OK(vz_tensor_zeros(be, VZ_F16, 1, (int64_t[]){3}, &h));
  CHECK_FAILS(vz_gelu_erf(h, &none), VZ_ERR_DTYPE);

  vz_tensor_free(h);
  vz_tensor_free(foreign);
  vz_backend_free(other);
  vz_tensor_free(strided);
  vz_tensor_free(wrong);
  vz_tensor_free(out);
  vz_tensor_free(tb);
  vz_tensor_free(ta);
}

int main(void) {
  test_registry();
  test_environment();
  test_op_table();
  vz_backend *be = test_backend();
  test_outputs(be);
  vz_backend_free(be);
  return test_finish("test_dispatch");
}

/* Weight loading with shape checks, and the composite steps models share. */
#include "models/model_util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

/* ---- Loading ---- */

static const char *format_name(char *buf, size_t size, const char *fmt, va_list args) {
  vsnprintf(buf, size, fmt, args);
  return buf;
}

static const char *shape_text(int ndim, const int64_t *shape, char *buf, size_t size) {
  size_t used = (size_t)snprintf(buf, size, "[");
  for (int i = 0; i < ndim && used < size; i++)
    used += (size_t)snprintf(buf + used, size - used, "%s%lld", i ? ", " : "", (long long)shape[i]);
  if (used < size)
    snprintf(buf + used, size - used, "]");
  return buf;
}

bool vz_load_has(const vz_loader *ld, const char *fmt, ...) {
  char name[256];
  va_list args;
  va_start(args, fmt);
  format_name(name, sizeof name, fmt, args);
  va_end(args);
  size_t index;
  return vz_weights_find(ld->w, name, &index) == VZ_OK;
}

static bool same_shape(const vz_weight_info *info, int ndim, const int64_t *shape) {
  if (ndim == 0 && info->ndim == 1 && info->shape[0] == 1)
    return true; /* a scalar saved as [1] */
  if (info->ndim != ndim)
    return false;
  for (int i = 0; i < ndim; i++)
    if (info->shape[i] != shape[i])
      return false;
  return true;
}

static void close_weights(void *w) { vz_weights_close(w); }

static vz_tensor *load_va(vz_loader *ld, vz_dtype as, int ndim, const int64_t *shape,
                          const char *fmt, va_list args) {
  if (ld->st != VZ_OK)
    return NULL;
  char name[256];
  format_name(name, sizeof name, fmt, args);
  size_t index;
  if (vz_weights_find(ld->w, name, &index) != VZ_OK) {
    ld->st = vz_fail(VZ_ERR_NOT_FOUND, "the weights have no tensor %s", name);
    return NULL;
  }
  const vz_weight_info *info = vz_weights_info(ld->w, index);
  char have[128], want[128];
  if (!same_shape(info, ndim, shape)) {
    ld->st = vz_fail(VZ_ERR_SHAPE, "%s has shape %s, expected %s", name,
                     shape_text(info->ndim, info->shape, have, sizeof have),
                     shape_text(ndim, shape, want, sizeof want));
    return NULL;
  }
  if (info->dtype != VZ_F32 && info->dtype != VZ_F16 && info->dtype != VZ_BF16) {
    ld->st = vz_fail(VZ_ERR_DTYPE, "%s is %s, not a float tensor (f32, f16 or bf16)", name,
                     vz_dtype_name(info->dtype));
    return NULL;
  }
  if (ld->check_only)
    return NULL;
  const void *data;
  size_t nbytes;
  vz_tensor *raw = NULL, *t = NULL;
  vz_status st = vz_weights_data(ld->w, index, &data, &nbytes);
  /* On a backend that reads host memory (the CPU) the bytes are used where
   * they lie, keeping the weights open; a cast reads them from there. */
  if (st == VZ_OK && vz_weights_mapped(ld->w, index))
    st = vz_tensor_wrap_host(ld->be, info->dtype, ndim, shape, data, nbytes, close_weights,
                             vz_weights_retain(ld->w), &raw);
  else if (st == VZ_OK)
    st = vz_tensor_from_host(ld->be, info->dtype, ndim, shape, data, nbytes, &raw);
  if (st == VZ_OK && info->dtype != as) {
    st = vz_cast(raw, as, &t);
    vz_tensor_free(raw);
  } else {
    t = raw;
  }
  /* Unless the model uses the file's bytes in place, it holds its own copy
   * now, and the file's pages need not stay. */
  if (!vz_tensor_is_read_only(t))
    vz_weights_release(ld->w, index);
  if (st != VZ_OK) {
    ld->st = vz_fail_context(st, "loading %s: ", name);
    return NULL;
  }
  return t;
}

vz_tensor *vz_load(vz_loader *ld, vz_dtype as, int ndim, const int64_t *shape, const char *fmt,
                   ...) {
  va_list args;
  va_start(args, fmt);
  vz_tensor *t = load_va(ld, as, ndim, shape, fmt, args);
  va_end(args);
  return t;
}

vz_tensor *vz_load_vec(vz_loader *ld, int64_t n, const char *fmt, ...) {
  va_list args;
  va_start(args, fmt);
  vz_tensor *t = load_va(ld, VZ_F32, 1, (int64_t[]){n}, fmt, args);
  va_end(args);
  return t;
}

vz_tensor *vz_load_mat(vz_loader *ld, int64_t rows, int64_t cols, const char *fmt, ...) {
  va_list args;
  va_start(args, fmt);
  vz_tensor *t = load_va(ld, ld->matmul_dtype, 2, (int64_t[]){rows, cols}, fmt, args);
  va_end(args);
  return t;
}

vz_status vz_tensor_from_floats(vz_backend *be, int ndim, const int64_t *shape, const float *data,
                                vz_tensor **out) {
  int64_t n = 1;
  for (int i = 0; i < ndim; i++)
    n *= shape[i];
  return vz_tensor_from_host(be, VZ_F32, ndim, shape, data, (size_t)n * sizeof(float), out);
}

/* ---- Forward steps ---- */

static vz_status activate(vz_op_kind act, vz_tensor **y) {
  switch (act) {
  case VZ_OP_GELU_ERF: return vz_gelu_erf(*y, y);
  case VZ_OP_GELU_TANH: return vz_gelu_tanh(*y, y);
  case VZ_OP_QUICK_GELU: return vz_quick_gelu(*y, y);
  case VZ_OP_SILU: return vz_silu(*y, y);
  case VZ_OP_RELU: return vz_relu(*y, y);
  case VZ_OP_SIGMOID: return vz_sigmoid(*y, y);
  case VZ_OP_COUNT: return VZ_OK;
  default: return vz_fail(VZ_ERR_INVALID_ARGUMENT, "%s is not an activation", vz_op_name(act));
  }
}

vz_status vz_linear_act(const vz_tensor *x, const vz_tensor *w, const vz_tensor *b, vz_op_kind act,
                        const vz_tensor *residual, vz_tensor **out) {
  vz_op_call call = {.op = VZ_OP_LINEAR, .n_inputs = 4, .inputs = {x, w, b, residual}};
  call.attrs.linear.activation = act;
  if (x && vz_backend_supports(vz_tensor_backend(x), &call))
    return vz_fused_linear(x, w, b, act, residual, out);
  /* A backend without the fused op runs the steps one by one on the device
   * (the dispatcher would otherwise copy the weights to the CPU). */
  vz_tensor *y = NULL, **target = residual ? &y : out;
  vz_status st = vz_matmul(x, w, false, true, target);
  if (st == VZ_OK && b)
    st = vz_add(*target, b, target); /* in place */
  if (st == VZ_OK)
    st = activate(act, target);
  if (st == VZ_OK && residual)
    st = vz_add(residual, y, out);
  vz_tensor_free(y);
  return st;
}

vz_status vz_linear(const vz_tensor *x, const vz_tensor *w, const vz_tensor *b, vz_tensor **out) {
  vz_tensor *y = NULL; /* always a new tensor, whatever *out held */
  vz_status st = vz_linear_act(x, w, b, VZ_OP_COUNT, NULL, &y);
  if (st == VZ_OK)
    *out = y;
  return st;
}

vz_status vz_split_heads(const vz_tensor *x, int heads, vz_tensor **out) {
  if (x->ndim != 3 || heads < 1 || x->shape[2] % heads != 0)
    return vz_fail(VZ_ERR_SHAPE, "split_heads: expected [B, S, %d * d]", heads);
  int64_t shape[4] = {x->shape[0], x->shape[1], heads, x->shape[2] / heads};
  vz_tensor *r = NULL;
  vz_status st = vz_reshape(x, 4, shape, &r);
  if (st == VZ_OK)
    st = vz_permute(r, (const int[]){0, 2, 1, 3}, out);
  vz_tensor_free(r);
  return st;
}

vz_status vz_merge_heads(const vz_tensor *x, vz_tensor **out) {
  vz_tensor *p = NULL;
  vz_status st = vz_permute(x, (const int[]){0, 2, 1, 3}, &p);
  if (st == VZ_OK)
    st = vz_reshape(p, 3, (int64_t[]){x->shape[0], x->shape[2], x->shape[1] * x->shape[3]}, out);
  vz_tensor_free(p);
  return st;
}

vz_status vz_read_floats(const vz_tensor *t, float *dst, int64_t n) {
  if (vz_tensor_numel(t) != n)
    return vz_fail(VZ_ERR_SHAPE, "expected %lld elements, not %lld", (long long)n,
                   (long long)vz_tensor_numel(t));
  vz_tensor *f = NULL;
  vz_status st = t->dtype == VZ_F32 ? VZ_OK : vz_cast(t, VZ_F32, &f);
  if (st == VZ_OK)
    st = vz_tensor_to_host(f ? f : t, dst, (size_t)n * sizeof(float));
  vz_tensor_free(f);
  return st;
}

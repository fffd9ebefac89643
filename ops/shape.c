/* Broadcasting rules shared by the element-wise ops and views, and the
 * checks the ops' shape rules share. */
#include "ops/internal.h"

vz_status vz_broadcast_shapes(int na, const int64_t *a, int nb, const int64_t *b, int *nout,
                              int64_t *out) {
  int n = na > nb ? na : nb;
  for (int i = 0; i < n; i++) {
    int64_t da = i < n - na ? 1 : a[i - (n - na)];
    int64_t db = i < n - nb ? 1 : b[i - (n - nb)];
    if (da != db && da != 1 && db != 1) {
      char sa[96], sb[96];
      return vz_fail(VZ_ERR_SHAPE, "shapes %s and %s do not broadcast",
                     vz_shape_text(na, a, sa, sizeof sa), vz_shape_text(nb, b, sb, sizeof sb));
    }
    out[i] = da == 1 ? db : da;
  }
  *nout = n;
  return VZ_OK;
}

bool vz_broadcasts_to(int n, const int64_t *shape, int nto, const int64_t *to) {
  if (n > nto)
    return false;
  for (int i = 0; i < n; i++) {
    int64_t d = shape[i], t = to[i + nto - n];
    if (d != t && d != 1)
      return false;
  }
  return true;
}

void vz_broadcast_strides(const vz_tensor *t, int nto, const int64_t *to, int64_t *stride) {
  int lead = nto - t->ndim;
  for (int i = 0; i < nto; i++) {
    if (i < lead)
      stride[i] = 0;
    else
      stride[i] = (t->shape[i - lead] == 1 && to[i] != 1) ? 0 : t->stride[i - lead];
  }
}

vz_status vz_need_f32(const vz_tensor *t, const char *what) {
  if (!t)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "%s is required", what);
  if (t->dtype != VZ_F32)
    return vz_fail(VZ_ERR_DTYPE, "%s must be f32, not %s", what, vz_dtype_name(t->dtype));
  return VZ_OK;
}

vz_status vz_need_f32_rows(const vz_tensor *x) {
  vz_status st = vz_need_f32(x, "input");
  if (st == VZ_OK && x->ndim < 1)
    st = vz_fail(VZ_ERR_SHAPE, "input needs at least one dimension");
  return st;
}

vz_status vz_need_axis(int axis, int ndim, int *ax) {
  int resolved = vz_axis(axis, ndim);
  if (resolved < 0)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "axis %d is out of range for %d dimensions", axis,
                   ndim);
  if (ax)
    *ax = resolved;
  return VZ_OK;
}

void vz_desc_like(const vz_tensor *t, vz_dtype dtype, vz_tensor_desc *out) {
  out->dtype = dtype;
  out->ndim = t->ndim;
  for (int i = 0; i < t->ndim; i++)
    out->shape[i] = t->shape[i];
}

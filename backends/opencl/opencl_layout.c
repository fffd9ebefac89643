/* Layouts of element-wise work: the output's shape and each operand's
 * strides, with dimensions merged wherever every operand allows, so that a
 * kernel computes few coordinates per element. */
#include "backends/opencl/opencl.h"

void vz_cl_make_layout(int ndim, const int64_t *out_shape, int n_ops, const vz_tensor *const *ops,
                       vz_cl_layout *l) {
  int64_t s[VZ_CL_MAX_OPERANDS][VZ_MAX_DIMS];
  for (int k = 0; k < n_ops; k++)
    vz_broadcast_strides(ops[k], ndim, out_shape, s[k]);
  int64_t shape[VZ_MAX_DIMS], stride[VZ_CL_MAX_OPERANDS][VZ_MAX_DIMS];
  int n = 0;
  for (int d = 0; d < ndim; d++) {
    if (out_shape[d] == 1)
      continue;
    bool merge = n > 0;
    for (int k = 0; k < n_ops && merge; k++)
      merge = stride[k][n - 1] == s[k][d] * out_shape[d];
    if (merge) {
      shape[n - 1] *= out_shape[d];
      for (int k = 0; k < n_ops; k++)
        stride[k][n - 1] = s[k][d];
      continue;
    }
    shape[n] = out_shape[d];
    for (int k = 0; k < n_ops; k++)
      stride[k][n] = s[k][d];
    n++;
  }
  /* Right-align into 4 dimensions, leading ones of size 1. */
  int lead = 4 - n;
  for (int d = 0; d < 4; d++) {
    l->shape[d] = d < lead ? 1 : shape[d - lead];
    for (int k = 0; k < VZ_CL_MAX_OPERANDS; k++)
      l->stride[k][d] = (d < lead || k >= n_ops) ? 0 : stride[k][d - lead];
  }
}

void vz_cl_split_axis(const vz_tensor *x, int axis, int64_t *outer, int64_t *n, int64_t *inner) {
  int ax = vz_axis(axis, x->ndim);
  *outer = *inner = 1;
  for (int d = 0; d < ax; d++)
    *outer *= x->shape[d];
  *n = x->shape[ax];
  for (int d = ax + 1; d < x->ndim; d++)
    *inner *= x->shape[d];
}

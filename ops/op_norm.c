/* Normalizations: LayerNorm and RMSNorm over the last axis, L2 over any. */
#include <math.h>

#include "ops/internal.h"

static vz_status check_param(const vz_tensor *p, const char *what, int64_t width) {
  if (!p)
    return VZ_OK;
  if (p->dtype != VZ_F32)
    return vz_fail(VZ_ERR_DTYPE, "%s must be f32, not %s", what, vz_dtype_name(p->dtype));
  if (p->ndim != 1 || p->shape[0] != width)
    return vz_fail(VZ_ERR_SHAPE, "%s must have shape [%lld]", what, (long long)width);
  return VZ_OK;
}

static vz_status check_input(const vz_op_call *call, vz_tensor_desc *outs) {
  const vz_tensor *x = call->inputs[0];
  if (!x)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "input is required");
  if (x->dtype != VZ_F32)
    return vz_fail(VZ_ERR_DTYPE, "input must be f32, not %s", vz_dtype_name(x->dtype));
  if (x->ndim < 1)
    return vz_fail(VZ_ERR_SHAPE, "input needs at least one dimension");
  if (!(call->attrs.norm.eps >= 0.0f) || !isfinite(call->attrs.norm.eps))
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "eps must be a finite number >= 0");
  outs[0].dtype = VZ_F32;
  outs[0].ndim = x->ndim;
  for (int i = 0; i < x->ndim; i++)
    outs[0].shape[i] = x->shape[i];
  return VZ_OK;
}

vz_status vz_infer_layer_norm(const vz_op_call *call, vz_tensor_desc *outs) {
  vz_status st = check_input(call, outs);
  int64_t width = outs[0].ndim ? outs[0].shape[outs[0].ndim - 1] : 0;
  if (st == VZ_OK && call->n_inputs > 1)
    st = check_param(call->inputs[1], "weight", width);
  if (st == VZ_OK && call->n_inputs > 2)
    st = check_param(call->inputs[2], "bias", width);
  return st;
}

vz_status vz_infer_rms_norm(const vz_op_call *call, vz_tensor_desc *outs) {
  vz_status st = check_input(call, outs);
  int64_t width = outs[0].ndim ? outs[0].shape[outs[0].ndim - 1] : 0;
  if (st == VZ_OK && call->n_inputs > 1)
    st = check_param(call->inputs[1], "weight", width);
  return st;
}

vz_status vz_infer_l2_normalize(const vz_op_call *call, vz_tensor_desc *outs) {
  const vz_tensor *x = call->inputs[0];
  if (!x)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "input is required");
  if (x->dtype != VZ_F32)
    return vz_fail(VZ_ERR_DTYPE, "input must be f32, not %s", vz_dtype_name(x->dtype));
  if (vz_axis(call->attrs.l2.axis, x->ndim) < 0)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "axis %d is out of range for %d dimensions",
                   call->attrs.l2.axis, x->ndim);
  if (!(call->attrs.l2.eps >= 0.0f))
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "eps must be >= 0");
  outs[0].dtype = VZ_F32;
  outs[0].ndim = x->ndim;
  for (int i = 0; i < x->ndim; i++)
    outs[0].shape[i] = x->shape[i];
  return VZ_OK;
}

vz_status vz_layer_norm(const vz_tensor *x, const vz_tensor *weight, const vz_tensor *bias,
                        float eps, vz_tensor **out) {
  vz_op_attrs attrs = {.norm = {eps}};
  const vz_tensor *in[] = {x, weight, bias};
  return vz_run_op(VZ_OP_LAYER_NORM, 3, in, &attrs, out, NULL);
}

vz_status vz_rms_norm(const vz_tensor *x, const vz_tensor *weight, float eps, vz_tensor **out) {
  vz_op_attrs attrs = {.norm = {eps}};
  const vz_tensor *in[] = {x, weight};
  return vz_run_op(VZ_OP_RMS_NORM, 2, in, &attrs, out, NULL);
}

vz_status vz_l2_normalize(const vz_tensor *x, int axis, float eps, vz_tensor **out) {
  vz_op_attrs attrs = {.l2 = {axis, eps}};
  return vz_run_op(VZ_OP_L2_NORMALIZE, 1, &x, &attrs, out, NULL);
}

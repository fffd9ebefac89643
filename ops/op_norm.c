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

/* LayerNorm (x, weight, bias) and RMSNorm (x, weight) over the last axis;
 * n_params counts the optional parameters, vectors of that axis's width. */
static vz_status infer_norm(const vz_op_call *call, vz_tensor_desc *outs, int n_params) {
  static const char *const params[] = {"weight", "bias"};
  const vz_tensor *x = call->inputs[0];
  vz_status st = vz_need_f32_rows(x);
  if (st != VZ_OK)
    return st;
  if (!(call->attrs.norm.eps >= 0.0f) || !isfinite(call->attrs.norm.eps))
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "eps must be a finite number >= 0");
  vz_desc_like(x, VZ_F32, &outs[0]);
  for (int i = 1; st == VZ_OK && i <= n_params && i < call->n_inputs; i++)
    st = check_param(call->inputs[i], params[i - 1], x->shape[x->ndim - 1]);
  return st;
}

vz_status vz_infer_layer_norm(const vz_op_call *call, vz_tensor_desc *outs) {
  return infer_norm(call, outs, 2);
}

vz_status vz_infer_rms_norm(const vz_op_call *call, vz_tensor_desc *outs) {
  return infer_norm(call, outs, 1);
}

vz_status vz_infer_l2_normalize(const vz_op_call *call, vz_tensor_desc *outs) {
  const vz_tensor *x = call->inputs[0];
  vz_status st = vz_need_f32(x, "input");
  if (st == VZ_OK)
    st = vz_need_axis(call->attrs.l2.axis, x->ndim, NULL);
  if (st != VZ_OK)
    return st;
  if (!(call->attrs.l2.eps >= 0.0f))
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "eps must be >= 0");
  vz_desc_like(x, VZ_F32, &outs[0]);
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

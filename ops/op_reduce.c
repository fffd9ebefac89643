/* Ops that reduce or scan along one axis: sum, mean, max, softmax, argmax,
 * top-k, cumsum. */
#include "ops/internal.h"

/* The input's shape with `axis` removed (or kept as 1). */
static vz_status reduced_shape(const vz_tensor *x, int axis, bool keepdim, vz_dtype dtype,
                               vz_tensor_desc *out) {
  int ax;
  vz_status st = vz_need_axis(axis, x->ndim, &ax);
  if (st != VZ_OK)
    return st;
  if (x->shape[ax] == 0)
    return vz_fail(VZ_ERR_SHAPE, "cannot reduce over an empty axis");
  out->dtype = dtype;
  out->ndim = 0;
  for (int i = 0; i < x->ndim; i++) {
    if (i != ax)
      out->shape[out->ndim++] = x->shape[i];
    else if (keepdim)
      out->shape[out->ndim++] = 1;
  }
  return VZ_OK;
}

vz_status vz_infer_reduce(const vz_op_call *call, vz_tensor_desc *outs) {
  vz_status st = vz_need_f32(call->inputs[0], "input");
  if (st != VZ_OK)
    return st;
  return reduced_shape(call->inputs[0], call->attrs.reduce.axis, call->attrs.reduce.keepdim, VZ_F32,
                       &outs[0]);
}

vz_status vz_infer_argmax(const vz_op_call *call, vz_tensor_desc *outs) {
  vz_status st = vz_need_f32(call->inputs[0], "input");
  if (st != VZ_OK)
    return st;
  return reduced_shape(call->inputs[0], call->attrs.axis.axis, false, VZ_I64, &outs[0]);
}

vz_status vz_infer_softmax(const vz_op_call *call, vz_tensor_desc *outs) {
  const vz_tensor *x = call->inputs[0];
  vz_status st = vz_need_f32_rows(x);
  if (st != VZ_OK)
    return st;
  const vz_tensor *mask = call->n_inputs > 1 ? call->inputs[1] : NULL;
  if (mask) {
    if ((st = vz_need_f32(mask, "mask")) != VZ_OK)
      return st;
    if (!vz_broadcasts_to(mask->ndim, mask->shape, x->ndim, x->shape)) {
      char a[96], b[96];
      return vz_fail(VZ_ERR_SHAPE, "mask %s does not broadcast to the input %s",
                     vz_shape_text(mask->ndim, mask->shape, a, sizeof a),
                     vz_shape_text(x->ndim, x->shape, b, sizeof b));
    }
  }
  vz_desc_like(x, VZ_F32, &outs[0]);
  return VZ_OK;
}

vz_status vz_infer_topk(const vz_op_call *call, vz_tensor_desc *outs) {
  const vz_tensor *x = call->inputs[0];
  vz_status st = vz_need_f32_rows(x);
  if (st != VZ_OK)
    return st;
  int64_t n = x->shape[x->ndim - 1];
  int k = call->attrs.topk.k;
  if (k < 1 || k > n)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "k = %d is outside 1..%lld", k, (long long)n);
  vz_desc_like(x, VZ_F32, &outs[0]);
  vz_desc_like(x, VZ_I64, &outs[1]);
  outs[0].shape[x->ndim - 1] = outs[1].shape[x->ndim - 1] = k;
  return VZ_OK;
}

vz_status vz_infer_cumsum(const vz_op_call *call, vz_tensor_desc *outs) {
  const vz_tensor *x = call->inputs[0];
  if (!x)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "input is required");
  if (x->dtype != VZ_F32 && x->dtype != VZ_I32 && x->dtype != VZ_I64)
    return vz_fail(VZ_ERR_DTYPE, "input must be f32, i32 or i64, not %s", vz_dtype_name(x->dtype));
  vz_status st = vz_need_axis(call->attrs.axis.axis, x->ndim, NULL);
  if (st == VZ_OK)
    vz_desc_like(x, x->dtype, &outs[0]);
  return st;
}

static vz_status reduce(vz_op_kind op, const vz_tensor *x, int axis, bool keepdim,
                        vz_tensor **out) {
  vz_op_attrs attrs = {.reduce = {axis, keepdim}};
  return vz_run_op(op, 1, &x, &attrs, out, NULL);
}

vz_status vz_sum(const vz_tensor *x, int axis, bool keepdim, vz_tensor **out) {
  return reduce(VZ_OP_SUM, x, axis, keepdim, out);
}
vz_status vz_mean(const vz_tensor *x, int axis, bool keepdim, vz_tensor **out) {
  return reduce(VZ_OP_MEAN, x, axis, keepdim, out);
}
vz_status vz_max(const vz_tensor *x, int axis, bool keepdim, vz_tensor **out) {
  return reduce(VZ_OP_MAX, x, axis, keepdim, out);
}

vz_status vz_softmax(const vz_tensor *x, const vz_tensor *mask, float scale, bool causal,
                     vz_tensor **out) {
  vz_op_attrs attrs = {.softmax = {scale, causal}};
  const vz_tensor *in[] = {x, mask};
  return vz_run_op(VZ_OP_SOFTMAX, mask ? 2 : 1, in, &attrs, out, NULL);
}

vz_status vz_argmax(const vz_tensor *x, int axis, vz_tensor **out) {
  vz_op_attrs attrs = {.axis = {axis}};
  return vz_run_op(VZ_OP_ARGMAX, 1, &x, &attrs, out, NULL);
}

vz_status vz_topk(const vz_tensor *x, int k, vz_tensor **values, vz_tensor **indices) {
  vz_op_attrs attrs = {.topk = {k}};
  return vz_run_op(VZ_OP_TOPK, 1, &x, &attrs, values, indices);
}

vz_status vz_cumsum(const vz_tensor *x, int axis, vz_tensor **out) {
  vz_op_attrs attrs = {.axis = {axis}};
  return vz_run_op(VZ_OP_CUMSUM, 1, &x, &attrs, out, NULL);
}

/* Ops that pick, join or convert elements: embedding, index_select, gather,
 * concat, copy, cast. */
#include "ops/internal.h"

static bool index_dtype(vz_dtype d) { return d == VZ_I32 || d == VZ_I64; }

vz_status vz_infer_embedding(const vz_op_call *call, vz_tensor_desc *outs) {
  const vz_tensor *table = call->inputs[0], *ids = call->inputs[1];
  if (!table || !ids)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "table and ids are required");
  if (table->dtype != VZ_F32 && table->dtype != VZ_F16 && table->dtype != VZ_BF16)
    return vz_fail(VZ_ERR_DTYPE, "table must be f32, f16 or bf16, not %s",
                   vz_dtype_name(table->dtype));
  if (table->ndim != 2)
    return vz_fail(VZ_ERR_SHAPE, "table must be 2-D [vocab, dim], not %d-D", table->ndim);
  if (!index_dtype(ids->dtype))
    return vz_fail(VZ_ERR_DTYPE, "ids must be i32 or i64, not %s", vz_dtype_name(ids->dtype));
  if (ids->ndim >= VZ_MAX_DIMS)
    return vz_fail(VZ_ERR_SHAPE, "ids may have at most %d dimensions", VZ_MAX_DIMS - 1);
  outs[0].dtype = VZ_F32;
  outs[0].ndim = ids->ndim + 1;
  for (int i = 0; i < ids->ndim; i++)
    outs[0].shape[i] = ids->shape[i];
  outs[0].shape[ids->ndim] = table->shape[1];
  return VZ_OK;
}

vz_status vz_infer_index_select(const vz_op_call *call, vz_tensor_desc *outs) {
  const vz_tensor *x = call->inputs[0], *ids = call->inputs[1];
  if (!x || !ids)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "input and ids are required");
  int ax;
  vz_status st = vz_need_axis(call->attrs.axis.axis, x->ndim, &ax);
  if (st != VZ_OK)
    return st;
  if (!index_dtype(ids->dtype) || ids->ndim != 1)
    return vz_fail(VZ_ERR_DTYPE, "ids must be a 1-D i32 or i64 tensor");
  outs[0].dtype = x->dtype;
  outs[0].ndim = x->ndim;
  for (int i = 0; i < x->ndim; i++)
    outs[0].shape[i] = i == ax ? ids->shape[0] : x->shape[i];
  return VZ_OK;
}

vz_status vz_infer_gather(const vz_op_call *call, vz_tensor_desc *outs) {
  const vz_tensor *x = call->inputs[0], *index = call->inputs[1];
  if (!x || !index)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "input and index are required");
  int ax;
  vz_status st = vz_need_axis(call->attrs.axis.axis, x->ndim, &ax);
  if (st != VZ_OK)
    return st;
  if (!index_dtype(index->dtype))
    return vz_fail(VZ_ERR_DTYPE, "index must be i32 or i64, not %s", vz_dtype_name(index->dtype));
  if (index->ndim != x->ndim)
    return vz_fail(VZ_ERR_SHAPE, "index has %d dimensions, the input %d", index->ndim, x->ndim);
  for (int i = 0; i < x->ndim; i++)
    if (i != ax && index->shape[i] > x->shape[i])
      return vz_fail(VZ_ERR_SHAPE, "index dimension %d (%lld) exceeds the input's (%lld)", i,
                     (long long)index->shape[i], (long long)x->shape[i]);
  vz_desc_like(index, x->dtype, &outs[0]);
  return VZ_OK;
}

vz_status vz_infer_concat(const vz_op_call *call, vz_tensor_desc *outs) {
  const vz_tensor *first = call->inputs[0];
  if (!first)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "input 0 is required");
  int ax;
  vz_status st = vz_need_axis(call->attrs.axis.axis, first->ndim, &ax);
  if (st != VZ_OK)
    return st;
  vz_desc_like(first, first->dtype, &outs[0]);
  outs[0].shape[ax] = 0;
  for (int k = 0; k < call->n_inputs; k++) {
    const vz_tensor *t = call->inputs[k];
    if (!t)
      return vz_fail(VZ_ERR_INVALID_ARGUMENT, "input %d is NULL", k);
    if (t->dtype != first->dtype || t->ndim != first->ndim)
      return vz_fail(VZ_ERR_SHAPE, "input %d is %s with %d dimensions, input 0 %s with %d", k,
                     vz_dtype_name(t->dtype), t->ndim, vz_dtype_name(first->dtype), first->ndim);
    for (int i = 0; i < t->ndim; i++)
      if (i != ax && t->shape[i] != first->shape[i])
        return vz_fail(VZ_ERR_SHAPE, "input %d differs from input 0 in dimension %d (%lld vs %lld)",
                       k, i, (long long)t->shape[i], (long long)first->shape[i]);
    outs[0].shape[ax] += t->shape[ax];
  }
  return VZ_OK;
}

vz_status vz_infer_copy(const vz_op_call *call, vz_tensor_desc *outs) {
  const vz_tensor *x = call->inputs[0];
  if (!x)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "input is required");
  vz_desc_like(x, x->dtype, &outs[0]);
  return VZ_OK;
}

vz_status vz_infer_cast(const vz_op_call *call, vz_tensor_desc *outs) {
  vz_status st = vz_infer_copy(call, outs);
  if (st != VZ_OK)
    return st;
  if ((unsigned)call->attrs.cast.to >= VZ_DTYPE_COUNT)
    return vz_fail(VZ_ERR_DTYPE, "unknown target dtype %d", (int)call->attrs.cast.to);
  outs[0].dtype = call->attrs.cast.to;
  return VZ_OK;
}

vz_status vz_embedding(const vz_tensor *table, const vz_tensor *ids, vz_tensor **out) {
  const vz_tensor *in[] = {table, ids};
  return vz_run_op(VZ_OP_EMBEDDING, 2, in, NULL, out, NULL);
}

vz_status vz_index_select(const vz_tensor *x, int axis, const vz_tensor *ids, vz_tensor **out) {
  vz_op_attrs attrs = {.axis = {axis}};
  const vz_tensor *in[] = {x, ids};
  return vz_run_op(VZ_OP_INDEX_SELECT, 2, in, &attrs, out, NULL);
}

vz_status vz_gather(const vz_tensor *x, int axis, const vz_tensor *index, vz_tensor **out) {
  vz_op_attrs attrs = {.axis = {axis}};
  const vz_tensor *in[] = {x, index};
  return vz_run_op(VZ_OP_GATHER, 2, in, &attrs, out, NULL);
}

vz_status vz_concat(const vz_tensor *const *xs, int n, int axis, vz_tensor **out) {
  if (!xs || n < 1 || n > VZ_OP_MAX_INPUTS)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "concat: 1 to %d inputs, not %d", VZ_OP_MAX_INPUTS, n);
  vz_op_attrs attrs = {.axis = {axis}};
  return vz_run_op(VZ_OP_CONCAT, n, xs, &attrs, out, NULL);
}

vz_status vz_copy(const vz_tensor *x, vz_tensor **out) {
  return vz_run_op(VZ_OP_COPY, 1, &x, NULL, out, NULL);
}

vz_status vz_cast(const vz_tensor *x, vz_dtype to, vz_tensor **out) {
  vz_op_attrs attrs = {.cast = {to}};
  return vz_run_op(VZ_OP_CAST, 1, &x, &attrs, out, NULL);
}

/* Reductions and scans along one axis on OpenCL: sum, mean, max, softmax,
 * argmax, top-k, cumsum. Inputs arrive contiguous (the op table asks the
 * dispatcher for that). */
#include "backends/opencl/opencl.h"

static bool f32_contiguous(const vz_tensor *t) {
  return t && t->dtype == VZ_F32 && vz_tensor_is_contiguous(t);
}

static vz_status enqueue_columns(vz_cl_launch *l, int64_t outer, int64_t inner) {
  return vz_cl_enqueue_2d(l, inner, outer);
}

static vz_status enqueue_rows(vz_cl_launch *l, int64_t rows) { return vz_cl_enqueue_1d(l, rows); }

/* Launches a [outer, n, inner] kernel taking (out, x, outer, n, inner). */
static vz_status axis_kernel(vz_cl *cl, vz_cl_kernel_id id, const vz_tensor *x, int axis,
                             vz_tensor *out) {
  int64_t outer, n, inner;
  vz_cl_split_axis(x, axis, &outer, &n, &inner);
  vz_cl_launch l;
  vz_cl_begin(cl, id, &l);
  vz_cl_arg_tensor(&l, out);
  vz_cl_arg_tensor(&l, x);
  vz_cl_arg_long(&l, outer);
  vz_cl_arg_long(&l, n);
  vz_cl_arg_long(&l, inner);
  return enqueue_columns(&l, outer, inner);
}

bool vz_cl_reduce_supports(const vz_cl *cl, const vz_op_call *call) {
  (void)cl;
  return f32_contiguous(call->inputs[0]);
}

vz_status vz_cl_reduce(vz_cl *cl, const vz_op_call *call) {
  vz_cl_kernel_id id = call->op == VZ_OP_SUM    ? VZ_CLK_reduce_sum
                       : call->op == VZ_OP_MEAN ? VZ_CLK_reduce_mean
                                                : VZ_CLK_reduce_max;
  return axis_kernel(cl, id, call->inputs[0], call->attrs.reduce.axis, call->outputs[0]);
}

bool vz_cl_argmax_supports(const vz_cl *cl, const vz_op_call *call) {
  (void)cl;
  return f32_contiguous(call->inputs[0]);
}

vz_status vz_cl_argmax(vz_cl *cl, const vz_op_call *call) {
  return axis_kernel(cl, VZ_CLK_argmax, call->inputs[0], call->attrs.axis.axis, call->outputs[0]);
}

bool vz_cl_cumsum_supports(const vz_cl *cl, const vz_op_call *call) {
  (void)cl;
  const vz_tensor *x = call->inputs[0];
  return x && vz_tensor_is_contiguous(x) &&
         (x->dtype == VZ_F32 || x->dtype == VZ_I32 || x->dtype == VZ_I64);
}

vz_status vz_cl_cumsum(vz_cl *cl, const vz_op_call *call) {
  vz_dtype dt = call->inputs[0]->dtype;
  vz_cl_kernel_id id = dt == VZ_F32   ? VZ_CLK_cumsum_f32
                       : dt == VZ_I32 ? VZ_CLK_cumsum_i32
                                      : VZ_CLK_cumsum_i64;
  return axis_kernel(cl, id, call->inputs[0], call->attrs.axis.axis, call->outputs[0]);
}

/* ---- softmax ---- */

vz_status vz_cl_softmax_rows(vz_cl *cl, const vz_tensor *x, const vz_tensor *const extra[2],
                             float scale, bool causal, vz_tensor *out) {
  /* x's shape right-aligned in 4 dimensions, the extras' strides over it */
  int64_t shape[4] = {1, 1, 1, 1};
  for (int d = 0; d < x->ndim; d++)
    shape[4 - x->ndim + d] = x->shape[d];
  if (x->ndim > 4) /* never: tensors have at most 4 dimensions */
    return vz_fail(VZ_ERR_SHAPE, "softmax: too many dimensions");
  int64_t strides[2][4] = {{0}};
  for (int e = 0; e < 2; e++)
    if (extra[e])
      vz_broadcast_strides(extra[e], 4, shape, strides[e]);
  vz_cl_launch l;
  vz_cl_begin(cl, VZ_CLK_softmax_rows, &l);
  vz_cl_arg_tensor(&l, out);
  vz_cl_arg_tensor(&l, x);
  for (int e = 0; e < 2; e++) {
    vz_cl_arg_tensor(&l, extra[e]);
    vz_cl_arg_long4(&l, strides[e]);
  }
  vz_cl_arg_long4(&l, shape);
  vz_cl_arg_float(&l, scale);
  vz_cl_arg_int(&l, causal);
  return enqueue_rows(&l, shape[0] * shape[1] * shape[2]);
}

bool vz_cl_softmax_supports(const vz_cl *cl, const vz_op_call *call) {
  (void)cl;
  const vz_tensor *mask = call->n_inputs > 1 ? call->inputs[1] : NULL;
  return f32_contiguous(call->inputs[0]) && (!mask || mask->dtype == VZ_F32);
}

vz_status vz_cl_softmax(vz_cl *cl, const vz_op_call *call) {
  const vz_tensor *extra[2] = {call->n_inputs > 1 ? call->inputs[1] : NULL, NULL};
  return vz_cl_softmax_rows(cl, call->inputs[0], extra, call->attrs.softmax.scale,
                            call->attrs.softmax.causal, call->outputs[0]);
}

/* ---- top-k ---- */

bool vz_cl_topk_supports(const vz_cl *cl, const vz_op_call *call) {
  (void)cl;
  return f32_contiguous(call->inputs[0]);
}

vz_status vz_cl_topk(vz_cl *cl, const vz_op_call *call) {
  const vz_tensor *x = call->inputs[0];
  int64_t n = x->shape[x->ndim - 1], rows = vz_tensor_numel(x) / n;
  vz_cl_launch l;
  vz_cl_begin(cl, VZ_CLK_topk_rows, &l);
  vz_cl_arg_tensor(&l, call->outputs[0]);
  vz_cl_arg_tensor(&l, call->outputs[1]);
  vz_cl_arg_tensor(&l, x);
  vz_cl_arg_long(&l, rows);
  vz_cl_arg_long(&l, n);
  vz_cl_arg_long(&l, call->attrs.topk.k);
  return enqueue_rows(&l, rows);
}

/* Normalizations on OpenCL: LayerNorm and RMSNorm over the last axis, L2
 * along any axis. Inputs arrive contiguous. */
#include "backends/opencl/opencl.h"

static const vz_tensor *optional_input(const vz_op_call *call, int i) {
  return call->n_inputs > i ? call->inputs[i] : NULL;
}

bool vz_cl_norm_supports(const vz_cl *cl, const vz_op_call *call) {
  (void)cl;
  for (int i = 0; i < call->n_inputs; i++) {
    const vz_tensor *t = call->inputs[i];
    if ((i == 0 && !t) || (t && (t->dtype != VZ_F32 || !vz_tensor_is_contiguous(t))))
      return false;
  }
  return true;
}

static vz_status enqueue_rows(vz_cl_launch *l, int64_t rows) { return vz_cl_enqueue_1d(l, rows); }

vz_status vz_cl_layer_norm(vz_cl *cl, const vz_op_call *call) {
  const vz_tensor *x = call->inputs[0];
  int64_t cols = x->shape[x->ndim - 1], rows = vz_tensor_numel(x) / cols;
  vz_cl_launch l;
  vz_cl_begin(cl, VZ_CLK_layer_norm_rows, &l);
  vz_cl_arg_tensor(&l, call->outputs[0]);
  vz_cl_arg_tensor(&l, x);
  vz_cl_arg_tensor(&l, optional_input(call, 1));
  vz_cl_arg_tensor(&l, optional_input(call, 2));
  vz_cl_arg_long(&l, rows);
  vz_cl_arg_long(&l, cols);
  vz_cl_arg_float(&l, call->attrs.norm.eps);
  return enqueue_rows(&l, rows);
}

vz_status vz_cl_rms_norm(vz_cl *cl, const vz_op_call *call) {
  const vz_tensor *x = call->inputs[0];
  int64_t cols = x->shape[x->ndim - 1], rows = vz_tensor_numel(x) / cols;
  vz_cl_launch l;
  vz_cl_begin(cl, VZ_CLK_rms_norm_rows, &l);
  vz_cl_arg_tensor(&l, call->outputs[0]);
  vz_cl_arg_tensor(&l, x);
  vz_cl_arg_tensor(&l, optional_input(call, 1));
  vz_cl_arg_long(&l, rows);
  vz_cl_arg_long(&l, cols);
  vz_cl_arg_float(&l, call->attrs.norm.eps);
  return enqueue_rows(&l, rows);
}

vz_status vz_cl_l2_normalize(vz_cl *cl, const vz_op_call *call) {
  const vz_tensor *x = call->inputs[0];
  int64_t outer, n, inner;
  vz_cl_split_axis(x, call->attrs.l2.axis, &outer, &n, &inner);
  vz_cl_launch l;
  vz_cl_begin(cl, VZ_CLK_l2_normalize, &l);
  vz_cl_arg_tensor(&l, call->outputs[0]);
  vz_cl_arg_tensor(&l, x);
  vz_cl_arg_long(&l, outer);
  vz_cl_arg_long(&l, n);
  vz_cl_arg_long(&l, inner);
  vz_cl_arg_float(&l, call->attrs.l2.eps);
  return vz_cl_enqueue_2d(&l, inner, outer);
}

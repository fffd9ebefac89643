/* Position encodings on OpenCL: RoPE, ALiBi and T5's relative bias; each
 * computes its angles, slopes or buckets on the device, so nothing is
 * uploaded per call. */
#include <math.h>

#include "backends/opencl/opencl.h"

bool vz_cl_position_supports(const vz_cl *cl, const vz_op_call *call) {
  (void)cl;
  const vz_tensor *a = call->inputs[0];
  if (!a)
    return false;
  switch (call->op) {
  case VZ_OP_ROPE:
    return a->dtype == VZ_F32 && call->inputs[1] &&
           (call->inputs[1]->dtype == VZ_I32 || call->inputs[1]->dtype == VZ_I64);
  case VZ_OP_ALIBI: return a->dtype == VZ_F32 || a->dtype == VZ_I32 || a->dtype == VZ_I64;
  case VZ_OP_T5_BIAS: return a->dtype == VZ_F32;
  default: return false;
  }
}

static vz_status enqueue_2d(vz_cl_launch *l, int64_t inner, int64_t rows) {
  return vz_cl_enqueue_2d(l, inner, rows);
}

vz_status vz_cl_rope(vz_cl *cl, const vz_op_call *call) {
  const vz_tensor *x = call->inputs[0], *pos = call->inputs[1];
  const int64_t S = x->shape[x->ndim - 2], D = x->shape[x->ndim - 1];
  const int64_t rows = vz_tensor_numel(x) / D;
  vz_cl_launch l;
  vz_cl_begin(cl, VZ_CLK_rope, &l);
  vz_cl_arg_tensor(&l, call->outputs[0]);
  vz_cl_arg_tensor(&l, x);
  vz_cl_arg_tensor(&l, pos);
  vz_cl_arg_int(&l, pos->dtype == VZ_I64);
  vz_cl_arg_long(&l, rows);
  vz_cl_arg_long(&l, S);
  vz_cl_arg_long(&l, D);
  vz_cl_arg_int(&l, call->attrs.rope.rotary_dim);
  vz_cl_arg_float(&l, call->attrs.rope.theta);
  return enqueue_2d(&l, D, rows);
}

vz_status vz_cl_alibi(vz_cl *cl, const vz_op_call *call) {
  const vz_tensor *pos = call->inputs[0];
  const int heads = call->attrs.alibi.num_heads;
  const int64_t B = pos->shape[0], K = pos->shape[1];
  vz_cl_launch l;
  vz_cl_begin(cl, VZ_CLK_alibi, &l);
  vz_cl_arg_tensor(&l, call->outputs[0]);
  vz_cl_arg_tensor(&l, pos);
  vz_cl_arg_int(&l, (int32_t)pos->dtype);
  vz_cl_arg_long(&l, B);
  vz_cl_arg_int(&l, heads);
  vz_cl_arg_long(&l, K);
  return enqueue_2d(&l, K, B * heads);
}

vz_status vz_cl_t5_bias(vz_cl *cl, const vz_op_call *call) {
  const vz_tensor *table = call->inputs[0];
  const int64_t H = table->shape[1];
  const int64_t Q = call->attrs.t5_bias.query_length, K = call->attrs.t5_bias.key_length;
  const bool bidirectional = call->attrs.t5_bias.bidirectional;
  const int buckets = call->attrs.t5_bias.num_buckets;
  /* log(max_distance / max_exact), as ops/op_position.c computes it */
  const int half = bidirectional ? buckets / 2 : buckets, max_exact = half / 2;
  const float span = (float)log((double)call->attrs.t5_bias.max_distance /
                                (double)(max_exact > 0 ? max_exact : 1));
  vz_cl_launch l;
  vz_cl_begin(cl, VZ_CLK_t5_bias, &l);
  vz_cl_arg_tensor(&l, call->outputs[0]);
  vz_cl_arg_tensor(&l, table);
  vz_cl_arg_long(&l, H);
  vz_cl_arg_long(&l, Q);
  vz_cl_arg_long(&l, K);
  vz_cl_arg_long(&l, call->attrs.t5_bias.query_offset);
  vz_cl_arg_int(&l, bidirectional);
  vz_cl_arg_int(&l, buckets);
  vz_cl_arg_float(&l, span);
  return enqueue_2d(&l, K, H * Q);
}

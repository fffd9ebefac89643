/* Element-wise ops on OpenCL: arithmetic with broadcasting (inputs with any
 * strides), the activations and where. */
#include "backends/opencl/opencl.h"

static vz_status enqueue_layout(vz_cl_launch *l, const vz_cl_layout *lay) {
  return vz_cl_enqueue_layout(l, lay);
}

/* ---- Binary arithmetic ---- */

bool vz_cl_binary_supports(const vz_cl *cl, const vz_op_call *call) {
  (void)cl;
  const vz_tensor *a = call->inputs[0], *b = call->inputs[1];
  if (!a || !b || a->dtype != b->dtype)
    return false;
  return a->dtype == VZ_F32 || a->dtype == VZ_I32 || a->dtype == VZ_I64;
}

vz_status vz_cl_binary(vz_cl *cl, const vz_op_call *call) {
  static const vz_cl_kernel_id kernels[3][4] = {
      {VZ_CLK_add_f32, VZ_CLK_sub_f32, VZ_CLK_mul_f32, VZ_CLK_div_f32},
      {VZ_CLK_add_i32, VZ_CLK_sub_i32, VZ_CLK_mul_i32, VZ_CLK_div_i32},
      {VZ_CLK_add_i64, VZ_CLK_sub_i64, VZ_CLK_mul_i64, VZ_CLK_div_i64},
  };
  const vz_tensor *a = call->inputs[0], *b = call->inputs[1];
  vz_tensor *out = call->outputs[0];
  int type = a->dtype == VZ_F32 ? 0 : a->dtype == VZ_I32 ? 1 : 2;
  int op = call->op == VZ_OP_ADD ? 0 : call->op == VZ_OP_SUB ? 1 : call->op == VZ_OP_MUL ? 2 : 3;
  vz_cl_layout lay;
  const vz_tensor *ops[2] = {a, b};
  vz_cl_make_layout(out->ndim, out->shape, 2, ops, &lay);
  vz_cl_launch l;
  vz_cl_begin(cl, kernels[type][op], &l);
  vz_cl_arg_tensor(&l, out);
  vz_cl_arg_tensor(&l, a);
  vz_cl_arg_tensor(&l, b);
  vz_cl_arg_long4(&l, lay.shape);
  vz_cl_arg_long4(&l, lay.stride[0]);
  vz_cl_arg_long4(&l, lay.stride[1]);
  if (type != 0 && op == 3)
    vz_cl_arg_status(&l); /* integer division reports a zero divisor */
  else
    vz_cl_arg_mem(&l, NULL);
  return enqueue_layout(&l, &lay);
}

/* ---- Activations and scale ---- */

bool vz_cl_unary_supports(const vz_cl *cl, const vz_op_call *call) {
  (void)cl;
  const vz_tensor *x = call->inputs[0];
  return x && x->dtype == VZ_F32 && vz_tensor_is_contiguous(x);
}

vz_status vz_cl_unary(vz_cl *cl, const vz_op_call *call) {
  vz_cl_kernel_id id;
  switch (call->op) {
  case VZ_OP_SCALE: id = VZ_CLK_scale_f32; break;
  case VZ_OP_GELU_ERF: id = VZ_CLK_gelu_erf_f32; break;
  case VZ_OP_GELU_TANH: id = VZ_CLK_gelu_tanh_f32; break;
  case VZ_OP_QUICK_GELU: id = VZ_CLK_quick_gelu_f32; break;
  case VZ_OP_SILU: id = VZ_CLK_silu_f32; break;
  case VZ_OP_RELU: id = VZ_CLK_relu_f32; break;
  default: id = VZ_CLK_sigmoid_f32; break;
  }
  int64_t n = vz_tensor_numel(call->outputs[0]);
  vz_cl_launch l;
  vz_cl_begin(cl, id, &l);
  vz_cl_arg_tensor(&l, call->outputs[0]);
  vz_cl_arg_tensor(&l, call->inputs[0]);
  vz_cl_arg_long(&l, n);
  vz_cl_arg_float(&l, call->op == VZ_OP_SCALE ? call->attrs.scale.factor : 0.0f);
  return vz_cl_enqueue_1d(&l, n);
}

/* ---- where ---- */

bool vz_cl_where_supports(const vz_cl *cl, const vz_op_call *call) {
  (void)cl;
  const vz_tensor *c = call->inputs[0], *a = call->inputs[1], *b = call->inputs[2];
  if (!c || !a || !b || (c->dtype != VZ_BOOL && c->dtype != VZ_U8) || a->dtype != b->dtype)
    return false;
  size_t es = vz_dtype_size(a->dtype);
  return es == 1 || es == 2 || es == 4 || es == 8;
}

vz_status vz_cl_where(vz_cl *cl, const vz_op_call *call) {
  vz_tensor *out = call->outputs[0];
  const vz_tensor *ops[3] = {call->inputs[0], call->inputs[1], call->inputs[2]};
  vz_cl_layout lay;
  vz_cl_make_layout(out->ndim, out->shape, 3, ops, &lay);
  size_t es = vz_dtype_size(out->dtype);
  vz_cl_kernel_id id = es == 1   ? VZ_CLK_where_1
                       : es == 2 ? VZ_CLK_where_2
                       : es == 4 ? VZ_CLK_where_4
                                 : VZ_CLK_where_8;
  vz_cl_launch l;
  vz_cl_begin(cl, id, &l);
  vz_cl_arg_tensor(&l, out);
  for (int k = 0; k < 3; k++)
    vz_cl_arg_tensor(&l, ops[k]);
  vz_cl_arg_long4(&l, lay.shape);
  for (int k = 0; k < 3; k++)
    vz_cl_arg_long4(&l, lay.stride[k]);
  return enqueue_layout(&l, &lay);
}

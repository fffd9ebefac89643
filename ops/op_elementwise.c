/* Element-wise ops: arithmetic with broadcasting, activations, where. */
#include "ops/internal.h"

static bool arithmetic_dtype(vz_dtype d) { return d == VZ_F32 || d == VZ_I32 || d == VZ_I64; }

vz_status vz_infer_binary(const vz_op_call *call, vz_tensor_desc *outs) {
  const vz_tensor *a = call->inputs[0], *b = call->inputs[1];
  if (!a || !b)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "both operands are required");
  if (a->dtype != b->dtype || !arithmetic_dtype(a->dtype))
    return vz_fail(VZ_ERR_DTYPE, "operands must share one dtype of f32, i32, i64 (have %s and %s)",
                   vz_dtype_name(a->dtype), vz_dtype_name(b->dtype));
  outs[0].dtype = a->dtype;
  return vz_broadcast_shapes(a->ndim, a->shape, b->ndim, b->shape, &outs[0].ndim, outs[0].shape);
}

vz_status vz_infer_unary(const vz_op_call *call, vz_tensor_desc *outs) {
  const vz_tensor *x = call->inputs[0];
  vz_status st = vz_need_f32(x, "input");
  if (st == VZ_OK)
    vz_desc_like(x, VZ_F32, &outs[0]);
  return st;
}

vz_status vz_infer_where(const vz_op_call *call, vz_tensor_desc *outs) {
  const vz_tensor *c = call->inputs[0], *a = call->inputs[1], *b = call->inputs[2];
  if (!c || !a || !b)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "condition and both values are required");
  if (c->dtype != VZ_BOOL && c->dtype != VZ_U8)
    return vz_fail(VZ_ERR_DTYPE, "condition must be bool or u8, not %s", vz_dtype_name(c->dtype));
  if (a->dtype != b->dtype)
    return vz_fail(VZ_ERR_DTYPE, "values must share one dtype (have %s and %s)",
                   vz_dtype_name(a->dtype), vz_dtype_name(b->dtype));
  int n;
  int64_t ab[VZ_MAX_DIMS];
  vz_status st = vz_broadcast_shapes(a->ndim, a->shape, b->ndim, b->shape, &n, ab);
  if (st != VZ_OK)
    return st;
  outs[0].dtype = a->dtype;
  return vz_broadcast_shapes(c->ndim, c->shape, n, ab, &outs[0].ndim, outs[0].shape);
}

static vz_status binary(vz_op_kind op, const vz_tensor *a, const vz_tensor *b, vz_tensor **out) {
  const vz_tensor *in[] = {a, b};
  return vz_run_op(op, 2, in, NULL, out, NULL);
}

static vz_status unary(vz_op_kind op, const vz_tensor *x, vz_tensor **out) {
  return vz_run_op(op, 1, &x, NULL, out, NULL);
}

vz_status vz_add(const vz_tensor *a, const vz_tensor *b, vz_tensor **out) {
  return binary(VZ_OP_ADD, a, b, out);
}
vz_status vz_sub(const vz_tensor *a, const vz_tensor *b, vz_tensor **out) {
  return binary(VZ_OP_SUB, a, b, out);
}
vz_status vz_mul(const vz_tensor *a, const vz_tensor *b, vz_tensor **out) {
  return binary(VZ_OP_MUL, a, b, out);
}
vz_status vz_div(const vz_tensor *a, const vz_tensor *b, vz_tensor **out) {
  return binary(VZ_OP_DIV, a, b, out);
}

vz_status vz_scale(const vz_tensor *x, float factor, vz_tensor **out) {
  vz_op_attrs attrs = {.scale = {factor}};
  return vz_run_op(VZ_OP_SCALE, 1, &x, &attrs, out, NULL);
}

vz_status vz_gelu_erf(const vz_tensor *x, vz_tensor **out) { return unary(VZ_OP_GELU_ERF, x, out); }
vz_status vz_gelu_tanh(const vz_tensor *x, vz_tensor **out) {
  return unary(VZ_OP_GELU_TANH, x, out);
}
vz_status vz_quick_gelu(const vz_tensor *x, vz_tensor **out) {
  return unary(VZ_OP_QUICK_GELU, x, out);
}
vz_status vz_silu(const vz_tensor *x, vz_tensor **out) { return unary(VZ_OP_SILU, x, out); }
vz_status vz_relu(const vz_tensor *x, vz_tensor **out) { return unary(VZ_OP_RELU, x, out); }
vz_status vz_sigmoid(const vz_tensor *x, vz_tensor **out) { return unary(VZ_OP_SIGMOID, x, out); }

vz_status vz_where(const vz_tensor *cond, const vz_tensor *a, const vz_tensor *b, vz_tensor **out) {
  const vz_tensor *in[] = {cond, a, b};
  return vz_run_op(VZ_OP_WHERE, 3, in, NULL, out, NULL);
}

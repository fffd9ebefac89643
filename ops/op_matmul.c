/* matmul: the definition of the one op that dominates every model. */
#include "ops/internal.h"

static bool matmul_dtype(vz_dtype d) { return d == VZ_F32 || d == VZ_F16 || d == VZ_BF16; }

vz_status vz_infer_matmul(const vz_op_call *call, vz_tensor_desc *outs) {
  const vz_tensor *a = call->inputs[0], *b = call->inputs[1];
  if (!a || !b)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "both operands are required");
  if (!matmul_dtype(a->dtype) || !matmul_dtype(b->dtype))
    return vz_fail(VZ_ERR_DTYPE, "operands are f32, f16 or bf16, not %s and %s",
                   vz_dtype_name(a->dtype), vz_dtype_name(b->dtype));
  if (a->ndim < 2 || b->ndim < 2)
    return vz_fail(VZ_ERR_SHAPE, "operands need at least 2 dimensions (have %d and %d)", a->ndim,
                   b->ndim);
  bool ta = call->attrs.matmul.trans_a, tb = call->attrs.matmul.trans_b;
  int64_t m = a->shape[a->ndim - (ta ? 1 : 2)], ka = a->shape[a->ndim - (ta ? 2 : 1)];
  int64_t kb = b->shape[b->ndim - (tb ? 1 : 2)], n = b->shape[b->ndim - (tb ? 2 : 1)];
  if (ka != kb) {
    char sa[96], sb[96];
    return vz_fail(VZ_ERR_SHAPE, "inner sizes differ: %s%s has K=%lld, %s%s has K=%lld",
                   vz_shape_text(a->ndim, a->shape, sa, sizeof sa), ta ? " (transposed)" : "",
                   (long long)ka, vz_shape_text(b->ndim, b->shape, sb, sizeof sb),
                   tb ? " (transposed)" : "", (long long)kb);
  }
  int nbatch;
  int64_t batch[VZ_MAX_DIMS];
  vz_status st = vz_broadcast_shapes(a->ndim - 2, a->shape, b->ndim - 2, b->shape, &nbatch, batch);
  if (st != VZ_OK)
    return vz_fail_context(st, "batch dimensions: ");
  outs[0].dtype = VZ_F32;
  outs[0].ndim = nbatch + 2;
  for (int i = 0; i < nbatch; i++)
    outs[0].shape[i] = batch[i];
  outs[0].shape[nbatch] = m;
  outs[0].shape[nbatch + 1] = n;
  return VZ_OK;
}

vz_status vz_matmul(const vz_tensor *a, const vz_tensor *b, bool trans_a, bool trans_b,
                    vz_tensor **out) {
  vz_op_attrs attrs = {.matmul = {trans_a, trans_b}};
  const vz_tensor *in[] = {a, b};
  return vz_run_op(VZ_OP_MATMUL, 2, in, &attrs, out, NULL);
}

/* linear: x [..., K] and w [N, K] as matmul's operands, bias [N], residual
 * of the result's shape, an activation among the element-wise ones. */
vz_status vz_infer_linear(const vz_op_call *call, vz_tensor_desc *outs) {
  const vz_tensor *x = call->inputs[0], *w = call->inputs[1];
  const vz_tensor *bias = call->n_inputs > 2 ? call->inputs[2] : NULL;
  const vz_tensor *res = call->n_inputs > 3 ? call->inputs[3] : NULL;
  if (!x || !w)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "x and w are required");
  if (!matmul_dtype(x->dtype) || !matmul_dtype(w->dtype))
    return vz_fail(VZ_ERR_DTYPE, "x and w are f32, f16 or bf16, not %s and %s",
                   vz_dtype_name(x->dtype), vz_dtype_name(w->dtype));
  char sx[96], sw[96];
  if (x->ndim < 1 || w->ndim != 2 || x->shape[x->ndim - 1] != w->shape[1])
    return vz_fail(VZ_ERR_SHAPE, "x %s and w %s are not [..., K] and [N, K]",
                   vz_shape_text(x->ndim, x->shape, sx, sizeof sx),
                   vz_shape_text(w->ndim, w->shape, sw, sizeof sw));
  const int64_t n = w->shape[0];
  if (bias && (bias->dtype != VZ_F32 || bias->ndim != 1 || bias->shape[0] != n))
    return vz_fail(VZ_ERR_SHAPE, "bias must be f32 [%lld], not %s %s", (long long)n,
                   vz_dtype_name(bias->dtype),
                   vz_shape_text(bias->ndim, bias->shape, sx, sizeof sx));
  vz_op_kind act = call->attrs.linear.activation;
  if (act != VZ_OP_COUNT && act != VZ_OP_GELU_ERF && act != VZ_OP_GELU_TANH &&
      act != VZ_OP_QUICK_GELU && act != VZ_OP_SILU && act != VZ_OP_RELU && act != VZ_OP_SIGMOID)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "activation %s is not an activation op",
                   vz_op_name(act));
  outs[0].dtype = VZ_F32;
  outs[0].ndim = x->ndim;
  for (int i = 0; i < x->ndim - 1; i++)
    outs[0].shape[i] = x->shape[i];
  outs[0].shape[x->ndim - 1] = n;
  if (res) {
    bool same = res->dtype == VZ_F32 && res->ndim == outs[0].ndim;
    for (int i = 0; same && i < res->ndim; i++)
      same = res->shape[i] == outs[0].shape[i];
    if (!same)
      return vz_fail(VZ_ERR_SHAPE, "residual must be f32 %s, not %s %s",
                     vz_shape_text(outs[0].ndim, outs[0].shape, sw, sizeof sw),
                     vz_dtype_name(res->dtype),
                     vz_shape_text(res->ndim, res->shape, sx, sizeof sx));
  }
  return VZ_OK;
}

vz_status vz_fused_linear(const vz_tensor *x, const vz_tensor *w, const vz_tensor *bias,
                          vz_op_kind activation, const vz_tensor *residual, vz_tensor **out) {
  vz_op_attrs attrs = {.linear = {activation}};
  const vz_tensor *in[] = {x, w, bias, residual};
  return vz_run_op(VZ_OP_LINEAR, 4, in, &attrs, out, NULL);
}

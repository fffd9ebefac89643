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

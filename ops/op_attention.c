/* Scaled dot-product attention with optional bias, mask and causality. */
#include "ops/internal.h"

static vz_status need_4d_f32(const vz_tensor *t, const char *what) {
  vz_status st = vz_need_f32(t, what);
  if (st == VZ_OK && t->ndim != 4)
    st = vz_fail(VZ_ERR_SHAPE, "%s must be 4-D [B, H, S, D], not %d-D", what, t->ndim);
  return st;
}

vz_status vz_infer_attention(const vz_op_call *call, vz_tensor_desc *outs) {
  const vz_tensor *q = call->inputs[0], *k = call->inputs[1], *v = call->inputs[2];
  if (!q || !k || !v)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "q, k and v are required");
  vz_status st;
  if ((st = need_4d_f32(q, "q")) || (st = need_4d_f32(k, "k")) || (st = need_4d_f32(v, "v")))
    return st;
  char a[96], b[96];
  if (k->shape[0] != q->shape[0] || v->shape[0] != q->shape[0] || k->shape[1] != v->shape[1] ||
      k->shape[2] != v->shape[2] || k->shape[3] != q->shape[3])
    return vz_fail(VZ_ERR_SHAPE, "k %s and v %s do not fit q %s",
                   vz_shape_text(4, k->shape, a, sizeof a), vz_shape_text(4, v->shape, b, sizeof b),
                   vz_shape_text(4, q->shape, (char[96]){0}, 96));
  if (k->shape[1] < 1 || q->shape[1] % k->shape[1] != 0)
    return vz_fail(VZ_ERR_SHAPE, "q has %lld heads, not a multiple of k's %lld",
                   (long long)q->shape[1], (long long)k->shape[1]);
  int64_t scores[4] = {q->shape[0], q->shape[1], q->shape[2], k->shape[2]};
  for (int i = 3; i < call->n_inputs; i++) {
    const vz_tensor *extra = call->inputs[i];
    if (!extra)
      continue;
    const char *what = i == 3 ? "bias" : "mask";
    if (extra->dtype != VZ_F32)
      return vz_fail(VZ_ERR_DTYPE, "%s must be f32, not %s", what, vz_dtype_name(extra->dtype));
    if (!vz_broadcasts_to(extra->ndim, extra->shape, 4, scores))
      return vz_fail(VZ_ERR_SHAPE, "%s %s does not broadcast to the scores %s", what,
                     vz_shape_text(extra->ndim, extra->shape, a, sizeof a),
                     vz_shape_text(4, scores, b, sizeof b));
  }
  outs[0].dtype = VZ_F32;
  outs[0].ndim = 4;
  outs[0].shape[0] = q->shape[0];
  outs[0].shape[1] = q->shape[1];
  outs[0].shape[2] = q->shape[2];
  outs[0].shape[3] = v->shape[3];
  return VZ_OK;
}

vz_status vz_attention(const vz_tensor *q, const vz_tensor *k, const vz_tensor *v,
                       const vz_tensor *bias, const vz_tensor *mask, float scale, bool causal,
                       vz_tensor **out) {
  vz_op_attrs attrs = {.attention = {scale, causal}};
  const vz_tensor *in[] = {q, k, v, bias, mask};
  return vz_run_op(VZ_OP_ATTENTION, 5, in, &attrs, out, NULL);
}

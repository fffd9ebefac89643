/* Scaled dot-product attention on OpenCL, as three queued steps over a
 * device scratch buffer of scores [B, H, Sq, Sk]: a batched GEMM q k^T
 * (both K-contiguous: the dot-product kernel), the row softmax with scale,
 * bias, mask and causality, and a batched GEMM of the probabilities times
 * v. Grouped heads (H a multiple of k's heads) index k and v by h / group.
 * The batch (for huge sequences, the heads) is split into chunks when the
 * scores would exceed the device's largest buffer. */
#include "backends/opencl/opencl.h"

bool vz_cl_attention_supports(const vz_cl *cl, const vz_op_call *call) {
  (void)cl;
  for (int i = 0; i < call->n_inputs; i++) {
    const vz_tensor *t = call->inputs[i];
    if ((i < 3 && !t) || (t && t->dtype != VZ_F32) || (t && i < 3 && !vz_tensor_is_contiguous(t)))
      return false;
  }
  return true;
}

/* One chunk: heads [h0, h0 + nh) of batch entries [b, b + nb), with either
 * every head (nh = H) or one entry (nb = 1), so that the chunk's outputs are
 * contiguous; h0 and nh are multiples of the group, so that key head
 * h / group stays h0 / group + j / group. */
static vz_status attend(vz_cl *cl, const vz_op_call *call, vz_tensor *scores, int64_t b, int64_t nb,
                        int64_t h0, int64_t nh) {
  const vz_tensor *q = call->inputs[0], *k = call->inputs[1], *v = call->inputs[2];
  const vz_tensor *bias = call->n_inputs > 3 ? call->inputs[3] : NULL;
  const vz_tensor *mask = call->n_inputs > 4 ? call->inputs[4] : NULL;
  vz_tensor *out = call->outputs[0];
  const int64_t H = q->shape[1], Sq = q->shape[2], D = q->shape[3];
  const int64_t Hk = k->shape[1], Sk = k->shape[2], Dv = v->shape[3], group = H / Hk;
  /* scores[i, j] = q[b + i, h0 + j] k[b + i, (h0 + j) / group]^T */
  vz_cl_gemm g = {
      .a = vz_cl_mem_of(q),
      .b = vz_cl_mem_of(k),
      .c = vz_cl_mem_of(scores),
      .a_off = q->offset + (b * H + h0) * Sq * D,
      .b_off = k->offset + (b * Hk + h0 / group) * Sk * D,
      .c_off = 0,
      .m = Sq,
      .n = Sk,
      .k = D,
      .a_rs = D,
      .a_cs = 1,
      .b_rs = 1,
      .b_cs = D,
      .batch0 = nb,
      .batch1 = nh,
      .b1_div = group,
      .bstride = {H * Sq * D, Sq * D, Hk * Sk * D, Sk * D},
  };
  vz_status st = vz_cl_gemm_run(cl, &g);
  /* the extras as views of this chunk's heads, broadcasting as before */
  vz_tensor *extra[2] = {NULL, NULL};
  const vz_tensor *given[2] = {bias, mask};
  int64_t shape[4] = {nb, nh, Sq, Sk}, full[4] = {q->shape[0], H, Sq, Sk};
  for (int e = 0; e < 2 && st == VZ_OK; e++) {
    if (!given[e])
      continue;
    int64_t stride[4];
    vz_broadcast_strides(given[e], 4, full, stride);
    int64_t offset = given[e]->offset + b * stride[0] + h0 * stride[1];
    st = vz_tensor_view(given[e], 4, shape, stride, offset, &extra[e]);
  }
  if (st == VZ_OK)
    st = vz_cl_softmax_rows(cl, scores, (const vz_tensor *const *)extra,
                            call->attrs.attention.scale, call->attrs.attention.causal, scores);
  vz_tensor_free(extra[0]);
  vz_tensor_free(extra[1]);
  /* out[b + i, h0 + j] = p[i, j] v[b + i, (h0 + j) / group] */
  vz_cl_gemm pv = {
      .a = vz_cl_mem_of(scores),
      .b = vz_cl_mem_of(v),
      .c = vz_cl_mem_of(out),
      .a_off = 0,
      .b_off = v->offset + (b * Hk + h0 / group) * Sk * Dv,
      .c_off = out->offset + (b * H + h0) * Sq * Dv,
      .m = Sq,
      .n = Dv,
      .k = Sk,
      .a_rs = Sk,
      .a_cs = 1,
      .b_rs = Dv,
      .b_cs = 1,
      .batch0 = nb,
      .batch1 = nh,
      .b1_div = group,
      .bstride = {nh * Sq * Sk, Sq * Sk, Hk * Sk * Dv, Sk * Dv},
  };
  if (st == VZ_OK)
    st = vz_cl_gemm_run(cl, &pv);
  return st;
}

vz_status vz_cl_attention(vz_cl *cl, const vz_op_call *call) {
  const vz_tensor *q = call->inputs[0], *k = call->inputs[1];
  vz_tensor *out = call->outputs[0];
  const int64_t B = q->shape[0], H = q->shape[1], Sq = q->shape[2];
  const int64_t Sk = k->shape[2], group = H / k->shape[1];
  if (Sk == 0) { /* no keys: every row sees nothing, the output is zeros */
    cl_float zero = 0.0f;
    cl_int err = clEnqueueFillBuffer(cl->queue, vz_cl_mem_of(out), &zero, sizeof zero,
                                     (size_t)out->offset * sizeof(float), vz_tensor_nbytes(out), 0,
                                     NULL, NULL);
    return err == CL_SUCCESS ? VZ_OK : vz_cl_fail(err, "clEnqueueFillBuffer (attention)");
  }
  /* The scores of as many batch entries as fit the device's largest
   * buffer (usually all: one chunk), else of as many head groups of one. */
  const uint64_t per_head = (uint64_t)Sq * (uint64_t)Sk * sizeof(float);
  const int64_t fit = (int64_t)(cl->max_alloc / (per_head ? per_head : 1));
  int64_t entries = fit / H, heads = H;
  if (entries < 1) {
    entries = 1;
    heads = fit / group * group;
  }
  if (heads < 1)
    return vz_fail(VZ_ERR_OUT_OF_MEMORY,
                   "attention: the scores of one head group (%llu bytes) exceed the device's "
                   "largest allocation",
                   (unsigned long long)(per_head * (uint64_t)group));
  entries = entries < B ? entries : B;
  vz_tensor *scores = NULL;
  vz_status st = vz_cl_scratch_tensor(cl, VZ_F32, 4, (int64_t[]){entries, heads, Sq, Sk}, &scores);
  for (int64_t b = 0; b < B && st == VZ_OK; b += entries)
    for (int64_t h0 = 0; h0 < H && st == VZ_OK; h0 += heads)
      st = attend(cl, call, scores, b, B - b < entries ? B - b : entries, h0,
                  H - h0 < heads ? H - h0 : heads);
  vz_cl_scratch_tensor_free(scores);
  return st;
}

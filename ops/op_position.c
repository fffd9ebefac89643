/* Position encodings: rotary (RoPE), ALiBi and T5's relative bias. */
#include <math.h>

#include "ops/internal.h"

void vz_alibi_slopes(int num_heads, float *slopes) {
  /* BLOOM: a geometric series over the largest power of two <= heads, then
   * every other term of the series for twice as many heads. */
  int pow2 = 1;
  while (pow2 * 2 <= num_heads)
    pow2 *= 2;
  double base = pow(2.0, -pow(2.0, -(log2((double)pow2) - 3.0)));
  for (int h = 0; h < pow2 && h < num_heads; h++)
    slopes[h] = (float)pow(base, h + 1);
  double extra_base = pow(2.0, -pow(2.0, -(log2(2.0 * pow2) - 3.0)));
  for (int h = pow2; h < num_heads; h++)
    slopes[h] = (float)pow(extra_base, 2 * (h - pow2) + 1);
}

int vz_t5_bucket(int64_t relative, bool bidirectional, int num_buckets, int max_distance) {
  int bucket = 0;
  int64_t n;
  if (bidirectional) {
    num_buckets /= 2;
    if (relative > 0)
      bucket += num_buckets;
    n = relative < 0 ? -relative : relative;
  } else {
    n = relative < 0 ? -relative : 0;
  }
  int max_exact = num_buckets / 2;
  if (n < max_exact)
    return bucket + (int)n;
  /* The same float32 steps as the reference, so bucket edges agree. */
  float ratio = logf((float)n / (float)max_exact);
  float span = (float)log((double)max_distance / (double)max_exact);
  int64_t large = max_exact + (int64_t)(ratio / span * (float)(num_buckets - max_exact));
  if (large > num_buckets - 1)
    large = num_buckets - 1;
  return bucket + (int)large;
}

vz_status vz_infer_rope(const vz_op_call *call, vz_tensor_desc *outs) {
  const vz_tensor *x = call->inputs[0], *pos = call->inputs[1];
  if (!x || !pos)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "input and positions are required");
  if (x->dtype != VZ_F32)
    return vz_fail(VZ_ERR_DTYPE, "input must be f32, not %s", vz_dtype_name(x->dtype));
  if (x->ndim < 2)
    return vz_fail(VZ_ERR_SHAPE, "input must be [..., S, D]");
  if ((pos->dtype != VZ_I32 && pos->dtype != VZ_I64) || pos->ndim != 1 ||
      pos->shape[0] != x->shape[x->ndim - 2])
    return vz_fail(VZ_ERR_SHAPE, "positions must be i32/i64 of shape [%lld]",
                   (long long)x->shape[x->ndim - 2]);
  int r = call->attrs.rope.rotary_dim;
  if (r < 2 || r % 2 || r > x->shape[x->ndim - 1])
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "rotary_dim %d must be even and in 2..%lld", r,
                   (long long)x->shape[x->ndim - 1]);
  if (!(call->attrs.rope.theta > 0.0f))
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "theta must be positive");
  vz_desc_like(x, VZ_F32, &outs[0]);
  return VZ_OK;
}

vz_status vz_infer_alibi(const vz_op_call *call, vz_tensor_desc *outs) {
  const vz_tensor *pos = call->inputs[0];
  if (!pos)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "key positions are required");
  if (pos->dtype != VZ_F32 && pos->dtype != VZ_I32 && pos->dtype != VZ_I64)
    return vz_fail(VZ_ERR_DTYPE, "key positions must be f32, i32 or i64");
  if (pos->ndim != 2)
    return vz_fail(VZ_ERR_SHAPE, "key positions must be [B, K]");
  int heads = call->attrs.alibi.num_heads;
  if (heads < 1 || heads > 4096)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "num_heads %d is outside 1..4096", heads);
  outs[0].dtype = VZ_F32;
  outs[0].ndim = 4;
  outs[0].shape[0] = pos->shape[0];
  outs[0].shape[1] = heads;
  outs[0].shape[2] = 1;
  outs[0].shape[3] = pos->shape[1];
  return VZ_OK;
}

vz_status vz_infer_t5_bias(const vz_op_call *call, vz_tensor_desc *outs) {
  const vz_tensor *table = call->inputs[0];
  if (!table)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "bias table is required");
  if (table->dtype != VZ_F32 || table->ndim != 2)
    return vz_fail(VZ_ERR_SHAPE, "bias table must be f32 [num_buckets, heads]");
  int buckets = call->attrs.t5_bias.num_buckets;
  if (buckets != table->shape[0] || buckets < 2 || call->attrs.t5_bias.max_distance < buckets / 2)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT,
                   "num_buckets %d must match the table (%lld rows) and max_distance %d be >= %d",
                   buckets, (long long)table->shape[0], call->attrs.t5_bias.max_distance,
                   buckets / 2);
  int64_t q = call->attrs.t5_bias.query_length, k = call->attrs.t5_bias.key_length;
  if (q < 1 || k < 1 || call->attrs.t5_bias.query_offset < 0)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "lengths must be positive and the offset >= 0");
  outs[0].dtype = VZ_F32;
  outs[0].ndim = 4;
  outs[0].shape[0] = 1;
  outs[0].shape[1] = table->shape[1];
  outs[0].shape[2] = q;
  outs[0].shape[3] = k;
  return VZ_OK;
}

vz_status vz_rope(const vz_tensor *x, const vz_tensor *positions, float theta, int rotary_dim,
                  vz_tensor **out) {
  vz_op_attrs attrs = {.rope = {theta, rotary_dim}};
  const vz_tensor *in[] = {x, positions};
  return vz_run_op(VZ_OP_ROPE, 2, in, &attrs, out, NULL);
}

vz_status vz_alibi(const vz_tensor *key_positions, int num_heads, vz_tensor **out) {
  vz_op_attrs attrs = {.alibi = {num_heads}};
  return vz_run_op(VZ_OP_ALIBI, 1, &key_positions, &attrs, out, NULL);
}

vz_status vz_t5_bias(const vz_tensor *table, int64_t query_length, int64_t key_length,
                     int64_t query_offset, bool bidirectional, int num_buckets, int max_distance,
                     vz_tensor **out) {
  vz_op_attrs attrs = {.t5_bias = {query_length, key_length, query_offset, num_buckets,
                                   max_distance, bidirectional}};
  return vz_run_op(VZ_OP_T5_BIAS, 1, &table, &attrs, out, NULL);
}

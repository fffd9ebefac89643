/* CPU kernels for the position encodings: rotary embedding (RoPE, rotate-half
 * pairs as in HF LLaMA), ALiBi biases (BLOOM) and T5's relative position
 * bias. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backends/cpu/cpu.h"

bool vz_cpu_position_supports(const vz_op_call *call) {
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

static inline int64_t read_position(const void *p, vz_dtype dtype, int64_t i) {
  return dtype == VZ_I32 ? (int64_t)((const int32_t *)p)[i] : ((const int64_t *)p)[i];
}

/* ---- RoPE ----
 *
 * As HF computes it in f32: inv_freq_i = 1 / theta^(2i / r), angle =
 * (float)pos * inv_freq_i, and for i < r/2
 *   out[i]       = x[i] * cos - x[i + r/2] * sin
 *   out[i + r/2] = x[i + r/2] * cos + x[i] * sin;
 * entries from r on are copied. The cos/sin table [S, r/2] is built once. */
vz_status vz_cpu_rope(const vz_cpu *cpu, const vz_op_call *call) {
  const vz_tensor *x = call->inputs[0], *positions = call->inputs[1];
  vz_tensor *out = call->outputs[0];
  const int64_t S = x->shape[x->ndim - 2], D = x->shape[x->ndim - 1];
  const int64_t rows = vz_tensor_numel(x) / D; /* D >= r >= 2 */
  const int r = call->attrs.rope.rotary_dim, half = r / 2;
  const float theta = call->attrs.rope.theta;
  if ((uint64_t)S > SIZE_MAX / (2 * sizeof(float)) / (uint64_t)half)
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "rope: a table of %lld x %d angles overflows",
                   (long long)S, half);
  size_t table_bytes = (size_t)S * (size_t)half * 2 * sizeof(float);
  float *table = malloc(table_bytes ? table_bytes : 1);
  float *inv_freq = malloc((size_t)half * sizeof(float));
  if (!table || !inv_freq) {
    free(table);
    free(inv_freq);
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "rope: cannot allocate %zu bytes for the angle table",
                   table_bytes);
  }
  for (int i = 0; i < half; i++)
    inv_freq[i] = 1.0f / powf(theta, (float)(2 * i) / (float)r);
  const void *pos = vz_cpu_data(positions);
#pragma omp parallel for num_threads(vz_cpu_threads_for(cpu, S *half * 16)) schedule(static)
  for (int64_t s = 0; s < S; s++) {
    const float p = (float)read_position(pos, positions->dtype, s);
    float *cs = table + s * half * 2;
    for (int i = 0; i < half; i++) {
      float angle = p * inv_freq[i];
      cs[i] = cosf(angle);
      cs[half + i] = sinf(angle);
    }
  }
  const float *xd = vz_cpu_data(x);
  float *od = vz_cpu_data(out);
#pragma omp parallel for num_threads(vz_cpu_threads_for(cpu, rows *D)) schedule(static)
  for (int64_t row = 0; row < rows; row++) {
    const float *xr = xd + row * D;
    float *o = od + row * D;
    const float *c = table + (row % S) * half * 2, *sn = c + half;
    for (int i = 0; i < half; i++) {
      float a = xr[i], b = xr[i + half];
      o[i] = a * c[i] - b * sn[i];
      o[i + half] = b * c[i] + a * sn[i];
    }
    if (D > r)
      memcpy(o + r, xr + r, (size_t)(D - r) * sizeof *o);
  }
  free(table);
  free(inv_freq);
  return VZ_OK;
}

/* ---- ALiBi: out [B, H, 1, K] = slope_h * key_positions[b, k] ---- */
vz_status vz_cpu_alibi(const vz_cpu *cpu, const vz_op_call *call) {
  const vz_tensor *positions = call->inputs[0];
  vz_tensor *out = call->outputs[0];
  const int heads = call->attrs.alibi.num_heads; /* 1..4096, checked */
  const int64_t B = positions->shape[0], K = positions->shape[1];
  float *slopes = malloc((size_t)heads * sizeof *slopes);
  if (!slopes)
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "alibi: cannot allocate %d slopes", heads);
  vz_alibi_slopes(heads, slopes);
  const void *pd = vz_cpu_data(positions);
  const vz_dtype dtype = positions->dtype;
  float *od = vz_cpu_data(out);
  const int64_t rows = B * heads;
#pragma omp parallel for num_threads(vz_cpu_threads_for(cpu, rows *K)) schedule(static)
  for (int64_t row = 0; row < rows; row++) {
    const int64_t b = row / heads;
    const float slope = slopes[row % heads];
    float *o = od + row * K;
    if (dtype == VZ_F32) {
      const float *p = (const float *)pd + b * K;
      for (int64_t k = 0; k < K; k++)
        o[k] = slope * p[k];
    } else {
      for (int64_t k = 0; k < K; k++)
        o[k] = slope * (float)read_position(pd, dtype, b * K + k);
    }
  }
  free(slopes);
  return VZ_OK;
}

/* ---- T5: out [1, H, Q, K] = table[bucket(k - (offset + q)), h] ---- */
vz_status vz_cpu_t5_bias(const vz_cpu *cpu, const vz_op_call *call) {
  const vz_tensor *table = call->inputs[0];
  vz_tensor *out = call->outputs[0];
  const int64_t H = table->shape[1];
  const int64_t Q = call->attrs.t5_bias.query_length, K = call->attrs.t5_bias.key_length;
  const int64_t offset = call->attrs.t5_bias.query_offset;
  const bool bidirectional = call->attrs.t5_bias.bidirectional;
  const int buckets = call->attrs.t5_bias.num_buckets;
  const int max_distance = call->attrs.t5_bias.max_distance;
  const float *td = vz_cpu_data(table);
  float *od = vz_cpu_data(out);
#pragma omp parallel for num_threads(vz_cpu_threads_for(cpu, Q *K *(H + 16))) schedule(static)
  for (int64_t q = 0; q < Q; q++) {
    for (int64_t k = 0; k < K; k++) {
      int b = vz_t5_bucket(k - (offset + q), bidirectional, buckets, max_distance);
      const float *entry = td + (int64_t)b * H;
      for (int64_t h = 0; h < H; h++)
        od[(h * Q + q) * K + k] = entry[h];
    }
  }
  return VZ_OK;
}

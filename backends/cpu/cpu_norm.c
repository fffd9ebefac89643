/* Normalization kernels: LayerNorm and RMSNorm over the last axis (one row
 * per task, through the vector row kernels) and L2 normalization along any
 * axis. Inputs arrive contiguous. */
#include <math.h>

#include "backends/cpu/cpu.h"

static const vz_tensor *optional_input(const vz_op_call *call, int i) {
  return call->n_inputs > i ? call->inputs[i] : NULL;
}

static bool f32_dense(const vz_tensor *t) {
  return t->dtype == VZ_F32 && vz_tensor_is_contiguous(t);
}

bool vz_cpu_norm_supports(const vz_op_call *call) {
  const vz_tensor *x = call->inputs[0];
  if (!x || !f32_dense(x) || call->outputs[0]->dtype != VZ_F32)
    return false;
  if (call->op == VZ_OP_L2_NORMALIZE)
    return true;
  for (int i = 1; i < call->n_inputs; i++)
    if (call->inputs[i] && !f32_dense(call->inputs[i]))
      return false;
  return true;
}

/* LayerNorm (x, weight, bias) or RMSNorm (x, weight): one row of the last
 * axis per task. */
static vz_status norm_rows(const vz_cpu *cpu, const vz_op_call *call, bool rms) {
  const vz_tensor *xt = call->inputs[0];
  const vz_tensor *wt = optional_input(call, 1), *bt = rms ? NULL : optional_input(call, 2);
  int64_t cols = xt->shape[xt->ndim - 1];
  int64_t rows = vz_tensor_numel(xt) / cols;
  const float *x = vz_cpu_data(xt);
  const float *w = wt ? vz_cpu_data(wt) : NULL;
  const float *b = bt ? vz_cpu_data(bt) : NULL;
  float *out = vz_cpu_data(call->outputs[0]);
  float eps = call->attrs.norm.eps;
  const vz_cpu_simd *simd = cpu->simd;
  int threads = vz_cpu_threads_for(cpu, rows * cols * (rms ? 2 : 3));
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t r = 0; r < rows; r++) {
    if (rms)
      simd->rms_norm_row(x + r * cols, w, eps, cols, out + r * cols);
    else
      simd->layer_norm_row(x + r * cols, w, b, eps, cols, out + r * cols);
  }
  return VZ_OK;
}

vz_status vz_cpu_layer_norm(const vz_cpu *cpu, const vz_op_call *call) {
  return norm_rows(cpu, call, false);
}

vz_status vz_cpu_rms_norm(const vz_cpu *cpu, const vz_op_call *call) {
  return norm_rows(cpu, call, true);
}

/* max(norm, eps) that lets a NaN norm through, as torch's clamp_min does */
static inline float clamp_norm(float norm, float eps) { return norm < eps ? eps : norm; }

/* x / max(||x||_2, eps) along the axis (torch.nn.functional.normalize). */
vz_status vz_cpu_l2_normalize(const vz_cpu *cpu, const vz_op_call *call) {
  const vz_tensor *xt = call->inputs[0];
  int64_t outer, n, inner;
  vz_status st = vz_cpu_split_axis(xt, call->attrs.l2.axis, &outer, &n, &inner);
  if (st != VZ_OK)
    return st;
  const float *x = vz_cpu_data(xt);
  float *out = vz_cpu_data(call->outputs[0]);
  float eps = call->attrs.l2.eps;
  const vz_cpu_simd *simd = cpu->simd;
  int threads = vz_cpu_threads_for(cpu, outer * n * inner * 2);
  if (inner == 1) {
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t o = 0; o < outer; o++) {
      const float *row = x + o * n;
      float d = clamp_norm(sqrtf(simd->dot(row, row, n)), eps);
      simd->binary(VZ_OP_DIV, row, 1, &d, 0, out + o * n, n);
    }
    return VZ_OK;
  }
  /* Each task owns a block of inner positions of one outer index: squared
   * sums down the axis in order, then the division. */
  int64_t tasks = outer * vz_cpu_blocks(inner, VZ_CPU_COLUMN_BLOCK);
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t t = 0; t < tasks; t++) {
    vz_cpu_tile c = vz_cpu_tile_at(t, inner, VZ_CPU_COLUMN_BLOCK);
    const float *src = x + c.row * n * inner + c.col;
    float *dst = out + c.row * n * inner + c.col;
    float d[VZ_CPU_COLUMN_BLOCK];
    for (int64_t j = 0; j < c.len; j++)
      d[j] = 0.0f;
    for (int64_t k = 0; k < n; k++)
      for (int64_t j = 0; j < c.len; j++)
        d[j] += src[k * inner + j] * src[k * inner + j];
    for (int64_t j = 0; j < c.len; j++)
      d[j] = clamp_norm(sqrtf(d[j]), eps);
    for (int64_t k = 0; k < n; k++)
      simd->binary(VZ_OP_DIV, src + k * inner, 1, d, 1, dst + k * inner, c.len);
  }
  return VZ_OK;
}

/* Reductions and scans along one axis: sum, mean, max, softmax, argmax,
 * top-k, cumsum. Inputs arrive contiguous; an axis splits a tensor into
 * [outer, n, inner]. Each output element is reduced by one thread, in one
 * fixed order, so results do not depend on the thread count. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "backends/cpu/cpu.h"

static bool is_f32_input(const vz_op_call *call) {
  const vz_tensor *x = call->inputs[0];
  return x && x->dtype == VZ_F32 && vz_tensor_is_contiguous(x);
}

/* ---- sum, mean, max ---- */

bool vz_cpu_reduce_supports(const vz_op_call *call) {
  return is_f32_input(call) && call->outputs[0]->dtype == VZ_F32;
}

/* max that keeps NaN: a NaN anywhere gives NaN */
static inline float max_nan(float acc, float v) { return (v > acc || isnan(v)) ? v : acc; }

vz_status vz_cpu_reduce(const vz_cpu *cpu, const vz_op_call *call) {
  const vz_tensor *xt = call->inputs[0];
  int64_t outer, n, inner;
  vz_status st = vz_cpu_split_axis(xt, call->attrs.reduce.axis, &outer, &n, &inner);
  if (st != VZ_OK)
    return st;
  const float *x = vz_cpu_data(xt);
  float *out = vz_cpu_data(call->outputs[0]);
  vz_op_kind op = call->op;
  const vz_cpu_simd *simd = cpu->simd;
  int threads = vz_cpu_threads_for(cpu, outer * n * inner);
  if (inner == 1) {
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t o = 0; o < outer; o++) {
      const float *row = x + o * n;
      out[o] = op == VZ_OP_MAX   ? simd->max(row, n)
               : op == VZ_OP_SUM ? simd->sum(row, n)
                                 : simd->sum(row, n) / (float)n;
    }
    return VZ_OK;
  }
  /* Column sums: each task owns a block of inner positions of one outer
   * index and walks the n rows in order. */
  int64_t tasks = outer * vz_cpu_blocks(inner, VZ_CPU_COLUMN_BLOCK);
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t t = 0; t < tasks; t++) {
    vz_cpu_tile c = vz_cpu_tile_at(t, inner, VZ_CPU_COLUMN_BLOCK);
    const float *src = x + c.row * n * inner + c.col;
    float *dst = out + c.row * inner + c.col;
    memcpy(dst, src, (size_t)c.len * sizeof *dst);
    for (int64_t k = 1; k < n; k++) {
      const float *row = src + k * inner;
      if (op == VZ_OP_MAX) {
        for (int64_t j = 0; j < c.len; j++)
          dst[j] = max_nan(dst[j], row[j]);
      } else {
        simd->binary(VZ_OP_ADD, dst, 1, row, 1, dst, c.len);
      }
    }
    if (op == VZ_OP_MEAN) {
      float count = (float)n;
      simd->binary(VZ_OP_DIV, dst, 1, &count, 0, dst, c.len);
    }
  }
  return VZ_OK;
}

/* ---- softmax ---- */

bool vz_cpu_softmax_supports(const vz_op_call *call) {
  const vz_tensor *mask = call->n_inputs > 1 ? call->inputs[1] : NULL;
  return is_f32_input(call) && call->outputs[0]->dtype == VZ_F32 &&
         (!mask || (mask->dtype == VZ_F32 && vz_tensor_is_contiguous(mask)));
}

vz_status vz_cpu_softmax(const vz_cpu *cpu, const vz_op_call *call) {
  const vz_tensor *xt = call->inputs[0];
  const vz_tensor *mt = call->n_inputs > 1 ? call->inputs[1] : NULL;
  int nd = xt->ndim;
  int64_t cols = xt->shape[nd - 1];
  int64_t rows = nd >= 2 ? xt->shape[nd - 2] : 1;
  int64_t total_rows = vz_tensor_numel(xt) / cols;
  const float *x = vz_cpu_data(xt);
  float *out = vz_cpu_data(call->outputs[0]);
  float scale = call->attrs.softmax.scale;
  bool causal = call->attrs.softmax.causal;
  int64_t mstride[VZ_MAX_DIMS] = {0};
  const float *mask = NULL;
  bool gather_mask = false;
  if (mt) {
    vz_broadcast_strides(mt, nd, xt->shape, mstride);
    mask = vz_cpu_data(mt);
    gather_mask = mstride[nd - 1] != 1;
  }
  int threads = vz_cpu_threads_for(cpu, total_rows * cols * 8);
  float *scratch = NULL;
  if (gather_mask) {
    scratch = malloc((size_t)threads * (size_t)cols * sizeof *scratch);
    if (!scratch)
      return vz_fail(VZ_ERR_OUT_OF_MEMORY, "softmax: no memory for a mask row of %lld",
                     (long long)cols);
  }
  const vz_cpu_simd *simd = cpu->simd;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t r = 0; r < total_rows; r++) {
    const float *mrow = NULL;
    if (mask) {
      int64_t off = 0, rem = r;
      for (int d = nd - 2; d >= 0; d--) {
        off += (rem % xt->shape[d]) * mstride[d];
        rem /= xt->shape[d];
      }
      mrow = mask + off;
      if (gather_mask) {
        float *s = scratch + (size_t)omp_get_thread_num() * (size_t)cols;
        for (int64_t j = 0; j < cols; j++)
          s[j] = mrow[j * mstride[nd - 1]];
        mrow = s;
      }
    }
    int64_t valid = cols;
    if (causal) {
      int64_t i = r % rows;
      valid = i + (cols - rows) + 1;
      valid = valid < 0 ? 0 : valid > cols ? cols : valid;
    }
    simd->softmax_row(x + r * cols, mrow, scale, valid, cols, out + r * cols);
  }
  free(scratch);
  return VZ_OK;
}

/* ---- argmax ---- */

bool vz_cpu_argmax_supports(const vz_op_call *call) {
  return is_f32_input(call) && call->outputs[0]->dtype == VZ_I64;
}

vz_status vz_cpu_argmax(const vz_cpu *cpu, const vz_op_call *call) {
  const vz_tensor *xt = call->inputs[0];
  int64_t outer, n, inner;
  vz_status st = vz_cpu_split_axis(xt, call->attrs.axis.axis, &outer, &n, &inner);
  if (st != VZ_OK)
    return st;
  const float *x = vz_cpu_data(xt);
  int64_t *out = vz_cpu_data(call->outputs[0]);
  int64_t tasks = outer * vz_cpu_blocks(inner, VZ_CPU_COLUMN_BLOCK);
  int threads = vz_cpu_threads_for(cpu, outer * n * inner);
  /* The first largest entry; NaN counts as the largest (first NaN wins). */
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t t = 0; t < tasks; t++) {
    vz_cpu_tile c = vz_cpu_tile_at(t, inner, VZ_CPU_COLUMN_BLOCK);
    const float *src = x + c.row * n * inner + c.col;
    int64_t *dst = out + c.row * inner + c.col;
    for (int64_t j = 0; j < c.len; j++) {
      float best = src[j];
      int64_t at = 0;
      for (int64_t k = 1; k < n && !isnan(best); k++) {
        float v = src[k * inner + j];
        if (v > best || isnan(v)) {
          best = v;
          at = k;
        }
      }
      dst[j] = at;
    }
  }
  return VZ_OK;
}

/* ---- top-k ---- */

bool vz_cpu_topk_supports(const vz_op_call *call) {
  return is_f32_input(call) && call->outputs[0]->dtype == VZ_F32 &&
         call->outputs[1]->dtype == VZ_I64;
}

typedef struct entry {
  float v;
  int64_t i;
} entry;

/* Whether a ranks before b: larger first, NaN largest, lower index first
 * among equals. */
static inline bool ranks_before(entry a, entry b) {
  bool an = isnan(a.v), bn = isnan(b.v);
  if (an != bn)
    return an;
  if (!an && a.v != b.v)
    return a.v > b.v;
  return a.i < b.i;
}

/* A heap whose root is the entry ranking last. */
static void sift_down(entry *h, int64_t size, int64_t at) {
  for (;;) {
    int64_t worst = at, l = 2 * at + 1, r = l + 1;
    if (l < size && ranks_before(h[worst], h[l]))
      worst = l;
    if (r < size && ranks_before(h[worst], h[r]))
      worst = r;
    if (worst == at)
      return;
    entry tmp = h[at];
    h[at] = h[worst];
    h[worst] = tmp;
    at = worst;
  }
}

/* The k best of row[0..n) in rank order, in O(n log k). */
static void topk_row(const float *row, int64_t n, int64_t k, entry *h, float *values,
                     int64_t *indices) {
  for (int64_t i = 0; i < k; i++)
    h[i] = (entry){row[i], i};
  for (int64_t i = k / 2 - 1; i >= 0; i--)
    sift_down(h, k, i);
  for (int64_t i = k; i < n; i++) {
    entry e = {row[i], i};
    if (ranks_before(e, h[0])) {
      h[0] = e;
      sift_down(h, k, 0);
    }
  }
  /* Pop the worst repeatedly, filling the result from the back. */
  for (int64_t size = k; size > 0; size--) {
    values[size - 1] = h[0].v;
    indices[size - 1] = h[0].i;
    h[0] = h[size - 1];
    sift_down(h, size - 1, 0);
  }
}

vz_status vz_cpu_topk(const vz_cpu *cpu, const vz_op_call *call) {
  const vz_tensor *xt = call->inputs[0];
  int64_t n = xt->shape[xt->ndim - 1];
  int64_t k = call->attrs.topk.k;
  if (k < 1 || k > n)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "k = %lld is outside 1..%lld", (long long)k,
                   (long long)n);
  int64_t rows = vz_tensor_numel(xt) / n;
  const float *x = vz_cpu_data(xt);
  float *values = vz_cpu_data(call->outputs[0]);
  int64_t *indices = vz_cpu_data(call->outputs[1]);
  int threads = vz_cpu_threads_for(cpu, rows * n * 4);
  entry *heaps = malloc((size_t)threads * (size_t)k * sizeof *heaps);
  if (!heaps)
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "topk: no memory for k = %lld", (long long)k);
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t r = 0; r < rows; r++)
    topk_row(x + r * n, n, k, heaps + (size_t)omp_get_thread_num() * (size_t)k, values + r * k,
             indices + r * k);
  free(heaps);
  return VZ_OK;
}

/* ---- cumsum ---- */

bool vz_cpu_cumsum_supports(const vz_op_call *call) {
  const vz_tensor *x = call->inputs[0];
  return x && vz_tensor_is_contiguous(x) && call->outputs[0]->dtype == x->dtype &&
         (x->dtype == VZ_F32 || x->dtype == VZ_I32 || x->dtype == VZ_I64);
}

/* out[k] = out[k-1] + x[k] along the axis, in order, over one tile's
 * columns; the sums are taken in U, so that integers wrap. */
#define CUMSUM_TILE(T, U)                                                                          \
  do {                                                                                             \
    const T *src = (const T *)xp + base;                                                           \
    T *dst = (T *)op + base;                                                                       \
    for (int64_t j = 0; j < c.len; j++)                                                            \
      dst[j] = src[j];                                                                             \
    for (int64_t k = 1; k < n; k++)                                                                \
      for (int64_t j = 0; j < c.len; j++)                                                          \
        dst[k * inner + j] = (T)((U)dst[(k - 1) * inner + j] + (U)src[k * inner + j]);             \
  } while (0)

vz_status vz_cpu_cumsum(const vz_cpu *cpu, const vz_op_call *call) {
  const vz_tensor *xt = call->inputs[0];
  int64_t outer, n, inner;
  vz_status st = vz_cpu_split_axis(xt, call->attrs.axis.axis, &outer, &n, &inner);
  if (st != VZ_OK)
    return st;
  const void *xp = vz_cpu_data(xt);
  void *op = vz_cpu_data(call->outputs[0]);
  vz_dtype dt = xt->dtype;
  int64_t tasks = outer * vz_cpu_blocks(inner, VZ_CPU_COLUMN_BLOCK);
  int threads = vz_cpu_threads_for(cpu, outer * n * inner);
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t t = 0; t < tasks; t++) {
    vz_cpu_tile c = vz_cpu_tile_at(t, inner, VZ_CPU_COLUMN_BLOCK);
    int64_t base = c.row * n * inner + c.col;
    if (dt == VZ_F32)
      CUMSUM_TILE(float, float);
    else if (dt == VZ_I32)
      CUMSUM_TILE(int32_t, uint32_t);
    else
      CUMSUM_TILE(int64_t, uint64_t);
  }
  return VZ_OK;
}

/* Scaled dot-product attention on the CPU: softmax(q k^T * scale + bias +
 * mask) v, one task per (batch, head, block of query rows). Large blocks
 * use two single-threaded oneDNN GEMMs around the softmax (scores, then
 * probabilities times values); small ones a loop of dot products and
 * axpys. Each task computes alone, in a fixed order, so results do not
 * depend on the thread count. */
#include <dnnl.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "backends/cpu/cpu.h"

enum {
  /* Query rows per task at most. Measured on ViT-g's 16 x 257 x 257 x 88
   * with 2 threads: blocks of 64, 128 or whole heads run alike (2.8-3.5 ms,
   * noise included); with causality the smaller blocks skip more keys
   * (1.8 ms against 2.8 ms for whole heads). */
  ROW_BLOCK = 64,
  /* Tasks with fewer multiply-adds (rows x keys x head size) than this use
   * the loop of dot products: the GEMMs win from about here up (1 x 20 x 64
   * ties at 7-8 us for 12 heads; 1 x 40 x 128 and up favour the GEMMs, ViT-g
   * 3.2 ms against 10.6 ms). */
  GEMM_MIN_WORK = 4096,
};

typedef struct attn {
  const float *q, *k, *v, *bias, *mask;
  float *out;
  int64_t batch, heads, kv_heads, sq, sk, d, dv, group;
  int64_t bias_stride[4], mask_stride[4];
  float scale;
  bool causal;
} attn;

/* Keys row i sees: all, or under causality those up to i + (Sk - Sq). */
static int64_t visible(const attn *a, int64_t i) {
  if (!a->causal)
    return a->sk;
  int64_t v = i + a->sk - a->sq + 1;
  return v < 0 ? 0 : v > a->sk ? a->sk : v;
}

static float dot(const vz_cpu *cpu, const float *x, const float *y, int64_t n) {
  if (cpu->simd->dot)
    return cpu->simd->dot(x, y, n);
  float s = 0;
  for (int64_t i = 0; i < n; i++)
    s += x[i] * y[i];
  return s;
}

static void axpy(const vz_cpu *cpu, float alpha, const float *x, float *y, int64_t n) {
  if (cpu->simd->axpy) {
    cpu->simd->axpy(alpha, x, y, n);
    return;
  }
  for (int64_t i = 0; i < n; i++)
    y[i] += alpha * x[i];
}

/* p = softmax(s) over s[0, valid), zeros in p[valid, n); all entries -inf
 * (or none valid) gives zeros. */
static void softmax(const vz_cpu *cpu, const float *s, int64_t valid, int64_t n, float *p) {
  if (cpu->simd->softmax_row) {
    cpu->simd->softmax_row(s, NULL, 1.0f, valid, n, p);
    return;
  }
  float max = -INFINITY;
  for (int64_t j = 0; j < valid; j++)
    max = s[j] > max ? s[j] : max;
  if (max == -INFINITY) {
    memset(p, 0, (size_t)n * sizeof *p);
    return;
  }
  float sum = 0;
  for (int64_t j = 0; j < valid; j++)
    sum += p[j] = expf(s[j] - max);
  float inv = 1.0f / sum;
  for (int64_t j = 0; j < valid; j++)
    p[j] *= inv;
  memset(p + valid, 0, (size_t)(n - valid) * sizeof *p);
}

/* Adds row i of (b, h)'s bias and mask to the scores s[0, valid). */
static void add_bias_mask(const attn *a, int64_t b, int64_t h, int64_t i, float *s, int64_t valid) {
  const float *extra[2] = {a->bias, a->mask};
  const int64_t *strides[2] = {a->bias_stride, a->mask_stride};
  for (int e = 0; e < 2; e++) {
    if (!extra[e])
      continue;
    const int64_t *st = strides[e];
    const float *row = extra[e] + b * st[0] + h * st[1] + i * st[2];
    if (st[3] == 1) {
      for (int64_t j = 0; j < valid; j++)
        s[j] += row[j];
    } else {
      for (int64_t j = 0; j < valid; j++)
        s[j] += row[j * st[3]];
    }
  }
}

/* Rows [i0, i1) of (b, h) with dot products and axpys; s and p hold Sk. */
static void block_loop(const vz_cpu *cpu, const attn *a, int64_t b, int64_t h, int64_t i0,
                       int64_t i1, float *s, float *p) {
  int64_t kvh = h / a->group;
  const float *k = a->k + (b * a->kv_heads + kvh) * a->sk * a->d;
  const float *v = a->v + (b * a->kv_heads + kvh) * a->sk * a->dv;
  for (int64_t i = i0; i < i1; i++) {
    const float *q = a->q + ((b * a->heads + h) * a->sq + i) * a->d;
    float *o = a->out + ((b * a->heads + h) * a->sq + i) * a->dv;
    int64_t valid = visible(a, i);
    for (int64_t j = 0; j < valid; j++)
      s[j] = dot(cpu, q, k + j * a->d, a->d) * a->scale;
    add_bias_mask(a, b, h, i, s, valid);
    softmax(cpu, s, valid, valid, p);
    memset(o, 0, (size_t)a->dv * sizeof *o);
    for (int64_t j = 0; j < valid; j++)
      if (p[j] != 0.0f)
        axpy(cpu, p[j], v + j * a->dv, o, a->dv);
  }
}

/* Rows [i0, i1) of (b, h) as two GEMMs: s = scale q k^T over the keys the
 * block sees, then out = p v. s and p hold (i1 - i0) rows of ld floats. */
static dnnl_status_t block_gemm(const vz_cpu *cpu, const attn *a, int64_t b, int64_t h, int64_t i0,
                                int64_t i1, float *s, float *p, int64_t ld) {
  int64_t kvh = h / a->group, rows = i1 - i0;
  const float *q = a->q + ((b * a->heads + h) * a->sq + i0) * a->d;
  const float *k = a->k + (b * a->kv_heads + kvh) * a->sk * a->d;
  const float *v = a->v + (b * a->kv_heads + kvh) * a->sk * a->dv;
  float *o = a->out + ((b * a->heads + h) * a->sq + i0) * a->dv;
  int64_t cols = visible(a, i1 - 1); /* the most any row of the block sees */
  if (cols == 0) {
    memset(o, 0, (size_t)(rows * a->dv) * sizeof *o);
    return dnnl_success;
  }
  int64_t d = a->d > 0 ? a->d : 1;
  dnnl_status_t st = dnnl_sgemm('N', 'T', rows, cols, a->d, a->scale, q, d, k, d, 0.0f, s, ld);
  if (st != dnnl_success)
    return st;
  for (int64_t r = 0; r < rows; r++) {
    int64_t valid = visible(a, i0 + r);
    add_bias_mask(a, b, h, i0 + r, s + r * ld, valid);
    softmax(cpu, s + r * ld, valid, cols, p + r * ld);
  }
  return dnnl_sgemm('N', 'N', rows, a->dv, cols, 1.0f, p, ld, v, a->dv, 0.0f, o, a->dv);
}

bool vz_cpu_attention_supports(const vz_op_call *call) {
  for (int i = 0; i < call->n_inputs; i++) {
    const vz_tensor *t = call->inputs[i];
    if (i < 3 && !t)
      return false;
    if (t && (t->dtype != VZ_F32 || !vz_cpu_data(t)))
      return false;
    if (t && i < 3 && !vz_tensor_is_contiguous(t))
      return false;
  }
  return true;
}

vz_status vz_cpu_attention(const vz_cpu *cpu, const vz_op_call *call) {
  const vz_tensor *q = call->inputs[0], *k = call->inputs[1], *v = call->inputs[2];
  const vz_tensor *bias = call->n_inputs > 3 ? call->inputs[3] : NULL;
  const vz_tensor *mask = call->n_inputs > 4 ? call->inputs[4] : NULL;
  attn a = {
      .q = vz_cpu_data(q),
      .k = vz_cpu_data(k),
      .v = vz_cpu_data(v),
      .out = vz_cpu_data(call->outputs[0]),
      .batch = q->shape[0],
      .heads = q->shape[1],
      .kv_heads = k->shape[1],
      .sq = q->shape[2],
      .sk = k->shape[2],
      .d = q->shape[3],
      .dv = v->shape[3],
      .scale = call->attrs.attention.scale,
      .causal = call->attrs.attention.causal,
  };
  a.group = a.heads / a.kv_heads;
  int64_t scores[4] = {a.batch, a.heads, a.sq, a.sk};
  if (bias) {
    a.bias = vz_cpu_data(bias);
    vz_broadcast_strides(bias, 4, scores, a.bias_stride);
  }
  if (mask) {
    a.mask = vz_cpu_data(mask);
    vz_broadcast_strides(mask, 4, scores, a.mask_stride);
  }
  /* Blocks of at most ROW_BLOCK rows, as even as possible (257 rows: five
   * of 52 and less, not four of 64 and one of 1). */
  int64_t blocks = (a.sq + ROW_BLOCK - 1) / ROW_BLOCK;
  int64_t row_block = blocks ? (a.sq + blocks - 1) / blocks : 1;
  blocks = (a.sq + row_block - 1) / row_block;
  int64_t tasks = a.batch * a.heads * blocks;
  int64_t rows = a.sq < row_block ? a.sq : row_block;
  bool gemm = rows * a.sk * (a.d > a.dv ? a.d : a.dv) >= GEMM_MIN_WORK;
  int64_t ld = (a.sk + 15) / 16 * 16;
  if (ld % 1024 == 0)
    ld += 16; /* rows 4 KiB apart would share cache sets */
  size_t scratch = (size_t)(gemm ? rows * ld : ld) * 2;
  int threads = vz_cpu_threads_for(cpu, tasks * rows * a.sk * (a.d + a.dv) / 8);
  if (threads > tasks)
    threads = (int)tasks;
  int failed = 0, saved = omp_get_max_threads();
  omp_set_num_threads(threads); /* oneDNN inside an inactive region */
#pragma omp parallel num_threads(threads)
  {
    float *s = malloc(scratch * sizeof *s), *p = s ? s + scratch / 2 : NULL;
    int mine = s ? 0 : -1;
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < tasks; t++) {
      if (mine)
        continue;
      int64_t bh = t / blocks, i0 = t % blocks * row_block;
      int64_t i1 = i0 + row_block < a.sq ? i0 + row_block : a.sq;
      if (gemm)
        mine = (int)block_gemm(cpu, &a, bh / a.heads, bh % a.heads, i0, i1, s, p, ld);
      else
        block_loop(cpu, &a, bh / a.heads, bh % a.heads, i0, i1, s, p);
    }
    if (mine) {
#pragma omp atomic write
      failed = mine;
    }
    free(s);
  }
  omp_set_num_threads(saved);
  if (failed < 0)
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory for attention scores");
  if (failed)
    return vz_fail(VZ_ERR_BACKEND, "oneDNN sgemm failed (status %d)", failed);
  return VZ_OK;
}

/* Scaled dot-product attention on the CPU: softmax(q k^T * scale + bias +
 * mask) v, reading q, k and v where they are (heads split off a fused
 * projection need no copies). On paths with the packed GEMM (AVX2) one
 * task per (batch, head) packs the head's keys and values once and runs
 * the register tile of cpu_matmul.c over blocks of query rows (scores,
 * softmax, then probabilities times values, all in the thread's L2).
 * Otherwise one task per (batch, head, block of query rows): large blocks
 * use two single-threaded oneDNN GEMMs around the softmax, small ones a
 * loop of dot products and axpys. Each task computes alone, in a fixed
 * order, so results do not depend on the thread count. */
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
  /* Slivers of VZ_GEMM_MR query rows per block of the packed path at most:
   * 54 rows of 257 scores stay in L2 with the head's packed keys and
   * values (about 250 KiB for ViT-g). */
  PACKED_BLOCK_SLIVERS = 9,
};

typedef struct attn {
  const float *q, *k, *v, *bias, *mask;
  float *out; /* contiguous [batch, heads, sq, dv] */
  /* q's, k's and v's strides (elements) between batches, heads and rows;
   * a row's elements are contiguous */
  int64_t qs[3], ks[3], vs[3];
  int64_t batch, heads, kv_heads, sq, sk, d, dv, group;
  int64_t bias_stride[4], mask_stride[4];
  float scale;
  bool causal;
} attn;

/* Row i of query head h of batch b; keys and values of key head kvh, their
 * rows a->ks[2] and a->vs[2] apart. */
static const float *q_row(const attn *a, int64_t b, int64_t h, int64_t i) {
  return a->q + b * a->qs[0] + h * a->qs[1] + i * a->qs[2];
}

static const float *k_head(const attn *a, int64_t b, int64_t kvh) {
  return a->k + b * a->ks[0] + kvh * a->ks[1];
}

static const float *v_head(const attn *a, int64_t b, int64_t kvh) {
  return a->v + b * a->vs[0] + kvh * a->vs[1];
}

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
  const float *k = k_head(a, b, h / a->group), *v = v_head(a, b, h / a->group);
  for (int64_t i = i0; i < i1; i++) {
    const float *q = q_row(a, b, h, i);
    float *o = a->out + ((b * a->heads + h) * a->sq + i) * a->dv;
    int64_t valid = visible(a, i);
    for (int64_t j = 0; j < valid; j++)
      s[j] = dot(cpu, q, k + j * a->ks[2], a->d) * a->scale;
    add_bias_mask(a, b, h, i, s, valid);
    softmax(cpu, s, valid, valid, p);
    memset(o, 0, (size_t)a->dv * sizeof *o);
    for (int64_t j = 0; j < valid; j++)
      if (p[j] != 0.0f)
        axpy(cpu, p[j], v + j * a->vs[2], o, a->dv);
  }
}

/* Rows [i0, i1) of (b, h) as two GEMMs: s = scale q k^T over the keys the
 * block sees, then out = p v. s and p hold (i1 - i0) rows of ld floats. */
static dnnl_status_t block_gemm(const vz_cpu *cpu, const attn *a, int64_t b, int64_t h, int64_t i0,
                                int64_t i1, float *s, float *p, int64_t ld) {
  int64_t rows = i1 - i0;
  const float *q = q_row(a, b, h, i0);
  const float *k = k_head(a, b, h / a->group), *v = v_head(a, b, h / a->group);
  float *o = a->out + ((b * a->heads + h) * a->sq + i0) * a->dv;
  int64_t cols = visible(a, i1 - 1); /* the most any row of the block sees */
  if (cols == 0) {
    memset(o, 0, (size_t)(rows * a->dv) * sizeof *o);
    return dnnl_success;
  }
  dnnl_status_t st =
      dnnl_sgemm('N', 'T', rows, cols, a->d, a->scale, q, a->qs[2], k, a->ks[2], 0.0f, s, ld);
  if (st != dnnl_success)
    return st;
  for (int64_t r = 0; r < rows; r++) {
    int64_t valid = visible(a, i0 + r);
    add_bias_mask(a, b, h, i0 + r, s + r * ld, valid);
    softmax(cpu, s + r * ld, valid, cols, p + r * ld);
  }
  return dnnl_sgemm('N', 'N', rows, a->dv, cols, 1.0f, p, ld, v, a->vs[2], 0.0f, o, a->dv);
}

/* ---- Packed path ---- */

typedef struct packed_scratch {
  float *k, *v, *s; /* packed keys (k^T), packed values, a block of scores */
  int64_t ld;       /* floats between rows of scores */
} packed_scratch;

static int64_t round_up(int64_t x, int64_t to) { return (x + to - 1) / to * to; }

/* Floats of one thread's packed_scratch. */
static size_t packed_floats(const attn *a, int nr, int64_t ld) {
  return (size_t)(round_up(a->sk, nr) * a->d + round_up(a->dv, nr) * a->sk +
                  PACKED_BLOCK_SLIVERS * VZ_GEMM_MR * ld);
}

/* Blocks of query rows: slivers of VZ_GEMM_MR rows split evenly into at
 * most PACKED_BLOCK_SLIVERS each. */
static int64_t packed_blocks(const attn *a) {
  int64_t slivers = (a->sq + VZ_GEMM_MR - 1) / VZ_GEMM_MR;
  return (slivers + PACKED_BLOCK_SLIVERS - 1) / PACKED_BLOCK_SLIVERS;
}

/* Blocks [blk0, blk1) of head (b, h): the head's keys and values packed,
 * then for each block the scores by tiles (queries read in place), the
 * softmax row by row, and the probabilities (in place) times the values by
 * tiles. Every row's result is the same whichever task computes it. */
static void head_packed(const vz_cpu *cpu, const attn *a, int64_t b, int64_t h, int64_t blk0,
                        int64_t blk1, const packed_scratch *w) {
  const vz_cpu_simd *simd = cpu->simd;
  const int nr = simd->gemm_nr, mr = VZ_GEMM_MR;
  const float *k = k_head(a, b, h / a->group), *v = v_head(a, b, h / a->group);
  const float *q = q_row(a, b, h, 0);
  const int64_t lq = a->qs[2];
  float *o = a->out + (b * a->heads + h) * a->sq * a->dv;
  int64_t kpanels = (a->sk + nr - 1) / nr, vpanels = (a->dv + nr - 1) / nr;
  for (int64_t t = 0; t < kpanels; t++) { /* k^T: each key a column of d steps */
    int64_t j = t * nr;
    simd->gemm_pack_bt(k + j * a->ks[2], a->ks[2], (int)(a->sk - j < nr ? a->sk - j : nr), a->d,
                       w->k + t * nr * a->d);
  }
  for (int64_t t = 0; t < vpanels; t++) { /* v: row-major [Sk, Dv], nr columns a panel */
    int64_t j = t * nr, cols = a->dv - j < nr ? a->dv - j : nr;
    float *dst = w->v + t * nr * a->sk;
    for (int64_t r = 0; r < a->sk; r++, dst += nr) {
      memcpy(dst, v + r * a->vs[2] + j, (size_t)cols * sizeof *dst);
      memset(dst + cols, 0, (size_t)(nr - cols) * sizeof *dst);
    }
  }
  int64_t slivers = (a->sq + mr - 1) / mr, blocks = packed_blocks(a);
  for (int64_t blk = blk0; blk < blk1; blk++) {
    int64_t i0 = slivers * blk / blocks * mr, i1 = slivers * (blk + 1) / blocks * mr;
    if (i1 > a->sq)
      i1 = a->sq;
    int64_t rows = i1 - i0, cols = visible(a, i1 - 1); /* keys any row of the block sees */
    if (cols == 0) {
      memset(o + i0 * a->dv, 0, (size_t)(rows * a->dv) * sizeof *o);
      continue;
    }
    for (int64_t s = 0; s * mr < rows; s++) {
      int rs = (int)(rows - s * mr < mr ? rows - s * mr : mr);
      for (int64_t t = 0; t * nr < cols; t++)
        simd->gemm_tile(a->d, q + (i0 + s * mr) * lq, lq, w->k + t * nr * a->d,
                        w->s + s * mr * w->ld + t * nr, w->ld, rs,
                        (int)(cols - t * nr < nr ? cols - t * nr : nr), false, NULL);
    }
    for (int64_t r = 0; r < rows; r++) {
      float *row = w->s + r * w->ld;
      int64_t valid = visible(a, i0 + r);
      if (a->bias || a->mask) { /* bias and mask add to the scaled scores */
        simd->unary(VZ_OP_SCALE, row, row, valid, a->scale);
        add_bias_mask(a, b, h, i0 + r, row, valid);
        simd->softmax_row(row, NULL, 1.0f, valid, cols, row);
      } else {
        simd->softmax_row(row, NULL, a->scale, valid, cols, row);
      }
    }
    for (int64_t s = 0; s * mr < rows; s++) {
      int rs = (int)(rows - s * mr < mr ? rows - s * mr : mr);
      for (int64_t t = 0; t < vpanels; t++)
        simd->gemm_tile(cols, w->s + s * mr * w->ld, w->ld, w->v + t * nr * a->sk,
                        o + (i0 + s * mr) * a->dv + t * nr, a->dv, rs,
                        (int)(a->dv - t * nr < nr ? a->dv - t * nr : nr), false, NULL);
    }
  }
}

static vz_status run_packed(const vz_cpu *cpu, const attn *a) {
  /* A task per head, or per part of one when there are fewer heads than
   * threads to keep busy (the keys and values are then packed once per
   * part). */
  int64_t heads = a->batch * a->heads, blocks = packed_blocks(a), parts = 1;
  while (parts < blocks && heads * parts < 2 * cpu->threads)
    parts++;
  int64_t tasks = heads * parts;
  int64_t ld = round_up(a->sk, 16);
  if (ld % 1024 == 0)
    ld += 16; /* rows 4 KiB apart would share cache sets */
  size_t per_thread = packed_floats(a, cpu->simd->gemm_nr, ld);
  int threads = vz_cpu_threads_for(cpu, tasks * a->sq * a->sk * (a->d + a->dv) / 8);
  if (threads > tasks)
    threads = (int)tasks;
  float *scratch =
      aligned_alloc(64, round_up((int64_t)(per_thread * (size_t)threads * sizeof(float)), 64));
  if (!scratch)
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory for attention scores");
#pragma omp parallel num_threads(threads)
  {
    packed_scratch w = {.k = scratch + per_thread * (size_t)omp_get_thread_num(), .ld = ld};
    w.v = w.k + round_up(a->sk, cpu->simd->gemm_nr) * a->d;
    w.s = w.v + round_up(a->dv, cpu->simd->gemm_nr) * a->sk;
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < tasks; t++) {
      int64_t bh = t / parts, part = t % parts;
      head_packed(cpu, a, bh / a->heads, bh % a->heads, blocks * part / parts,
                  blocks * (part + 1) / parts, &w);
    }
  }
  free(scratch);
  return VZ_OK;
}

/* q, k and v may be views (heads split off a fused projection, say) whose
 * rows are contiguous and do not overlap; bias and mask any view. */
static bool rows_contiguous(const vz_tensor *t) {
  return (t->shape[3] <= 1 || t->stride[3] == 1) &&
         (t->shape[2] <= 1 || t->stride[2] >= t->shape[3]);
}

bool vz_cpu_attention_supports(const vz_op_call *call) {
  for (int i = 0; i < call->n_inputs; i++) {
    const vz_tensor *t = call->inputs[i];
    if (i < 3 && !t)
      return false;
    if (t && (t->dtype != VZ_F32 || !vz_cpu_data(t)))
      return false;
    if (t && i < 3 && !rows_contiguous(t))
      return false;
  }
  return true;
}

/* A [B, H, S, D] input's strides between batches, heads and rows (for a
 * single row or empty rows, any valid leading dimension). */
static void head_strides(const vz_tensor *t, int64_t s[3]) {
  s[0] = t->stride[0];
  s[1] = t->stride[1];
  s[2] = t->shape[2] > 1 && t->shape[3] > 0 ? t->stride[2] : t->shape[3] > 1 ? t->shape[3] : 1;
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
  head_strides(q, a.qs);
  head_strides(k, a.ks);
  head_strides(v, a.vs);
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
  if (cpu->simd->gemm_tile && a.sq * a.sk * (a.d > a.dv ? a.d : a.dv) >= GEMM_MIN_WORK * 8 &&
      a.d > 0)
    return run_packed(cpu, &a);
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

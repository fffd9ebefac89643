/* matmul and linear on the CPU: vlzoo's own packed GEMM on AVX2
 * processors, oneDNN's sgemm elsewhere, and f16 products for f16 and bf16
 * weights on processors with AVX512-FP16 (cpu_gemm_f16.c: a rounded to
 * f16, bf16 weights converted to f16, about 1.9x the f32 rate on ViT-g's
 * layers; values beyond f16's range are recomputed by the widening path
 * below).
 *
 * The packed GEMM (AVX2): a's rows are packed in slivers of VZ_GEMM_MR
 * rows once per call (converted from any dtype and strides), shared by
 * the threads; each task takes one panel of gemm_nr columns of b, packs
 * it (a transpose for a weight [N, K]) in chunks of at most PACKED_KC
 * steps, and runs the register tile (simd_kernels.inc) down all of a's
 * slivers with it. Every output element is summed by one task in a fixed
 * order, so results do not depend on the thread count, and the Linear
 * layer's bias, activation and residual are applied to each tile while it
 * is in registers. On ViT-g's layers (257 rows) it runs at about 93 % of
 * an AVX2 core's FMA peak, against 81-87 % for oneDNN's sgemm.
 *
 * oneDNN (other processors, batches of distinct b matrices, few rows):
 * f32 operands are read in place when one of their last two dimensions has
 * stride 1 (row- or column-major with any leading dimension), else copied.
 * An operand whose leading dimension is a multiple of 4 KiB is copied with
 * a padded one: its lines then share L1 sets and the GEMM slumps (B as
 * [1408, 6144]: 90 GFLOP/s in place, 170 through padded panels). 16-bit
 * operands are widened to f32; when either operand is bf16 both are taken
 * at bf16 precision: oneDNN's bf16 matmul primitive where this processor
 * runs it on AMX, otherwise rounded and widened, so that every processor
 * without AVX512-FP16 gives the same bf16-precision products. With
 * AVX512-FP16 and no AMX, bf16 arithmetic runs at half the f32 rate while
 * f16 runs at twice it, so a bf16 weight [N, K] times f32 activations takes
 * the f16 products (its error bound is in cpu_gemm_f16.c and
 * docs/backends.md) and falls back to the widening path.
 *
 * Up to TILE_MAX_ROWS rows (every layer of ViT, Q-Former and a decoder
 * step) the work can be split into tiles of all rows by PANEL_COLUMNS
 * columns, one single-threaded sgemm each, b read in place or converted
 * into the thread's own cache-sized panel. That is done when b needs a
 * copy (conversions stay next to their use), for batches of GEMMs, and for
 * weights [N, K] on AVX2 processors, where it matches or beats oneDNN's own
 * threading (2 threads, 257x6144x1408: about 150 against 130 GFLOP/s).
 * Otherwise oneDNN threads each GEMM, b converted BIG_PANEL columns at a
 * time when needed. */
#include "backends/cpu/cpu_matmul.h"

#include <dnnl.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <threads.h>

#include "backends/cpu/cpu.h"
#include "backends/cpu/cpu_gemm_f16.h"
#include "ops/log.h"

enum {
  MM_NB = VZ_MAX_DIMS - 2, /* batch dimensions at most */
  /* Columns of b per task in the tiled GEMM; a converted panel of
   * PANEL_COLUMNS x K floats stays in L2 for the K of ViT and Q-Former
   * layers (64 x 1408 x 4 = 352 KiB). */
  PANEL_COLUMNS = 64,
  /* Up to this many rows (M, or all batches' rows when they stack) the
   * tiled GEMM runs; above, oneDNN's own threading does better. */
  TILE_MAX_ROWS = 512,
  /* Columns of b converted per step above TILE_MAX_ROWS. */
  BIG_PANEL = 512,
  /* The packed GEMM runs from this many rows of output up (below, a
   * panel of b is packed for too few tiles to pay for itself)... */
  PACKED_MIN_ROWS = 32,
  /* ...on blocks of at most this many rows (packed a: 258 x 6144 floats,
   * 6 MiB, for ViT-g's fc2). */
  PACKED_BLOCK_ROWS = 43 * VZ_GEMM_MR,
  /* Steps of K per packed panel of b at most: K is cut into equal chunks
   * of at most this many (a panel of 16 columns: 96 KiB, in L2). One
   * chunk for K = 1408 runs at 95 GFLOP/s per core, chunks of 1536 for
   * K = 6144 at 93 (256: 91). */
  PACKED_KC = 1536,
  /* A leading dimension (in floats) that is a multiple of this is a
   * multiple of 4 KiB... */
  ALIAS_FLOATS = 1024,
  /* ...and hurts once this many such lines are streamed together. */
  ALIAS_MIN_LINES = 64,
};

/* One operand as oneDNN's row-major GEMM sees it: op(a) is M x K and op(b)
 * K x N, with the element strides of their rows and columns. */
typedef struct mm_side {
  const char *data; /* element [0, ..., 0] */
  vz_dtype dtype;
  int64_t rows, cols, rs, cs;
  int64_t bdim[MM_NB];    /* own size per output batch dimension (1: broadcast) */
  int64_t bstride[MM_NB]; /* element stride per output batch dimension (0: broadcast) */
  int64_t count;          /* distinct matrices */
  bool direct;            /* oneDNN can read the source as it is */
  char trans;             /* 'N' (row-major) or 'T', of the source when direct */
  int64_t ld;             /* leading dimension of the source when direct */
  bool round_bf16;        /* values are taken at bf16 precision */
  bool copy;              /* read through a converted or re-strided copy */
} mm_side;

typedef struct mm_plan {
  mm_side a, b;
  int nbatch;
  int64_t batch[MM_NB], nbat;
  int64_t m, n, k;
  bool bf16, f16;
  bool primitive; /* oneDNN's bf16 matmul primitive */
  bool packed;    /* vlzoo's packed GEMM (a and b converted while packing) */
  /* f16 products (cpu_gemm_f16.c) for an f16 or bf16 weight [N, K] on
   * avx512fp16 processors; the rest of the plan is the fallback when a's
   * values or the products leave f16's range. */
  bool f16_products;
  /* a's batches stack into the rows of one M = nbat * m GEMM (b has one
   * matrix); when a is read in place its leading dimension is collapse_ld. */
  bool collapse;
  int64_t collapse_ld;
  const char *kernel;
} mm_plan;

/* ---- oneDNN's bf16 matmul primitive: probed once per process ---- */

static once_flag bf16_once = ONCE_FLAG_INIT;
static dnnl_engine_t bf16_engine;
static bool bf16_native;

static void init_md(dnnl_memory_desc_t *md, int64_t rows, int64_t cols, int64_t rs, int64_t cs,
                    dnnl_data_type_t type) {
  dnnl_dims_t dims = {rows, cols}, strides = {rs, cs};
  dnnl_memory_desc_init_by_strides(md, 2, dims, type, strides);
}

/* Creates the primitive descriptor for op(a) [M,K] x op(b) [K,N] -> f32. */
static dnnl_status_t bf16_pd(dnnl_primitive_desc_t *pd, int64_t m, int64_t n, int64_t k,
                             int64_t ars, int64_t acs, int64_t brs, int64_t bcs, int64_t ldc) {
  dnnl_memory_desc_t src, wei, dst;
  init_md(&src, m, k, ars, acs, dnnl_bf16);
  init_md(&wei, k, n, brs, bcs, dnnl_bf16);
  init_md(&dst, m, n, ldc, 1, dnnl_f32);
  dnnl_matmul_desc_t desc;
  dnnl_status_t s = dnnl_matmul_desc_init(&desc, &src, &wei, NULL, &dst);
  if (s != dnnl_success)
    return s;
  return dnnl_primitive_desc_create(pd, &desc, NULL, bf16_engine, NULL);
}

static void bf16_probe(void) {
  if (dnnl_engine_create(&bf16_engine, dnnl_cpu, 0) != dnnl_success) {
    bf16_engine = NULL;
    return;
  }
  dnnl_primitive_desc_t pd = NULL;
  if (bf16_pd(&pd, 64, 64, 64, 64, 1, 1, 64, 64) != dnnl_success)
    return; /* dnnl_unimplemented: no bf16 matmul on this processor */
  const char *impl = NULL;
  dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
  /* Only AMX tiles beat widening to f32: oneDNN 2.6's avx512_core_bf16
   * kernels ran ViT-g's GEMMs at 172-175 GFLOP/s on a 2-vCPU Xeon where its
   * f32 sgemm ran them at 250-277 (docs/performance.md); reference kernels
   * are slower still. */
  bf16_native = impl && strstr(impl, "amx") != NULL;
  dnnl_primitive_desc_destroy(pd);
}

static bool bf16_primitive_available(void) {
  call_once(&bf16_once, bf16_probe);
  return bf16_native;
}

/* ---- Planning ---- */

/* Whether oneDNN reads a rows x cols matrix with strides (rs, cs) in place:
 * row-major ('N') or column-major ('T') with a leading dimension covering a
 * row. */
static bool gemm_layout(int64_t rows, int64_t cols, int64_t rs, int64_t cs, bool prefer_t,
                        char *trans, int64_t *ld) {
  bool n_ok = (cols == 1 || cs == 1) && (rows == 1 || rs >= cols);
  bool t_ok = (rows == 1 || rs == 1) && (cols == 1 || cs >= rows);
  if (!n_ok && !t_ok)
    return false;
  if (t_ok && (prefer_t || !n_ok)) {
    *trans = 'T';
    *ld = cols == 1 ? rows : cs;
  } else {
    *trans = 'N';
    *ld = rows == 1 ? cols : rs;
  }
  return true;
}

/* A stored matrix of `lines` lines `ld` floats apart, each `len` long,
 * streams its lines through the same L1 sets when ld is a multiple of
 * 4 KiB; for enough lines the GEMM's packing slows down. */
static bool aliasing(int64_t ld, int64_t lines, int64_t len) {
  return ld % ALIAS_FLOATS == 0 && lines >= ALIAS_MIN_LINES && len >= 64;
}

/* Leading dimension of a scratch copy: whole cache lines, never a multiple
 * of 4 KiB. */
static int64_t scratch_ld(int64_t len) {
  int64_t ld = (len + 15) / 16 * 16;
  return ld % ALIAS_FLOATS == 0 ? ld + 16 : ld;
}

static void init_side(mm_side *s, const vz_tensor *t, bool transposed, const mm_plan *p) {
  int nd = t->ndim;
  s->data = vz_cpu_data(t);
  s->dtype = t->dtype;
  int r = transposed ? nd - 1 : nd - 2, c = transposed ? nd - 2 : nd - 1;
  s->rows = t->shape[r];
  s->cols = t->shape[c];
  s->rs = t->stride[r];
  s->cs = t->stride[c];
  s->count = 1;
  for (int d = 0; d < p->nbatch; d++) {
    int j = d - (p->nbatch - (nd - 2));
    s->bdim[d] = j >= 0 ? t->shape[j] : 1;
    s->bstride[d] = s->bdim[d] > 1 ? t->stride[j] : 0;
    s->count *= s->bdim[d];
  }
}

/* Element offset of the side's matrix for output batch `ob`, and the index
 * of that matrix among the side's distinct ones. */
static int64_t side_offset(const mm_side *s, const mm_plan *p, int64_t ob, int64_t *index) {
  int64_t off = 0, idx = 0;
  int64_t mul = 1;
  for (int d = p->nbatch - 1; d >= 0; d--) {
    int64_t i = ob % p->batch[d];
    ob /= p->batch[d];
    off += i * s->bstride[d];
    if (s->bdim[d] > 1)
      idx += i * mul;
    mul *= s->bdim[d];
  }
  if (index)
    *index = idx;
  return off;
}

static int64_t index_of(const mm_side *s, const mm_plan *p, int64_t ob) {
  int64_t idx;
  side_offset(s, p, ob, &idx);
  return idx;
}

/* Element offset of the side's distinct matrix number `idx`. */
static int64_t distinct_offset(const mm_side *s, const mm_plan *p, int64_t idx) {
  int64_t off = 0;
  for (int d = p->nbatch - 1; d >= 0; d--) {
    off += idx % s->bdim[d] * s->bstride[d];
    idx /= s->bdim[d];
  }
  return off;
}

/* Whether a's rows over all batches sit `ld` apart (one row-major matrix of
 * nbat * m rows), and that ld. */
static bool stackable(const mm_side *a, const mm_plan *p, int64_t *ld_out) {
  if (a->cols > 1 && a->cs != 1)
    return false;
  int64_t ld = -1, inner = 1;
  int64_t sizes[MM_NB + 1], strides[MM_NB + 1];
  int n = 0;
  sizes[n] = a->rows;
  strides[n++] = a->rs;
  for (int d = p->nbatch - 1; d >= 0; d--) {
    sizes[n] = p->batch[d];
    strides[n++] = a->bdim[d] > 1 ? a->bstride[d] : -1;
  }
  for (int i = 0; i < n; i++) {
    if (sizes[i] == 1)
      continue;
    if (strides[i] < 0)
      return false; /* broadcast over this dimension: rows repeat */
    if (ld < 0) {
      if (strides[i] % inner != 0)
        return false;
      ld = strides[i] / inner;
    }
    if (strides[i] != ld * inner)
      return false;
    inner *= sizes[i];
  }
  if (ld < 0)
    ld = a->cols;
  if (ld < a->cols)
    return false;
  *ld_out = ld;
  return true;
}

/* Whether op(a) x op(b) suits the f16-product GEMM: f32 activations
 * with contiguous rows times one f16 or bf16 weight whose rows (op(b)'s
 * columns) are contiguous. */
static bool f16_products_fit(const mm_plan *p) {
  const mm_side *a = &p->a, *b = &p->b;
  return a->dtype == VZ_F32 && (b->dtype == VZ_F16 || b->dtype == VZ_BF16) &&
         (a->cs == 1 || p->k == 1) && (b->rs == 1 || p->k == 1) && b->count == 1 && p->k > 0 &&
         p->m * p->nbat > 0 && p->n > 0;
}

/* Plans op(ta) x op(tb) for the path `isa`, whose vector kernels are
 * `simd` (its packed GEMM, if any, may run it). */
static void make_plan(const vz_tensor *ta, const vz_tensor *tb, bool trans_a, bool trans_b,
                      vz_cpu_isa isa, const vz_cpu_simd *simd, mm_plan *p) {
  memset(p, 0, sizeof *p);
  p->nbatch = (ta->ndim > tb->ndim ? ta->ndim : tb->ndim) - 2;
  p->nbat = 1;
  for (int d = 0; d < p->nbatch; d++) {
    int ja = d - (p->nbatch - (ta->ndim - 2)), jb = d - (p->nbatch - (tb->ndim - 2));
    int64_t sa = ja >= 0 ? ta->shape[ja] : 1, sb = jb >= 0 ? tb->shape[jb] : 1;
    p->batch[d] = sa > sb ? sa : sb;
    p->nbat *= p->batch[d];
  }
  init_side(&p->a, ta, trans_a, p);
  init_side(&p->b, tb, trans_b, p);
  mm_side *a = &p->a, *b = &p->b;
  p->m = a->rows;
  p->k = a->cols;
  p->n = b->cols;
  p->bf16 = a->dtype == VZ_BF16 || b->dtype == VZ_BF16;
  p->f16 = !p->bf16 && (a->dtype == VZ_F16 || b->dtype == VZ_F16);
  a->round_bf16 = p->bf16 && a->dtype != VZ_BF16;
  b->round_bf16 = p->bf16 && b->dtype != VZ_BF16;
  a->direct = gemm_layout(a->rows, a->cols, a->rs, a->cs, false, &a->trans, &a->ld);
  b->direct = gemm_layout(b->rows, b->cols, b->rs, b->cs, true, &b->trans, &b->ld);

  if (p->bf16 && bf16_primitive_available()) {
    /* bf16 operands are read in place when their strides allow; the others
     * are rounded into bf16 copies. */
    p->primitive = true;
    a->copy = a->dtype != VZ_BF16 || !a->direct;
    b->copy = b->dtype != VZ_BF16 || !b->direct;
    p->collapse = p->nbat > 1 && b->count == 1 && (a->copy || stackable(a, p, &p->collapse_ld));
    p->kernel = "onednn_bf16_matmul";
    return;
  }

  if (simd->gemm_tile && b->count == 1 && p->m * p->nbat >= PACKED_MIN_ROWS) {
    /* one b for every row of a: a's batches are simply more rows */
    p->packed = true;
    p->kernel = "packed_sgemm";
    return;
  }

  bool a_f32 = a->dtype == VZ_F32 && !a->round_bf16, b_f32 = b->dtype == VZ_F32 && !b->round_bf16;
  bool packed = (a_f32 && !a->direct) || (b_f32 && !b->direct);
  a->copy = !a_f32 || !a->direct;
  b->copy = !b_f32 || !b->direct;
  p->collapse = p->nbat > 1 && b->count == 1 && (a->copy || stackable(a, p, &p->collapse_ld));
  bool padded = false;
  if (!a->copy) {
    int64_t ld = p->collapse ? p->collapse_ld : a->ld;
    int64_t lines = a->trans == 'N' ? p->m * (p->collapse ? p->nbat : 1) : p->k;
    if (aliasing(ld, lines, a->trans == 'N' ? p->k : p->m))
      a->copy = padded = true;
  }
  if (!b->copy && aliasing(b->ld, b->trans == 'N' ? p->k : p->n, b->trans == 'N' ? p->n : p->k))
    b->copy = padded = true;
  p->kernel = p->bf16  ? "bf16_widen_sgemm"
              : p->f16 ? "f16_widen_sgemm"
              : packed ? "onednn_sgemm_packed"
              : padded ? "onednn_sgemm_padded"
                       : "onednn_sgemm";
  if (isa >= VZ_ISA_AVX512_FP16 && f16_products_fit(p)) {
    p->f16_products = true;
    p->kernel = p->bf16 ? "bf16_f16_products_avx512fp16" : "f16_products_avx512fp16";
  }
}

/* ---- Row conversions ---- */

static inline float round_to_bf16(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  if ((u & 0x7fffffffu) > 0x7f800000u)
    u |= 0x00400000u; /* quiet NaN, as vz_f32_to_bf16 */
  else
    u += 0x7fffu + ((u >> 16) & 1u);
  u &= 0xffff0000u;
  memcpy(&f, &u, sizeof f);
  return f;
}

/* dst[j] = src[j * step] as f32 (exactly), then rounded to bf16 precision
 * when `round`; src holds `dtype` elements. */
static void widen_row(const vz_cpu *cpu, const char *src, vz_dtype dtype, int64_t step, bool round,
                      float *dst, int64_t n) {
  if (dtype == VZ_F32) {
    const float *s = (const float *)src;
    if (step == 1 && !round) {
      memcpy(dst, s, (size_t)n * sizeof *dst);
    } else if (step == 1) {
      for (int64_t j = 0; j < n; j++)
        dst[j] = round_to_bf16(s[j]);
    } else {
      for (int64_t j = 0; j < n; j++)
        dst[j] = round ? round_to_bf16(s[j * step]) : s[j * step];
    }
    return;
  }
  const uint16_t *h = (const uint16_t *)src;
  if (dtype == VZ_BF16) {
    if (step == 1 && cpu->simd->bf16_to_f32) {
      cpu->simd->bf16_to_f32(h, dst, n);
    } else {
      for (int64_t j = 0; j < n; j++) {
        uint32_t u = (uint32_t)h[j * step] << 16;
        memcpy(&dst[j], &u, sizeof u);
      }
    }
    return; /* already bf16 precision */
  }
  if (step == 1 && cpu->simd->f16_to_f32) {
    cpu->simd->f16_to_f32(h, dst, n);
  } else {
    for (int64_t j = 0; j < n; j++)
      dst[j] = vz_f16_to_f32(h[j * step]);
  }
  if (round)
    for (int64_t j = 0; j < n; j++)
      dst[j] = round_to_bf16(dst[j]);
}

/* dst[j] = src[j * step] rounded to bf16 (bf16 elements are copied). */
static void narrow_row(const vz_cpu *cpu, const char *src, vz_dtype dtype, int64_t step,
                       uint16_t *dst, int64_t n, float *tmp) {
  if (dtype == VZ_BF16) {
    const uint16_t *h = (const uint16_t *)src;
    for (int64_t j = 0; j < n; j++)
      dst[j] = h[j * step];
    return;
  }
  const float *f = (const float *)src;
  if (dtype == VZ_F16 || step != 1) {
    widen_row(cpu, src, dtype, step, false, tmp, n);
    f = tmp;
  }
  if (cpu->simd->f32_to_bf16) {
    cpu->simd->f32_to_bf16(f, dst, n);
  } else {
    for (int64_t j = 0; j < n; j++)
      dst[j] = vz_f32_to_bf16(f[j]);
  }
}

/* ---- Running ---- */

static void *scratch_alloc(size_t bytes) { return aligned_alloc(64, (bytes + 63) / 64 * 64 + 64); }

/* Copies a's distinct matrices, widened and rounded as planned, row-major
 * with leading dimension ld, one after the other. */
static void fill_a(const vz_cpu *cpu, const mm_plan *p, float *dst, int64_t ld, int threads) {
  const mm_side *a = &p->a;
  size_t es = vz_dtype_size(a->dtype);
  int64_t rows = a->count * p->m;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t r = 0; r < rows; r++) {
    int64_t idx = r / p->m, i = r % p->m;
    const char *src = a->data + (size_t)(distinct_offset(a, p, idx) + i * a->rs) * es;
    widen_row(cpu, src, a->dtype, a->cs, a->round_bf16, dst + r * ld, p->k);
  }
}

/* Panel of op(b)'s columns [n0, n0 + nn) (k rows) for the matrix at element
 * offset `off`, as oneDNN's B: trans 'T' holds column j at dst + j * ld,
 * 'N' row r at dst + r * ld. */
static void load_panel(const vz_cpu *cpu, const mm_plan *p, int64_t off, int64_t n0, int64_t nn,
                       char trans, float *dst, int64_t ld) {
  const mm_side *b = &p->b;
  size_t es = vz_dtype_size(b->dtype);
  if (trans == 'T') {
    for (int64_t j = 0; j < nn; j++)
      widen_row(cpu, b->data + (size_t)(off + (n0 + j) * b->cs) * es, b->dtype, b->rs,
                b->round_bf16, dst + j * ld, p->k);
  } else {
    for (int64_t r = 0; r < p->k; r++)
      widen_row(cpu, b->data + (size_t)(off + r * b->rs + n0 * b->cs) * es, b->dtype, b->cs,
                b->round_bf16, dst + r * ld, nn);
  }
}

static vz_status gemm_failed(dnnl_status_t s) {
  return vz_fail(VZ_ERR_BACKEND, "oneDNN sgemm failed (status %d)", (int)s);
}

/* Column chunks per matrix: about PANEL_COLUMNS wide, enough of them to
 * give every thread the same number when there are few batches. */
static int64_t panel_width(int64_t n, int64_t batches, int threads) {
  int64_t np = (n + PANEL_COLUMNS - 1) / PANEL_COLUMNS;
  while ((np * batches) % threads != 0 && np < n)
    np++;
  int64_t nb = (n + np - 1) / np;
  if (nb > 8)
    nb = (nb + 7) / 8 * 8;
  return nb;
}

/* Tiles: each task multiplies all rows of a by a chunk of b's columns with
 * a single-threaded sgemm (oneDNN runs on one thread inside a parallel
 * region), reading b in place or through its own converted panel. For the
 * few rows of transformer layers this beats oneDNN's own threading. */
static vz_status run_tiles(const vz_cpu *cpu, const mm_plan *p, const float *ascr, char ta,
                           int64_t lda, float *c, int threads) {
  const mm_side *a = &p->a, *b = &p->b;
  int64_t m = p->m, n = p->n, k = p->k;
  int64_t nbat = p->collapse ? 1 : p->nbat, mm = p->collapse ? m * p->nbat : m;
  int64_t nb = panel_width(n, nbat, threads);
  int64_t nchunks = (n + nb - 1) / nb, tasks = nbat * nchunks;
  /* A converted panel keeps b's orientation: k contiguous ('T') unless b is
   * row-major [K, N]. */
  char tb = b->copy ? (b->direct && b->trans == 'N' && b->cs == 1 ? 'N' : 'T') : b->trans;
  int64_t ldp = tb == 'T' ? scratch_ld(k) : scratch_ld(nb);
  size_t per_thread = b->copy ? (size_t)(tb == 'T' ? nb * ldp : k * ldp) : 0;
  if (tasks < threads)
    threads = (int)tasks;
  float *bscr = NULL;
  if (b->copy && !(bscr = scratch_alloc(per_thread * (size_t)threads * sizeof *bscr)))
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory for panels of b");
  int failed = 0;
#pragma omp parallel num_threads(threads)
  {
    float *panel = bscr ? bscr + per_thread * (size_t)omp_get_thread_num() : NULL;
#pragma omp for schedule(static)
    for (int64_t t = 0; t < tasks; t++) {
      int64_t ob = t / nchunks, n0 = t % nchunks * nb;
      int64_t nn = n - n0 < nb ? n - n0 : nb;
      int64_t boff = side_offset(b, p, ob, NULL);
      const float *bp;
      int64_t ldb;
      if (b->copy) {
        load_panel(cpu, p, boff, n0, nn, tb, panel, ldp);
        bp = panel;
        ldb = ldp;
      } else { /* column n0: row n0 of a 'T' matrix, column n0 of an 'N' one */
        bp = (const float *)b->data + boff + n0 * (tb == 'T' ? b->ld : 1);
        ldb = b->ld;
      }
      const float *ap = ascr ? ascr + index_of(a, p, ob) * m * lda
                             : (const float *)a->data + side_offset(a, p, ob, NULL);
      dnnl_status_t s =
          dnnl_sgemm(ta, tb, mm, nn, k, 1.0f, ap, lda, bp, ldb, 0.0f, c + ob * m * n + n0, n);
      if (s != dnnl_success) {
#pragma omp atomic write
        failed = (int)s;
      }
    }
  }
  free(bscr);
  return failed ? gemm_failed((dnnl_status_t)failed) : VZ_OK;
}

/* oneDNN's threaded sgemm per matrix, b converted BIG_PANEL columns at a
 * time by all threads when it needs a copy. */
static vz_status run_big(const vz_cpu *cpu, const mm_plan *p, const float *ascr, char ta,
                         int64_t lda, float *c, int threads) {
  const mm_side *a = &p->a, *b = &p->b;
  int64_t m = p->m, n = p->n, k = p->k;
  int64_t nbat = p->collapse ? 1 : p->nbat, mm = p->collapse ? m * p->nbat : m;
  char tb = b->copy ? (b->direct && b->trans == 'N' && b->cs == 1 ? 'N' : 'T') : b->trans;
  int64_t nb = b->copy && n > BIG_PANEL ? BIG_PANEL : n;
  int64_t ldp = tb == 'T' ? scratch_ld(k) : scratch_ld(nb);
  float *bscr = NULL;
  if (b->copy && !(bscr = scratch_alloc((size_t)(tb == 'T' ? nb * ldp : k * ldp) * sizeof *bscr)))
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory for panels of b");
  vz_status st = VZ_OK;
  for (int64_t ob = 0; ob < nbat && st == VZ_OK; ob++) {
    const float *ap = ascr ? ascr + index_of(a, p, ob) * m * lda
                           : (const float *)a->data + side_offset(a, p, ob, NULL);
    int64_t boff = side_offset(b, p, ob, NULL);
    for (int64_t n0 = 0; n0 < n && st == VZ_OK; n0 += nb) {
      int64_t nn = n - n0 < nb ? n - n0 : nb;
      const float *bp = (const float *)b->data + boff;
      int64_t ldb = b->ld;
      if (b->copy) {
        int64_t lines = tb == 'T' ? nn : k;
#pragma omp parallel for num_threads(threads) schedule(static)
        for (int64_t r = 0; r < lines; r++) { /* a line (row or column) at a time */
          if (tb == 'T')
            load_panel(cpu, p, boff, n0 + r, 1, 'T', bscr + r * ldp, ldp);
          else
            widen_row(cpu,
                      b->data + (size_t)(boff + r * b->rs + n0 * b->cs) * vz_dtype_size(b->dtype),
                      b->dtype, b->cs, b->round_bf16, bscr + r * ldp, nn);
        }
        bp = bscr;
        ldb = ldp;
      }
      dnnl_status_t s =
          dnnl_sgemm(ta, tb, mm, nn, k, 1.0f, ap, lda, bp, ldb, 0.0f, c + ob * m * n + n0, n);
      if (s != dnnl_success)
        st = gemm_failed(s);
    }
  }
  free(bscr);
  return st;
}

static vz_status run_sgemm(const vz_cpu *cpu, const mm_plan *p, float *c, int threads) {
  const mm_side *a = &p->a;
  int64_t k = p->k;
  float *ascr = NULL;
  char ta = a->trans;
  int64_t lda = p->collapse ? p->collapse_ld : a->ld;
  if (a->copy) {
    ta = 'N';
    lda = scratch_ld(k);
    ascr = scratch_alloc((size_t)(a->count * p->m * lda) * sizeof *ascr);
    if (!ascr)
      return vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory for a copy of a");
    fill_a(cpu, p, ascr, lda, threads);
  }
  /* Tiles for few rows when b is converted anyway, when there are several
   * GEMMs, or for a weight [N, K] read in place on AVX2 processors; oneDNN
   * threads the rest (its AVX-512 kernels and its row-major [K, N] path do
   * better alone: on a Xeon with 2 threads 234 against 174 GFLOP/s for
   * 257x1408x1408 with b [K, N]). */
  int64_t rows = p->collapse ? p->m * p->nbat : p->m;
  bool several = !p->collapse && p->nbat > 1;
  bool tiles = rows <= TILE_MAX_ROWS &&
               (p->b.copy || several || (p->b.trans == 'T' && cpu->isa < VZ_ISA_AVX512));
  vz_status st = tiles ? run_tiles(cpu, p, ascr, ta, lda, c, threads)
                       : run_big(cpu, p, ascr, ta, lda, c, threads);
  free(ascr);
  return st;
}

/* bf16 copies for the primitive: a's distinct matrices row-major (leading
 * dimension lda), b's with columns contiguous (leading dimension ldb). */
static void fill_bf16(const vz_cpu *cpu, const mm_plan *p, uint16_t *ascr, int64_t lda,
                      uint16_t *bscr, int64_t ldb, float *tmp, int threads) {
  const mm_side *a = &p->a, *b = &p->b;
  int64_t arows = ascr ? a->count * p->m : 0, brows = bscr ? b->count * p->n : 0;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t r = 0; r < arows + brows; r++) {
    float *t = tmp + (size_t)omp_get_thread_num() * (size_t)p->k;
    if (r < arows) {
      int64_t idx = r / p->m, i = r % p->m;
      const char *src =
          a->data + (size_t)(distinct_offset(a, p, idx) + i * a->rs) * vz_dtype_size(a->dtype);
      narrow_row(cpu, src, a->dtype, a->cs, ascr + r * lda, p->k, t);
    } else {
      int64_t idx = (r - arows) / p->n, j = (r - arows) % p->n;
      const char *src =
          b->data + (size_t)(distinct_offset(b, p, idx) + j * b->cs) * vz_dtype_size(b->dtype);
      narrow_row(cpu, src, b->dtype, b->rs, bscr + (r - arows) * ldb, p->k, t);
    }
  }
}

static vz_status dnnl_failed(const char *what, dnnl_status_t s) {
  return vz_fail(VZ_ERR_BACKEND, "oneDNN bf16 matmul: %s failed (status %d)", what, (int)s);
}

static vz_status run_primitive(const vz_cpu *cpu, const mm_plan *p, float *c, int threads) {
  const mm_side *a = &p->a, *b = &p->b;
  int64_t m = p->m, n = p->n, k = p->k;
  int64_t lda = scratch_ld(k), ldb = scratch_ld(k);
  uint16_t *ascr = NULL, *bscr = NULL;
  float *tmp = NULL;
  vz_status st = VZ_OK;
  if (a->copy)
    ascr = scratch_alloc((size_t)(a->count * m * lda) * sizeof *ascr);
  if (b->copy)
    bscr = scratch_alloc((size_t)(b->count * n * ldb) * sizeof *bscr);
  tmp = scratch_alloc((size_t)threads * (size_t)k * sizeof *tmp);
  if ((a->copy && !ascr) || (b->copy && !bscr) || !tmp) {
    st = vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory for bf16 copies");
    goto done;
  }
  fill_bf16(cpu, p, ascr, lda, bscr, ldb, tmp, threads);
  /* Strides of op(a) and op(b) as oneDNN reads them. */
  int64_t ars = 1, acs = 1, brs = 1, bcs = 1;
  if (a->copy)
    ars = lda;
  else if (p->collapse)
    ars = p->collapse_ld;
  else if (a->trans == 'N')
    ars = a->ld;
  else
    acs = a->ld;
  if (b->copy)
    bcs = ldb;
  else if (b->trans == 'N')
    brs = b->ld;
  else
    bcs = b->ld;
  int64_t nbat = p->collapse ? 1 : p->nbat, mm = p->collapse ? m * p->nbat : m;
  dnnl_stream_t stream = NULL;
  dnnl_status_t s = dnnl_stream_create(&stream, bf16_engine, dnnl_stream_default_flags);
  if (s != dnnl_success) {
    st = dnnl_failed("stream creation", s);
    goto done;
  }
  for (int64_t ob = 0; ob < nbat && st == VZ_OK; ob++) {
    int64_t ia, ib;
    int64_t aoff = side_offset(a, p, ob, &ia), boff = side_offset(b, p, ob, &ib);
    void *ap = a->copy ? (void *)(ascr + ia * m * lda) : (void *)(a->data + aoff * 2);
    void *bp = b->copy ? (void *)(bscr + ib * n * ldb) : (void *)(b->data + boff * 2);
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t prim = NULL;
    dnnl_memory_t mem[3] = {NULL, NULL, NULL};
    s = bf16_pd(&pd, mm, n, k, ars, acs, brs, bcs, n);
    if (s == dnnl_success)
      s = dnnl_primitive_create(&prim, pd);
    if (s == dnnl_success) {
      const dnnl_memory_desc_t *md[3] = {dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0),
                                         dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0),
                                         dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0)};
      void *ptr[3] = {ap, bp, c + ob * m * n};
      for (int i = 0; i < 3 && s == dnnl_success; i++)
        s = dnnl_memory_create(&mem[i], md[i], bf16_engine, ptr[i]);
    }
    if (s == dnnl_success) {
      dnnl_exec_arg_t args[3] = {
          {DNNL_ARG_SRC, mem[0]}, {DNNL_ARG_WEIGHTS, mem[1]}, {DNNL_ARG_DST, mem[2]}};
      s = dnnl_primitive_execute(prim, stream, 3, args);
      if (s == dnnl_success)
        s = dnnl_stream_wait(stream);
    }
    if (s != dnnl_success)
      st = dnnl_failed("execution", s);
    for (int i = 0; i < 3; i++)
      dnnl_memory_destroy(mem[i]);
    dnnl_primitive_destroy(prim);
    dnnl_primitive_desc_destroy(pd);
  }
  dnnl_stream_destroy(stream);
done:
  free(tmp);
  free(bscr);
  free(ascr);
  return st;
}

/* ---- The packed GEMM ---- */

/* Where the packed GEMM writes, and the Linear epilogue it applies. */
typedef struct packed_out {
  float *c;              /* rows of n floats, one after the other */
  bool accumulate;       /* c holds a residual already: add the product to it */
  const float *bias;     /* contiguous [n], or NULL */
  vz_op_kind activation; /* VZ_OP_COUNT: none */
  const float *residual; /* [rows, n], rows residual_ld apart, or NULL */
  int64_t residual_ld;
} packed_out;

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* Row r of op(a), counting the rows of every batch in order. */
static const char *a_row(const mm_plan *p, int64_t r) {
  const mm_side *a = &p->a;
  int64_t off = side_offset(a, p, r / p->m, NULL) + r % p->m * a->rs;
  return a->data + (size_t)off * vz_dtype_size(a->dtype);
}

/* Packs rows [r0, r0 + rows) of op(a) (rows <= VZ_GEMM_MR; the sliver's
 * other rows are zero) as sliver `sliver` of a block of `padded` rows: the
 * chunk of steps [k0, k0 + kc) of every sliver lies at block + k0 * padded,
 * sliver after sliver. `tmp` holds VZ_GEMM_MR rows of K floats. */
static void pack_a_sliver(const vz_cpu *cpu, const mm_plan *p, int64_t r0, int rows, float *block,
                          int64_t padded, int64_t sliver, int64_t kc_max, float *tmp) {
  const mm_side *a = &p->a;
  const int64_t k = p->k;
  const float *src[VZ_GEMM_MR];
  for (int q = 0; q < VZ_GEMM_MR; q++) {
    float *row = tmp + q * k;
    if (q >= rows) {
      memset(row, 0, (size_t)k * sizeof *row);
      src[q] = row;
    } else if (a->dtype == VZ_F32 && a->cs == 1 && !a->round_bf16) {
      src[q] = (const float *)a_row(p, r0 + q);
    } else {
      widen_row(cpu, a_row(p, r0 + q), a->dtype, a->cs, a->round_bf16, row, k);
      src[q] = row;
    }
  }
  for (int64_t k0 = 0; k0 < k; k0 += kc_max) {
    int64_t kc = min64(kc_max, k - k0);
    const float *at[VZ_GEMM_MR];
    for (int q = 0; q < VZ_GEMM_MR; q++)
      at[q] = src[q] + k0;
    cpu->simd->gemm_pack_a(at, kc, block + k0 * padded + sliver * VZ_GEMM_MR * kc);
  }
}

/* Packs columns [j, j + cols) of op(b), steps [k0, k0 + kc), into dst
 * (gemm_nr floats per step, zeros past cols). `tmp` holds gemm_nr x kc
 * floats. */
static void pack_b_panel(const vz_cpu *cpu, const mm_plan *p, int64_t j, int cols, int64_t k0,
                         int64_t kc, float *dst, float *tmp) {
  const mm_side *b = &p->b;
  const int nr = cpu->simd->gemm_nr;
  const size_t es = vz_dtype_size(b->dtype);
  if (b->rs == 1) { /* a weight [N, K]: each column of op(b) is a row of K */
    if (b->dtype == VZ_F32 && !b->round_bf16) {
      cpu->simd->gemm_pack_bt((const float *)b->data + j * b->cs + k0, b->cs, cols, kc, dst);
      return;
    }
    for (int q = 0; q < cols; q++)
      widen_row(cpu, b->data + (size_t)((j + q) * b->cs + k0) * es, b->dtype, 1, b->round_bf16,
                tmp + q * kc, kc);
    cpu->simd->gemm_pack_bt(tmp, kc, cols, kc, dst);
    return;
  }
  for (int64_t k = 0; k < kc; k++) { /* [K, N] (or any strides): a row of op(b) per step */
    float *row = dst + k * nr;
    widen_row(cpu, b->data + (size_t)((k0 + k) * b->rs + j * b->cs) * es, b->dtype, b->cs,
              b->round_bf16, row, cols);
    for (int q = cols; q < nr; q++)
      row[q] = 0.0f;
  }
}

static vz_status run_packed(const vz_cpu *cpu, const mm_plan *p, const packed_out *out,
                            int threads) {
  const int mr = VZ_GEMM_MR, nr = cpu->simd->gemm_nr;
  const int64_t rows = p->m * p->nbat, n = p->n, k = p->k;
  const int64_t chunks = (k + PACKED_KC - 1) / PACKED_KC, kc_max = (k + chunks - 1) / chunks;
  const int64_t block_rows = min64(rows, PACKED_BLOCK_ROWS);
  const int64_t padded = (block_rows + mr - 1) / mr * mr, panels = (n + nr - 1) / nr;
  if (panels < threads)
    threads = (int)panels;
  const size_t per_thread = (size_t)(2 * nr * kc_max + mr * k);
  float *apack = scratch_alloc((size_t)(padded * k) * sizeof *apack);
  float *scratch = scratch_alloc(per_thread * (size_t)threads * sizeof *scratch);
  if (!apack || !scratch) {
    free(apack);
    free(scratch);
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory for the packed GEMM's panels");
  }
  const bool epilogue = out->bias || out->activation != VZ_OP_COUNT || out->residual;
  for (int64_t r0 = 0; r0 < rows; r0 += block_rows) {
    const int64_t slivers = (min64(block_rows, rows - r0) + mr - 1) / mr;
#pragma omp parallel num_threads(threads)
    {
      float *panel = scratch + per_thread * (size_t)omp_get_thread_num();
      float *btmp = panel + nr * kc_max, *atmp = btmp + nr * kc_max;
#pragma omp for schedule(dynamic, 4)
      for (int64_t s = 0; s < slivers; s++) {
        int64_t i = r0 + s * mr;
        pack_a_sliver(cpu, p, i, (int)min64(mr, rows - i), apack, padded, s, kc_max, atmp);
      }
      /* one panel of b per task, all of a's slivers under it */
#pragma omp for schedule(dynamic, 1)
      for (int64_t t = 0; t < panels; t++) {
        int64_t j = t * nr;
        int cols = (int)min64(nr, n - j);
        for (int64_t k0 = 0; k0 < k; k0 += kc_max) {
          int64_t kc = min64(kc_max, k - k0);
          bool last = k0 + kc == k, accumulate = k0 > 0 || out->accumulate;
          pack_b_panel(cpu, p, j, cols, k0, kc, panel, btmp);
          const float *ablock = apack + k0 * padded;
          for (int64_t s = 0; s < slivers; s++) {
            int64_t i = r0 + s * mr;
            vz_gemm_epilogue ep = {
                .bias = out->bias ? out->bias + j : NULL,
                .activation = out->activation,
                .residual = out->residual ? out->residual + i * out->residual_ld + j : NULL,
                .residual_ld = out->residual_ld,
            };
            cpu->simd->gemm_tile(kc, ablock + s * mr * kc, 0, panel, out->c + i * n + j, n,
                                 (int)min64(mr, rows - i), cols, accumulate,
                                 last && epilogue ? &ep : NULL);
          }
        }
      }
    }
  }
  free(apack);
  free(scratch);
  return VZ_OK;
}

/* ---- Entry points ---- */

static bool matmul_dtype(vz_dtype d) { return d == VZ_F32 || d == VZ_F16 || d == VZ_BF16; }

static bool operands_supported(const vz_tensor *a, const vz_tensor *b) {
  return a && b && matmul_dtype(a->dtype) && matmul_dtype(b->dtype) && vz_cpu_data(a) &&
         vz_cpu_data(b);
}

bool vz_cpu_matmul_supports(const vz_op_call *call) {
  const vz_tensor *a = call->inputs[0], *b = call->inputs[1];
  return operands_supported(a, b) && a->ndim >= 2 && b->ndim >= 2;
}

/* The vector path a CPU backend made now would use (VLZOO_CPU_ISA
 * included). */
static vz_cpu_isa current_isa(void) {
  vz_cpu_isa isa;
  return vz_cpu_select_isa(&isa) == VZ_OK ? isa : VZ_ISA_SCALAR;
}

const char *vz_cpu_matmul_kernel_name(const vz_op_call *call) {
  if (!call || call->op != VZ_OP_MATMUL || call->n_inputs < 2 || !vz_cpu_matmul_supports(call))
    return NULL;
  mm_plan p;
  vz_cpu_isa isa = current_isa();
  make_plan(call->inputs[0], call->inputs[1], call->attrs.matmul.trans_a,
            call->attrs.matmul.trans_b, isa, vz_cpu_simd_of(isa), &p);
  return p.kernel;
}

const char *vz_cpu_linear_kernel_name(const vz_tensor *x, const vz_tensor *w) {
  vz_op_call call = {.op = VZ_OP_MATMUL, .n_inputs = 2, .inputs = {x, w}, .n_outputs = 1};
  call.attrs.matmul.trans_b = true;
  return vz_cpu_matmul_kernel_name(&call);
}

static int plan_threads(const vz_cpu *cpu, const mm_plan *p) {
  return vz_cpu_threads_for(cpu, p->m * p->n * p->k / 16 * p->nbat);
}

/* The product into c (contiguous, [batches..., m, n]) by the plan's
 * oneDNN strategy. */
static vz_status run_onednn(const vz_cpu *cpu, const mm_plan *p, float *c) {
  if (p->k == 0) { /* empty sums */
    memset(c, 0, (size_t)(p->nbat * p->m * p->n) * sizeof *c);
    return VZ_OK;
  }
  int threads = plan_threads(cpu, p);
  int saved = omp_get_max_threads();
  omp_set_num_threads(threads);
  vz_status st = p->primitive ? run_primitive(cpu, p, c, threads) : run_sgemm(cpu, p, c, threads);
  omp_set_num_threads(saved);
  return st;
}

/* The plan's f16-product GEMM into c; false (c then undefined) when a's
 * values or the products leave f16's range, a bf16 weight row is too small
 * for f16, or on a failed allocation: the caller then takes the widening
 * path. */
static bool run_f16_products(const vz_cpu *cpu, const mm_plan *p, float *c) {
  const int64_t rows = p->m * p->nbat, lda = (p->k + 31) / 32 * 32; /* whole cache lines */
  uint16_t *ah = scratch_alloc((size_t)(rows * lda) * sizeof *ah);
  if (!ah)
    return false;
  int threads = plan_threads(cpu, p);
  bool ok = true;
  for (int64_t ob = 0; ob < p->nbat && ok; ob++)
    ok = vz_cpu_f16_round_rows((const float *)a_row(p, ob * p->m), p->a.rs, p->m, p->k,
                               ah + ob * p->m * lda, lda, vz_cpu_threads_for(cpu, p->m * p->k));
  ok = ok && vz_cpu_gemm_f16(ah, lda, (const uint16_t *)p->b.data, p->b.cs, p->b.dtype == VZ_BF16,
                             rows, p->n, p->k, c, p->n, threads);
  free(ah);
  if (!ok)
    vz_log(VZ_LOG_DEBUG,
           "matmul %lldx%lldx%lld: values f16 cannot hold, recomputed on the widening path",
           (long long)rows, (long long)p->n, (long long)p->k);
  return ok;
}

/* The product into c (contiguous, [batches..., m, n]): f16 products when
 * planned and in range, else oneDNN. */
static vz_status run_product(const vz_cpu *cpu, const mm_plan *p, float *c) {
  if (p->f16_products && run_f16_products(cpu, p, c))
    return VZ_OK;
  return run_onednn(cpu, p, c);
}

vz_status vz_cpu_matmul(const vz_cpu *cpu, const vz_op_call *call) {
  mm_plan p;
  make_plan(call->inputs[0], call->inputs[1], call->attrs.matmul.trans_a,
            call->attrs.matmul.trans_b, cpu->isa, cpu->simd, &p);
  float *c = vz_cpu_data(call->outputs[0]);
  if (p.packed && p.k > 0) {
    packed_out out = {.c = c, .activation = VZ_OP_COUNT};
    return run_packed(cpu, &p, &out, plan_threads(cpu, &p));
  }
  return run_product(cpu, &p, c);
}

/* ---- linear: act(x w^T + bias) + residual ---- */

static bool is_activation(vz_op_kind op) {
  return op == VZ_OP_GELU_ERF || op == VZ_OP_GELU_TANH || op == VZ_OP_QUICK_GELU ||
         op == VZ_OP_SILU || op == VZ_OP_RELU || op == VZ_OP_SIGMOID || op == VZ_OP_COUNT;
}

bool vz_cpu_linear_supports(const vz_op_call *call) {
  const vz_tensor *x = call->inputs[0], *w = call->inputs[1];
  for (int i = 2; i < call->n_inputs; i++) {
    const vz_tensor *t = call->inputs[i];
    if (t && (t->dtype != VZ_F32 || !vz_cpu_data(t)))
      return false;
  }
  return operands_supported(x, w) && x->ndim >= 1 && w->ndim == 2 &&
         is_activation(call->attrs.linear.activation);
}

/* Offset of the first element of row r of t (an [..., n] tensor whose
 * rows are counted over every leading dimension). */
static int64_t row_offset(const vz_tensor *t, int64_t r) {
  int64_t off = 0;
  for (int d = t->ndim - 2; d >= 0; d--) {
    off += r % t->shape[d] * t->stride[d];
    r /= t->shape[d];
  }
  return off;
}

/* Whether t's rows are `*ld` floats apart with unit column stride. */
static bool uniform_rows(const vz_tensor *t, int64_t rows, int64_t *ld) {
  int64_t n = t->shape[t->ndim - 1];
  if (n > 1 && t->stride[t->ndim - 1] != 1)
    return false;
  int64_t step = rows > 1 ? row_offset(t, 1) : n;
  for (int64_t r = 0; r < rows; r++) /* a few thousand rows at most */
    if (row_offset(t, r) != r * step)
      return false;
  *ld = step;
  return true;
}

/* t ([..., n], f32, any strides) as contiguous rows. */
static void gather_rows(const vz_tensor *t, int64_t rows, float *dst) {
  const float *base = vz_cpu_data(t);
  int64_t n = t->shape[t->ndim - 1], cs = t->stride[t->ndim - 1];
  for (int64_t r = 0; r < rows; r++) {
    const float *src = base + row_offset(t, r);
    for (int64_t j = 0; j < n; j++)
      dst[r * n + j] = src[j * cs];
  }
}

vz_status vz_cpu_linear(const vz_cpu *cpu, const vz_op_call *call) {
  const vz_tensor *x = call->inputs[0], *w = call->inputs[1];
  const vz_tensor *bias = call->n_inputs > 2 ? call->inputs[2] : NULL;
  const vz_tensor *res = call->n_inputs > 3 ? call->inputs[3] : NULL;
  vz_tensor *y = call->outputs[0];
  vz_tensor x2;
  if (x->ndim == 1) { /* a vector: one row */
    x2 = *x;
    x2.ndim = 2;
    x2.shape[0] = 1;
    x2.stride[0] = x->shape[0];
    x2.shape[1] = x->shape[0];
    x2.stride[1] = x->stride[0];
    x = &x2;
  }
  mm_plan p;
  make_plan(x, w, false, true, cpu->isa, cpu->simd, &p);
  const int64_t rows = p.m * p.nbat, n = p.n;
  float *c = vz_cpu_data(y), *bias_copy = NULL, *res_copy = NULL;
  vz_status st = VZ_OK;
  packed_out out = {.c = c, .activation = call->attrs.linear.activation};
  if (bias) {
    out.bias = vz_cpu_data(bias);
    if (n > 1 && bias->stride[0] != 1) {
      if (!(bias_copy = malloc((size_t)n * sizeof *bias_copy)))
        goto oom;
      for (int64_t j = 0; j < n; j++)
        bias_copy[j] = out.bias[j * bias->stride[0]];
      out.bias = bias_copy;
    }
  }
  /* The residual may be the output itself (x += linear(h)). The packed
   * GEMM reads each residual tile just before writing it, or, when K takes
   * several passes, adds the product into it as it is summed (no
   * activation then); other cases read a copy. */
  bool packed = p.packed && p.k > 0;
  bool several_passes = p.k > PACKED_KC;
  bool in_place =
      res && res->buffer == y->buffer && res->offset == y->offset && vz_tensor_is_contiguous(res);
  if (in_place && packed && several_passes && out.activation == VZ_OP_COUNT) {
    out.accumulate = true;
  } else if (in_place && packed && !several_passes) {
    out.residual = c;
    out.residual_ld = n;
  } else if (res) {
    out.residual = vz_cpu_data(res);
    if (res->buffer == y->buffer || !uniform_rows(res, rows, &out.residual_ld)) {
      if (!(res_copy = malloc((size_t)(rows * n) * sizeof *res_copy)))
        goto oom;
      gather_rows(res, rows, res_copy);
      out.residual = res_copy;
      out.residual_ld = n;
    }
  }
  if (packed) {
    st = run_packed(cpu, &p, &out, plan_threads(cpu, &p));
  } else { /* f16 products or oneDNN's, then the epilogue row by row */
    st = run_product(cpu, &p, c);
    const vz_cpu_simd *simd = cpu->simd;
#pragma omp parallel for num_threads(vz_cpu_threads_for(cpu, rows *n * 4)) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
      float *row = c + r * n;
      if (st != VZ_OK)
        continue;
      if (out.bias)
        simd->binary(VZ_OP_ADD, row, 1, out.bias, 1, row, n);
      if (out.activation != VZ_OP_COUNT)
        simd->unary(out.activation, row, row, n, 0.0f);
      if (out.residual)
        simd->binary(VZ_OP_ADD, out.residual + r * out.residual_ld, 1, row, 1, row, n);
    }
  }
  free(bias_copy);
  free(res_copy);
  return st;
oom:
  free(bias_copy);
  free(res_copy);
  return vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory for linear's operands");
}

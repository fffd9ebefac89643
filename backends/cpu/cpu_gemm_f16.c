/* GEMM with f16 products for f16 and bf16 weights, on processors with
 * AVX512-FP16.
 *
 * vfmadd231ph does 32 half-precision FMAs where vfmadd231ps does 16 at the
 * same rate, so an f16 weight [N, K] times f16-rounded activations runs at
 * up to twice the f32 peak. (avx512_bf16's vdpbf16ps ran at half the rate
 * of f32 FMAs on the Xeon this was measured on, so bf16 arithmetic gains
 * nothing there; bf16 weights are converted to f16 instead, see below.)
 * Half precision is kept where it is harmless:
 *
 * - Each output is a dot product of a row of a with a row of w (the
 *   weight's rows are K contiguous halves). A tile of four rows of a keeps
 *   one accumulator lane set per output and sums it at the end; two tiles:
 *   - the pair tile (four rows by twelve weight rows), for blocks of 64
 *     rows of a and more: each accumulator's lanes 0..15 serve one weight
 *     row and lanes 16..31 the next, from a panel of the tile's weights
 *     copied once (interleaved in pairs, 16 steps at a time) and shared by
 *     all the block's rows; lane l sums steps k = l, l + 16, ... of a
 *     chunk of at most PAIR_CHUNK_STEPS, so at most 96 products in f16.
 *     Twice as many outputs share each reduction tree (a tenth of the row
 *     tile's time at K = 1408), and each vector of a serves twelve weight
 *     rows instead of six: the ViT-g GEMMs ran 5-14 % faster.
 *   - the row tile (four rows by six weight rows), for fewer rows of a:
 *     one 32-lane accumulator per output, the weight read in place; lane l
 *     sums steps k = l, l + 32, ... of a chunk of at most ROW_CHUNK_STEPS,
 *     at most 64 products. (With one row of a the pair tile ran at 0.7x
 *     the row tile's speed.)
 * - After each chunk the lanes of each output are summed by a fixed tree
 *   of f16 additions (four or five more roundings; summing in f32 instead
 *   cost a tenth of the tile's time), the totals widened and added to the
 *   f32 output; chunks follow each other in order. The result does not
 *   depend on the thread count.
 * - A product or lane sum past f16's range gives an infinity, which the
 *   tile notices; the caller then recomputes in f32. Activations past
 *   f16's range never get here (vz_cpu_f16_round_rows refuses them).
 * - A bf16 weight is converted to f16, a tile's weight rows and one chunk
 *   at a time, into an L1-resident panel that the tile's rows of a then
 *   share. bf16 keeps 8 significant bits, f16 11, so the conversion is
 *   exact from 2^-17 up to f16's largest value; a larger weight becomes
 *   infinite (and the tile notices, as above), a smaller one is off by at
 *   most 2^-25. So that this stays negligible, a row of a chunk that holds
 *   such a nonzero weight below 2^-17 must also hold one of magnitude 2^-6
 *   or more (then each weight is within 2^-19 of its row's largest); else
 *   the caller recomputes in f32. Where all 32 weights of a vector are in
 *   f16's normal range the conversion is a shift and an add of the bits;
 *   other vectors go through f32.
 *
 * Every function here runs AVX512-FP16 instructions: call only when
 * vz_cpu reports that path. */
#include "backends/cpu/cpu_gemm_f16.h"

#include <immintrin.h>
#include <omp.h>
#include <stdint.h>

enum {
  TILE_ROWS = 4, /* rows of a per tile */
  ROW_TILE_COLS = 6,
  PAIR_TILE_PAIRS = 6,
  PAIR_TILE_COLS = 2 * PAIR_TILE_PAIRS,
  LANES = 32,
  HALF = 16, /* steps per pair-tile block: half an accumulator */
  /* Steps of K per chunk at most: a chunk of a (257 rows) stays in L2 while
   * the tiles of every weight row pass over it, and a tile's weight rows
   * stay in L1 (six of 2048 steps: 24 KiB; a pair panel of twelve rows of
   * 1536: 36 KiB). Lanes then sum at most 64 or 96 products in f16. */
  ROW_CHUNK_STEPS = 2048,
  PAIR_CHUNK_STEPS = 1536,
  /* Rows of a per pass over the weight at most: a chunk of 260 rows is
   * 1 MiB; twice that (a batch of two images) spills L2 and ran at 0.6-0.7x
   * the speed. */
  BLOCK_ROWS = 260,
  PAIR_MIN_ROWS = 64, /* rows of a block for the pair tile */
  /* Halves between the rows of a row tile's converted bf16 panel: a chunk
   * and one cache line, so that the six rows do not fall in the same L1
   * sets. */
  ROW_PANEL_LD = ROW_CHUNK_STEPS + LANES,
  PAIR_PANEL_BLOCKS = PAIR_CHUNK_STEPS / HALF,
  /* Halves of a thread's panel: a pair tile's (a row tile's is smaller) */
  PANEL_HALVES = PAIR_PANEL_BLOCKS * PAIR_TILE_PAIRS * LANES,
  /* bf16 magnitudes (bits): 2^-17, below which f16 cannot hold every bf16
   * value; 2^-6, of which a row holding such values needs one (see the top
   * of the file); f16's least normal 2^-14, and the largest bf16 below
   * f16's largest (65280). */
  BF16_EXACT_MIN = 0x3700,
  BF16_ROW_FLOOR = 0x3c80,
  BF16_NORMAL_MIN = 0x3880,
  BF16_NORMAL_MAX = 0x477f,
};

_Static_assert(PANEL_HALVES >= ROW_TILE_COLS * ROW_PANEL_LD, "a row tile's panel must fit");

/* The largest finite f16. */
#define F16_MAX 65504.0f

typedef struct tile_args {
  const _Float16 *a; /* [rows] rows, lda apart */
  int64_t lda;
  const _Float16 *w; /* row tile: [cols] weight rows, ldw apart */
  int64_t ldw;
  const _Float16 *panel; /* pair tile: its panel (see pair_panel) */
  int64_t kc;
  float *c; /* [rows, cols], ldc apart */
  int64_t ldc;
  int rows, cols;
  bool first; /* store rather than add */
} tile_args;

/* Row r of a from a tile's rows (past the tile's size: the first). */
static const _Float16 *a_row(const tile_args *t, int r) {
  return t->a + (r < t->rows ? r : 0) * t->lda;
}

/* Weight row j of a row tile (past the tile's size: the first). */
static const _Float16 *weight_row(const tile_args *t, int j) {
  return t->w + (j < t->cols ? j : 0) * t->ldw;
}

/* Stores (or adds) the tile's sums, sums[r] lanes 0..cols-1 into row r of
 * c; returns whether one came out infinite or NaN. */
static bool store_sums(const tile_args *t, const __m512 sums[TILE_ROWS]) {
  const __mmask16 cols = (__mmask16)((1u << t->cols) - 1);
  __mmask16 bad = 0;
  for (int r = 0; r < t->rows; r++) {
    __m512 s = sums[r];
    float *out = t->c + r * t->ldc;
    if (!t->first)
      s = _mm512_add_ps(s, _mm512_maskz_loadu_ps(cols, out));
    _mm512_mask_storeu_ps(out, cols, s);
    __m512 d = _mm512_sub_ps(s, s); /* NaN where s is infinite or NaN */
    bad |= _mm512_mask_cmp_ps_mask(cols, d, d, _CMP_UNORD_Q);
  }
  return bad != 0;
}

#define AS_PH(v) _mm512_castsi512_ph(v)
#define AS_SI(v) _mm512_castph_si512(v)
/* 128-bit quarters of x and y picked by a shuffle_i64x2 immediate. */
#define QUARTERS(x, y, imm) AS_PH(_mm512_shuffle_i64x2(AS_SI(x), AS_SI(y), imm))
/* Pairs of 32-bit words of x and y per 128-bit lane, by a shuffle_ps immediate. */
#define WORDS(x, y, imm)                                                                           \
  AS_PH(_mm512_castps_si512(                                                                       \
      _mm512_shuffle_ps(_mm512_castsi512_ps(AS_SI(x)), _mm512_castsi512_ps(AS_SI(y)), imm)))

/* Levels of the reduction trees below, each halving n vectors: out[j]
 * packs in[2j] and in[2j + 1], each with its 256-bit halves' 128-bit
 * quarters added (quarters 0, 1 of out[j] from in[2j], 2, 3 from in[2j + 1]);
 * or each 128-bit quarter with its two 64-bit halves added (the low 64 bits
 * of a quarter of out[j] from in[2j], the high from in[2j + 1]). */
static inline void add_quarter_pairs(const __m512h *in, int n, __m512h *out) {
  for (int j = 0; j < n / 2; j++)
    out[j] = _mm512_add_ph(QUARTERS(in[2 * j], in[2 * j + 1], 0x88),
                           QUARTERS(in[2 * j], in[2 * j + 1], 0xdd));
}

static inline void add_half_quarter_pairs(const __m512h *in, int n, __m512h *out) {
  for (int j = 0; j < n / 2; j++)
    out[j] = _mm512_add_ph(AS_PH(_mm512_unpacklo_epi64(AS_SI(in[2 * j]), AS_SI(in[2 * j + 1]))),
                           AS_PH(_mm512_unpackhi_epi64(AS_SI(in[2 * j]), AS_SI(in[2 * j + 1]))));
}

/* ---- The row tile: 4 rows of a by 6 weight rows, 32 lanes an output ---- */

/* The sums of the 32 lanes of each of the tile's 24 accumulators (x[i]: row
 * i / 6, column i % 6), as f32: out[r] holds row r's six in lanes 0..5. One
 * fixed tree of f16 additions (five levels) that halves the number of
 * vectors at each level, so that the tile's 24 sums cost about as many
 * instructions as 24 vectors; only the 24 totals are widened. */
static inline void row_tile_sums(const __m512h x[TILE_ROWS * ROW_TILE_COLS],
                                 __m512 out[TILE_ROWS]) {
  /* 256-bit halves of pairs: z[p] = [x[2p] (16 lanes) | x[2p + 1]] */
  __m512h z[12], y[6], v[3];
  for (int p = 0; p < 12; p++)
    z[p] = _mm512_add_ph(QUARTERS(x[2 * p], x[2 * p + 1], 0x44),
                         QUARTERS(x[2 * p], x[2 * p + 1], 0xee));
  /* 128-bit quarters: quarter q of y[p] sums x[4p + q] (8 lanes) */
  add_quarter_pairs(z, 12, y);
  /* 64-bit halves of quarters: quarter q of v[p] sums x[8p + q] in its low
   * 64 bits and x[8p + 4 + q] in its high 64 bits (4 lanes each) */
  add_half_quarter_pairs(y, 6, v);
  /* then 32-bit and 16-bit neighbours: each total in the first lane of its
   * 64 bits, lane 8q (x[8p + q]) or 8q + 4 (x[8p + 4 + q]) of v[p] */
  for (int p = 0; p < 3; p++) {
    v[p] = _mm512_add_ph(v[p], AS_PH(_mm512_shuffle_epi32(AS_SI(v[p]), _MM_PERM_CDAB)));
    v[p] = _mm512_add_ph(v[p], AS_PH(_mm512_rol_epi32(AS_SI(v[p]), 16)));
  }
  /* the 24 totals in order: lanes 0..15 from v[0] and v[1], 16..23 from v[2] */
  static const uint16_t first[32] = {0,  8,  16, 24, 4,  12, 20, 28, 32, 40, 48,
                                     56, 36, 44, 52, 60, 16, 17, 18, 19, 20, 21};
  static const uint16_t second[32] = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
                                      12, 13, 14, 15, 32, 40, 48, 56, 36, 44, 52, 60};
  __m512i all = _mm512_permutex2var_epi16(AS_SI(v[0]), _mm512_loadu_si512(first), AS_SI(v[1]));
  all = _mm512_permutex2var_epi16(all, _mm512_loadu_si512(second), AS_SI(v[2]));
  __m512 lo = _mm512_cvtxph_ps(_mm256_castsi256_ph(_mm512_castsi512_si256(all)));
  __m512 hi = _mm512_cvtxph_ps(_mm256_castsi256_ph(_mm512_extracti64x4_epi64(all, 1)));
  /* row r: totals 6r .. 6r + 5 of lo (0..15) and hi (16..31) */
  for (int r = 0; r < TILE_ROWS; r++)
    out[r] = _mm512_permutex2var_ps(
        lo,
        _mm512_add_epi32(_mm512_set1_epi32(ROW_TILE_COLS * r),
                         _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)),
        hi);
}

/* A tile's 24 accumulators: c{r}{j} for row r of a and weight vector j. */
#define ZERO_ACCUMULATORS                                                                          \
  __m512h c00 = _mm512_setzero_ph(), c01 = c00, c02 = c00, c03 = c00, c04 = c00, c05 = c00;        \
  __m512h c10 = c00, c11 = c00, c12 = c00, c13 = c00, c14 = c00, c15 = c00;                        \
  __m512h c20 = c00, c21 = c00, c22 = c00, c23 = c00, c24 = c00, c25 = c00;                        \
  __m512h c30 = c00, c31 = c00, c32 = c00, c33 = c00, c34 = c00, c35 = c00
#define ACCUMULATORS                                                                               \
  {                                                                                                \
    c00, c01, c02, c03, c04, c05, c10, c11, c12, c13, c14, c15, c20, c21, c22, c23, c24, c25, c30, \
        c31, c32, c33, c34, c35                                                                    \
  }

/* Vector y of the weights times the four rows of a (x0..x3), into
 * accumulators c0j..c3j. */
#define TIMES_ROWS(j, y)                                                                           \
  do {                                                                                             \
    __m512h y_ = (y);                                                                              \
    c0##j = _mm512_fmadd_ph(x0, y_, c0##j);                                                        \
    c1##j = _mm512_fmadd_ph(x1, y_, c1##j);                                                        \
    c2##j = _mm512_fmadd_ph(x2, y_, c2##j);                                                        \
    c3##j = _mm512_fmadd_ph(x3, y_, c3##j);                                                        \
  } while (0)

/* One step of a tile (32 steps of K in the row tile, 16 in the pair tile):
 * a's rows by load_a, the six weight vectors by weight(j). */
#define TILE_STEP(load_a, weight)                                                                  \
  do {                                                                                             \
    __m512h x0 = load_a(a0 + k), x1 = load_a(a1 + k), x2 = load_a(a2 + k), x3 = load_a(a3 + k);    \
    TIMES_ROWS(0, weight(0));                                                                      \
    TIMES_ROWS(1, weight(1));                                                                      \
    TIMES_ROWS(2, weight(2));                                                                      \
    TIMES_ROWS(3, weight(3));                                                                      \
    TIMES_ROWS(4, weight(4));                                                                      \
    TIMES_ROWS(5, weight(5));                                                                      \
  } while (0)

#define LOAD_FULL(p) _mm512_loadu_ph(p)
#define LOAD_TAIL(p) AS_PH(_mm512_maskz_loadu_epi16(tail, p))
#define ROW_WEIGHT(j) LOAD_FULL(w##j + k)
#define ROW_WEIGHT_TAIL(j) LOAD_TAIL(w##j + k)

/* One chunk of a row tile into c; returns whether an output came out
 * infinite or NaN. Rows and columns past the tile's size repeat the first
 * and are not stored. */
static bool run_row_tile(const tile_args *t) {
  const _Float16 *a0 = a_row(t, 0), *a1 = a_row(t, 1), *a2 = a_row(t, 2), *a3 = a_row(t, 3);
  const _Float16 *w0 = weight_row(t, 0), *w1 = weight_row(t, 1), *w2 = weight_row(t, 2);
  const _Float16 *w3 = weight_row(t, 3), *w4 = weight_row(t, 4), *w5 = weight_row(t, 5);
  ZERO_ACCUMULATORS;
  int64_t k = 0;
  for (; k + LANES <= t->kc; k += LANES)
    TILE_STEP(LOAD_FULL, ROW_WEIGHT);
  if (k < t->kc) {
    __mmask32 tail = (__mmask32)((1ull << (t->kc - k)) - 1);
    TILE_STEP(LOAD_TAIL, ROW_WEIGHT_TAIL);
  }
  const __m512h acc[TILE_ROWS * ROW_TILE_COLS] = ACCUMULATORS;
  __m512 sums[TILE_ROWS];
  row_tile_sums(acc, sums);
  return store_sums(t, sums);
}

/* ---- The pair tile: 4 rows of a by 6 pairs of weight rows ---- */

/* The tile's 48 sums, as f32, from its 24 accumulators (x[6r + p]: lanes
 * 0..15 sum row r of a times weight row 2p, lanes 16..31 times 2p + 1): a
 * fixed tree of f16 additions (four levels) that halves the number of
 * vectors at each level, so that the 48 sums cost about as many
 * instructions as 24 vectors; out[r] holds row r's twelve in lanes 0..11. */
static inline void pair_tile_sums(const __m512h x[TILE_ROWS * PAIR_TILE_PAIRS],
                                  __m512 out[TILE_ROWS]) {
  __m512h z[12], y[6], v[3];
  /* 128-bit quarters: z[j] = [x[2j] lanes 0..15 | x[2j] lanes 16..31 |
   * x[2j + 1] lanes 0..15 | x[2j + 1] lanes 16..31], summed to 8 lanes */
  add_quarter_pairs(x, 24, z);
  /* 64-bit halves of quarters: quarter q of y[j] sums quarter q of z[2j] in
   * its low 64 bits and of z[2j + 1] in its high 64 bits (4 lanes each) */
  add_half_quarter_pairs(z, 12, y);
  /* 32-bit words: word e of quarter q of v[j] sums 64-bit half e % 2 of
   * quarter q of y[2j + e / 2] (2 lanes); then both halves of each word
   * hold its total */
  for (int j = 0; j < 3; j++) {
    v[j] = _mm512_add_ph(WORDS(y[2 * j], y[2 * j + 1], 0x88), WORDS(y[2 * j], y[2 * j + 1], 0xdd));
    v[j] = _mm512_add_ph(v[j], AS_PH(_mm512_rol_epi32(AS_SI(v[j]), 16)));
  }
  __m512 f[3]; /* the 48 totals: word d of v[j] as lane d of f[j] */
  for (int j = 0; j < 3; j++)
    f[j] = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(AS_SI(v[j])));
  /* Where row r's columns landed, following the levels above (lane d of
   * f[j] is x[2(2(2j + e/2) + e%2) + q/2], lanes of weight row q % 2 of its
   * pair, for q = d / 4 and e = d % 4): rows 0 and 1 from f[0] and f[1],
   * rows 2 and 3 from f[1] and f[2]. */
  static const int32_t lanes[TILE_ROWS][16] = {
      {0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14},
      {3, 7, 11, 15, 16, 20, 24, 28, 17, 21, 25, 29},
      {2, 6, 10, 14, 3, 7, 11, 15, 16, 20, 24, 28},
      {17, 21, 25, 29, 18, 22, 26, 30, 19, 23, 27, 31},
  };
  for (int r = 0; r < TILE_ROWS; r++)
    out[r] = _mm512_permutex2var_ps(f[r / 2], _mm512_loadu_si512(lanes[r]), f[r / 2 + 1]);
}

/* Pair p of the panel's block: weight rows 2p and 2p + 1. */
#define PANEL_PAIR(p) _mm512_load_ph(block + (p)*LANES)

#define LOAD_TWICE(p) AS_PH(_mm512_broadcast_i32x8(_mm256_loadu_si256((const __m256i *)(p))))
#define LOAD_TWICE_TAIL(p) AS_PH(_mm512_broadcast_i32x8(_mm256_maskz_loadu_epi16(tail, p)))

/* One chunk of a pair tile into c; returns whether an output came out
 * infinite or NaN. Rows past the tile's size repeat the first; columns
 * past it are zero in the panel; neither is stored. */
static bool run_pair_tile(const tile_args *t) {
  const _Float16 *a0 = a_row(t, 0), *a1 = a_row(t, 1), *a2 = a_row(t, 2), *a3 = a_row(t, 3);
  ZERO_ACCUMULATORS;
  const _Float16 *block = t->panel;
  int64_t k = 0;
  for (; k + HALF <= t->kc; k += HALF, block += PAIR_TILE_PAIRS * LANES)
    TILE_STEP(LOAD_TWICE, PANEL_PAIR);
  if (k < t->kc) { /* the panel is zero past kc; a is masked (its padding is arbitrary) */
    __mmask16 tail = (__mmask16)((1u << (t->kc - k)) - 1);
    TILE_STEP(LOAD_TWICE_TAIL, PANEL_PAIR);
  }
  const __m512h acc[TILE_ROWS * PAIR_TILE_PAIRS] = ACCUMULATORS;
  __m512 sums[TILE_ROWS];
  pair_tile_sums(acc, sums);
  return store_sums(t, sums);
}

bool vz_cpu_f16_round_rows(const float *src, int64_t src_ld, int64_t rows, int64_t k, uint16_t *dst,
                           int64_t dst_ld, int threads) {
  bool ok = true;
#pragma omp parallel for num_threads(threads) schedule(static) reduction(&& : ok)
  for (int64_t r = 0; r < rows; r++) {
    const float *x = src + r * src_ld;
    uint16_t *y = dst + r * dst_ld;
    __mmask16 out_of_range = 0;
    const __m512 limit = _mm512_set1_ps(F16_MAX);
    for (int64_t j = 0; j < k; j += 16) {
      __mmask16 m = k - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (k - j)) - 1);
      __m512 v = _mm512_maskz_loadu_ps(m, x + j);
      /* NaN compares false, so "not <= limit" also catches it */
      out_of_range |= _mm512_mask_cmp_ps_mask(m, _mm512_abs_ps(v), limit, _CMP_NLE_UQ);
      __m256i h = _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      _mm256_mask_storeu_epi16(y + j, m, h);
    }
    ok = ok && out_of_range == 0;
  }
  return ok;
}

/* One product as vz_cpu_gemm_f16 gets it. */
typedef struct gemm_job {
  const _Float16 *a;
  const uint16_t *w; /* f16 or bf16 bits */
  bool w_bf16;
  bool pairs;    /* pair tiles, else row tiles */
  int64_t width; /* weight rows per tile */
  int64_t lda, ldw, m, n, k;
  float *c;
  int64_t ldc;
} gemm_job;

/* 32 bf16 values (bits) in f16's normal range as f16: the exponent
 * rebiased (127 to 15) by a shift and an add of the bits; the sign kept. */
static inline __m512i bf16_normal_to_f16(__m512i bits) {
  const __m512i rebias = _mm512_set1_epi16(0x4000), sign = _mm512_set1_epi16((short)0x8000);
  __m512i magnitude = _mm512_add_epi16(_mm512_slli_epi16(bits, 3), rebias); /* mod 2^16 */
  return _mm512_ternarylogic_epi32(magnitude, bits, sign, 0xf8);            /* a | (b & c) */
}

/* Any 32 bf16 values as f16, rounded to nearest even through f32. */
static inline __m512i bf16_to_f16(__m512i bits) {
  const int round = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
  __m512i lo = _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_castsi512_si256(bits)), 16);
  __m512i hi = _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(bits, 1)), 16);
  return _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtps_ph(_mm512_castsi512_ps(lo), round)),
                            _mm512_cvtps_ph(_mm512_castsi512_ps(hi), round), 1);
}

/* 32 weights (bits) as f16: f16 as they are, bf16 converted. Sets
 * *inexact when a nonzero bf16 value below BF16_EXACT_MIN was rounded. */
static inline __m512i weight_halves(__m512i bits, bool bf16, bool *inexact) {
  if (!bf16)
    return bits;
  const __m512i magnitude = _mm512_set1_epi16(0x7fff);
  const __m512i normal_min = _mm512_set1_epi16(BF16_NORMAL_MIN);
  const __m512i normal_span = _mm512_set1_epi16(BF16_NORMAL_MAX - BF16_NORMAL_MIN);
  __m512i mag = _mm512_and_si512(bits, magnitude);
  /* unsigned: mag - min <= span */
  __mmask32 normal = _mm512_cmple_epu16_mask(_mm512_sub_epi16(mag, normal_min), normal_span);
  if (normal == ~(__mmask32)0)
    return bf16_normal_to_f16(bits);
  *inexact = *inexact || (_mm512_test_epi16_mask(mag, mag) &
                          _mm512_cmplt_epu16_mask(mag, _mm512_set1_epi16(BF16_EXACT_MIN))) != 0;
  return bf16_to_f16(bits);
}

/* Whether one of the n bf16 values at w has magnitude BF16_ROW_FLOOR or more
 * (infinities and NaN included). */
static bool bf16_has_large(const uint16_t *w, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    if ((w[i] & 0x7fff) >= BF16_ROW_FLOOR)
      return true;
  return false;
}

/* Weight row src, steps [0, kc), as f16 (zero past kc) at dst: contiguous,
 * or for block > 0 as a row of a pair panel, steps 16b .. 16b + 15 at
 * dst + b * block. Returns false when a bf16 row holds a nonzero value
 * below BF16_EXACT_MIN but none of BF16_ROW_FLOOR or more. */
static bool convert_row(const uint16_t *src, bool bf16, int64_t kc, _Float16 *dst, int64_t block) {
  bool inexact = false;
  for (int64_t k = 0; k < kc; k += LANES) {
    __mmask32 m = kc - k >= LANES ? ~(__mmask32)0 : (__mmask32)((1ull << (kc - k)) - 1);
    __m512i halves = weight_halves(_mm512_maskz_loadu_epi16(m, src + k), bf16, &inexact);
    if (block == 0) {
      _mm512_storeu_si512(dst + k, halves);
      continue;
    }
    _Float16 *at = dst + k / HALF * block;
    _mm256_store_si256((__m256i *)at, _mm512_castsi512_si256(halves));
    if (k + HALF < kc)
      _mm256_store_si256((__m256i *)(at + block), _mm512_extracti64x4_epi64(halves, 1));
  }
  return !inexact || bf16_has_large(src, kc);
}

/* Rows [0, rows) of the bf16 weight w (ldw apart), steps [0, kc), as f16
 * rows ROW_PANEL_LD apart, for a row tile. Returns false as convert_row. */
static bool row_panel(const uint16_t *w, int64_t ldw, int rows, int64_t kc, _Float16 *panel) {
  for (int j = 0; j < rows; j++)
    if (!convert_row(w + j * ldw, true, kc, panel + j * ROW_PANEL_LD, 0))
      return false;
  return true;
}

/* Rows [0, rows) of w (ldw apart; f16, or bf16 when bf16), steps [0, kc),
 * as a pair tile's panel: block b (steps 16b .. 16b + 15) holds six
 * vectors, pair p's weight row 2p in lanes 0..15 and 2p + 1 in lanes
 * 16..31; zero past kc and past the rows. Returns false as convert_row. */
static bool pair_panel(const uint16_t *w, int64_t ldw, bool bf16, int rows, int64_t kc,
                       _Float16 *panel) {
  const int64_t block = PAIR_TILE_PAIRS * LANES, blocks = (kc + HALF - 1) / HALF;
  for (int j = rows; j < PAIR_TILE_COLS; j++)
    for (int64_t b = 0; b < blocks; b++)
      _mm256_store_si256((__m256i *)(panel + b * block + j / 2 * LANES + j % 2 * HALF),
                         _mm256_setzero_si256());
  for (int j = 0; j < rows; j++)
    if (!convert_row(w + j * ldw, bf16, kc, panel + j / 2 * LANES + j % 2 * HALF, block))
      return false;
  return true;
}

/* The tile's weights (w, steps [0, kc)) where its kernel reads them: a
 * pair tile's from `panel`, a row tile's in place, or from `panel` when
 * bf16. Returns false as convert_row. */
static bool tile_weights(const gemm_job *g, const uint16_t *w, int rows, int64_t kc,
                         _Float16 *panel, tile_args *t) {
  if (g->pairs) {
    t->panel = panel;
    return pair_panel(w, g->ldw, g->w_bf16, rows, kc, panel);
  }
  if (!g->w_bf16) {
    t->w = (const _Float16 *)w;
    t->ldw = g->ldw;
    return true;
  }
  t->w = panel;
  t->ldw = ROW_PANEL_LD;
  return row_panel(w, g->ldw, rows, kc, panel);
}

/* Weight tile t (rows [c t, c t + c) of w, c the tile's width) times rows
 * [r0, r1) of a, over steps [k0, k0 + kc); returns whether an output came
 * out non-finite (or a bf16 tile could not be converted closely enough).
 * The next tile's weight rows (most likely this thread's, under a static
 * schedule) are prefetched into L2 a few cache lines per row group, so
 * that they come from memory while this tile runs from L1 (into L1 itself
 * they pushed out the tile's own lines: the ViT ran 8-12 % slower on a
 * busy host, about 1 % on a quiet one). `panel` holds PANEL_HALVES, for
 * a pair tile's weights or a row tile's converted bf16 weights. */
static bool column_tile(const gemm_job *g, int64_t t, int64_t k0, int64_t kc, int64_t r0,
                        int64_t r1, _Float16 *panel) {
  const int64_t width = g->width, j = t * width, left = g->n - j;
  const uint16_t *w = g->w + j * g->ldw + k0;
  tile_args args = {
      .lda = g->lda,
      .kc = kc,
      .ldc = g->ldc,
      .cols = (int)(left < width ? left : width),
      .first = k0 == 0,
  };
  if (!tile_weights(g, w, args.cols, kc, panel, &args))
    return true;
  const int64_t next_rows = left <= width ? 0 : left - width < width ? left - width : width;
  const int64_t row_lines = (kc * 2 + 63) / 64, lines = next_rows * row_lines;
  const int64_t groups = (r1 - r0 + TILE_ROWS - 1) / TILE_ROWS;
  const int64_t per_group = (lines + groups - 1) / groups;
  const char *next = (const char *)(w + width * g->ldw);
  bool bad = false;
  int64_t line = 0;
  for (int64_t i = r0; i < r1; i += TILE_ROWS) {
    for (int64_t end = line + per_group; line < end && line < lines; line++)
      _mm_prefetch(next + line / row_lines * g->ldw * 2 + line % row_lines * 64, _MM_HINT_T1);
    args.a = g->a + i * g->lda + k0;
    args.c = g->c + i * g->ldc + j;
    args.rows = (int)(r1 - i < TILE_ROWS ? r1 - i : TILE_ROWS);
    bad = (g->pairs ? run_pair_tile(&args) : run_row_tile(&args)) || bad;
  }
  return bad;
}

bool vz_cpu_gemm_f16(const uint16_t *a, int64_t lda, const uint16_t *w, int64_t ldw, bool w_bf16,
                     int64_t m, int64_t n, int64_t k, float *c, int64_t ldc, int threads) {
  if (m <= 0 || n <= 0)
    return true; /* nothing to compute (and no blocks to divide m into) */
  /* equal blocks of rows, whole tiles each but the last */
  const int64_t blocks = (m + BLOCK_ROWS - 1) / BLOCK_ROWS;
  const int64_t block_rows = ((m + blocks - 1) / blocks + TILE_ROWS - 1) / TILE_ROWS * TILE_ROWS;
  const bool pairs = block_rows >= PAIR_MIN_ROWS;
  const int64_t width = pairs ? PAIR_TILE_COLS : ROW_TILE_COLS;
  const gemm_job g = {(const _Float16 *)a, w, w_bf16, pairs, width, lda, ldw, m, n, k, c, ldc};
  /* equal chunks of K, whole vectors of steps each but the last */
  const int64_t chunk_steps = pairs ? PAIR_CHUNK_STEPS : ROW_CHUNK_STEPS;
  const int64_t chunks = (k + chunk_steps - 1) / chunk_steps;
  const int64_t kc_max = ((k + chunks - 1) / chunks + LANES - 1) / LANES * LANES;
  const int64_t col_tiles = (n + width - 1) / width;
  bool bad = false;
#pragma omp parallel num_threads(threads) reduction(|| : bad)
  {
    _Alignas(64) _Float16 panel[PANEL_HALVES]; /* 37 KiB: a tile's weights */
    for (int64_t r0 = 0; r0 < m; r0 += block_rows) {
      const int64_t r1 = m - r0 < block_rows ? m : r0 + block_rows;
      for (int64_t k0 = 0; k0 < k; k0 += kc_max) {
        const int64_t kc = k - k0 < kc_max ? k - k0 : kc_max;
        /* Every loop here has col_tiles iterations under the same static
         * schedule, so OpenMP gives each thread the same tiles in each: a
         * tile's next chunk comes after its previous one without a barrier
         * in between. */
#pragma omp for schedule(static) nowait
        for (int64_t t = 0; t < col_tiles; t++)
          bad = column_tile(&g, t, k0, kc, r0, r1, panel) || bad;
      }
    }
  }
  return !bad;
}

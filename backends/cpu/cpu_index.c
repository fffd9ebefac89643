/* CPU kernels for the ops that pick, join or convert elements: embedding,
 * index_select, gather, concat, copy and cast.
 *
 * copy and cast take inputs with any strides (zero and negative included)
 * and share one strided walk; the other ops get contiguous inputs from the
 * dispatcher. Every index is checked before anything is written, so that a
 * bad index is reported from the calling thread. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "backends/cpu/cpu.h"

/* ---- ids ---- */

static inline int64_t read_id(const void *ids, vz_dtype dtype, int64_t i) {
  return dtype == VZ_I32 ? (int64_t)((const int32_t *)ids)[i] : ((const int64_t *)ids)[i];
}

/* Fails on the first of n ids outside [0, limit): "<what> <id> at position
 * <i> is outside [0, <limit>)", followed by " (axis <ax>)" when ax >= 0. */
static vz_status check_ids(const char *what, const void *ids, vz_dtype dtype, int64_t n,
                           int64_t limit, int ax) {
  for (int64_t i = 0; i < n; i++) {
    int64_t id = read_id(ids, dtype, i);
    if (id < 0 || id >= limit) {
      char axis[32] = "";
      if (ax >= 0)
        snprintf(axis, sizeof axis, " (axis %d)", ax);
      return vz_fail(VZ_ERR_INVALID_ARGUMENT, "%s %lld at position %lld is outside [0, %lld)%s",
                     what, (long long)id, (long long)i, (long long)limit, axis);
    }
  }
  return VZ_OK;
}

static bool is_id_dtype(vz_dtype d) { return d == VZ_I32 || d == VZ_I64; }

static bool is_dtype(vz_dtype d) { return (unsigned)d < VZ_DTYPE_COUNT; }

/* Copies one element of `size` bytes (1, 2, 4 or 8). */
static inline void copy_element(char *dst, const char *src, size_t size) {
  switch (size) {
  case 1: *dst = *src; break;
  case 2: memcpy(dst, src, 2); break;
  case 4: memcpy(dst, src, 4); break;
  default: memcpy(dst, src, 8); break;
  }
}

bool vz_cpu_index_supports(const vz_op_call *call) {
  const vz_tensor *x = call->inputs[0], *ids = call->inputs[1];
  if (!x || !ids || !is_id_dtype(ids->dtype))
    return false;
  switch (call->op) {
  case VZ_OP_EMBEDDING: return x->dtype == VZ_F32 || x->dtype == VZ_F16 || x->dtype == VZ_BF16;
  case VZ_OP_INDEX_SELECT:
  case VZ_OP_GATHER: return is_dtype(x->dtype);
  default: return false;
  }
}

/* ---- embedding ---- */

vz_status vz_cpu_embedding(const vz_cpu *cpu, const vz_op_call *call) {
  const vz_tensor *table = call->inputs[0], *ids = call->inputs[1];
  vz_tensor *out = call->outputs[0];
  const int64_t vocab = table->shape[0], dim = table->shape[1];
  const int64_t n = vz_tensor_numel(ids);
  const void *id_data = vz_cpu_data(ids);
  vz_status st = check_ids("embedding id", id_data, ids->dtype, n, vocab, -1);
  if (st != VZ_OK)
    return st;
  const char *tab = vz_cpu_data(table);
  float *dst = vz_cpu_data(out);
  const vz_dtype dtype = table->dtype;
  const size_t row_bytes = (size_t)dim * vz_dtype_size(dtype);
#pragma omp parallel for num_threads(vz_cpu_threads_for(cpu, n *dim)) schedule(static)
  for (int64_t i = 0; i < n; i++) {
    const char *row = tab + (size_t)read_id(id_data, ids->dtype, i) * row_bytes;
    float *o = dst + i * dim;
    if (dtype == VZ_F32) {
      memcpy(o, row, row_bytes);
    } else {
      const uint16_t *h = (const uint16_t *)row;
      if (dtype == VZ_F16)
        for (int64_t j = 0; j < dim; j++)
          o[j] = vz_f16_to_f32(h[j]);
      else
        for (int64_t j = 0; j < dim; j++)
          o[j] = vz_bf16_to_f32(h[j]);
    }
  }
  return VZ_OK;
}

/* ---- index_select ---- */

/* Product of shape[from..to). */
static int64_t span(const vz_tensor *t, int from, int to) {
  int64_t n = 1;
  for (int i = from; i < to; i++)
    n *= t->shape[i];
  return n;
}

vz_status vz_cpu_index_select(const vz_cpu *cpu, const vz_op_call *call) {
  const vz_tensor *x = call->inputs[0], *ids = call->inputs[1];
  vz_tensor *out = call->outputs[0];
  const int ax = vz_axis(call->attrs.axis.axis, x->ndim);
  const int64_t n_ids = ids->shape[0], limit = x->shape[ax];
  const void *id_data = vz_cpu_data(ids);
  vz_status st = check_ids("index_select id", id_data, ids->dtype, n_ids, limit, ax);
  if (st != VZ_OK)
    return st;
  const int64_t outer = span(x, 0, ax);
  const size_t inner_bytes = (size_t)span(x, ax + 1, x->ndim) * vz_dtype_size(x->dtype);
  const char *src = vz_cpu_data(x);
  char *dst = vz_cpu_data(out);
  const int64_t units = outer * n_ids;
  const int64_t work = (int64_t)((size_t)units * inner_bytes / 4);
#pragma omp parallel for num_threads(vz_cpu_threads_for(cpu, work)) schedule(static)
  for (int64_t u = 0; u < units; u++) {
    int64_t o = u / n_ids, j = u % n_ids;
    int64_t id = read_id(id_data, ids->dtype, j);
    memcpy(dst + (size_t)u * inner_bytes, src + (size_t)(o * limit + id) * inner_bytes,
           inner_bytes);
  }
  return VZ_OK;
}

/* ---- gather ---- */

vz_status vz_cpu_gather(const vz_cpu *cpu, const vz_op_call *call) {
  const vz_tensor *x = call->inputs[0], *index = call->inputs[1];
  vz_tensor *out = call->outputs[0];
  const int nd = x->ndim;
  const int ax = vz_axis(call->attrs.axis.axis, nd);
  const int64_t n = vz_tensor_numel(index), limit = x->shape[ax];
  const void *idx = vz_cpu_data(index);
  vz_status st = check_ids("gather index", idx, index->dtype, n, limit, ax);
  if (st != VZ_OK)
    return st;
  /* Walk the output (the index's shape) row by row over its last axis; the
   * source offset takes the row's coordinates on every axis but `ax`. */
  int64_t xstride[VZ_MAX_DIMS], s = 1;
  for (int d = nd - 1; d >= 0; d--) {
    xstride[d] = s;
    s *= x->shape[d];
  }
  const int64_t last = nd > 0 ? index->shape[nd - 1] : 1;
  const int64_t rows = last > 0 ? n / last : 0;
  const int64_t last_step = (nd > 0 && ax != nd - 1) ? xstride[nd - 1] : 0;
  const int64_t ax_step = nd > 0 ? xstride[ax] : 0;
  const size_t es = vz_dtype_size(x->dtype);
  const char *src = vz_cpu_data(x);
  char *dst = vz_cpu_data(out);
#pragma omp parallel for num_threads(vz_cpu_threads_for(cpu, n)) schedule(static)
  for (int64_t r = 0; r < rows; r++) {
    int64_t base = 0, rem = r;
    for (int d = nd - 2; d >= 0; d--) {
      int64_t c = rem % index->shape[d];
      rem /= index->shape[d];
      if (d != ax)
        base += c * xstride[d];
    }
    for (int64_t j = 0; j < last; j++) {
      int64_t e = r * last + j;
      int64_t off = base + j * last_step + read_id(idx, index->dtype, e) * ax_step;
      copy_element(dst + (size_t)e * es, src + (size_t)off * es, es);
    }
  }
  return VZ_OK;
}

/* ---- concat ---- */

bool vz_cpu_concat_supports(const vz_op_call *call) {
  if (call->n_inputs < 1 || call->n_inputs > VZ_OP_MAX_INPUTS)
    return false;
  for (int k = 0; k < call->n_inputs; k++)
    if (!call->inputs[k] || !is_dtype(call->inputs[k]->dtype))
      return false;
  return true;
}

vz_status vz_cpu_concat(const vz_cpu *cpu, const vz_op_call *call) {
  vz_tensor *out = call->outputs[0];
  const int nd = out->ndim;
  const int ax = vz_axis(call->attrs.axis.axis, nd);
  const int n = call->n_inputs;
  const size_t es = vz_dtype_size(out->dtype);
  const int64_t outer = span(out, 0, ax);
  const size_t inner_bytes = (size_t)span(out, ax + 1, nd) * es;
  size_t chunk[VZ_OP_MAX_INPUTS], start[VZ_OP_MAX_INPUTS], row_bytes = 0;
  const char *src[VZ_OP_MAX_INPUTS];
  for (int k = 0; k < n; k++) {
    chunk[k] = (size_t)call->inputs[k]->shape[ax] * inner_bytes;
    start[k] = row_bytes;
    row_bytes += chunk[k];
    src[k] = vz_cpu_data(call->inputs[k]);
  }
  char *dst = vz_cpu_data(out);
  const int64_t units = outer * n;
  const int64_t work = (int64_t)((size_t)outer * row_bytes / 4);
#pragma omp parallel for num_threads(vz_cpu_threads_for(cpu, work)) schedule(static)
  for (int64_t u = 0; u < units; u++) {
    int64_t o = u / n;
    int k = (int)(u % n);
    if (chunk[k])
      memcpy(dst + (size_t)o * row_bytes + start[k], src[k] + (size_t)o * chunk[k], chunk[k]);
  }
  return VZ_OK;
}

/* ---- the strided walk shared by copy and cast ---- */

/* Converts or copies n elements: source elements src_step bytes apart (any
 * sign, 0 repeats one element), destination contiguous. */
typedef void (*row_fn)(const char *src, int64_t src_step, char *dst, int64_t n);

/* Work units: runs of up to WALK_CHUNK elements of one row; for a
 * transposing view (the inner axis strided, the one before it dense),
 * WALK_TILE x WALK_TILE tiles, so that the cache lines read for one output
 * row serve the next ones too. */
enum { WALK_CHUNK = 16384, WALK_TILE = 64 };

/* Runs `row` over x's elements in row-major order into the contiguous
 * `out`. Dimensions of size 1 are dropped and neighbours that step through
 * memory as one are merged, so a contiguous input is a single run. */
static void strided_walk(const vz_cpu *cpu, const vz_tensor *x, vz_tensor *out, row_fn row) {
  int64_t shape[VZ_MAX_DIMS + 1], stride[VZ_MAX_DIMS + 1];
  int nd = 0;
  for (int i = 0; i < x->ndim; i++) {
    if (x->shape[i] == 1)
      continue;
    if (nd > 0 && stride[nd - 1] == x->stride[i] * x->shape[i]) {
      shape[nd - 1] *= x->shape[i];
      stride[nd - 1] = x->stride[i];
      continue;
    }
    shape[nd] = x->shape[i];
    stride[nd] = x->stride[i];
    nd++;
  }
  while (nd < 2) { /* at least [rows, columns], leading ones of size 1 */
    memmove(shape + 1, shape, (size_t)nd * sizeof *shape);
    memmove(stride + 1, stride, (size_t)nd * sizeof *stride);
    shape[0] = 1;
    stride[0] = 0;
    nd++;
  }
  const int64_t numel = vz_tensor_numel(x);
  const int64_t R = shape[nd - 2], C = shape[nd - 1];
  if (numel == 0)
    return;
  const bool tiled = (stride[nd - 2] == 1 || stride[nd - 2] == -1) && stride[nd - 1] != 1 &&
                     stride[nd - 1] != -1 && R > 1 && C > 1;
  const int64_t tr = tiled ? WALK_TILE : 1, tc = tiled ? WALK_TILE : WALK_CHUNK;
  const int64_t row_tiles = (R + tr - 1) / tr, col_tiles = (C + tc - 1) / tc;
  const int64_t tiles = row_tiles * col_tiles;
  const int64_t units = numel / (R * C) * tiles;
  const int64_t ses = (int64_t)vz_dtype_size(x->dtype);
  const int64_t des = (int64_t)vz_dtype_size(out->dtype);
  const int64_t step = stride[nd - 1] * ses;
  const char *src = vz_cpu_data(x);
  char *dst = vz_cpu_data(out);
#pragma omp parallel for num_threads(vz_cpu_threads_for(cpu, numel)) schedule(static)
  for (int64_t u = 0; u < units; u++) {
    const int64_t o = u / tiles, t = u % tiles;
    const int64_t r0 = t / col_tiles * tr, c0 = t % col_tiles * tc;
    const int64_t r1 = R - r0 < tr ? R : r0 + tr;
    const int64_t count = C - c0 < tc ? C - c0 : tc;
    int64_t off = 0, rem = o;
    for (int d = nd - 3; d >= 0; d--) {
      off += (rem % shape[d]) * stride[d];
      rem /= shape[d];
    }
    for (int64_t r = r0; r < r1; r++)
      row(src + (off + r * stride[nd - 2] + c0 * stride[nd - 1]) * ses, step,
          dst + ((o * R + r) * C + c0) * des, count);
  }
}

/* ---- copy ---- */

#define COPY_ROW(NAME, T)                                                                          \
  static void NAME(const char *src, int64_t src_step, char *dst, int64_t n) {                      \
    if (src_step == (int64_t)sizeof(T)) {                                                          \
      memcpy(dst, src, (size_t)n * sizeof(T));                                                     \
      return;                                                                                      \
    }                                                                                              \
    for (int64_t i = 0; i < n; i++)                                                                \
      memcpy(dst + i * (int64_t)sizeof(T), src + i * src_step, sizeof(T));                         \
  }
COPY_ROW(copy_row_1, uint8_t)
COPY_ROW(copy_row_2, uint16_t)
COPY_ROW(copy_row_4, uint32_t)
COPY_ROW(copy_row_8, uint64_t)

static row_fn copy_row_for(size_t size) {
  switch (size) {
  case 1: return copy_row_1;
  case 2: return copy_row_2;
  case 4: return copy_row_4;
  default: return copy_row_8;
  }
}

bool vz_cpu_copy_supports(const vz_op_call *call) {
  const vz_tensor *x = call->inputs[0];
  if (!x || x->ndim > VZ_MAX_DIMS || !is_dtype(x->dtype))
    return false;
  return call->op != VZ_OP_CAST || is_dtype(call->attrs.cast.to);
}

vz_status vz_cpu_copy(const vz_cpu *cpu, const vz_op_call *call) {
  const vz_tensor *x = call->inputs[0];
  strided_walk(cpu, x, call->outputs[0], copy_row_for(vz_dtype_size(x->dtype)));
  return VZ_OK;
}

/* ---- cast ----
 *
 * Every source element is read exactly, floats into a double and integers
 * and bools into an int64_t, and written with one rounding:
 *   - to f64 and f32: C's conversion (round to nearest even);
 *   - to f16 and bf16: through an f32 rounded to odd when the value is not
 *     already an f32, then vz_f32_to_f16 / vz_f32_to_bf16 (nearest even);
 *     rounding to odd first keeps the result correctly rounded (no double
 *     rounding), since f32 carries more than two extra bits;
 *   - float to integer: truncation toward zero as in C, saturated to the
 *     target's range (so -1.5 to u8 is 0, 1e10 to i32 is INT32_MAX, -inf
 *     to i64 is INT64_MIN), and NaN gives 0 - values C leaves undefined;
 *   - integer to integer: the low bits, i.e. modulo 2^width as C converts
 *     to unsigned types (-1 to u8 is 255, 300 to i8 is 44);
 *   - to bool: x != 0, so NaN is true; from bool: 0 or 1. */

/* An f32 holding d rounded toward zero, with its last bit set when that
 * dropped anything (round to odd); NaN and exact values pass through. */
static inline float f64_to_f32_odd(double d) {
  float f = (float)d;
  if ((double)f == d || d != d)
    return f;
  uint32_t bits;
  memcpy(&bits, &f, 4);
  if (fabs((double)f) > fabs(d))
    bits--; /* rounded away from zero: step back (an infinity becomes FLT_MAX) */
  bits |= 1u;
  memcpy(&f, &bits, 4);
  return f;
}

/* The same for a 64-bit integer. */
static inline float i64_to_f32_odd(int64_t v) {
  uint64_t m = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
  int shift = 0;
  while ((m >> shift) >= (1u << 24))
    shift++;
  uint64_t keep = m >> shift;
  if (shift && (m & ((UINT64_C(1) << shift) - 1)))
    keep |= 1u;
  float f = ldexpf((float)keep, shift);
  return v < 0 ? -f : f;
}

/* Loaders: ld_<dtype> reads one element exactly. */
static inline double ld_f32(const char *p) {
  float v;
  memcpy(&v, p, 4);
  return v;
}
static inline double ld_f16(const char *p) {
  uint16_t v;
  memcpy(&v, p, 2);
  return vz_f16_to_f32(v);
}
static inline double ld_bf16(const char *p) {
  uint16_t v;
  memcpy(&v, p, 2);
  return vz_bf16_to_f32(v);
}
static inline double ld_f64(const char *p) {
  double v;
  memcpy(&v, p, 8);
  return v;
}
#define LOAD_INT(NAME, T)                                                                          \
  static inline int64_t NAME(const char *p) {                                                      \
    T v;                                                                                           \
    memcpy(&v, p, sizeof v);                                                                       \
    return (int64_t)v;                                                                             \
  }
LOAD_INT(ld_i64, int64_t)
LOAD_INT(ld_i32, int32_t)
LOAD_INT(ld_i16, int16_t)
LOAD_INT(ld_i8, int8_t)
LOAD_INT(ld_u8, uint8_t)
static inline int64_t ld_b8(const char *p) { return *(const uint8_t *)p != 0; }

/* Stores from a double (sd_) and from an int64_t (si_). */
static inline void sd_f32(char *p, double d) {
  float v = (float)d;
  memcpy(p, &v, 4);
}
static inline void sd_f64(char *p, double d) { memcpy(p, &d, 8); }
static inline void sd_f16(char *p, double d) {
  uint16_t v = vz_f32_to_f16(f64_to_f32_odd(d));
  memcpy(p, &v, 2);
}
static inline void sd_bf16(char *p, double d) {
  uint16_t v = vz_f32_to_bf16(f64_to_f32_odd(d));
  memcpy(p, &v, 2);
}
/* (double)MAX + 1 is exactly 2^(bits-1) (2^bits for u8), the first value
 * past the range; anything above MIN - 1 truncates into the range. */
#define STORE_SAT(NAME, T, MINV, MAXV)                                                             \
  static inline void NAME(char *p, double d) {                                                     \
    T v;                                                                                           \
    if (d != d)                                                                                    \
      v = 0;                                                                                       \
    else if (d >= (double)(MAXV) + 1.0)                                                            \
      v = MAXV;                                                                                    \
    else if (d <= (double)(MINV))                                                                  \
      v = MINV;                                                                                    \
    else                                                                                           \
      v = (T)d;                                                                                    \
    memcpy(p, &v, sizeof v);                                                                       \
  }
STORE_SAT(sd_i64, int64_t, INT64_MIN, INT64_MAX)
STORE_SAT(sd_i32, int32_t, INT32_MIN, INT32_MAX)
STORE_SAT(sd_i16, int16_t, INT16_MIN, INT16_MAX)
STORE_SAT(sd_i8, int8_t, INT8_MIN, INT8_MAX)
STORE_SAT(sd_u8, uint8_t, 0, UINT8_MAX)
static inline void sd_b8(char *p, double d) { *(uint8_t *)p = d != 0.0; }

static inline void si_f32(char *p, int64_t v) {
  float f = (float)v;
  memcpy(p, &f, 4);
}
static inline void si_f64(char *p, int64_t v) {
  double d = (double)v;
  memcpy(p, &d, 8);
}
static inline void si_f16(char *p, int64_t v) {
  uint16_t h = vz_f32_to_f16(i64_to_f32_odd(v));
  memcpy(p, &h, 2);
}
static inline void si_bf16(char *p, int64_t v) {
  uint16_t h = vz_f32_to_bf16(i64_to_f32_odd(v));
  memcpy(p, &h, 2);
}
/* The low bits as the unsigned type of the same width, whose object
 * representation is the signed target's two's complement. */
#define STORE_WRAP(NAME, U)                                                                        \
  static inline void NAME(char *p, int64_t v) {                                                    \
    U u = (U)(uint64_t)v;                                                                          \
    memcpy(p, &u, sizeof u);                                                                       \
  }
STORE_WRAP(si_i64, uint64_t)
STORE_WRAP(si_i32, uint32_t)
STORE_WRAP(si_i16, uint16_t)
STORE_WRAP(si_i8, uint8_t)
STORE_WRAP(si_u8, uint8_t)
static inline void si_b8(char *p, int64_t v) { *(uint8_t *)p = v != 0; }

/* One row function per (source, target) pair. K is d for float sources and
 * i for the others, picking the matching store. */
/* b8 stands for bool, a macro name in C. */
#define SIZE_f32 4
#define SIZE_f16 2
#define SIZE_bf16 2
#define SIZE_f64 8
#define SIZE_i64 8
#define SIZE_i32 4
#define SIZE_i16 2
#define SIZE_i8 1
#define SIZE_u8 1
#define SIZE_b8 1

#define CAST_PAIR(S, K, D)                                                                         \
  static void cast_##S##_##D(const char *src, int64_t src_step, char *dst, int64_t n) {            \
    for (int64_t i = 0; i < n; i++)                                                                \
      s##K##_##D(dst + i * SIZE_##D, ld_##S(src + i * src_step));                                  \
  }
/* clang-format off */
#define FOR_TARGETS(X, S, K)                                                                       \
  X(S, K, f32) X(S, K, f16) X(S, K, bf16) X(S, K, f64) X(S, K, i64)                                \
  X(S, K, i32) X(S, K, i16) X(S, K, i8) X(S, K, u8) X(S, K, b8)
#define FOR_SOURCES(X)                                                                             \
  X(f32, d) X(f16, d) X(bf16, d) X(f64, d) X(i64, i) X(i32, i) X(i16, i) X(i8, i) X(u8, i) X(b8, i)
/* clang-format on */

#define DEFINE_SOURCE(S, K) FOR_TARGETS(CAST_PAIR, S, K)
FOR_SOURCES(DEFINE_SOURCE)

#define TABLE_ENTRY(S, K, D) cast_##S##_##D,
#define TABLE_ROW(S, K) {FOR_TARGETS(TABLE_ENTRY, S, K)},
/* Indexed [from][to]; both lists follow vz_dtype's order. */
static const row_fn cast_rows[VZ_DTYPE_COUNT][VZ_DTYPE_COUNT] = {FOR_SOURCES(TABLE_ROW)};

/* A contiguous cast between f32 and f16 or bf16 (loading a model in
 * another dtype) on the instruction set's vector conversions, which give
 * the scalar functions' bits; false for any other cast. */
static bool cast_16_bit_floats(const vz_cpu *cpu, const vz_tensor *x, vz_tensor *out) {
  const vz_cpu_simd *s = cpu->simd;
  void (*narrow)(const float *, uint16_t *, int64_t) = NULL;
  void (*widen)(const uint16_t *, float *, int64_t) = NULL;
  if (x->dtype == VZ_F32)
    narrow = out->dtype == VZ_BF16 ? s->f32_to_bf16 : out->dtype == VZ_F16 ? s->f32_to_f16 : NULL;
  else if (out->dtype == VZ_F32)
    widen = x->dtype == VZ_BF16 ? s->bf16_to_f32 : x->dtype == VZ_F16 ? s->f16_to_f32 : NULL;
  if ((!narrow && !widen) || !vz_tensor_is_contiguous(x))
    return false;
  const int64_t n = vz_tensor_numel(x), chunks = (n + WALK_CHUNK - 1) / WALK_CHUNK;
  const char *src = vz_cpu_data(x);
  char *dst = vz_cpu_data(out);
#pragma omp parallel for num_threads(vz_cpu_threads_for(cpu, n)) schedule(static)
  for (int64_t c = 0; c < chunks; c++) {
    const int64_t i = c * WALK_CHUNK, count = n - i < WALK_CHUNK ? n - i : WALK_CHUNK;
    if (narrow)
      narrow((const float *)src + i, (uint16_t *)dst + i, count);
    else
      widen((const uint16_t *)src + i, (float *)dst + i, count);
  }
  return true;
}

vz_status vz_cpu_cast(const vz_cpu *cpu, const vz_op_call *call) {
  const vz_tensor *x = call->inputs[0];
  vz_tensor *out = call->outputs[0];
  if (cast_16_bit_floats(cpu, x, out))
    return VZ_OK;
  row_fn row = x->dtype == out->dtype ? copy_row_for(vz_dtype_size(x->dtype))
                                      : cast_rows[x->dtype][out->dtype];
  strided_walk(cpu, x, out, row);
  return VZ_OK;
}

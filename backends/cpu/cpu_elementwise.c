/* Element-wise kernels: arithmetic with broadcasting (f32 through the
 * vector kernels, i32 and i64 in plain loops), activations, and where.
 * Binary ops and where take inputs with any strides (0 for broadcast,
 * negative for reversed views); outputs are contiguous. */
#include <string.h>

#include "backends/cpu/cpu.h"

enum {
  MAX_OPERANDS = 3,
  BLOCK = 16384, /* elements of one row handed to one task */
};

/* The output's shape with operand strides, size-1 dimensions dropped and
 * dimensions merged wherever every operand walks them as one. */
typedef struct layout {
  int ndim; /* >= 1 */
  int64_t shape[VZ_MAX_DIMS];
  int64_t stride[MAX_OPERANDS][VZ_MAX_DIMS];
} layout;

static void make_layout(const vz_tensor *out, int n_ops, const vz_tensor *const *ops, layout *l) {
  int64_t s[MAX_OPERANDS][VZ_MAX_DIMS];
  for (int k = 0; k < n_ops; k++)
    vz_broadcast_strides(ops[k], out->ndim, out->shape, s[k]);
  l->ndim = 0;
  for (int d = 0; d < out->ndim; d++) {
    if (out->shape[d] == 1)
      continue;
    int last = l->ndim - 1;
    bool merge = last >= 0;
    for (int k = 0; k < n_ops && merge; k++)
      merge = l->stride[k][last] == s[k][d] * out->shape[d];
    if (merge) {
      l->shape[last] *= out->shape[d];
      for (int k = 0; k < n_ops; k++)
        l->stride[k][last] = s[k][d];
      continue;
    }
    l->shape[l->ndim] = out->shape[d];
    for (int k = 0; k < n_ops; k++)
      l->stride[k][l->ndim] = s[k][d];
    l->ndim++;
  }
  if (l->ndim == 0) {
    l->ndim = 1;
    l->shape[0] = 1;
    for (int k = 0; k < n_ops; k++)
      l->stride[k][0] = 0;
  }
}

/* Element offsets (per operand) of the start of outer row `row`. */
static void row_offsets(const layout *l, int n_ops, int64_t row, int64_t *off) {
  for (int k = 0; k < n_ops; k++)
    off[k] = 0;
  for (int d = l->ndim - 2; d >= 0; d--) {
    int64_t i = row % l->shape[d];
    row /= l->shape[d];
    for (int k = 0; k < n_ops; k++)
      off[k] += i * l->stride[k][d];
  }
}

/* ---- Binary arithmetic ---- */

bool vz_cpu_binary_supports(const vz_op_call *call) {
  const vz_tensor *a = call->inputs[0], *b = call->inputs[1];
  if (!a || !b || a->dtype != b->dtype || call->outputs[0]->dtype != a->dtype)
    return false;
  return a->dtype == VZ_F32 || a->dtype == VZ_I32 || a->dtype == VZ_I64;
}

static void f32_row(const vz_cpu *cpu, vz_op_kind op, const float *a, int64_t sa, const float *b,
                    int64_t sb, float *out, int64_t n) {
  if ((sa == 0 || sa == 1) && (sb == 0 || sb == 1)) {
    cpu->simd->binary(op, a, sa, b, sb, out, n);
    return;
  }
  for (int64_t i = 0; i < n; i++) {
    float x = a[i * sa], y = b[i * sb];
    switch (op) {
    case VZ_OP_ADD: out[i] = x + y; break;
    case VZ_OP_SUB: out[i] = x - y; break;
    case VZ_OP_MUL: out[i] = x * y; break;
    default: out[i] = x / y; break;
    }
  }
}

/* Integer rows wrap on overflow (two's complement, as the hardware does)
 * and divide truncating toward zero, as C does; a zero divisor is
 * reported. Returns false on division by zero. */
#define INT_ROW(name, T, U)                                                                        \
  static bool name(vz_op_kind op, const T *a, int64_t sa, const T *b, int64_t sb, T *out,          \
                   int64_t n) {                                                                    \
    bool ok = true;                                                                                \
    for (int64_t i = 0; i < n; i++) {                                                              \
      T x = a[i * sa], y = b[i * sb];                                                              \
      switch (op) {                                                                                \
      case VZ_OP_ADD: out[i] = (T)((U)x + (U)y); break;                                            \
      case VZ_OP_SUB: out[i] = (T)((U)x - (U)y); break;                                            \
      case VZ_OP_MUL: out[i] = (T)((U)x * (U)y); break;                                            \
      default:                                                                                     \
        if (y == 0) {                                                                              \
          ok = false;                                                                              \
          out[i] = 0;                                                                              \
        } else if (y == -1) {                                                                      \
          out[i] = (T)((U)0 - (U)x);                                                               \
        } else {                                                                                   \
          out[i] = x / y;                                                                          \
        }                                                                                          \
        break;                                                                                     \
      }                                                                                            \
    }                                                                                              \
    return ok;                                                                                     \
  }

INT_ROW(i32_row, int32_t, uint32_t)
INT_ROW(i64_row, int64_t, uint64_t)

vz_status vz_cpu_binary(const vz_cpu *cpu, const vz_op_call *call) {
  const vz_tensor *ops[2] = {call->inputs[0], call->inputs[1]};
  vz_tensor *out = call->outputs[0];
  layout l;
  make_layout(out, 2, ops, &l);
  vz_dtype dt = out->dtype;
  size_t es = vz_dtype_size(dt);
  const char *pa = vz_cpu_data(ops[0]), *pb = vz_cpu_data(ops[1]);
  char *po = vz_cpu_data(out);
  int64_t inner = l.shape[l.ndim - 1];
  int64_t tasks = vz_tensor_numel(out) / inner * vz_cpu_blocks(inner, BLOCK);
  int64_t sa = l.stride[0][l.ndim - 1], sb = l.stride[1][l.ndim - 1];
  vz_op_kind op = call->op;
  int bad = 0;
#pragma omp parallel for num_threads(vz_cpu_threads_for(cpu, vz_tensor_numel(out)))                \
    schedule(static) reduction(|                                                                   \
                               : bad)
  for (int64_t t = 0; t < tasks; t++) {
    vz_cpu_tile tile = vz_cpu_tile_at(t, inner, BLOCK);
    int64_t row = tile.row, j0 = tile.col, n = tile.len;
    int64_t off[2];
    row_offsets(&l, 2, row, off);
    const char *a = pa + (off[0] + j0 * sa) * (int64_t)es;
    const char *b = pb + (off[1] + j0 * sb) * (int64_t)es;
    char *o = po + (row * inner + j0) * (int64_t)es;
    if (dt == VZ_F32)
      f32_row(cpu, op, (const float *)a, sa, (const float *)b, sb, (float *)o, n);
    else if (dt == VZ_I32)
      bad |= !i32_row(op, (const int32_t *)a, sa, (const int32_t *)b, sb, (int32_t *)o, n);
    else
      bad |= !i64_row(op, (const int64_t *)a, sa, (const int64_t *)b, sb, (int64_t *)o, n);
  }
  if (bad)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "integer division by zero");
  return VZ_OK;
}

/* ---- Activations and scale ---- */

bool vz_cpu_unary_supports(const vz_op_call *call) {
  const vz_tensor *x = call->inputs[0];
  return x && x->dtype == VZ_F32 && call->outputs[0]->dtype == VZ_F32 && vz_tensor_is_contiguous(x);
}

vz_status vz_cpu_unary(const vz_cpu *cpu, const vz_op_call *call) {
  const float *x = vz_cpu_data(call->inputs[0]);
  float *out = vz_cpu_data(call->outputs[0]);
  int64_t n = vz_tensor_numel(call->outputs[0]);
  float factor = call->op == VZ_OP_SCALE ? call->attrs.scale.factor : 0.0f;
  /* relative cost per element: the transcendental ones take ~30 steps */
  int64_t cost = call->op == VZ_OP_SCALE || call->op == VZ_OP_RELU ? 1 : 30;
  int64_t tasks = (n + BLOCK - 1) / BLOCK;
  vz_op_kind op = call->op;
#pragma omp parallel for num_threads(vz_cpu_threads_for(cpu, n *cost)) schedule(static)
  for (int64_t t = 0; t < tasks; t++) {
    int64_t i = t * BLOCK;
    int64_t len = n - i < BLOCK ? n - i : BLOCK;
    cpu->simd->unary(op, x + i, out + i, len, factor);
  }
  return VZ_OK;
}

/* ---- where ---- */

bool vz_cpu_where_supports(const vz_op_call *call) {
  const vz_tensor *c = call->inputs[0], *a = call->inputs[1], *b = call->inputs[2];
  if (!c || !a || !b || (c->dtype != VZ_BOOL && c->dtype != VZ_U8) || a->dtype != b->dtype ||
      call->outputs[0]->dtype != a->dtype)
    return false;
  size_t es = vz_dtype_size(a->dtype);
  return es == 1 || es == 2 || es == 4 || es == 8;
}

/* One row of where for elements of `es` bytes; es is a constant after
 * inlining, so the copies become single moves. */
static inline __attribute__((always_inline)) void where_row(size_t es, const uint8_t *c, int64_t sc,
                                                            const char *a, int64_t sa,
                                                            const char *b, int64_t sb, char *out,
                                                            int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    const char *src = c[i * sc] ? a + i * sa * (int64_t)es : b + i * sb * (int64_t)es;
    memcpy(out + i * (int64_t)es, src, es);
  }
}

vz_status vz_cpu_where(const vz_cpu *cpu, const vz_op_call *call) {
  const vz_tensor *ops[3] = {call->inputs[0], call->inputs[1], call->inputs[2]};
  vz_tensor *out = call->outputs[0];
  layout l;
  make_layout(out, 3, ops, &l);
  size_t es = vz_dtype_size(out->dtype);
  const uint8_t *pc = vz_cpu_data(ops[0]);
  const char *pa = vz_cpu_data(ops[1]), *pb = vz_cpu_data(ops[2]);
  char *po = vz_cpu_data(out);
  int64_t inner = l.shape[l.ndim - 1];
  int64_t tasks = vz_tensor_numel(out) / inner * vz_cpu_blocks(inner, BLOCK);
  int64_t sc = l.stride[0][l.ndim - 1], sa = l.stride[1][l.ndim - 1], sb = l.stride[2][l.ndim - 1];
#pragma omp parallel for num_threads(vz_cpu_threads_for(cpu, vz_tensor_numel(out))) schedule(static)
  for (int64_t t = 0; t < tasks; t++) {
    vz_cpu_tile tile = vz_cpu_tile_at(t, inner, BLOCK);
    int64_t row = tile.row, j0 = tile.col, n = tile.len;
    int64_t off[3];
    row_offsets(&l, 3, row, off);
    const uint8_t *c = pc + off[0] + j0 * sc;
    const char *a = pa + (off[1] + j0 * sa) * (int64_t)es;
    const char *b = pb + (off[2] + j0 * sb) * (int64_t)es;
    char *o = po + (row * inner + j0) * (int64_t)es;
    switch (es) {
    case 1: where_row(1, c, sc, a, sa, b, sb, o, n); break;
    case 2: where_row(2, c, sc, a, sa, b, sb, o, n); break;
    case 4: where_row(4, c, sc, a, sa, b, sb, o, n); break;
    default: where_row(8, c, sc, a, sa, b, sb, o, n); break;
    }
  }
  return VZ_OK;
}

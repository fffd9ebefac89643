/* matmul on OpenCL: operands read in place when their strides suit a GEMM
 * kernel (A with K contiguous; B with K or N contiguous), otherwise widened
 * into a contiguous f32 scratch copy on the device (f16 and bf16 operands,
 * bf16 rounding, transposed or odd strides); batch dimensions (up to two,
 * broadcasting) become the GEMM's batch, or extra rows of one GEMM when B
 * is a single matrix and A's batches stack. */
#include "backends/opencl/opencl.h"

static bool matmul_dtype(vz_dtype d) { return d == VZ_F32 || d == VZ_F16 || d == VZ_BF16; }

bool vz_cl_matmul_supports(const vz_cl *cl, const vz_op_call *call) {
  (void)cl;
  const vz_tensor *a = call->inputs[0], *b = call->inputs[1];
  return a && b && matmul_dtype(a->dtype) && matmul_dtype(b->dtype) && a->ndim >= 2 && b->ndim >= 2;
}

/* One operand as the GEMM reads it: op(t) is rows x cols with strides
 * (rs, cs), batch strides per output batch dimension. `scratch` is its
 * widened copy when it has one. */
typedef struct operand {
  const vz_tensor *t;
  vz_tensor *scratch;
  int64_t rows, cols, rs, cs;
  int64_t bstride[2];
} operand;

/* Fills rows, cols and strides of op(t) (transposed when `trans`). */
static void read_layout(operand *o, const vz_tensor *t, bool trans, int nbatch,
                        const int64_t *batch) {
  int nd = t->ndim, r = trans ? nd - 1 : nd - 2, c = trans ? nd - 2 : nd - 1;
  o->t = t;
  o->rows = t->shape[r];
  o->cols = t->shape[c];
  o->rs = t->stride[r];
  o->cs = t->stride[c];
  o->bstride[0] = o->bstride[1] = 0;
  for (int d = 0; d < nbatch; d++) {
    int j = d - (nbatch - (nd - 2));
    int slot = d + (2 - nbatch); /* right-aligned into the two batch slots */
    o->bstride[slot] = (j >= 0 && t->shape[j] > 1 && batch[d] > 1) ? t->stride[j] : 0;
  }
}

/* Replaces the operand by a contiguous f32 copy of `view` (its own shape),
 * rounded to bf16 precision when `round`; then re-reads its layout. */
static vz_status widen(vz_cl *cl, operand *o, const vz_tensor *view, bool round, bool trans,
                       int nbatch, const int64_t *batch) {
  vz_status st = vz_cl_scratch_tensor(cl, VZ_F32, view->ndim, view->shape, &o->scratch);
  if (st == VZ_OK)
    st = vz_cl_widen_f32(cl, view, round, o->scratch);
  if (st == VZ_OK)
    read_layout(o, o->scratch, trans, nbatch, batch);
  return st;
}

vz_status vz_cl_matmul(vz_cl *cl, const vz_op_call *call) {
  const vz_tensor *ta = call->inputs[0], *tb = call->inputs[1];
  vz_tensor *out = call->outputs[0];
  const bool trans_a = call->attrs.matmul.trans_a, trans_b = call->attrs.matmul.trans_b;
  const int nbatch = out->ndim - 2;
  const int64_t *batch = out->shape;
  const bool bf16 = ta->dtype == VZ_BF16 || tb->dtype == VZ_BF16;
  operand a = {0}, b = {0};
  vz_tensor *a_view = NULL;
  read_layout(&a, ta, trans_a, nbatch, batch);
  read_layout(&b, tb, trans_b, nbatch, batch);
  const int64_t m = a.rows, k = a.cols, n = b.cols;
  vz_status st = VZ_OK;

  /* A needs K contiguous; a transposed A is copied through its transposed
   * view, so that the copy is row-major. */
  bool a_direct = ta->dtype == VZ_F32 && !bf16 && (a.cs == 1 || k == 1);
  if (!a_direct) {
    const vz_tensor *view = ta;
    if (trans_a) {
      st = vz_transpose(ta, -1, -2, &a_view);
      view = a_view;
    }
    if (st == VZ_OK)
      st = widen(cl, &a, view, bf16, false, nbatch, batch);
  }
  /* B needs K or N contiguous; a copy keeps B's own orientation. */
  bool b_direct = tb->dtype == VZ_F32 && !bf16 && (b.rs == 1 || b.cs == 1 || k == 1 || n == 1);
  if (st == VZ_OK && !b_direct)
    st = widen(cl, &b, tb, bf16, trans_b, nbatch, batch);

  if (st == VZ_OK) {
    vz_cl_gemm g = {
        .a = vz_cl_mem_of(a.t),
        .b = vz_cl_mem_of(b.t),
        .c = vz_cl_mem_of(out),
        .a_off = a.t->offset,
        .b_off = b.t->offset,
        .c_off = out->offset,
        .m = m,
        .n = n,
        .k = k,
        .a_rs = a.rs,
        .a_cs = a.cs,
        .b_rs = b.rs,
        .b_cs = b.cs,
        .batch0 = nbatch >= 2 ? batch[0] : 1,
        .batch1 = nbatch >= 1 ? batch[nbatch - 1] : 1,
        .b1_div = 1,
        .bstride = {a.bstride[0], a.bstride[1], b.bstride[0], b.bstride[1]},
    };
    /* One B and A's batches stacked row after row: a single taller GEMM. */
    bool one_b = g.bstride[2] == 0 && g.bstride[3] == 0;
    bool stacked = (a.cs == 1 || k == 1) && (g.batch1 == 1 || g.bstride[1] == m * a.rs) &&
                   (g.batch0 == 1 || g.bstride[0] == g.batch1 * m * a.rs);
    if (one_b && stacked && g.batch0 * g.batch1 > 1 && (m == 1 || a.rs >= k)) {
      g.m = m * g.batch0 * g.batch1;
      g.batch0 = g.batch1 = 1;
      if (m == 1)
        g.a_rs = g.bstride[1] ? g.bstride[1] : g.bstride[0];
    }
    st = vz_cl_gemm_run(cl, &g);
  }
  vz_cl_scratch_tensor_free(a.scratch);
  vz_cl_scratch_tensor_free(b.scratch);
  vz_tensor_free(a_view);
  return st;
}

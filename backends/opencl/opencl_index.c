/* Indexing ops on OpenCL: embedding, index_select and gather. An index out
 * of range cannot fail the call that enqueues it; the kernel records it in
 * the deferred error word and the next synchronize (the read of a result)
 * reports it, with the same text as the CPU backend. */
#include "backends/opencl/opencl.h"

static bool is_id_dtype(vz_dtype d) { return d == VZ_I32 || d == VZ_I64; }

bool vz_cl_index_supports(const vz_cl *cl, const vz_op_call *call) {
  (void)cl;
  const vz_tensor *x = call->inputs[0], *ids = call->inputs[1];
  if (!x || !ids || !is_id_dtype(ids->dtype))
    return false;
  switch (call->op) {
  case VZ_OP_EMBEDDING: return x->dtype == VZ_F32 || x->dtype == VZ_F16 || x->dtype == VZ_BF16;
  case VZ_OP_INDEX_SELECT:
  case VZ_OP_GATHER: {
    size_t es = vz_dtype_size(x->dtype);
    return es == 1 || es == 2 || es == 4 || es == 8;
  }
  default: return false;
  }
}

static vz_status enqueue_2d(vz_cl_launch *l, int64_t inner, int64_t rows) {
  return vz_cl_enqueue_2d(l, inner, rows);
}

vz_status vz_cl_embedding(vz_cl *cl, const vz_op_call *call) {
  const vz_tensor *table = call->inputs[0], *ids = call->inputs[1];
  int64_t n = vz_tensor_numel(ids), vocab = table->shape[0], dim = table->shape[1];
  vz_cl_launch l;
  vz_cl_begin(cl, VZ_CLK_embedding, &l);
  vz_cl_arg_tensor(&l, call->outputs[0]);
  vz_cl_arg_tensor(&l, table);
  vz_cl_arg_int(&l, table->dtype == VZ_F32 ? 0 : table->dtype == VZ_F16 ? 1 : 2);
  vz_cl_arg_tensor(&l, ids);
  vz_cl_arg_int(&l, ids->dtype == VZ_I64);
  vz_cl_arg_long(&l, n);
  vz_cl_arg_long(&l, vocab);
  vz_cl_arg_long(&l, dim);
  vz_cl_arg_status(&l);
  return enqueue_2d(&l, dim, n);
}

static vz_cl_kernel_id by_size(size_t es, vz_cl_kernel_id k1, vz_cl_kernel_id k2,
                               vz_cl_kernel_id k4, vz_cl_kernel_id k8) {
  return es == 1 ? k1 : es == 2 ? k2 : es == 4 ? k4 : k8;
}

vz_status vz_cl_index_select(vz_cl *cl, const vz_op_call *call) {
  const vz_tensor *x = call->inputs[0], *ids = call->inputs[1];
  int ax = vz_axis(call->attrs.axis.axis, x->ndim);
  int64_t outer, limit, inner;
  vz_cl_split_axis(x, ax, &outer, &limit, &inner);
  int64_t n_ids = ids->shape[0];
  vz_cl_launch l;
  vz_cl_begin(cl,
              by_size(vz_dtype_size(x->dtype), VZ_CLK_index_select_1, VZ_CLK_index_select_2,
                      VZ_CLK_index_select_4, VZ_CLK_index_select_8),
              &l);
  vz_cl_arg_tensor(&l, call->outputs[0]);
  vz_cl_arg_tensor(&l, x);
  vz_cl_arg_tensor(&l, ids);
  vz_cl_arg_int(&l, ids->dtype == VZ_I64);
  vz_cl_arg_long(&l, outer);
  vz_cl_arg_long(&l, limit);
  vz_cl_arg_long(&l, inner);
  vz_cl_arg_long(&l, n_ids);
  vz_cl_arg_int(&l, ax);
  vz_cl_arg_status(&l);
  return enqueue_2d(&l, inner, outer * n_ids);
}

vz_status vz_cl_gather(vz_cl *cl, const vz_op_call *call) {
  const vz_tensor *x = call->inputs[0], *index = call->inputs[1];
  const int nd = x->ndim, ax = vz_axis(call->attrs.axis.axis, nd), lead = 4 - nd;
  /* The index's shape and x's contiguous strides, right-aligned in 4. */
  int64_t shape[4] = {1, 1, 1, 1}, xs[4] = {0, 0, 0, 0}, s = 1;
  for (int d = nd - 1; d >= 0; d--) {
    shape[lead + d] = index->shape[d];
    xs[lead + d] = s;
    s *= x->shape[d];
  }
  vz_cl_launch l;
  vz_cl_begin(cl,
              by_size(vz_dtype_size(x->dtype), VZ_CLK_gather_1, VZ_CLK_gather_2, VZ_CLK_gather_4,
                      VZ_CLK_gather_8),
              &l);
  vz_cl_arg_tensor(&l, call->outputs[0]);
  vz_cl_arg_tensor(&l, x);
  vz_cl_arg_tensor(&l, index);
  vz_cl_arg_int(&l, index->dtype == VZ_I64);
  vz_cl_arg_long4(&l, shape);
  vz_cl_arg_long4(&l, xs);
  vz_cl_arg_int(&l, lead + ax);
  vz_cl_arg_int(&l, ax);
  vz_cl_arg_long(&l, x->shape[ax]);
  vz_cl_arg_status(&l);
  return enqueue_2d(&l, shape[3], shape[0] * shape[1] * shape[2]);
}

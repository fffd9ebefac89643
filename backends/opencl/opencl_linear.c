/* The fused Linear layer on OpenCL, activation(x w^T + bias) + residual:
 * the GEMM of opencl_matmul.c (x and w read in place or widened as matmul
 * does) writes the product into the output, then one epilogue kernel adds
 * the bias, applies the activation and adds the residual in place: two
 * launches where the separate ops take four. When the residual (or the
 * bias) shares the output's buffer (x = x + linear(h)), the product goes
 * to a scratch buffer first, so that it does not overwrite what the
 * epilogue still reads. */
#include "backends/opencl/opencl.h"

/* The epilogue kernel's code for an activation; -1 when it is none of them. */
static int activation_code(vz_op_kind act) {
  switch (act) {
  case VZ_OP_COUNT: return 0;
  case VZ_OP_GELU_ERF: return 1;
  case VZ_OP_GELU_TANH: return 2;
  case VZ_OP_QUICK_GELU: return 3;
  case VZ_OP_SILU: return 4;
  case VZ_OP_RELU: return 5;
  case VZ_OP_SIGMOID: return 6;
  default: return -1;
  }
}

static bool matmul_dtype(vz_dtype d) { return d == VZ_F32 || d == VZ_F16 || d == VZ_BF16; }

bool vz_cl_linear_supports(const vz_cl *cl, const vz_op_call *call) {
  (void)cl;
  const vz_tensor *x = call->inputs[0], *w = call->inputs[1];
  if (!x || !w || !matmul_dtype(x->dtype) || !matmul_dtype(w->dtype) || x->ndim < 1 ||
      w->ndim != 2 || activation_code(call->attrs.linear.activation) < 0)
    return false;
  for (int i = 2; i < call->n_inputs; i++)
    if (call->inputs[i] && call->inputs[i]->dtype != VZ_F32)
      return false;
  return true;
}

static bool shares_buffer(const vz_tensor *a, const vz_tensor *b) {
  return a && b && a->buffer == b->buffer;
}

vz_status vz_cl_linear(vz_cl *cl, const vz_op_call *call) {
  const vz_tensor *x = call->inputs[0], *w = call->inputs[1];
  const vz_tensor *bias = call->n_inputs > 2 ? call->inputs[2] : NULL;
  const vz_tensor *res = call->n_inputs > 3 ? call->inputs[3] : NULL;
  vz_tensor *out = call->outputs[0];
  const int act = activation_code(call->attrs.linear.activation);
  const int64_t k = w->shape[1], n = w->shape[0];
  vz_tensor *x_rows = NULL, *product = NULL, *scratch = NULL;
  vz_status st = VZ_OK;

  /* x as at least one row: a vector becomes [1, K] */
  const vz_tensor *xm = x;
  if (x->ndim == 1) {
    st = vz_tensor_view(x, 2, (int64_t[]){1, k}, (int64_t[]){k * x->stride[0], x->stride[0]},
                        x->offset, &x_rows);
    xm = x_rows;
  }
  /* the product [..., N] of x's shape, in the output or in a scratch buffer */
  int64_t shape[VZ_MAX_DIMS];
  for (int d = 0; xm && d < xm->ndim - 1; d++)
    shape[d] = xm->shape[d];
  const int nd = xm ? xm->ndim : 0;
  shape[nd - 1] = n;
  const bool separate = shares_buffer(res, out) || shares_buffer(bias, out);
  if (st == VZ_OK && separate) {
    st = vz_cl_scratch_tensor(cl, VZ_F32, nd, shape, &scratch);
  } else if (st == VZ_OK) {
    int64_t stride[VZ_MAX_DIMS], s = 1;
    for (int d = nd - 1; d >= 0; d--) {
      stride[d] = s;
      s *= shape[d];
    }
    st = vz_tensor_view(out, nd, shape, stride, out->offset, &product);
  }
  vz_tensor *y = separate ? scratch : product;
  if (st == VZ_OK) {
    vz_op_call mm = {.op = VZ_OP_MATMUL, .n_inputs = 2, .inputs = {xm, w}, .n_outputs = 1};
    mm.outputs[0] = y;
    mm.attrs.matmul.trans_b = true;
    st = vz_cl_matmul(cl, &mm);
  }
  if (st == VZ_OK && (bias || res || act != 0 || separate)) {
    /* y seen with the output's shape (both contiguous, same elements) */
    vz_tensor y_as_out = *y;
    y_as_out.ndim = out->ndim;
    for (int d = 0; d < out->ndim; d++) {
      y_as_out.shape[d] = out->shape[d];
      y_as_out.stride[d] = out->stride[d];
    }
    const vz_tensor *ops[3] = {&y_as_out, bias ? bias : &y_as_out, res ? res : &y_as_out};
    vz_cl_layout lay;
    vz_cl_make_layout(out->ndim, out->shape, 3, ops, &lay);
    vz_cl_launch l;
    vz_cl_begin(cl, VZ_CLK_linear_epilogue, &l);
    vz_cl_arg_tensor(&l, out);
    vz_cl_arg_tensor(&l, y);
    vz_cl_arg_tensor(&l, bias);
    vz_cl_arg_tensor(&l, res);
    vz_cl_arg_long4(&l, lay.shape);
    for (int i = 0; i < 3; i++)
      vz_cl_arg_long4(&l, lay.stride[i]);
    vz_cl_arg_int(&l, act);
    st = vz_cl_enqueue_layout(&l, &lay);
  }
  vz_tensor_free(x_rows);
  vz_tensor_free(product);
  vz_cl_scratch_tensor_free(scratch);
  return st;
}

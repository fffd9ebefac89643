/* Ops that move or convert elements on OpenCL: copy (any strides), cast
 * (every dtype pair; f64 needs cl_khr_fp64), concat (device-side rectangle
 * copies), and the widening to f32 that matmul uses for f16 / bf16
 * operands. */
#include "backends/opencl/opencl.h"

static vz_status enqueue_layout(vz_cl_launch *l, const vz_cl_layout *lay) {
  return vz_cl_enqueue_layout(l, lay);
}

/* The layout of copying x into a contiguous tensor of its shape. */
static void copy_layout(const vz_tensor *x, vz_cl_layout *lay) {
  vz_cl_make_layout(x->ndim, x->shape, 1, &x, lay);
}

bool vz_cl_copy_supports(const vz_cl *cl, const vz_op_call *call) {
  (void)cl;
  const vz_tensor *x = call->inputs[0];
  return x && (unsigned)x->dtype < VZ_DTYPE_COUNT;
}

static vz_status copy_into(vz_cl *cl, const vz_tensor *x, vz_tensor *out) {
  size_t es = vz_dtype_size(x->dtype);
  vz_cl_kernel_id id = es == 1   ? VZ_CLK_copy_1
                       : es == 2 ? VZ_CLK_copy_2
                       : es == 4 ? VZ_CLK_copy_4
                                 : VZ_CLK_copy_8;
  vz_cl_layout lay;
  copy_layout(x, &lay);
  vz_cl_launch l;
  vz_cl_begin(cl, id, &l);
  vz_cl_arg_tensor(&l, out);
  vz_cl_arg_tensor(&l, x);
  vz_cl_arg_long4(&l, lay.shape);
  vz_cl_arg_long4(&l, lay.stride[0]);
  return enqueue_layout(&l, &lay);
}

vz_status vz_cl_copy(vz_cl *cl, const vz_op_call *call) {
  return copy_into(cl, call->inputs[0], call->outputs[0]);
}

bool vz_cl_cast_supports(const vz_cl *cl, const vz_op_call *call) {
  const vz_tensor *x = call->inputs[0];
  if (!x || (unsigned)x->dtype >= VZ_DTYPE_COUNT || (unsigned)call->attrs.cast.to >= VZ_DTYPE_COUNT)
    return false;
  /* f64 values need doubles on the device */
  return cl->has_fp64 || x->dtype == call->attrs.cast.to ||
         (x->dtype != VZ_F64 && call->attrs.cast.to != VZ_F64);
}

vz_status vz_cl_cast(vz_cl *cl, const vz_op_call *call) {
  const vz_tensor *x = call->inputs[0];
  vz_tensor *out = call->outputs[0];
  if (x->dtype == out->dtype)
    return copy_into(cl, x, out);
  vz_cl_layout lay;
  copy_layout(x, &lay);
  vz_cl_launch l;
  vz_cl_begin(cl, VZ_CLK_cast, &l);
  vz_cl_arg_tensor(&l, out);
  vz_cl_arg_int(&l, (int32_t)out->dtype);
  vz_cl_arg_tensor(&l, x);
  vz_cl_arg_int(&l, (int32_t)x->dtype);
  vz_cl_arg_long4(&l, lay.shape);
  vz_cl_arg_long4(&l, lay.stride[0]);
  return enqueue_layout(&l, &lay);
}

vz_status vz_cl_widen_f32(vz_cl *cl, const vz_tensor *x, bool round_bf16, vz_tensor *out) {
  vz_cl_layout lay;
  copy_layout(x, &lay);
  vz_cl_launch l;
  vz_cl_begin(cl, VZ_CLK_widen_f32, &l);
  vz_cl_arg_tensor(&l, out);
  vz_cl_arg_tensor(&l, x);
  vz_cl_arg_int(&l, (int32_t)x->dtype);
  vz_cl_arg_int(&l, round_bf16);
  vz_cl_arg_long4(&l, lay.shape);
  vz_cl_arg_long4(&l, lay.stride[0]);
  return enqueue_layout(&l, &lay);
}

/* ---- concat: one rectangle copy per input (rows of the outer
 * dimensions, each input's chunk landing at its column in the output) ---- */

bool vz_cl_concat_supports(const vz_cl *cl, const vz_op_call *call) {
  (void)cl;
  for (int k = 0; k < call->n_inputs; k++)
    if (!call->inputs[k] || (unsigned)call->inputs[k]->dtype >= VZ_DTYPE_COUNT)
      return false;
  return true;
}

vz_status vz_cl_concat(vz_cl *cl, const vz_op_call *call) {
  vz_tensor *out = call->outputs[0];
  const int ax = vz_axis(call->attrs.axis.axis, out->ndim);
  const size_t es = vz_dtype_size(out->dtype);
  size_t outer = 1, inner = es;
  for (int d = 0; d < ax; d++)
    outer *= (size_t)out->shape[d];
  for (int d = ax + 1; d < out->ndim; d++)
    inner *= (size_t)out->shape[d];
  const size_t row_bytes = (size_t)out->shape[ax] * inner;
  size_t start = 0;
  for (int k = 0; k < call->n_inputs; k++) {
    const vz_tensor *x = call->inputs[k];
    size_t chunk = (size_t)x->shape[ax] * inner;
    if (chunk && outer) {
      size_t src_origin[3] = {(size_t)x->offset * es, 0, 0};
      size_t dst_origin[3] = {(size_t)out->offset * es + start, 0, 0};
      size_t region[3] = {chunk, outer, 1};
      cl_int err =
          clEnqueueCopyBufferRect(cl->queue, vz_cl_mem_of(x), vz_cl_mem_of(out), src_origin,
                                  dst_origin, region, chunk, 0, row_bytes, 0, 0, NULL, NULL);
      if (err != CL_SUCCESS)
        return vz_cl_fail(err, "clEnqueueCopyBufferRect (concat)");
    }
    start += chunk;
  }
  return VZ_OK;
}

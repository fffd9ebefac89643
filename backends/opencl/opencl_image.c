/* Image ops on OpenCL: conv2d as im2col into a device scratch buffer, one
 * GEMM per batch of images (weight [O, K] times the columns [N, K]^T, the
 * dot-product layout) and the bias added in place; bicubic resize. */
#include <math.h>

#include "backends/opencl/opencl.h"

bool vz_cl_image_supports(const vz_cl *cl, const vz_op_call *call) {
  (void)cl;
  for (int i = 0; i < call->n_inputs; i++)
    if (call->inputs[i] && call->inputs[i]->dtype != VZ_F32)
      return false;
  return call->op == VZ_OP_CONV2D || call->op == VZ_OP_BICUBIC;
}

/* out [B, O, OH, OW] += bias [O], through the broadcasting add kernel. */
static vz_status add_channel_bias(vz_cl *cl, vz_tensor *out, const vz_tensor *bias) {
  vz_tensor *view = NULL;
  int64_t shape[4] = {1, bias->shape[0], 1, 1}, stride[4] = {0, 1, 0, 0};
  vz_status st = vz_tensor_view(bias, 4, shape, stride, bias->offset, &view);
  if (st != VZ_OK)
    return st;
  vz_op_call add = {.op = VZ_OP_ADD, .n_inputs = 2, .inputs = {out, view}, .n_outputs = 1};
  add.outputs[0] = out;
  st = vz_cl_binary(cl, &add);
  vz_tensor_free(view);
  return st;
}

vz_status vz_cl_conv2d(vz_cl *cl, const vz_op_call *call) {
  const vz_tensor *x = call->inputs[0], *w = call->inputs[1];
  const vz_tensor *bias = call->n_inputs > 2 ? call->inputs[2] : NULL;
  vz_tensor *out = call->outputs[0];
  const int64_t B = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
  const int64_t O = w->shape[0], KH = w->shape[2], KW = w->shape[3];
  const int64_t OH = out->shape[2], OW = out->shape[3], N = OH * OW;
  const int64_t K = C * KH * KW;
  vz_status st = VZ_OK;
  if (K == 0) { /* an empty sum: the bias alone */
    cl_float zero = 0.0f;
    cl_int err = clEnqueueFillBuffer(cl->queue, vz_cl_mem_of(out), &zero, sizeof zero,
                                     (size_t)out->offset * sizeof(float), vz_tensor_nbytes(out), 0,
                                     NULL, NULL);
    if (err != CL_SUCCESS)
      return vz_cl_fail(err, "clEnqueueFillBuffer (conv2d)");
    return bias ? add_channel_bias(cl, out, bias) : VZ_OK;
  }
  if ((uint64_t)K > SIZE_MAX / sizeof(float) / (uint64_t)(B * N))
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "conv2d: the im2col buffer overflows");
  /* Images in groups whose columns fit one buffer the device allows. */
  int64_t per_image = N * K * (int64_t)sizeof(float);
  int64_t group = per_image > 0 ? (int64_t)(cl->max_alloc / (uint64_t)per_image) : B;
  if (group < 1)
    return vz_fail(VZ_ERR_OUT_OF_MEMORY,
                   "conv2d: one image's im2col buffer (%lld bytes) exceeds the device's largest "
                   "allocation",
                   (long long)per_image);
  group = group < B ? group : B;
  cl_mem cols = NULL;
  st = vz_cl_scratch(cl, (size_t)(group * per_image), &cols);
  for (int64_t b0 = 0; st == VZ_OK && b0 < B; b0 += group) {
    int64_t nb = B - b0 < group ? B - b0 : group;
    vz_cl_launch l;
    vz_cl_begin(cl, VZ_CLK_im2col, &l);
    vz_cl_arg_mem(&l, cols);
    vz_cl_arg_mem(&l, vz_cl_mem_of(x));
    vz_cl_arg_long(&l, x->offset + b0 * C * H * W);
    int64_t args[] = {nb,
                      C,
                      H,
                      W,
                      KH,
                      KW,
                      call->attrs.conv2d.stride_h,
                      call->attrs.conv2d.stride_w,
                      call->attrs.conv2d.pad_h,
                      call->attrs.conv2d.pad_w,
                      OH,
                      OW};
    for (size_t i = 0; i < sizeof args / sizeof args[0]; i++)
      vz_cl_arg_long(&l, args[i]);
    st = vz_cl_enqueue_2d(&l, K, nb * N);
    /* out[b] [O, N] = weight [O, K] x cols[b] [N, K]^T */
    vz_cl_gemm g = {
        .a = vz_cl_mem_of(w),
        .b = cols,
        .c = vz_cl_mem_of(out),
        .a_off = w->offset,
        .b_off = 0,
        .c_off = out->offset + b0 * O * N,
        .m = O,
        .n = N,
        .k = K,
        .a_rs = K,
        .a_cs = 1,
        .b_rs = 1,
        .b_cs = K,
        .batch0 = 1,
        .batch1 = nb,
        .b1_div = 1,
        .bstride = {0, 0, 0, N * K},
    };
    if (st == VZ_OK)
      st = vz_cl_gemm_run(cl, &g);
  }
  if (cols)
    clReleaseMemObject(cols);
  if (st == VZ_OK && bias)
    st = add_channel_bias(cl, out, bias);
  return st;
}

vz_status vz_cl_bicubic(vz_cl *cl, const vz_op_call *call) {
  const vz_tensor *x = call->inputs[0];
  vz_tensor *out = call->outputs[0];
  const int64_t planes = x->shape[0] * x->shape[1], H = x->shape[2], W = x->shape[3];
  const int64_t OH = out->shape[2], OW = out->shape[3];
  const bool ac = call->attrs.bicubic.align_corners;
  /* the scales exactly as the CPU computes them */
  float scale_h = ac ? (OH > 1 ? (float)(H - 1) / (float)(OH - 1) : 0.0f) : (float)H / (float)OH;
  float scale_w = ac ? (OW > 1 ? (float)(W - 1) / (float)(OW - 1) : 0.0f) : (float)W / (float)OW;
  vz_cl_launch l;
  vz_cl_begin(cl, VZ_CLK_bicubic, &l);
  vz_cl_arg_tensor(&l, out);
  vz_cl_arg_tensor(&l, x);
  int64_t args[] = {planes, H, W, OH, OW};
  for (size_t i = 0; i < sizeof args / sizeof args[0]; i++)
    vz_cl_arg_long(&l, args[i]);
  vz_cl_arg_float(&l, scale_h);
  vz_cl_arg_float(&l, scale_w);
  vz_cl_arg_int(&l, ac);
  return vz_cl_enqueue_2d(&l, OW, planes * OH);
}

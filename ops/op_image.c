/* Image-shaped ops: conv2d (patch embedding) and bicubic resize (position
 * embedding interpolation). */
#include "ops/internal.h"

static vz_status need_4d_f32(const vz_tensor *t, const char *what) {
  vz_status st = vz_need_f32(t, what);
  if (st == VZ_OK && t->ndim != 4)
    st = vz_fail(VZ_ERR_SHAPE, "%s must be 4-D, not %d-D", what, t->ndim);
  return st;
}

vz_status vz_infer_conv2d(const vz_op_call *call, vz_tensor_desc *outs) {
  const vz_tensor *x = call->inputs[0], *w = call->inputs[1];
  const vz_tensor *bias = call->n_inputs > 2 ? call->inputs[2] : NULL;
  vz_status st = need_4d_f32(x, "input");
  if (st == VZ_OK)
    st = need_4d_f32(w, "weight");
  if (st != VZ_OK)
    return st;
  if (w->shape[1] != x->shape[1])
    return vz_fail(VZ_ERR_SHAPE, "weight takes %lld channels, the input has %lld",
                   (long long)w->shape[1], (long long)x->shape[1]);
  if (bias && (bias->dtype != VZ_F32 || bias->ndim != 1 || bias->shape[0] != w->shape[0]))
    return vz_fail(VZ_ERR_SHAPE, "bias must be f32 of shape [%lld]", (long long)w->shape[0]);
  int sh = call->attrs.conv2d.stride_h, sw = call->attrs.conv2d.stride_w;
  int ph = call->attrs.conv2d.pad_h, pw = call->attrs.conv2d.pad_w;
  if (sh < 1 || sw < 1 || ph < 0 || pw < 0)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "strides must be >= 1 and padding >= 0");
  int64_t span_h = x->shape[2] + 2 * (int64_t)ph - w->shape[2];
  int64_t span_w = x->shape[3] + 2 * (int64_t)pw - w->shape[3];
  if (span_h < 0 || span_w < 0)
    return vz_fail(VZ_ERR_SHAPE, "kernel %lldx%lld is larger than the padded input",
                   (long long)w->shape[2], (long long)w->shape[3]);
  outs[0].dtype = VZ_F32;
  outs[0].ndim = 4;
  outs[0].shape[0] = x->shape[0];
  outs[0].shape[1] = w->shape[0];
  outs[0].shape[2] = span_h / sh + 1;
  outs[0].shape[3] = span_w / sw + 1;
  return VZ_OK;
}

vz_status vz_infer_bicubic(const vz_op_call *call, vz_tensor_desc *outs) {
  const vz_tensor *x = call->inputs[0];
  vz_status st = need_4d_f32(x, "input");
  if (st != VZ_OK)
    return st;
  int64_t oh = call->attrs.bicubic.out_h, ow = call->attrs.bicubic.out_w;
  if (oh < 1 || ow < 1 || oh > (1 << 20) || ow > (1 << 20))
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "output size %lldx%lld is out of range", (long long)oh,
                   (long long)ow);
  if (x->shape[2] < 1 || x->shape[3] < 1)
    return vz_fail(VZ_ERR_SHAPE, "input has no pixels");
  outs[0].dtype = VZ_F32;
  outs[0].ndim = 4;
  outs[0].shape[0] = x->shape[0];
  outs[0].shape[1] = x->shape[1];
  outs[0].shape[2] = oh;
  outs[0].shape[3] = ow;
  return VZ_OK;
}

vz_status vz_conv2d(const vz_tensor *x, const vz_tensor *weight, const vz_tensor *bias,
                    int stride_h, int stride_w, int pad_h, int pad_w, vz_tensor **out) {
  vz_op_attrs attrs = {.conv2d = {stride_h, stride_w, pad_h, pad_w}};
  const vz_tensor *in[] = {x, weight, bias};
  return vz_run_op(VZ_OP_CONV2D, 3, in, &attrs, out, NULL);
}

vz_status vz_bicubic(const vz_tensor *x, int64_t out_h, int64_t out_w, bool align_corners,
                     vz_tensor **out) {
  vz_op_attrs attrs = {.bicubic = {out_h, out_w, align_corners}};
  return vz_run_op(VZ_OP_BICUBIC, 1, &x, &attrs, out, NULL);
}

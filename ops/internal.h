/* Library-internal declarations shared by ops/ and the backends. */
#ifndef VLZOO_OPS_INTERNAL_H
#define VLZOO_OPS_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vlzoo/backend.h"
#include "vlzoo/ops.h"
#include "vlzoo/tensor.h"

#if defined(__GNUC__)
#define VZ_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define VZ_PRINTF(fmt, args)
#endif

/* Records a message as the calling thread's last error and returns status,
 * so that failures read `return vz_fail(VZ_ERR_SHAPE, "...", ...);`. */
vz_status vz_fail(vz_status status, const char *fmt, ...) VZ_PRINTF(2, 3);

/* Prefixes the current last error with context ("matmul: ") and returns
 * status unchanged. */
vz_status vz_fail_context(vz_status status, const char *fmt, ...) VZ_PRINTF(2, 3);

struct vz_buffer {
  vz_backend *backend;
  void *handle; /* the backend's own handle */
  void *host;   /* host address of the memory, or NULL */
  size_t bytes;
  atomic_int refs;
  /* Set for host memory lent by vz_tensor_wrap_host: the buffer is
   * unwrapped rather than freed, then release(release_context) runs. */
  bool read_only;
  vz_host_release release;
  void *release_context;
};

struct vz_backend {
  const vz_backend_iface *iface;
  void *self;
  /* CPU instance that runs ops this backend lacks; made on first need. */
  vz_backend *fallback;
  /* Ops that have fallen back at least once (logged at info level the first
   * time, at debug level every time). */
  bool fell_back[VZ_OP_COUNT];
  vz_transfer_counts transfers;
};

void vz_buffer_retain(vz_buffer *b);
void vz_buffer_release(vz_buffer *b);

/* The backend's buffer_write / buffer_read, counted in be->transfers: every
 * host <-> backend copy of tensor bytes goes through these two. */
vz_status vz_backend_upload(vz_backend *be, void *handle, size_t offset, const void *src,
                            size_t bytes);
vz_status vz_backend_download(vz_backend *be, void *handle, size_t offset, void *dst, size_t bytes);

/* Shape and dtype of one output, as an op's rule computes it. */
typedef struct vz_tensor_desc {
  vz_dtype dtype;
  int ndim;
  int64_t shape[VZ_MAX_DIMS];
} vz_tensor_desc;

/* One row of the op table. */
typedef struct vz_op_def {
  const char *name;
  int min_inputs, max_inputs;
  int n_outputs;
  /* Backends receive inputs with any strides (one whose supports()
   * declines them gets contiguous copies); otherwise the dispatcher makes
   * every input contiguous first. */
  bool strided_inputs;
  /* Checks inputs and attributes and fills the outputs' descriptions. */
  vz_status (*infer)(const vz_op_call *call, vz_tensor_desc *outs);
} vz_op_def;

const vz_op_def *vz_op_definition(vz_op_kind op);

/* Shape rules, one per op family (ops/op_*.c). */
vz_status vz_infer_matmul(const vz_op_call *call, vz_tensor_desc *outs);
vz_status vz_infer_binary(const vz_op_call *call, vz_tensor_desc *outs);
vz_status vz_infer_unary(const vz_op_call *call, vz_tensor_desc *outs);
vz_status vz_infer_reduce(const vz_op_call *call, vz_tensor_desc *outs);
vz_status vz_infer_softmax(const vz_op_call *call, vz_tensor_desc *outs);
vz_status vz_infer_layer_norm(const vz_op_call *call, vz_tensor_desc *outs);
vz_status vz_infer_rms_norm(const vz_op_call *call, vz_tensor_desc *outs);
vz_status vz_infer_l2_normalize(const vz_op_call *call, vz_tensor_desc *outs);
vz_status vz_infer_embedding(const vz_op_call *call, vz_tensor_desc *outs);
vz_status vz_infer_index_select(const vz_op_call *call, vz_tensor_desc *outs);
vz_status vz_infer_gather(const vz_op_call *call, vz_tensor_desc *outs);
vz_status vz_infer_where(const vz_op_call *call, vz_tensor_desc *outs);
vz_status vz_infer_cumsum(const vz_op_call *call, vz_tensor_desc *outs);
vz_status vz_infer_concat(const vz_op_call *call, vz_tensor_desc *outs);
vz_status vz_infer_copy(const vz_op_call *call, vz_tensor_desc *outs);
vz_status vz_infer_cast(const vz_op_call *call, vz_tensor_desc *outs);
vz_status vz_infer_argmax(const vz_op_call *call, vz_tensor_desc *outs);
vz_status vz_infer_topk(const vz_op_call *call, vz_tensor_desc *outs);
vz_status vz_infer_linear(const vz_op_call *call, vz_tensor_desc *outs);
vz_status vz_infer_conv2d(const vz_op_call *call, vz_tensor_desc *outs);
vz_status vz_infer_bicubic(const vz_op_call *call, vz_tensor_desc *outs);
vz_status vz_infer_rope(const vz_op_call *call, vz_tensor_desc *outs);
vz_status vz_infer_alibi(const vz_op_call *call, vz_tensor_desc *outs);
vz_status vz_infer_t5_bias(const vz_op_call *call, vz_tensor_desc *outs);
vz_status vz_infer_attention(const vz_op_call *call, vz_tensor_desc *outs);

/* ---- Shape helpers ---- */

/* numpy broadcasting of two shapes into out (rank = the larger rank). */
vz_status vz_broadcast_shapes(int na, const int64_t *a, int nb, const int64_t *b, int *nout,
                              int64_t *out);

/* Whether a shape broadcasts to `to` (numpy rules, right-aligned). */
bool vz_broadcasts_to(int n, const int64_t *shape, int nto, const int64_t *to);

/* Strides (elements) that present `t` as a tensor of shape `to` with zeros
 * on broadcast dimensions; t must broadcast to `to`. */
void vz_broadcast_strides(const vz_tensor *t, int nto, const int64_t *to, int64_t *stride);

/* "[2, 3, 4]" into buf; returns buf. */
const char *vz_shape_text(int ndim, const int64_t *shape, char *buf, size_t size);

/* Checks the shape rules share. A required f32 input: fails with "<what>
 * is required" or "<what> must be f32, not <dtype>". */
vz_status vz_need_f32(const vz_tensor *t, const char *what);

/* The f32 "input" of an op along its last axis: as vz_need_f32, and fails
 * with "input needs at least one dimension" for a scalar. */
vz_status vz_need_f32_rows(const vz_tensor *x);

/* An axis of an ndim-dimensional input (negative counts from the end),
 * resolved into *ax when ax is not NULL; fails with "axis A is out of range
 * for N dimensions". */
vz_status vz_need_axis(int axis, int ndim, int *ax);

/* *out = t's shape with `dtype` (a result shaped like its input). */
void vz_desc_like(const vz_tensor *t, vz_dtype dtype, vz_tensor_desc *out);

/* The slopes BLOOM's ALiBi uses for num_heads heads, into slopes[0..n). */
void vz_alibi_slopes(int num_heads, float *slopes);

/* The bucket T5 puts a relative position (key - query) in. */
int vz_t5_bucket(int64_t relative, bool bidirectional, int num_buckets, int max_distance);

/* Builds a call from inputs and attributes and runs it; the outputs follow
 * the in/out convention of the public op functions (out1 only for ops with
 * two outputs). */
vz_status vz_run_op(vz_op_kind op, int n_inputs, const vz_tensor *const *inputs,
                    const vz_op_attrs *attrs, vz_tensor **out0, vz_tensor **out1);

/* Writes into buf the candidates closest to `name`, for "did you mean"
 * messages: those containing it (when it has 4 or more characters), then
 * those at case-insensitive edit distance 0, 1, ... up to strlen(name) / 3 + 2,
 * ", "-separated, at most `max_shown`. buf is "" when none is close. */
const char *vz_closest_names(const char *name, const char *const *candidates, size_t n,
                             int max_shown, char *buf, size_t size);

/* Registry (backends/registry.c). */
const vz_backend_iface *vz_backend_find(const char *name);

#endif

/* The OpenCL backend's internals: its state, the kernels it builds from
 * backends/opencl/opencl_kernels_*.cl, the launch helpers every op file
 * uses, and the op entry points by file.
 *
 * Buffers are cl_mem objects (the vz_buffer handle); a tensor reaches a
 * kernel as its cl_mem plus its offset in elements, so views need no
 * sub-buffers. Every op enqueues on one in-order queue and returns; the host
 * waits only in synchronize (before a read) and when the backend is freed. */
#ifndef VLZOO_OPENCL_H
#define VLZOO_OPENCL_H

#include <CL/cl.h>
#include <stdbool.h>
#include <stdint.h>

#include "ops/internal.h"

/* Kernel families: one source file and one program each, built on first
 * use of one of its kernels (PoCL takes about a second per program). */
#define VZ_CL_FAMILIES(X)                                                                          \
  X(ELEMENTWISE, "elementwise")                                                                    \
  X(COPY, "copy")                                                                                  \
  X(REDUCE, "reduce")                                                                              \
  X(NORM, "norm")                                                                                  \
  X(INDEX, "index")                                                                                \
  X(IMAGE, "image")                                                                                \
  X(POSITION, "position")                                                                          \
  X(GEMM, "gemm")

typedef enum vz_cl_family {
#define VZ_CL_FAMILY_ENUM(id, name) VZ_CL_FAMILY_##id,
  VZ_CL_FAMILIES(VZ_CL_FAMILY_ENUM)
#undef VZ_CL_FAMILY_ENUM
      VZ_CL_FAMILY_COUNT
} vz_cl_family;

/* Every kernel, with its family; the name is the kernel function's. */
/* clang-format off */
#define VZ_CL_KERNELS(X)                                                                           \
  X(ELEMENTWISE, add_f32) X(ELEMENTWISE, sub_f32) X(ELEMENTWISE, mul_f32)                          \
  X(ELEMENTWISE, div_f32) X(ELEMENTWISE, add_i32) X(ELEMENTWISE, sub_i32)                          \
  X(ELEMENTWISE, mul_i32) X(ELEMENTWISE, div_i32) X(ELEMENTWISE, add_i64)                          \
  X(ELEMENTWISE, sub_i64) X(ELEMENTWISE, mul_i64) X(ELEMENTWISE, div_i64)                          \
  X(ELEMENTWISE, scale_f32) X(ELEMENTWISE, gelu_erf_f32) X(ELEMENTWISE, gelu_tanh_f32)             \
  X(ELEMENTWISE, quick_gelu_f32) X(ELEMENTWISE, silu_f32) X(ELEMENTWISE, relu_f32)                 \
  X(ELEMENTWISE, sigmoid_f32) X(ELEMENTWISE, where_1) X(ELEMENTWISE, where_2)                      \
  X(ELEMENTWISE, where_4) X(ELEMENTWISE, where_8) X(ELEMENTWISE, linear_epilogue)                 \
  X(COPY, copy_1) X(COPY, copy_2) X(COPY, copy_4) X(COPY, copy_8) X(COPY, cast)                    \
  X(COPY, widen_f32)                                                                               \
  X(REDUCE, reduce_sum) X(REDUCE, reduce_mean) X(REDUCE, reduce_max) X(REDUCE, softmax_rows)       \
  X(REDUCE, argmax) X(REDUCE, topk_rows) X(REDUCE, cumsum_f32) X(REDUCE, cumsum_i32)               \
  X(REDUCE, cumsum_i64)                                                                            \
  X(NORM, layer_norm_rows) X(NORM, rms_norm_rows) X(NORM, l2_normalize)                            \
  X(INDEX, embedding) X(INDEX, index_select_1) X(INDEX, index_select_2)                            \
  X(INDEX, index_select_4) X(INDEX, index_select_8) X(INDEX, gather_1) X(INDEX, gather_2)          \
  X(INDEX, gather_4) X(INDEX, gather_8)                                                            \
  X(IMAGE, im2col) X(IMAGE, bicubic)                                                               \
  X(POSITION, rope) X(POSITION, alibi) X(POSITION, t5_bias)                                        \
  X(GEMM, gemm_nt) X(GEMM, gemm_nn) X(GEMM, gemm_strided)
/* clang-format on */

typedef enum vz_cl_kernel_id {
#define VZ_CL_KERNEL_ENUM(family, name) VZ_CLK_##name,
  VZ_CL_KERNELS(VZ_CL_KERNEL_ENUM)
#undef VZ_CL_KERNEL_ENUM
      VZ_CLK_COUNT
} vz_cl_kernel_id;

/* Which GEMM runs matmul: our kernels (written for CPU-like devices:
 * register blocking, wide vectors, no local memory) or CLBlast's. */
typedef enum vz_cl_gemm_path { VZ_CL_GEMM_OWN, VZ_CL_GEMM_CLBLAST } vz_cl_gemm_path;

/* The deferred error word (see opencl_status.c): kernels that validate
 * indices record the first failure in it; synchronize reads it back. */
enum {
  VZ_CL_STATUS_CODE,                              /* 0 while all is well, else a vz_cl_failure */
  VZ_CL_STATUS_DETAIL,                            /* the axis of index_select and gather */
  VZ_CL_STATUS_POSITION,                          /* two ints: the element that failed */
  VZ_CL_STATUS_VALUE = VZ_CL_STATUS_POSITION + 2, /* two ints: the bad index */
  VZ_CL_STATUS_LIMIT = VZ_CL_STATUS_VALUE + 2,    /* two ints: the valid range's end */
  VZ_CL_STATUS_INTS = VZ_CL_STATUS_LIMIT + 2
};

typedef enum vz_cl_failure {
  VZ_CL_FAIL_EMBEDDING_ID = 1,
  VZ_CL_FAIL_INDEX_SELECT_ID,
  VZ_CL_FAIL_GATHER_INDEX,
  VZ_CL_FAIL_DIVISION_BY_ZERO,
} vz_cl_failure;

typedef struct vz_cl {
  cl_platform_id platform;
  cl_device_id device;
  cl_context context;
  cl_command_queue queue;
  bool is_cpu;        /* CL_DEVICE_TYPE_CPU: chooses our GEMM over CLBlast's */
  bool has_fp64;      /* cl_khr_fp64: cast from and to f64 */
  bool has_fp16;      /* cl_khr_fp16 (half arithmetic; unused so far: f16 is read and written
                         with vload_half-style bit conversions, core in OpenCL 1.2) */
  cl_ulong max_alloc; /* CL_DEVICE_MAX_MEM_ALLOC_SIZE: the largest buffer */
  /* Work-items per group of element-wise kernels: large on CPU devices,
   * where a group is a (vectorized) loop on one core and each group costs
   * a scheduling step (PoCL: 64-item groups made a GELU over ViT-g's
   * [257, 6144] spend 7 ms there), moderate on GPUs. */
  size_t group_size;
  size_t max_work_group;
  char device_name[256], platform_name[256], device_version[128], driver_version[128],
      platform_version[256];

  cl_program programs[VZ_CL_FAMILY_COUNT];
  cl_kernel kernels[VZ_CLK_COUNT];
  size_t kernel_max_group[VZ_CLK_COUNT]; /* CL_KERNEL_WORK_GROUP_SIZE */
  char build_options[256];
  char cache_dir[1024]; /* "" when the program cache is off */

  cl_mem status;       /* VZ_CL_STATUS_INTS ints */
  bool checks_pending; /* a validating kernel ran since the last synchronize */

  vz_cl_gemm_path gemm;
  /* Our GEMM kernels' tiles: gemm_nt's rows and columns per work-item,
   * gemm_nn's rows and float8 vectors (build options -DNT_MR ...), then
   * the work-group's tiles along N and M, and whether NDRange dimension
   * 0 walks rows (-DGEMM_ROWS_FIRST). */
  int gemm_tile[7];
  /* Ops VLZOO_OPENCL_DISABLE turns away (to bisect a device's bugs and to
   * exercise the CPU fallback). */
  bool disabled[VZ_OP_COUNT];
  char description[768];
} vz_cl;

/* ---- Setup (opencl_device.c) ---- */

/* Picks the device `spec` names (vz_backend_create's "opencl:SPEC", else
 * VLZOO_OPENCL_DEVICE, else the first GPU, else the first device): a
 * device index over all platforms ("1"), "PLATFORM:DEVICE" indices ("0:1"),
 * a type ("gpu", "cpu", "accelerator") or a case-insensitive part of the
 * device's name or its platform's name, vendor or version ("pocl"). Fills
 * the identity fields of cl. */
vz_status vz_cl_select_device(vz_cl *cl, const char *spec);

/* ---- Programs (opencl_program_cache.c) ---- */

/* The program of a family, built (or loaded from the on-disk cache of
 * program binaries) on first use. */
vz_status vz_cl_program(vz_cl *cl, vz_cl_family family, cl_program *out);

/* Where binaries are cached: $VLZOO_OPENCL_CACHE ("off" disables it), else
 * $XDG_CACHE_HOME/vlzoo/opencl, else ~/.cache/vlzoo/opencl; "" when none. */
void vz_cl_cache_dir(char *out, size_t size);

/* ---- Errors (opencl_status.c) ---- */

/* OpenCL's name for an error code ("CL_OUT_OF_RESOURCES"). */
const char *vz_cl_error_name(cl_int err);

/* vz_fail with VZ_ERR_BACKEND (VZ_ERR_OUT_OF_MEMORY for allocation
 * failures): "<what> failed: CL_..." */
vz_status vz_cl_fail(cl_int err, const char *what);

/* Reads the deferred error word when a validating kernel ran, turning a
 * recorded failure into a status (and clearing the word). Call after the
 * queue has drained. */
vz_status vz_cl_check_status(vz_cl *cl);

/* ---- Launching kernels (opencl_launch.c) ---- */

/* A kernel being set up for one launch: arguments are appended in order;
 * the first failure sticks and is reported by vz_cl_enqueue. */
typedef struct vz_cl_launch {
  vz_cl *cl;
  vz_cl_kernel_id id;
  cl_kernel kernel;
  cl_uint next;
  cl_int err;
  vz_status st;
} vz_cl_launch;

vz_status vz_cl_begin(vz_cl *cl, vz_cl_kernel_id id, vz_cl_launch *l);
void vz_cl_arg_mem(vz_cl_launch *l, cl_mem mem); /* NULL passes a NULL pointer */
/* A tensor as two arguments: its buffer and its offset in elements (long);
 * a NULL tensor passes a NULL pointer and 0. */
void vz_cl_arg_tensor(vz_cl_launch *l, const vz_tensor *t);
void vz_cl_arg_int(vz_cl_launch *l, int32_t v);
void vz_cl_arg_long(vz_cl_launch *l, int64_t v);
void vz_cl_arg_float(vz_cl_launch *l, float v);
void vz_cl_arg_long4(vz_cl_launch *l, const int64_t v[4]);
/* The deferred error word (marks a check as pending). */
void vz_cl_arg_status(vz_cl_launch *l);
/* Enqueues over `dims` dimensions; each global size is rounded up to a
 * multiple of its local size (PoCL has no non-uniform work groups), so
 * kernels guard their ranges. A global size of 0 enqueues nothing. */
vz_status vz_cl_enqueue(vz_cl_launch *l, int dims, const size_t *global, const size_t *local);

/* Element-wise grids: `inner` work-items along NDRange dimension 0 (a
 * layout's last dimension, padded as little as possible) times `rows` along
 * dimension 1, in work-groups of about cl->group_size work-items. */
vz_status vz_cl_enqueue_2d(vz_cl_launch *l, int64_t inner, int64_t rows);
/* The same for one dimension of n work-items. */
vz_status vz_cl_enqueue_1d(vz_cl_launch *l, int64_t n);

/* The buffer of a tensor on this backend. */
static inline cl_mem vz_cl_mem_of(const vz_tensor *t) { return (cl_mem)t->buffer->handle; }

/* A device buffer for intermediate results, released by the caller with
 * clReleaseMemObject right after the commands using it are enqueued (the
 * runtime keeps it alive until they finish). */
vz_status vz_cl_scratch(vz_cl *cl, size_t bytes, cl_mem *out);

/* A temporary tensor header over a scratch buffer, for passing it to the op
 * helpers below; free with vz_cl_scratch_tensor_free. */
vz_status vz_cl_scratch_tensor(vz_cl *cl, vz_dtype dtype, int ndim, const int64_t *shape,
                               vz_tensor **out);
void vz_cl_scratch_tensor_free(vz_tensor *t);

/* ---- Layouts of element-wise work (opencl_layout.c) ---- */

/* An output's shape with each operand's element strides (0 on broadcast
 * dimensions), size-1 dimensions dropped and neighbours that every operand
 * walks as one merged, padded with leading 1s to exactly 4 dimensions
 * (kernels take it through VZ_LAYOUT_ITEM, vz_cl_enqueue_layout). */
enum { VZ_CL_MAX_OPERANDS = 4 };
typedef struct vz_cl_layout {
  int64_t shape[4];
  int64_t stride[VZ_CL_MAX_OPERANDS][4];
} vz_cl_layout;

/* ops[k] broadcast to out_shape (numpy rules; ndim 0 to 4). */
void vz_cl_make_layout(int ndim, const int64_t *out_shape, int n_ops, const vz_tensor *const *ops,
                       vz_cl_layout *l);

/* The grid of a layout kernel (VZ_LAYOUT_ITEM in opencl_kernels_common.cl):
 * the layout's dimension 3, its dimension 2, then its dimensions 0 and 1
 * together (opencl_launch.c). */
vz_status vz_cl_enqueue_layout(vz_cl_launch *l, const vz_cl_layout *lay);

/* Splits a contiguous tensor's shape around `axis` into [outer, n, inner]. */
void vz_cl_split_axis(const vz_tensor *x, int axis, int64_t *outer, int64_t *n, int64_t *inner);

/* ---- Op kernels, by file ---- */

/* One op's OpenCL implementation: whether it takes the call (dtypes,
 * layouts of the inputs; never the outputs, which the op's shape rule
 * fixes and which are absent when a model asks vz_backend_supports before
 * running an op) and the enqueueing. */
typedef struct vz_cl_op {
  bool (*supports)(const vz_cl *cl, const vz_op_call *call);
  vz_status (*run)(vz_cl *cl, const vz_op_call *call);
} vz_cl_op;

const vz_cl_op *vz_cl_op_for(vz_op_kind op); /* opencl_ops.c */

bool vz_cl_binary_supports(const vz_cl *cl, const vz_op_call *call);
vz_status vz_cl_binary(vz_cl *cl, const vz_op_call *call);
bool vz_cl_unary_supports(const vz_cl *cl, const vz_op_call *call);
vz_status vz_cl_unary(vz_cl *cl, const vz_op_call *call);
bool vz_cl_where_supports(const vz_cl *cl, const vz_op_call *call);
vz_status vz_cl_where(vz_cl *cl, const vz_op_call *call);

bool vz_cl_copy_supports(const vz_cl *cl, const vz_op_call *call);
vz_status vz_cl_copy(vz_cl *cl, const vz_op_call *call);
bool vz_cl_cast_supports(const vz_cl *cl, const vz_op_call *call);
vz_status vz_cl_cast(vz_cl *cl, const vz_op_call *call);
bool vz_cl_concat_supports(const vz_cl *cl, const vz_op_call *call);
vz_status vz_cl_concat(vz_cl *cl, const vz_op_call *call);
/* Copies x (any strides) into the contiguous `out` of the same shape, as
 * f32: x is f32, f16 or bf16, rounded to bf16 precision when round_bf16. */
vz_status vz_cl_widen_f32(vz_cl *cl, const vz_tensor *x, bool round_bf16, vz_tensor *out);

bool vz_cl_reduce_supports(const vz_cl *cl, const vz_op_call *call);
vz_status vz_cl_reduce(vz_cl *cl, const vz_op_call *call);
bool vz_cl_softmax_supports(const vz_cl *cl, const vz_op_call *call);
vz_status vz_cl_softmax(vz_cl *cl, const vz_op_call *call);
bool vz_cl_argmax_supports(const vz_cl *cl, const vz_op_call *call);
vz_status vz_cl_argmax(vz_cl *cl, const vz_op_call *call);
bool vz_cl_topk_supports(const vz_cl *cl, const vz_op_call *call);
vz_status vz_cl_topk(vz_cl *cl, const vz_op_call *call);
bool vz_cl_cumsum_supports(const vz_cl *cl, const vz_op_call *call);
vz_status vz_cl_cumsum(vz_cl *cl, const vz_op_call *call);
/* softmax over the rows of x (contiguous, [..., rows, cols]) into out, of
 * x * scale + extra[0] + extra[1] (each NULL or broadcasting to x), with
 * causal hiding as vz_softmax; out may be x. */
vz_status vz_cl_softmax_rows(vz_cl *cl, const vz_tensor *x, const vz_tensor *const extra[2],
                             float scale, bool causal, vz_tensor *out);

bool vz_cl_norm_supports(const vz_cl *cl, const vz_op_call *call);
vz_status vz_cl_layer_norm(vz_cl *cl, const vz_op_call *call);
vz_status vz_cl_rms_norm(vz_cl *cl, const vz_op_call *call);
vz_status vz_cl_l2_normalize(vz_cl *cl, const vz_op_call *call);

bool vz_cl_index_supports(const vz_cl *cl, const vz_op_call *call);
vz_status vz_cl_embedding(vz_cl *cl, const vz_op_call *call);
vz_status vz_cl_index_select(vz_cl *cl, const vz_op_call *call);
vz_status vz_cl_gather(vz_cl *cl, const vz_op_call *call);

bool vz_cl_image_supports(const vz_cl *cl, const vz_op_call *call);
vz_status vz_cl_conv2d(vz_cl *cl, const vz_op_call *call);
vz_status vz_cl_bicubic(vz_cl *cl, const vz_op_call *call);

bool vz_cl_position_supports(const vz_cl *cl, const vz_op_call *call);
vz_status vz_cl_rope(vz_cl *cl, const vz_op_call *call);
vz_status vz_cl_alibi(vz_cl *cl, const vz_op_call *call);
vz_status vz_cl_t5_bias(vz_cl *cl, const vz_op_call *call);

bool vz_cl_matmul_supports(const vz_cl *cl, const vz_op_call *call);
vz_status vz_cl_matmul(vz_cl *cl, const vz_op_call *call);
/* The fused Linear layer (opencl_linear.c). Its `supports` reads only the
 * inputs: models ask before they have outputs. */
bool vz_cl_linear_supports(const vz_cl *cl, const vz_op_call *call);
vz_status vz_cl_linear(vz_cl *cl, const vz_op_call *call);
bool vz_cl_attention_supports(const vz_cl *cl, const vz_op_call *call);
vz_status vz_cl_attention(vz_cl *cl, const vz_op_call *call);

/* ---- GEMM (opencl_gemm.c, opencl_clblast.c) ---- */

/* One f32 GEMM, possibly batched: C[b] = A[b] B[b] for b over
 * batch0 x batch1, A[b] M x K with element (i, k) at
 * a + a_off + i * a_rs + k * a_cs (and likewise B K x N), C contiguous
 * [batch0 * batch1, M, N] from c_off. Batch b = (b0, b1) adds
 * b0 * bstride[0] + b1 * bstride[1] to A's offset and
 * b0 * bstride[2] + (b1 / b1_div) * bstride[3] to B's (b1_div > 1: heads
 * sharing one key/value head). */
typedef struct vz_cl_gemm {
  cl_mem a, b, c;
  int64_t a_off, b_off, c_off;
  int64_t m, n, k;
  int64_t a_rs, a_cs, b_rs, b_cs;
  int64_t batch0, batch1, b1_div;
  int64_t bstride[4];
} vz_cl_gemm;

/* Runs g with our kernels: the dot-product kernel when A and B both have
 * K contiguous (B a weight [N, K]), the outer-product kernel when A has K
 * and B has N contiguous, a plain strided kernel otherwise. */
vz_status vz_cl_gemm_own(vz_cl *cl, const vz_cl_gemm *g);

/* Runs g with CLBlast (row- or column-major operands only; false in
 * *handled otherwise, and nothing is enqueued). */
vz_status vz_cl_gemm_clblast(vz_cl *cl, const vz_cl_gemm *g, bool *handled);

/* Registers the CLBlast parameters tuned for this device, when we ship
 * some (opencl_clblast.c). */
void vz_cl_clblast_tune(vz_cl *cl);

/* Runs g on the backend's GEMM path (cl->gemm), falling back to our
 * kernels for layouts CLBlast does not take. */
vz_status vz_cl_gemm_run(vz_cl *cl, const vz_cl_gemm *g);

#endif

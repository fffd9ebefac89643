/* The operator set. Every op is defined once (ops/op_table.c: arity, shape
 * and dtype rules) and run by the dispatcher on the backend that holds its
 * inputs. Each function below writes its result to *out: when *out is NULL a
 * new contiguous tensor is allocated (the caller frees it); otherwise *out
 * must already have the result's dtype and shape, be contiguous and live on
 * the same backend, and is overwritten in place. Inputs may be views. */
#ifndef VLZOO_OPS_H
#define VLZOO_OPS_H

#include <stdbool.h>
#include <stdint.h>

#include "vlzoo/status.h"
#include "vlzoo/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum vz_op_kind {
  VZ_OP_MATMUL,
  VZ_OP_ADD,
  VZ_OP_SUB,
  VZ_OP_MUL,
  VZ_OP_DIV,
  VZ_OP_SCALE,
  VZ_OP_GELU_ERF,
  VZ_OP_GELU_TANH,
  VZ_OP_QUICK_GELU,
  VZ_OP_SILU,
  VZ_OP_RELU,
  VZ_OP_SIGMOID,
  VZ_OP_SUM,
  VZ_OP_MEAN,
  VZ_OP_MAX,
  VZ_OP_SOFTMAX,
  VZ_OP_LAYER_NORM,
  VZ_OP_RMS_NORM,
  VZ_OP_EMBEDDING,
  VZ_OP_INDEX_SELECT,
  VZ_OP_GATHER,
  VZ_OP_WHERE,
  VZ_OP_CUMSUM,
  VZ_OP_CONCAT,
  VZ_OP_COPY,
  VZ_OP_CAST,
  VZ_OP_CONV2D,
  VZ_OP_BICUBIC,
  VZ_OP_ROPE,
  VZ_OP_ALIBI,
  VZ_OP_T5_BIAS,
  VZ_OP_ATTENTION,
  VZ_OP_L2_NORMALIZE,
  VZ_OP_ARGMAX,
  VZ_OP_TOPK,
  VZ_OP_LINEAR,
  VZ_OP_COUNT
} vz_op_kind;

#define VZ_OP_MAX_INPUTS 8
#define VZ_OP_MAX_OUTPUTS 2

/* Attributes, one member per op family (see each function for meaning). */
typedef union vz_op_attrs {
  struct {
    bool trans_a, trans_b;
  } matmul;
  struct {
    float factor;
  } scale;
  struct {
    int axis;
    bool keepdim;
  } reduce;
  struct {
    float scale;
    bool causal;
  } softmax;
  struct {
    float eps;
  } norm;
  struct {
    int axis;
  } axis; /* index_select, gather, cumsum, concat, argmax */
  struct {
    vz_dtype to;
  } cast;
  struct {
    int stride_h, stride_w, pad_h, pad_w;
  } conv2d;
  struct {
    int64_t out_h, out_w;
    bool align_corners;
  } bicubic;
  struct {
    float theta;
    int rotary_dim;
  } rope;
  struct {
    int num_heads;
  } alibi;
  struct {
    int64_t query_length, key_length, query_offset;
    int num_buckets, max_distance;
    bool bidirectional;
  } t5_bias;
  struct {
    float scale;
    bool causal;
  } attention;
  struct {
    int axis;
    float eps;
  } l2;
  struct {
    int k;
  } topk;
  struct {
    vz_op_kind activation; /* VZ_OP_COUNT: none */
  } linear;
} vz_op_attrs;

/* One op application, as the dispatcher hands it to a backend. Absent
 * optional inputs are NULL. Outputs are contiguous and already allocated on
 * the backend when a backend sees the call. */
typedef struct vz_op_call {
  vz_op_kind op;
  int n_inputs;
  const vz_tensor *inputs[VZ_OP_MAX_INPUTS];
  int n_outputs;
  vz_tensor *outputs[VZ_OP_MAX_OUTPUTS];
  vz_op_attrs attrs;
} vz_op_call;

/* The op's name as used in logs and tests ("matmul", "gelu_erf", ...). */
const char *vz_op_name(vz_op_kind op);

/* Looks an op up by name; VZ_OP_COUNT when unknown. */
vz_op_kind vz_op_from_name(const char *name);

/* Validates, allocates missing outputs and runs a prepared call. The generic
 * entry point behind every function below. */
vz_status vz_op_execute(vz_op_call *call);

/* ---- Linear algebra ---- */

/* a [..., M, K] (or [..., K, M] with trans_a) times b [..., K, N] (or
 * [..., N, K] with trans_b); leading dimensions broadcast. a is f32, bf16 or
 * f16; b is f32, bf16 or f16; the result is f32 and every sum accumulates
 * in f32. When either operand is bf16 both are taken at bf16 precision (the
 * other is rounded to bf16), so that processors with bf16 dot-product
 * instructions can use them; f16 operands are widened to f32 exactly. */
vz_status vz_matmul(const vz_tensor *a, const vz_tensor *b, bool trans_a, bool trans_b,
                    vz_tensor **out);

/* A Linear layer with what follows it fused: activation(x w^T + bias) +
 * residual. x [..., K] and w [N, K] take vz_matmul's dtypes and precision
 * rules (as vz_matmul(x, w, false, true)); bias (f32 [N]) and residual
 * (f32, the result's shape [..., N]) may be NULL; activation is one of
 * VZ_OP_GELU_ERF, VZ_OP_GELU_TANH, VZ_OP_QUICK_GELU, VZ_OP_SILU,
 * VZ_OP_RELU, VZ_OP_SIGMOID, or VZ_OP_COUNT for none. The result is f32
 * [..., N]. *out may be the residual itself (x = x + linear(h)); it must
 * not overlap x or w. Equal to the separate ops up to the order of the
 * additions (the residual may be added before the product's last terms). */
vz_status vz_fused_linear(const vz_tensor *x, const vz_tensor *w, const vz_tensor *bias,
                          vz_op_kind activation, const vz_tensor *residual, vz_tensor **out);

/* ---- Element-wise (f32; numpy broadcasting for the binary ones) ---- */
vz_status vz_add(const vz_tensor *a, const vz_tensor *b, vz_tensor **out);
vz_status vz_sub(const vz_tensor *a, const vz_tensor *b, vz_tensor **out);
vz_status vz_mul(const vz_tensor *a, const vz_tensor *b, vz_tensor **out);
vz_status vz_div(const vz_tensor *a, const vz_tensor *b, vz_tensor **out);
vz_status vz_scale(const vz_tensor *x, float factor, vz_tensor **out);
/* x * Phi(x), Phi the normal CDF computed with erf (PyTorch's exact GELU) */
vz_status vz_gelu_erf(const vz_tensor *x, vz_tensor **out);
/* 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) (gelu_new, BLOOM) */
vz_status vz_gelu_tanh(const vz_tensor *x, vz_tensor **out);
/* x * sigmoid(1.702 x) (CLIP) */
vz_status vz_quick_gelu(const vz_tensor *x, vz_tensor **out);
vz_status vz_silu(const vz_tensor *x, vz_tensor **out);
vz_status vz_relu(const vz_tensor *x, vz_tensor **out);
vz_status vz_sigmoid(const vz_tensor *x, vz_tensor **out);

/* ---- Reductions over one axis (f32) ---- */
vz_status vz_sum(const vz_tensor *x, int axis, bool keepdim, vz_tensor **out);
vz_status vz_mean(const vz_tensor *x, int axis, bool keepdim, vz_tensor **out);
vz_status vz_max(const vz_tensor *x, int axis, bool keepdim, vz_tensor **out);

/* softmax over the last axis of x * scale + mask. mask (may be NULL) is
 * additive and broadcasts to x. causal hides column j of row i when
 * j > i + (columns - rows), rows being the second-to-last axis, so a query
 * block at the end of a longer key sequence sees every earlier key. A row
 * with every entry hidden gives zeros. */
vz_status vz_softmax(const vz_tensor *x, const vz_tensor *mask, float scale, bool causal,
                     vz_tensor **out);

/* ---- Normalization over the last axis (f32) ---- */
/* (x - mean) / sqrt(var + eps) * weight + bias; weight, bias may be NULL */
vz_status vz_layer_norm(const vz_tensor *x, const vz_tensor *weight, const vz_tensor *bias,
                        float eps, vz_tensor **out);
/* x / sqrt(mean(x^2) + eps) * weight; weight may be NULL */
vz_status vz_rms_norm(const vz_tensor *x, const vz_tensor *weight, float eps, vz_tensor **out);
/* x / max(||x||_2, eps) along axis (torch.nn.functional.normalize) */
vz_status vz_l2_normalize(const vz_tensor *x, int axis, float eps, vz_tensor **out);

/* ---- Indexing ---- */
/* table [V, D] (f32, f16 or bf16), ids i32 or i64 of any shape -> f32
 * [..ids.shape, D]. An id outside [0, V) is an error. */
vz_status vz_embedding(const vz_tensor *table, const vz_tensor *ids, vz_tensor **out);
/* x with `axis` replaced by the entries ids[i] (1-D i32 / i64) */
vz_status vz_index_select(const vz_tensor *x, int axis, const vz_tensor *ids, vz_tensor **out);
/* torch.gather: out[i][j] = x[index[i][j]][j] for axis 0, and so on; index
 * (i32 / i64) has x's rank and gives the output's shape. */
vz_status vz_gather(const vz_tensor *x, int axis, const vz_tensor *index, vz_tensor **out);
/* cond ? a : b, element-wise with broadcasting; cond is bool or u8 */
vz_status vz_where(const vz_tensor *cond, const vz_tensor *a, const vz_tensor *b, vz_tensor **out);
/* running sum along axis (f32, i32 or i64) */
vz_status vz_cumsum(const vz_tensor *x, int axis, vz_tensor **out);
/* inputs joined along axis (1 to VZ_OP_MAX_INPUTS tensors of one dtype) */
vz_status vz_concat(const vz_tensor *const *xs, int n, int axis, vz_tensor **out);
/* the element-wise copy behind vz_contiguous; any dtype, any strides */
vz_status vz_copy(const vz_tensor *x, vz_tensor **out);
/* element-wise dtype conversion (floats round to nearest even; float to
 * integer truncates toward zero, as C does) */
vz_status vz_cast(const vz_tensor *x, vz_dtype to, vz_tensor **out);
/* index of the largest entry along axis (first one on ties), as i64 */
vz_status vz_argmax(const vz_tensor *x, int axis, vz_tensor **out);
/* the k largest entries along the last axis, largest first (lower index
 * first on ties): values (x's dtype) and indices (i64) */
vz_status vz_topk(const vz_tensor *x, int k, vz_tensor **values, vz_tensor **indices);

/* ---- Images ---- */
/* x [B, C, H, W], weight [O, C, KH, KW], bias [O] or NULL -> [B, O, H', W'] */
vz_status vz_conv2d(const vz_tensor *x, const vz_tensor *weight, const vz_tensor *bias,
                    int stride_h, int stride_w, int pad_h, int pad_w, vz_tensor **out);
/* bicubic resize of x [B, C, H, W] as torch's interpolate(mode="bicubic")
 * (a = -0.75, no antialiasing) */
vz_status vz_bicubic(const vz_tensor *x, int64_t out_h, int64_t out_w, bool align_corners,
                     vz_tensor **out);

/* ---- Positions and attention ---- */
/* rotate-half rotary embedding of x [..., S, D] at positions [S] (i32/i64):
 * the first rotary_dim entries of each row are rotated, pairs (i, i+r/2)
 * at angle pos * theta^(-2i/r). */
vz_status vz_rope(const vz_tensor *x, const vz_tensor *positions, float theta, int rotary_dim,
                  vz_tensor **out);
/* ALiBi bias [B, H, 1, K] = slope_h * key_positions[b, k] for key_positions
 * [B, K] (f32, i32 or i64), with BLOOM's slopes for num_heads heads. */
vz_status vz_alibi(const vz_tensor *key_positions, int num_heads, vz_tensor **out);
/* T5's relative position bias [1, H, Q, K] from table [num_buckets, H]:
 * query i sits at position query_offset + i, key j at j. */
vz_status vz_t5_bias(const vz_tensor *table, int64_t query_length, int64_t key_length,
                     int64_t query_offset, bool bidirectional, int num_buckets, int max_distance,
                     vz_tensor **out);
/* softmax(q k^T * scale + bias + mask) v for q [B, H, Sq, D], k [B, Hk, Sk,
 * D], v [B, Hk, Sk, Dv] with H a multiple of Hk (grouped heads); bias and
 * mask (NULL when unused) broadcast to [B, H, Sq, Sk]; causal as in
 * vz_softmax. Result [B, H, Sq, Dv]. */
vz_status vz_attention(const vz_tensor *q, const vz_tensor *k, const vz_tensor *v,
                       const vz_tensor *bias, const vz_tensor *mask, float scale, bool causal,
                       vz_tensor **out);

#ifdef __cplusplus
}
#endif
#endif

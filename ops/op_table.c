/* The table of every op: what a backend owes. A new op is one row here, its
 * shape rule and public function in the matching ops/op_*.c file, and its
 * kernels in the backends. */
#include <string.h>

#include "ops/internal.h"

#define ROW(kind, name, min_in, max_in, outs, strided, infer)                                      \
  [kind] = {name, min_in, max_in, outs, strided, infer}

static const vz_op_def op_table[VZ_OP_COUNT] = {
    ROW(VZ_OP_MATMUL, "matmul", 2, 2, 1, true, vz_infer_matmul),
    ROW(VZ_OP_ADD, "add", 2, 2, 1, true, vz_infer_binary),
    ROW(VZ_OP_SUB, "sub", 2, 2, 1, true, vz_infer_binary),
    ROW(VZ_OP_MUL, "mul", 2, 2, 1, true, vz_infer_binary),
    ROW(VZ_OP_DIV, "div", 2, 2, 1, true, vz_infer_binary),
    ROW(VZ_OP_SCALE, "scale", 1, 1, 1, false, vz_infer_unary),
    ROW(VZ_OP_GELU_ERF, "gelu_erf", 1, 1, 1, false, vz_infer_unary),
    ROW(VZ_OP_GELU_TANH, "gelu_tanh", 1, 1, 1, false, vz_infer_unary),
    ROW(VZ_OP_QUICK_GELU, "quick_gelu", 1, 1, 1, false, vz_infer_unary),
    ROW(VZ_OP_SILU, "silu", 1, 1, 1, false, vz_infer_unary),
    ROW(VZ_OP_RELU, "relu", 1, 1, 1, false, vz_infer_unary),
    ROW(VZ_OP_SIGMOID, "sigmoid", 1, 1, 1, false, vz_infer_unary),
    ROW(VZ_OP_SUM, "sum", 1, 1, 1, false, vz_infer_reduce),
    ROW(VZ_OP_MEAN, "mean", 1, 1, 1, false, vz_infer_reduce),
    ROW(VZ_OP_MAX, "max", 1, 1, 1, false, vz_infer_reduce),
    ROW(VZ_OP_SOFTMAX, "softmax", 1, 2, 1, false, vz_infer_softmax),
    ROW(VZ_OP_LAYER_NORM, "layer_norm", 1, 3, 1, false, vz_infer_layer_norm),
    ROW(VZ_OP_RMS_NORM, "rms_norm", 1, 2, 1, false, vz_infer_rms_norm),
    ROW(VZ_OP_EMBEDDING, "embedding", 2, 2, 1, false, vz_infer_embedding),
    ROW(VZ_OP_INDEX_SELECT, "index_select", 2, 2, 1, false, vz_infer_index_select),
    ROW(VZ_OP_GATHER, "gather", 2, 2, 1, false, vz_infer_gather),
    ROW(VZ_OP_WHERE, "where", 3, 3, 1, true, vz_infer_where),
    ROW(VZ_OP_CUMSUM, "cumsum", 1, 1, 1, false, vz_infer_cumsum),
    ROW(VZ_OP_CONCAT, "concat", 1, VZ_OP_MAX_INPUTS, 1, false, vz_infer_concat),
    ROW(VZ_OP_COPY, "copy", 1, 1, 1, true, vz_infer_copy),
    ROW(VZ_OP_CAST, "cast", 1, 1, 1, true, vz_infer_cast),
    ROW(VZ_OP_CONV2D, "conv2d", 2, 3, 1, false, vz_infer_conv2d),
    ROW(VZ_OP_BICUBIC, "bicubic", 1, 1, 1, false, vz_infer_bicubic),
    ROW(VZ_OP_ROPE, "rope", 2, 2, 1, false, vz_infer_rope),
    ROW(VZ_OP_ALIBI, "alibi", 1, 1, 1, false, vz_infer_alibi),
    ROW(VZ_OP_T5_BIAS, "t5_bias", 1, 1, 1, false, vz_infer_t5_bias),
    ROW(VZ_OP_ATTENTION, "attention", 3, 5, 1, true, vz_infer_attention),
    ROW(VZ_OP_L2_NORMALIZE, "l2_normalize", 1, 1, 1, false, vz_infer_l2_normalize),
    ROW(VZ_OP_ARGMAX, "argmax", 1, 1, 1, false, vz_infer_argmax),
    ROW(VZ_OP_TOPK, "topk", 1, 1, 2, false, vz_infer_topk),
    ROW(VZ_OP_LINEAR, "linear", 2, 4, 1, true, vz_infer_linear),
};

const vz_op_def *vz_op_definition(vz_op_kind op) { return &op_table[op]; }

const char *vz_op_name(vz_op_kind op) {
  return (unsigned)op < VZ_OP_COUNT ? op_table[op].name : "?";
}

vz_op_kind vz_op_from_name(const char *name) {
  for (int op = 0; name && op < VZ_OP_COUNT; op++)
    if (strcmp(op_table[op].name, name) == 0)
      return (vz_op_kind)op;
  return VZ_OP_COUNT;
}

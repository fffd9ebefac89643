/* Which OpenCL implementation runs which op: the OpenCL backend's row of
 * the op table. Every op has one; `supports` narrows it to the dtypes and
 * layouts it takes, and the dispatcher runs the rest on the CPU. */
#include "backends/opencl/opencl.h"

#define OP(op, supports, run) [op] = {supports, run}

static const vz_cl_op ops[VZ_OP_COUNT] = {
    OP(VZ_OP_MATMUL, vz_cl_matmul_supports, vz_cl_matmul),
    OP(VZ_OP_ADD, vz_cl_binary_supports, vz_cl_binary),
    OP(VZ_OP_SUB, vz_cl_binary_supports, vz_cl_binary),
    OP(VZ_OP_MUL, vz_cl_binary_supports, vz_cl_binary),
    OP(VZ_OP_DIV, vz_cl_binary_supports, vz_cl_binary),
    OP(VZ_OP_SCALE, vz_cl_unary_supports, vz_cl_unary),
    OP(VZ_OP_GELU_ERF, vz_cl_unary_supports, vz_cl_unary),
    OP(VZ_OP_GELU_TANH, vz_cl_unary_supports, vz_cl_unary),
    OP(VZ_OP_QUICK_GELU, vz_cl_unary_supports, vz_cl_unary),
    OP(VZ_OP_SILU, vz_cl_unary_supports, vz_cl_unary),
    OP(VZ_OP_RELU, vz_cl_unary_supports, vz_cl_unary),
    OP(VZ_OP_SIGMOID, vz_cl_unary_supports, vz_cl_unary),
    OP(VZ_OP_SUM, vz_cl_reduce_supports, vz_cl_reduce),
    OP(VZ_OP_MEAN, vz_cl_reduce_supports, vz_cl_reduce),
    OP(VZ_OP_MAX, vz_cl_reduce_supports, vz_cl_reduce),
    OP(VZ_OP_SOFTMAX, vz_cl_softmax_supports, vz_cl_softmax),
    OP(VZ_OP_LAYER_NORM, vz_cl_norm_supports, vz_cl_layer_norm),
    OP(VZ_OP_RMS_NORM, vz_cl_norm_supports, vz_cl_rms_norm),
    OP(VZ_OP_EMBEDDING, vz_cl_index_supports, vz_cl_embedding),
    OP(VZ_OP_INDEX_SELECT, vz_cl_index_supports, vz_cl_index_select),
    OP(VZ_OP_GATHER, vz_cl_index_supports, vz_cl_gather),
    OP(VZ_OP_WHERE, vz_cl_where_supports, vz_cl_where),
    OP(VZ_OP_CUMSUM, vz_cl_cumsum_supports, vz_cl_cumsum),
    OP(VZ_OP_CONCAT, vz_cl_concat_supports, vz_cl_concat),
    OP(VZ_OP_COPY, vz_cl_copy_supports, vz_cl_copy),
    OP(VZ_OP_CAST, vz_cl_cast_supports, vz_cl_cast),
    OP(VZ_OP_CONV2D, vz_cl_image_supports, vz_cl_conv2d),
    OP(VZ_OP_BICUBIC, vz_cl_image_supports, vz_cl_bicubic),
    OP(VZ_OP_ROPE, vz_cl_position_supports, vz_cl_rope),
    OP(VZ_OP_ALIBI, vz_cl_position_supports, vz_cl_alibi),
    OP(VZ_OP_T5_BIAS, vz_cl_position_supports, vz_cl_t5_bias),
    OP(VZ_OP_ATTENTION, vz_cl_attention_supports, vz_cl_attention),
    OP(VZ_OP_L2_NORMALIZE, vz_cl_norm_supports, vz_cl_l2_normalize),
    OP(VZ_OP_ARGMAX, vz_cl_argmax_supports, vz_cl_argmax),
    OP(VZ_OP_TOPK, vz_cl_topk_supports, vz_cl_topk),
    OP(VZ_OP_LINEAR, vz_cl_linear_supports, vz_cl_linear),
};

const vz_cl_op *vz_cl_op_for(vz_op_kind op) { return &ops[op]; }

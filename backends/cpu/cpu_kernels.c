/* Which CPU kernel runs which op: the CPU's row of the op table. */
#include "backends/cpu/cpu.h"

#define K(op, supports, run) [op] = {supports, run}

static const vz_cpu_kernel kernels[VZ_OP_COUNT] = {
    K(VZ_OP_MATMUL, vz_cpu_matmul_supports, vz_cpu_matmul),
    K(VZ_OP_ADD, vz_cpu_binary_supports, vz_cpu_binary),
    K(VZ_OP_SUB, vz_cpu_binary_supports, vz_cpu_binary),
    K(VZ_OP_MUL, vz_cpu_binary_supports, vz_cpu_binary),
    K(VZ_OP_DIV, vz_cpu_binary_supports, vz_cpu_binary),
    K(VZ_OP_SCALE, vz_cpu_unary_supports, vz_cpu_unary),
    K(VZ_OP_GELU_ERF, vz_cpu_unary_supports, vz_cpu_unary),
    K(VZ_OP_GELU_TANH, vz_cpu_unary_supports, vz_cpu_unary),
    K(VZ_OP_QUICK_GELU, vz_cpu_unary_supports, vz_cpu_unary),
    K(VZ_OP_SILU, vz_cpu_unary_supports, vz_cpu_unary),
    K(VZ_OP_RELU, vz_cpu_unary_supports, vz_cpu_unary),
    K(VZ_OP_SIGMOID, vz_cpu_unary_supports, vz_cpu_unary),
    K(VZ_OP_SUM, vz_cpu_reduce_supports, vz_cpu_reduce),
    K(VZ_OP_MEAN, vz_cpu_reduce_supports, vz_cpu_reduce),
    K(VZ_OP_MAX, vz_cpu_reduce_supports, vz_cpu_reduce),
    K(VZ_OP_SOFTMAX, vz_cpu_softmax_supports, vz_cpu_softmax),
    K(VZ_OP_LAYER_NORM, vz_cpu_norm_supports, vz_cpu_layer_norm),
    K(VZ_OP_RMS_NORM, vz_cpu_norm_supports, vz_cpu_rms_norm),
    K(VZ_OP_EMBEDDING, vz_cpu_index_supports, vz_cpu_embedding),
    K(VZ_OP_INDEX_SELECT, vz_cpu_index_supports, vz_cpu_index_select),
    K(VZ_OP_GATHER, vz_cpu_index_supports, vz_cpu_gather),
    K(VZ_OP_WHERE, vz_cpu_where_supports, vz_cpu_where),
    K(VZ_OP_CUMSUM, vz_cpu_cumsum_supports, vz_cpu_cumsum),
    K(VZ_OP_CONCAT, vz_cpu_concat_supports, vz_cpu_concat),
    K(VZ_OP_COPY, vz_cpu_copy_supports, vz_cpu_copy),
    K(VZ_OP_CAST, vz_cpu_copy_supports, vz_cpu_cast),
    K(VZ_OP_CONV2D, vz_cpu_image_supports, vz_cpu_conv2d),
    K(VZ_OP_BICUBIC, vz_cpu_image_supports, vz_cpu_bicubic),
    K(VZ_OP_ROPE, vz_cpu_position_supports, vz_cpu_rope),
    K(VZ_OP_ALIBI, vz_cpu_position_supports, vz_cpu_alibi),
    K(VZ_OP_T5_BIAS, vz_cpu_position_supports, vz_cpu_t5_bias),
    K(VZ_OP_ATTENTION, vz_cpu_attention_supports, vz_cpu_attention),
    K(VZ_OP_L2_NORMALIZE, vz_cpu_norm_supports, vz_cpu_l2_normalize),
    K(VZ_OP_ARGMAX, vz_cpu_argmax_supports, vz_cpu_argmax),
    K(VZ_OP_TOPK, vz_cpu_topk_supports, vz_cpu_topk),
    K(VZ_OP_LINEAR, vz_cpu_linear_supports, vz_cpu_linear),
};

const vz_cpu_kernel *vz_cpu_kernel_for(vz_op_kind op) { return &kernels[op]; }

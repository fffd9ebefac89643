/* The CPU backend's internals: its state, instruction-set paths and the
 * kernel functions each op file provides. */
#ifndef VLZOO_CPU_H
#define VLZOO_CPU_H

#include <stdbool.h>
#include <stdint.h>

#include "backends/cpu/simd.h"
#include "ops/internal.h"

/* Instruction-set paths, each a superset of the one before. avx512fp16 runs
 * the avx512 kernels plus the f16-product GEMM for f16 weights. */
typedef enum vz_cpu_isa {
  VZ_ISA_SCALAR,
  VZ_ISA_AVX2,
  VZ_ISA_AVX512,
  VZ_ISA_AVX512_FP16
} vz_cpu_isa;

typedef struct vz_cpu {
  int threads;             /* OpenMP threads used by every kernel and by oneDNN */
  vz_cpu_isa isa;          /* the path in use, detected or forced */
  const vz_cpu_simd *simd; /* that path's vector kernels */
  char description[160];
} vz_cpu;

/* Name of an ISA path ("scalar", "avx2", "avx512", "avx512fp16"). */
const char *vz_cpu_isa_name(vz_cpu_isa isa);

/* The best path this processor runs; VLZOO_CPU_ISA may lower it, and asking
 * for a path the processor lacks is an error. */
vz_status vz_cpu_select_isa(vz_cpu_isa *out);

/* The vector kernels a path runs (avx512fp16 runs the avx512 ones). */
const vz_cpu_simd *vz_cpu_simd_of(vz_cpu_isa isa);

/* Each op's CPU kernel: `supports` says whether the dtypes and layout are
 * handled, `run` computes into the call's allocated outputs. */
typedef struct vz_cpu_kernel {
  bool (*supports)(const vz_op_call *call);
  vz_status (*run)(const vz_cpu *cpu, const vz_op_call *call);
} vz_cpu_kernel;

const vz_cpu_kernel *vz_cpu_kernel_for(vz_op_kind op);

/* Host pointer of a tensor on the CPU backend. */
static inline void *vz_cpu_data(const vz_tensor *t) { return vz_tensor_host_data(t); }

/* Threads worth using for `work` elementary steps: fewer for small jobs,
 * where waking a thread costs more than it saves. */
int vz_cpu_threads_for(const vz_cpu *cpu, int64_t work);

/* Splits a contiguous x into [outer, n, inner] around `axis` (negative
 * counts from the end); fails when the axis is out of range. */
vz_status vz_cpu_split_axis(const vz_tensor *x, int axis, int64_t *outer, int64_t *n,
                            int64_t *inner);

/* Inner positions handed to one task by the kernels that walk an axis. */
enum { VZ_CPU_COLUMN_BLOCK = 256 };

/* Work on [rows, cols] is handed out in tasks of at most `block` columns of
 * one row: rows * vz_cpu_blocks(cols, block) tasks, task t covering columns
 * col .. col + len of row `row`. */
typedef struct vz_cpu_tile {
  int64_t row, col, len;
} vz_cpu_tile;

static inline int64_t vz_cpu_blocks(int64_t cols, int64_t block) {
  return (cols + block - 1) / block;
}

static inline vz_cpu_tile vz_cpu_tile_at(int64_t t, int64_t cols, int64_t block) {
  int64_t blocks = vz_cpu_blocks(cols, block);
  vz_cpu_tile tile = {t / blocks, (t % blocks) * block, 0};
  tile.len = cols - tile.col < block ? cols - tile.col : block;
  return tile;
}

/* Kernel entry points, by file. */
bool vz_cpu_binary_supports(const vz_op_call *call);
vz_status vz_cpu_binary(const vz_cpu *cpu, const vz_op_call *call);
bool vz_cpu_unary_supports(const vz_op_call *call);
vz_status vz_cpu_unary(const vz_cpu *cpu, const vz_op_call *call);
bool vz_cpu_where_supports(const vz_op_call *call);
vz_status vz_cpu_where(const vz_cpu *cpu, const vz_op_call *call);

bool vz_cpu_reduce_supports(const vz_op_call *call);
vz_status vz_cpu_reduce(const vz_cpu *cpu, const vz_op_call *call);
bool vz_cpu_softmax_supports(const vz_op_call *call);
vz_status vz_cpu_softmax(const vz_cpu *cpu, const vz_op_call *call);
bool vz_cpu_argmax_supports(const vz_op_call *call);
vz_status vz_cpu_argmax(const vz_cpu *cpu, const vz_op_call *call);
bool vz_cpu_topk_supports(const vz_op_call *call);
vz_status vz_cpu_topk(const vz_cpu *cpu, const vz_op_call *call);
bool vz_cpu_cumsum_supports(const vz_op_call *call);
vz_status vz_cpu_cumsum(const vz_cpu *cpu, const vz_op_call *call);

bool vz_cpu_norm_supports(const vz_op_call *call);
vz_status vz_cpu_layer_norm(const vz_cpu *cpu, const vz_op_call *call);
vz_status vz_cpu_rms_norm(const vz_cpu *cpu, const vz_op_call *call);
vz_status vz_cpu_l2_normalize(const vz_cpu *cpu, const vz_op_call *call);

bool vz_cpu_index_supports(const vz_op_call *call);
vz_status vz_cpu_embedding(const vz_cpu *cpu, const vz_op_call *call);
vz_status vz_cpu_index_select(const vz_cpu *cpu, const vz_op_call *call);
vz_status vz_cpu_gather(const vz_cpu *cpu, const vz_op_call *call);
bool vz_cpu_concat_supports(const vz_op_call *call);
vz_status vz_cpu_concat(const vz_cpu *cpu, const vz_op_call *call);
bool vz_cpu_copy_supports(const vz_op_call *call);
vz_status vz_cpu_copy(const vz_cpu *cpu, const vz_op_call *call);
vz_status vz_cpu_cast(const vz_cpu *cpu, const vz_op_call *call);

bool vz_cpu_image_supports(const vz_op_call *call);
vz_status vz_cpu_conv2d(const vz_cpu *cpu, const vz_op_call *call);
vz_status vz_cpu_bicubic(const vz_cpu *cpu, const vz_op_call *call);

bool vz_cpu_position_supports(const vz_op_call *call);
vz_status vz_cpu_rope(const vz_cpu *cpu, const vz_op_call *call);
vz_status vz_cpu_alibi(const vz_cpu *cpu, const vz_op_call *call);
vz_status vz_cpu_t5_bias(const vz_cpu *cpu, const vz_op_call *call);

bool vz_cpu_matmul_supports(const vz_op_call *call);
vz_status vz_cpu_matmul(const vz_cpu *cpu, const vz_op_call *call);
bool vz_cpu_linear_supports(const vz_op_call *call);
vz_status vz_cpu_linear(const vz_cpu *cpu, const vz_op_call *call);
bool vz_cpu_attention_supports(const vz_op_call *call);
vz_status vz_cpu_attention(const vz_cpu *cpu, const vz_op_call *call);

#endif

/* Our GEMM kernels (opencl_kernels_gemm.cl): which one a layout takes, its
 * work-item grid, and the choice between them and CLBlast. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/opencl/opencl.h"

static size_t tiles(int64_t extent, int64_t tile) { return (size_t)((extent + tile - 1) / tile); }

static void batch_args(vz_cl_launch *l, const vz_cl_gemm *g) {
  vz_cl_arg_long(l, g->batch1);
  vz_cl_arg_long(l, g->b1_div);
  vz_cl_arg_long4(l, g->bstride);
}

static vz_status zero_output(vz_cl *cl, const vz_cl_gemm *g) {
  cl_float zero = 0.0f;
  size_t count = (size_t)(g->m * g->n * g->batch0 * g->batch1);
  cl_int err =
      clEnqueueFillBuffer(cl->queue, g->c, &zero, sizeof zero, (size_t)g->c_off * sizeof(float),
                          count * sizeof(float), 0, NULL, NULL);
  return err == CL_SUCCESS ? VZ_OK : vz_cl_fail(err, "clEnqueueFillBuffer (empty GEMM)");
}

vz_status vz_cl_gemm_own(vz_cl *cl, const vz_cl_gemm *g) {
  if (g->m == 0 || g->n == 0 || g->batch0 * g->batch1 == 0)
    return VZ_OK;
  if (g->k == 0)
    return zero_output(cl, g);
  const size_t batches = (size_t)(g->batch0 * g->batch1);
  /* A with K contiguous (a_cs == 1) for both fast kernels; M == 1 or
   * N == 1 makes the other stride irrelevant. */
  bool a_rows = g->a_cs == 1 || g->k == 1;
  bool b_nk = g->b_rs == 1 || g->k == 1; /* B stored [N, K] */
  bool b_kn = g->b_cs == 1 || g->n == 1; /* B stored [K, N] */
  vz_cl_launch l;
  if (a_rows && (b_nk || b_kn)) {
    bool nt = b_nk && !(b_kn && g->b_cs == 1 && g->n > 1);
    vz_cl_begin(cl, nt ? VZ_CLK_gemm_nt : VZ_CLK_gemm_nn, &l);
    vz_cl_arg_mem(&l, g->c);
    vz_cl_arg_long(&l, g->c_off);
    vz_cl_arg_mem(&l, g->a);
    vz_cl_arg_long(&l, g->a_off);
    vz_cl_arg_long(&l, g->m > 1 ? g->a_rs : g->k);
    vz_cl_arg_mem(&l, g->b);
    vz_cl_arg_long(&l, g->b_off);
    vz_cl_arg_long(&l, nt ? (g->n > 1 ? g->b_cs : g->k) : (g->k > 1 ? g->b_rs : g->n));
    vz_cl_arg_long(&l, g->m);
    vz_cl_arg_long(&l, g->n);
    vz_cl_arg_long(&l, g->k);
    batch_args(&l, g);
    int64_t tile_m = nt ? cl->gemm_tile[0] : cl->gemm_tile[2];
    int64_t tile_n = nt ? cl->gemm_tile[1] : cl->gemm_tile[3] * 8;
    /* Work-item tiles per work-group along N and M. On PoCL a work-group
     * runs as a loop on one core, so a group is a block of C whose A rows
     * stay in cache while its work-items sweep B's columns. */
    size_t col_tiles = tiles(g->n, tile_n), row_tiles = tiles(g->m, tile_m);
    size_t group_n = (size_t)cl->gemm_tile[4], group_m = (size_t)cl->gemm_tile[5];
    group_n = col_tiles < group_n ? col_tiles : group_n;
    group_m = row_tiles < group_m ? row_tiles : group_m;
    const bool rows_first = cl->gemm_tile[6];
    size_t global[3] = {rows_first ? row_tiles : col_tiles, rows_first ? col_tiles : row_tiles,
                        batches};
    size_t local[3] = {rows_first ? group_m : group_n, rows_first ? group_n : group_m, 1};
    return vz_cl_enqueue(&l, 3, global, local);
  }
  vz_cl_begin(cl, VZ_CLK_gemm_strided, &l);
  vz_cl_arg_mem(&l, g->c);
  vz_cl_arg_long(&l, g->c_off);
  vz_cl_arg_mem(&l, g->a);
  vz_cl_arg_long(&l, g->a_off);
  vz_cl_arg_long(&l, g->a_rs);
  vz_cl_arg_long(&l, g->a_cs);
  vz_cl_arg_mem(&l, g->b);
  vz_cl_arg_long(&l, g->b_off);
  vz_cl_arg_long(&l, g->b_rs);
  vz_cl_arg_long(&l, g->b_cs);
  vz_cl_arg_long(&l, g->m);
  vz_cl_arg_long(&l, g->n);
  vz_cl_arg_long(&l, g->k);
  batch_args(&l, g);
  size_t global[3] = {(size_t)g->n, (size_t)g->m, batches};
  size_t local[3] = {g->n >= 16 ? 16 : 1, g->m >= 4 ? 4 : 1, 1};
  return vz_cl_enqueue(&l, 3, global, local);
}

vz_status vz_cl_gemm_run(vz_cl *cl, const vz_cl_gemm *g) {
  if (cl->gemm == VZ_CL_GEMM_CLBLAST && g->k > 0) {
    bool handled = false;
    vz_status st = vz_cl_gemm_clblast(cl, g, &handled);
    if (st != VZ_OK || handled)
      return st;
  }
  return vz_cl_gemm_own(cl, g);
}

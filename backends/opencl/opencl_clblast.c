/* GEMM through CLBlast: row- or column-major operands as CLBlast takes them
 * (one call, strided-batched or batched with explicit offsets), and the
 * tuning parameters we ship for devices CLBlast's database lacks,
 * registered with its override API. */
#include <clblast_c.h>
#include <stdlib.h>
#include <string.h>

#include "backends/opencl/opencl.h"
#include "ops/log.h"

/* ---- Shipped parameters ----
 *
 * CLBlast's database has one PoCL CPU ("cpu-penryn", a Core 2); on the
 * PoCL of these machines (device names start "pthread-") its defaults give
 * about 9 GFLOP/s on 257 x 1408 x 1408. These are the best of a random
 * search with bench/tune_clblast (40 Xgemm and 30 XgemmDirect candidates,
 * 2 vCPUs of an AMD EPYC Zen 3, PoCL 3.1): Xgemm 20.5 GFLOP/s, XgemmDirect
 * 13.1 (its default: 7.5). */
typedef struct tuned_kernel {
  const char *kernel;
  size_t count;
  const char *names[16];
  size_t values[16];
} tuned_kernel;

typedef struct tuned_device {
  const char *name_prefix; /* of CL_DEVICE_NAME */
  tuned_kernel kernels[3];
} tuned_device;

static const tuned_device tuned[] = {
    {"pthread-",
     {{"Xgemm",
       16,
       {"GEMMK", "KREG", "KWG", "KWI", "MDIMA", "MDIMC", "MWG", "NDIMB", "NDIMC", "NWG", "SA", "SB",
        "STRM", "STRN", "VWM", "VWN"},
       {0, 1, 32, 2, 8, 8, 64, 16, 8, 64, 1, 1, 1, 0, 8, 1}},
      {"XgemmDirect",
       10,
       {"KWID", "MDIMAD", "MDIMCD", "NDIMBD", "NDIMCD", "PADA", "PADB", "VWMD", "VWND", "WGD"},
       {8, 32, 8, 8, 8, 0, 0, 2, 1, 64}},
      /* the indirect kernel from 128^3 multiply-adds up (ViT-g's GEMMs
       * are far above; the direct one wins below) */
      {"GemmRoutine", 1, {"XGEMM_MIN_INDIRECT_SIZE"}, {128}}}},
};

void vz_cl_clblast_tune(vz_cl *cl) {
  if (getenv("VLZOO_CLBLAST_DEFAULTS")) /* to measure CLBlast's own choice */
    return;
  for (size_t d = 0; d < sizeof tuned / sizeof tuned[0]; d++) {
    if (strncmp(cl->device_name, tuned[d].name_prefix, strlen(tuned[d].name_prefix)) != 0)
      continue;
    for (int k = 0; k < 3; k++) {
      const tuned_kernel *t = &tuned[d].kernels[k];
      CLBlastStatusCode s = CLBlastOverrideParameters(cl->device, t->kernel, CLBlastPrecisionSingle,
                                                      t->count, (const char **)t->names, t->values);
      if (s != CLBlastSuccess)
        vz_log(VZ_LOG_WARN, "CLBlast rejected our %s parameters for %s (status %d)", t->kernel,
               cl->device_name, (int)s);
    }
  }
}

/* ---- Calls ---- */

/* How CLBlast reads a rows x cols operand with strides (rs, cs) in
 * row-major layout: as is (lead = rs) or transposed (lead = cs). */
static bool operand_layout(int64_t rows, int64_t cols, int64_t rs, int64_t cs, CLBlastTranspose *t,
                           size_t *lead) {
  if (cs == 1 || cols == 1) {
    *t = CLBlastTransposeNo;
    *lead = (size_t)(rows > 1 ? rs : cols);
    return rows == 1 || rs >= cols;
  }
  if (rs == 1 || rows == 1) {
    *t = CLBlastTransposeYes;
    *lead = (size_t)(cols > 1 ? cs : rows);
    return cols == 1 || cs >= rows;
  }
  return false;
}

static vz_status clblast_failed(CLBlastStatusCode s, const char *what) {
  return vz_fail(VZ_ERR_BACKEND, "CLBlast %s failed with status %d", what, (int)s);
}

vz_status vz_cl_gemm_clblast(vz_cl *cl, const vz_cl_gemm *g, bool *handled) {
  *handled = false;
  CLBlastTranspose ta, tb;
  size_t lda, ldb;
  if (!operand_layout(g->m, g->k, g->a_rs, g->a_cs, &ta, &lda) ||
      !operand_layout(g->k, g->n, g->b_rs, g->b_cs, &tb, &ldb))
    return VZ_OK;
  *handled = true;
  const size_t batches = (size_t)(g->batch0 * g->batch1);
  const size_t m = (size_t)g->m, n = (size_t)g->n, k = (size_t)g->k;
  CLBlastStatusCode s;
  if (batches == 1) {
    s = CLBlastSgemm(CLBlastLayoutRowMajor, ta, tb, m, n, k, 1.0f, g->a, (size_t)g->a_off, lda,
                     g->b, (size_t)g->b_off, ldb, 0.0f, g->c, (size_t)g->c_off, n, &cl->queue,
                     NULL);
    return s == CLBlastSuccess ? VZ_OK : clblast_failed(s, "Sgemm");
  }
  /* Several matrices: one batched call with each one's offsets. */
  size_t *offsets = malloc(3 * batches * sizeof *offsets);
  float *scalars = malloc(2 * batches * sizeof *scalars);
  if (!offsets || !scalars) {
    free(offsets);
    free(scalars);
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory for batched GEMM offsets");
  }
  for (size_t ob = 0; ob < batches; ob++) {
    int64_t b0 = (int64_t)ob / g->batch1, b1 = (int64_t)ob % g->batch1;
    offsets[ob] = (size_t)(g->a_off + b0 * g->bstride[0] + b1 * g->bstride[1]);
    offsets[batches + ob] =
        (size_t)(g->b_off + b0 * g->bstride[2] + b1 / g->b1_div * g->bstride[3]);
    offsets[2 * batches + ob] = (size_t)(g->c_off + (int64_t)ob * g->m * g->n);
    scalars[ob] = 1.0f;
    scalars[batches + ob] = 0.0f;
  }
  s = CLBlastSgemmBatched(CLBlastLayoutRowMajor, ta, tb, m, n, k, scalars, g->a, offsets, lda, g->b,
                          offsets + batches, ldb, scalars + batches, g->c, offsets + 2 * batches, n,
                          batches, &cl->queue, NULL);
  free(offsets);
  free(scalars);
  return s == CLBlastSuccess ? VZ_OK : clblast_failed(s, "SgemmBatched");
}

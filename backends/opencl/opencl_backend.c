/* The OpenCL backend: one device, one context, one in-order queue. Buffers
 * are device memory (never host pointers, even on CPU devices, so that
 * every copy is explicit and counted); ops are enqueued and not waited for;
 * synchronize drains the queue and reports failures kernels recorded in
 * the deferred error word. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/opencl/opencl.h"
#include "ops/log.h"

static const char *gemm_path_name(vz_cl_gemm_path p) {
  return p == VZ_CL_GEMM_CLBLAST ? "CLBlast GEMM" : "own GEMM kernels";
}

/* VLZOO_OPENCL_GEMM=own|clblast, else our kernels on CPU devices (CLBlast's
 * tuned kernels reach about 0.07x the CPU backend on PoCL) and CLBlast on
 * the others. */
static vz_status choose_gemm(vz_cl *cl) {
  const char *env = getenv("VLZOO_OPENCL_GEMM");
  if (!env || !*env) {
    cl->gemm = cl->is_cpu ? VZ_CL_GEMM_OWN : VZ_CL_GEMM_CLBLAST;
    return VZ_OK;
  }
  if (strcmp(env, "own") == 0)
    cl->gemm = VZ_CL_GEMM_OWN;
  else if (strcmp(env, "clblast") == 0)
    cl->gemm = VZ_CL_GEMM_CLBLAST;
  else
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "VLZOO_OPENCL_GEMM=%s is not 'own' or 'clblast'", env);
  return VZ_OK;
}

/* Tiles of our GEMM kernels: the ones measured best on PoCL (AVX2, 16
 * vector registers), or VLZOO_OPENCL_GEMM_TILES=
 * "NT_MR,NT_NR,NN_MR,NN_NV[,GROUP_N,GROUP_M[,ROWS_FIRST]]" for tuning. */
static vz_status gemm_tiles(vz_cl *cl) {
  int t[7] = {3, 4, 6, 2, 8, 4, 1};
  const char *env = getenv("VLZOO_OPENCL_GEMM_TILES");
  if (env && *env) {
    char extra;
    int n = sscanf(env, "%d,%d,%d,%d,%d,%d,%d%c", &t[0], &t[1], &t[2], &t[3], &t[4], &t[5], &t[6],
                   &extra);
    bool ok = n == 4 || n == 6 || n == 7;
    static const int most[7] = {16, 16, 16, 8, 64, 64, 1};
    for (int i = 0; i < 7 && ok; i++)
      ok = t[i] >= (i == 6 ? 0 : 1) && t[i] <= most[i];
    if (!ok)
      return vz_fail(VZ_ERR_INVALID_ARGUMENT,
                     "VLZOO_OPENCL_GEMM_TILES=%s is not NT_MR,NT_NR,NN_MR,NN_NV[,GROUP_N,GROUP_M"
                     "[,ROWS_FIRST]] (1..16, NN_NV 1..8, groups 1..64, 0 or 1)",
                     env);
  }
  memcpy(cl->gemm_tile, t, sizeof t);
  return VZ_OK;
}

/* VLZOO_OPENCL_MAX_ALLOC=BYTES lowers the largest buffer the backend makes,
 * so that the code that splits work to fit it can be tested on devices
 * that allow gigabytes. */
static vz_status allocation_limit(vz_cl *cl) {
  const char *env = getenv("VLZOO_OPENCL_MAX_ALLOC");
  if (!env || !*env)
    return VZ_OK;
  char *end;
  unsigned long long v = strtoull(env, &end, 10);
  if (*end || v == 0)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "VLZOO_OPENCL_MAX_ALLOC=%s is not a byte count", env);
  if (v < cl->max_alloc)
    cl->max_alloc = v;
  return VZ_OK;
}

/* VLZOO_OPENCL_DISABLE="op,op,...": ops left to the CPU. */
static vz_status disabled_ops(vz_cl *cl) {
  const char *env = getenv("VLZOO_OPENCL_DISABLE");
  for (const char *p = env; p && *p;) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    char name[64];
    snprintf(name, sizeof name, "%.*s", (int)(len < sizeof name ? len : sizeof name - 1), p);
    vz_op_kind op = vz_op_from_name(name);
    if (len && op == VZ_OP_COUNT)
      return vz_fail(VZ_ERR_INVALID_ARGUMENT, "VLZOO_OPENCL_DISABLE names no op '%s'", name);
    if (len)
      cl->disabled[op] = true;
    p = end ? end + 1 : p + len;
  }
  return VZ_OK;
}

static void opencl_destroy(void *self) {
  vz_cl *cl = self;
  if (!cl)
    return;
  if (cl->queue)
    clFinish(cl->queue);
  for (int i = 0; i < VZ_CLK_COUNT; i++)
    if (cl->kernels[i])
      clReleaseKernel(cl->kernels[i]);
  for (int i = 0; i < VZ_CL_FAMILY_COUNT; i++)
    if (cl->programs[i])
      clReleaseProgram(cl->programs[i]);
  if (cl->status)
    clReleaseMemObject(cl->status);
  if (cl->queue)
    clReleaseCommandQueue(cl->queue);
  if (cl->context)
    clReleaseContext(cl->context);
  free(cl);
}

static vz_status opencl_create(const char *device, void **self) {
  vz_cl *cl = calloc(1, sizeof *cl);
  if (!cl)
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory for the OpenCL backend");
  vz_status st = vz_cl_select_device(cl, device);
  if (st == VZ_OK)
    st = choose_gemm(cl);
  cl_int err = CL_SUCCESS;
  if (st == VZ_OK) {
    cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)cl->platform, 0};
    cl->context = clCreateContext(props, 1, &cl->device, NULL, NULL, &err);
    if (err != CL_SUCCESS)
      st = vz_cl_fail(err, "clCreateContext");
  }
  if (st == VZ_OK) {
    cl->queue = clCreateCommandQueue(cl->context, cl->device, 0, &err);
    if (err != CL_SUCCESS)
      st = vz_cl_fail(err, "clCreateCommandQueue");
  }
  if (st == VZ_OK) {
    cl_int zeros[VZ_CL_STATUS_INTS] = {0};
    cl->status = clCreateBuffer(cl->context, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, sizeof zeros,
                                zeros, &err);
    if (err != CL_SUCCESS)
      st = vz_cl_fail(err, "clCreateBuffer for the status word");
  }
  if (st != VZ_OK) {
    opencl_destroy(cl);
    return st;
  }
  st = gemm_tiles(cl);
  if (st == VZ_OK)
    st = disabled_ops(cl);
  if (st == VZ_OK)
    st = allocation_limit(cl);
  if (st != VZ_OK) {
    opencl_destroy(cl);
    return st;
  }
  snprintf(cl->build_options, sizeof cl->build_options,
           "-cl-std=CL1.2%s -DNT_MR=%d -DNT_NR=%d -DNN_MR=%d -DNN_NV=%d -DGEMM_ROWS_FIRST=%d",
           cl->has_fp64 ? " -DVZ_FP64=1" : "", cl->gemm_tile[0], cl->gemm_tile[1], cl->gemm_tile[2],
           cl->gemm_tile[3], cl->gemm_tile[6]);
  vz_cl_cache_dir(cl->cache_dir, sizeof cl->cache_dir);
  cl->group_size = cl->is_cpu ? 1024 : 256;
  if (cl->max_work_group && cl->group_size > cl->max_work_group)
    cl->group_size = cl->max_work_group;
  if (cl->gemm == VZ_CL_GEMM_CLBLAST)
    vz_cl_clblast_tune(cl);
  snprintf(cl->description, sizeof cl->description,
           "opencl: %.200s (%.200s, driver %.60s), largest buffer %.1f GiB, fp64 %s, fp16 %s, "
           "%s, program cache %.200s",
           cl->device_name, cl->platform_name, cl->driver_version,
           (double)cl->max_alloc / (1024.0 * 1024.0 * 1024.0), cl->has_fp64 ? "yes" : "no",
           cl->has_fp16 ? "yes" : "no", gemm_path_name(cl->gemm),
           cl->cache_dir[0] ? cl->cache_dir : "off");
  *self = cl;
  return VZ_OK;
}

static const char *opencl_describe(void *self) { return ((vz_cl *)self)->description; }

static vz_status opencl_buffer_alloc(void *self, size_t bytes, void **handle, void **host_ptr) {
  vz_cl *cl = self;
  if (bytes > cl->max_alloc)
    return vz_fail(VZ_ERR_OUT_OF_MEMORY,
                   "a buffer of %zu bytes exceeds the OpenCL device's largest allocation (%llu "
                   "bytes, CL_DEVICE_MAX_MEM_ALLOC_SIZE)",
                   bytes, (unsigned long long)cl->max_alloc);
  cl_int err;
  /* OpenCL has no empty buffers; an empty tensor gets a few bytes. */
  cl_mem mem = clCreateBuffer(cl->context, CL_MEM_READ_WRITE, bytes ? bytes : 64, NULL, &err);
  if (err != CL_SUCCESS)
    return vz_cl_fail(err, "clCreateBuffer");
  *handle = mem;
  *host_ptr = NULL;
  return VZ_OK;
}

static void opencl_buffer_free(void *self, void *handle) {
  (void)self;
  clReleaseMemObject((cl_mem)handle);
}

static vz_status opencl_buffer_write(void *self, void *handle, size_t offset, const void *src,
                                     size_t bytes) {
  vz_cl *cl = self;
  if (!bytes)
    return VZ_OK;
  /* Blocking: the caller's memory may be gone once this returns. */
  cl_int err =
      clEnqueueWriteBuffer(cl->queue, (cl_mem)handle, CL_TRUE, offset, bytes, src, 0, NULL, NULL);
  return err == CL_SUCCESS ? VZ_OK : vz_cl_fail(err, "clEnqueueWriteBuffer");
}

static vz_status opencl_buffer_read(void *self, void *handle, size_t offset, void *dst,
                                    size_t bytes) {
  vz_cl *cl = self;
  if (!bytes)
    return VZ_OK;
  cl_int err =
      clEnqueueReadBuffer(cl->queue, (cl_mem)handle, CL_TRUE, offset, bytes, dst, 0, NULL, NULL);
  if (err != CL_SUCCESS)
    return vz_cl_fail(err, "clEnqueueReadBuffer");
  return vz_cl_check_status(cl);
}

static vz_status opencl_buffer_clear(void *self, void *handle, size_t offset, size_t bytes) {
  vz_cl *cl = self;
  if (!bytes)
    return VZ_OK;
  cl_uchar zero = 0;
  cl_int err = clEnqueueFillBuffer(cl->queue, (cl_mem)handle, &zero, sizeof zero, offset, bytes, 0,
                                   NULL, NULL);
  return err == CL_SUCCESS ? VZ_OK : vz_cl_fail(err, "clEnqueueFillBuffer");
}

static bool opencl_supports(void *self, const vz_op_call *call) {
  const vz_cl *cl = self;
  const vz_cl_op *op = vz_cl_op_for(call->op);
  return op->run && !cl->disabled[call->op] && op->supports(cl, call);
}

static vz_status opencl_run(void *self, const vz_op_call *call) {
  return vz_cl_op_for(call->op)->run(self, call);
}

static vz_status opencl_synchronize(void *self) {
  vz_cl *cl = self;
  cl_int err = clFinish(cl->queue);
  if (err != CL_SUCCESS)
    return vz_cl_fail(err, "clFinish");
  return vz_cl_check_status(cl);
}

const vz_backend_iface vz_opencl_backend = {
    .name = "opencl",
    .create = opencl_create,
    .destroy = opencl_destroy,
    .describe = opencl_describe,
    .buffer_alloc = opencl_buffer_alloc,
    .buffer_free = opencl_buffer_free,
    .buffer_write = opencl_buffer_write,
    .buffer_read = opencl_buffer_read,
    .buffer_clear = opencl_buffer_clear,
    .supports = opencl_supports,
    .run = opencl_run,
    .synchronize = opencl_synchronize,
};

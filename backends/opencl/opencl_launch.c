/* Launching kernels: looking them up (building their program on first
 * use), setting arguments in order, and enqueueing with padded global
 * sizes. Also the scratch buffers ops use for intermediate results. */
#include <stdlib.h>
#include <string.h>

#include "backends/opencl/opencl.h"

static const struct {
  vz_cl_family family;
  const char *name;
} kernel_table[VZ_CLK_COUNT] = {
#define VZ_CL_KERNEL_ROW(family, name) {VZ_CL_FAMILY_##family, #name},
    VZ_CL_KERNELS(VZ_CL_KERNEL_ROW)
#undef VZ_CL_KERNEL_ROW
};

vz_status vz_cl_begin(vz_cl *cl, vz_cl_kernel_id id, vz_cl_launch *l) {
  memset(l, 0, sizeof *l);
  l->cl = cl;
  l->id = id;
  if (!cl->kernels[id]) {
    cl_program program;
    vz_status st = vz_cl_program(cl, kernel_table[id].family, &program);
    if (st != VZ_OK)
      return l->st = st;
    cl_int err;
    cl->kernels[id] = clCreateKernel(program, kernel_table[id].name, &err);
    if (err != CL_SUCCESS) {
      cl->kernels[id] = NULL;
      return l->st = vz_fail(VZ_ERR_BACKEND, "clCreateKernel(%s) failed: %s", kernel_table[id].name,
                             vz_cl_error_name(err));
    }
    size_t most = 0;
    if (clGetKernelWorkGroupInfo(cl->kernels[id], cl->device, CL_KERNEL_WORK_GROUP_SIZE,
                                 sizeof most, &most, NULL) != CL_SUCCESS ||
        most == 0)
      most = cl->max_work_group ? cl->max_work_group : 1;
    cl->kernel_max_group[id] = most;
  }
  l->kernel = cl->kernels[id];
  return VZ_OK;
}

static void set_arg(vz_cl_launch *l, size_t size, const void *value) {
  if (l->st != VZ_OK || l->err != CL_SUCCESS)
    return;
  l->err = clSetKernelArg(l->kernel, l->next, size, value);
  l->next++;
}

void vz_cl_arg_mem(vz_cl_launch *l, cl_mem mem) { set_arg(l, sizeof mem, &mem); }

void vz_cl_arg_tensor(vz_cl_launch *l, const vz_tensor *t) {
  vz_cl_arg_mem(l, t ? vz_cl_mem_of(t) : NULL);
  vz_cl_arg_long(l, t ? t->offset : 0);
}

void vz_cl_arg_int(vz_cl_launch *l, int32_t v) {
  cl_int x = v;
  set_arg(l, sizeof x, &x);
}

void vz_cl_arg_long(vz_cl_launch *l, int64_t v) {
  cl_long x = v;
  set_arg(l, sizeof x, &x);
}

void vz_cl_arg_float(vz_cl_launch *l, float v) {
  cl_float x = v;
  set_arg(l, sizeof x, &x);
}

void vz_cl_arg_long4(vz_cl_launch *l, const int64_t v[4]) {
  cl_long4 x;
  for (int i = 0; i < 4; i++)
    x.s[i] = v[i];
  set_arg(l, sizeof x, &x);
}

void vz_cl_arg_status(vz_cl_launch *l) {
  vz_cl_arg_mem(l, l->cl->status);
  l->cl->checks_pending = true;
}

vz_status vz_cl_enqueue(vz_cl_launch *l, int dims, const size_t *global, const size_t *local) {
  if (l->st != VZ_OK)
    return l->st;
  if (l->err != CL_SUCCESS)
    return vz_fail(VZ_ERR_BACKEND, "setting argument %u of kernel %s failed: %s", l->next - 1,
                   kernel_table[l->id].name, vz_cl_error_name(l->err));
  /* Work-groups as asked, halved (largest dimension first) until the kernel
   * allows them on this device: a GPU compiler may cap a register-hungry
   * kernel below the device's maximum. */
  size_t group[3] = {1, 1, 1}, padded[3];
  for (int d = 0; d < dims; d++)
    group[d] = local ? local[d] : 1;
  for (;;) {
    size_t total = group[0] * group[1] * group[2];
    if (total <= l->cl->kernel_max_group[l->id])
      break;
    int widest = 0;
    for (int d = 1; d < dims; d++)
      widest = group[d] > group[widest] ? d : widest;
    group[widest] = (group[widest] + 1) / 2;
  }
  for (int d = 0; d < dims; d++) {
    if (global[d] == 0)
      return VZ_OK;
    padded[d] = (global[d] + group[d] - 1) / group[d] * group[d];
  }
  cl_int err = clEnqueueNDRangeKernel(l->cl->queue, l->kernel, (cl_uint)dims, NULL, padded,
                                      local ? group : NULL, 0, NULL, NULL);
  if (err != CL_SUCCESS)
    return vz_fail(VZ_ERR_BACKEND, "enqueueing kernel %s failed: %s", kernel_table[l->id].name,
                   vz_cl_error_name(err));
  return VZ_OK;
}

/* Work-groups of about cl->group_size items over [inner, rows]. */
static void group_of(const vz_cl *cl, int64_t inner, int64_t rows, size_t local[2]) {
  const size_t g = cl->group_size;
  /* as few groups along the row as fit g, sized (to a multiple of 8) to pad
   * it least: 1408 items in 2 groups of 704 rather than 2 of 1024 */
  size_t parts = ((size_t)inner + g - 1) / g;
  local[0] = parts ? ((size_t)inner + parts - 1) / parts : 1;
  local[0] = local[0] > 8 ? (local[0] + 7) / 8 * 8 : local[0];
  /* then whole rows to fill the group */
  size_t fit = g / local[0];
  local[1] = fit < 1 ? 1 : fit < (size_t)rows ? fit : (size_t)(rows > 0 ? rows : 1);
}

vz_status vz_cl_enqueue_2d(vz_cl_launch *l, int64_t inner, int64_t rows) {
  size_t global[2] = {(size_t)inner, (size_t)rows}, local[2];
  group_of(l->cl, inner, rows, local);
  return vz_cl_enqueue(l, 2, global, local);
}

vz_status vz_cl_enqueue_layout(vz_cl_launch *l, const vz_cl_layout *lay) {
  size_t global[3] = {(size_t)lay->shape[3], (size_t)lay->shape[2],
                      (size_t)(lay->shape[0] * lay->shape[1])};
  size_t local[3] = {1, 1, 1};
  group_of(l->cl, lay->shape[3], lay->shape[2], local);
  return vz_cl_enqueue(l, 3, global, local);
}

vz_status vz_cl_enqueue_1d(vz_cl_launch *l, int64_t n) {
  size_t global = (size_t)n, local = l->cl->group_size;
  if (global < local)
    local = global > 8 ? (global + 7) / 8 * 8 : (global ? global : 1);
  return vz_cl_enqueue(l, 1, &global, &local);
}

vz_status vz_cl_scratch(vz_cl *cl, size_t bytes, cl_mem *out) {
  if (bytes > cl->max_alloc)
    return vz_fail(VZ_ERR_OUT_OF_MEMORY,
                   "an intermediate buffer of %zu bytes exceeds the device's largest allocation "
                   "(%llu bytes)",
                   bytes, (unsigned long long)cl->max_alloc);
  cl_int err;
  *out = clCreateBuffer(cl->context, CL_MEM_READ_WRITE, bytes ? bytes : 64, NULL, &err);
  if (err != CL_SUCCESS)
    return vz_cl_fail(err, "clCreateBuffer for an intermediate result");
  return VZ_OK;
}

/* A scratch tensor owns its header and a private vz_buffer whose handle is
 * the cl_mem; backend is NULL, so that vz_tensor_free is never used on it. */
vz_status vz_cl_scratch_tensor(vz_cl *cl, vz_dtype dtype, int ndim, const int64_t *shape,
                               vz_tensor **out) {
  int64_t numel = 1;
  for (int i = 0; i < ndim; i++)
    numel *= shape[i];
  vz_tensor *t = calloc(1, sizeof *t);
  vz_buffer *b = calloc(1, sizeof *b);
  if (!t || !b) {
    free(t);
    free(b);
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory for a scratch tensor");
  }
  b->bytes = (size_t)numel * vz_dtype_size(dtype);
  cl_mem mem = NULL;
  vz_status st = vz_cl_scratch(cl, b->bytes, &mem);
  if (st != VZ_OK) {
    free(t);
    free(b);
    return st;
  }
  b->handle = mem;
  t->buffer = b;
  t->dtype = dtype;
  t->ndim = ndim;
  int64_t s = 1;
  for (int i = ndim - 1; i >= 0; i--) {
    t->shape[i] = shape[i];
    t->stride[i] = s;
    s *= shape[i];
  }
  *out = t;
  return VZ_OK;
}

void vz_cl_scratch_tensor_free(vz_tensor *t) {
  if (!t)
    return;
  clReleaseMemObject((cl_mem)t->buffer->handle);
  free(t->buffer);
  free(t);
}

/* OpenCL error codes as text, and the deferred error word through which
 * kernels report invalid indices: a device cannot fail an op when it is
 * enqueued, so the first failure is recorded in a small buffer and turned
 * into an error status at the next synchronize (that is, by the call that
 * reads a result back). */
#include <stdio.h>

#include "backends/opencl/opencl.h"

const char *vz_cl_error_name(cl_int err) {
  switch (err) {
#define NAME(code)                                                                                 \
  case code: return #code;
    NAME(CL_SUCCESS)
    NAME(CL_DEVICE_NOT_FOUND)
    NAME(CL_DEVICE_NOT_AVAILABLE)
    NAME(CL_COMPILER_NOT_AVAILABLE)
    NAME(CL_MEM_OBJECT_ALLOCATION_FAILURE)
    NAME(CL_OUT_OF_RESOURCES)
    NAME(CL_OUT_OF_HOST_MEMORY)
    NAME(CL_PROFILING_INFO_NOT_AVAILABLE)
    NAME(CL_MEM_COPY_OVERLAP)
    NAME(CL_IMAGE_FORMAT_MISMATCH)
    NAME(CL_IMAGE_FORMAT_NOT_SUPPORTED)
    NAME(CL_BUILD_PROGRAM_FAILURE)
    NAME(CL_MAP_FAILURE)
    NAME(CL_MISALIGNED_SUB_BUFFER_OFFSET)
    NAME(CL_COMPILE_PROGRAM_FAILURE)
    NAME(CL_LINKER_NOT_AVAILABLE)
    NAME(CL_LINK_PROGRAM_FAILURE)
    NAME(CL_INVALID_VALUE)
    NAME(CL_INVALID_DEVICE_TYPE)
    NAME(CL_INVALID_PLATFORM)
    NAME(CL_INVALID_DEVICE)
    NAME(CL_INVALID_CONTEXT)
    NAME(CL_INVALID_QUEUE_PROPERTIES)
    NAME(CL_INVALID_COMMAND_QUEUE)
    NAME(CL_INVALID_HOST_PTR)
    NAME(CL_INVALID_MEM_OBJECT)
    NAME(CL_INVALID_BINARY)
    NAME(CL_INVALID_BUILD_OPTIONS)
    NAME(CL_INVALID_PROGRAM)
    NAME(CL_INVALID_PROGRAM_EXECUTABLE)
    NAME(CL_INVALID_KERNEL_NAME)
    NAME(CL_INVALID_KERNEL_DEFINITION)
    NAME(CL_INVALID_KERNEL)
    NAME(CL_INVALID_ARG_INDEX)
    NAME(CL_INVALID_ARG_VALUE)
    NAME(CL_INVALID_ARG_SIZE)
    NAME(CL_INVALID_KERNEL_ARGS)
    NAME(CL_INVALID_WORK_DIMENSION)
    NAME(CL_INVALID_WORK_GROUP_SIZE)
    NAME(CL_INVALID_WORK_ITEM_SIZE)
    NAME(CL_INVALID_GLOBAL_OFFSET)
    NAME(CL_INVALID_EVENT_WAIT_LIST)
    NAME(CL_INVALID_EVENT)
    NAME(CL_INVALID_OPERATION)
    NAME(CL_INVALID_BUFFER_SIZE)
    NAME(CL_INVALID_GLOBAL_WORK_SIZE)
    NAME(CL_INVALID_PROPERTY)
#undef NAME
  default: return "an unknown OpenCL error";
  }
}

vz_status vz_cl_fail(cl_int err, const char *what) {
  vz_status status = err == CL_MEM_OBJECT_ALLOCATION_FAILURE || err == CL_OUT_OF_HOST_MEMORY ||
                             err == CL_INVALID_BUFFER_SIZE
                         ? VZ_ERR_OUT_OF_MEMORY
                         : VZ_ERR_BACKEND;
  return vz_fail(status, "%s failed: %s (%d)", what, vz_cl_error_name(err), (int)err);
}

static int64_t read_long(const cl_int *words, int at) {
  return (int64_t)(((uint64_t)(uint32_t)words[at + 1] << 32) | (uint32_t)words[at]);
}

vz_status vz_cl_check_status(vz_cl *cl) {
  if (!cl->checks_pending)
    return VZ_OK;
  cl_int words[VZ_CL_STATUS_INTS];
  cl_int err =
      clEnqueueReadBuffer(cl->queue, cl->status, CL_TRUE, 0, sizeof words, words, 0, NULL, NULL);
  if (err != CL_SUCCESS)
    return vz_cl_fail(err, "reading the OpenCL status word");
  cl->checks_pending = false;
  if (words[VZ_CL_STATUS_CODE] == 0)
    return VZ_OK;
  cl_int zero = 0;
  err = clEnqueueFillBuffer(cl->queue, cl->status, &zero, sizeof zero, 0, sizeof words, 0, NULL,
                            NULL);
  if (err != CL_SUCCESS)
    return vz_cl_fail(err, "clearing the OpenCL status word");
  long long position = (long long)read_long(words, VZ_CL_STATUS_POSITION);
  long long value = (long long)read_long(words, VZ_CL_STATUS_VALUE);
  long long limit = (long long)read_long(words, VZ_CL_STATUS_LIMIT);
  int axis = words[VZ_CL_STATUS_DETAIL];
  const char *prefix = "an op queued on OpenCL failed: ";
  switch ((vz_cl_failure)words[VZ_CL_STATUS_CODE]) {
  case VZ_CL_FAIL_EMBEDDING_ID:
    return vz_fail(VZ_ERR_INVALID_ARGUMENT,
                   "%sembedding: embedding id %lld at position %lld is "
                   "outside [0, %lld)",
                   prefix, value, position, limit);
  case VZ_CL_FAIL_INDEX_SELECT_ID:
    return vz_fail(VZ_ERR_INVALID_ARGUMENT,
                   "%sindex_select: index_select id %lld at position %lld is outside [0, %lld) "
                   "(axis %d)",
                   prefix, value, position, limit, axis);
  case VZ_CL_FAIL_GATHER_INDEX:
    return vz_fail(VZ_ERR_INVALID_ARGUMENT,
                   "%sgather: gather index %lld at position %lld is outside [0, %lld) (axis %d)",
                   prefix, value, position, limit, axis);
  case VZ_CL_FAIL_DIVISION_BY_ZERO:
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "%sdiv: integer division by zero", prefix);
  }
  return vz_fail(VZ_ERR_BACKEND, "%sunknown failure code %d", prefix,
                 (int)words[VZ_CL_STATUS_CODE]);
}

/* The OpenCL C sources of the backend's kernels, embedded at build time by
 * backends/opencl/embed_kernels.cmake from opencl_kernels_*.cl. */
#ifndef VLZOO_OPENCL_SOURCES_H
#define VLZOO_OPENCL_SOURCES_H

#include <stddef.h>

typedef struct vz_cl_source {
  const char *family; /* "common", "elementwise", "gemm", ... */
  const char *text;   /* NUL-terminated */
  size_t size;        /* bytes, without the NUL */
} vz_cl_source;

extern const vz_cl_source vz_cl_sources[];
extern const size_t vz_cl_source_count;

#endif

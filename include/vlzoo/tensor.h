/* Tensors: up to four dimensions with element strides, viewing a reference-
 * counted buffer that belongs to one backend. */
#ifndef VLZOO_TENSOR_H
#define VLZOO_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vlzoo/dtype.h"
#include "vlzoo/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VZ_MAX_DIMS 4

typedef struct vz_backend vz_backend;
typedef struct vz_buffer vz_buffer;

/* Fields may be read freely; change them only through the functions below.
 * Strides and offset count elements, not bytes. A stride of 0 repeats an
 * element (broadcasting). */
typedef struct vz_tensor {
  vz_dtype dtype;
  int ndim; /* 0 (a scalar) to VZ_MAX_DIMS */
  int64_t shape[VZ_MAX_DIMS];
  int64_t stride[VZ_MAX_DIMS];
  int64_t offset;    /* of element [0,...,0] from the buffer's start */
  vz_buffer *buffer; /* one reference held by this tensor */
} vz_tensor;

/* A new contiguous tensor on `backend`, contents undefined. The caller frees
 * *out with vz_tensor_free. */
vz_status vz_tensor_new(vz_backend *backend, vz_dtype dtype, int ndim, const int64_t *shape,
                        vz_tensor **out);

/* As vz_tensor_new, filled with zeros. */
vz_status vz_tensor_zeros(vz_backend *backend, vz_dtype dtype, int ndim, const int64_t *shape,
                          vz_tensor **out);

/* A new contiguous tensor holding a copy of `bytes` bytes of host memory,
 * which must be exactly the tensor's size. */
vz_status vz_tensor_from_host(vz_backend *backend, vz_dtype dtype, int ndim, const int64_t *shape,
                              const void *data, size_t bytes, vz_tensor **out);

/* Called once when memory lent to vz_tensor_wrap_host is no longer used. */
typedef void (*vz_host_release)(void *context);

/* A new contiguous, read-only tensor over `bytes` bytes of host memory (its
 * exact size) that the caller lends rather than copies: on a backend that
 * reads host memory in place (vz_backend_wraps_host_memory; the CPU) the
 * tensor uses it, so a model can run on weights where they lie in a mapped
 * file. Elsewhere, or when `data` is not aligned to the element size, the
 * bytes are copied. `release(context)` (release may be NULL) is called
 * exactly once: when the last view of the tensor is freed, at once when the
 * bytes were copied, or on failure. Until then the memory must stay valid
 * and unchanged. Writing into the tensor (vz_tensor_write, or as an op's
 * given output) is an error. */
vz_status vz_tensor_wrap_host(vz_backend *backend, vz_dtype dtype, int ndim, const int64_t *shape,
                              const void *data, size_t bytes, vz_host_release release,
                              void *context, vz_tensor **out);

/* Whether the tensor's memory is lent by vz_tensor_wrap_host and may not be
 * written. */
bool vz_tensor_is_read_only(const vz_tensor *t);

/* Releases the tensor and its reference to the buffer. NULL is ignored. */
void vz_tensor_free(vz_tensor *t);

/* Copies the tensor's elements, in row-major order, to host memory of
 * exactly `bytes` bytes. Works on any view; waits for queued work. */
vz_status vz_tensor_to_host(const vz_tensor *t, void *dst, size_t bytes);

/* Overwrites a contiguous tensor's elements from host memory. */
vz_status vz_tensor_write(vz_tensor *t, const void *src, size_t bytes);

int64_t vz_tensor_numel(const vz_tensor *t);
size_t vz_tensor_nbytes(const vz_tensor *t); /* numel * element size */
bool vz_tensor_is_contiguous(const vz_tensor *t);
vz_backend *vz_tensor_backend(const vz_tensor *t);

/* Host address of element [0,...,0] when the buffer lives in host memory
 * (the CPU backend), else NULL. Only read through it when the tensor is
 * read-only (vz_tensor_is_read_only). */
void *vz_tensor_host_data(const vz_tensor *t);

/* ---- Views: new tensor objects sharing the buffer; no data moves. ---- */

/* A view with explicit shape, strides and offset, checked against the
 * buffer's bounds. */
vz_status vz_tensor_view(const vz_tensor *t, int ndim, const int64_t *shape, const int64_t *stride,
                         int64_t offset, vz_tensor **out);

/* Same elements, new shape; one entry may be -1 (inferred). A view when
 * the strides allow one, otherwise a contiguous copy. */
vz_status vz_reshape(const vz_tensor *t, int ndim, const int64_t *shape, vz_tensor **out);

/* Dimensions reordered: output dimension i is input dimension perm[i]. */
vz_status vz_permute(const vz_tensor *t, const int *perm, vz_tensor **out);

/* Dimensions a and b swapped. */
vz_status vz_transpose(const vz_tensor *t, int a, int b, vz_tensor **out);

/* Elements start, start+step, ... below stop along `axis` (negative axis
 * counts from the end; start/stop are clamped like Python slices). */
vz_status vz_slice(const vz_tensor *t, int axis, int64_t start, int64_t stop, int64_t step,
                   vz_tensor **out);

/* Shape broadcast to `shape` (numpy rules) with zero strides; no copy. */
vz_status vz_expand(const vz_tensor *t, int ndim, const int64_t *shape, vz_tensor **out);

/* A contiguous tensor with the same elements: a copy when `t` is strided,
 * another view of the same buffer when it already is contiguous. */
vz_status vz_contiguous(const vz_tensor *t, vz_tensor **out);

/* Normalizes a possibly negative axis against ndim; -1 when out of range. */
int vz_axis(int axis, int ndim);

#ifdef __cplusplus
}
#endif
#endif

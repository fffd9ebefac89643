/* Tensor objects, their buffers, and views that share a buffer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/internal.h"

void vz_buffer_retain(vz_buffer *b) { atomic_fetch_add(&b->refs, 1); }

void vz_buffer_release(vz_buffer *b) {
  if (!b || atomic_fetch_sub(&b->refs, 1) != 1)
    return;
  const vz_backend_iface *iface = b->backend->iface;
  if (b->read_only) {
    iface->buffer_unwrap(b->backend->self, b->handle);
    if (b->release)
      b->release(b->release_context);
  } else {
    iface->buffer_free(b->backend->self, b->handle);
  }
  free(b);
}

/* A buffer of `bytes` bytes: new memory, or `lent` host memory used in
 * place (read-only; the caller checked that the backend wraps). */
static vz_status buffer_new(vz_backend *backend, size_t bytes, const void *lent, vz_buffer **out) {
  vz_buffer *b = calloc(1, sizeof *b);
  if (!b)
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory for a buffer header");
  vz_status st;
  if (lent) {
    st = backend->iface->buffer_wrap(backend->self, lent, bytes, &b->handle);
    b->host = (void *)lent;
    b->read_only = true;
  } else {
    st = backend->iface->buffer_alloc(backend->self, bytes, &b->handle, &b->host);
  }
  if (st != VZ_OK) {
    free(b);
    return st;
  }
  b->backend = backend;
  b->bytes = bytes;
  atomic_init(&b->refs, 1);
  *out = b;
  return VZ_OK;
}

int vz_axis(int axis, int ndim) {
  if (axis < 0)
    axis += ndim;
  return (axis >= 0 && axis < ndim) ? axis : -1;
}

const char *vz_shape_text(int ndim, const int64_t *shape, char *buf, size_t size) {
  size_t used = (size_t)snprintf(buf, size, "[");
  for (int i = 0; i < ndim && used < size; i++)
    used += (size_t)snprintf(buf + used, size - used, i ? ", %lld" : "%lld", (long long)shape[i]);
  if (used < size)
    snprintf(buf + used, size - used, "]");
  return buf;
}

/* Element count of a shape, failing on negative sizes and on overflow. */
static vz_status shape_numel(int ndim, const int64_t *shape, int64_t *numel) {
  if (ndim < 0 || ndim > VZ_MAX_DIMS)
    return vz_fail(VZ_ERR_SHAPE, "a tensor has 0 to %d dimensions, not %d", VZ_MAX_DIMS, ndim);
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 0)
      return vz_fail(VZ_ERR_SHAPE, "dimension %d has negative size %lld", i, (long long)shape[i]);
    if (shape[i] != 0 && n > INT64_MAX / shape[i])
      return vz_fail(VZ_ERR_SHAPE, "tensor size overflows 64 bits");
    n *= shape[i];
  }
  *numel = n;
  return VZ_OK;
}

static void set_contiguous_strides(vz_tensor *t) {
  int64_t s = 1;
  for (int i = t->ndim - 1; i >= 0; i--) {
    t->stride[i] = s;
    s *= t->shape[i];
  }
}

/* A contiguous tensor over new memory, or over `lent` host memory. */
static vz_status tensor_over(vz_backend *backend, vz_dtype dtype, int ndim, const int64_t *shape,
                             const void *lent, vz_tensor **out) {
  if (!backend || !out || (ndim > 0 && !shape))
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "tensor_new: NULL argument");
  size_t elem = vz_dtype_size(dtype);
  if (elem == 0)
    return vz_fail(VZ_ERR_DTYPE, "tensor_new: invalid dtype %d", (int)dtype);
  int64_t numel = 0;
  vz_status st = shape_numel(ndim, shape, &numel);
  if (st != VZ_OK)
    return st;
  if ((uint64_t)numel > SIZE_MAX / elem)
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "tensor of %lld elements does not fit in memory",
                   (long long)numel);
  vz_tensor *t = calloc(1, sizeof *t);
  if (!t)
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory for a tensor header");
  t->dtype = dtype;
  t->ndim = ndim;
  for (int i = 0; i < ndim; i++)
    t->shape[i] = shape[i];
  set_contiguous_strides(t);
  st = buffer_new(backend, (size_t)numel * elem, lent, &t->buffer);
  if (st != VZ_OK) {
    free(t);
    return st;
  }
  *out = t;
  return VZ_OK;
}

vz_status vz_tensor_new(vz_backend *backend, vz_dtype dtype, int ndim, const int64_t *shape,
                        vz_tensor **out) {
  return tensor_over(backend, dtype, ndim, shape, NULL, out);
}

vz_status vz_tensor_zeros(vz_backend *backend, vz_dtype dtype, int ndim, const int64_t *shape,
                          vz_tensor **out) {
  vz_tensor *t;
  vz_status st = vz_tensor_new(backend, dtype, ndim, shape, &t);
  if (st != VZ_OK)
    return st;
  vz_buffer *b = t->buffer;
  if (b->host) {
    memset(b->host, 0, b->bytes);
  } else if (backend->iface->buffer_clear) {
    st = backend->iface->buffer_clear(backend->self, b->handle, 0, b->bytes);
  } else {
    void *zeros = calloc(1, b->bytes ? b->bytes : 1);
    st = zeros ? vz_backend_upload(backend, b->handle, 0, zeros, b->bytes)
               : vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory for zeros");
    free(zeros);
  }
  if (st != VZ_OK) {
    vz_tensor_free(t);
    return st;
  }
  *out = t;
  return VZ_OK;
}

vz_status vz_tensor_from_host(vz_backend *backend, vz_dtype dtype, int ndim, const int64_t *shape,
                              const void *data, size_t bytes, vz_tensor **out) {
  if (!data && bytes)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "tensor_from_host: NULL data");
  vz_tensor *t;
  vz_status st = vz_tensor_new(backend, dtype, ndim, shape, &t);
  if (st != VZ_OK)
    return st;
  st = vz_tensor_write(t, data, bytes);
  if (st != VZ_OK) {
    vz_tensor_free(t);
    return st;
  }
  *out = t;
  return VZ_OK;
}

vz_status vz_tensor_wrap_host(vz_backend *backend, vz_dtype dtype, int ndim, const int64_t *shape,
                              const void *data, size_t bytes, vz_host_release release,
                              void *context, vz_tensor **out) {
  size_t elem = vz_dtype_size(dtype);
  bool in_place = backend && data && bytes && elem && (uintptr_t)data % elem == 0 &&
                  vz_backend_wraps_host_memory(backend);
  int64_t numel = 0;
  vz_tensor *t = NULL;
  vz_status st;
  if (!in_place)
    st = vz_tensor_from_host(backend, dtype, ndim, shape, data, bytes, &t);
  else if ((st = shape_numel(ndim, shape, &numel)) == VZ_OK &&
           ((uint64_t)numel > SIZE_MAX / elem || bytes != (size_t)numel * elem))
    st = vz_fail(VZ_ERR_SHAPE,
                 "tensor_wrap_host: %zu bytes given for a tensor of %lld elements of %zu bytes",
                 bytes, (long long)numel, elem);
  else if (st == VZ_OK)
    st = tensor_over(backend, dtype, ndim, shape, data, &t);
  if (st == VZ_OK && in_place) {
    t->buffer->release = release;
    t->buffer->release_context = context;
  } else if (release) {
    release(context);
  }
  if (st == VZ_OK)
    *out = t;
  return st;
}

bool vz_tensor_is_read_only(const vz_tensor *t) { return t && t->buffer->read_only; }

void vz_tensor_free(vz_tensor *t) {
  if (!t)
    return;
  vz_buffer_release(t->buffer);
  free(t);
}

int64_t vz_tensor_numel(const vz_tensor *t) {
  int64_t n = 1;
  for (int i = 0; i < t->ndim; i++)
    n *= t->shape[i];
  return n;
}

size_t vz_tensor_nbytes(const vz_tensor *t) {
  return (size_t)vz_tensor_numel(t) * vz_dtype_size(t->dtype);
}

bool vz_tensor_is_contiguous(const vz_tensor *t) {
  int64_t s = 1;
  for (int i = t->ndim - 1; i >= 0; i--) {
    if (t->shape[i] != 1 && t->stride[i] != s)
      return false;
    s *= t->shape[i];
  }
  return true;
}

vz_backend *vz_tensor_backend(const vz_tensor *t) { return t ? t->buffer->backend : NULL; }

void *vz_tensor_host_data(const vz_tensor *t) {
  if (!t || !t->buffer->host)
    return NULL;
  return (char *)t->buffer->host + (size_t)t->offset * vz_dtype_size(t->dtype);
}

vz_status vz_tensor_write(vz_tensor *t, const void *src, size_t bytes) {
  if (!t || (!src && bytes))
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "tensor_write: NULL argument");
  if (!vz_tensor_is_contiguous(t))
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "tensor_write: the tensor is a strided view");
  if (t->buffer->read_only)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT,
                   "tensor_write: the tensor is read-only (lent host memory, e.g. weights used "
                   "in place from their file)");
  if (bytes != vz_tensor_nbytes(t))
    return vz_fail(VZ_ERR_SHAPE, "tensor_write: %zu bytes given for a tensor of %zu bytes", bytes,
                   vz_tensor_nbytes(t));
  vz_backend *be = t->buffer->backend;
  size_t offset = (size_t)t->offset * vz_dtype_size(t->dtype);
  return vz_backend_upload(be, t->buffer->handle, offset, src, bytes);
}

vz_status vz_tensor_to_host(const vz_tensor *t, void *dst, size_t bytes) {
  if (!t || (!dst && bytes))
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "tensor_to_host: NULL argument");
  if (bytes != vz_tensor_nbytes(t))
    return vz_fail(VZ_ERR_SHAPE, "tensor_to_host: %zu bytes of room for a tensor of %zu bytes",
                   bytes, vz_tensor_nbytes(t));
  vz_tensor *dense = NULL;
  vz_status st = vz_contiguous(t, &dense);
  if (st != VZ_OK)
    return st;
  vz_backend *be = dense->buffer->backend;
  st = be->iface->synchronize(be->self);
  if (st == VZ_OK) {
    size_t offset = (size_t)dense->offset * vz_dtype_size(dense->dtype);
    st = vz_backend_download(be, dense->buffer->handle, offset, dst, bytes);
  }
  vz_tensor_free(dense);
  return st;
}

/* ---- views ---- */

/* Largest and smallest element index a view reaches; false when empty. */
static bool view_extent(int ndim, const int64_t *shape, const int64_t *stride, int64_t offset,
                        int64_t *lo, int64_t *hi) {
  *lo = *hi = offset;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] == 0)
      return false;
    int64_t reach = (shape[i] - 1) * stride[i];
    if (reach < 0)
      *lo += reach;
    else
      *hi += reach;
  }
  return true;
}

vz_status vz_tensor_view(const vz_tensor *t, int ndim, const int64_t *shape, const int64_t *stride,
                         int64_t offset, vz_tensor **out) {
  if (!t || !out || (ndim > 0 && (!shape || !stride)))
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "view: NULL argument");
  int64_t numel;
  vz_status st = shape_numel(ndim, shape, &numel);
  if (st != VZ_OK)
    return st;
  for (int i = 0; i < ndim; i++) {
    if (stride[i] > INT64_MAX / 4 || stride[i] < -INT64_MAX / 4 ||
        (shape[i] > 0 && (stride[i] > 0 ? stride[i] : -stride[i]) > INT64_MAX / shape[i]))
      return vz_fail(VZ_ERR_SHAPE, "view: stride %lld of dimension %d is out of range",
                     (long long)stride[i], i);
  }
  int64_t lo, hi;
  int64_t capacity = (int64_t)(t->buffer->bytes / vz_dtype_size(t->dtype));
  if (view_extent(ndim, shape, stride, offset, &lo, &hi) && (lo < 0 || hi >= capacity))
    return vz_fail(VZ_ERR_SHAPE, "view reaches element %lld of a buffer of %lld elements",
                   (long long)(lo < 0 ? lo : hi), (long long)capacity);
  vz_tensor *v = calloc(1, sizeof *v);
  if (!v)
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory for a view");
  v->dtype = t->dtype;
  v->ndim = ndim;
  for (int i = 0; i < ndim; i++) {
    v->shape[i] = shape[i];
    v->stride[i] = stride[i];
  }
  v->offset = offset;
  v->buffer = t->buffer;
  vz_buffer_retain(v->buffer);
  *out = v;
  return VZ_OK;
}

/* Strides for viewing t as `shape` without a copy, when its memory allows:
 * torch's rule, matching runs of source dimensions that are laid out as one
 * block against runs of target dimensions with the same element count. */
static bool reshape_strides(const vz_tensor *t, int ndim, const int64_t *shape, int64_t *stride) {
  if (t->ndim == 0) {
    for (int i = 0; i < ndim; i++)
      stride[i] = 1;
    return true;
  }
  int view_d = ndim - 1;
  int64_t chunk_base = t->stride[t->ndim - 1];
  int64_t tensor_numel = 1, view_numel = 1;
  for (int d = t->ndim - 1; d >= 0; d--) {
    tensor_numel *= t->shape[d];
    bool chunk_ends =
        d == 0 || (t->shape[d - 1] != 1 && t->stride[d - 1] != tensor_numel * chunk_base);
    if (!chunk_ends)
      continue;
    while (view_d >= 0 && (view_numel < tensor_numel || shape[view_d] == 1)) {
      stride[view_d] = view_numel * chunk_base;
      view_numel *= shape[view_d];
      view_d--;
    }
    if (view_numel != tensor_numel)
      return false;
    if (d > 0) {
      chunk_base = t->stride[d - 1];
      tensor_numel = 1;
      view_numel = 1;
    }
  }
  return view_d == -1;
}

vz_status vz_reshape(const vz_tensor *t, int ndim, const int64_t *shape, vz_tensor **out) {
  if (!t || !out || (ndim > 0 && !shape))
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "reshape: NULL argument");
  if (ndim < 0 || ndim > VZ_MAX_DIMS)
    return vz_fail(VZ_ERR_SHAPE, "reshape: %d dimensions (at most %d)", ndim, VZ_MAX_DIMS);
  int64_t want[VZ_MAX_DIMS];
  int inferred = -1;
  int64_t known = 1;
  for (int i = 0; i < ndim; i++) {
    want[i] = shape[i];
    if (shape[i] == -1 && inferred < 0) {
      inferred = i;
    } else if (shape[i] < 0) {
      return vz_fail(VZ_ERR_SHAPE, "reshape: bad size %lld in dimension %d", (long long)shape[i],
                     i);
    } else {
      if (shape[i] != 0 && known > INT64_MAX / shape[i])
        return vz_fail(VZ_ERR_SHAPE, "reshape: size overflows");
      known *= shape[i];
    }
  }
  int64_t numel = vz_tensor_numel(t);
  if (inferred >= 0) {
    if (known == 0 || numel % known != 0)
      return vz_fail(VZ_ERR_SHAPE, "reshape: cannot infer a dimension for %lld elements",
                     (long long)numel);
    want[inferred] = numel / known;
    known = numel;
  }
  if (known != numel) {
    char a[96], b[96];
    return vz_fail(VZ_ERR_SHAPE, "reshape: %s has %lld elements, %s has %lld",
                   vz_shape_text(t->ndim, t->shape, a, sizeof a), (long long)numel,
                   vz_shape_text(ndim, want, b, sizeof b), (long long)known);
  }
  int64_t stride[VZ_MAX_DIMS];
  if (numel > 0 && reshape_strides(t, ndim, want, stride))
    return vz_tensor_view(t, ndim, want, stride, t->offset, out);
  vz_tensor *dense = NULL;
  vz_status st = vz_copy(t, &dense);
  if (st != VZ_OK)
    return st;
  int64_t s = 1;
  for (int i = ndim - 1; i >= 0; i--) {
    stride[i] = s;
    s *= want[i];
  }
  st = vz_tensor_view(dense, ndim, want, stride, 0, out);
  vz_tensor_free(dense);
  return st;
}

vz_status vz_permute(const vz_tensor *t, const int *perm, vz_tensor **out) {
  if (!t || !out || (t->ndim > 0 && !perm))
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "permute: NULL argument");
  int64_t shape[VZ_MAX_DIMS], stride[VZ_MAX_DIMS];
  bool seen[VZ_MAX_DIMS] = {false};
  for (int i = 0; i < t->ndim; i++) {
    int p = vz_axis(perm[i], t->ndim);
    if (p < 0 || seen[p])
      return vz_fail(VZ_ERR_INVALID_ARGUMENT,
                     "permute: entry %d (%d) is not a permutation of %d axes", i, perm[i], t->ndim);
    seen[p] = true;
    shape[i] = t->shape[p];
    stride[i] = t->stride[p];
  }
  return vz_tensor_view(t, t->ndim, shape, stride, t->offset, out);
}

vz_status vz_transpose(const vz_tensor *t, int a, int b, vz_tensor **out) {
  if (!t)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "transpose: NULL tensor");
  int perm[VZ_MAX_DIMS];
  int aa = vz_axis(a, t->ndim), bb = vz_axis(b, t->ndim);
  if (aa < 0 || bb < 0)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "transpose: axes %d, %d out of range for %d dimensions",
                   a, b, t->ndim);
  for (int i = 0; i < t->ndim; i++)
    perm[i] = i;
  perm[aa] = bb;
  perm[bb] = aa;
  return vz_permute(t, perm, out);
}

vz_status vz_slice(const vz_tensor *t, int axis, int64_t start, int64_t stop, int64_t step,
                   vz_tensor **out) {
  if (!t || !out)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "slice: NULL argument");
  int ax = vz_axis(axis, t->ndim);
  if (ax < 0)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "slice: axis %d out of range for %d dimensions", axis,
                   t->ndim);
  if (step <= 0)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "slice: step must be positive, not %lld",
                   (long long)step);
  int64_t n = t->shape[ax];
  if (start < 0)
    start += n;
  if (stop < 0)
    stop += n;
  start = start < 0 ? 0 : (start > n ? n : start);
  stop = stop < start ? start : (stop > n ? n : stop);
  int64_t shape[VZ_MAX_DIMS], stride[VZ_MAX_DIMS];
  for (int i = 0; i < t->ndim; i++) {
    shape[i] = t->shape[i];
    stride[i] = t->stride[i];
  }
  shape[ax] = (stop - start + step - 1) / step;
  stride[ax] = t->stride[ax] * step;
  return vz_tensor_view(t, t->ndim, shape, stride, t->offset + start * t->stride[ax], out);
}

vz_status vz_expand(const vz_tensor *t, int ndim, const int64_t *shape, vz_tensor **out) {
  if (!t || !out || (ndim > 0 && !shape))
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "expand: NULL argument");
  if (ndim > VZ_MAX_DIMS || !vz_broadcasts_to(t->ndim, t->shape, ndim, shape)) {
    char a[96], b[96];
    return vz_fail(VZ_ERR_SHAPE, "expand: %s does not broadcast to %s",
                   vz_shape_text(t->ndim, t->shape, a, sizeof a),
                   vz_shape_text(ndim < 0 ? 0 : ndim, shape, b, sizeof b));
  }
  int64_t stride[VZ_MAX_DIMS];
  vz_broadcast_strides(t, ndim, shape, stride);
  return vz_tensor_view(t, ndim, shape, stride, t->offset, out);
}

vz_status vz_contiguous(const vz_tensor *t, vz_tensor **out) {
  if (!t || !out)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "contiguous: NULL argument");
  if (vz_tensor_is_contiguous(t))
    return vz_tensor_view(t, t->ndim, t->shape, t->stride, t->offset, out);
  *out = NULL;
  return vz_copy(t, out);
}

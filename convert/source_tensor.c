/* Size and bounds checks shared by every format reader, and the list that
 * readers append to. Every quantity here comes from an untrusted file, so
 * each product and sum is checked for overflow before it is used. */
#include <stdlib.h>
#include <string.h>

#include "convert/source.h"

static const char *tensor_name(const vz_source_tensor *t) {
  return t->info.name ? t->info.name : "(unnamed)";
}

vz_status vz_source_list_push(vz_source_list *list, const vz_source_tensor *t) {
  if (!list || !t) {
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "vz_source_list_push: NULL argument");
  }
  if (list->count == list->capacity) {
    size_t cap = list->capacity ? list->capacity * 2 : 64;
    if (cap < list->capacity || cap > SIZE_MAX / sizeof(vz_source_tensor)) {
      return vz_fail(VZ_ERR_OUT_OF_MEMORY, "too many tensors");
    }
    vz_source_tensor *items = realloc(list->items, cap * sizeof(vz_source_tensor));
    if (!items) {
      return vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory listing %zu tensors", list->count + 1);
    }
    list->items = items;
    list->capacity = cap;
  }
  list->items[list->count++] = *t;
  return VZ_OK;
}

/* A known dtype and a supported number of dimensions. */
static vz_status check_dtype_and_rank(const vz_source_tensor *t) {
  if (vz_dtype_size(t->info.dtype) == 0) {
    return vz_fail(VZ_ERR_FORMAT, "tensor '%s': invalid dtype %d", tensor_name(t),
                   (int)t->info.dtype);
  }
  if (t->info.ndim < 0 || t->info.ndim > VZ_WEIGHT_MAX_DIMS) {
    return vz_fail(VZ_ERR_FORMAT, "tensor '%s': %d dimensions (at most %d are supported)",
                   tensor_name(t), t->info.ndim, VZ_WEIGHT_MAX_DIMS);
  }
  return VZ_OK;
}

vz_status vz_source_tensor_size(vz_source_tensor *t) {
  vz_status st = check_dtype_and_rank(t);
  if (st) {
    return st;
  }
  const char *name = tensor_name(t);
  size_t elsize = vz_dtype_size(t->info.dtype);
  /* The product is formed in uint64 and kept below INT64_MAX, so shapes
   * stay representable as int64 elements everywhere downstream; a zero
   * dimension makes the tensor empty but the other dimensions are still
   * checked individually. */
  uint64_t numel = 1;
  bool overflow = false;
  for (int d = 0; d < t->info.ndim; d++) {
    int64_t dim = t->info.shape[d];
    if (dim < 0) {
      return vz_fail(VZ_ERR_FORMAT, "tensor '%s': negative dimension %lld at axis %d", name,
                     (long long)dim, d);
    }
    uint64_t next;
    if (__builtin_mul_overflow(numel, (uint64_t)dim, &next) || next > (uint64_t)INT64_MAX) {
      overflow = true;
    }
    numel = next;
  }
  uint64_t bytes = 0;
  if (!overflow && numel != 0) {
    if (__builtin_mul_overflow(numel, (uint64_t)elsize, &bytes) || bytes > (uint64_t)INT64_MAX ||
        bytes > (uint64_t)SIZE_MAX) {
      overflow = true;
    }
  }
  if (overflow) {
    return vz_fail(VZ_ERR_FORMAT, "tensor '%s': shape overflows the size of a tensor", name);
  }
  t->info.nbytes = (size_t)bytes;
  return VZ_OK;
}

vz_status vz_source_tensor_check_bounds(const vz_source_tensor *t) {
  vz_status st = check_dtype_and_rank(t);
  if (st) {
    return st;
  }
  const char *name = tensor_name(t);
  size_t elsize = vz_dtype_size(t->info.dtype);
  for (int d = 0; d < t->info.ndim; d++) {
    if (t->info.shape[d] < 0) {
      return vz_fail(VZ_ERR_FORMAT, "tensor '%s': negative dimension at axis %d", name, d);
    }
    if (t->info.shape[d] == 0) {
      return VZ_OK; /* empty: no element is ever read */
    }
  }
  if (t->offset < 0) {
    return vz_fail(VZ_ERR_FORMAT, "tensor '%s': negative storage offset %lld", name,
                   (long long)t->offset);
  }
  /* Lowest and highest element index the view reaches. */
  int64_t lo = t->offset, hi = t->offset;
  for (int d = 0; d < t->info.ndim; d++) {
    int64_t step;
    if (__builtin_mul_overflow(t->info.shape[d] - 1, t->stride[d], &step)) {
      return vz_fail(VZ_ERR_FORMAT, "tensor '%s': stride %lld at axis %d overflows", name,
                     (long long)t->stride[d], d);
    }
    int64_t *end = step >= 0 ? &hi : &lo;
    if (__builtin_add_overflow(*end, step, end)) {
      return vz_fail(VZ_ERR_FORMAT, "tensor '%s': strided view overflows", name);
    }
  }
  uint64_t available = t->storage_bytes / elsize;
  if (lo < 0 || (uint64_t)hi >= available) {
    return vz_fail(VZ_ERR_FORMAT,
                   "tensor '%s': strided view reaches elements %lld..%lld of a storage of %llu "
                   "elements",
                   name, (long long)lo, (long long)hi, (unsigned long long)available);
  }
  if (!t->storage) {
    return vz_fail(VZ_ERR_FORMAT, "tensor '%s': no storage", name);
  }
  return VZ_OK;
}

void vz_source_list_truncate(vz_source_list *list, size_t count) {
  if (!list) {
    return;
  }
  for (size_t i = count; i < list->count; i++) {
    free((char *)list->items[i].info.name);
    free(list->items[i].pieces);
    free(list->items[i].assembled);
  }
  if (count < list->count) {
    list->count = count;
  }
}

void vz_source_list_free(vz_source_list *list) {
  if (!list) {
    return;
  }
  vz_source_list_truncate(list, 0);
  free(list->items);
  list->items = NULL;
  list->count = list->capacity = 0;
  vz_source_list_clear_metadata(list);
}

void vz_source_list_clear_metadata(vz_source_list *list) {
  for (size_t i = 0; list && i < list->n_metadata; i++) {
    free(list->metadata[i].key);
    free(list->metadata[i].value);
  }
  if (list) {
    free(list->metadata);
    list->metadata = NULL;
    list->n_metadata = 0;
  }
}

void vz_source_contiguous_strides(vz_source_tensor *t) {
  int64_t s = 1;
  for (int d = t->info.ndim - 1; d >= 0; d--) {
    t->stride[d] = s;
    /* Wraps only for empty tensors (a zero elsewhere in the shape), whose
     * strides are never used. */
    if (__builtin_mul_overflow(s, t->info.shape[d], &s)) {
      s = 0;
    }
  }
}

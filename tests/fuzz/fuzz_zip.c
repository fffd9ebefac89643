/* libFuzzer target for the ZIP reader (convert/zip.c) and both PyTorch
 * readers (convert/torch_reader.c): any input must load or fail with a
 * status, never crash, leak or read out of bounds; every tensor a reader
 * accepts must lie inside the input. Build (clang):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I. -Iinclude \
 *     tests/fuzz/fuzz_zip.c convert/zip.c convert/pickle.c convert/torch_reader.c \
 *     convert/source_tensor.c ops/status.c ops/dtype.c -o fuzz_zip
 * Seeds: tests/fuzz/corpus/zip/. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "convert/source.h"
#include "convert/zip.h"

/* Reads the first and last byte each tensor's view reaches. */
static size_t touch_tensors(const vz_source_list *list) {
  size_t sum = 0;
  for (size_t i = 0; i < list->count; i++) {
    const vz_source_tensor *t = &list->items[i];
    size_t elsize = vz_dtype_size(t->info.dtype);
    if (t->info.nbytes == 0) {
      continue;
    }
    int64_t lo = t->offset, hi = t->offset;
    for (int d = 0; d < t->info.ndim; d++) {
      int64_t step = (t->info.shape[d] - 1) * t->stride[d];
      if (step >= 0) {
        hi += step;
      } else {
        lo += step;
      }
    }
    if (lo < 0 || (uint64_t)(hi + 1) * elsize > t->storage_bytes) {
      abort(); /* a view the bounds check should have refused */
    }
    sum += t->storage[(size_t)lo * elsize];
    sum += t->storage[(size_t)(hi + 1) * elsize - 1];
  }
  return sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  volatile size_t sink = 0;
  vz_zip zip;
  if (vz_zip_open(data, size, &zip) == VZ_OK) {
    for (size_t i = 0; i < zip.count; i++) {
      const uint8_t *bytes;
      size_t n;
      sink += vz_zip_find(&zip, zip.entries[i].name) != NULL;
      if (vz_zip_entry_data(&zip, &zip.entries[i], &bytes, &n) == VZ_OK && n > 0) {
        sink += bytes[0] + bytes[n - 1];
      }
    }
  }
  vz_zip_close(&zip);

  vz_mapped_file f = {.path = "fuzz", .bytes = data, .size = size};
  vz_source_list list = {0};
  if (vz_read_torch_zip(&f, &list) == VZ_OK) {
    sink += touch_tensors(&list);
  }
  vz_source_list_free(&list);
  if (vz_read_torch_legacy(&f, &list) == VZ_OK) {
    sink += touch_tensors(&list);
  }
  vz_source_list_free(&list);
  (void)sink;
  return 0;
}

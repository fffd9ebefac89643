/* libFuzzer target for the safetensors reader: the input is a whole file.
 * Whatever the reader accepts is wrapped as a vz_weights and every tensor's
 * bytes are read, so a range that escapes the buffer shows up under ASan.
 *
 *   clang -fsanitize=fuzzer,address,undefined ... tests/fuzz/fuzz_safetensors.c
 *   ./fuzz_safetensors -dict=tests/fuzz/safetensors.dict tests/fuzz/corpus/safetensors */
#include <stdlib.h>
#include <string.h>

#include "convert/source.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile uint8_t g_sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* A buffer of exactly `size` bytes, like a mapping of the file. */
  uint8_t *copy = malloc(size ? size : 1);
  if (!copy) {
    return 0;
  }
  if (size) {
    memcpy(copy, data, size);
  }
  vz_mapped_file f = {(char *)"fuzz.safetensors", copy, size};
  vz_source_list list = {0};
  if (vz_read_safetensors(&f, &list) == VZ_OK) {
    vz_weights *w = NULL;
    if (vz_weights_from_list(&list, &w) == VZ_OK) {
      for (size_t i = 0; i < vz_weights_count(w); i++) {
        const void *p;
        size_t n;
        if (vz_weights_data(w, i, &p, &n) == VZ_OK) {
          uint8_t acc = 0;
          for (size_t k = 0; k < n; k++) {
            acc ^= ((const uint8_t *)p)[k];
          }
          g_sink = acc;
        }
      }
      vz_weights_close(w);
    }
  } else if (list.count != 0) {
    abort(); /* a failing reader must leave the list as it was */
  }
  vz_source_list_free(&list);
  free(copy);
  return 0;
}

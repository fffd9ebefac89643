/* The harness shared by the libFuzzer targets whose input is a whole file
 * for one format reader (fuzz_ckpt.c, fuzz_safetensors.c). Whatever the
 * reader accepts is wrapped as a vz_weights and every tensor's bytes are
 * read, so a range that escapes the buffer shows up under ASan. */
#ifndef VLZOO_TESTS_FUZZ_READER_H
#define VLZOO_TESTS_FUZZ_READER_H

#include <stdlib.h>
#include <string.h>

#include "convert/source.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile uint8_t g_sink;

/* Runs `read` on a copy of the input named `path`. */
static int fuzz_whole_file(const uint8_t *data, size_t size, const char *path,
                           vz_status (*read)(const vz_mapped_file *, vz_source_list *)) {
  /* A buffer of exactly `size` bytes, like a mapping of the file. */
  uint8_t *copy = malloc(size ? size : 1);
  if (!copy) {
    return 0;
  }
  if (size) {
    memcpy(copy, data, size);
  }
  vz_mapped_file f = {(char *)path, copy, size};
  vz_source_list list = {0};
  if (read(&f, &list) == VZ_OK) {
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

#endif

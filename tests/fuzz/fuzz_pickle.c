/* libFuzzer target for the pickle reader (convert/pickle.c): any input must
 * parse or fail with a status, never crash, leak or read out of bounds.
 * Build (clang):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I. -Iinclude \
 *     tests/fuzz/fuzz_pickle.c convert/pickle.c ops/status.c -o fuzz_pickle
 * Seeds: tests/fuzz/corpus/pickle/. */
#include <stddef.h>
#include <stdint.h>

#include "convert/pickle.h"

/* Visits what the parser built, with the same bounds a reader would use. */
static size_t touch(const vz_pk_obj *o, int depth, size_t *budget) {
  if (depth > VZ_PICKLE_MAX_DEPTH || *budget == 0) {
    return 0;
  }
  (*budget)--;
  size_t sum = o->type;
  switch (o->type) {
  case VZ_PK_STR:
  case VZ_PK_BYTES:
    sum += o->u.str.len ? (uint8_t)o->u.str.data[o->u.str.len - 1] : 0;
    sum += (uint8_t)o->u.str.data[o->u.str.len]; /* the terminating NUL */
    break;
  case VZ_PK_TUPLE:
  case VZ_PK_LIST:
    for (size_t i = 0; i < vz_pk_seq_count(o); i++) {
      sum += touch(vz_pk_seq_item(o, i), depth + 1, budget);
    }
    break;
  case VZ_PK_DICT:
    for (size_t i = 0; i < o->u.dict.count; i++) {
      sum += touch(o->u.dict.keys[i], depth + 1, budget);
      sum += touch(o->u.dict.values[i], depth + 1, budget);
    }
    sum += vz_pk_dict_get(o, "model") != NULL;
    break;
  case VZ_PK_PERSID: sum += touch(o->u.persid, depth + 1, budget); break;
  case VZ_PK_TENSOR:
    sum += touch(o->u.tensor->storage, depth + 1, budget);
    for (int d = 0; d < o->u.tensor->ndim; d++) {
      sum += (size_t)o->u.tensor->shape[d] + (size_t)o->u.tensor->stride[d];
    }
    break;
  default: break;
  }
  return sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* Several pickles back to back, as in a legacy torch file. */
  size_t pos = 0;
  for (int round = 0; round < 5 && pos < size; round++) {
    vz_pickle *p = NULL;
    size_t used = 0;
    if (vz_pickle_parse(data + pos, size - pos, &p, &used) != VZ_OK) {
      break;
    }
    size_t budget = 4 * vz_pickle_object_count(p) + 4096;
    volatile size_t sink = touch(vz_pickle_root(p), 0, &budget);
    for (size_t i = 0; i < vz_pickle_persid_count(p); i++) {
      sink += vz_pickle_persid(p, i)->type;
    }
    (void)sink;
    vz_pickle_free(p);
    pos += used;
  }
  return 0;
}

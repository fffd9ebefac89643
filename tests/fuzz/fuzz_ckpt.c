/* libFuzzer target for the MindSpore .ckpt reader: the input is a whole file
 * (the harness is in fuzz_reader.h).
 *
 *   clang -fsanitize=fuzzer,address,undefined ... tests/fuzz/fuzz_ckpt.c
 *   ./fuzz_ckpt tests/fuzz/corpus/ckpt */
#include "tests/fuzz/fuzz_reader.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  return fuzz_whole_file(data, size, "fuzz.ckpt", vz_read_mindspore_ckpt);
}

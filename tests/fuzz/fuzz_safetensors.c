/* libFuzzer target for the safetensors reader: the input is a whole file
 * (the harness is in fuzz_reader.h).
 *
 *   clang -fsanitize=fuzzer,address,undefined ... tests/fuzz/fuzz_safetensors.c
 *   ./fuzz_safetensors -dict=tests/fuzz/safetensors.dict tests/fuzz/corpus/safetensors */
#include "tests/fuzz/fuzz_reader.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  return fuzz_whole_file(data, size, "fuzz.safetensors", vz_read_safetensors);
}

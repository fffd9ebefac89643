/* safetensors files written by the real `safetensors` package
 * (tests/fixtures/weights/, see VERSIONS.txt there), and hostile ones
 * (tests/fixtures/hostile/safetensors_*): each hostile file must fail with
 * the expected status and message. Needs VLZOO_FIXTURES_DIR. */
#include "tests/weights_fixtures.h"

static const expected_failure k_bad[] = {
    {"hostile", "safetensors_offsets_past_end.safetensors", VZ_ERR_FORMAT,
     "past the end of the data buffer"},
    {"hostile", "safetensors_overlap.safetensors", VZ_ERR_FORMAT, "overlaps the tensor before it"},
    {"hostile", "safetensors_gap.safetensors", VZ_ERR_FORMAT, "gap of 8 bytes"},
    {"hostile", "safetensors_header_len_2p63.safetensors", VZ_ERR_FORMAT,
     "header length 9223372036854775808 exceeds the limit"},
    {"hostile", "safetensors_header_past_eof.safetensors", VZ_ERR_FORMAT,
     "header length 4096 runs past the end of the file"},
    {"hostile", "safetensors_shape_overflow.safetensors", VZ_ERR_FORMAT,
     "shape overflows the size of a tensor"},
    {"hostile", "safetensors_duplicate_keys.safetensors", VZ_ERR_FORMAT, "duplicate keys"},
    {"weights", "st_u16.safetensors", VZ_ERR_UNSUPPORTED, "'counts': dtype U16 is not supported"},
};

int main(void) {
  check_against_sidecar("weights", "st_dtypes.safetensors", "safetensors");
  check_failures(k_bad, sizeof(k_bad) / sizeof(k_bad[0]));
  return test_finish("test_safetensors");
}

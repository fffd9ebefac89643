/* safetensors files written by the real `safetensors` package
 * (tests/fixtures/weights/, see VERSIONS.txt there), and hostile ones
 * (tests/fixtures/hostile/safetensors_*): each hostile file must fail with
 * the expected status and message. Needs VLZOO_FIXTURES_DIR. */
#define _POSIX_C_SOURCE 200809L
#include <unistd.h>

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

/* The metadata the safetensors package wrote (make_weights_fixtures.py). */
static void check_metadata_from_the_package(void) {
  vz_weights *w = NULL;
  CHECK_OK(vz_weights_open(fixture_path("weights", "st_dtypes.safetensors"), &w));
  if (!w)
    return;
  const char *by = vz_weights_metadata(w, "written_by");
  CHECK(by && strcmp(by, "make_weights_fixtures.py") == 0);
  CHECK(vz_weights_metadata(w, "absent") == NULL);
  vz_weights_close(w);
}

/* Metadata written by vlzoo reads back byte for byte, escapes included; a
 * .ckpt refuses it. */
static void check_metadata_round_trip(void) {
  char path[] = "/tmp/vlzoo_test_metadata_XXXXXX";
  int fd = mkstemp(path);
  CHECK(fd >= 0);
  if (fd < 0)
    return;
  close(fd);
  const char *tricky = "quote \" backslash \\ newline \n tab \t \x01 caf\xc3\xa9 \xe6\x97\xa5";
  float x[3] = {1, 2, 3};
  vz_weights_writer *wr = NULL;
  CHECK_OK(vz_weights_writer_open(path, VZ_FORMAT_SAFETENSORS, &wr));
  CHECK_OK(vz_weights_writer_add(wr, "x", VZ_F32, 1, (int64_t[]){3}, x, sizeof x));
  CHECK_OK(vz_weights_writer_set_metadata(wr, "tricky", "first value"));
  CHECK_OK(vz_weights_writer_set_metadata(wr, "tricky", tricky));
  CHECK_OK(vz_weights_writer_set_metadata(wr, "empty", ""));
  CHECK_OK(vz_weights_writer_commit(wr));
  vz_weights *w = NULL;
  CHECK_OK(vz_weights_open(path, &w));
  if (w) {
    const char *v = vz_weights_metadata(w, "tricky");
    CHECK(v && strcmp(v, tricky) == 0);
    v = vz_weights_metadata(w, "empty");
    CHECK(v && v[0] == '\0');
    v = vz_weights_metadata(w, "format");
    CHECK(v && strcmp(v, "pt") == 0);
    vz_weights_close(w);
  }
  unlink(path);

  char ckpt[] = "/tmp/vlzoo_test_metadata_XXXXXX";
  fd = mkstemp(ckpt);
  CHECK(fd >= 0);
  if (fd < 0)
    return;
  close(fd);
  CHECK_OK(vz_weights_writer_open(ckpt, VZ_FORMAT_MINDSPORE_CKPT, &wr));
  CHECK_FAILS(vz_weights_writer_set_metadata(wr, "k", "v"), VZ_ERR_UNSUPPORTED);
  vz_weights_writer_abort(wr);
  unlink(ckpt);
}

int main(void) {
  check_against_sidecar("weights", "st_dtypes.safetensors", "safetensors");
  check_metadata_from_the_package();
  check_metadata_round_trip();
  check_failures(k_bad, sizeof(k_bad) / sizeof(k_bad[0]));
  return test_finish("test_safetensors");
}

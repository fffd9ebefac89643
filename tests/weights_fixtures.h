/* Helpers for the tests that read checkpoints written by other tools
 * (tests/fixtures/weights/, made by make_weights_fixtures.py) and hostile
 * files (tests/fixtures/hostile/, made by make_hostile_weights.py). The
 * fixture folder comes from VLZOO_FIXTURES_DIR; without it the test is
 * skipped. */
#ifndef VLZOO_TESTS_WEIGHTS_FIXTURES_H
#define VLZOO_TESTS_WEIGHTS_FIXTURES_H

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert/sha256.h"
#include "tests/test_util.h"
#include "vlzoo/weights.h"

/* $VLZOO_FIXTURES_DIR/sub/name in a static buffer (two in rotation). */
static const char *fixture_path(const char *sub, const char *name) {
  static char buf[2][1024];
  static int next;
  const char *dir = test_fixtures_dir();
  if (!dir) {
    fprintf(stderr, "VLZOO_FIXTURES_DIR is not set: skipping\n");
    exit(TEST_SKIP);
  }
  char *p = buf[next++ % 2];
  snprintf(p, 1024, "%s/%s/%s", dir, sub, name);
  return p;
}

/* Opens the fixture `file` and compares it with `file`.json: the same
 * tensors with the same dtypes, shapes and sha256 of their bytes. */
static void check_against_sidecar(const char *sub, const char *file, const char *format) {
  char sidecar[1100];
  snprintf(sidecar, sizeof(sidecar), "%s.json", fixture_path(sub, file));
  json_object *root = json_object_from_file(sidecar);
  json_object *list = NULL;
  if (!root || !json_object_object_get_ex(root, "tensors", &list)) {
    fprintf(stderr, "%s: cannot read the sidecar %s\n", file, sidecar);
    test_failures++;
    json_object_put(root);
    return;
  }
  vz_weights *w = NULL;
  CHECK_OK(vz_weights_open(fixture_path(sub, file), &w));
  if (!w) {
    json_object_put(root);
    return;
  }
  CHECK(strcmp(vz_weights_format(w), format) == 0);
  size_t n = json_object_array_length(list);
  if (vz_weights_count(w) != n) {
    fprintf(stderr, "%s: %zu tensors, the sidecar lists %zu\n", file, vz_weights_count(w), n);
    test_failures++;
  }
  for (size_t i = 0; i < n; i++) {
    json_object *e = json_object_array_get_idx(list, i), *jn, *jd, *js, *jh;
    json_object_object_get_ex(e, "name", &jn);
    json_object_object_get_ex(e, "dtype", &jd);
    json_object_object_get_ex(e, "shape", &js);
    json_object_object_get_ex(e, "sha256", &jh);
    const char *name = json_object_get_string(jn);
    size_t idx;
    if (vz_weights_find(w, name, &idx) != VZ_OK) {
      fprintf(stderr, "%s: no tensor '%s'\n", file, name);
      test_failures++;
      continue;
    }
    const vz_weight_info *info = vz_weights_info(w, idx);
    bool ok = strcmp(vz_dtype_name(info->dtype), json_object_get_string(jd)) == 0 &&
              (size_t)info->ndim == json_object_array_length(js);
    for (int d = 0; ok && d < info->ndim; d++) {
      ok = info->shape[d] == json_object_get_int64(json_object_array_get_idx(js, (size_t)d));
    }
    const void *data = NULL;
    size_t nbytes = 0;
    char hex[65] = "";
    if (ok && vz_weights_data(w, idx, &data, &nbytes) == VZ_OK) {
      vz_sha256_hex(data, nbytes, hex);
      ok = strcmp(hex, json_object_get_string(jh)) == 0;
    } else {
      ok = false;
    }
    if (!ok) {
      fprintf(stderr, "%s: tensor '%s' is %s ndim %d sha256 %s; the sidecar says %s\n", file, name,
              vz_dtype_name(info->dtype), info->ndim, hex, json_object_to_json_string(e));
      test_failures++;
    }
  }
  vz_weights_close(w);
  json_object_put(root);
}

typedef struct expected_failure {
  const char *sub, *file;
  vz_status status;
  const char *phrase;
} expected_failure;

/* Each file must fail to open with the status and a message holding the
 * phrase. */
static void check_failures(const expected_failure *cases, size_t n) {
  for (size_t i = 0; i < n; i++) {
    vz_weights *w = NULL;
    vz_clear_error();
    vz_status st = vz_weights_open(fixture_path(cases[i].sub, cases[i].file), &w);
    if (st != cases[i].status || !strstr(vz_last_error(), cases[i].phrase) || w) {
      fprintf(stderr, "%s: got %s '%s', expected %s with '%s'\n", cases[i].file,
              vz_status_string(st), vz_last_error(), vz_status_string(cases[i].status),
              cases[i].phrase);
      test_failures++;
    }
    vz_weights_close(w);
  }
}

#endif

/* Weight sources and writers (include/vlzoo/weights.h) on files this test
 * writes itself: round trips of every dtype through both writers, sharded
 * safetensors with an index, directories, zero-copy mappings, lookup among
 * thousands of tensors, .ckpt slicing and CRC trailers, assembling strided,
 * sliced and big-endian tensors, and the writers' all-or-nothing commit. */
#define _XOPEN_SOURCE 700 /* realpath, mkdtemp, setrlimit */

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "convert/source.h"
#include "tests/test_util.h"

static char g_dir[256];

static const char *tmp_path(const char *name) {
  static char buf[4][512];
  static int next;
  char *p = buf[next++ % 4];
  snprintf(p, 512, "%s/%s", g_dir, name);
  return p;
}

static void make_dir(const char *name) { mkdir(tmp_path(name), 0755); }

static void remove_tree(const char *path) {
  DIR *d = opendir(path);
  if (!d) {
    unlink(path);
    return;
  }
  struct dirent *e;
  while ((e = readdir(d))) {
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
      char sub[1024];
      snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
      remove_tree(sub);
    }
  }
  closedir(d);
  rmdir(path);
}

/* Entries of a directory whose names start with prefix. */
static int count_entries(const char *dir, const char *prefix) {
  DIR *d = opendir(dir);
  int n = 0;
  if (!d) {
    return -1;
  }
  struct dirent *e;
  while ((e = readdir(d))) {
    if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) {
      n++;
    }
  }
  closedir(d);
  return n;
}

static bool exists(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0;
}

/* Whether p lies in a mapping of the file `path` (Linux /proc/self/maps). */
static int in_file_mapping(const void *p, const char *path) {
  FILE *f = fopen("/proc/self/maps", "r");
  if (!f) {
    return -1;
  }
  char real[4096];
  if (!realpath(path, real)) {
    fclose(f);
    return -1;
  }
  char line[4096 + 128];
  int found = 0;
  while (fgets(line, sizeof(line), f)) {
    unsigned long lo, hi;
    int off = 0;
    if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %n", &lo, &hi, &off) < 2) {
      continue;
    }
    char *name = line + off;
    name[strcspn(name, "\n")] = '\0';
    if ((unsigned long)p >= lo && (unsigned long)p < hi && strcmp(name, real) == 0) {
      found = 1;
    }
  }
  fclose(f);
  return found;
}

/* ---- A set of tensors covering every dtype and rank edge ---- */

#define N_SAMPLE 14

typedef struct sample {
  char name[32];
  vz_dtype dtype;
  int ndim;
  int64_t shape[VZ_WEIGHT_MAX_DIMS];
  size_t nbytes;
  uint8_t *data;
} sample;

static void make_samples(sample *s) {
  static const struct {
    const char *name;
    vz_dtype dtype;
    int ndim;
    int64_t shape[8];
  } defs[N_SAMPLE] = {
      {"f32", VZ_F32, 2, {2, 3}},
      {"f16", VZ_F16, 1, {5}},
      {"bf16", VZ_BF16, 2, {3, 2}},
      {"f64", VZ_F64, 1, {3}},
      {"i64", VZ_I64, 1, {4}},
      {"i32", VZ_I32, 2, {2, 2}},
      {"i16", VZ_I16, 1, {3}},
      {"i8", VZ_I8, 1, {7}},
      {"u8", VZ_U8, 1, {9}},
      {"bool", VZ_BOOL, 1, {4}},
      {"scalar.f32", VZ_F32, 0, {0}},
      {"scalar.i64", VZ_I64, 0, {0}},
      {"eight_d", VZ_F32, 8, {1, 2, 1, 3, 1, 1, 2, 1}},
      {"layer/with \"quotes\" and \\", VZ_F16, 3, {2, 1, 2}},
  };
  test_seed(7);
  for (int i = 0; i < N_SAMPLE; i++) {
    snprintf(s[i].name, sizeof(s[i].name), "%s", defs[i].name);
    s[i].dtype = defs[i].dtype;
    s[i].ndim = defs[i].ndim;
    memcpy(s[i].shape, defs[i].shape, sizeof(s[i].shape));
    size_t numel = 1;
    for (int d = 0; d < s[i].ndim; d++) {
      numel *= (size_t)s[i].shape[d];
    }
    s[i].nbytes = numel * vz_dtype_size(s[i].dtype);
    s[i].data = malloc(s[i].nbytes);
    for (size_t b = 0; b < s[i].nbytes; b++) {
      s[i].data[b] = (uint8_t)test_next();
    }
    if (s[i].dtype == VZ_BOOL) {
      for (size_t b = 0; b < s[i].nbytes; b++) {
        s[i].data[b] &= 1;
      }
    }
  }
}

static void free_samples(sample *s) {
  for (int i = 0; i < N_SAMPLE; i++) {
    free(s[i].data);
  }
}

static vz_status write_samples(const char *path, vz_weights_file_format fmt, const sample *s,
                               int n) {
  vz_weights_writer *wr;
  vz_status st = vz_weights_writer_open(path, fmt, &wr);
  if (st != VZ_OK) {
    return st;
  }
  for (int i = 0; i < n; i++) {
    st = vz_weights_writer_add(wr, s[i].name, s[i].dtype, s[i].ndim, s[i].shape, s[i].data,
                               s[i].nbytes);
    if (st != VZ_OK) {
      vz_weights_writer_abort(wr);
      return st;
    }
  }
  return vz_weights_writer_commit(wr);
}

/* Every sample is in w with its dtype, shape and bytes. */
static void check_samples(vz_weights *w, const sample *s, int n, const char *what) {
  for (int i = 0; i < n; i++) {
    size_t idx = 0;
    vz_status st = vz_weights_find(w, s[i].name, &idx);
    if (st != VZ_OK) {
      fprintf(stderr, "%s: '%s' not found: %s\n", what, s[i].name, vz_last_error());
      test_failures++;
      continue;
    }
    const vz_weight_info *info = vz_weights_info(w, idx);
    CHECK(strcmp(info->name, s[i].name) == 0);
    CHECK(info->dtype == s[i].dtype);
    CHECK(info->ndim == s[i].ndim);
    for (int d = 0; d < s[i].ndim; d++) {
      CHECK(info->shape[d] == s[i].shape[d]);
    }
    CHECK(info->nbytes == s[i].nbytes);
    const void *data = NULL;
    size_t nbytes = 0;
    CHECK_OK(vz_weights_data(w, idx, &data, &nbytes));
    CHECK(nbytes == s[i].nbytes);
    if (data && nbytes == s[i].nbytes && memcmp(data, s[i].data, nbytes) != 0) {
      fprintf(stderr, "%s: bytes of '%s' differ\n", what, s[i].name);
      test_failures++;
    }
  }
}

static void test_round_trip(void) {
  sample s[N_SAMPLE];
  make_samples(s);
  const struct {
    vz_weights_file_format fmt;
    const char *file, *format;
  } cases[] = {{VZ_FORMAT_SAFETENSORS, "rt.safetensors", "safetensors"},
               {VZ_FORMAT_MINDSPORE_CKPT, "rt.ckpt", "mindspore-ckpt"}};
  for (int c = 0; c < 2; c++) {
    const char *path = tmp_path(cases[c].file);
    CHECK_OK(write_samples(path, cases[c].fmt, s, N_SAMPLE));
    vz_weights *w = NULL;
    CHECK_OK(vz_weights_open(path, &w));
    if (!w) {
      continue;
    }
    CHECK(strcmp(vz_weights_format(w), cases[c].format) == 0);
    CHECK(vz_weights_count(w) == N_SAMPLE);
    /* File order is insertion order for both writers. */
    for (int i = 0; i < N_SAMPLE && i < (int)vz_weights_count(w); i++) {
      CHECK(strcmp(vz_weights_info(w, (size_t)i)->name, s[i].name) == 0);
    }
    CHECK(vz_weights_info(w, N_SAMPLE) == NULL);
    check_samples(w, s, N_SAMPLE, cases[c].file);
    /* Released tensors read back the same (from the page cache again). */
    for (size_t i = 0; i < vz_weights_count(w); i++)
      vz_weights_release(w, i);
    vz_weights_release(w, vz_weights_count(w)); /* out of range: ignored */
    check_samples(w, s, N_SAMPLE, cases[c].file);
    /* Zero-copy: whole tensors point into the file's mapping. */
    size_t idx;
    const void *data;
    CHECK_OK(vz_weights_find(w, "f32", &idx));
    CHECK_OK(vz_weights_data(w, idx, &data, NULL));
    int mapped = in_file_mapping(data, path);
    CHECK(mapped != 0);
    /* vz_weights_mapped says which bytes lie in the mapping */
    for (size_t i = 0; i < vz_weights_count(w); i++) {
      size_t n = 0;
      CHECK_OK(vz_weights_data(w, i, &data, &n));
      CHECK(vz_weights_mapped(w, i) == (n > 0 && in_file_mapping(data, path) == 1));
    }
    CHECK(!vz_weights_mapped(w, vz_weights_count(w)) && !vz_weights_mapped(NULL, 0));
    /* The writers start data on 64-byte boundaries of the file, for models
     * that use it in place: safetensors' data section (its first tensor),
     * and every .ckpt tensor_content after the file's first bytes. */
    for (size_t i = 0; i < vz_weights_count(w); i++) {
      size_t n = 0;
      CHECK_OK(vz_weights_data(w, i, &data, &n));
      bool want = c == 0 ? i == 0 : i > 0 && n > 0;
      if (want && (uintptr_t)data % 64 != 0) {
        fprintf(stderr, "%s: tensor %zu is %zu bytes off a 64-byte boundary\n", cases[c].file, i,
                (size_t)((uintptr_t)data % 64));
        test_failures++;
      }
    }
    CHECK_FAILS(vz_weights_find(w, "missing", &idx), VZ_ERR_NOT_FOUND);
    CHECK_FAILS(vz_weights_data(w, 999, &data, NULL), VZ_ERR_INVALID_ARGUMENT);
    vz_weights_close(w);
  }
  /* An empty tensor goes through both formats too. */
  int64_t shape[2] = {0, 3};
  for (int c = 0; c < 2; c++) {
    const char *path = tmp_path(c ? "empty.ckpt" : "empty.safetensors");
    vz_weights_writer *wr;
    CHECK_OK(vz_weights_writer_open(path, cases[c].fmt, &wr));
    CHECK_OK(vz_weights_writer_add(wr, "empty", VZ_I16, 2, shape, NULL, 0));
    CHECK_OK(vz_weights_writer_add(wr, "one", VZ_U8, 1, (int64_t[]){1}, "x", 1));
    CHECK_OK(vz_weights_writer_commit(wr));
    vz_weights *w = NULL;
    CHECK_OK(vz_weights_open(path, &w));
    if (w) {
      const vz_weight_info *info = vz_weights_info(w, 0);
      CHECK(info && info->ndim == 2 && info->shape[0] == 0 && info->shape[1] == 3 &&
            info->nbytes == 0);
      const void *data = NULL;
      size_t nbytes = 99;
      CHECK_OK(vz_weights_data(w, 0, &data, &nbytes));
      CHECK(data != NULL && nbytes == 0);
      vz_weights_close(w);
    }
  }
  free_samples(s);
}

/* Tensors larger than the slice size are split into several Values with
 * one tag, as MindSpore does, and read back as one tensor. */
static void test_ckpt_slices(void) {
  sample s[N_SAMPLE];
  make_samples(s);
  size_t saved = vz_ckpt_slice_bytes;
  vz_ckpt_slice_bytes = 6; /* rounded down to whole elements */
  const char *path = tmp_path("sliced.ckpt");
  CHECK_OK(write_samples(path, VZ_FORMAT_MINDSPORE_CKPT, s, N_SAMPLE));
  vz_ckpt_slice_bytes = saved;
  vz_weights *w = NULL;
  CHECK_OK(vz_weights_open(path, &w));
  if (w) {
    CHECK(vz_weights_count(w) == N_SAMPLE);
    check_samples(w, s, N_SAMPLE, "sliced.ckpt");
    /* A sliced tensor is assembled into memory of its own. */
    size_t idx;
    const void *data;
    CHECK_OK(vz_weights_find(w, "f32", &idx));
    CHECK_OK(vz_weights_data(w, idx, &data, NULL));
    CHECK(in_file_mapping(data, path) <= 0 && !vz_weights_mapped(w, idx));
    vz_weights_close(w);
  }

  /* The same file with MindSpore's CRC trailer, then with a wrong one. */
  FILE *f = fopen(path, "rb");
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *bytes = malloc((size_t)size + 17);
  CHECK(fread(bytes, 1, (size_t)size, f) == (size_t)size);
  fclose(f);
  uint32_t crc = vz_crc32(0, bytes, (size_t)size);
  memcpy(bytes + size, "crc_num", 7);
  memset(bytes + size + 7, 0, 6);
  for (int i = 0; i < 4; i++) {
    bytes[size + 13 + i] = (uint8_t)(crc >> (24 - 8 * i));
  }
  for (int bad = 0; bad < 2; bad++) {
    if (bad) {
      bytes[size + 16] ^= 1;
    }
    const char *crc_path = tmp_path(bad ? "bad_crc.ckpt" : "crc.ckpt");
    f = fopen(crc_path, "wb");
    fwrite(bytes, 1, (size_t)size + 17, f);
    fclose(f);
    w = NULL;
    if (bad) {
      CHECK_FAILS(vz_weights_open(crc_path, &w), VZ_ERR_FORMAT);
      CHECK(strstr(vz_last_error(), "CRC-32 mismatch") != NULL);
    } else {
      CHECK_OK(vz_weights_open(crc_path, &w));
      CHECK(w && vz_weights_count(w) == N_SAMPLE);
      vz_weights_close(w);
    }
  }
  /* binascii.crc32(b"123456789") == 0xcbf43926 */
  CHECK(vz_crc32(0, "123456789", 9) == 0xcbf43926u);
  CHECK(vz_crc32(vz_crc32(0, "1234", 4), "56789", 5) == 0xcbf43926u);

  /* Two .ckpt files concatenated are one .ckpt; a tag that comes back
   * after another is a duplicate. */
  char *cat = malloc(2 * (size_t)size);
  memcpy(cat, bytes, (size_t)size);
  memcpy(cat + size, bytes, (size_t)size);
  f = fopen(tmp_path("twice.ckpt"), "wb");
  fwrite(cat, 1, 2 * (size_t)size, f);
  fclose(f);
  w = NULL;
  CHECK_FAILS(vz_weights_open(tmp_path("twice.ckpt"), &w), VZ_ERR_FORMAT);
  CHECK(strstr(vz_last_error(), "duplicate tensor name") != NULL);
  free(cat);
  free(bytes);
  free_samples(s);
}

static vz_status write_one_st(const char *path, const char *const *names, int n, float base) {
  vz_weights_writer *wr;
  vz_status st = vz_weights_writer_open(path, VZ_FORMAT_SAFETENSORS, &wr);
  if (st != VZ_OK) {
    return st;
  }
  static float values[64][4];
  for (int i = 0; i < n; i++) {
    for (int k = 0; k < 4; k++) {
      values[i][k] = base + (float)(i * 4 + k);
    }
    st = vz_weights_writer_add(wr, names[i], VZ_F32, 1, (int64_t[]){4}, values[i], 16);
    if (st != VZ_OK) {
      vz_weights_writer_abort(wr);
      return st;
    }
  }
  return vz_weights_writer_commit(wr);
}

static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  fputs(text, f);
  fclose(f);
}

static void test_sharded(void) {
  make_dir("sharded");
  const char *a[] = {"enc.w", "enc.b"}, *b[] = {"dec.w", "dec.b", "head"};
  CHECK_OK(write_one_st(tmp_path("sharded/model-00001-of-00002.safetensors"), a, 2, 0));
  CHECK_OK(write_one_st(tmp_path("sharded/model-00002-of-00002.safetensors"), b, 3, 100));
  const char *index = "{\"metadata\": {\"total_size\": 80},\n \"weight_map\": {\n"
                      "  \"dec.b\": \"model-00002-of-00002.safetensors\",\n"
                      "  \"enc.w\": \"model-00001-of-00002.safetensors\",\n"
                      "  \"enc.b\": \"model-00001-of-00002.safetensors\",\n"
                      "  \"dec.w\": \"model-00002-of-00002.safetensors\",\n"
                      "  \"head\": \"model-00002-of-00002.safetensors\"}}\n";
  write_text(tmp_path("sharded/model.safetensors.index.json"), index);
  /* The index itself, and its directory. */
  for (int k = 0; k < 2; k++) {
    vz_weights *w = NULL;
    CHECK_OK(vz_weights_open(tmp_path(k ? "sharded" : "sharded/model.safetensors.index.json"), &w));
    if (!w) {
      continue;
    }
    CHECK(vz_weights_count(w) == 5);
    CHECK(strcmp(vz_weights_format(w), "safetensors") == 0);
    size_t idx;
    CHECK_OK(vz_weights_find(w, "head", &idx));
    const void *data;
    CHECK_OK(vz_weights_data(w, idx, &data, NULL));
    CHECK(((const float *)data)[0] == 108.0f);
    CHECK_OK(vz_weights_find(w, "enc.b", &idx));
    CHECK_OK(vz_weights_data(w, idx, &data, NULL));
    CHECK(((const float *)data)[3] == 7.0f);
    vz_weights_close(w);
  }
  /* A name in the wrong shard, a missing name, a missing shard, a shard
   * path leaving the folder. */
  const struct {
    const char *json, *phrase;
    vz_status st;
  } bad[] = {
      {"{\"weight_map\": {\"enc.w\": \"model-00002-of-00002.safetensors\",\n"
       "  \"enc.b\": \"model-00001-of-00002.safetensors\"}}",
       "but it is in", VZ_ERR_FORMAT},
      {"{\"weight_map\": {\"nope\": \"model-00001-of-00002.safetensors\"}}", "does not hold it",
       VZ_ERR_FORMAT},
      {"{\"weight_map\": {\"x\": \"model-00003-of-00002.safetensors\"}}", "cannot open",
       VZ_ERR_NOT_FOUND},
      {"{\"weight_map\": {\"x\": \"../rt.safetensors\"}}", "invalid shard", VZ_ERR_FORMAT},
      {"{\"weight_map\": {}}", "empty", VZ_ERR_FORMAT},
      {"{\"weight_map\": [1, 2]}", "weight_map", VZ_ERR_FORMAT},
      {"{\"weight_map\": {\"x\": \"a\",}", "JSON", VZ_ERR_FORMAT},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    write_text(tmp_path("sharded/bad.index.json"), bad[i].json);
    vz_weights *w = NULL;
    CHECK_FAILS(vz_weights_open(tmp_path("sharded/bad.index.json"), &w), bad[i].st);
    if (!strstr(vz_last_error(), bad[i].phrase)) {
      fprintf(stderr, "index case %zu: message '%s' lacks '%s'\n", i, vz_last_error(),
              bad[i].phrase);
      test_failures++;
    }
    CHECK(w == NULL);
  }
  /* Two shards holding the same name. */
  make_dir("dup");
  CHECK_OK(write_one_st(tmp_path("dup/a.safetensors"), a, 2, 0));
  CHECK_OK(write_one_st(tmp_path("dup/b.safetensors"), a, 1, 0));
  write_text(tmp_path("dup/model.safetensors.index.json"),
             "{\"weight_map\": {\"enc.w\": \"a.safetensors\", \"enc.b\": \"a.safetensors\","
             " \"x\": \"b.safetensors\"}}");
  vz_weights *w = NULL;
  CHECK_FAILS(vz_weights_open(tmp_path("dup"), &w), VZ_ERR_FORMAT);
  CHECK(strstr(vz_last_error(), "duplicate tensor name 'enc.w'") != NULL);
}

static void test_directory(void) {
  vz_weights *w = NULL;
  make_dir("emptydir");
  CHECK_FAILS(vz_weights_open(tmp_path("emptydir"), &w), VZ_ERR_NOT_FOUND);
  CHECK(strstr(vz_last_error(), "no checkpoint in directory") != NULL);
  CHECK_FAILS(vz_weights_open(tmp_path("does-not-exist"), &w), VZ_ERR_NOT_FOUND);

  /* model.safetensors is preferred to pytorch_model.bin (detected by its
   * bytes, so a .ckpt under that name does for the test). */
  make_dir("both");
  const char *names[] = {"x"};
  CHECK_OK(write_one_st(tmp_path("both/model.safetensors"), names, 1, 0));
  sample s[N_SAMPLE];
  make_samples(s);
  CHECK_OK(write_samples(tmp_path("both/pytorch_model.bin"), VZ_FORMAT_MINDSPORE_CKPT, s, 3));
  CHECK_OK(vz_weights_open(tmp_path("both"), &w));
  CHECK(w && strcmp(vz_weights_format(w), "safetensors") == 0 && vz_weights_count(w) == 1);
  vz_weights_close(w);
  unlink(tmp_path("both/model.safetensors"));
  w = NULL;
  CHECK_OK(vz_weights_open(tmp_path("both"), &w));
  CHECK(w && strcmp(vz_weights_format(w), "mindspore-ckpt") == 0 && vz_weights_count(w) == 3);
  vz_weights_close(w);
  free_samples(s);

  /* Not a checkpoint at all, and an empty file. */
  write_text(tmp_path("notes.txt"), "hello, world\n");
  w = NULL;
  CHECK_FAILS(vz_weights_open(tmp_path("notes.txt"), &w), VZ_ERR_FORMAT);
  CHECK(strstr(vz_last_error(), "not a checkpoint vlzoo can read") != NULL);
  write_text(tmp_path("empty.bin"), "");
  CHECK_FAILS(vz_weights_open(tmp_path("empty.bin"), &w), VZ_ERR_FORMAT);
  CHECK(w == NULL);
}

static void test_many(void) {
  enum { N = 5000 };
  const char *path = tmp_path("many.safetensors");
  vz_weights_writer *wr;
  CHECK_OK(vz_weights_writer_open(path, VZ_FORMAT_SAFETENSORS, &wr));
  static int32_t values[N];
  char name[64];
  for (int i = 0; i < N; i++) {
    values[i] = i * 3;
    snprintf(name, sizeof(name), "blocks.%d.attn.qkv.weight", i);
    CHECK_OK(vz_weights_writer_add(wr, name, VZ_I32, 1, (int64_t[]){1}, &values[i], 4));
  }
  /* The writer refuses a second tensor of the same name. */
  CHECK_FAILS(vz_weights_writer_add(wr, "blocks.17.attn.qkv.weight", VZ_I32, 1, (int64_t[]){1},
                                    &values[0], 4),
              VZ_ERR_INVALID_ARGUMENT);
  CHECK_OK(vz_weights_writer_commit(wr));
  vz_weights *w = NULL;
  CHECK_OK(vz_weights_open(path, &w));
  if (!w) {
    return;
  }
  CHECK(vz_weights_count(w) == N);
  int bad = 0;
  for (int i = N - 1; i >= 0; i--) {
    snprintf(name, sizeof(name), "blocks.%d.attn.qkv.weight", i);
    size_t idx;
    const void *data;
    if (vz_weights_find(w, name, &idx) != VZ_OK || vz_weights_data(w, idx, &data, NULL) != VZ_OK ||
        *(const int32_t *)data != i * 3) {
      bad++;
    }
  }
  CHECK(bad == 0);
  size_t idx;
  CHECK_FAILS(vz_weights_find(w, "blocks.5000.attn.qkv.weight", &idx), VZ_ERR_NOT_FOUND);
  vz_weights_close(w);
}

static void test_writer_failures(void) {
  /* Abort leaves nothing behind. */
  const char *path = tmp_path("aborted.safetensors");
  vz_weights_writer *wr = NULL;
  CHECK_OK(vz_weights_writer_open(path, VZ_FORMAT_SAFETENSORS, &wr));
  CHECK(count_entries(g_dir, "aborted.safetensors.tmp.") == 1);
  float x[2] = {1, 2};
  CHECK_OK(vz_weights_writer_add(wr, "x", VZ_F32, 1, (int64_t[]){2}, x, sizeof(x)));
  vz_weights_writer_abort(wr);
  vz_weights_writer_abort(NULL);
  CHECK(!exists(path));
  CHECK(count_entries(g_dir, "aborted.") == 0);

  /* A folder that does not exist: a clean error at open. */
  wr = NULL;
  CHECK_FAILS(vz_weights_writer_open(tmp_path("no/such/dir/x.ckpt"), VZ_FORMAT_MINDSPORE_CKPT, &wr),
              VZ_ERR_IO);
  CHECK(wr == NULL);

  /* Bad tensors are refused; the writer stays usable. */
  CHECK_OK(vz_weights_writer_open(path, VZ_FORMAT_MINDSPORE_CKPT, &wr));
  CHECK_FAILS(vz_weights_writer_add(wr, "x", VZ_F32, 1, (int64_t[]){3}, x, sizeof(x)),
              VZ_ERR_INVALID_ARGUMENT);
  CHECK_FAILS(vz_weights_writer_add(wr, "x", VZ_F32, 9, (int64_t[]){1, 1, 1, 1, 1, 1, 1, 1, 2}, x,
                                    sizeof(x)),
              VZ_ERR_INVALID_ARGUMENT);
  CHECK_FAILS(vz_weights_writer_add(wr, "x", VZ_F32, 1, (int64_t[]){-2}, x, sizeof(x)),
              VZ_ERR_INVALID_ARGUMENT);
  CHECK_FAILS(vz_weights_writer_add(wr, "x", VZ_DTYPE_COUNT, 1, (int64_t[]){2}, x, sizeof(x)),
              VZ_ERR_INVALID_ARGUMENT);
  CHECK_OK(vz_weights_writer_add(wr, "x", VZ_F32, 1, (int64_t[]){2}, x, sizeof(x)));
  vz_weights_writer_abort(wr);
  CHECK(!exists(path));

  /* A write that fails half-way (file size limit): commit reports it, and
   * neither the file nor its temporary remains. */
  struct rlimit old;
  getrlimit(RLIMIT_FSIZE, &old);
  void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
  size_t big_n = 1 << 20;
  uint8_t *big = calloc(big_n, 1);
  for (int fmt = 0; fmt < 2; fmt++) {
    const char *fpath = tmp_path("toobig.bin");
    CHECK_OK(
        vz_weights_writer_open(fpath, fmt ? VZ_FORMAT_SAFETENSORS : VZ_FORMAT_MINDSPORE_CKPT, &wr));
    CHECK_OK(vz_weights_writer_add(wr, "big", VZ_U8, 1, (int64_t[]){(int64_t)big_n}, big, big_n));
    struct rlimit lim = old;
    lim.rlim_cur = 4096;
    setrlimit(RLIMIT_FSIZE, &lim);
    CHECK_FAILS(vz_weights_writer_commit(wr), VZ_ERR_IO);
    setrlimit(RLIMIT_FSIZE, &old);
    CHECK(!exists(fpath));
    CHECK(count_entries(g_dir, "toobig.") == 0);
  }
  signal(SIGXFSZ, old_handler);
  free(big);

  /* Commit replaces an existing file only when it succeeds. */
  path = tmp_path("replace.safetensors");
  write_text(path, "old contents");
  CHECK_OK(vz_weights_writer_open(path, VZ_FORMAT_SAFETENSORS, &wr));
  CHECK_OK(vz_weights_writer_add(wr, "x", VZ_F32, 1, (int64_t[]){2}, x, sizeof(x)));
  CHECK_OK(vz_weights_writer_commit(wr));
  vz_weights *w = NULL;
  CHECK_OK(vz_weights_open(path, &w));
  CHECK(w && vz_weights_count(w) == 1);
  vz_weights_close(w);
  CHECK(count_entries(g_dir, "replace.safetensors.tmp") == 0);
}

/* Tensors that need assembling: strided views, pieces, big-endian. */
static void test_assemble(void) {
  static const uint8_t storage[24] = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
                                      12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23};
  vz_source_list list = {0};
  vz_source_tensor t;
  /* A transposed view: shape [3, 2] of a [2, 3] i16 matrix at offset 1. */
  memset(&t, 0, sizeof(t));
  t.info.name = strdup("transposed");
  t.info.dtype = VZ_I16;
  t.info.ndim = 2;
  t.info.shape[0] = 3;
  t.info.shape[1] = 2;
  t.storage = storage;
  t.storage_bytes = sizeof(storage);
  t.offset = 1;
  t.stride[0] = 1;
  t.stride[1] = 3;
  CHECK_OK(vz_source_tensor_size(&t));
  CHECK_OK(vz_source_tensor_check_bounds(&t));
  CHECK_OK(vz_source_list_push(&list, &t));
  /* The same view, big-endian. */
  t.info.name = strdup("transposed_be");
  t.big_endian = true;
  CHECK_OK(vz_source_list_push(&list, &t));
  /* A contiguous big-endian i32 vector: swapped in place of a copy. */
  memset(&t, 0, sizeof(t));
  t.info.name = strdup("be32");
  t.info.dtype = VZ_I32;
  t.info.ndim = 1;
  t.info.shape[0] = 2;
  t.storage = storage;
  t.storage_bytes = 8;
  t.stride[0] = 1;
  t.big_endian = true;
  CHECK_OK(vz_source_tensor_size(&t));
  CHECK_OK(vz_source_list_push(&list, &t));
  /* A contiguous view with offset: zero copy. */
  t.info.name = strdup("slice");
  t.big_endian = false;
  t.offset = 3;
  t.storage_bytes = 24;
  CHECK_OK(vz_source_list_push(&list, &t));
  /* Three pieces. */
  memset(&t, 0, sizeof(t));
  t.info.name = strdup("pieces");
  t.info.dtype = VZ_U8;
  t.info.ndim = 2;
  t.info.shape[0] = 2;
  t.info.shape[1] = 3;
  CHECK_OK(vz_source_tensor_size(&t));
  t.pieces = malloc(3 * sizeof(vz_source_piece));
  t.pieces[0] = (vz_source_piece){storage + 20, 2};
  t.pieces[1] = (vz_source_piece){storage, 0};
  t.pieces[2] = (vz_source_piece){storage + 5, 4};
  t.n_pieces = 3;
  CHECK_OK(vz_source_list_push(&list, &t));
  /* Pieces that do not add up to the shape. */
  t.info.name = strdup("short_pieces");
  t.pieces = malloc(sizeof(vz_source_piece));
  t.pieces[0] = (vz_source_piece){storage, 5};
  t.n_pieces = 1;
  CHECK_OK(vz_source_list_push(&list, &t));
  /* A view reaching past its storage. */
  memset(&t, 0, sizeof(t));
  t.info.name = strdup("past_end");
  t.info.dtype = VZ_F32;
  t.info.ndim = 1;
  t.info.shape[0] = 4;
  t.stride[0] = 2;
  t.storage = storage;
  t.storage_bytes = 24;
  CHECK_OK(vz_source_tensor_size(&t));
  CHECK_FAILS(vz_source_tensor_check_bounds(&t), VZ_ERR_FORMAT);
  CHECK_OK(vz_source_list_push(&list, &t));

  vz_weights *w = NULL;
  CHECK_OK(vz_weights_from_list(&list, &w));
  CHECK(list.count == 0 && list.items == NULL);
  if (!w) {
    return;
  }
  CHECK(strcmp(vz_weights_format(w), "memory") == 0);
  const void *data;
  size_t n;
  /* transposed: elements at 1,4,2,5,3,6 (i16, little-endian) */
  static const uint8_t want_t[12] = {2, 3, 8, 9, 4, 5, 10, 11, 6, 7, 12, 13};
  static const uint8_t want_tbe[12] = {3, 2, 9, 8, 5, 4, 11, 10, 7, 6, 13, 12};
  CHECK_OK(vz_weights_data(w, 0, &data, &n));
  CHECK(n == 12 && memcmp(data, want_t, 12) == 0);
  const void *again;
  CHECK_OK(vz_weights_data(w, 0, &again, &n));
  CHECK(again == data); /* assembled once */
  CHECK_OK(vz_weights_data(w, 1, &data, &n));
  CHECK(n == 12 && memcmp(data, want_tbe, 12) == 0);
  static const uint8_t want_be32[8] = {3, 2, 1, 0, 7, 6, 5, 4};
  CHECK_OK(vz_weights_data(w, 2, &data, &n));
  CHECK(n == 8 && memcmp(data, want_be32, 8) == 0);
  CHECK_OK(vz_weights_data(w, 3, &data, &n));
  CHECK(data == storage + 12);
  /* only the slice is given in place; the others were assembled */
  for (size_t i = 0; i < 5; i++)
    CHECK(vz_weights_mapped(w, i) == (i == 3));
  static const uint8_t want_p[6] = {20, 21, 5, 6, 7, 8};
  CHECK_OK(vz_weights_data(w, 4, &data, &n));
  CHECK(n == 6 && memcmp(data, want_p, 6) == 0);
  CHECK_FAILS(vz_weights_data(w, 5, &data, &n), VZ_ERR_FORMAT);
  CHECK_FAILS(vz_weights_data(w, 6, &data, &n), VZ_ERR_FORMAT);
  vz_weights_close(w);

  /* Duplicates among listed tensors. */
  memset(&t, 0, sizeof(t));
  t.info.name = strdup("same");
  t.info.dtype = VZ_U8;
  CHECK_OK(vz_source_tensor_size(&t));
  t.storage = storage;
  t.storage_bytes = 1;
  CHECK_OK(vz_source_list_push(&list, &t));
  t.info.name = strdup("same");
  CHECK_OK(vz_source_list_push(&list, &t));
  w = NULL;
  CHECK_FAILS(vz_weights_from_list(&list, &w), VZ_ERR_FORMAT);
  CHECK(w == NULL && list.count == 0);
}

static void test_sizes(void) {
  vz_source_tensor t;
  memset(&t, 0, sizeof(t));
  t.info.name = "t";
  t.info.dtype = VZ_F64;
  t.info.ndim = 3;
  t.info.shape[0] = (int64_t)1 << 30;
  t.info.shape[1] = (int64_t)1 << 30;
  t.info.shape[2] = 16;
  CHECK_FAILS(vz_source_tensor_size(&t), VZ_ERR_FORMAT);
  t.info.shape[2] = 4; /* 2^62 elements of 8 bytes */
  CHECK_FAILS(vz_source_tensor_size(&t), VZ_ERR_FORMAT);
  t.info.ndim = 9;
  CHECK_FAILS(vz_source_tensor_size(&t), VZ_ERR_FORMAT);
  t.info.ndim = 1;
  t.info.shape[0] = -1;
  CHECK_FAILS(vz_source_tensor_size(&t), VZ_ERR_FORMAT);
  t.info.ndim = 0;
  CHECK_OK(vz_source_tensor_size(&t));
  CHECK(t.info.nbytes == 8);
  /* Strides whose reach overflows int64 are rejected, not wrapped. */
  t.info.ndim = 2;
  t.info.shape[0] = 3;
  t.info.shape[1] = 2;
  t.stride[0] = INT64_MAX / 2;
  t.stride[1] = 1;
  t.storage = (const uint8_t *)"";
  t.storage_bytes = 1u << 20;
  CHECK_FAILS(vz_source_tensor_check_bounds(&t), VZ_ERR_FORMAT);
  t.stride[0] = -1; /* reaches element -2 */
  t.offset = 1;
  CHECK_FAILS(vz_source_tensor_check_bounds(&t), VZ_ERR_FORMAT);
  t.offset = 2;
  CHECK_OK(vz_source_tensor_check_bounds(&t));
  t.offset = -1;
  CHECK_FAILS(vz_source_tensor_check_bounds(&t), VZ_ERR_FORMAT);
}

/* An owner added with vz_weights_retain keeps the file mapped, and its
 * bytes readable, after the opener closes; the last close unmaps it. */
static void test_owners(void) {
  sample s[N_SAMPLE];
  make_samples(s);
  const char *path = tmp_path("owners.safetensors");
  CHECK_OK(write_samples(path, VZ_FORMAT_SAFETENSORS, s, N_SAMPLE));
  vz_weights *w = NULL;
  CHECK_OK(vz_weights_open(path, &w));
  size_t idx = 0;
  const void *data = NULL;
  size_t n = 0;
  if (w && vz_weights_find(w, s[0].name, &idx) == VZ_OK &&
      vz_weights_data(w, idx, &data, &n) == VZ_OK) {
    CHECK(vz_weights_mapped(w, idx) && in_file_mapping(data, path) == 1 && n == s[0].nbytes);
    CHECK(vz_weights_retain(w) == w);
    vz_weights_close(w); /* the opener's */
    CHECK(in_file_mapping(data, path) == 1 && memcmp(data, s[0].data, n) == 0);
    vz_weights_close(w); /* the last owner's */
    CHECK(in_file_mapping(data, path) == 0);
  } else {
    CHECK(!"the first sample reads back");
    vz_weights_close(w);
  }
  CHECK(vz_weights_retain(NULL) == NULL);
  free_samples(s);
}

int main(void) {
  const char *base = getenv("TMPDIR");
  snprintf(g_dir, sizeof(g_dir), "%s/vlzoo_weights_XXXXXX", base && *base ? base : "/tmp");
  if (!mkdtemp(g_dir)) {
    fprintf(stderr, "cannot make a temporary folder: %s\n", strerror(errno));
    return 1;
  }
  test_sizes();
  test_round_trip();
  test_ckpt_slices();
  test_sharded();
  test_directory();
  test_many();
  test_writer_failures();
  test_assemble();
  test_owners();
  remove_tree(g_dir);
  return test_finish("test_weights");
}

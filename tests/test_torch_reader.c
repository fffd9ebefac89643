/* PyTorch checkpoint readers: every tensor of the fixtures made by
 * tests/fixtures/make_torch_fixtures.py against its JSON sidecar (name,
 * dtype, shape, sha256 of the contiguous little-endian bytes), every hostile
 * file of tests/fixtures/hostile/ against the status and message it must
 * produce, and the pickle and zip readers on small inputs built here.
 * Fixtures come from $VLZOO_FIXTURES_DIR; without it the test is skipped. */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "convert/pickle.h"
#include "convert/sha256.h"
#include "convert/source.h"
#include "convert/zip.h"
#include "tests/test_util.h"

static const char *fixtures;

/* ---- Files ---- */

typedef struct mapping {
  vz_mapped_file file;
  size_t map_size;
  char path[1024];
} mapping;

/* Maps fixtures/sub/name; false, counted as a failure, when it cannot. */
static bool map_fixture(const char *sub, const char *name, mapping *m) {
  memset(m, 0, sizeof *m);
  snprintf(m->path, sizeof m->path, "%s/%s/%s", fixtures, sub, name);
  int fd = open(m->path, O_RDONLY);
  if (fd < 0) {
    fprintf(stderr, "cannot open %s\n", m->path);
    test_failures++;
    return false;
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    close(fd);
    test_failures++;
    return false;
  }
  m->file.path = m->path;
  m->file.size = (size_t)st.st_size;
  m->map_size = m->file.size;
  if (m->map_size > 0) {
    void *p = mmap(NULL, m->map_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      close(fd);
      test_failures++;
      return false;
    }
    m->file.bytes = p;
  }
  close(fd);
  return true;
}

static void unmap_file(mapping *m) {
  if (m->map_size > 0) {
    munmap((void *)m->file.bytes, m->map_size);
  }
}

typedef vz_status (*reader_fn)(const vz_mapped_file *, vz_source_list *);

/* ---- Tensor bytes ---- */

/* The tensor's elements, row-major and little-endian, gathered from its
 * strided view in the test itself (independently of convert/weights.c). */
static uint8_t *contiguous_bytes(const vz_source_tensor *t) {
  size_t elsize = vz_dtype_size(t->info.dtype);
  int64_t numel = 1;
  for (int d = 0; d < t->info.ndim; d++) {
    numel *= t->info.shape[d];
  }
  uint8_t *out = malloc(numel > 0 ? (size_t)numel * elsize : 1);
  int64_t index[VZ_WEIGHT_MAX_DIMS] = {0};
  for (int64_t n = 0; n < numel; n++) {
    int64_t e = t->offset;
    for (int d = 0; d < t->info.ndim; d++) {
      e += index[d] * t->stride[d];
    }
    if (e < 0 || (uint64_t)(e + 1) * elsize > t->storage_bytes) {
      fprintf(stderr, "%s: element %lld outside its storage\n", t->info.name, (long long)n);
      test_failures++;
      free(out);
      return NULL;
    }
    const uint8_t *src = t->storage + (size_t)e * elsize;
    for (size_t b = 0; b < elsize; b++) {
      out[(size_t)n * elsize + b] = t->big_endian ? src[elsize - 1 - b] : src[b];
    }
    for (int d = t->info.ndim - 1; d >= 0; d--) {
      if (++index[d] < t->info.shape[d]) {
        break;
      }
      index[d] = 0;
    }
  }
  return out;
}

/* ---- Fixtures with sidecars ---- */

static void check_fixture(const char *stem, const char *ext) {
  char file[256], json_path[1024];
  snprintf(file, sizeof file, "%s.%s", stem, ext);
  snprintf(json_path, sizeof json_path, "%s/torch/%s.json", fixtures, stem);
  json_object *doc = json_object_from_file(json_path);
  if (!doc) {
    fprintf(stderr, "cannot read %s\n", json_path);
    test_failures++;
    return;
  }
  json_object *v;
  const char *format =
      json_object_object_get_ex(doc, "format", &v) ? json_object_get_string(v) : "";
  bool big = json_object_object_get_ex(doc, "big_endian", &v) && json_object_get_boolean(v);
  reader_fn read = strcmp(format, "torch-legacy") == 0 ? vz_read_torch_legacy : vz_read_torch_zip;
  json_object *tensors;
  CHECK(json_object_object_get_ex(doc, "tensors", &tensors));
  size_t want = json_object_array_length(tensors);

  mapping m;
  vz_source_list list = {0};
  if (!map_fixture("torch", file, &m)) {
    json_object_put(doc);
    return;
  }
  const char *path = m.path;
  vz_status st = read(&m.file, &list);
  if (st != VZ_OK) {
    fprintf(stderr, "%s: %s: %s\n", path, vz_status_string(st), vz_last_error());
    test_failures++;
  } else if (list.count != want) {
    fprintf(stderr, "%s: %zu tensors, sidecar lists %zu\n", path, list.count, want);
    test_failures++;
  } else {
    for (size_t i = 0; i < want; i++) {
      json_object *e = json_object_array_get_idx(tensors, i), *f;
      const vz_source_tensor *t = &list.items[i];
      json_object_object_get_ex(e, "name", &f);
      const char *name = json_object_get_string(f);
      if (strcmp(t->info.name, name) != 0) {
        fprintf(stderr, "%s: tensor %zu is '%s', expected '%s'\n", path, i, t->info.name, name);
        test_failures++;
        continue;
      }
      json_object_object_get_ex(e, "dtype", &f);
      if (strcmp(vz_dtype_name(t->info.dtype), json_object_get_string(f)) != 0) {
        fprintf(stderr, "%s: %s has dtype %s, expected %s\n", path, name,
                vz_dtype_name(t->info.dtype), json_object_get_string(f));
        test_failures++;
      }
      json_object_object_get_ex(e, "shape", &f);
      bool shape_ok = (size_t)t->info.ndim == json_object_array_length(f);
      for (int d = 0; shape_ok && d < t->info.ndim; d++) {
        shape_ok = t->info.shape[d] == json_object_get_int64(json_object_array_get_idx(f, d));
      }
      if (!shape_ok) {
        fprintf(stderr, "%s: %s has the wrong shape\n", path, name);
        test_failures++;
      }
      CHECK(t->big_endian == big);
      CHECK(t->n_pieces == 0);
      uint8_t *bytes = contiguous_bytes(t);
      if (bytes) {
        char hex[65];
        vz_sha256_hex(bytes, t->info.nbytes, hex);
        json_object_object_get_ex(e, "sha256", &f);
        if (strcmp(hex, json_object_get_string(f)) != 0) {
          fprintf(stderr, "%s: %s bytes differ (sha256 %s, expected %s)\n", path, name, hex,
                  json_object_get_string(f));
          test_failures++;
        }
        free(bytes);
      }
    }
  }
  vz_source_list_free(&list);
  unmap_file(&m);
  json_object_put(doc);
}

/* The same file through vz_weights_open: format detection, lookup, and the
 * bytes as convert/weights.c assembles them (strided views, byte order). */
static void check_weights(const char *stem, const char *ext) {
  char path[1024], json_path[1024];
  snprintf(path, sizeof path, "%s/torch/%s.%s", fixtures, stem, ext);
  snprintf(json_path, sizeof json_path, "%s/torch/%s.json", fixtures, stem);
  json_object *doc = json_object_from_file(json_path), *v, *tensors;
  if (!doc || !json_object_object_get_ex(doc, "tensors", &tensors) ||
      !json_object_object_get_ex(doc, "format", &v)) {
    fprintf(stderr, "cannot read %s\n", json_path);
    test_failures++;
    json_object_put(doc);
    return;
  }
  vz_weights *w = NULL;
  vz_status st = vz_weights_open(path, &w);
  if (st != VZ_OK) {
    fprintf(stderr, "vz_weights_open(%s): %s: %s\n", path, vz_status_string(st), vz_last_error());
    test_failures++;
    json_object_put(doc);
    return;
  }
  CHECK(strcmp(vz_weights_format(w), json_object_get_string(v)) == 0);
  size_t n = json_object_array_length(tensors);
  CHECK(vz_weights_count(w) == n);
  for (size_t i = 0; i < n && i < vz_weights_count(w); i++) {
    json_object *e = json_object_array_get_idx(tensors, i), *f;
    json_object_object_get_ex(e, "name", &f);
    const char *name = json_object_get_string(f);
    size_t index = SIZE_MAX;
    CHECK_OK(vz_weights_find(w, name, &index));
    CHECK(index == i);
    const void *data = NULL;
    size_t nbytes = 0;
    CHECK_OK(vz_weights_data(w, i, &data, &nbytes));
    CHECK(nbytes == vz_weights_info(w, i)->nbytes);
    char hex[65];
    vz_sha256_hex(data, nbytes, hex);
    json_object_object_get_ex(e, "sha256", &f);
    if (strcmp(hex, json_object_get_string(f)) != 0) {
      fprintf(stderr, "vz_weights_data(%s, %s): bytes differ\n", path, name);
      test_failures++;
    }
  }
  vz_weights_close(w);
  json_object_put(doc);
}

/* Two tensors that must share bytes (tied weights, an offset view). */
static void check_sharing(void) {
  mapping m;
  vz_source_list list = {0};
  if (!map_fixture("torch", "state_dict.pt", &m)) {
    return;
  }
  CHECK_OK(vz_read_torch_zip(&m.file, &list));
  const vz_source_tensor *full = NULL, *view = NULL, *tr = NULL;
  for (size_t i = 0; i < list.count; i++) {
    if (strcmp(list.items[i].info.name, "tied.full") == 0) {
      full = &list.items[i];
    } else if (strcmp(list.items[i].info.name, "tied.view") == 0) {
      view = &list.items[i];
    } else if (strcmp(list.items[i].info.name, "transposed") == 0) {
      tr = &list.items[i];
    }
  }
  CHECK(full && view && tr);
  if (full && view && tr) {
    CHECK(full->storage == view->storage);
    CHECK(full->offset == 0 && view->offset == 3);
    CHECK(tr->info.ndim == 2 && tr->stride[0] == 1 && tr->stride[1] == 5);
    /* Zero-copy: the storage lies inside the mapped file. */
    CHECK(full->storage >= m.file.bytes &&
          full->storage + full->storage_bytes <= m.file.bytes + m.file.size);
  }
  vz_source_list_free(&list);
  unmap_file(&m);
}

/* ---- Hostile files ---- */

static const struct {
  const char *file;
  bool legacy;
  vz_status status;
  const char *phrase;
} hostile[] = {
    {"control.pt", false, VZ_OK, NULL},
    {"legacy_control.pt", true, VZ_OK, NULL},
    {"os_system.pt", false, VZ_ERR_FORMAT,
     "refusing to load: the pickle calls os.system; only tensors, containers and scalars are "
     "allowed"},
    {"builtins_eval.pt", false, VZ_ERR_FORMAT, "the pickle calls builtins.eval"},
    {"subprocess_inst.pt", false, VZ_ERR_FORMAT, "the pickle calls subprocess.Popen"},
    {"numpy_reconstruct.pt", false, VZ_ERR_FORMAT,
     "the pickle calls numpy.core.multiarray._reconstruct"},
    {"posix_system_nested.pt", false, VZ_ERR_FORMAT, "the pickle calls posix.system"},
    {"truncated_directory.pt", false, VZ_ERR_FORMAT, "no end of central directory"},
    {"truncated_data.pt", false, VZ_ERR_FORMAT, "no end of central directory"},
    {"short_storage.pt", false, VZ_ERR_FORMAT, "needs 64 bytes"},
    {"directory_past_end.pt", false, VZ_ERR_FORMAT, "past the end"},
    {"compressed.pt", false, VZ_ERR_UNSUPPORTED, "compressed"},
    {"duplicate_entry.pt", false, VZ_ERR_FORMAT, "two entries are named 'dup/data.pkl'"},
    {"huge_memo.pt", false, VZ_ERR_FORMAT, "memo index 4294967280 is too large"},
    {"nested_list.pt", false, VZ_ERR_FORMAT, "nested more than 256 levels"},
    {"mark_bomb.pt", false, VZ_ERR_FORMAT, "more than 1024 nested MARKs"},
    {"cyclic_list.pt", false, VZ_ERR_FORMAT, "or cyclic"},
    {"reference_bomb.pt", false, VZ_ERR_FORMAT, "reference bomb"},
    {"string_overflow.pt", false, VZ_ERR_FORMAT, "string length 18446744073709551608"},
    {"string_past_end.pt", false, VZ_ERR_FORMAT, "runs past the end"},
    {"long_overflow.pt", false, VZ_ERR_FORMAT, "does not fit in 64 bits"},
    {"stride_past_storage.pt", false, VZ_ERR_FORMAT, "strided view reaches"},
    {"legacy_bad_magic.pt", true, VZ_ERR_FORMAT, "wrong magic"},
    {"legacy_truncated.pt", true, VZ_ERR_FORMAT, "needs 64 bytes but only 54 remain"},
    {"legacy_wrong_count.pt", true, VZ_ERR_FORMAT, "holds 1099511627776 elements"},
    {"legacy_os_system.pt", true, VZ_ERR_FORMAT, "the pickle calls os.system"},
    {"legacy_view.pt", true, VZ_OK, NULL},
    {"legacy_view_past_root.pt", true, VZ_ERR_FORMAT, "exceeds its 16 elements"},
    /* Each reader on the other's format. */
    {"legacy_control.pt", false, VZ_ERR_FORMAT, "no end of central directory"},
    {"control.pt", true, VZ_ERR_FORMAT, "wrong magic"},
};

static void check_hostile(void) {
  for (size_t i = 0; i < sizeof hostile / sizeof *hostile; i++) {
    mapping m;
    if (!map_fixture("hostile", hostile[i].file, &m)) {
      continue;
    }
    vz_source_list list = {0};
    vz_clear_error();
    vz_status st = (hostile[i].legacy ? vz_read_torch_legacy : vz_read_torch_zip)(&m.file, &list);
    bool ok = st == hostile[i].status;
    if (hostile[i].phrase) {
      ok = ok && strstr(vz_last_error(), hostile[i].phrase) != NULL && list.count == 0;
    } else {
      ok = ok && list.count == 1 && strcmp(list.items[0].info.name, "weight") == 0;
    }
    if (!ok) {
      fprintf(stderr, "%s (%s reader): got %s '%s', expected %s containing '%s'\n", hostile[i].file,
              hostile[i].legacy ? "legacy" : "zip", vz_status_string(st), vz_last_error(),
              vz_status_string(hostile[i].status), hostile[i].phrase ? hostile[i].phrase : "");
      test_failures++;
    }
    vz_source_list_free(&list);
    unmap_file(&m);
  }
}

/* A legacy storage view: elements 4..11 of a root storage of 0.0 ... 15.0. */
static void check_legacy_view(void) {
  mapping m;
  vz_source_list list = {0};
  if (!map_fixture("hostile", "legacy_view.pt", &m)) {
    return;
  }
  CHECK_OK(vz_read_torch_legacy(&m.file, &list));
  if (list.count == 1) {
    const vz_source_tensor *t = &list.items[0];
    CHECK(t->info.ndim == 2 && t->info.shape[0] == 2 && t->info.shape[1] == 4);
    CHECK(t->storage_bytes == 32);
    float first, last;
    memcpy(&first, t->storage, 4);
    memcpy(&last, t->storage + 28, 4);
    CHECK(first == 4.0f && last == 11.0f);
  } else {
    test_failures++;
  }
  vz_source_list_free(&list);
  unmap_file(&m);
}

/* ---- Pickle reader on inputs built here ---- */

static vz_status parse(const char *bytes, size_t n, vz_pickle **p) {
  vz_clear_error();
  return vz_pickle_parse((const uint8_t *)bytes, n, p, NULL);
}

static void check_int(const char *bytes, size_t n, int64_t want) {
  vz_pickle *p = NULL;
  vz_status st = parse(bytes, n, &p);
  const vz_pk_obj *r = vz_pickle_root(p);
  if (st != VZ_OK || r->type != VZ_PK_INT || r->u.i != want) {
    fprintf(stderr, "int pickle (%zu bytes): %s %s, expected %lld\n", n, vz_status_string(st),
            vz_last_error(), (long long)want);
    test_failures++;
  }
  vz_pickle_free(p);
}

static void check_rejects(const char *bytes, size_t n, const char *phrase) {
  vz_pickle *p = NULL;
  vz_status st = parse(bytes, n, &p);
  if (st != VZ_ERR_FORMAT || !strstr(vz_last_error(), phrase) || p) {
    fprintf(stderr, "pickle (%zu bytes): got %s '%s', expected a format error with '%s'\n", n,
            vz_status_string(st), vz_last_error(), phrase);
    test_failures++;
  }
  vz_pickle_free(p);
}

#define PK(s) s, sizeof(s) - 1

static void check_pickle(void) {
  check_int(PK("\x80\x02K\x07."), 7);
  check_int(PK("\x80\x02M\xe9\x03."), 1001);
  check_int(PK("\x80\x02J\xff\xff\xff\xff."), -1);
  check_int(PK("\x80\x02\x8a\x00."), 0);
  check_int(PK("\x80\x02\x8a\x01\xff."), -1);
  check_int(PK("\x80\x02\x8a\x02\xff\x00."), 255);
  check_int(PK("\x80\x02\x8a\x08\xff\xff\xff\xff\xff\xff\xff\x7f."), INT64_MAX);
  check_int(PK("\x80\x02\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x80."), INT64_MIN);
  check_int(PK("\x80\x02\x8a\x09\xff\xff\xff\xff\xff\xff\xff\xff\xff."), -1);
  check_int(PK("\x80\x02\x8b\x02\x00\x00\x00\x34\x12."), 0x1234);
  check_rejects(PK("\x80\x02\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x80\x00."), "64 bits");
  check_rejects(PK("\x80\x02\x8a\x09\xff\xff\xff\xff\xff\xff\xff\x7f\xff."), "64 bits");
  check_rejects(PK("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19."), "64 bits");
  check_rejects(PK("\x80\x02K"), "needs 1 bytes");
  check_rejects(PK("\x80\x02K\x01"), "without STOP");
  check_rejects(PK("\x80\x02K\x01K\x02."), "STOP with 2 values");
  check_rejects(PK("\x80\x02."), "STOP with 0 values");
  check_rejects(PK("\x80\x02h\x00."), "never stored");
  check_rejects(PK("\x80\x02"
                   "a."),
                "stack underflow");
  check_rejects(PK("\x80\x02(K\x01\x86."), "stack underflow");
  check_rejects(PK("\x80\x06K\x01."), "protocol 6");
  check_rejects(PK("\x80\x02\xff."), "opcode 0xff");
  check_rejects(PK("\x80\x02K\x01K\x01R."), "REDUCE applied to a int");
  check_rejects(PK("\x80\x02"
                   "ctorch\nFloatStorage\n)R."),
                "REDUCE applied to torch.FloatStorage");
  check_rejects(PK("\x80\x02K\x01}b."), "BUILD on a int");
  check_rejects(PK("\x80\x02\x82\x01."), "extension registry");
  check_rejects(PK("\x80\x02"
                   "cos\nsystem"),
                "without a newline");
  check_rejects(PK("\x80\x02"
                   "ccollections\nOrderedDict\nK\x01\x85R."),
                "OrderedDict called");
  check_rejects(PK("\x80\x02}K\x01s."), "stack underflow");
  check_rejects(PK("\x80\x02}(K\x01u."), "odd number");
  check_rejects(PK("\x80\x02K\x01(K\x01u."), "SETITEMS on a int");
  check_rejects(PK("\x80\x02\x95\xff\x00\x00\x00\x00\x00\x00\x00K\x01."), "FRAME of 255");

  /* A refused global names itself even with odd characters. */
  vz_pickle *p = NULL;
  CHECK(parse(PK("\x80\x02"
                 "cbuilt\x01ins\neval\n."),
              &p) == VZ_ERR_FORMAT);
  CHECK(strstr(vz_last_error(), "the pickle calls built\\x01ins.eval;") != NULL);
  CHECK(parse(PK("\x80\x02"
                 "ctorch\nuint16\n."),
              &p) == VZ_ERR_UNSUPPORTED);
  CHECK(strstr(vz_last_error(), "torch.uint16") != NULL);

  /* Containers, strings, floats, memo. */
  static const char doc[] = "\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00"
                            "}\x94(\x8c\x01"
                            "a\x94G\x3f\xf8\x00\x00\x00\x00\x00\x00"
                            "\x8c\x01"
                            "b]\x94(K\x01\x88\x89Ne"
                            "\x8c\x01"
                            "c\x8c\x01"
                            "a\x94h\x03\x86"
                            "\x8c\x01"
                            "d\x43\x02\x00\x01u.";
  CHECK_OK(parse(doc, sizeof doc - 1, &p));
  const vz_pk_obj *r = vz_pickle_root(p);
  CHECK(r && r->type == VZ_PK_DICT && r->u.dict.count == 4);
  const vz_pk_obj *a = vz_pk_dict_get(r, "a"), *b = vz_pk_dict_get(r, "b");
  const vz_pk_obj *c = vz_pk_dict_get(r, "c"), *d = vz_pk_dict_get(r, "d");
  CHECK(a && a->type == VZ_PK_FLOAT && a->u.f == 1.5);
  CHECK(vz_pk_seq_count(b) == 4 && vz_pk_seq_item(b, 0)->u.i == 1 && vz_pk_seq_item(b, 1)->u.b &&
        !vz_pk_seq_item(b, 2)->u.b && vz_pk_seq_item(b, 3)->type == VZ_PK_NONE);
  CHECK(c && c->type == VZ_PK_TUPLE && vz_pk_is_str(vz_pk_seq_item(c, 0), "a") &&
        vz_pk_seq_item(c, 0) == vz_pk_seq_item(c, 1));
  CHECK(d && d->type == VZ_PK_BYTES && d->u.str.len == 2 && d->u.str.data[1] == 1);
  CHECK(!vz_pk_dict_get(r, "e") && !vz_pk_dict_get(a, "a"));
  vz_pickle_free(p);

  /* Back-to-back pickles: consumed stops after STOP. */
  size_t used = 0;
  p = NULL;
  CHECK_OK(vz_pickle_parse((const uint8_t *)"\x80\x02K\x05.K\x06.", 9, &p, &used));
  CHECK(used == 5);
  vz_pickle_free(p);
  vz_pickle_free(NULL);
}

/* ---- Zip reader on inputs built here ---- */

static void put16(uint8_t *p, unsigned v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
}
static void put32(uint8_t *p, uint32_t v) {
  put16(p, v & 0xffff);
  put16(p + 2, v >> 16);
}

/* A one-entry stored archive "d/x" holding "hello": local header at 0,
 * data at 33, central directory at 38, end record at 87. */
static size_t tiny_zip(uint8_t *z) {
  memset(z, 0, 109);
  put32(z, 0x04034b50);
  put16(z + 26, 3);
  memcpy(z + 30, "d/x", 3);
  memcpy(z + 33, "hello", 5);
  uint8_t *c = z + 38;
  put32(c, 0x02014b50);
  put32(c + 20, 5);
  put32(c + 24, 5);
  put16(c + 28, 3);
  memcpy(c + 46, "d/x", 3);
  uint8_t *e = z + 87;
  put32(e, 0x06054b50);
  put16(e + 8, 1);
  put16(e + 10, 1);
  put32(e + 12, 49);
  put32(e + 16, 38);
  return 109;
}

/* The same archive with ZIP64 values: the central header's sizes and local
 * offset saturated and given in a ZIP64 extra field instead. */
static size_t tiny_zip64(uint8_t *z) {
  memset(z, 0, 140);
  put32(z, 0x04034b50);
  put16(z + 26, 3);
  memcpy(z + 30, "d/x", 3);
  memcpy(z + 33, "hello", 5);
  uint8_t *c = z + 38;
  put32(c, 0x02014b50);
  put32(c + 20, 0xffffffffu);
  put32(c + 24, 0xffffffffu);
  put16(c + 28, 3);
  put16(c + 30, 28);
  put32(c + 42, 0xffffffffu);
  memcpy(c + 46, "d/x", 3);
  uint8_t *x = c + 49;
  put16(x, 1);
  put16(x + 2, 24);
  put32(x + 4, 5);  /* uncompressed size */
  put32(x + 12, 5); /* compressed size */
  put32(x + 20, 0); /* local header offset */
  uint8_t *e = c + 77;
  put32(e, 0x06054b50);
  put16(e + 8, 1);
  put16(e + 10, 1);
  put32(e + 12, 77);
  put32(e + 16, 38);
  return 38 + 77 + 22;
}

static void check_zip(void) {
  uint8_t z[128];
  size_t n = tiny_zip(z);
  vz_zip zip;
  CHECK_OK(vz_zip_open(z, n, &zip));
  const vz_zip_entry *e = vz_zip_find(&zip, "d/x");
  const uint8_t *data = NULL;
  size_t size = 0;
  CHECK(e && vz_zip_entry_data(&zip, e, &data, &size) == VZ_OK && size == 5 &&
        memcmp(data, "hello", 5) == 0);
  CHECK(!vz_zip_find(&zip, "d/y") && !vz_zip_find(&zip, "d/"));
  vz_zip_close(&zip);

  /* Every truncation fails cleanly. */
  for (size_t cut = 0; cut < n; cut++) {
    CHECK(vz_zip_open(z, cut, &zip) == VZ_ERR_FORMAT);
    vz_zip_close(&zip);
  }
  /* Sizes that wrap, offsets past the end, counts the directory cannot hold. */
  tiny_zip(z);
  put32(z + 38 + 20, 0xffffffffu);
  put32(z + 38 + 24, 0xffffffffu);
  CHECK_FAILS(vz_zip_open(z, n, &zip), VZ_ERR_FORMAT);
  vz_zip_close(&zip);
  tiny_zip(z);
  put32(z + 38 + 42, 0xfffffff0u);
  CHECK_FAILS(vz_zip_open(z, n, &zip), VZ_ERR_FORMAT);
  vz_zip_close(&zip);
  tiny_zip(z);
  put16(z + 87 + 8, 2);
  put16(z + 87 + 10, 2);
  CHECK_FAILS(vz_zip_open(z, n, &zip), VZ_ERR_FORMAT);
  CHECK(strstr(vz_last_error(), "cannot fit") != NULL);
  vz_zip_close(&zip);
  tiny_zip(z);
  put16(z + 28, 0xffff); /* local extra runs past the data area */
  CHECK_FAILS(vz_zip_open(z, n, &zip), VZ_ERR_FORMAT);
  vz_zip_close(&zip);
  tiny_zip(z);
  z[32] = 'y'; /* local header names another file */
  CHECK_FAILS(vz_zip_open(z, n, &zip), VZ_ERR_FORMAT);
  CHECK(strstr(vz_last_error(), "different file") != NULL);
  vz_zip_close(&zip);
  tiny_zip(z);
  put16(z + 38 + 10, 8);
  put16(z + 8, 8);
  CHECK_OK(vz_zip_open(z, n, &zip));
  e = vz_zip_find(&zip, "d/x");
  CHECK(e != NULL);
  if (e) {
    CHECK_FAILS(vz_zip_entry_data(&zip, e, &data, &size), VZ_ERR_UNSUPPORTED);
    CHECK(strstr(vz_last_error(), "'d/x' is compressed") != NULL);
  }
  vz_zip_close(&zip);

  uint8_t z64[140];
  n = tiny_zip64(z64);
  CHECK_OK(vz_zip_open(z64, n, &zip));
  e = vz_zip_find(&zip, "d/x");
  CHECK(e && e->size == 5 && e->data_offset == 33 &&
        vz_zip_entry_data(&zip, e, &data, &size) == VZ_OK && size == 5 &&
        memcmp(data, "hello", 5) == 0);
  vz_zip_close(&zip);
  put16(z64 + 38 + 49 + 2, 16); /* the extra field lacks the local offset */
  CHECK_FAILS(vz_zip_open(z64, n, &zip), VZ_ERR_FORMAT);
  CHECK(strstr(vz_last_error(), "ZIP64 extra field too short") != NULL);
  vz_zip_close(&zip);
}

int main(void) {
  check_pickle();
  check_zip();
  fixtures = test_fixtures_dir();
  if (!fixtures) {
    fprintf(stderr, "test_torch_reader: VLZOO_FIXTURES_DIR is not set; skipping the fixtures\n");
    if (test_failures) {
      return test_finish("test_torch_reader");
    }
    return TEST_SKIP;
  }
  static const char *const zip_fixtures[][2] = {
      {"state_dict", "pt"}, {"fileobj", "pt"},       {"proto4", "pt"}, {"legacy", "pt"},
      {"lavis", "pth"},     {"lavis_legacy", "pth"}, {"nested", "pt"}, {"bigendian", "pt"},
  };
  for (size_t i = 0; i < sizeof zip_fixtures / sizeof *zip_fixtures; i++) {
    check_fixture(zip_fixtures[i][0], zip_fixtures[i][1]);
    check_weights(zip_fixtures[i][0], zip_fixtures[i][1]);
  }
  check_sharing();
  check_hostile();
  check_legacy_view();
  return test_finish("test_torch_reader");
}

/* Weight sources (include/vlzoo/weights.h): opening files, shard indexes and
 * directories, memory-mapping, lookup by name, assembling tensors whose
 * bytes are not already contiguous little-endian, and the atomic writers.
 *
 * The format readers (convert/safetensors.c, ckpt.c, torch_reader.c) only
 * parse; everything they point at lives in the mappings held here until
 * vz_weights_close. vz_weights_data may assemble and cache a copy, so one
 * vz_weights must not be used from two threads at once. */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* madvise */

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "convert/source.h"

struct vz_weights {
  atomic_int owners; /* the opener's reference and vz_weights_retain's */
  const char *format;
  vz_mapped_file *files;
  size_t n_files, cap_files;
  vz_source_list list;
  size_t *file_of; /* per tensor: index into files */
  size_t *slots;   /* hash table of tensor index + 1; 0 is empty */
  size_t n_slots;
};

/* ---- Name hashing (FNV-1a), shared by the reader and the writer ---- */

static uint64_t hash_name(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) {
    h = (h ^ (unsigned char)*s) * 1099511628211ull;
  }
  return h;
}

static size_t table_size_for(size_t n) {
  size_t cap = 16;
  while (cap < n * 2 + 1) {
    cap *= 2;
  }
  return cap;
}

/* ---- Mapping ---- */

static const uint8_t k_empty[1];

static vz_status map_file(const char *path, vz_mapped_file *out) {
  memset(out, 0, sizeof(*out));
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return vz_fail(errno == ENOENT ? VZ_ERR_NOT_FOUND : VZ_ERR_IO, "cannot open %s: %s", path,
                   strerror(errno));
  }
  struct stat sb;
  if (fstat(fd, &sb) != 0) {
    int e = errno;
    close(fd);
    return vz_fail(VZ_ERR_IO, "cannot stat %s: %s", path, strerror(e));
  }
  if (!S_ISREG(sb.st_mode)) {
    close(fd);
    return vz_fail(VZ_ERR_IO, "%s is not a regular file", path);
  }
  if ((uint64_t)sb.st_size > (uint64_t)SIZE_MAX) {
    close(fd);
    return vz_fail(VZ_ERR_IO, "%s is too large to map", path);
  }
  size_t size = (size_t)sb.st_size;
  const uint8_t *bytes = k_empty;
  if (size > 0) {
    void *p = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      close(fd);
      return vz_fail(e == ENOMEM ? VZ_ERR_OUT_OF_MEMORY : VZ_ERR_IO, "cannot map %s: %s", path,
                     strerror(e));
    }
    /* Checkpoints are read front to back once: ask for read-ahead. */
    posix_madvise(p, size, POSIX_MADV_SEQUENTIAL);
    bytes = p;
  }
  close(fd);
  out->path = strdup(path);
  if (!out->path) {
    if (size > 0) {
      munmap((void *)bytes, size);
    }
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory");
  }
  out->bytes = bytes;
  out->size = size;
  return VZ_OK;
}

static void unmap_file(vz_mapped_file *m) {
  if (m->size > 0 && m->bytes) {
    munmap((void *)m->bytes, m->size);
  }
  free(m->path);
  memset(m, 0, sizeof(*m));
}

/* ---- Opening ---- */

typedef enum file_kind {
  KIND_UNKNOWN,
  KIND_SAFETENSORS,
  KIND_TORCH_ZIP,
  KIND_TORCH_LEGACY,
  KIND_CKPT,
} file_kind;

static file_kind detect(const uint8_t *b, size_t n) {
  if (n >= 4 && memcmp(b, "PK\x03\x04", 4) == 0) {
    return KIND_TORCH_ZIP;
  }
  if (n >= 4 && b[0] == 0x80 && b[1] == 0x02 && b[2] == 0x8a && b[3] == 0x0a) {
    return KIND_TORCH_LEGACY;
  }
  if (n >= 9 && b[8] == '{') {
    uint64_t len = 0;
    for (int i = 7; i >= 0; i--) {
      len = len << 8 | b[i];
    }
    /* A .ckpt also starts with 0x0a; its first 8 bytes never read as a
     * length that fits the file. A safetensors header whose length does
     * not fit is still handed to that reader, which says what is wrong. */
    if (len <= n - 8 || b[0] != 0x0a) {
      return KIND_SAFETENSORS;
    }
  }
  if (n >= 1 && b[0] == 0x0a) { /* Checkpoint.value: field 1, wire type 2 */
    return KIND_CKPT;
  }
  return KIND_UNKNOWN;
}

static const char *kind_name(file_kind k) {
  switch (k) {
  case KIND_SAFETENSORS: return "safetensors";
  case KIND_TORCH_ZIP: return "torch-zip";
  case KIND_TORCH_LEGACY: return "torch-legacy";
  case KIND_CKPT: return "mindspore-ckpt";
  default: return "unknown";
  }
}

static bool ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && strcmp(s + n - m, suffix) == 0;
}

static bool looks_like_json(const vz_mapped_file *m) {
  for (size_t i = 0; i < m->size; i++) {
    uint8_t ch = m->bytes[i];
    if (ch == '{') {
      return true;
    }
    if (ch != ' ' && ch != '\t' && ch != '\n' && ch != '\r') {
      return false;
    }
  }
  return false;
}

static vz_status push_file(vz_weights *w, vz_mapped_file *m, size_t *index) {
  if (w->n_files == w->cap_files) {
    size_t cap = w->cap_files ? w->cap_files * 2 : 4;
    vz_mapped_file *p = realloc(w->files, cap * sizeof(*p));
    if (!p) {
      unmap_file(m);
      return vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory");
    }
    w->files = p;
    w->cap_files = cap;
  }
  *index = w->n_files;
  w->files[w->n_files++] = *m;
  return VZ_OK;
}

/* Reads every tensor of one mapped checkpoint file into w. */
static vz_status read_mapped(vz_weights *w, size_t fi, file_kind kind) {
  const vz_mapped_file *m = &w->files[fi];
  size_t before = w->list.count;
  vz_status st;
  switch (kind) {
  case KIND_SAFETENSORS: st = vz_read_safetensors(m, &w->list); break;
  case KIND_TORCH_ZIP: st = vz_read_torch_zip(m, &w->list); break;
  case KIND_TORCH_LEGACY: st = vz_read_torch_legacy(m, &w->list); break;
  case KIND_CKPT: st = vz_read_mindspore_ckpt(m, &w->list); break;
  default: st = vz_fail(VZ_ERR_FORMAT, "not a checkpoint vlzoo can read: %s", m->path); break;
  }
  if (st != VZ_OK) {
    if (kind != KIND_UNKNOWN) {
      vz_fail_context(st, "%s: ", m->path);
    }
    return st;
  }
  size_t *fo = realloc(w->file_of, (w->list.count ? w->list.count : 1) * sizeof(size_t));
  if (!fo) {
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory");
  }
  w->file_of = fo;
  for (size_t i = before; i < w->list.count; i++) {
    w->file_of[i] = fi;
  }
  if (!w->format) {
    w->format = kind_name(kind);
  }
  return VZ_OK;
}

static const char *file_path(const vz_weights *w, size_t tensor) {
  return w->n_files ? w->files[w->file_of[tensor]].path : "(memory)";
}

static vz_status build_table(vz_weights *w) {
  size_t n = w->list.count;
  w->n_slots = table_size_for(n);
  w->slots = calloc(w->n_slots, sizeof(size_t));
  if (!w->slots) {
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory indexing %zu tensors", n);
  }
  size_t mask = w->n_slots - 1;
  for (size_t i = 0; i < n; i++) {
    const char *name = w->list.items[i].info.name;
    size_t s = (size_t)hash_name(name) & mask;
    while (w->slots[s]) {
      size_t j = w->slots[s] - 1;
      if (strcmp(w->list.items[j].info.name, name) == 0) {
        return vz_fail(VZ_ERR_FORMAT, "duplicate tensor name '%s' (in %s and %s)", name,
                       file_path(w, j), file_path(w, i));
      }
      s = (s + 1) & mask;
    }
    w->slots[s] = i + 1;
  }
  return VZ_OK;
}

static bool safe_shard_name(const char *s) {
  if (!s[0] || s[0] == '/') {
    return false;
  }
  /* No ".." path component: shards live beside (or below) the index. */
  const char *p = s;
  while (*p) {
    const char *slash = strchr(p, '/');
    size_t len = slash ? (size_t)(slash - p) : strlen(p);
    if (len == 2 && p[0] == '.' && p[1] == '.') {
      return false;
    }
    p += len;
    if (*p == '/') {
      p++;
    }
  }
  return true;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static vz_status open_file(vz_weights *w, const char *path, bool allow_index);

/* A *.index.json: {"metadata": ..., "weight_map": {tensor: shard file}}. */
static vz_status open_index(vz_weights *w, const char *path, const vz_mapped_file *m) {
  if (m->size > 1000000000u) {
    return vz_fail(VZ_ERR_FORMAT, "%s: index file too large", path);
  }
  json_tokener *tok = json_tokener_new_ex(16);
  if (!tok) {
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory");
  }
  json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
  json_object *root = json_tokener_parse_ex(tok, (const char *)m->bytes, (int)m->size);
  enum json_tokener_error jerr = json_tokener_get_error(tok);
  json_tokener_free(tok);
  vz_status st = VZ_OK;
  const char **shards = NULL;
  char *full = NULL;
  json_object *map = NULL;
  if (!root || jerr != json_tokener_success) {
    st = vz_fail(
        VZ_ERR_FORMAT, "%s: not valid JSON: %s", path,
        json_tokener_error_desc(jerr == json_tokener_success ? json_tokener_continue : jerr));
    goto done;
  }
  if (!json_object_is_type(root, json_type_object) ||
      !json_object_object_get_ex(root, "weight_map", &map) ||
      !json_object_is_type(map, json_type_object)) {
    st = vz_fail(VZ_ERR_FORMAT, "%s: no \"weight_map\" object", path);
    goto done;
  }
  size_t n = (size_t)json_object_object_length(map);
  if (n == 0) {
    st = vz_fail(VZ_ERR_FORMAT, "%s: \"weight_map\" is empty", path);
    goto done;
  }
  shards = malloc(n * sizeof(*shards));
  if (!shards) {
    st = vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory");
    goto done;
  }
  size_t k = 0;
  json_object_object_foreach(map, tname, tfile) {
    if (!json_object_is_type(tfile, json_type_string) ||
        !safe_shard_name(json_object_get_string(tfile))) {
      st =
          vz_fail(VZ_ERR_FORMAT, "%s: tensor '%s' maps to an invalid shard file name", path, tname);
      goto done;
    }
    shards[k++] = json_object_get_string(tfile);
  }
  /* Each shard once, in name order (model-00001-of-00003 ... first). */
  qsort(shards, n, sizeof(*shards), cmp_str);
  const char *slash = strrchr(path, '/');
  size_t dir_len = slash ? (size_t)(slash - path) + 1 : 0;
  size_t first_file = w->n_files;
  for (size_t i = 0; i < n; i++) {
    if (i > 0 && strcmp(shards[i], shards[i - 1]) == 0) {
      continue;
    }
    size_t len = dir_len + strlen(shards[i]) + 1;
    char *p = realloc(full, len);
    if (!p) {
      st = vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory");
      goto done;
    }
    full = p;
    memcpy(full, path, dir_len);
    strcpy(full + dir_len, shards[i]);
    if ((st = open_file(w, full, false)) != VZ_OK) {
      vz_fail_context(st, "shard of %s: ", path);
      goto done;
    }
  }
  if ((st = build_table(w)) != VZ_OK) {
    goto done;
  }
  /* Every listed tensor must be in the shard the index names. */
  json_object_object_foreach(map, name, file) {
    size_t idx;
    if (vz_weights_find(w, name, &idx) != VZ_OK) {
      vz_clear_error();
      st = vz_fail(VZ_ERR_FORMAT, "%s lists tensor '%s' in %s, which does not hold it", path, name,
                   json_object_get_string(file));
      goto done;
    }
    const char *held = w->files[w->file_of[idx]].path;
    if (w->file_of[idx] < first_file || strlen(held) < dir_len ||
        strcmp(held + dir_len, json_object_get_string(file)) != 0) {
      st = vz_fail(VZ_ERR_FORMAT, "%s lists tensor '%s' in %s, but it is in %s", path, name,
                   json_object_get_string(file), held);
      goto done;
    }
  }
done:
  free(full);
  free(shards);
  json_object_put(root);
  return st;
}

static vz_status open_file(vz_weights *w, const char *path, bool allow_index) {
  vz_mapped_file m;
  vz_status st = map_file(path, &m);
  if (st != VZ_OK) {
    return st;
  }
  file_kind kind = ends_with(path, ".json") ? KIND_UNKNOWN : detect(m.bytes, m.size);
  if (kind == KIND_UNKNOWN && (ends_with(path, ".json") || looks_like_json(&m))) {
    if (!allow_index) {
      unmap_file(&m);
      return vz_fail(VZ_ERR_FORMAT, "%s: an index cannot name another index", path);
    }
    st = open_index(w, path, &m);
    unmap_file(&m); /* the index is parsed; only shards stay mapped */
    return st;
  }
  if (kind == KIND_UNKNOWN) {
    vz_status e = vz_fail(VZ_ERR_FORMAT, "not a checkpoint vlzoo can read: %s", path);
    unmap_file(&m);
    return e;
  }
  size_t fi = 0;
  if ((st = push_file(w, &m, &fi)) != VZ_OK) {
    return st;
  }
  return read_mapped(w, fi, kind);
}

/* An empty source with its opener as the one owner. */
static vz_weights *weights_new(void) {
  vz_weights *w = calloc(1, sizeof(*w));
  if (w) {
    atomic_init(&w->owners, 1);
  }
  return w;
}

vz_status vz_weights_open(const char *path, vz_weights **out) {
  if (!path || !out) {
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "vz_weights_open: NULL argument");
  }
  *out = NULL;
  struct stat sb;
  if (stat(path, &sb) != 0) {
    return vz_fail(errno == ENOENT ? VZ_ERR_NOT_FOUND : VZ_ERR_IO, "cannot open %s: %s", path,
                   strerror(errno));
  }
  vz_weights *w = weights_new();
  if (!w) {
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory");
  }
  vz_status st;
  if (S_ISDIR(sb.st_mode)) {
    static const char *const names[] = {"model.safetensors", "model.safetensors.index.json",
                                        "pytorch_model.bin", "pytorch_model.bin.index.json"};
    char *file = NULL;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]) && !file; i++) {
      size_t len = strlen(path) + 1 + strlen(names[i]) + 1;
      char *p = malloc(len);
      if (!p) {
        vz_weights_close(w);
        return vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory");
      }
      snprintf(p, len, "%s/%s", path, names[i]);
      struct stat fs;
      if (stat(p, &fs) == 0 && S_ISREG(fs.st_mode)) {
        file = p;
      } else {
        free(p);
      }
    }
    if (!file) {
      vz_weights_close(w);
      return vz_fail(VZ_ERR_NOT_FOUND,
                     "no checkpoint in directory %s (looked for model.safetensors, "
                     "model.safetensors.index.json, pytorch_model.bin, "
                     "pytorch_model.bin.index.json)",
                     path);
    }
    st = open_file(w, file, true);
    free(file);
  } else {
    st = open_file(w, path, true);
  }
  if (st == VZ_OK && !w->slots) {
    st = build_table(w);
  }
  if (st != VZ_OK) {
    vz_weights_close(w);
    return st;
  }
  *out = w;
  return VZ_OK;
}

vz_status vz_weights_from_list(vz_source_list *list, vz_weights **out) {
  if (!list || !out) {
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "vz_weights_from_list: NULL argument");
  }
  *out = NULL;
  vz_weights *w = weights_new();
  size_t *fo = calloc(list->count ? list->count : 1, sizeof(size_t));
  if (!w || !fo) {
    free(w);
    free(fo);
    vz_source_list_free(list);
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory");
  }
  w->list = *list;
  memset(list, 0, sizeof(*list));
  w->file_of = fo;
  w->format = "memory";
  vz_status st = build_table(w);
  if (st != VZ_OK) {
    vz_weights_close(w);
    return st;
  }
  *out = w;
  return VZ_OK;
}

vz_weights *vz_weights_retain(vz_weights *w) {
  if (w && atomic_fetch_add(&w->owners, 1) == 1) {
    /* The files are no longer read once front to back but used in place
     * (read-ahead as usual, and pages not the first to go under pressure). */
    for (size_t i = 0; i < w->n_files; i++) {
      if (w->files[i].size > 0) {
        posix_madvise((void *)w->files[i].bytes, w->files[i].size, POSIX_MADV_NORMAL);
      }
    }
  }
  return w;
}

void vz_weights_close(vz_weights *w) {
  if (!w || atomic_fetch_sub(&w->owners, 1) != 1) {
    return;
  }
  vz_source_list_free(&w->list);
  for (size_t i = 0; i < w->n_files; i++) {
    unmap_file(&w->files[i]);
  }
  free(w->files);
  free(w->file_of);
  free(w->slots);
  free(w);
}

const char *vz_weights_format(const vz_weights *w) {
  return w && w->format ? w->format : "unknown";
}

size_t vz_weights_count(const vz_weights *w) { return w ? w->list.count : 0; }

const char *vz_weights_metadata(const vz_weights *w, const char *key) {
  for (size_t i = 0; w && key && i < w->list.n_metadata; i++) {
    if (strcmp(w->list.metadata[i].key, key) == 0) {
      return w->list.metadata[i].value;
    }
  }
  return NULL;
}

const vz_weight_info *vz_weights_info(const vz_weights *w, size_t i) {
  if (!w || i >= w->list.count) {
    return NULL;
  }
  return &w->list.items[i].info;
}

vz_status vz_weights_find(const vz_weights *w, const char *name, size_t *index) {
  if (!w || !name || !index) {
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "vz_weights_find: NULL argument");
  }
  if (w->n_slots) {
    size_t mask = w->n_slots - 1;
    for (size_t s = (size_t)hash_name(name) & mask; w->slots[s]; s = (s + 1) & mask) {
      size_t j = w->slots[s] - 1;
      if (strcmp(w->list.items[j].info.name, name) == 0) {
        *index = j;
        return VZ_OK;
      }
    }
  }
  return vz_fail(VZ_ERR_NOT_FOUND, "no tensor named '%s'", name);
}

/* ---- Data ---- */

static bool is_contiguous(const vz_source_tensor *t) {
  int64_t expect = 1;
  for (int d = t->info.ndim - 1; d >= 0; d--) {
    if (t->info.shape[d] != 1 && t->stride[d] != expect) {
      return false;
    }
    expect *= t->info.shape[d]; /* numel fits in int64 (vz_source_tensor_size) */
  }
  return true;
}

static void gather(const vz_source_tensor *t, size_t elsize, uint8_t *dst) {
  int nd = t->info.ndim;
  if (nd == 0) {
    memcpy(dst, t->storage + (size_t)t->offset * elsize, elsize);
    return;
  }
  int64_t idx[VZ_WEIGHT_MAX_DIMS] = {0};
  int64_t inner = t->info.shape[nd - 1], inner_stride = t->stride[nd - 1];
  for (;;) {
    int64_t base = t->offset;
    for (int d = 0; d < nd - 1; d++) {
      base += idx[d] * t->stride[d];
    }
    if (inner_stride == 1) {
      memcpy(dst, t->storage + (size_t)base * elsize, (size_t)inner * elsize);
      dst += (size_t)inner * elsize;
    } else {
      for (int64_t k = 0; k < inner; k++) {
        memcpy(dst, t->storage + (size_t)(base + k * inner_stride) * elsize, elsize);
        dst += elsize;
      }
    }
    int d = nd - 2;
    for (; d >= 0; d--) {
      if (++idx[d] < t->info.shape[d]) {
        break;
      }
      idx[d] = 0;
    }
    if (d < 0) {
      return;
    }
  }
}

static void byteswap(uint8_t *p, size_t n, size_t elsize) {
  for (size_t i = 0; i + elsize <= n; i += elsize) {
    for (size_t a = 0, b = elsize - 1; a < b; a++, b--) {
      uint8_t tmp = p[i + a];
      p[i + a] = p[i + b];
      p[i + b] = tmp;
    }
  }
}

/* Where tensor t's bytes lie in the mapped file when they already are
 * contiguous and little-endian; NULL when they must be assembled. Bounds
 * are checked by the caller. */
static const uint8_t *bytes_in_place(const vz_source_tensor *t) {
  size_t elsize = vz_dtype_size(t->info.dtype);
  if (t->big_endian && elsize > 1) {
    return NULL;
  }
  if (t->n_pieces > 0) {
    return t->n_pieces == 1 ? t->pieces[0].bytes : NULL;
  }
  return t->storage && is_contiguous(t) ? t->storage + (size_t)t->offset * elsize : NULL;
}

static vz_status check_layout(const vz_source_tensor *t) {
  if (t->n_pieces == 0) {
    return vz_source_tensor_check_bounds(t);
  }
  size_t total = 0;
  for (size_t p = 0; p < t->n_pieces; p++) {
    if (__builtin_add_overflow(total, t->pieces[p].nbytes, &total)) {
      return vz_fail(VZ_ERR_FORMAT, "tensor '%s': pieces overflow", t->info.name);
    }
  }
  if (total != t->info.nbytes) {
    return vz_fail(VZ_ERR_FORMAT, "tensor '%s': pieces hold %zu bytes, its shape needs %zu",
                   t->info.name, total, t->info.nbytes);
  }
  return VZ_OK;
}

/* The bytes assembled into a new buffer: pieces joined or a strided view
 * gathered, then byte-swapped when stored big-endian. */
static uint8_t *assemble(const vz_source_tensor *t) {
  size_t n = t->info.nbytes, elsize = vz_dtype_size(t->info.dtype);
  uint8_t *buf = malloc(n);
  if (!buf) {
    return NULL;
  }
  if (t->n_pieces > 0) {
    size_t at = 0;
    for (size_t p = 0; p < t->n_pieces; p++) {
      if (t->pieces[p].nbytes) {
        memcpy(buf + at, t->pieces[p].bytes, t->pieces[p].nbytes);
        at += t->pieces[p].nbytes;
      }
    }
  } else {
    gather(t, elsize, buf);
  }
  if (t->big_endian && elsize > 1) {
    byteswap(buf, n, elsize);
  }
  return buf;
}

vz_status vz_weights_data(vz_weights *w, size_t i, const void **data, size_t *nbytes) {
  if (!w || !data) {
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "vz_weights_data: NULL argument");
  }
  if (i >= w->list.count) {
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "vz_weights_data: index %zu out of range (%zu tensors)",
                   i, w->list.count);
  }
  vz_source_tensor *t = &w->list.items[i];
  size_t n = t->info.nbytes;
  if (nbytes) {
    *nbytes = n;
  }
  if (t->assembled) {
    *data = t->assembled;
    return VZ_OK;
  }
  if (n == 0) {
    *data = k_empty;
    return VZ_OK;
  }
  vz_status st = check_layout(t);
  if (st != VZ_OK) {
    return st;
  }
  const uint8_t *mapped = bytes_in_place(t);
  if (mapped) {
    *data = mapped;
    return VZ_OK;
  }
  t->assembled = assemble(t);
  if (!t->assembled) {
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory assembling tensor '%s' (%zu bytes)",
                   t->info.name, n);
  }
  *data = t->assembled;
  return VZ_OK;
}

bool vz_weights_mapped(const vz_weights *w, size_t i) {
  if (!w || i >= w->list.count) {
    return false;
  }
  const vz_source_tensor *t = &w->list.items[i];
  return t->info.nbytes > 0 && !t->assembled && bytes_in_place(t);
}

/* Drops the whole pages inside [bytes, bytes + n) from this process. */
static void drop_pages(const uint8_t *bytes, size_t n) {
  long page = sysconf(_SC_PAGESIZE);
  if (page <= 0 || n == 0)
    return;
  uintptr_t begin = ((uintptr_t)bytes + (uintptr_t)page - 1) / (uintptr_t)page * (uintptr_t)page;
  uintptr_t end = ((uintptr_t)bytes + n) / (uintptr_t)page * (uintptr_t)page;
  if (end > begin)
    madvise((void *)begin, end - begin, MADV_DONTNEED);
}

void vz_weights_release(vz_weights *w, size_t i) {
  if (!w || i >= w->list.count)
    return;
  vz_source_tensor *t = &w->list.items[i];
  free(t->assembled);
  t->assembled = NULL;
  for (size_t p = 0; p < t->n_pieces; p++)
    drop_pages(t->pieces[p].bytes, t->pieces[p].nbytes);
  if (t->n_pieces == 0 && t->storage && is_contiguous(t))
    drop_pages(t->storage + (size_t)t->offset * vz_dtype_size(t->info.dtype), t->info.nbytes);
}

/* ---- Writers ---- */

struct vz_weights_writer {
  char *path, *tmp_path;
  int fd;
  vz_weights_file_format format;
  vz_writer_entry *entries;
  size_t n, cap;
  size_t *slots;
  size_t n_slots;
  vz_source_list metadata; /* only its metadata is used */
};

static void writer_free(vz_weights_writer *wr) {
  for (size_t i = 0; i < wr->n; i++) {
    free(wr->entries[i].name);
  }
  free(wr->entries);
  free(wr->slots);
  vz_source_list_clear_metadata(&wr->metadata);
  free(wr->path);
  free(wr->tmp_path);
  free(wr);
}

vz_status vz_weights_writer_open(const char *path, vz_weights_file_format format,
                                 vz_weights_writer **out) {
  if (!path || !out || !path[0]) {
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "vz_weights_writer_open: no path");
  }
  *out = NULL;
  if (format != VZ_FORMAT_MINDSPORE_CKPT && format != VZ_FORMAT_SAFETENSORS) {
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "vz_weights_writer_open: unknown format %d",
                   (int)format);
  }
  vz_weights_writer *wr = calloc(1, sizeof(*wr));
  if (!wr) {
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory");
  }
  wr->fd = -1;
  wr->format = format;
  wr->path = strdup(path);
  size_t len = strlen(path) + sizeof(".tmp.XXXXXX");
  wr->tmp_path = malloc(len);
  if (!wr->path || !wr->tmp_path) {
    writer_free(wr);
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory");
  }
  snprintf(wr->tmp_path, len, "%s.tmp.XXXXXX", path);
  /* The temporary file is made now so that a bad directory fails early. */
  wr->fd = mkstemp(wr->tmp_path);
  if (wr->fd < 0) {
    int e = errno;
    writer_free(wr);
    return vz_fail(VZ_ERR_IO, "cannot create a file next to %s: %s", path, strerror(e));
  }
  fcntl(wr->fd, F_SETFD, FD_CLOEXEC);
  fchmod(wr->fd, 0644);
  *out = wr;
  return VZ_OK;
}

static vz_status writer_grow_table(vz_weights_writer *wr) {
  size_t n_slots = table_size_for(wr->n + 1);
  if (n_slots <= wr->n_slots) {
    return VZ_OK;
  }
  size_t *slots = calloc(n_slots, sizeof(size_t));
  if (!slots) {
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory");
  }
  for (size_t i = 0; i < wr->n; i++) {
    size_t s = (size_t)hash_name(wr->entries[i].name) & (n_slots - 1);
    while (slots[s]) {
      s = (s + 1) & (n_slots - 1);
    }
    slots[s] = i + 1;
  }
  free(wr->slots);
  wr->slots = slots;
  wr->n_slots = n_slots;
  return VZ_OK;
}

vz_status vz_weights_writer_add(vz_weights_writer *wr, const char *name, vz_dtype dtype, int ndim,
                                const int64_t *shape, const void *data, size_t nbytes) {
  if (!wr || !name || (ndim > 0 && !shape)) {
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "vz_weights_writer_add: NULL argument");
  }
  vz_source_tensor t;
  memset(&t, 0, sizeof(t));
  t.info.name = name;
  t.info.dtype = dtype;
  t.info.ndim = ndim;
  if (ndim > 0 && ndim <= VZ_WEIGHT_MAX_DIMS) {
    memcpy(t.info.shape, shape, sizeof(int64_t) * (size_t)ndim);
  }
  vz_status st = vz_source_tensor_size(&t);
  if (st != VZ_OK) {
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "vz_weights_writer_add: %s", vz_last_error());
  }
  if (t.info.nbytes != nbytes) {
    return vz_fail(VZ_ERR_INVALID_ARGUMENT,
                   "vz_weights_writer_add: tensor '%s' has %zu bytes, its shape needs %zu", name,
                   nbytes, t.info.nbytes);
  }
  if (nbytes > 0 && !data) {
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "vz_weights_writer_add: tensor '%s' has no data", name);
  }
  if ((st = writer_grow_table(wr)) != VZ_OK) {
    return st;
  }
  size_t mask = wr->n_slots - 1;
  size_t s = (size_t)hash_name(name) & mask;
  for (; wr->slots[s]; s = (s + 1) & mask) {
    if (strcmp(wr->entries[wr->slots[s] - 1].name, name) == 0) {
      return vz_fail(VZ_ERR_INVALID_ARGUMENT, "vz_weights_writer_add: tensor '%s' added twice",
                     name);
    }
  }
  if (wr->n == wr->cap) {
    size_t cap = wr->cap ? wr->cap * 2 : 16;
    vz_writer_entry *p = realloc(wr->entries, cap * sizeof(*p));
    if (!p) {
      return vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory");
    }
    wr->entries = p;
    wr->cap = cap;
  }
  vz_writer_entry *e = &wr->entries[wr->n];
  memset(e, 0, sizeof(*e));
  e->name = strdup(name);
  if (!e->name) {
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory");
  }
  e->dtype = dtype;
  e->ndim = ndim;
  memcpy(e->shape, t.info.shape, sizeof(e->shape));
  e->data = data;
  e->nbytes = nbytes;
  wr->slots[s] = ++wr->n;
  return VZ_OK;
}

vz_status vz_weights_writer_set_metadata(vz_weights_writer *wr, const char *key,
                                         const char *value) {
  if (!wr || !key || !value) {
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "vz_weights_writer_set_metadata: NULL argument");
  }
  if (wr->format != VZ_FORMAT_SAFETENSORS) {
    return vz_fail(VZ_ERR_UNSUPPORTED, "%s: a MindSpore .ckpt has no place for metadata ('%s')",
                   wr->path, key);
  }
  vz_source_list *m = &wr->metadata;
  size_t i = 0;
  while (i < m->n_metadata && strcmp(m->metadata[i].key, key) != 0) {
    i++;
  }
  char *copy = strdup(value);
  if (!copy) {
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory");
  }
  if (i < m->n_metadata) {
    free(m->metadata[i].value);
    m->metadata[i].value = copy;
    return VZ_OK;
  }
  vz_metadata_entry *grown = realloc(m->metadata, (i + 1) * sizeof *grown);
  char *key_copy = strdup(key);
  if (grown) {
    m->metadata = grown;
  }
  if (!grown || !key_copy) {
    free(copy);
    free(key_copy);
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory");
  }
  grown[i] = (vz_metadata_entry){key_copy, copy};
  m->n_metadata++;
  return VZ_OK;
}

vz_status vz_weights_writer_commit(vz_weights_writer *wr) {
  if (!wr) {
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "vz_weights_writer_commit: NULL writer");
  }
  vz_status st = VZ_OK;
  FILE *f = fdopen(wr->fd, "wb");
  if (!f) {
    st = vz_fail(VZ_ERR_IO, "cannot write %s: %s", wr->tmp_path, strerror(errno));
    close(wr->fd);
    goto fail;
  }
  wr->fd = -1;
  st = wr->format == VZ_FORMAT_SAFETENSORS
           ? vz_write_safetensors(f, wr->entries, wr->n, wr->metadata.metadata,
                                  wr->metadata.n_metadata)
           : vz_write_mindspore_ckpt(f, wr->entries, wr->n);
  if (st == VZ_OK && (fflush(f) != 0 || fsync(fileno(f)) != 0)) {
    st = vz_fail(VZ_ERR_IO, "cannot write %s: %s", wr->tmp_path, strerror(errno));
  }
  if (st != VZ_OK) {
    vz_fail_context(st, "%s: ", wr->path);
  }
  if (fclose(f) != 0 && st == VZ_OK) {
    st = vz_fail(VZ_ERR_IO, "cannot write %s: %s", wr->tmp_path, strerror(errno));
  }
  if (st != VZ_OK) {
    goto fail;
  }
  if (rename(wr->tmp_path, wr->path) != 0) {
    st = vz_fail(VZ_ERR_IO, "cannot rename %s to %s: %s", wr->tmp_path, wr->path, strerror(errno));
    goto fail;
  }
  /* Make the rename itself durable (best effort). */
  const char *slash = strrchr(wr->path, '/');
  if (slash) {
    wr->path[slash == wr->path ? 1 : slash - wr->path] = '\0';
  }
  int dfd = open(slash ? wr->path : ".", O_RDONLY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  writer_free(wr);
  return VZ_OK;
fail:
  unlink(wr->tmp_path);
  writer_free(wr);
  return st;
}

void vz_weights_writer_abort(vz_weights_writer *wr) {
  if (!wr) {
    return;
  }
  if (wr->fd >= 0) {
    close(wr->fd);
  }
  unlink(wr->tmp_path);
  writer_free(wr);
}

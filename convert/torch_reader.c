/* PyTorch checkpoints: the zip format of torch.save (torch >= 1.6) and the
 * older "legacy" stream of pickles followed by raw storages. Both come down
 * to one pickle (read by convert/pickle.c, which refuses anything but
 * tensors, containers and scalars) whose persistent ids name storages, and
 * tensors that are strided views of those storages. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert/pickle.h"
#include "convert/source.h"
#include "convert/zip.h"

_Static_assert(VZ_PICKLE_MAX_DIMS == VZ_WEIGHT_MAX_DIMS, "tensor rank limits differ");

enum {
  MAX_NAME = 1024,   /* bytes in a tensor name */
  MAX_KEY = 256,     /* bytes in a storage key */
  MAX_PREFIX = 1024, /* bytes in the archive's directory name */
  LEGACY_PROTOCOL = 1001,
};

/* ---- Storages ---- */

/* One storage as a persistent id describes it. */
typedef struct storage_ref {
  const char *key;
  size_t key_len;
  bool untyped;   /* torch.UntypedStorage: numel counts bytes */
  vz_dtype dtype; /* of a typed storage */
  int64_t numel;
  bool has_view; /* legacy storage views: (view_key, offset, size) */
  int64_t view_offset, view_size;
} storage_ref;

static size_t storage_elsize(const storage_ref *s) {
  return s->untyped ? 1 : vz_dtype_size(s->dtype);
}

/* Reads ('storage', type, key, location, numel[, view_metadata]); legacy
 * files have the sixth item. */
static vz_status parse_persid(const vz_pk_obj *persid, bool legacy, storage_ref *s) {
  memset(s, 0, sizeof *s);
  const vz_pk_obj *pid = persid->u.persid;
  size_t want = legacy ? 6 : 5;
  if (pid->type != VZ_PK_TUPLE || pid->u.seq.count != want) {
    return vz_fail(VZ_ERR_FORMAT, "persistent id is a %s of %zu items, not a %zu-tuple",
                   vz_pk_type_name(pid->type), vz_pk_seq_count(pid), want);
  }
  const vz_pk_obj *const *a = (const vz_pk_obj *const *)pid->u.seq.items;
  if (!vz_pk_is_str(a[0], "storage")) {
    return vz_fail(VZ_ERR_FORMAT, "persistent id does not start with 'storage'");
  }
  if (a[1]->type != VZ_PK_GLOBAL || (a[1]->u.global.kind != VZ_PKG_TYPED_STORAGE &&
                                     a[1]->u.global.kind != VZ_PKG_UNTYPED_STORAGE)) {
    return vz_fail(VZ_ERR_FORMAT, "persistent id names a %s instead of a storage class",
                   a[1]->type == VZ_PK_GLOBAL ? a[1]->u.global.name : vz_pk_type_name(a[1]->type));
  }
  s->untyped = a[1]->u.global.kind == VZ_PKG_UNTYPED_STORAGE;
  s->dtype = s->untyped ? VZ_U8 : a[1]->u.global.dtype;
  if (a[2]->type != VZ_PK_STR || a[2]->u.str.len == 0 || a[2]->u.str.len > MAX_KEY ||
      memchr(a[2]->u.str.data, '\0', a[2]->u.str.len)) {
    return vz_fail(VZ_ERR_FORMAT, "storage key is not a short string");
  }
  s->key = a[2]->u.str.data;
  s->key_len = a[2]->u.str.len;
  if (a[3]->type != VZ_PK_STR && a[3]->type != VZ_PK_BYTES) {
    return vz_fail(VZ_ERR_FORMAT, "storage '%s': location is a %s", s->key,
                   vz_pk_type_name(a[3]->type));
  }
  if (a[4]->type != VZ_PK_INT || a[4]->u.i < 0) {
    return vz_fail(VZ_ERR_FORMAT, "storage '%s': element count is not a non-negative int", s->key);
  }
  s->numel = a[4]->u.i;
  if (legacy && a[5]->type != VZ_PK_NONE) {
    const vz_pk_obj *v = a[5];
    if (v->type != VZ_PK_TUPLE || v->u.seq.count != 3 || v->u.seq.items[1]->type != VZ_PK_INT ||
        v->u.seq.items[2]->type != VZ_PK_INT || v->u.seq.items[1]->u.i < 0 ||
        v->u.seq.items[2]->u.i < 0) {
      return vz_fail(VZ_ERR_FORMAT, "storage '%s': malformed view metadata", s->key);
    }
    s->has_view = true;
    s->view_offset = v->u.seq.items[1]->u.i;
    s->view_size = v->u.seq.items[2]->u.i;
    if (s->view_offset > s->numel || s->view_size > s->numel - s->view_offset) {
      return vz_fail(
          VZ_ERR_FORMAT, "storage '%s': view of %lld elements at %lld exceeds its %lld elements",
          s->key, (long long)s->view_size, (long long)s->view_offset, (long long)s->numel);
    }
  }
  return VZ_OK;
}

/* numel * elsize as a size_t, failing on overflow. */
static vz_status storage_size(const storage_ref *s, size_t *bytes) {
  uint64_t b;
  if (__builtin_mul_overflow((uint64_t)s->numel, (uint64_t)storage_elsize(s), &b) || b > SIZE_MAX ||
      b > (uint64_t)INT64_MAX) {
    return vz_fail(VZ_ERR_FORMAT, "storage '%s': %lld elements overflow its size", s->key,
                   (long long)s->numel);
  }
  *bytes = (size_t)b;
  return VZ_OK;
}

/* ---- Walking the object tree ---- */

typedef struct reader reader;
/* Finds the bytes of storage s: where they start and how many it has. */
typedef vz_status (*resolve_fn)(reader *r, const storage_ref *s, const uint8_t **bytes,
                                size_t *nbytes);

struct reader {
  vz_source_list *out;
  size_t first; /* out->count before this file */
  bool legacy;
  bool big_endian;
  resolve_fn resolve;
  void *ctx;
  size_t budget; /* values a walk may still visit (shared values count again) */
  char name[MAX_NAME + 1];
  size_t name_len;
  int unnamable; /* > 0 under a dict key that is neither str nor int */
  const char *unnamable_type;
};

static vz_status emit_tensor(reader *r, const vz_pk_obj *o) {
  if (r->unnamable) {
    return vz_fail(VZ_ERR_FORMAT, "a tensor sits under a dict key of type %s, which cannot name it",
                   r->unnamable_type);
  }
  const char *name = r->name_len ? r->name : "tensor";
  storage_ref s;
  vz_status st = parse_persid(o->u.tensor->storage, r->legacy, &s);
  if (st) {
    return vz_fail_context(st, "tensor '%s': ", name);
  }
  vz_source_tensor t;
  memset(&t, 0, sizeof t);
  if (o->u.tensor->has_dtype) {
    if (!s.untyped && s.dtype != o->u.tensor->dtype) {
      return vz_fail(VZ_ERR_FORMAT, "tensor '%s': dtype %s over a storage of %s", name,
                     vz_dtype_name(o->u.tensor->dtype), vz_dtype_name(s.dtype));
    }
    t.info.dtype = o->u.tensor->dtype;
  } else if (s.untyped) {
    return vz_fail(VZ_ERR_FORMAT, "tensor '%s': an untyped storage without a dtype", name);
  } else {
    t.info.dtype = s.dtype;
  }
  st = r->resolve(r, &s, &t.storage, &t.storage_bytes);
  if (st) {
    return vz_fail_context(st, "tensor '%s': ", name);
  }
  t.info.ndim = o->u.tensor->ndim;
  memcpy(t.info.shape, o->u.tensor->shape, sizeof t.info.shape);
  memcpy(t.stride, o->u.tensor->stride, sizeof t.stride);
  t.offset = o->u.tensor->offset;
  t.big_endian = r->big_endian;
  t.info.name = malloc(strlen(name) + 1);
  if (!t.info.name) {
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory naming tensor '%s'", name);
  }
  memcpy((char *)t.info.name, name, strlen(name) + 1);
  st = vz_source_tensor_size(&t);
  if (st == VZ_OK) {
    st = vz_source_tensor_check_bounds(&t);
  }
  if (st == VZ_OK) {
    st = vz_source_list_push(r->out, &t);
  }
  if (st) {
    free((char *)t.info.name);
  }
  return st;
}

/* Appends ".segment" (or "segment" at the start) to the current name. */
static vz_status name_push(reader *r, const char *seg, size_t len) {
  size_t dot = r->name_len ? 1 : 0;
  if (len > MAX_NAME - r->name_len - dot) {
    return vz_fail(VZ_ERR_FORMAT, "a tensor name longer than %d bytes", MAX_NAME);
  }
  if (memchr(seg, '\0', len)) {
    return vz_fail(VZ_ERR_FORMAT, "a dict key holds a NUL byte");
  }
  if (dot) {
    r->name[r->name_len++] = '.';
  }
  memcpy(r->name + r->name_len, seg, len);
  r->name_len += len;
  r->name[r->name_len] = '\0';
  return VZ_OK;
}

static vz_status walk(reader *r, const vz_pk_obj *o, int depth);

static vz_status walk_child(reader *r, const vz_pk_obj *key, long long index, const vz_pk_obj *v,
                            int depth) {
  /* Scalars hold no tensor: skip them without touching the name. */
  if (v->type != VZ_PK_TENSOR && v->type != VZ_PK_DICT && v->type != VZ_PK_LIST &&
      v->type != VZ_PK_TUPLE) {
    return VZ_OK;
  }
  size_t saved = r->name_len;
  char num[32];
  vz_status st;
  bool odd_key = false;
  if (!key) {
    snprintf(num, sizeof num, "%lld", index);
    st = name_push(r, num, strlen(num));
  } else if (key->type == VZ_PK_STR) {
    st = name_push(r, key->u.str.data, key->u.str.len);
  } else if (key->type == VZ_PK_INT) {
    snprintf(num, sizeof num, "%lld", (long long)key->u.i);
    st = name_push(r, num, strlen(num));
  } else {
    odd_key = true;
    r->unnamable++;
    r->unnamable_type = vz_pk_type_name(key->type);
    st = name_push(r, "?", 1);
  }
  if (st == VZ_OK) {
    st = walk(r, v, depth + 1);
  }
  if (odd_key) {
    r->unnamable--;
  }
  r->name_len = saved;
  r->name[saved] = '\0';
  return st;
}

static vz_status walk(reader *r, const vz_pk_obj *o, int depth) {
  if (depth > VZ_PICKLE_MAX_DEPTH) {
    return vz_fail(VZ_ERR_FORMAT, "values nested more than %d levels deep (or cyclic)",
                   VZ_PICKLE_MAX_DEPTH);
  }
  if (r->budget == 0) {
    return vz_fail(VZ_ERR_FORMAT, "the pickle shares values so often that walking it would "
                                  "not end (a reference bomb)");
  }
  r->budget--;
  vz_status st = VZ_OK;
  switch (o->type) {
  case VZ_PK_TENSOR: return emit_tensor(r, o);
  case VZ_PK_DICT:
    for (size_t i = 0; i < o->u.dict.count && st == VZ_OK; i++) {
      st = walk_child(r, o->u.dict.keys[i], 0, o->u.dict.values[i], depth);
    }
    return st;
  case VZ_PK_LIST:
  case VZ_PK_TUPLE:
    for (size_t i = 0; i < o->u.seq.count && st == VZ_OK; i++) {
      st = walk_child(r, NULL, (long long)i, o->u.seq.items[i], depth);
    }
    return st;
  default: return VZ_OK;
  }
}

static int compare_tensor_names(const void *a, const void *b) {
  const vz_source_tensor *x = *(const vz_source_tensor *const *)a;
  const vz_source_tensor *y = *(const vz_source_tensor *const *)b;
  return strcmp(x->info.name, y->info.name);
}

static vz_status check_unique_names(reader *r) {
  size_t n = r->out->count - r->first;
  if (n < 2) {
    return VZ_OK;
  }
  const vz_source_tensor **v = malloc(n * sizeof *v);
  if (!v) {
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory checking %zu tensor names", n);
  }
  for (size_t i = 0; i < n; i++) {
    v[i] = &r->out->items[r->first + i];
  }
  qsort(v, n, sizeof *v, compare_tensor_names);
  vz_status st = VZ_OK;
  for (size_t i = 1; i < n && st == VZ_OK; i++) {
    if (strcmp(v[i - 1]->info.name, v[i]->info.name) == 0) {
      st = vz_fail(VZ_ERR_FORMAT, "two tensors are named '%s'", v[i]->info.name);
    }
  }
  free(v);
  return st;
}

/* A LAVIS training checkpoint keeps the weights under "model" next to
 * optimizer, scaler, config and epoch entries: only "model" is read. */
static const vz_pk_obj *tensor_root(const vz_pk_obj *root) {
  const vz_pk_obj *model = vz_pk_dict_get(root, "model");
  if (model && model->type == VZ_PK_DICT) {
    for (size_t i = 0; i < model->u.dict.count; i++) {
      if (model->u.dict.values[i]->type == VZ_PK_TENSOR) {
        return model;
      }
    }
  }
  return root;
}

/* Lists the tensors of the pickle; on failure the list is left as it was. */
static vz_status collect(reader *r, const vz_pickle *p) {
  r->first = r->out->count;
  size_t objects = vz_pickle_object_count(p);
  r->budget = objects > SIZE_MAX / 4 - 4096 ? SIZE_MAX : 4 * objects + 4096;
  r->name_len = 0;
  r->name[0] = '\0';
  vz_status st = walk(r, tensor_root(vz_pickle_root(p)), 0);
  if (st == VZ_OK) {
    st = check_unique_names(r);
  }
  if (st) {
    vz_source_list_truncate(r->out, r->first);
  }
  return st;
}

/* ---- Zip format ---- */

typedef struct zip_ctx {
  vz_zip zip;
  char prefix[MAX_PREFIX + 1];
} zip_ctx;

static vz_status zip_resolve(reader *r, const storage_ref *s, const uint8_t **bytes,
                             size_t *nbytes) {
  zip_ctx *z = r->ctx;
  if (s->has_view) {
    return vz_fail(VZ_ERR_FORMAT, "storage views do not exist in the zip format");
  }
  char entry_name[MAX_PREFIX + MAX_KEY + 16];
  snprintf(entry_name, sizeof entry_name, "%s/data/%s", z->prefix, s->key);
  const vz_zip_entry *e = vz_zip_find(&z->zip, entry_name);
  if (!e) {
    return vz_fail(VZ_ERR_FORMAT, "storage '%s' has no record %s in the archive", s->key,
                   entry_name);
  }
  const uint8_t *data = NULL;
  size_t size = 0, want = 0;
  vz_status st = vz_zip_entry_data(&z->zip, e, &data, &size);
  if (st == VZ_OK) {
    st = storage_size(s, &want);
  }
  if (st) {
    return st;
  }
  if (want > size) {
    return vz_fail(VZ_ERR_FORMAT,
                   "storage '%s' needs %zu bytes (%lld elements of %s) but its record %s holds "
                   "%zu",
                   s->key, want, (long long)s->numel,
                   s->untyped ? "bytes" : vz_dtype_name(s->dtype), entry_name, size);
  }
  *bytes = data;
  *nbytes = want;
  return VZ_OK;
}

vz_status vz_read_torch_zip(const vz_mapped_file *f, vz_source_list *out) {
  if (!f || !out || (!f->bytes && f->size)) {
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "vz_read_torch_zip: NULL argument");
  }
  zip_ctx *z = calloc(1, sizeof *z);
  if (!z) {
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory");
  }
  vz_pickle *p = NULL;
  vz_status st = vz_zip_open(f->bytes, f->size, &z->zip);
  if (st == VZ_OK && z->zip.count == 0) {
    st = vz_fail(VZ_ERR_FORMAT, "the archive is empty");
  }
  /* The directory of the first entry is the prefix of every record. */
  if (st == VZ_OK) {
    const vz_zip_entry *first = &z->zip.entries[0];
    const char *slash = memchr(first->name, '/', first->name_len);
    size_t len = slash ? (size_t)(slash - first->name) : 0;
    if (!slash || len == 0 || len > MAX_PREFIX || memchr(first->name, '\0', len)) {
      st = vz_fail(VZ_ERR_FORMAT, "the first record of the archive is not inside a directory");
    } else {
      memcpy(z->prefix, first->name, len);
      z->prefix[len] = '\0';
    }
  }
  char name[MAX_PREFIX + 32];
  const uint8_t *pkl = NULL;
  size_t pkl_size = 0;
  if (st == VZ_OK) {
    snprintf(name, sizeof name, "%s/data.pkl", z->prefix);
    const vz_zip_entry *e = vz_zip_find(&z->zip, name);
    if (!e) {
      snprintf(name, sizeof name, "%s/constants.pkl", z->prefix);
      st = vz_zip_find(&z->zip, name)
               ? vz_fail(VZ_ERR_UNSUPPORTED,
                         "a TorchScript archive (no %s/data.pkl): save the state_dict instead",
                         z->prefix)
               : vz_fail(VZ_ERR_FORMAT, "the archive has no %s/data.pkl", z->prefix);
    } else {
      st = vz_zip_entry_data(&z->zip, e, &pkl, &pkl_size);
    }
  }
  bool big_endian = false;
  if (st == VZ_OK) {
    snprintf(name, sizeof name, "%s/byteorder", z->prefix);
    const vz_zip_entry *e = vz_zip_find(&z->zip, name);
    const uint8_t *bo = NULL;
    size_t bo_size = 0;
    if (e && (st = vz_zip_entry_data(&z->zip, e, &bo, &bo_size)) == VZ_OK) {
      while (bo_size > 0 && (bo[bo_size - 1] == '\n' || bo[bo_size - 1] == '\r')) {
        bo_size--;
      }
      if (bo_size == 3 && memcmp(bo, "big", 3) == 0) {
        big_endian = true;
      } else if (!(bo_size == 6 && memcmp(bo, "little", 6) == 0)) {
        st = vz_fail(VZ_ERR_FORMAT, "%s is neither 'little' nor 'big'", name);
      }
    }
  }
  if (st == VZ_OK) {
    size_t used = 0;
    st = vz_pickle_parse(pkl, pkl_size, &p, &used);
    if (st) {
      vz_fail_context(st, "%s/data.pkl: ", z->prefix);
    }
  }
  if (st == VZ_OK) {
    reader r = {.out = out, .big_endian = big_endian, .resolve = zip_resolve, .ctx = z};
    st = collect(&r, p);
  }
  vz_pickle_free(p);
  vz_zip_close(&z->zip);
  free(z);
  return st;
}

/* ---- Legacy format ---- */

typedef struct legacy_storage {
  const char *key; /* owned by the object pickle */
  vz_dtype dtype;
  bool untyped;
  int64_t numel;
  const uint8_t *bytes; /* set when the data section is read */
  size_t nbytes;
} legacy_storage;

typedef struct legacy_ctx {
  legacy_storage *items;
  size_t count;
} legacy_ctx;

static int compare_legacy(const void *a, const void *b) {
  return strcmp(((const legacy_storage *)a)->key, ((const legacy_storage *)b)->key);
}

static legacy_storage *legacy_lookup(legacy_ctx *c, const char *key) {
  legacy_storage k;
  memset(&k, 0, sizeof k);
  k.key = key;
  return bsearch(&k, c->items, c->count, sizeof *c->items, compare_legacy);
}

static vz_status legacy_resolve(reader *r, const storage_ref *s, const uint8_t **bytes,
                                size_t *nbytes) {
  legacy_storage *ls = legacy_lookup(r->ctx, s->key);
  if (!ls || !ls->bytes) {
    return vz_fail(VZ_ERR_FORMAT, "storage '%s' has no data in the file", s->key);
  }
  size_t elsize = storage_elsize(s);
  if (!s->has_view) {
    *bytes = ls->bytes;
    *nbytes = ls->nbytes;
    return VZ_OK;
  }
  /* Checked against numel when the storage was registered. */
  *bytes = ls->bytes + (size_t)s->view_offset * elsize;
  *nbytes = (size_t)s->view_size * elsize;
  return VZ_OK;
}

/* The first pickle of a legacy file is the magic number
 * 0x1950a86a20f9469cfc6c as a LONG1 (PROTO, optional FRAME, LONG1, STOP). */
static vz_status legacy_magic(const uint8_t *b, size_t size, size_t *used) {
  static const uint8_t magic[10] = {0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
  size_t p = 0;
  if (size >= 2 && b[0] == 0x80 && b[1] >= 2 && b[1] <= 5) {
    p = 2;
  }
  if (size - p >= 9 && b[p] == 0x95) {
    p += 9;
  }
  if (size - p < 13 || b[p] != 0x8a || b[p + 1] != 10 || memcmp(b + p + 2, magic, 10) != 0 ||
      b[p + 12] != '.') {
    return vz_fail(VZ_ERR_FORMAT,
                   "not a legacy PyTorch file: the magic number 0x1950a86a20f9469cfc6c is "
                   "missing (wrong magic)");
  }
  *used = p + 13;
  return VZ_OK;
}

static vz_status check_sys_info(const vz_pk_obj *info) {
  if (!info || info->type != VZ_PK_DICT) {
    return vz_fail(VZ_ERR_FORMAT, "legacy PyTorch file: sys_info is not a dict");
  }
  const vz_pk_obj *le = vz_pk_dict_get(info, "little_endian");
  if (!le || le->type != VZ_PK_BOOL) {
    return vz_fail(VZ_ERR_FORMAT, "legacy PyTorch file: sys_info lacks little_endian");
  }
  if (!le->u.b) {
    return vz_fail(VZ_ERR_UNSUPPORTED, "legacy PyTorch file written on a big-endian machine");
  }
  const vz_pk_obj *pv = vz_pk_dict_get(info, "protocol_version");
  if (pv && (pv->type != VZ_PK_INT || pv->u.i != LEGACY_PROTOCOL)) {
    return vz_fail(VZ_ERR_FORMAT, "legacy PyTorch file: sys_info has another protocol_version");
  }
  const vz_pk_obj *sizes = vz_pk_dict_get(info, "type_sizes");
  if (sizes) {
    static const struct {
      const char *name;
      int64_t lo, hi;
    } expect[] = {{"short", 2, 2}, {"int", 4, 4}, {"long", 4, 8}};
    if (sizes->type != VZ_PK_DICT) {
      return vz_fail(VZ_ERR_FORMAT, "legacy PyTorch file: type_sizes is not a dict");
    }
    for (size_t i = 0; i < sizeof expect / sizeof *expect; i++) {
      const vz_pk_obj *v = vz_pk_dict_get(sizes, expect[i].name);
      if (v && (v->type != VZ_PK_INT || v->u.i < expect[i].lo || v->u.i > expect[i].hi)) {
        return vz_fail(VZ_ERR_FORMAT, "legacy PyTorch file: unexpected size of C %s",
                       expect[i].name);
      }
    }
  }
  return VZ_OK;
}

/* Registers every storage the object pickle names, with one dtype and one
 * element count per key. */
static vz_status legacy_storages(const vz_pickle *obj, legacy_ctx *c) {
  size_t n = vz_pickle_persid_count(obj);
  c->items = calloc(n ? n : 1, sizeof *c->items);
  if (!c->items) {
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory for %zu storages", n);
  }
  for (size_t i = 0; i < n; i++) {
    storage_ref s;
    vz_status st = parse_persid(vz_pickle_persid(obj, i), true, &s);
    size_t bytes = 0;
    if (st == VZ_OK) {
      st = storage_size(&s, &bytes);
    }
    if (st) {
      return st;
    }
    legacy_storage *ls = &c->items[i];
    ls->key = s.key;
    ls->dtype = s.dtype;
    ls->untyped = s.untyped;
    ls->numel = s.numel;
  }
  /* Sorted, the references to one storage are adjacent: keep one each. */
  qsort(c->items, n, sizeof *c->items, compare_legacy);
  for (size_t i = 0; i < n; i++) {
    legacy_storage *ls = &c->items[i];
    if (c->count > 0 && strcmp(c->items[c->count - 1].key, ls->key) == 0) {
      const legacy_storage *prev = &c->items[c->count - 1];
      if (prev->untyped != ls->untyped || prev->dtype != ls->dtype || prev->numel != ls->numel) {
        return vz_fail(VZ_ERR_FORMAT, "storage '%s' is described two different ways", ls->key);
      }
      continue;
    }
    c->items[c->count++] = *ls;
  }
  return VZ_OK;
}

/* The list of keys, then per key an int64 element count and the bytes. */
static vz_status legacy_data(const vz_pk_obj *keys, legacy_ctx *c, const uint8_t *b, size_t size,
                             size_t pos) {
  if (keys->type != VZ_PK_LIST) {
    return vz_fail(VZ_ERR_FORMAT, "legacy PyTorch file: the storage key list is a %s",
                   vz_pk_type_name(keys->type));
  }
  for (size_t i = 0; i < keys->u.seq.count; i++) {
    const vz_pk_obj *k = keys->u.seq.items[i];
    if (k->type != VZ_PK_STR) {
      return vz_fail(VZ_ERR_FORMAT, "legacy PyTorch file: a storage key is a %s",
                     vz_pk_type_name(k->type));
    }
    legacy_storage *ls = legacy_lookup(c, k->u.str.data);
    if (!ls || strlen(k->u.str.data) != k->u.str.len) {
      return vz_fail(VZ_ERR_FORMAT,
                     "legacy PyTorch file: storage key %zu is not used by any "
                     "tensor",
                     i);
    }
    if (ls->bytes) {
      return vz_fail(VZ_ERR_FORMAT, "legacy PyTorch file: storage '%s' is listed twice", ls->key);
    }
    if (size - pos < 8) {
      return vz_fail(VZ_ERR_FORMAT,
                     "legacy PyTorch file: truncated before the data of storage '%s'", ls->key);
    }
    uint64_t count = 0;
    for (int j = 7; j >= 0; j--) {
      count = (count << 8) | b[pos + (size_t)j];
    }
    pos += 8;
    if (count != (uint64_t)ls->numel) {
      return vz_fail(VZ_ERR_FORMAT,
                     "legacy PyTorch file: storage '%s' holds %llu elements, expected %lld",
                     ls->key, (unsigned long long)count, (long long)ls->numel);
    }
    storage_ref s = {
        .key = ls->key, .untyped = ls->untyped, .dtype = ls->dtype, .numel = ls->numel};
    size_t bytes = 0;
    vz_status st = storage_size(&s, &bytes);
    if (st) {
      return st;
    }
    if (bytes > size - pos) {
      return vz_fail(VZ_ERR_FORMAT,
                     "legacy PyTorch file: storage '%s' needs %zu bytes but only %zu remain",
                     ls->key, bytes, size - pos);
    }
    ls->bytes = b + pos;
    ls->nbytes = bytes;
    pos += bytes;
  }
  return VZ_OK;
}

vz_status vz_read_torch_legacy(const vz_mapped_file *f, vz_source_list *out) {
  if (!f || !out || (!f->bytes && f->size)) {
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "vz_read_torch_legacy: NULL argument");
  }
  const uint8_t *b = f->bytes;
  size_t size = f->size, pos = 0, used = 0;
  vz_pickle *proto = NULL, *info = NULL, *obj = NULL, *keys = NULL;
  legacy_ctx c = {0};
  vz_status st = legacy_magic(b, size, &used);
  pos += used;
  if (st == VZ_OK && (st = vz_pickle_parse(b + pos, size - pos, &proto, &used)) == VZ_OK) {
    pos += used;
    const vz_pk_obj *v = vz_pickle_root(proto);
    if (v->type != VZ_PK_INT || v->u.i != LEGACY_PROTOCOL) {
      st = vz_fail(VZ_ERR_FORMAT, "legacy PyTorch file: protocol version is not %d",
                   LEGACY_PROTOCOL);
    }
  }
  if (st == VZ_OK && (st = vz_pickle_parse(b + pos, size - pos, &info, &used)) == VZ_OK) {
    pos += used;
    st = check_sys_info(vz_pickle_root(info));
  }
  if (st == VZ_OK && (st = vz_pickle_parse(b + pos, size - pos, &obj, &used)) == VZ_OK) {
    pos += used;
    st = legacy_storages(obj, &c);
  }
  if (st == VZ_OK && (st = vz_pickle_parse(b + pos, size - pos, &keys, &used)) == VZ_OK) {
    pos += used;
    st = legacy_data(vz_pickle_root(keys), &c, b, size, pos);
  }
  if (st == VZ_OK) {
    reader r = {.out = out, .legacy = true, .resolve = legacy_resolve, .ctx = &c};
    st = collect(&r, obj);
  }
  free(c.items);
  vz_pickle_free(keys);
  vz_pickle_free(obj);
  vz_pickle_free(info);
  vz_pickle_free(proto);
  return st;
}

/* A small, safe pickle reader for PyTorch checkpoints. It understands the
 * binary opcodes of protocols 2-5 and builds plain values only: None, bool,
 * int64, double, strings, tuples, lists, dicts, persistent ids, tensors and a
 * fixed list of "global" markers. Nothing from the file is ever executed: a
 * GLOBAL other than the few that torch.save writes for tensors, storages and
 * OrderedDict is refused on sight, and REDUCE / NEWOBJ only apply to those.
 * Every count and length is checked against the remaining input before use,
 * and stack size, nesting, memo and object counts are capped. */
#ifndef VLZOO_CONVERT_PICKLE_H
#define VLZOO_CONVERT_PICKLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vlzoo/dtype.h"
#include "vlzoo/status.h"

/* Hard limits (a file that passes them still costs O(its size) memory). */
#define VZ_PICKLE_MAX_STACK (1 << 16)   /* values on the stack, all marks included */
#define VZ_PICKLE_MAX_MARKS 1024        /* MARKs open at once */
#define VZ_PICKLE_MAX_DEPTH 256         /* containers nested inside each other */
#define VZ_PICKLE_MAX_MEMO (1 << 22)    /* memo slots */
#define VZ_PICKLE_MAX_OBJECTS (1 << 22) /* values created by one pickle */
#define VZ_PICKLE_MAX_ITEMS (1 << 24)   /* items in one container */
#define VZ_PICKLE_MAX_DIMS 8            /* tensor dimensions */

typedef enum vz_pk_type {
  VZ_PK_NONE,
  VZ_PK_BOOL,
  VZ_PK_INT,
  VZ_PK_FLOAT,
  VZ_PK_STR,   /* unicode, UTF-8 as stored */
  VZ_PK_BYTES, /* bytes objects (and protocol-0 strings) */
  VZ_PK_TUPLE,
  VZ_PK_LIST,
  VZ_PK_DICT,   /* dict or OrderedDict, insertion ordered */
  VZ_PK_GLOBAL, /* one of the allowed globals (see vz_pk_global_kind) */
  VZ_PK_PERSID, /* a persistent id: the object BINPERSID names */
  VZ_PK_TENSOR, /* result of _rebuild_tensor_v2/v3 (or _rebuild_parameter) */
} vz_pk_type;

typedef enum vz_pk_global_kind {
  VZ_PKG_ORDERED_DICT,            /* collections.OrderedDict */
  VZ_PKG_REBUILD_TENSOR_V1,       /* torch._utils._rebuild_tensor (torch < 1.0) */
  VZ_PKG_REBUILD_TENSOR_V2,       /* torch._utils._rebuild_tensor_v2 */
  VZ_PKG_REBUILD_TENSOR_V3,       /* torch._utils._rebuild_tensor_v3 */
  VZ_PKG_REBUILD_PARAMETER,       /* torch._utils._rebuild_parameter */
  VZ_PKG_REBUILD_PARAMETER_STATE, /* torch._utils._rebuild_parameter_with_state */
  VZ_PKG_TYPED_STORAGE,           /* torch.FloatStorage etc.; dtype says which */
  VZ_PKG_UNTYPED_STORAGE,         /* torch.UntypedStorage (bytes) */
  VZ_PKG_DTYPE,                   /* torch.float32 etc.; dtype says which */
} vz_pk_global_kind;

typedef struct vz_pk_obj vz_pk_obj;

/* What _rebuild_tensor* received. */
typedef struct vz_pk_tensor {
  const vz_pk_obj *storage; /* a VZ_PK_PERSID */
  int64_t offset;           /* in elements */
  int ndim;
  int64_t shape[VZ_PICKLE_MAX_DIMS];
  int64_t stride[VZ_PICKLE_MAX_DIMS];
  bool has_dtype; /* _rebuild_tensor_v3 names the dtype */
  vz_dtype dtype;
} vz_pk_tensor;

struct vz_pk_obj {
  vz_pk_type type;
  uint32_t depth; /* 1 for scalars, 1 + deepest item for containers */
  union {
    bool b;
    int64_t i;
    double f;
    struct {
      char *data; /* NUL-terminated copy; may also hold NULs inside */
      size_t len;
    } str; /* VZ_PK_STR, VZ_PK_BYTES */
    struct {
      vz_pk_obj **items;
      size_t count, capacity;
    } seq; /* VZ_PK_TUPLE, VZ_PK_LIST */
    struct {
      vz_pk_obj **keys, **values;
      size_t count, capacity;
    } dict;
    struct {
      vz_pk_global_kind kind;
      vz_dtype dtype;   /* VZ_PKG_TYPED_STORAGE, VZ_PKG_DTYPE */
      const char *name; /* "torch.FloatStorage", static */
    } global;
    const vz_pk_obj *persid; /* the persistent id (a tuple for torch) */
    vz_pk_tensor *tensor;    /* kept apart: most values are small */
  } u;
};

typedef struct vz_pickle vz_pickle;

/* Parses one pickle (up to and including its STOP) from data[0..size).
 * *consumed, when not NULL, receives the number of bytes read, so that
 * several pickles stored back to back can be read in turn. Errors are
 * VZ_ERR_FORMAT (or VZ_ERR_OUT_OF_MEMORY, VZ_ERR_UNSUPPORTED for a known but
 * unsupported dtype) with a message naming the byte offset. */
vz_status vz_pickle_parse(const uint8_t *data, size_t size, vz_pickle **out, size_t *consumed);

/* The value STOP returned. Valid until vz_pickle_free. */
const vz_pk_obj *vz_pickle_root(const vz_pickle *p);

/* Number of values created (a bound for walks over shared values). */
size_t vz_pickle_object_count(const vz_pickle *p);

/* Every persistent id the pickle created, in order (reachable from the
 * root or not): legacy torch files size their storages from these. */
size_t vz_pickle_persid_count(const vz_pickle *p);
const vz_pk_obj *vz_pickle_persid(const vz_pickle *p, size_t i);

/* Releases every value of the pickle. NULL is ignored. */
void vz_pickle_free(vz_pickle *p);

/* ---- Walk helpers ---- */

/* Value stored under the string key `key` of a dict; NULL when the key is
 * absent or `dict` is not a dict. */
const vz_pk_obj *vz_pk_dict_get(const vz_pk_obj *dict, const char *key);

/* Items of a tuple or list (count 0 and NULL for anything else). */
size_t vz_pk_seq_count(const vz_pk_obj *o);
const vz_pk_obj *vz_pk_seq_item(const vz_pk_obj *o, size_t i);

/* Whether o is a str equal to s. */
bool vz_pk_is_str(const vz_pk_obj *o, const char *s);

/* "int", "dict", ... for messages. */
const char *vz_pk_type_name(vz_pk_type type);

#endif

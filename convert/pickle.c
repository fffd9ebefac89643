/* A pickle reader that never executes anything: see convert/pickle.h. The
 * interpreter is a loop over opcodes with an explicit stack; no part of it
 * recurses, and every value it creates is recorded in the pickle's arena so
 * that one free releases everything, whatever the memo made shared or
 * cyclic. */
#include "convert/pickle.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/internal.h"

enum { CHUNK_OBJECTS = 256, MAX_GLOBAL_LINE = 256 };

typedef struct chunk {
  struct chunk *next;
  size_t used;
  vz_pk_obj objs[CHUNK_OBJECTS];
} chunk;

struct vz_pickle {
  chunk *chunks;
  size_t n_objects;
  vz_pk_obj *root;
  const vz_pk_obj **persids;
  size_t n_persids, persid_cap;
};

typedef struct parser {
  const uint8_t *data;
  size_t size, pos;
  size_t op_pos; /* offset of the opcode being run, for messages */
  vz_pickle *p;
  vz_pk_obj **stack;
  size_t sp, stack_cap;
  size_t marks[VZ_PICKLE_MAX_MARKS];
  size_t n_marks;
  vz_pk_obj **memo;
  size_t memo_cap, memo_len;
  vz_pk_obj *none, *true_, *false_, *empty_tuple; /* shared: immutable */
} parser;

/* ---- Messages ---- */

/* Copies s[0..n) into buf for a message: printable ASCII as is, the rest as
 * \xNN, shortened with "..." when it does not fit. */
static const char *quote(const char *s, size_t n, char *buf, size_t cap) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    size_t need = (c >= 0x20 && c < 0x7f) ? 1 : 4;
    if (o + need + 4 > cap) {
      memcpy(buf + o, "...", 3);
      o += 3;
      break;
    }
    if (need == 1) {
      buf[o++] = (char)c;
    } else {
      snprintf(buf + o, cap - o, "\\x%02x", c);
      o += 4;
    }
  }
  buf[o] = '\0';
  return buf;
}

static vz_status fail(parser *ps, const char *fmt, ...) VZ_PRINTF(2, 3);
static vz_status fail(parser *ps, const char *fmt, ...) {
  char msg[512];
  va_list args;
  va_start(args, fmt);
  vsnprintf(msg, sizeof msg, fmt, args);
  va_end(args);
  return vz_fail(VZ_ERR_FORMAT, "pickle: %s (opcode at byte %zu)", msg, ps->op_pos);
}

static vz_status fail_oom(parser *ps) {
  return vz_fail(VZ_ERR_OUT_OF_MEMORY, "pickle: out of memory at byte %zu", ps->op_pos);
}

const char *vz_pk_type_name(vz_pk_type type) {
  switch (type) {
  case VZ_PK_NONE: return "None";
  case VZ_PK_BOOL: return "bool";
  case VZ_PK_INT: return "int";
  case VZ_PK_FLOAT: return "float";
  case VZ_PK_STR: return "str";
  case VZ_PK_BYTES: return "bytes";
  case VZ_PK_TUPLE: return "tuple";
  case VZ_PK_LIST: return "list";
  case VZ_PK_DICT: return "dict";
  case VZ_PK_GLOBAL: return "global";
  case VZ_PK_PERSID: return "persistent id";
  case VZ_PK_TENSOR: return "tensor";
  }
  return "?";
}

/* ---- Values ---- */

static vz_status new_obj(parser *ps, vz_pk_type type, vz_pk_obj **out) {
  vz_pickle *p = ps->p;
  if (p->n_objects >= VZ_PICKLE_MAX_OBJECTS) {
    return fail(ps, "more than %d values", VZ_PICKLE_MAX_OBJECTS);
  }
  if (!p->chunks || p->chunks->used == CHUNK_OBJECTS) {
    chunk *c = malloc(sizeof *c);
    if (!c) {
      return fail_oom(ps);
    }
    c->next = p->chunks;
    c->used = 0;
    p->chunks = c;
  }
  vz_pk_obj *o = &p->chunks->objs[p->chunks->used++];
  memset(o, 0, sizeof *o);
  o->type = type;
  o->depth = 1;
  p->n_objects++;
  *out = o;
  return VZ_OK;
}

static void free_obj(vz_pk_obj *o) {
  switch (o->type) {
  case VZ_PK_STR:
  case VZ_PK_BYTES: free(o->u.str.data); break;
  case VZ_PK_TUPLE:
  case VZ_PK_LIST: free(o->u.seq.items); break;
  case VZ_PK_DICT:
    free(o->u.dict.keys);
    free(o->u.dict.values);
    break;
  case VZ_PK_TENSOR: free(o->u.tensor); break;
  default: break;
  }
}

void vz_pickle_free(vz_pickle *p) {
  if (!p) {
    return;
  }
  chunk *c = p->chunks;
  while (c) {
    chunk *next = c->next;
    for (size_t i = 0; i < c->used; i++) {
      free_obj(&c->objs[i]);
    }
    free(c);
    c = next;
  }
  free(p->persids);
  free(p);
}

const vz_pk_obj *vz_pickle_root(const vz_pickle *p) { return p ? p->root : NULL; }

size_t vz_pickle_object_count(const vz_pickle *p) { return p ? p->n_objects : 0; }

size_t vz_pickle_persid_count(const vz_pickle *p) { return p ? p->n_persids : 0; }

const vz_pk_obj *vz_pickle_persid(const vz_pickle *p, size_t i) {
  return p && i < p->n_persids ? p->persids[i] : NULL;
}

/* Records that `child` now sits inside `parent`. */
static vz_status nest(parser *ps, vz_pk_obj *parent, const vz_pk_obj *child) {
  if (child->depth + 1 > parent->depth) {
    parent->depth = child->depth + 1;
  }
  if (parent->depth > VZ_PICKLE_MAX_DEPTH) {
    return fail(ps, "values nested more than %d levels deep", VZ_PICKLE_MAX_DEPTH);
  }
  return VZ_OK;
}

static vz_status seq_append(parser *ps, vz_pk_obj *seq, vz_pk_obj *item) {
  if (seq->u.seq.count == seq->u.seq.capacity) {
    if (seq->u.seq.count >= VZ_PICKLE_MAX_ITEMS) {
      return fail(ps, "a %s with more than %d items", vz_pk_type_name(seq->type),
                  VZ_PICKLE_MAX_ITEMS);
    }
    size_t cap = seq->u.seq.capacity ? seq->u.seq.capacity * 2 : 4;
    vz_pk_obj **items = realloc(seq->u.seq.items, cap * sizeof *items);
    if (!items) {
      return fail_oom(ps);
    }
    seq->u.seq.items = items;
    seq->u.seq.capacity = cap;
  }
  seq->u.seq.items[seq->u.seq.count++] = item;
  return nest(ps, seq, item);
}

static vz_status dict_set(parser *ps, vz_pk_obj *dict, vz_pk_obj *key, vz_pk_obj *value) {
  if (dict->u.dict.count == dict->u.dict.capacity) {
    if (dict->u.dict.count >= VZ_PICKLE_MAX_ITEMS) {
      return fail(ps, "a dict with more than %d items", VZ_PICKLE_MAX_ITEMS);
    }
    size_t cap = dict->u.dict.capacity ? dict->u.dict.capacity * 2 : 4;
    vz_pk_obj **keys = realloc(dict->u.dict.keys, cap * sizeof *keys);
    if (!keys) {
      return fail_oom(ps);
    }
    dict->u.dict.keys = keys;
    vz_pk_obj **values = realloc(dict->u.dict.values, cap * sizeof *values);
    if (!values) {
      return fail_oom(ps);
    }
    dict->u.dict.values = values;
    dict->u.dict.capacity = cap;
  }
  dict->u.dict.keys[dict->u.dict.count] = key;
  dict->u.dict.values[dict->u.dict.count] = value;
  dict->u.dict.count++;
  vz_status st = nest(ps, dict, key);
  return st ? st : nest(ps, dict, value);
}

/* ---- Input ---- */

static vz_status need(parser *ps, size_t n, const char *what) {
  if (n > ps->size - ps->pos) {
    return fail(ps, "%s needs %zu bytes but only %zu remain", what, n, ps->size - ps->pos);
  }
  return VZ_OK;
}

static uint64_t read_le(const uint8_t *b, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; i--) {
    v = (v << 8) | b[i];
  }
  return v;
}

/* Reads an n-byte little-endian unsigned argument. */
static vz_status arg_uint(parser *ps, int n, uint64_t *out) {
  vz_status st = need(ps, (size_t)n, "an opcode argument");
  if (st) {
    return st;
  }
  *out = read_le(ps->data + ps->pos, n);
  ps->pos += (size_t)n;
  return VZ_OK;
}

/* ---- Stack ---- */

static size_t mark_base(const parser *ps) { return ps->n_marks ? ps->marks[ps->n_marks - 1] : 0; }

static vz_status push(parser *ps, vz_pk_obj *o) {
  if (ps->sp == ps->stack_cap) {
    if (ps->sp >= VZ_PICKLE_MAX_STACK) {
      return fail(ps, "more than %d values on the stack", VZ_PICKLE_MAX_STACK);
    }
    size_t cap = ps->stack_cap ? ps->stack_cap * 2 : 64;
    vz_pk_obj **s = realloc(ps->stack, cap * sizeof *s);
    if (!s) {
      return fail_oom(ps);
    }
    ps->stack = s;
    ps->stack_cap = cap;
  }
  ps->stack[ps->sp++] = o;
  return VZ_OK;
}

static vz_status push_new(parser *ps, vz_pk_type type, vz_pk_obj **out) {
  vz_pk_obj *o = NULL;
  vz_status st = new_obj(ps, type, &o);
  if (st) {
    return st;
  }
  if (out) {
    *out = o;
  }
  return push(ps, o);
}

/* Values above the innermost mark. */
static size_t available(const parser *ps) { return ps->sp - mark_base(ps); }

static vz_status pop(parser *ps, vz_pk_obj **out) {
  if (available(ps) == 0) {
    return fail(ps, "stack underflow");
  }
  *out = ps->stack[--ps->sp];
  return VZ_OK;
}

static vz_status top(parser *ps, vz_pk_obj **out) {
  if (available(ps) == 0) {
    return fail(ps, "stack underflow");
  }
  *out = ps->stack[ps->sp - 1];
  return VZ_OK;
}

/* Pops the top value into *a, then the next one into *b. */
static vz_status pop2(parser *ps, vz_pk_obj **a, vz_pk_obj **b) {
  vz_status st = pop(ps, a);
  return st ? st : pop(ps, b);
}

/* Pops the top value into *value and points *below at the one under it,
 * which stays on the stack. */
static vz_status pop_onto(parser *ps, vz_pk_obj **value, vz_pk_obj **below) {
  vz_status st = pop(ps, value);
  return st ? st : top(ps, below);
}

/* Closes the innermost mark: *first is the index of the first value above
 * it; the caller drops them with ps->sp = *first. */
static vz_status pop_mark(parser *ps, size_t *first) {
  if (ps->n_marks == 0) {
    return fail(ps, "no MARK to pop");
  }
  *first = ps->marks[--ps->n_marks];
  return VZ_OK;
}

/* ---- Globals ---- */

static const struct {
  const char *name;
  vz_dtype dtype;
} typed_storages[] = {
    {"FloatStorage", VZ_F32},  {"HalfStorage", VZ_F16}, {"BFloat16Storage", VZ_BF16},
    {"DoubleStorage", VZ_F64}, {"LongStorage", VZ_I64}, {"IntStorage", VZ_I32},
    {"ShortStorage", VZ_I16},  {"CharStorage", VZ_I8},  {"ByteStorage", VZ_U8},
    {"BoolStorage", VZ_BOOL},
};

static const struct {
  const char *name;
  vz_dtype dtype;
} dtype_names[] = {
    {"float32", VZ_F32}, {"float16", VZ_F16}, {"bfloat16", VZ_BF16}, {"float64", VZ_F64},
    {"int64", VZ_I64},   {"int32", VZ_I32},   {"int16", VZ_I16},     {"int8", VZ_I8},
    {"uint8", VZ_U8},    {"bool", VZ_BOOL},
};

/* torch names that are valid but describe element types vlzoo lacks. */
static const char *const unsupported_torch_types[] = {
    "ComplexFloatStorage",
    "ComplexDoubleStorage",
    "ComplexHalfStorage",
    "QInt8Storage",
    "QUInt8Storage",
    "QInt32Storage",
    "QUInt4x2Storage",
    "QUInt2x4Storage",
    "uint16",
    "uint32",
    "uint64",
    "complex32",
    "complex64",
    "complex128",
    "float8_e5m2",
    "float8_e4m3fn",
    "float8_e5m2fnuz",
    "float8_e4m3fnuz",
    "float8_e8m0fnu",
    "float4_e2m1fn_x2",
    "qint8",
    "quint8",
    "qint32",
    "quint4x2",
    "quint2x4",
    "bits8",
    "bits16",
    "bits1x8",
    "bits2x4",
    "bits4x2",
    "bcomplex32",
};

static const struct {
  const char *name;
  vz_pk_global_kind kind;
} torch_utils_functions[] = {
    {"_rebuild_tensor", VZ_PKG_REBUILD_TENSOR_V1},
    {"_rebuild_tensor_v2", VZ_PKG_REBUILD_TENSOR_V2},
    {"_rebuild_tensor_v3", VZ_PKG_REBUILD_TENSOR_V3},
    {"_rebuild_parameter", VZ_PKG_REBUILD_PARAMETER},
    {"_rebuild_parameter_with_state", VZ_PKG_REBUILD_PARAMETER_STATE},
};

static bool equals(const char *s, size_t n, const char *lit) {
  return strlen(lit) == n && memcmp(s, lit, n) == 0;
}

/* The refusal of a call to module.name that is not on the allow list. */
static vz_status refuse_global(const char *module, size_t mlen, const char *name, size_t nlen) {
  char qm[160], qn[160];
  return vz_fail(VZ_ERR_FORMAT,
                 "refusing to load: the pickle calls %s.%s; only tensors, containers and "
                 "scalars are allowed",
                 quote(module, mlen, qm, sizeof qm), quote(name, nlen, qn, sizeof qn));
}

/* Turns module.name into an allowed global, or refuses it. */
static vz_status resolve_global(parser *ps, const char *module, size_t mlen, const char *name,
                                size_t nlen, vz_pk_obj **out) {
  vz_pk_global_kind kind;
  vz_dtype dtype = VZ_U8;
  const char *label = NULL;
  bool found = false;
  if (equals(module, mlen, "collections") && equals(name, nlen, "OrderedDict")) {
    kind = VZ_PKG_ORDERED_DICT;
    label = "collections.OrderedDict";
    found = true;
  } else if (equals(module, mlen, "torch._utils")) {
    for (size_t i = 0; i < sizeof torch_utils_functions / sizeof *torch_utils_functions; i++) {
      if (equals(name, nlen, torch_utils_functions[i].name)) {
        kind = torch_utils_functions[i].kind;
        label = torch_utils_functions[i].name;
        found = true;
      }
    }
  } else if (equals(module, mlen, "torch")) {
    if (equals(name, nlen, "UntypedStorage")) {
      kind = VZ_PKG_UNTYPED_STORAGE;
      label = "UntypedStorage";
      found = true;
    }
    for (size_t i = 0; !found && i < sizeof typed_storages / sizeof *typed_storages; i++) {
      if (equals(name, nlen, typed_storages[i].name)) {
        kind = VZ_PKG_TYPED_STORAGE;
        dtype = typed_storages[i].dtype;
        label = typed_storages[i].name;
        found = true;
      }
    }
    for (size_t i = 0; !found && i < sizeof dtype_names / sizeof *dtype_names; i++) {
      if (equals(name, nlen, dtype_names[i].name)) {
        kind = VZ_PKG_DTYPE;
        dtype = dtype_names[i].dtype;
        label = dtype_names[i].name;
        found = true;
      }
    }
    for (size_t i = 0;
         !found && i < sizeof unsupported_torch_types / sizeof *unsupported_torch_types; i++) {
      if (equals(name, nlen, unsupported_torch_types[i])) {
        return vz_fail(VZ_ERR_UNSUPPORTED,
                       "pickle: the checkpoint holds torch.%s values, an element type vlzoo "
                       "does not support",
                       unsupported_torch_types[i]);
      }
    }
  }
  if (!found) {
    return refuse_global(module, mlen, name, nlen);
  }
  vz_pk_obj *o = NULL;
  vz_status st = new_obj(ps, VZ_PK_GLOBAL, &o);
  if (st) {
    return st;
  }
  o->u.global.kind = kind;
  o->u.global.dtype = dtype;
  o->u.global.name = label;
  *out = o;
  return VZ_OK;
}

/* Reads one '\n'-terminated line of a GLOBAL or INST opcode. */
static vz_status read_line(parser *ps, const char **s, size_t *n) {
  size_t left = ps->size - ps->pos;
  size_t limit = left < MAX_GLOBAL_LINE ? left : MAX_GLOBAL_LINE;
  const uint8_t *start = ps->data + ps->pos;
  const uint8_t *nl = memchr(start, '\n', limit);
  if (!nl) {
    return fail(ps, "a GLOBAL name without a newline in its first %d bytes", MAX_GLOBAL_LINE);
  }
  *s = (const char *)start;
  *n = (size_t)(nl - start);
  ps->pos += *n + 1;
  return VZ_OK;
}

/* Reads the module and name lines of a GLOBAL or INST opcode. */
static vz_status read_module_name(parser *ps, const char **module, size_t *mlen, const char **name,
                                  size_t *nlen) {
  vz_status st = read_line(ps, module, mlen);
  return st ? st : read_line(ps, name, nlen);
}

/* ---- Opcodes ---- */

static vz_status op_string(parser *ps, vz_pk_type type, size_t len) {
  vz_status st = need(ps, len, "a string");
  if (st) {
    return st;
  }
  vz_pk_obj *o = NULL;
  st = new_obj(ps, type, &o);
  if (st) {
    return st;
  }
  o->u.str.data = malloc(len + 1);
  if (!o->u.str.data) {
    return fail_oom(ps);
  }
  memcpy(o->u.str.data, ps->data + ps->pos, len);
  o->u.str.data[len] = '\0';
  o->u.str.len = len;
  ps->pos += len;
  return push(ps, o);
}

/* A string length argument of n bytes, unsigned (BINUNICODE8 etc.) or, for
 * BINSTRING, signed 32-bit. */
static vz_status op_string_len(parser *ps, vz_pk_type type, int n, bool is_signed) {
  uint64_t len;
  vz_status st = arg_uint(ps, n, &len);
  if (st) {
    return st;
  }
  if (is_signed && (len & 0x80000000u)) {
    return fail(ps, "negative string length");
  }
  if (len > (uint64_t)(ps->size - ps->pos)) {
    return fail(ps, "string length %llu runs past the end of the pickle (%zu bytes remain)",
                (unsigned long long)len, ps->size - ps->pos);
  }
  return op_string(ps, type, (size_t)len);
}

static vz_status push_int(parser *ps, int64_t v) {
  vz_pk_obj *o = NULL;
  vz_status st = push_new(ps, VZ_PK_INT, &o);
  if (st == VZ_OK) {
    o->u.i = v;
  }
  return st;
}

/* LONG1 / LONG4: n bytes of little-endian two's complement. */
static vz_status op_long(parser *ps, int len_bytes) {
  uint64_t n;
  vz_status st = arg_uint(ps, len_bytes, &n);
  if (st) {
    return st;
  }
  if (len_bytes == 4 && (n & 0x80000000u)) {
    return fail(ps, "LONG4 with a negative length");
  }
  if (n > (uint64_t)(ps->size - ps->pos)) {
    return fail(ps, "integer of %llu bytes runs past the end of the pickle", (unsigned long long)n);
  }
  const uint8_t *b = ps->data + ps->pos;
  ps->pos += (size_t)n;
  if (n == 0) {
    return push_int(ps, 0);
  }
  /* Bytes past the eighth may only repeat the sign. */
  size_t low = n < 8 ? (size_t)n : 8;
  bool negative = (b[n - 1] & 0x80) != 0;
  for (size_t i = 8; i < n; i++) {
    if (b[i] != (negative ? 0xff : 0x00)) {
      return fail(ps, "integer of %llu bytes does not fit in 64 bits", (unsigned long long)n);
    }
  }
  if (n > 8 && ((b[7] & 0x80) != 0) != negative) {
    return fail(ps, "integer of %llu bytes does not fit in 64 bits", (unsigned long long)n);
  }
  uint64_t v = read_le(b, (int)low);
  if (low < 8 && negative) {
    v |= ~UINT64_C(0) << (8 * low);
  }
  int64_t s;
  memcpy(&s, &v, sizeof s);
  return push_int(ps, s);
}

static vz_status memo_put(parser *ps, uint64_t index) {
  vz_pk_obj *o = NULL;
  vz_status st = top(ps, &o);
  if (st) {
    return st;
  }
  /* A pickler numbers memo slots 0, 1, 2, ... so a slot can never exceed
   * the bytes read so far; that bound keeps the table O(input). */
  if (index >= VZ_PICKLE_MAX_MEMO || index > ps->pos) {
    return fail(ps, "memo index %llu is too large", (unsigned long long)index);
  }
  if (index >= ps->memo_cap) {
    size_t cap = ps->memo_cap ? ps->memo_cap : 64;
    while (cap <= index) {
      cap *= 2;
    }
    vz_pk_obj **m = realloc(ps->memo, cap * sizeof *m);
    if (!m) {
      return fail_oom(ps);
    }
    memset(m + ps->memo_cap, 0, (cap - ps->memo_cap) * sizeof *m);
    ps->memo = m;
    ps->memo_cap = cap;
  }
  if (!ps->memo[index]) {
    ps->memo_len++;
  }
  ps->memo[index] = o;
  return VZ_OK;
}

static vz_status memo_get(parser *ps, uint64_t index) {
  if (index >= ps->memo_cap || !ps->memo[index]) {
    return fail(ps, "memo index %llu was never stored", (unsigned long long)index);
  }
  return push(ps, ps->memo[index]);
}

/* Reads a tuple/list of at most VZ_PICKLE_MAX_DIMS ints (size or stride). */
static vz_status int_tuple(parser *ps, const vz_pk_obj *o, const char *what, int64_t *vals,
                           int *n) {
  if (o->type != VZ_PK_TUPLE && o->type != VZ_PK_LIST) {
    return fail(ps, "tensor %s is a %s, not a tuple", what, vz_pk_type_name(o->type));
  }
  if (o->u.seq.count > VZ_PICKLE_MAX_DIMS) {
    return fail(ps, "tensor %s has %zu dimensions (at most %d are supported)", what, o->u.seq.count,
                VZ_PICKLE_MAX_DIMS);
  }
  for (size_t i = 0; i < o->u.seq.count; i++) {
    if (o->u.seq.items[i]->type != VZ_PK_INT) {
      return fail(ps, "tensor %s holds a %s", what, vz_pk_type_name(o->u.seq.items[i]->type));
    }
    vals[i] = o->u.seq.items[i]->u.i;
  }
  *n = (int)o->u.seq.count;
  return VZ_OK;
}

/* _rebuild_tensor(storage, offset, size, stride), _rebuild_tensor_v2(storage,
 * offset, size, stride, requires_grad, hooks[, metadata]) and
 * _rebuild_tensor_v3(..., hooks, dtype[, metadata]). */
static vz_status rebuild_tensor(parser *ps, const vz_pk_obj *fn, const vz_pk_obj *args,
                                vz_pk_obj **out) {
  size_t n = args->u.seq.count;
  vz_pk_obj *const *a = args->u.seq.items;
  const char *name = fn->u.global.name;
  vz_pk_global_kind kind = fn->u.global.kind;
  size_t lo = kind == VZ_PKG_REBUILD_TENSOR_V1 ? 4 : kind == VZ_PKG_REBUILD_TENSOR_V2 ? 6 : 7;
  size_t hi = kind == VZ_PKG_REBUILD_TENSOR_V1 ? 4 : lo + 1;
  if (n < lo || n > hi) {
    return fail(ps, "%s called with %zu arguments", name, n);
  }
  if (a[0]->type != VZ_PK_PERSID) {
    return fail(ps, "%s: the storage is a %s, not a persistent id", name,
                vz_pk_type_name(a[0]->type));
  }
  if (a[1]->type != VZ_PK_INT || a[1]->u.i < 0) {
    return fail(ps, "%s: the storage offset is not a non-negative int", name);
  }
  vz_pk_obj *t = NULL;
  vz_status st = new_obj(ps, VZ_PK_TENSOR, &t);
  if (st) {
    return st;
  }
  t->u.tensor = calloc(1, sizeof *t->u.tensor);
  if (!t->u.tensor) {
    t->type = VZ_PK_NONE; /* nothing for free_obj to release */
    return fail_oom(ps);
  }
  t->u.tensor->storage = a[0];
  t->u.tensor->offset = a[1]->u.i;
  int nstride = 0;
  st = int_tuple(ps, a[2], "size", t->u.tensor->shape, &t->u.tensor->ndim);
  if (st == VZ_OK) {
    st = int_tuple(ps, a[3], "stride", t->u.tensor->stride, &nstride);
  }
  if (st) {
    return st;
  }
  if (nstride != t->u.tensor->ndim) {
    return fail(ps, "%s: %d sizes but %d strides", name, t->u.tensor->ndim, nstride);
  }
  for (int d = 0; d < t->u.tensor->ndim; d++) {
    if (t->u.tensor->shape[d] < 0) {
      return fail(ps, "%s: negative size %lld", name, (long long)t->u.tensor->shape[d]);
    }
  }
  if (n > 4 && a[4]->type != VZ_PK_BOOL) {
    return fail(ps, "%s: requires_grad is a %s", name, vz_pk_type_name(a[4]->type));
  }
  if (kind == VZ_PKG_REBUILD_TENSOR_V3) {
    if (a[6]->type != VZ_PK_GLOBAL || a[6]->u.global.kind != VZ_PKG_DTYPE) {
      return fail(ps, "%s: the dtype argument is a %s", name, vz_pk_type_name(a[6]->type));
    }
    t->u.tensor->has_dtype = true;
    t->u.tensor->dtype = a[6]->u.global.dtype;
  }
  *out = t;
  return VZ_OK;
}

static vz_status op_reduce(parser *ps, bool newobj) {
  vz_pk_obj *args = NULL, *fn = NULL;
  vz_status st = pop2(ps, &args, &fn);
  if (st) {
    return st;
  }
  const char *opname = newobj ? "NEWOBJ" : "REDUCE";
  if (fn->type != VZ_PK_GLOBAL) {
    return fail(ps, "%s applied to a %s", opname, vz_pk_type_name(fn->type));
  }
  if (args->type != VZ_PK_TUPLE) {
    return fail(ps, "%s with arguments in a %s, not a tuple", opname, vz_pk_type_name(args->type));
  }
  vz_pk_obj *result = NULL;
  switch (fn->u.global.kind) {
  case VZ_PKG_ORDERED_DICT:
    if (args->u.seq.count != 0) {
      return fail(ps, "OrderedDict called with arguments");
    }
    st = new_obj(ps, VZ_PK_DICT, &result);
    break;
  case VZ_PKG_REBUILD_TENSOR_V1:
  case VZ_PKG_REBUILD_TENSOR_V2:
  case VZ_PKG_REBUILD_TENSOR_V3:
    if (newobj) {
      return fail(ps, "NEWOBJ applied to %s", fn->u.global.name);
    }
    st = rebuild_tensor(ps, fn, args, &result);
    break;
  case VZ_PKG_REBUILD_PARAMETER:
  case VZ_PKG_REBUILD_PARAMETER_STATE: {
    size_t want = fn->u.global.kind == VZ_PKG_REBUILD_PARAMETER ? 3 : 4;
    if (newobj || args->u.seq.count != want) {
      return fail(ps, "%s called with %zu arguments", fn->u.global.name, args->u.seq.count);
    }
    if (args->u.seq.items[0]->type != VZ_PK_TENSOR) {
      return fail(ps, "%s: the data is a %s, not a tensor", fn->u.global.name,
                  vz_pk_type_name(args->u.seq.items[0]->type));
    }
    result = args->u.seq.items[0];
    break;
  }
  default: return fail(ps, "%s applied to torch.%s", opname, fn->u.global.name);
  }
  if (st) {
    return st;
  }
  return push(ps, result);
}

/* Puts the values stack[first .. sp) into `o`: key/value pairs into a
 * dict (`opname` names the opcode when their number is odd), items into a
 * tuple or list. */
static vz_status put_values(parser *ps, vz_pk_obj *o, size_t first, const char *opname) {
  size_t count = ps->sp - first;
  vz_status st = VZ_OK;
  if (o->type == VZ_PK_DICT) {
    if (count % 2) {
      return fail(ps, "%s with an odd number of values", opname);
    }
    for (size_t i = 0; i < count && st == VZ_OK; i += 2) {
      st = dict_set(ps, o, ps->stack[first + i], ps->stack[first + i + 1]);
    }
  } else {
    for (size_t i = 0; i < count && st == VZ_OK; i++) {
      st = seq_append(ps, o, ps->stack[first + i]);
    }
  }
  return st;
}

/* Replaces the values stack[first .. sp) with a new container of them. */
static vz_status replace_with_container(parser *ps, vz_pk_type type, size_t first,
                                        const char *opname) {
  vz_pk_obj *o = NULL;
  vz_status st = new_obj(ps, type, &o);
  if (st == VZ_OK) {
    st = put_values(ps, o, first, opname);
  }
  if (st) {
    return st;
  }
  ps->sp = first;
  return push(ps, o);
}

/* TUPLE, LIST and DICT: the values above the innermost mark. */
static vz_status op_collect(parser *ps, vz_pk_type type) {
  size_t first = 0;
  vz_status st = pop_mark(ps, &first);
  return st ? st : replace_with_container(ps, type, first, "DICT");
}

static vz_status op_small_tuple(parser *ps, size_t n) {
  if (available(ps) < n) {
    return fail(ps, "stack underflow");
  }
  return replace_with_container(ps, VZ_PK_TUPLE, ps->sp - n, NULL);
}

/* APPENDS and SETITEMS: the values above the mark go into the container
 * just below it. */
static vz_status op_fill(parser *ps, bool dict) {
  size_t first = 0;
  vz_status st = pop_mark(ps, &first);
  if (st) {
    return st;
  }
  const char *opname = dict ? "SETITEMS" : "APPENDS";
  if (first == mark_base(ps)) {
    return fail(ps, "%s with nothing to fill", opname);
  }
  vz_pk_obj *target = ps->stack[first - 1];
  if (target->type != (dict ? VZ_PK_DICT : VZ_PK_LIST)) {
    return fail(ps, "%s on a %s", opname, vz_pk_type_name(target->type));
  }
  st = put_values(ps, target, first, opname);
  ps->sp = first;
  return st;
}

static vz_status op_setitem(parser *ps) {
  vz_pk_obj *key = NULL, *value = NULL, *dict = NULL;
  vz_status st = pop(ps, &value);
  if (st == VZ_OK) {
    st = pop_onto(ps, &key, &dict);
  }
  if (st) {
    return st;
  }
  if (dict->type != VZ_PK_DICT) {
    return fail(ps, "SETITEM on a %s", vz_pk_type_name(dict->type));
  }
  return dict_set(ps, dict, key, value);
}

static vz_status op_append(parser *ps) {
  vz_pk_obj *value = NULL, *list = NULL;
  vz_status st = pop_onto(ps, &value, &list);
  if (st) {
    return st;
  }
  if (list->type != VZ_PK_LIST) {
    return fail(ps, "APPEND on a %s", vz_pk_type_name(list->type));
  }
  return seq_append(ps, list, value);
}

static vz_status op_build(parser *ps) {
  vz_pk_obj *state = NULL, *obj = NULL;
  vz_status st = pop_onto(ps, &state, &obj);
  if (st) {
    return st;
  }
  /* OrderedDict state ({'_metadata': ...}) and tensor state carry nothing
   * vlzoo needs; anything else would need code to apply it. */
  if (obj->type != VZ_PK_DICT && obj->type != VZ_PK_TENSOR) {
    return fail(ps, "BUILD on a %s", vz_pk_type_name(obj->type));
  }
  return VZ_OK;
}

static vz_status op_global(parser *ps, bool stack_form) {
  vz_pk_obj *g = NULL;
  vz_status st;
  if (stack_form) {
    vz_pk_obj *module = NULL, *name = NULL;
    st = pop2(ps, &name, &module);
    if (st) {
      return st;
    }
    if (module->type != VZ_PK_STR || name->type != VZ_PK_STR) {
      return fail(ps, "STACK_GLOBAL with a %s and a %s instead of two strings",
                  vz_pk_type_name(module->type), vz_pk_type_name(name->type));
    }
    st = resolve_global(ps, module->u.str.data, module->u.str.len, name->u.str.data,
                        name->u.str.len, &g);
  } else {
    const char *module = NULL, *name = NULL;
    size_t mlen = 0, nlen = 0;
    st = read_module_name(ps, &module, &mlen, &name, &nlen);
    if (st == VZ_OK) {
      st = resolve_global(ps, module, mlen, name, nlen, &g);
    }
  }
  if (st) {
    return st;
  }
  return push(ps, g);
}

/* INST names a class to call; it is only ever refused, but by name. */
static vz_status op_inst(parser *ps) {
  const char *module = NULL, *name = NULL;
  size_t mlen = 0, nlen = 0;
  vz_status st = read_module_name(ps, &module, &mlen, &name, &nlen);
  return st ? st : refuse_global(module, mlen, name, nlen);
}

static vz_status step(parser *ps, bool *done) {
  ps->op_pos = ps->pos;
  if (ps->pos >= ps->size) {
    return fail(ps, "the pickle ends without STOP");
  }
  uint8_t op = ps->data[ps->pos++];
  uint64_t v = 0;
  vz_status st;
  vz_pk_obj *o = NULL;
  switch (op) {
  case 0x80: /* PROTO */
    st = arg_uint(ps, 1, &v);
    if (st == VZ_OK && v > 5) {
      st = fail(ps, "unsupported pickle protocol %llu", (unsigned long long)v);
    }
    return st;
  case 0x95: /* FRAME: framing only groups opcodes; lengths are checked anyway */
    st = arg_uint(ps, 8, &v);
    if (st == VZ_OK && v > (uint64_t)(ps->size - ps->pos)) {
      st = fail(ps, "FRAME of %llu bytes runs past the end", (unsigned long long)v);
    }
    return st;
  case '.': /* STOP */
    if (ps->n_marks != 0 || ps->sp != 1) {
      return fail(ps, "STOP with %zu values and %zu marks left", ps->sp, ps->n_marks);
    }
    ps->p->root = ps->stack[0];
    *done = true;
    return VZ_OK;
  case '(': /* MARK */
    if (ps->n_marks >= VZ_PICKLE_MAX_MARKS) {
      return fail(ps, "more than %d nested MARKs", VZ_PICKLE_MAX_MARKS);
    }
    ps->marks[ps->n_marks++] = ps->sp;
    return VZ_OK;
  case '0': /* POP */
    if (available(ps) > 0) {
      ps->sp--;
      return VZ_OK;
    } else if (ps->n_marks > 0) {
      ps->n_marks--;
      return VZ_OK;
    }
    return fail(ps, "stack underflow");
  case '1': { /* POP_MARK */
    size_t first = 0;
    st = pop_mark(ps, &first);
    if (st == VZ_OK) {
      ps->sp = first;
    }
    return st;
  }
  case '2': /* DUP */ st = top(ps, &o); return st ? st : push(ps, o);
  case 'N': /* NONE */
    if (!ps->none && (st = new_obj(ps, VZ_PK_NONE, &ps->none))) {
      return st;
    }
    return push(ps, ps->none);
  case 0x88: /* NEWTRUE */
  case 0x89: /* NEWFALSE */ {
    vz_pk_obj **slot = op == 0x88 ? &ps->true_ : &ps->false_;
    if (!*slot) {
      if ((st = new_obj(ps, VZ_PK_BOOL, slot))) {
        return st;
      }
      (*slot)->u.b = op == 0x88;
    }
    return push(ps, *slot);
  }
  case 'J': /* BININT */
    st = arg_uint(ps, 4, &v);
    return st ? st : push_int(ps, (int32_t)(uint32_t)v);
  case 'K': /* BININT1 */ st = arg_uint(ps, 1, &v); return st ? st : push_int(ps, (int64_t)v);
  case 'M': /* BININT2 */ st = arg_uint(ps, 2, &v); return st ? st : push_int(ps, (int64_t)v);
  case 0x8a: return op_long(ps, 1); /* LONG1 */
  case 0x8b: return op_long(ps, 4); /* LONG4 */
  case 'G': {                       /* BINFLOAT: big-endian IEEE double */
    st = need(ps, 8, "BINFLOAT");
    if (st) {
      return st;
    }
    uint64_t bits = 0;
    for (int i = 0; i < 8; i++) {
      bits = (bits << 8) | ps->data[ps->pos + (size_t)i];
    }
    ps->pos += 8;
    st = push_new(ps, VZ_PK_FLOAT, &o);
    if (st == VZ_OK) {
      memcpy(&o->u.f, &bits, sizeof bits);
    }
    return st;
  }
  case 'X': return op_string_len(ps, VZ_PK_STR, 4, false);    /* BINUNICODE */
  case 0x8c: return op_string_len(ps, VZ_PK_STR, 1, false);   /* SHORT_BINUNICODE */
  case 0x8d: return op_string_len(ps, VZ_PK_STR, 8, false);   /* BINUNICODE8 */
  case 'T': return op_string_len(ps, VZ_PK_STR, 4, true);     /* BINSTRING */
  case 'U': return op_string_len(ps, VZ_PK_STR, 1, false);    /* SHORT_BINSTRING */
  case 'B': return op_string_len(ps, VZ_PK_BYTES, 4, false);  /* BINBYTES */
  case 'C': return op_string_len(ps, VZ_PK_BYTES, 1, false);  /* SHORT_BINBYTES */
  case 0x8e: return op_string_len(ps, VZ_PK_BYTES, 8, false); /* BINBYTES8 */
  case 0x96: return op_string_len(ps, VZ_PK_BYTES, 8, false); /* BYTEARRAY8 */
  case ')':                                                   /* EMPTY_TUPLE */
    if (!ps->empty_tuple && (st = new_obj(ps, VZ_PK_TUPLE, &ps->empty_tuple))) {
      return st;
    }
    return push(ps, ps->empty_tuple);
  case 't': return op_collect(ps, VZ_PK_TUPLE);    /* TUPLE */
  case 0x85: return op_small_tuple(ps, 1);         /* TUPLE1 */
  case 0x86: return op_small_tuple(ps, 2);         /* TUPLE2 */
  case 0x87: return op_small_tuple(ps, 3);         /* TUPLE3 */
  case ']': return push_new(ps, VZ_PK_LIST, NULL); /* EMPTY_LIST */
  case 'l': return op_collect(ps, VZ_PK_LIST);     /* LIST */
  case 'a': return op_append(ps);                  /* APPEND */
  case 'e': return op_fill(ps, false);             /* APPENDS */
  case '}': return push_new(ps, VZ_PK_DICT, NULL); /* EMPTY_DICT */
  case 'd': return op_collect(ps, VZ_PK_DICT);     /* DICT */
  case 's': return op_setitem(ps);                 /* SETITEM */
  case 'u': return op_fill(ps, true);              /* SETITEMS */
  case 'c': return op_global(ps, false);           /* GLOBAL */
  case 0x93: return op_global(ps, true);           /* STACK_GLOBAL */
  case 'i': return op_inst(ps);                    /* INST */
  case 'R': return op_reduce(ps, false);           /* REDUCE */
  case 0x81: return op_reduce(ps, true);           /* NEWOBJ */
  case 'b': return op_build(ps);                   /* BUILD */
  case 'Q': {                                      /* BINPERSID */
    vz_pk_obj *pid = NULL;
    st = pop(ps, &pid);
    if (st == VZ_OK) {
      st = push_new(ps, VZ_PK_PERSID, &o);
    }
    if (st == VZ_OK) {
      o->u.persid = pid;
      st = nest(ps, o, pid);
    }
    if (st == VZ_OK && ps->p->n_persids == ps->p->persid_cap) {
      /* At most one per value, so bounded like the values are. */
      size_t cap = ps->p->persid_cap ? ps->p->persid_cap * 2 : 16;
      const vz_pk_obj **list = realloc(ps->p->persids, cap * sizeof *list);
      if (!list) {
        return fail_oom(ps);
      }
      ps->p->persids = list;
      ps->p->persid_cap = cap;
    }
    if (st == VZ_OK) {
      ps->p->persids[ps->p->n_persids++] = o;
    }
    return st;
  }
  case 'q': /* BINPUT */ st = arg_uint(ps, 1, &v); return st ? st : memo_put(ps, v);
  case 'r': /* LONG_BINPUT */ st = arg_uint(ps, 4, &v); return st ? st : memo_put(ps, v);
  case 0x94: /* MEMOIZE */ return memo_put(ps, ps->memo_len);
  case 'h': /* BINGET */ st = arg_uint(ps, 1, &v); return st ? st : memo_get(ps, v);
  case 'j': /* LONG_BINGET */ st = arg_uint(ps, 4, &v); return st ? st : memo_get(ps, v);
  case 0x82: /* EXT1 */
  case 0x83: /* EXT2 */
  case 0x84: /* EXT4 */
    return fail(ps,
                "refusing to load: the pickle uses the copyreg extension registry "
                "(opcode 0x%02x); only tensors, containers and scalars are allowed",
                op);
  default: return fail(ps, "unsupported pickle opcode 0x%02x", op);
  }
}

vz_status vz_pickle_parse(const uint8_t *data, size_t size, vz_pickle **out, size_t *consumed) {
  if (!out || (!data && size)) {
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "vz_pickle_parse: NULL argument");
  }
  *out = NULL;
  parser ps;
  memset(&ps, 0, sizeof ps);
  ps.data = data;
  ps.size = size;
  ps.p = calloc(1, sizeof *ps.p);
  if (!ps.p) {
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "pickle: out of memory");
  }
  vz_status st = VZ_OK;
  bool done = false;
  while (st == VZ_OK && !done) {
    st = step(&ps, &done);
  }
  free(ps.stack);
  free(ps.memo);
  if (st) {
    vz_pickle_free(ps.p);
    return st;
  }
  if (consumed) {
    *consumed = ps.pos;
  }
  *out = ps.p;
  return VZ_OK;
}

/* ---- Walk helpers ---- */

bool vz_pk_is_str(const vz_pk_obj *o, const char *s) {
  return o && o->type == VZ_PK_STR && equals(o->u.str.data, o->u.str.len, s);
}

const vz_pk_obj *vz_pk_dict_get(const vz_pk_obj *dict, const char *key) {
  if (!dict || dict->type != VZ_PK_DICT) {
    return NULL;
  }
  /* The last SETITEM wins, as in Python. */
  for (size_t i = dict->u.dict.count; i-- > 0;) {
    if (vz_pk_is_str(dict->u.dict.keys[i], key)) {
      return dict->u.dict.values[i];
    }
  }
  return NULL;
}

size_t vz_pk_seq_count(const vz_pk_obj *o) {
  return o && (o->type == VZ_PK_TUPLE || o->type == VZ_PK_LIST) ? o->u.seq.count : 0;
}

const vz_pk_obj *vz_pk_seq_item(const vz_pk_obj *o, size_t i) {
  return i < vz_pk_seq_count(o) ? o->u.seq.items[i] : NULL;
}

/* MindSpore .ckpt files (convert/checkpoint.proto).
 *
 * Reading: a .ckpt is one or more serialized Checkpoint messages back to
 * back, which protobuf reads as a single Checkpoint with many `value`
 * records; files reach many GB, so this scanner walks the wire format over
 * the mapping itself and points each tensor's pieces at its tensor_content
 * bytes (zero copy). Only what MindSpore writes is accepted: every length
 * is checked against the bytes that remain before it is used.
 *
 * Writing uses the protobuf-c code generated from checkpoint.proto, one
 * Checkpoint message per Value, streamed to the file without a copy of the
 * data. Before each message but the first goes an unknown field of zeros
 * (protobuf parsers skip those; MindSpore 2.10's load_checkpoint reads the
 * files unchanged) that puts the tensor's content on a 64-byte boundary,
 * so that a model can use it in place.
 *
 * What MindSpore 2.7.2 does (mindspore/train/serialization.py):
 *  - _write_parameter_bytes_data cuts a tensor's bytes into chunks of
 *    1024 * SLICE_SIZE = 512 MiB, one Checkpoint{Value} per chunk, all with
 *    the tensor's tag and full dims; the loader joins consecutive Values
 *    with the same tag (b"".join) and reshapes to the last one's dims.
 *  - save_checkpoint(crc_check=True) chains binascii.crc32 over every
 *    serialized message and appends b"crc_num" + crc.to_bytes(10, "big");
 *    _parse_ckpt_proto strips those 17 bytes whenever they are present and
 *    compares crc32(rest) only when asked to.
 *  - 0-d tensors have no dims (older versions wrote [0]; the loader turns
 *    [0] into ()). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "convert/checkpoint.pb-c.h"
#include "convert/source.h"

size_t vz_ckpt_slice_bytes = (size_t)512 * 1024 * 1024;

/* ---- CRC-32 (zlib's, as binascii.crc32), slicing by 8 ---- */

static void crc32_tables(uint32_t t[8][256]) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) {
      c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    }
    t[0][i] = c;
  }
  for (int s = 1; s < 8; s++) {
    for (int i = 0; i < 256; i++) {
      t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xff];
    }
  }
}

static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;
static void crc_init(void) { crc32_tables(crc_table); }

uint32_t vz_crc32(uint32_t crc, const void *data, size_t n) {
  pthread_once(&crc_once, crc_init);
  uint32_t(*t)[256] = crc_table;
  const uint8_t *p = data;
  crc = ~crc;
  while (n >= 8) {
    uint32_t lo =
        crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
    crc = t[7][lo & 0xff] ^ t[6][(lo >> 8) & 0xff] ^ t[5][(lo >> 16) & 0xff] ^ t[4][lo >> 24] ^
          t[3][p[4]] ^ t[2][p[5]] ^ t[1][p[6]] ^ t[0][p[7]];
    p += 8;
    n -= 8;
  }
  while (n--) {
    crc = t[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
  }
  return ~crc;
}

/* ---- Wire format ---- */

typedef struct cursor {
  const uint8_t *p, *end;
  const uint8_t *base; /* the file's first byte, for positions in messages */
} cursor;

static size_t pos(const cursor *c) { return (size_t)(c->p - c->base); }

static vz_status read_varint(cursor *c, uint64_t *v, const char *what) {
  uint64_t r = 0;
  size_t at = pos(c);
  for (int i = 0; i < 10; i++) {
    if (c->p >= c->end) {
      return vz_fail(VZ_ERR_FORMAT, "%s at byte %zu: varint runs past the end of its message", what,
                     at);
    }
    uint8_t b = *c->p++;
    if (i == 9 && b > 1) {
      return vz_fail(VZ_ERR_FORMAT, "%s at byte %zu: varint longer than 64 bits", what, at);
    }
    r |= (uint64_t)(b & 0x7f) << (7 * i);
    if (!(b & 0x80)) {
      *v = r;
      return VZ_OK;
    }
  }
  return vz_fail(VZ_ERR_FORMAT, "%s at byte %zu: varint longer than 64 bits", what, at);
}

/* A length-delimited field's payload: the length is checked against what
 * remains of the enclosing message (or file) before anything is read. */
static vz_status read_bytes(cursor *c, cursor *sub, const char *what, const char *container) {
  uint64_t len = 0;
  size_t at = pos(c);
  vz_status st = read_varint(c, &len, what);
  if (st != VZ_OK) {
    return st;
  }
  size_t left = (size_t)(c->end - c->p);
  if (len > left) {
    return vz_fail(VZ_ERR_FORMAT,
                   "%s at byte %zu: length %llu runs past the end of the %s (%zu bytes left)", what,
                   at, (unsigned long long)len, container, left);
  }
  sub->base = c->base;
  sub->p = c->p;
  sub->end = c->p + len;
  c->p += len;
  return VZ_OK;
}

static vz_status skip_field(cursor *c, unsigned wire, const char *container) {
  size_t at = pos(c);
  uint64_t v = 0;
  cursor sub;
  switch (wire) {
  case 0: return read_varint(c, &v, "unknown field");
  case 1:
  case 5: {
    size_t n = wire == 1 ? 8 : 4;
    if ((size_t)(c->end - c->p) < n) {
      return vz_fail(VZ_ERR_FORMAT, "unknown field at byte %zu runs past the end of the %s", at,
                     container);
    }
    c->p += n;
    return VZ_OK;
  }
  case 2: return read_bytes(c, &sub, "unknown field", container);
  default:
    return vz_fail(VZ_ERR_FORMAT, "byte %zu: wire type %u in the %s is not supported", at, wire,
                   container);
  }
}

static vz_status read_key(cursor *c, unsigned *field, unsigned *wire, const char *container) {
  uint64_t key = 0;
  size_t at = pos(c);
  vz_status st = read_varint(c, &key, "field key");
  if (st != VZ_OK) {
    return st;
  }
  if ((key >> 3) == 0 || (key >> 3) > 536870911u) {
    return vz_fail(VZ_ERR_FORMAT, "byte %zu: invalid field number in the %s", at, container);
  }
  *field = (unsigned)(key >> 3);
  *wire = (unsigned)(key & 7);
  return VZ_OK;
}

/* ---- Messages ---- */

typedef struct tensor_proto {
  int ndim; /* dims seen, may exceed VZ_WEIGHT_MAX_DIMS (then an error) */
  int64_t dims[VZ_WEIGHT_MAX_DIMS];
  const uint8_t *type;
  size_t type_len;
  const uint8_t *content;
  size_t content_len;
  bool has_type, has_content;
} tensor_proto;

static vz_status add_dim(tensor_proto *tp, uint64_t v, const char *name) {
  if (tp->ndim >= VZ_WEIGHT_MAX_DIMS) {
    tp->ndim++; /* counted for the message once all are read */
    return VZ_OK;
  }
  if (v > (uint64_t)INT64_MAX) {
    return vz_fail(VZ_ERR_FORMAT, "tensor '%s': negative dimension %lld", name, (long long)v);
  }
  tp->dims[tp->ndim++] = (int64_t)v;
  return VZ_OK;
}

static vz_status parse_tensor_proto(cursor c, tensor_proto *tp, const char *name) {
  memset(tp, 0, sizeof(*tp));
  vz_status st;
  while (c.p < c.end) {
    unsigned field = 0, wire = 0;
    if ((st = read_key(&c, &field, &wire, "TensorProto")) != VZ_OK) {
      return st;
    }
    cursor sub;
    uint64_t v = 0;
    if (field == 1 && wire == 0) { /* dims, unpacked */
      if ((st = read_varint(&c, &v, "dims")) != VZ_OK || (st = add_dim(tp, v, name)) != VZ_OK) {
        return st;
      }
    } else if (field == 1 && wire == 2) { /* dims, packed */
      if ((st = read_bytes(&c, &sub, "dims", "TensorProto")) != VZ_OK) {
        return st;
      }
      while (sub.p < sub.end) {
        if ((st = read_varint(&sub, &v, "dims")) != VZ_OK || (st = add_dim(tp, v, name)) != VZ_OK) {
          return st;
        }
      }
    } else if (field == 2 && wire == 2) {
      if ((st = read_bytes(&c, &sub, "tensor_type", "TensorProto")) != VZ_OK) {
        return st;
      }
      tp->type = sub.p;
      tp->type_len = (size_t)(sub.end - sub.p);
      tp->has_type = true;
    } else if (field == 3 && wire == 2) {
      if ((st = read_bytes(&c, &sub, "tensor_content", "TensorProto")) != VZ_OK) {
        return vz_fail_context(st, "tensor '%s': ", name);
      }
      tp->content = sub.p;
      tp->content_len = (size_t)(sub.end - sub.p);
      tp->has_content = true;
    } else if (field <= 3) {
      return vz_fail(VZ_ERR_FORMAT, "tensor '%s': field %u of TensorProto has wire type %u", name,
                     field, wire);
    } else if ((st = skip_field(&c, wire, "TensorProto")) != VZ_OK) {
      return st;
    }
  }
  if (tp->ndim > VZ_WEIGHT_MAX_DIMS) {
    return vz_fail(VZ_ERR_FORMAT, "tensor '%s': %d dimensions (at most %d are supported)", name,
                   tp->ndim, VZ_WEIGHT_MAX_DIMS);
  }
  if (!tp->has_type) {
    return vz_fail(VZ_ERR_FORMAT, "tensor '%s': no tensor_type", name);
  }
  if (!tp->has_content) {
    return vz_fail(VZ_ERR_FORMAT, "tensor '%s': no tensor_content", name);
  }
  return VZ_OK;
}

typedef struct type_name {
  const char *name;
  int dtype; /* -1: known to MindSpore, not supported here */
} type_name;

static const type_name k_types[] = {
    {"Float16", VZ_F16}, {"Float32", VZ_F32}, {"Float64", VZ_F64}, {"BFloat16", VZ_BF16},
    {"Int8", VZ_I8},     {"Int16", VZ_I16},   {"Int32", VZ_I32},   {"Int64", VZ_I64},
    {"UInt8", VZ_U8},    {"Uint8", VZ_U8},    {"Bool", VZ_BOOL},   {"UInt16", -1},
    {"UInt32", -1},      {"UInt64", -1},      {"Uint16", -1},      {"Uint32", -1},
    {"Uint64", -1},      {"str", -1},         {"Int4", -1},        {"random_op", -1},
};

static vz_status map_type(const tensor_proto *tp, const char *name, vz_dtype *out) {
  for (size_t i = 0; i < sizeof(k_types) / sizeof(k_types[0]); i++) {
    if (strlen(k_types[i].name) == tp->type_len &&
        memcmp(k_types[i].name, tp->type, tp->type_len) == 0) {
      if (k_types[i].dtype < 0) {
        return vz_fail(VZ_ERR_UNSUPPORTED, "tensor '%s': tensor_type %s is not supported", name,
                       k_types[i].name);
      }
      *out = (vz_dtype)k_types[i].dtype;
      return VZ_OK;
    }
  }
  char shown[40];
  size_t n = tp->type_len < sizeof(shown) - 1 ? tp->type_len : sizeof(shown) - 1;
  for (size_t i = 0; i < n; i++) {
    shown[i] = tp->type[i] >= 0x20 && tp->type[i] < 0x7f ? (char)tp->type[i] : '?';
  }
  shown[n] = '\0';
  return vz_fail(VZ_ERR_FORMAT, "tensor '%s': unknown tensor_type '%s'", name, shown);
}

/* The tensor being gathered from consecutive Values with one tag. */
typedef struct pending {
  bool active;
  char *name;
  size_t name_len;
  vz_dtype dtype;
  tensor_proto first;
  vz_source_piece *pieces;
  size_t n_pieces, cap_pieces;
  uint64_t total;
} pending;

static void pending_clear(pending *pd) {
  free(pd->name);
  free(pd->pieces);
  memset(pd, 0, sizeof(*pd));
}

static vz_status pending_add_piece(pending *pd, const uint8_t *bytes, size_t n) {
  if (pd->n_pieces == pd->cap_pieces) {
    size_t cap = pd->cap_pieces ? pd->cap_pieces * 2 : 1;
    vz_source_piece *p = realloc(pd->pieces, cap * sizeof(*p));
    if (!p) {
      return vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory reading tensor '%s'", pd->name);
    }
    pd->pieces = p;
    pd->cap_pieces = cap;
  }
  pd->pieces[pd->n_pieces].bytes = bytes;
  pd->pieces[pd->n_pieces].nbytes = n;
  pd->n_pieces++;
  pd->total += n; /* cannot wrap: every piece lies inside one mapping */
  return VZ_OK;
}

/* Turns the gathered Values into one tensor on the list. */
static vz_status pending_finish(pending *pd, vz_source_list *out) {
  vz_source_tensor t;
  memset(&t, 0, sizeof(t));
  t.info.name = pd->name;
  t.info.dtype = pd->dtype;
  const tensor_proto *tp = &pd->first;
  size_t elsize = vz_dtype_size(pd->dtype);
  /* 0-d: no dims (MindSpore 2.7), or [0] holding one element (older ones and
   * vlzoo); [0] holding nothing is an empty 1-d tensor. */
  if (tp->ndim == 0 || (tp->ndim == 1 && tp->dims[0] == 0 && pd->total == elsize)) {
    t.info.ndim = 0;
  } else {
    t.info.ndim = tp->ndim;
    memcpy(t.info.shape, tp->dims, sizeof(int64_t) * (size_t)tp->ndim);
  }
  vz_status st = vz_source_tensor_size(&t);
  if (st != VZ_OK) {
    return st;
  }
  if (pd->total != t.info.nbytes) {
    if (pd->dtype == VZ_BF16 && pd->total / 2 == t.info.nbytes && pd->total % 2 == 0) {
      return vz_fail(VZ_ERR_UNSUPPORTED,
                     "tensor '%s': BFloat16 data stored as 4-byte floats is not supported",
                     pd->name);
    }
    return vz_fail(VZ_ERR_FORMAT,
                   "tensor '%s': tensor_content holds %llu bytes in %zu piece(s), its shape "
                   "needs %zu",
                   pd->name, (unsigned long long)pd->total, pd->n_pieces, t.info.nbytes);
  }
  t.pieces = pd->pieces;
  t.n_pieces = pd->n_pieces;
  if ((st = vz_source_list_push(out, &t)) != VZ_OK) {
    return st;
  }
  pd->name = NULL; /* now owned by the list */
  pd->pieces = NULL;
  pending_clear(pd);
  return VZ_OK;
}

static vz_status parse_value(cursor c, pending *pd, vz_source_list *out) {
  const uint8_t *tag = NULL;
  size_t tag_len = 0;
  bool has_tag = false, has_tensor = false;
  cursor tensor = {0};
  vz_status st;
  size_t at = pos(&c);
  while (c.p < c.end) {
    unsigned field = 0, wire = 0;
    if ((st = read_key(&c, &field, &wire, "Value")) != VZ_OK) {
      return st;
    }
    cursor sub;
    if (field == 1 && wire == 2) {
      if ((st = read_bytes(&c, &sub, "tag", "Value")) != VZ_OK) {
        return st;
      }
      if (has_tag) {
        return vz_fail(VZ_ERR_FORMAT, "Value at byte %zu has two tags", at);
      }
      tag = sub.p;
      tag_len = (size_t)(sub.end - sub.p);
      has_tag = true;
    } else if (field == 2 && wire == 2) {
      if ((st = read_bytes(&c, &sub, "tensor", "Value")) != VZ_OK) {
        return st;
      }
      if (has_tensor) {
        return vz_fail(VZ_ERR_FORMAT, "Value at byte %zu has two tensors", at);
      }
      tensor = sub;
      has_tensor = true;
    } else if (field == 3) {
      char shown[200] = "";
      if (has_tag) {
        snprintf(shown, sizeof(shown), " ('%.*s')", (int)(tag_len < 160 ? tag_len : 160),
                 (const char *)tag);
      }
      return vz_fail(VZ_ERR_UNSUPPORTED, "Value at byte %zu%s: map tensors are not supported", at,
                     shown);
    } else if (field <= 2) {
      return vz_fail(VZ_ERR_FORMAT, "Value at byte %zu: field %u has wire type %u", at, field,
                     wire);
    } else if ((st = skip_field(&c, wire, "Value")) != VZ_OK) {
      return st;
    }
  }
  if (!has_tag) {
    return vz_fail(VZ_ERR_FORMAT, "Value at byte %zu has no tag", at);
  }
  if (memchr(tag, 0, tag_len)) {
    return vz_fail(VZ_ERR_FORMAT, "Value at byte %zu: tag contains a NUL byte", at);
  }
  /* A tensor continues while the tag stays the same. */
  bool same = pd->active && pd->name_len == tag_len && memcmp(pd->name, tag, tag_len) == 0;
  if (pd->active && !same && (st = pending_finish(pd, out)) != VZ_OK) {
    return st;
  }
  if (!same) {
    pd->name = malloc(tag_len + 1);
    if (!pd->name) {
      return vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory reading a tensor name");
    }
    memcpy(pd->name, tag, tag_len);
    pd->name[tag_len] = '\0';
    pd->name_len = tag_len;
    pd->active = true;
  }
  if (!has_tensor) {
    return vz_fail(VZ_ERR_FORMAT, "tensor '%s': Value has no tensor", pd->name);
  }
  tensor_proto tp;
  if ((st = parse_tensor_proto(tensor, &tp, pd->name)) != VZ_OK) {
    return st;
  }
  if (!same) {
    if ((st = map_type(&tp, pd->name, &pd->dtype)) != VZ_OK) {
      return st;
    }
    pd->first = tp;
  } else if (tp.ndim != pd->first.ndim ||
             memcmp(tp.dims, pd->first.dims, sizeof(int64_t) * (size_t)tp.ndim) != 0 ||
             tp.type_len != pd->first.type_len ||
             memcmp(tp.type, pd->first.type, tp.type_len) != 0) {
    return vz_fail(VZ_ERR_FORMAT,
                   "tensor '%s': slices disagree on dims or tensor_type (at byte %zu)", pd->name,
                   at);
  }
  return pending_add_piece(pd, tp.content, tp.content_len);
}

vz_status vz_read_mindspore_ckpt(const vz_mapped_file *f, vz_source_list *out) {
  cursor c = {f->bytes, f->bytes + f->size, f->bytes};
  pending pd;
  memset(&pd, 0, sizeof(pd));
  vz_status st = VZ_OK;
  size_t before = out->count;
  if (f->size == 0) {
    return vz_fail(VZ_ERR_FORMAT, "empty .ckpt file");
  }
  while (c.p < c.end) {
    size_t left = (size_t)(c.end - c.p);
    if (left == 17 && memcmp(c.p, "crc_num", 7) == 0) {
      /* The trailer save_checkpoint(crc_check=True) appends: 10 bytes of
       * big-endian binascii.crc32 over everything before it. */
      uint64_t want = 0;
      for (int i = 7; i < 17; i++) {
        if (i < 11 && c.p[i] != 0) {
          st = vz_fail(VZ_ERR_FORMAT, "crc_num trailer holds a value wider than 32 bits");
          goto fail;
        }
        want = want << 8 | c.p[i];
      }
      uint32_t got = vz_crc32(0, f->bytes, pos(&c));
      if (got != want) {
        st = vz_fail(VZ_ERR_FORMAT,
                     "CRC-32 mismatch: the crc_num trailer says %08llx, the data gives %08x "
                     "(damaged file?)",
                     (unsigned long long)want, got);
        goto fail;
      }
      break;
    }
    unsigned field = 0, wire = 0;
    size_t at = pos(&c);
    if ((st = read_key(&c, &field, &wire, "file")) != VZ_OK) {
      goto fail;
    }
    if (field == 1 && wire == 2) {
      cursor sub;
      if ((st = read_bytes(&c, &sub, "Value record", "file")) != VZ_OK ||
          (st = parse_value(sub, &pd, out)) != VZ_OK) {
        goto fail;
      }
    } else if (field == 1) {
      st = vz_fail(VZ_ERR_FORMAT, "byte %zu: Checkpoint.value has wire type %u", at, wire);
      goto fail;
    } else if ((st = skip_field(&c, wire, "file")) != VZ_OK) {
      goto fail;
    }
  }
  if (pd.active && (st = pending_finish(&pd, out)) != VZ_OK) {
    goto fail;
  }
  return VZ_OK;
fail:
  pending_clear(&pd);
  vz_source_list_truncate(out, before);
  return st;
}

/* ---- Writer ---- */

typedef struct file_buffer {
  ProtobufCBuffer base;
  FILE *f;
  uint64_t written; /* bytes so far: the file is new, so its offset */
  bool failed;
} file_buffer;

static void file_append(ProtobufCBuffer *b, size_t len, const uint8_t *data) {
  file_buffer *fb = (file_buffer *)b;
  if (!fb->failed && len && fwrite(data, 1, len, fb->f) != len) {
    fb->failed = true;
  }
  fb->written += len;
}

/* Checkpoint's field number for padding: one no MindSpore version uses, so
 * that its parser (and this one) skips it as an unknown field. */
enum { PADDING_FIELD = 1000 };

/* Writes an unknown length-delimited field of zeros so that a Checkpoint
 * whose tensor_content starts `content_at` bytes into it gets its content
 * on a VZ_WEIGHTS_ALIGNMENT boundary of the file, where a model can use it
 * in place. The field takes 3 bytes (2 of key, 1 of length) plus 0 to 63
 * of zeros. */
static void pad_for_content(file_buffer *fb, size_t content_at) {
  const uint64_t align = VZ_WEIGHTS_ALIGNMENT;
  uint64_t misaligned = (fb->written + content_at) % align;
  if (misaligned == 0) {
    return;
  }
  uint64_t total = align - misaligned;
  if (total < 3) {
    total += align;
  }
  uint8_t field[3 + VZ_WEIGHTS_ALIGNMENT] = {0};
  unsigned key = PADDING_FIELD << 3 | 2; /* wire type 2: length-delimited */
  field[0] = (uint8_t)(key | 0x80);
  field[1] = (uint8_t)(key >> 7);
  field[2] = (uint8_t)(total - 3);
  file_append(&fb->base, (size_t)total, field);
}

static const char *ckpt_type_name(vz_dtype dt) {
  switch (dt) {
  case VZ_F32: return "Float32";
  case VZ_F16: return "Float16";
  case VZ_BF16: return "BFloat16";
  case VZ_F64: return "Float64";
  case VZ_I64: return "Int64";
  case VZ_I32: return "Int32";
  case VZ_I16: return "Int16";
  case VZ_I8: return "Int8";
  case VZ_U8: return "UInt8";
  case VZ_BOOL: return "Bool";
  default: return NULL;
  }
}

vz_status vz_write_mindspore_ckpt(FILE *f, const vz_writer_entry *entries, size_t n) {
  file_buffer fb = {{file_append}, f, 0, false};
  size_t slice = vz_ckpt_slice_bytes;
  for (size_t i = 0; i < n; i++) {
    const vz_writer_entry *e = &entries[i];
    const char *type = ckpt_type_name(e->dtype);
    if (!type) {
      return vz_fail(VZ_ERR_DTYPE, "tensor '%s': dtype %d cannot be written to a .ckpt", e->name,
                     (int)e->dtype);
    }
    size_t elsize = vz_dtype_size(e->dtype);
    /* Whole elements per slice (512 MiB is a multiple of every size). */
    size_t step = slice / elsize * elsize;
    if (step == 0) {
      step = elsize;
    }
    int64_t zero = 0;
    size_t done = 0;
    do {
      size_t len = e->nbytes - done < step ? e->nbytes - done : step;
      VzMs__TensorProto tensor = VZ_MS__TENSOR_PROTO__INIT;
      if (e->ndim == 0) {
        tensor.n_dims = 1; /* MindSpore's spelling of a 0-d shape */
        tensor.dims = &zero;
      } else {
        tensor.n_dims = (size_t)e->ndim;
        tensor.dims = (int64_t *)e->shape;
      }
      tensor.tensor_type = (char *)type;
      tensor.tensor_content.len = len;
      tensor.tensor_content.data = len ? (uint8_t *)e->data + done : NULL;
      VzMs__Checkpoint__Value value = VZ_MS__CHECKPOINT__VALUE__INIT;
      value.tag = e->name;
      value.value_case = VZ_MS__CHECKPOINT__VALUE__VALUE_TENSOR;
      value.tensor = &tensor;
      VzMs__Checkpoint__Value *values[1] = {&value};
      VzMs__Checkpoint ckpt = VZ_MS__CHECKPOINT__INIT;
      ckpt.n_value = 1;
      ckpt.value = values;
      /* the content is the message's last bytes; the file's first byte
       * stays a Checkpoint.value key, which readers look for */
      if (len && fb.written > 0) {
        pad_for_content(&fb, vz_ms__checkpoint__get_packed_size(&ckpt) - len);
      }
      vz_ms__checkpoint__pack_to_buffer(&ckpt, &fb.base);
      if (fb.failed) {
        return vz_fail(VZ_ERR_IO, "writing tensor '%s' failed", e->name);
      }
      done += len;
    } while (done < e->nbytes);
  }
  return VZ_OK;
}

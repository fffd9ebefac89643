/* safetensors files: an 8-byte little-endian header length N, N bytes of
 * JSON, then the data buffer that the JSON's data_offsets point into.
 *
 * The reader is strict in the ways the reference implementation is: the
 * header is at most 100,000,000 bytes, every tensor's byte range matches its
 * dtype and shape, and the ranges, sorted, tile the data buffer exactly (no
 * gap, no overlap, nothing after the last). json-c keeps only the last of
 * two equal keys, so duplicates are found by counting the top-level keys
 * in the text with a small scanner and comparing with the parsed object's
 * length. */
#define _POSIX_C_SOURCE 200809L

#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "convert/source.h"

#define ST_HEADER_LIMIT 100000000ull
#define ST_JSON_DEPTH 16

typedef struct st_type {
  const char *name;
  int dtype; /* -1: a safetensors dtype vlzoo does not take */
} st_type;

static const st_type k_st_types[] = {
    {"F32", VZ_F32}, {"F16", VZ_F16}, {"BF16", VZ_BF16}, {"F64", VZ_F64}, {"I64", VZ_I64},
    {"I32", VZ_I32}, {"I16", VZ_I16}, {"I8", VZ_I8},     {"U8", VZ_U8},   {"BOOL", VZ_BOOL},
};

static const char *st_type_name(vz_dtype dt) {
  for (size_t i = 0; i < sizeof(k_st_types) / sizeof(k_st_types[0]); i++) {
    if (k_st_types[i].dtype == (int)dt) {
      return k_st_types[i].name;
    }
  }
  return NULL;
}

/* Keys of the top-level object, counted in the text. Only called on text
 * json-c has accepted in strict mode, so the structure is well formed. */
static size_t count_top_level_keys(const char *s, size_t n) {
  size_t keys = 0;
  int depth = 0;
  bool expect_key = false;
  for (size_t i = 0; i < n; i++) {
    char ch = s[i];
    if (ch == '"') {
      if (depth == 1 && expect_key) {
        keys++;
        expect_key = false;
      }
      for (i++; i < n && s[i] != '"'; i++) {
        if (s[i] == '\\') {
          i++;
        }
      }
    } else if (ch == '{' || ch == '[') {
      depth++;
      expect_key = depth == 1 && ch == '{';
    } else if (ch == '}' || ch == ']') {
      depth--;
    } else if (ch == ',' && depth == 1) {
      expect_key = true;
    }
  }
  return keys;
}

/* A non-negative JSON integer. */
static bool json_uint(json_object *o, uint64_t *v) {
  if (!o || !json_object_is_type(o, json_type_int) || json_object_get_int64(o) < 0) {
    return false;
  }
  *v = json_object_get_uint64(o);
  return true;
}

typedef struct st_entry {
  const char *name; /* points into the JSON object until copied */
  vz_dtype dtype;
  int ndim;
  int64_t shape[VZ_WEIGHT_MAX_DIMS];
  uint64_t begin, end;
  size_t order;
} st_entry;

static int st_entry_cmp(const void *a, const void *b) {
  const st_entry *x = a, *y = b;
  if (x->begin != y->begin) {
    return x->begin < y->begin ? -1 : 1;
  }
  if (x->end != y->end) {
    return x->end < y->end ? -1 : 1;
  }
  return x->order < y->order ? -1 : x->order > y->order;
}

static vz_status parse_entry(const char *name, json_object *v, st_entry *e) {
  if (!json_object_is_type(v, json_type_object)) {
    return vz_fail(VZ_ERR_FORMAT, "tensor '%s': entry is not a JSON object", name);
  }
  json_object *jd = NULL, *js = NULL, *jo = NULL;
  json_object_object_get_ex(v, "dtype", &jd);
  json_object_object_get_ex(v, "shape", &js);
  json_object_object_get_ex(v, "data_offsets", &jo);
  if (!jd || !json_object_is_type(jd, json_type_string)) {
    return vz_fail(VZ_ERR_FORMAT, "tensor '%s': no \"dtype\" string", name);
  }
  const char *dt = json_object_get_string(jd);
  bool found = false;
  for (size_t i = 0; i < sizeof(k_st_types) / sizeof(k_st_types[0]); i++) {
    if (strcmp(dt, k_st_types[i].name) == 0) {
      e->dtype = (vz_dtype)k_st_types[i].dtype;
      found = true;
    }
  }
  if (!found) {
    return vz_fail(VZ_ERR_UNSUPPORTED, "tensor '%s': dtype %.40s is not supported", name, dt);
  }
  if (!js || !json_object_is_type(js, json_type_array)) {
    return vz_fail(VZ_ERR_FORMAT, "tensor '%s': no \"shape\" array", name);
  }
  size_t nd = json_object_array_length(js);
  if (nd > VZ_WEIGHT_MAX_DIMS) {
    return vz_fail(VZ_ERR_FORMAT, "tensor '%s': %zu dimensions (at most %d are supported)", name,
                   nd, VZ_WEIGHT_MAX_DIMS);
  }
  e->ndim = (int)nd;
  for (size_t d = 0; d < nd; d++) {
    uint64_t dim;
    if (!json_uint(json_object_array_get_idx(js, d), &dim) || dim > (uint64_t)INT64_MAX) {
      return vz_fail(VZ_ERR_FORMAT,
                     "tensor '%s': shape entry %zu is not a non-negative 64-bit integer", name, d);
    }
    e->shape[d] = (int64_t)dim;
  }
  if (!jo || !json_object_is_type(jo, json_type_array) || json_object_array_length(jo) != 2 ||
      !json_uint(json_object_array_get_idx(jo, 0), &e->begin) ||
      !json_uint(json_object_array_get_idx(jo, 1), &e->end)) {
    return vz_fail(VZ_ERR_FORMAT,
                   "tensor '%s': \"data_offsets\" is not a pair of non-negative integers", name);
  }
  return VZ_OK;
}

/* Checks "__metadata__" (a map of strings) and keeps a copy in the list
 * when it has none yet. */
static vz_status read_metadata(json_object *v, vz_source_list *out) {
  if (json_object_is_type(v, json_type_null)) {
    return VZ_OK;
  }
  if (!json_object_is_type(v, json_type_object)) {
    return vz_fail(VZ_ERR_FORMAT, "\"__metadata__\" is not an object");
  }
  json_object_object_foreach(v, key, val) {
    if (!json_object_is_type(val, json_type_string)) {
      return vz_fail(VZ_ERR_FORMAT, "\"__metadata__\" entry '%.100s' is not a string", key);
    }
  }
  size_t n = (size_t)json_object_object_length(v);
  if (out->n_metadata > 0 || n == 0) {
    return VZ_OK;
  }
  out->metadata = calloc(n, sizeof *out->metadata);
  if (!out->metadata) {
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "safetensors: out of memory for metadata");
  }
  json_object_object_foreach(v, key2, val2) {
    vz_metadata_entry *m = &out->metadata[out->n_metadata++];
    m->key = strdup(key2);
    m->value = strdup(json_object_get_string(val2));
    if (!m->key || !m->value) {
      vz_source_list_clear_metadata(out);
      return vz_fail(VZ_ERR_OUT_OF_MEMORY, "safetensors: out of memory for metadata");
    }
  }
  return VZ_OK;
}

vz_status vz_read_safetensors(const vz_mapped_file *f, vz_source_list *out) {
  if (f->size < 8) {
    return vz_fail(VZ_ERR_FORMAT, "safetensors: file of %zu bytes is too small for a header",
                   f->size);
  }
  uint64_t n = 0;
  for (int i = 7; i >= 0; i--) {
    n = n << 8 | f->bytes[i];
  }
  if (n > ST_HEADER_LIMIT) {
    return vz_fail(VZ_ERR_FORMAT, "safetensors: header length %llu exceeds the limit of %llu bytes",
                   (unsigned long long)n, ST_HEADER_LIMIT);
  }
  if (n > f->size - 8) {
    return vz_fail(VZ_ERR_FORMAT,
                   "safetensors: header length %llu runs past the end of the file (%zu bytes)",
                   (unsigned long long)n, f->size);
  }
  const char *text = (const char *)f->bytes + 8;
  size_t text_len = (size_t)n;
  const uint8_t *data = f->bytes + 8 + text_len;
  uint64_t data_size = f->size - 8 - text_len;
  if (text_len == 0 || text[0] != '{') {
    return vz_fail(VZ_ERR_FORMAT, "safetensors: header does not start with '{'");
  }

  json_tokener *tok = json_tokener_new_ex(ST_JSON_DEPTH);
  if (!tok) {
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "safetensors: out of memory");
  }
  json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
  json_object *root = json_tokener_parse_ex(tok, text, (int)text_len);
  enum json_tokener_error jerr = json_tokener_get_error(tok);
  size_t end = json_tokener_get_parse_end(tok);
  json_tokener_free(tok);
  vz_status st = VZ_OK;
  size_t before = out->count, metadata_before = out->n_metadata;
  st_entry *entries = NULL;
  size_t count = 0;
  if (!root || jerr != json_tokener_success) {
    st = vz_fail(
        VZ_ERR_FORMAT, "safetensors: header is not valid JSON: %s (near byte %zu)",
        json_tokener_error_desc(jerr == json_tokener_success ? json_tokener_continue : jerr), end);
    goto done;
  }
  for (size_t i = end; i < text_len; i++) {
    char ch = text[i];
    if (ch != ' ' && ch != '\t' && ch != '\n' && ch != '\r') {
      st = vz_fail(VZ_ERR_FORMAT, "safetensors: header has bytes after its JSON object");
      goto done;
    }
  }
  if (!json_object_is_type(root, json_type_object)) {
    st = vz_fail(VZ_ERR_FORMAT, "safetensors: header is not a JSON object");
    goto done;
  }
  /* json-c cuts keys at an escaped NUL, which would rename tensors. */
  for (size_t i = 0; i + 6 <= end; i++) {
    if (memcmp(text + i, "\\u0000", 6) == 0) {
      st = vz_fail(VZ_ERR_FORMAT, "safetensors: header contains an escaped NUL character");
      goto done;
    }
  }
  size_t keys = (size_t)json_object_object_length(root);
  size_t keys_in_text = count_top_level_keys(text, end);
  if (keys_in_text != keys) {
    st = vz_fail(VZ_ERR_FORMAT, "safetensors: header has duplicate keys (%zu keys, %zu distinct)",
                 keys_in_text, keys);
    goto done;
  }
  entries = calloc(keys ? keys : 1, sizeof(st_entry));
  if (!entries) {
    st = vz_fail(VZ_ERR_OUT_OF_MEMORY, "safetensors: out of memory for %zu tensors", keys);
    goto done;
  }
  struct lh_entry *it;
  for (it = json_object_get_object(root)->head; it; it = it->next) {
    const char *name = (const char *)lh_entry_k(it);
    json_object *v = (json_object *)lh_entry_v(it);
    if (strcmp(name, "__metadata__") == 0) {
      if ((st = read_metadata(v, out)) != VZ_OK) {
        goto done;
      }
      continue;
    }
    st_entry *e = &entries[count];
    e->name = name;
    e->order = count;
    if ((st = parse_entry(name, v, e)) != VZ_OK) {
      goto done;
    }
    vz_source_tensor t;
    memset(&t, 0, sizeof(t));
    t.info.name = name;
    t.info.dtype = e->dtype;
    t.info.ndim = e->ndim;
    memcpy(t.info.shape, e->shape, sizeof(e->shape));
    if ((st = vz_source_tensor_size(&t)) != VZ_OK) {
      goto done;
    }
    if (e->begin > e->end) {
      st = vz_fail(VZ_ERR_FORMAT, "tensor '%s': data_offsets [%llu, %llu] are reversed", name,
                   (unsigned long long)e->begin, (unsigned long long)e->end);
      goto done;
    }
    if (e->end > data_size) {
      st = vz_fail(VZ_ERR_FORMAT,
                   "tensor '%s': data_offsets end %llu is past the end of the data buffer (%llu "
                   "bytes)",
                   name, (unsigned long long)e->end, (unsigned long long)data_size);
      goto done;
    }
    if (e->end - e->begin != t.info.nbytes) {
      st = vz_fail(VZ_ERR_FORMAT,
                   "tensor '%s': data_offsets cover %llu bytes, its dtype and shape need %zu", name,
                   (unsigned long long)(e->end - e->begin), t.info.nbytes);
      goto done;
    }
    count++;
  }

  /* The ranges must tile the buffer: sorted, each starts where the last
   * ended, and the last ends at the end of the file. */
  qsort(entries, count, sizeof(st_entry), st_entry_cmp);
  uint64_t at = 0;
  for (size_t i = 0; i < count; i++) {
    if (entries[i].begin < at) {
      st = vz_fail(VZ_ERR_FORMAT,
                   "safetensors: tensor '%s' (bytes %llu..%llu) overlaps the tensor before it",
                   entries[i].name, (unsigned long long)entries[i].begin,
                   (unsigned long long)entries[i].end);
      goto done;
    }
    if (entries[i].begin > at) {
      st = vz_fail(VZ_ERR_FORMAT, "safetensors: gap of %llu bytes in the data before tensor '%s'",
                   (unsigned long long)(entries[i].begin - at), entries[i].name);
      goto done;
    }
    at = entries[i].end;
  }
  if (at != data_size) {
    st = vz_fail(VZ_ERR_FORMAT,
                 "safetensors: tensors cover %llu bytes of a %llu-byte data buffer (gap at the "
                 "end)",
                 (unsigned long long)at, (unsigned long long)data_size);
    goto done;
  }

  for (size_t i = 0; i < count; i++) {
    const st_entry *e = &entries[i];
    vz_source_tensor t;
    memset(&t, 0, sizeof(t));
    char *name = strdup(e->name);
    if (!name) {
      st = vz_fail(VZ_ERR_OUT_OF_MEMORY, "safetensors: out of memory");
      goto done;
    }
    t.info.name = name;
    t.info.dtype = e->dtype;
    t.info.ndim = e->ndim;
    memcpy(t.info.shape, e->shape, sizeof(e->shape));
    vz_source_tensor_size(&t); /* checked above */
    t.storage = data + e->begin;
    t.storage_bytes = (size_t)(e->end - e->begin);
    t.offset = 0;
    vz_source_contiguous_strides(&t);
    if ((st = vz_source_list_push(out, &t)) != VZ_OK) {
      free(name);
      goto done;
    }
  }

done:
  if (st != VZ_OK) {
    vz_source_list_truncate(out, before);
    if (metadata_before == 0) {
      vz_source_list_clear_metadata(out);
    }
  }
  free(entries);
  json_object_put(root);
  return st;
}

/* ---- Writer ---- */

typedef struct strbuf {
  char *s;
  size_t len, cap;
  bool oom;
} strbuf;

static void sb_add(strbuf *b, const char *s, size_t n) {
  if (b->oom) {
    return;
  }
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1) {
      cap *= 2;
    }
    char *p = realloc(b->s, cap);
    if (!p) {
      b->oom = true;
      return;
    }
    b->s = p;
    b->cap = cap;
  }
  memcpy(b->s + b->len, s, n);
  b->len += n;
  b->s[b->len] = '\0';
}

static void sb_str(strbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

static void sb_fmt_u64(strbuf *b, uint64_t v) {
  char tmp[24];
  int n = snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)v);
  sb_add(b, tmp, (size_t)n);
}

/* A JSON string: quotes, backslashes and control characters escaped, other
 * bytes (UTF-8) as they are. */
static void sb_json_string(strbuf *b, const char *s) {
  sb_add(b, "\"", 1);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\') {
      char esc[2] = {'\\', (char)*p};
      sb_add(b, esc, 2);
    } else if (*p < 0x20) {
      char esc[8];
      snprintf(esc, sizeof(esc), "\\u%04x", *p);
      sb_add(b, esc, 6);
    } else {
      sb_add(b, (const char *)p, 1);
    }
  }
  sb_add(b, "\"", 1);
}

vz_status vz_write_safetensors(FILE *f, const vz_writer_entry *entries, size_t n,
                               const vz_metadata_entry *metadata, size_t n_metadata) {
  strbuf b = {0};
  /* "format": "pt" as torch-side writers put it, unless the caller sets it. */
  bool has_format = false;
  for (size_t i = 0; i < n_metadata; i++) {
    has_format = has_format || strcmp(metadata[i].key, "format") == 0;
  }
  sb_str(&b, has_format ? "{\"__metadata__\":{" : "{\"__metadata__\":{\"format\":\"pt\"");
  for (size_t i = 0; i < n_metadata; i++) {
    if (i > 0 || !has_format) {
      sb_add(&b, ",", 1);
    }
    sb_json_string(&b, metadata[i].key);
    sb_add(&b, ":", 1);
    sb_json_string(&b, metadata[i].value);
  }
  sb_add(&b, "}", 1);
  uint64_t offset = 0;
  for (size_t i = 0; i < n; i++) {
    const vz_writer_entry *e = &entries[i];
    const char *type = st_type_name(e->dtype);
    if (!type) {
      free(b.s);
      return vz_fail(VZ_ERR_DTYPE, "tensor '%s': dtype %d cannot be written to safetensors",
                     e->name, (int)e->dtype);
    }
    sb_add(&b, ",", 1);
    sb_json_string(&b, e->name);
    sb_str(&b, ":{\"dtype\":\"");
    sb_str(&b, type);
    sb_str(&b, "\",\"shape\":[");
    for (int d = 0; d < e->ndim; d++) {
      if (d) {
        sb_add(&b, ",", 1);
      }
      sb_fmt_u64(&b, (uint64_t)e->shape[d]);
    }
    sb_str(&b, "],\"data_offsets\":[");
    sb_fmt_u64(&b, offset);
    sb_add(&b, ",", 1);
    offset += e->nbytes;
    sb_fmt_u64(&b, offset);
    sb_str(&b, "]}");
  }
  sb_add(&b, "}", 1);
  /* Spaces (as Hugging Face's writer pads to 8) up to a data section on a
   * 64-byte boundary: a model uses the tensors in place (vz_tensor_wrap_host)
   * and reads their rows with aligned vectors. */
  while (!b.oom && (8 + b.len) % VZ_WEIGHTS_ALIGNMENT != 0) {
    sb_add(&b, " ", 1);
  }
  if (b.oom) {
    free(b.s);
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "safetensors: out of memory building the header");
  }
  if (b.len > ST_HEADER_LIMIT) {
    free(b.s);
    return vz_fail(VZ_ERR_INVALID_ARGUMENT,
                   "safetensors: header of %zu bytes exceeds the format's limit", b.len);
  }
  uint8_t len8[8];
  for (int i = 0; i < 8; i++) {
    len8[i] = (uint8_t)((uint64_t)b.len >> (8 * i));
  }
  bool ok = fwrite(len8, 1, 8, f) == 8 && fwrite(b.s, 1, b.len, f) == b.len;
  free(b.s);
  for (size_t i = 0; ok && i < n; i++) {
    ok = entries[i].nbytes == 0 ||
         fwrite(entries[i].data, 1, entries[i].nbytes, f) == entries[i].nbytes;
  }
  if (!ok) {
    return vz_fail(VZ_ERR_IO, "safetensors: write failed");
  }
  return VZ_OK;
}

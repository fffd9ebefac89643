/* vz_convert: inputs -> (name map plans) -> one output file. See
 * include/vlzoo/convert.h; the names and layouts are in convert/name_map.c.
 *
 * Two plans run one after the other: inputs -> vlzoo tensors -> output
 * tensors. A tensor that is only renamed, or a row range of another (the
 * parts of a split qkv), points into the memory-mapped input; transposes,
 * joins, casts and made-up tensors get their own buffers, all kept until
 * the writer has committed the file. */
#include "vlzoo/convert.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert/name_map.h"
#include "ops/internal.h"

/* One tensor of a stage: its bytes, and whether we own them. */
typedef struct blob {
  const void *data;
  void *owned;
  size_t nbytes;
} blob;

typedef struct input {
  vz_weights *w;
  size_t index;
  const char *path;
} input;

typedef struct state {
  const vz_convert_options *o;
  vz_weights **files;
  size_t n_files;
  input *inputs; /* merged, in input order */
  vz_map_entry *in_entries;
  size_t n_in;
  vz_map_plan mid, out; /* mid: vlzoo tensors; out: what is written */
  bool mapped;          /* with a model (mid is used) */
  blob *in_blobs, *mid_blobs, *out_blobs;
  size_t dropped, made;
} state;

static void note(state *s, const char *text) {
  if (strncmp(text, "dropped", 7) == 0)
    s->dropped++;
  else if (strncmp(text, "made", 4) == 0)
    s->made++;
  if (s->o->note)
    s->o->note(s->o->user, text);
}

static size_t entry_bytes(const vz_map_entry *e) {
  size_t n = vz_dtype_size(e->dtype);
  for (int d = 0; d < e->ndim; d++)
    n *= (size_t)e->shape[d];
  return n;
}

static void blobs_free(blob *b, size_t n) {
  if (!b)
    return;
  for (size_t i = 0; i < n; i++)
    free(b[i].owned);
  free(b);
}

/* ---- Element helpers ---- */

static double load_float(const uint8_t *p, vz_dtype dt) {
  switch (dt) {
  case VZ_F32: {
    float f;
    memcpy(&f, p, 4);
    return f;
  }
  case VZ_F64: {
    double d;
    memcpy(&d, p, 8);
    return d;
  }
  case VZ_F16: {
    uint16_t h;
    memcpy(&h, p, 2);
    return vz_f16_to_f32(h);
  }
  case VZ_BF16: {
    uint16_t h;
    memcpy(&h, p, 2);
    return vz_bf16_to_f32(h);
  }
  default: return 0;
  }
}

static void store_float(uint8_t *p, vz_dtype dt, double v) {
  switch (dt) {
  case VZ_F32: {
    float f = (float)v;
    memcpy(p, &f, 4);
    break;
  }
  case VZ_F64: memcpy(p, &v, 8); break;
  case VZ_F16: {
    uint16_t h = vz_f32_to_f16((float)v);
    memcpy(p, &h, 2);
    break;
  }
  case VZ_BF16: {
    uint16_t h = vz_f32_to_bf16((float)v);
    memcpy(p, &h, 2);
    break;
  }
  default: break;
  }
}

static bool load_int(const uint8_t *p, vz_dtype dt, int64_t *v) {
  switch (dt) {
  case VZ_I64: memcpy(v, p, 8); return true;
  case VZ_I32: {
    int32_t x;
    memcpy(&x, p, 4);
    *v = x;
    return true;
  }
  case VZ_I16: {
    int16_t x;
    memcpy(&x, p, 2);
    *v = x;
    return true;
  }
  case VZ_I8: *v = (int8_t)p[0]; return true;
  case VZ_U8: *v = p[0]; return true;
  default: return false;
  }
}

static void store_int(uint8_t *p, vz_dtype dt, int64_t v) {
  switch (dt) {
  case VZ_I64: memcpy(p, &v, 8); break;
  case VZ_I32: {
    int32_t x = (int32_t)v;
    memcpy(p, &x, 4);
    break;
  }
  case VZ_I16: {
    int16_t x = (int16_t)v;
    memcpy(p, &x, 2);
    break;
  }
  case VZ_I8:
  case VZ_U8:
  case VZ_BOOL: p[0] = (uint8_t)v; break;
  default: store_float(p, dt, (double)v); break;
  }
}

/* dst[c][r] = src[r][c] for a rows x cols matrix of `es`-byte elements;
 * tiled, with the element size a constant in each instantiation. */
static inline void transpose_es(uint8_t *dst, const uint8_t *src, int64_t rows, int64_t cols,
                                size_t es) {
  enum { TILE = 32 };
  for (int64_t r0 = 0; r0 < rows; r0 += TILE)
    for (int64_t c0 = 0; c0 < cols; c0 += TILE) {
      int64_t r1 = r0 + TILE < rows ? r0 + TILE : rows;
      int64_t c1 = c0 + TILE < cols ? c0 + TILE : cols;
      for (int64_t r = r0; r < r1; r++)
        for (int64_t c = c0; c < c1; c++)
          memcpy(dst + ((size_t)c * (size_t)rows + (size_t)r) * es,
                 src + ((size_t)r * (size_t)cols + (size_t)c) * es, es);
    }
}

static void transpose(uint8_t *dst, const uint8_t *src, int64_t rows, int64_t cols, size_t es) {
  switch (es) {
  case 1: transpose_es(dst, src, rows, cols, 1); break;
  case 2: transpose_es(dst, src, rows, cols, 2); break;
  case 4: transpose_es(dst, src, rows, cols, 4); break;
  case 8: transpose_es(dst, src, rows, cols, 8); break;
  default: transpose_es(dst, src, rows, cols, es); break;
  }
}

/* ---- Running a plan ---- */

static vz_status run_entry(const vz_map_entry *e, const vz_map_entry *prev, const blob *pb,
                           blob *out) {
  size_t nbytes = entry_bytes(e), es = vz_dtype_size(e->dtype);
  out->nbytes = nbytes;
  out->owned = NULL;
  out->data = NULL;
  if (e->op == VZ_MAP_COPY) {
    if (pb[e->src[0]].nbytes != nbytes)
      return vz_fail(VZ_ERR_FORMAT, "'%s': %zu bytes, expected %zu", prev[e->src[0]].name,
                     pb[e->src[0]].nbytes, nbytes);
    out->data = pb[e->src[0]].data;
    return VZ_OK;
  }
  if (e->op == VZ_MAP_SLICE) {
    const blob *b = &pb[e->src[0]];
    size_t row = e->shape[0] ? nbytes / (size_t)e->shape[0] : 0;
    if ((size_t)e->offset * row + nbytes > b->nbytes)
      return vz_fail(VZ_ERR_FORMAT, "'%s': rows past the end of '%s'", e->name,
                     prev[e->src[0]].name);
    out->data = (const uint8_t *)b->data + (size_t)e->offset * row;
    return VZ_OK;
  }
  uint8_t *buf = malloc(nbytes ? nbytes : 1);
  if (!buf)
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "'%s': cannot allocate %zu bytes", e->name, nbytes);
  out->owned = buf;
  out->data = buf;
  switch (e->op) {
  case VZ_MAP_TRANSPOSE:
    if (pb[e->src[0]].nbytes != nbytes)
      return vz_fail(VZ_ERR_FORMAT, "'%s': size mismatch", prev[e->src[0]].name);
    transpose(buf, pb[e->src[0]].data, e->shape[1], e->shape[0], es);
    break;
  case VZ_MAP_CONCAT: {
    size_t at = 0;
    for (int k = 0; k < e->n_src; k++) {
      const blob *b = &pb[e->src[k]];
      if (at + b->nbytes > nbytes)
        return vz_fail(VZ_ERR_FORMAT, "'%s': parts larger than the whole", e->name);
      memcpy(buf + at, b->data, b->nbytes);
      at += b->nbytes;
    }
    if (at != nbytes)
      return vz_fail(VZ_ERR_FORMAT, "'%s': parts smaller than the whole", e->name);
    break;
  }
  case VZ_MAP_QV_BIAS: {
    const blob *q = &pb[e->src[0]], *v = &pb[e->src[1]];
    if (q->nbytes * 3 != nbytes || v->nbytes != q->nbytes)
      return vz_fail(VZ_ERR_FORMAT, "'%s': q/v bias sizes do not fit", e->name);
    memcpy(buf, q->data, q->nbytes);
    memset(buf + q->nbytes, 0, q->nbytes);
    memcpy(buf + 2 * q->nbytes, v->data, v->nbytes);
    break;
  }
  case VZ_MAP_ZEROS: memset(buf, 0, nbytes); break;
  case VZ_MAP_ONES:
  case VZ_MAP_ARANGE: {
    size_t n = es ? nbytes / es : 0;
    for (size_t k = 0; k < n; k++) {
      int64_t v = e->op == VZ_MAP_ONES ? 1 : (int64_t)k;
      if (vz_dtype_is_float(e->dtype))
        store_float(buf + k * es, e->dtype, (double)v);
      else
        store_int(buf + k * es, e->dtype, v);
    }
    break;
  }
  default: return vz_fail(VZ_ERR_INVALID_ARGUMENT, "'%s': unknown map op", e->name);
  }
  return VZ_OK;
}

static vz_status run_plan(const vz_map_plan *p, const vz_map_entry *prev, const blob *pb,
                          blob **out) {
  *out = calloc(p->count ? p->count : 1, sizeof **out);
  if (!*out)
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "convert: out of memory");
  for (size_t i = 0; i < p->count; i++) {
    vz_status st = run_entry(&p->items[i], prev, pb, &(*out)[i]);
    if (st != VZ_OK)
      return st;
  }
  return VZ_OK;
}

/* The data conditions of a plan's notes (on the stage before it). */
static vz_status check_notes(const vz_map_plan *p, const vz_map_entry *prev, const blob *pb) {
  for (size_t i = 0; i < p->n_notes; i++) {
    const vz_map_note *n = &p->notes[i];
    if (n->check == VZ_MAP_CHECK_NONE)
      continue;
    const vz_map_entry *e = &prev[n->src];
    const uint8_t *d = pb[n->src].data;
    size_t es = vz_dtype_size(e->dtype);
    if ((size_t)(n->offset + n->count) * es > pb[n->src].nbytes)
      return vz_fail(VZ_ERR_FORMAT, "'%s' is smaller than its shape", e->name);
    for (int64_t k = 0; k < n->count; k++) {
      const uint8_t *p8 = d + (size_t)(n->offset + k) * es;
      if (n->check == VZ_MAP_CHECK_ARANGE) {
        int64_t v;
        if (!load_int(p8, e->dtype, &v))
          return vz_fail(VZ_ERR_DTYPE, "'%s' is %s, expected integer position ids", e->name,
                         vz_dtype_name(e->dtype));
        if (v != k)
          return vz_fail(VZ_ERR_FORMAT,
                         "'%s' holds %lld at %lld, not 0..n-1: it cannot be dropped and remade",
                         e->name, (long long)v, (long long)k);
      } else {
        bool zero = vz_dtype_is_float(e->dtype) ? load_float(p8, e->dtype) == 0.0 : false;
        if (!vz_dtype_is_float(e->dtype)) {
          zero = true;
          for (size_t b = 0; b < es; b++)
            zero &= p8[b] == 0;
        }
        if (!zero)
          return vz_fail(VZ_ERR_FORMAT,
                         "'%s': element %lld is not zero, but the output naming has no place "
                         "for it",
                         e->name, (long long)(n->offset + k));
      }
    }
  }
  return VZ_OK;
}

/* ---- Inputs ---- */

typedef struct name_ref {
  const char *name;
  size_t index;
} name_ref;

static int cmp_name_ref(const void *a, const void *b) {
  const name_ref *x = a, *y = b;
  int c = strcmp(x->name, y->name);
  return c ? c : (x->index < y->index ? -1 : x->index > y->index);
}

static vz_status open_inputs(state *s) {
  const vz_convert_options *o = s->o;
  s->files = calloc(o->n_inputs, sizeof *s->files);
  if (!s->files)
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "convert: out of memory");
  size_t total = 0;
  for (size_t f = 0; f < o->n_inputs; f++) {
    if (!o->inputs[f])
      return vz_fail(VZ_ERR_INVALID_ARGUMENT, "convert: input %zu is NULL", f);
    vz_status st = vz_weights_open(o->inputs[f], &s->files[f]);
    s->n_files = f + 1;
    if (st != VZ_OK)
      return vz_fail_context(st, "%s: ", o->inputs[f]);
    total += vz_weights_count(s->files[f]);
  }
  s->inputs = calloc(total ? total : 1, sizeof *s->inputs);
  name_ref *refs = calloc(total ? total : 1, sizeof *refs);
  if (!s->inputs || !refs) {
    free(refs);
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "convert: out of memory");
  }
  size_t k = 0;
  for (size_t f = 0; f < s->n_files; f++)
    for (size_t i = 0; i < vz_weights_count(s->files[f]); i++, k++) {
      s->inputs[k] = (input){s->files[f], i, o->inputs[f]};
      refs[k] = (name_ref){vz_weights_info(s->files[f], i)->name, k};
    }
  /* duplicates across inputs: kept once when identical, an error otherwise */
  bool *skip = calloc(total ? total : 1, sizeof *skip);
  if (!skip) {
    free(refs);
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "convert: out of memory");
  }
  qsort(refs, total, sizeof *refs, cmp_name_ref);
  vz_status st = VZ_OK;
  for (size_t r = 1; r < total && st == VZ_OK; r++) {
    if (strcmp(refs[r - 1].name, refs[r].name) != 0)
      continue;
    size_t first = refs[r - 1].index, dup = refs[r].index;
    const input *a = &s->inputs[first], *b = &s->inputs[dup];
    const vz_weight_info *ia = vz_weights_info(a->w, a->index),
                         *ib = vz_weights_info(b->w, b->index);
    const void *da, *db;
    size_t na, nb;
    bool same = ia->dtype == ib->dtype && ia->ndim == ib->ndim &&
                memcmp(ia->shape, ib->shape, sizeof ia->shape[0] * (size_t)ia->ndim) == 0;
    if (same) {
      st = vz_weights_data(a->w, a->index, &da, &na);
      if (st == VZ_OK)
        st = vz_weights_data(b->w, b->index, &db, &nb);
      if (st != VZ_OK)
        break;
      same = na == nb && memcmp(da, db, na) == 0;
    }
    if (!same) {
      st = vz_fail(VZ_ERR_FORMAT, "'%s' is in both %s and %s, with different values", ia->name,
                   a->path, b->path);
      break;
    }
    skip[dup] = true;
    char text[512];
    snprintf(text, sizeof text, "dropped %s from %s: the same tensor is in %s", ia->name, b->path,
             a->path);
    note(s, text);
    refs[r].index = first; /* a third copy compares with the first */
  }
  free(refs);
  if (st == VZ_OK) {
    size_t w = 0;
    for (size_t i = 0; i < total; i++)
      if (!skip[i])
        s->inputs[w++] = s->inputs[i];
    s->n_in = w;
    s->in_entries = calloc(w ? w : 1, sizeof *s->in_entries);
    s->in_blobs = calloc(w ? w : 1, sizeof *s->in_blobs);
    if (!s->in_entries || !s->in_blobs)
      st = vz_fail(VZ_ERR_OUT_OF_MEMORY, "convert: out of memory");
    for (size_t i = 0; i < w && st == VZ_OK; i++) {
      const vz_weight_info *info = vz_weights_info(s->inputs[i].w, s->inputs[i].index);
      vz_map_entry *e = &s->in_entries[i];
      e->name = (char *)info->name; /* borrowed: never freed through this array */
      e->dtype = info->dtype;
      e->ndim = info->ndim;
      memcpy(e->shape, info->shape, sizeof e->shape);
      e->op = VZ_MAP_COPY;
      e->n_src = 1;
      e->src[0] = i;
    }
  }
  free(skip);
  if (st == VZ_OK && s->n_in == 0)
    st = vz_fail(VZ_ERR_FORMAT, "convert: the inputs hold no tensors");
  return st;
}

static vz_status load_input_data(state *s) {
  for (size_t i = 0; i < s->n_in; i++) {
    const void *d;
    size_t n;
    vz_status st = vz_weights_data(s->inputs[i].w, s->inputs[i].index, &d, &n);
    if (st != VZ_OK)
      return vz_fail_context(st, "%s: ", s->inputs[i].path);
    if (n != entry_bytes(&s->in_entries[i]))
      return vz_fail(VZ_ERR_FORMAT, "%s: '%s' has %zu bytes, its shape says %zu", s->inputs[i].path,
                     s->in_entries[i].name, n, entry_bytes(&s->in_entries[i]));
    s->in_blobs[i] = (blob){d, NULL, n};
  }
  return VZ_OK;
}

/* ---- Casting ---- */

static vz_status cast_outputs(state *s, const vz_map_plan *p, blob *b) {
  vz_dtype to = s->o->dtype;
  for (size_t i = 0; i < p->count; i++) {
    vz_map_entry *e = &p->items[i];
    if (!vz_dtype_is_float(e->dtype) || e->dtype == to)
      continue;
    size_t n = vz_dtype_size(e->dtype) ? b[i].nbytes / vz_dtype_size(e->dtype) : 0;
    size_t es_to = vz_dtype_size(to), es_from = vz_dtype_size(e->dtype);
    uint8_t *buf = malloc(n * es_to > 0 ? n * es_to : 1);
    if (!buf)
      return vz_fail(VZ_ERR_OUT_OF_MEMORY, "'%s': cannot allocate its %s copy", e->name,
                     vz_dtype_name(to));
    const uint8_t *src = b[i].data;
    for (size_t k = 0; k < n; k++) {
      if (e->dtype == VZ_F32 && to != VZ_F64) {
        float f;
        memcpy(&f, src + k * es_from, 4);
        uint16_t h = to == VZ_F16 ? vz_f32_to_f16(f) : vz_f32_to_bf16(f);
        memcpy(buf + k * es_to, &h, 2);
      } else {
        store_float(buf + k * es_to, to, load_float(src + k * es_from, e->dtype));
      }
    }
    free(b[i].owned);
    b[i] = (blob){buf, buf, n * es_to};
    e->dtype = to;
  }
  return VZ_OK;
}

/* ---- Tied copies ---- */

/* vlzoo naming keeps the Q-Former LM head, whose decoder weight and bias
 * are the word embeddings and the head's bias under other names (LAVIS ties
 * them). Written twice they would double the file of a small model (the
 * 30523-row table is most of blip2_tiny_shapes), and vlzoo's loader ties a
 * missing decoder back (models/blip2_stage1.c), as reading vlzoo names does
 * (name_map.c's ties): so an output tensor that only repeats its twin's
 * bytes is left out, with a note. */
static const struct {
  const char *copy, *twin;
} tied_copies[] = {
    {"qformer.cls.predictions.decoder.weight", "embeddings.word_embeddings.weight"},
    {"qformer.cls.predictions.decoder.bias", "qformer.cls.predictions.bias"},
};

static ptrdiff_t find_output(const vz_map_plan *p, const char *name) {
  for (size_t i = 0; i < p->count; i++)
    if (strcmp(p->items[i].name, name) == 0)
      return (ptrdiff_t)i;
  return -1;
}

/* Marks in skip[] the outputs that repeat their tied twin byte for byte. */
static void skip_tied_copies(state *s, bool *skip) {
  char text[256];
  for (size_t t = 0; t < sizeof tied_copies / sizeof tied_copies[0]; t++) {
    ptrdiff_t c = find_output(&s->out, tied_copies[t].copy);
    ptrdiff_t w = find_output(&s->out, tied_copies[t].twin);
    if (c < 0 || w < 0)
      continue;
    const vz_map_entry *ec = &s->out.items[c], *ew = &s->out.items[w];
    const blob *bc = &s->out_blobs[c], *bw = &s->out_blobs[w];
    if (ec->dtype != ew->dtype || ec->ndim != ew->ndim ||
        memcmp(ec->shape, ew->shape, sizeof ec->shape) != 0 || bc->nbytes != bw->nbytes ||
        memcmp(bc->data, bw->data, bc->nbytes) != 0)
      continue;
    skip[c] = true;
    snprintf(text, sizeof text, "dropped %s: the same values as %s (tied), which vlzoo ties back",
             ec->name, ew->name);
    note(s, text);
  }
}

/* ---- Entry points ---- */

vz_status vz_convert_check_model(const char *model) {
  if (model && vz_map_model_find(model))
    return VZ_OK;
  char near[256];
  vz_map_model_suggest(model, near, sizeof near);
  if (near[0])
    return vz_fail(VZ_ERR_NOT_FOUND, "unknown model '%s'; did you mean %s?", model ? model : "",
                   near);
  return vz_fail(VZ_ERR_NOT_FOUND,
                 "unknown model '%s' (known: blip2_stage1_vit_g, "
                 "blip2_stage1_evaluator, blip2_stage1_classification, "
                 "blip2_stage1_pretrained and the stage-2 names)",
                 model ? model : "");
}

static vz_status plan_notes_out(state *s, const vz_map_plan *p) {
  for (size_t i = 0; i < p->n_notes; i++)
    note(s, p->notes[i].text);
  return VZ_OK;
}

static vz_status identity_plan(state *s) {
  vz_map_plan *p = &s->out;
  p->items = calloc(s->n_in, sizeof *p->items);
  if (!p->items)
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "convert: out of memory");
  p->capacity = s->n_in;
  for (size_t i = 0; i < s->n_in; i++) {
    vz_map_entry e = s->in_entries[i];
    e.name = malloc(strlen(s->in_entries[i].name) + 1);
    if (!e.name)
      return vz_fail(VZ_ERR_OUT_OF_MEMORY, "convert: out of memory");
    strcpy(e.name, s->in_entries[i].name);
    e.op = VZ_MAP_COPY;
    e.n_src = 1;
    e.src[0] = i;
    p->items[p->count++] = e;
  }
  return VZ_OK;
}

static vz_status convert(state *s) {
  const vz_convert_options *o = s->o;
  const vz_map_model *model = NULL;
  vz_naming from = VZ_NAMING_HF, to = VZ_NAMING_HF;
  if (o->model) {
    vz_status st = vz_convert_check_model(o->model);
    if (st != VZ_OK)
      return st;
    model = vz_map_model_find(o->model);
    if (o->to) {
      if ((st = vz_naming_from_name(o->to, &to)) != VZ_OK)
        return st;
    } else {
      to = o->format == VZ_FORMAT_MINDSPORE_CKPT ? VZ_NAMING_MINDFORMERS : VZ_NAMING_HF;
    }
  } else if ((o->from && strcmp(o->from, "auto") != 0) || o->to) {
    return vz_fail(VZ_ERR_INVALID_ARGUMENT,
                   "convert: a naming (from/to) needs a model; without one names are kept");
  }
  if (o->cast && o->dtype != VZ_F32 && o->dtype != VZ_F16 && o->dtype != VZ_BF16)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "convert: dtype must be f32, f16 or bf16, not %s",
                   vz_dtype_name(o->dtype));

  vz_status st = open_inputs(s);
  if (st != VZ_OK)
    return st;

  if (model) {
    if (!o->from || strcmp(o->from, "auto") == 0) {
      size_t covered = 0;
      if ((st = vz_map_detect(s->in_entries, s->n_in, &from, &covered)) != VZ_OK)
        return st;
    } else if ((st = vz_naming_from_name(o->from, &from)) != VZ_OK) {
      return st;
    }
    if ((st = vz_map_to_vlzoo(from, model, s->in_entries, s->n_in, &s->mid)) != VZ_OK)
      return vz_fail_context(st, "reading %s names: ", vz_naming_name(from));
    if ((st = vz_map_from_vlzoo(to, model, s->mid.items, s->mid.count, &s->out)) != VZ_OK)
      return vz_fail_context(st, "writing %s names: ", vz_naming_name(to));
    s->mapped = true;
    plan_notes_out(s, &s->mid);
    plan_notes_out(s, &s->out);
  } else if ((st = identity_plan(s)) != VZ_OK) {
    return st;
  }

  if ((st = load_input_data(s)) != VZ_OK)
    return st;
  const vz_map_entry *prev = s->in_entries;
  const blob *pb = s->in_blobs;
  if (s->mapped) {
    if ((st = check_notes(&s->mid, s->in_entries, s->in_blobs)) != VZ_OK)
      return st;
    if ((st = run_plan(&s->mid, s->in_entries, s->in_blobs, &s->mid_blobs)) != VZ_OK)
      return st;
    if ((st = check_notes(&s->out, s->mid.items, s->mid_blobs)) != VZ_OK)
      return st;
    prev = s->mid.items;
    pb = s->mid_blobs;
  }
  if ((st = run_plan(&s->out, prev, pb, &s->out_blobs)) != VZ_OK)
    return st;
  if (o->cast && (st = cast_outputs(s, &s->out, s->out_blobs)) != VZ_OK)
    return st;

  bool *skip = calloc(s->out.count ? s->out.count : 1, sizeof *skip);
  if (!skip)
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "convert: out of memory");
  if (s->mapped && to == VZ_NAMING_VLZOO)
    skip_tied_copies(s, skip);
  size_t written = 0;
  vz_weights_writer *wr = NULL;
  if ((st = vz_weights_writer_open(o->output, o->format, &wr)) != VZ_OK) {
    free(skip);
    return st;
  }
  for (size_t i = 0; i < s->out.count && st == VZ_OK; i++) {
    const vz_map_entry *e = &s->out.items[i];
    if (skip[i])
      continue;
    st = vz_weights_writer_add(wr, e->name, e->dtype, e->ndim, e->shape, s->out_blobs[i].data,
                               s->out_blobs[i].nbytes);
    written++;
  }
  free(skip);
  if (st != VZ_OK) {
    vz_weights_writer_abort(wr);
    return st;
  }
  if ((st = vz_weights_writer_commit(wr)) != VZ_OK)
    return st;

  if (o->summary) {
    vz_convert_summary *sum = o->summary;
    memset(sum, 0, sizeof *sum);
    sum->tensors_read = s->n_in;
    sum->tensors_written = written;
    sum->dropped = s->dropped;
    sum->made = s->made;
    if (s->mapped) {
      snprintf(sum->from, sizeof sum->from, "%s", vz_naming_name(from));
      snprintf(sum->to, sizeof sum->to, "%s", vz_naming_name(to));
    }
  }
  return VZ_OK;
}

vz_status vz_convert(const vz_convert_options *opts) {
  if (!opts || !opts->output || !opts->inputs || opts->n_inputs == 0)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "convert: inputs and an output are required");
  if (opts->format != VZ_FORMAT_MINDSPORE_CKPT && opts->format != VZ_FORMAT_SAFETENSORS)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "convert: unknown output format");
  state s = {0};
  s.o = opts;
  vz_status st = convert(&s);
  blobs_free(s.out_blobs, s.out.count);
  blobs_free(s.mid_blobs, s.mid.count);
  free(s.in_blobs); /* input bytes belong to the sources */
  vz_map_plan_free(&s.out);
  vz_map_plan_free(&s.mid);
  free(s.in_entries);
  free(s.inputs);
  for (size_t f = 0; f < s.n_files; f++)
    vz_weights_close(s.files[f]);
  free(s.files);
  return st;
}

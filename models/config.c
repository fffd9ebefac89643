/* Configurations: a tree of mappings, sequences and scalars read with
 * libyaml's event API (one document; anchors, aliases and foreign tags
 * refused; depth, size and count bounded), typed with YAML 1.2's core
 * schema, changed by dotted keys, and written back with libyaml's emitter.
 * Also the loaders: zoo names (embedded YAML), YAML files, Hugging Face
 * model folders (config.json translated into the zoo's keys) and
 * MindFormers-style folders (one .yaml and its .ckpt). */
#define _POSIX_C_SOURCE 200809L

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#include "models/zoo_internal.h"
#include "ops/internal.h"
#include "vlzoo/zoo.h"

enum {
  MAX_DEPTH = 32,          /* nesting of mappings and sequences */
  MAX_NODES = 20000,       /* values in one document */
  MAX_ENTRIES = 1024,      /* entries of one mapping or sequence */
  MAX_SCALAR = 64 * 1024,  /* bytes of one scalar */
  MAX_KEY = 512,           /* bytes of a dotted key */
  MAX_KEY_PARTS = 16,      /* parts of a dotted key */
  MAX_FILE = 1024 * 1024,  /* bytes of a YAML file or config.json */
  MAX_JSON_DEPTH = 64,     /* nesting in config.json */
  FLOW_SEQUENCE_ITEMS = 16 /* sequences of scalars up to this long are written [a, b] */
};

typedef struct cnode cnode;
struct cnode {
  vz_config_kind kind;
  char *text;  /* scalars: the text (floats as written) */
  size_t n;    /* mappings and sequences: number of items */
  size_t cap;  /* allocated items */
  char **keys; /* mappings: keys[i] names items[i] */
  cnode **items;
};

struct vz_config {
  cnode *root;
  char *name;   /* zoo name or base name */
  char *source; /* "zoo", a file or a folder */
  char *dir;    /* directory relative paths in the file refer to, or NULL */
};

/* ---- Messages ---- */

static vz_status failf(vz_status status, const char *fmt, ...) VZ_PRINTF(2, 3);
static vz_status failf(vz_status status, const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return vz_fail(status, "%s", buf);
}

const char *vz_config_kind_name(vz_config_kind kind) {
  switch (kind) {
  case VZ_CONFIG_NULL: return "null";
  case VZ_CONFIG_BOOL: return "bool";
  case VZ_CONFIG_INT: return "int";
  case VZ_CONFIG_FLOAT: return "float";
  case VZ_CONFIG_STRING: return "string";
  case VZ_CONFIG_SEQUENCE: return "sequence";
  case VZ_CONFIG_MAPPING: return "mapping";
  }
  return "?";
}

/* ---- Nodes ---- */

static void node_free(cnode *n) {
  if (!n)
    return;
  for (size_t i = 0; i < n->n; i++) {
    if (n->keys)
      free(n->keys[i]);
    node_free(n->items[i]);
  }
  free(n->keys);
  free(n->items);
  free(n->text);
  free(n);
}

static cnode *node_new(vz_config_kind kind) {
  cnode *n = calloc(1, sizeof *n);
  if (n)
    n->kind = kind;
  return n;
}

static cnode *scalar_new(vz_config_kind kind, const char *text) {
  cnode *n = node_new(kind);
  if (!n)
    return NULL;
  n->text = strdup(text ? text : "");
  if (!n->text) {
    free(n);
    return NULL;
  }
  return n;
}

/* Appends child (under key for mappings); takes ownership of both only on
 * success. */
static bool node_append(cnode *parent, char *key, cnode *child) {
  if (parent->n == parent->cap) {
    size_t cap = parent->cap ? parent->cap * 2 : 8;
    cnode **items = realloc(parent->items, cap * sizeof *items);
    if (!items)
      return false;
    parent->items = items;
    if (parent->kind == VZ_CONFIG_MAPPING) {
      char **keys = realloc(parent->keys, cap * sizeof *keys);
      if (!keys)
        return false;
      parent->keys = keys;
    }
    parent->cap = cap;
  }
  if (parent->kind == VZ_CONFIG_MAPPING)
    parent->keys[parent->n] = key;
  parent->items[parent->n++] = child;
  return true;
}

static cnode *map_get(const cnode *map, const char *key, size_t *index) {
  if (!map || map->kind != VZ_CONFIG_MAPPING)
    return NULL;
  for (size_t i = 0; i < map->n; i++)
    if (strcmp(map->keys[i], key) == 0) {
      if (index)
        *index = i;
      return map->items[i];
    }
  return NULL;
}

static cnode *node_clone(const cnode *n) {
  cnode *c = node_new(n->kind);
  if (!c)
    return NULL;
  if (n->text && !(c->text = strdup(n->text)))
    goto fail;
  for (size_t i = 0; i < n->n; i++) {
    char *key = NULL;
    if (n->keys && !(key = strdup(n->keys[i])))
      goto fail;
    cnode *item = node_clone(n->items[i]);
    if (!item || !node_append(c, key, item)) {
      free(key);
      node_free(item);
      goto fail;
    }
  }
  return c;
fail:
  node_free(c);
  return NULL;
}

/* ---- Scalars: YAML 1.2 core schema ---- */

static bool all_digits(const char *s, int base) {
  if (!*s)
    return false;
  for (; *s; s++) {
    int c = (unsigned char)*s;
    bool ok = base == 16 ? isxdigit(c) : (c >= '0' && c < '0' + base);
    if (!ok)
      return false;
  }
  return true;
}

static bool is_int_text(const char *s) {
  if (strncmp(s, "0o", 2) == 0)
    return all_digits(s + 2, 8);
  if (strncmp(s, "0x", 2) == 0)
    return all_digits(s + 2, 16);
  if (*s == '-' || *s == '+')
    s++;
  return all_digits(s, 10);
}

static bool is_special_float(const char *s) {
  const char *p = s + (*s == '-' || *s == '+');
  static const char *const inf[] = {".inf", ".Inf", ".INF"};
  static const char *const nan[] = {".nan", ".NaN", ".NAN"};
  for (int i = 0; i < 3; i++)
    if (strcmp(p, inf[i]) == 0 || strcmp(s, nan[i]) == 0)
      return true;
  return false;
}

/* [-+]? ( \.[0-9]+ | [0-9]+ ( \.[0-9]* )? ) ( [eE] [-+]? [0-9]+ )? */
static bool is_float_text(const char *s) {
  if (is_special_float(s))
    return true;
  const char *p = s + (*s == '-' || *s == '+');
  size_t before = 0, after = 0;
  while (isdigit((unsigned char)*p))
    p++, before++;
  if (*p == '.') {
    p++;
    while (isdigit((unsigned char)*p))
      p++, after++;
  }
  if (before == 0 && after == 0)
    return false;
  if (*p == 'e' || *p == 'E') {
    p++;
    if (*p == '-' || *p == '+')
      p++;
    if (!isdigit((unsigned char)*p))
      return false;
    while (isdigit((unsigned char)*p))
      p++;
  }
  return *p == '\0';
}

static bool is_bool_text(const char *s, bool *value) {
  static const char *const t[] = {"true", "True", "TRUE"};
  static const char *const f[] = {"false", "False", "FALSE"};
  for (int i = 0; i < 3; i++) {
    if (strcmp(s, t[i]) == 0) {
      if (value)
        *value = true;
      return true;
    }
    if (strcmp(s, f[i]) == 0) {
      if (value)
        *value = false;
      return true;
    }
  }
  return false;
}

static bool is_null_text(const char *s) {
  return !*s || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 ||
         strcmp(s, "NULL") == 0;
}

static vz_config_kind resolve_plain(const char *s) {
  if (is_null_text(s))
    return VZ_CONFIG_NULL;
  if (is_bool_text(s, NULL))
    return VZ_CONFIG_BOOL;
  if (is_int_text(s))
    return VZ_CONFIG_INT;
  if (is_float_text(s))
    return VZ_CONFIG_FLOAT;
  return VZ_CONFIG_STRING;
}

/* Words YAML 1.1 (PyYAML, hence MindFormers) reads as booleans. */
static bool is_yaml11_bool(const char *s) {
  static const char *const words[] = {"y", "n", "yes", "no", "on", "off"};
  for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
    size_t len = strlen(words[i]);
    if (strlen(s) != len)
      continue;
    bool same = true;
    for (size_t j = 0; j < len; j++)
      same = same && tolower((unsigned char)s[j]) == words[i][j];
    if (same)
      return true;
  }
  return false;
}

static bool parse_int_text(const char *s, int64_t *out) {
  int base = 10;
  bool negative = false;
  const char *digits = s;
  if (strncmp(s, "0o", 2) == 0) {
    base = 8;
    digits = s + 2;
  } else if (strncmp(s, "0x", 2) == 0) {
    base = 16;
    digits = s + 2;
  } else if (*s == '-' || *s == '+') {
    negative = *s == '-';
    digits = s + 1;
  }
  if (!all_digits(digits, base))
    return false;
  errno = 0;
  char *end = NULL;
  unsigned long long v = strtoull(digits, &end, base);
  if (errno == ERANGE || *end)
    return false;
  if (negative) {
    if (v > (unsigned long long)INT64_MAX + 1)
      return false;
    *out = v == (unsigned long long)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
  } else {
    if (v > (unsigned long long)INT64_MAX)
      return false;
    *out = (int64_t)v;
  }
  return true;
}

static bool parse_float_text(const char *s, double *out) {
  if (is_special_float(s)) {
    const char *p = s + (*s == '-' || *s == '+');
    if (tolower((unsigned char)p[1]) == 'n')
      *out = NAN;
    else
      *out = *s == '-' ? -INFINITY : INFINITY;
    return true;
  }
  if (!is_float_text(s) && !is_int_text(s))
    return false;
  int64_t i;
  if (is_int_text(s)) {
    if (!parse_int_text(s, &i))
      return false;
    *out = (double)i;
    return true;
  }
  char *end = NULL;
  *out = strtod(s, &end);
  return end && *end == '\0';
}

/* A float's text as both YAML 1.2 and PyYAML read it: a digit before and
 * after the point, a signed exponent without leading zeros ("1.0e-5"). */
static void float_text_canonical(const char *in, char *out, size_t size) {
  if (is_special_float(in)) {
    const char *p = in + (*in == '-' || *in == '+');
    snprintf(out, size, "%s",
             tolower((unsigned char)p[1]) == 'n' ? ".nan"
             : *in == '-'                        ? "-.inf"
                                                 : ".inf");
    return;
  }
  char buf[128];
  size_t used = 0;
  const char *p = in;
  if (*p == '-' || *p == '+') {
    if (*p == '-')
      buf[used++] = '-';
    p++;
  }
  if (*p == '.')
    buf[used++] = '0';
  bool point = false;
  while ((isdigit((unsigned char)*p) || *p == '.') && used < sizeof buf - 16) {
    point = point || *p == '.';
    buf[used++] = *p++;
  }
  if (!point) {
    buf[used++] = '.';
    buf[used++] = '0';
  } else if (buf[used - 1] == '.') {
    buf[used++] = '0';
  }
  if (*p == 'e' || *p == 'E') {
    buf[used++] = 'e';
    p++;
    buf[used++] = *p == '-' ? '-' : '+';
    if (*p == '-' || *p == '+')
      p++;
    while (*p == '0' && isdigit((unsigned char)p[1]))
      p++;
    while (isdigit((unsigned char)*p) && used < sizeof buf - 1)
      buf[used++] = *p++;
  }
  buf[used] = '\0';
  snprintf(out, size, "%s", buf);
}

/* The shortest text that reads back as v, canonical as above. */
static void float_text_of(double v, char *out, size_t size) {
  char buf[64];
  if (isnan(v)) {
    snprintf(out, size, ".nan");
    return;
  }
  if (isinf(v)) {
    snprintf(out, size, v < 0 ? "-.inf" : ".inf");
    return;
  }
  if (fabs(v) < 1e15 && v == floor(v)) {
    snprintf(buf, sizeof buf, "%.1f", v);
  } else {
    for (int prec = 1; prec <= 17; prec++) {
      snprintf(buf, sizeof buf, "%.*g", prec, v);
      if (strtod(buf, NULL) == v)
        break;
    }
  }
  float_text_canonical(buf, out, size);
}

/* ---- Parsing (libyaml events) ---- */

typedef struct parse_ctx {
  yaml_parser_t parser;
  const char *origin;
  const char *text; /* for turning byte offsets into lines */
  size_t size;
  size_t nodes;
} parse_ctx;

static vz_status parse_fail_at(parse_ctx *pc, yaml_mark_t mark, const char *fmt, ...)
    VZ_PRINTF(3, 4);
static vz_status parse_fail_at(parse_ctx *pc, yaml_mark_t mark, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return failf(VZ_ERR_FORMAT, "%s:%zu:%zu: %s", pc->origin, (size_t)mark.line + 1,
               (size_t)mark.column + 1, msg);
}

static vz_status parser_error(parse_ctx *pc) {
  yaml_parser_t *p = &pc->parser;
  if (p->error == YAML_MEMORY_ERROR)
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "%s: out of memory while parsing", pc->origin);
  const char *problem = p->problem ? p->problem : "malformed YAML";
  if (p->error == YAML_READER_ERROR) {
    size_t line = 1, column = 1;
    for (size_t i = 0; i < p->problem_offset && i < pc->size; i++) {
      bool newline = pc->text[i] == '\n';
      line += newline;
      column = newline ? 1 : column + ((pc->text[i] & 0xC0) != 0x80); /* UTF-8 characters */
    }
    return failf(VZ_ERR_FORMAT, "%s:%zu:%zu: %s", pc->origin, line, column, problem);
  }
  if (p->context)
    return failf(VZ_ERR_FORMAT, "%s:%zu:%zu: %s (%s, which starts at line %zu, column %zu)",
                 pc->origin, (size_t)p->problem_mark.line + 1, (size_t)p->problem_mark.column + 1,
                 problem, p->context, (size_t)p->context_mark.line + 1,
                 (size_t)p->context_mark.column + 1);
  return failf(VZ_ERR_FORMAT, "%s:%zu:%zu: %s", pc->origin, (size_t)p->problem_mark.line + 1,
               (size_t)p->problem_mark.column + 1, problem);
}

static vz_status next_event(parse_ctx *pc, yaml_event_t *ev) {
  if (!yaml_parser_parse(&pc->parser, ev))
    return parser_error(pc);
  return VZ_OK;
}

#define TAG_PREFIX "tag:yaml.org,2002:"

/* The kind a scalar has, from its tag, style and text. */
static vz_status scalar_kind(parse_ctx *pc, const yaml_event_t *ev, const char *text,
                             vz_config_kind *kind) {
  const char *tag = (const char *)ev->data.scalar.tag;
  bool plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
  if (!tag) {
    *kind = plain ? resolve_plain(text) : VZ_CONFIG_STRING;
    return VZ_OK;
  }
  if (strcmp(tag, "!") == 0 || strcmp(tag, TAG_PREFIX "str") == 0) {
    *kind = VZ_CONFIG_STRING;
    return VZ_OK;
  }
  struct {
    const char *name;
    vz_config_kind kind;
  } tags[] = {{"int", VZ_CONFIG_INT},
              {"float", VZ_CONFIG_FLOAT},
              {"bool", VZ_CONFIG_BOOL},
              {"null", VZ_CONFIG_NULL}};
  for (size_t i = 0; i < sizeof tags / sizeof tags[0]; i++) {
    if (strncmp(tag, TAG_PREFIX, strlen(TAG_PREFIX)) != 0 ||
        strcmp(tag + strlen(TAG_PREFIX), tags[i].name) != 0)
      continue;
    vz_config_kind got = resolve_plain(text);
    bool ok = got == tags[i].kind || (tags[i].kind == VZ_CONFIG_FLOAT && got == VZ_CONFIG_INT);
    if (!ok)
      return parse_fail_at(pc, ev->start_mark, "'%.40s' is not a valid !!%s", text, tags[i].name);
    *kind = tags[i].kind;
    return VZ_OK;
  }
  return parse_fail_at(pc, ev->start_mark, "tag '%.60s' is not supported", tag);
}

static vz_status parse_node(parse_ctx *pc, yaml_event_t *ev, int depth, cnode **out);

static vz_status refuse_anchor(parse_ctx *pc, const yaml_event_t *ev, const yaml_char_t *anchor) {
  return parse_fail_at(pc, ev->start_mark,
                       "anchors (&%.40s) and aliases are not supported; write the value out",
                       (const char *)anchor);
}

static vz_status parse_collection(parse_ctx *pc, yaml_event_t *start, int depth, cnode **out) {
  bool mapping = start->type == YAML_MAPPING_START_EVENT;
  const yaml_char_t *anchor =
      mapping ? start->data.mapping_start.anchor : start->data.sequence_start.anchor;
  const char *tag =
      (const char *)(mapping ? start->data.mapping_start.tag : start->data.sequence_start.tag);
  if (anchor)
    return refuse_anchor(pc, start, anchor);
  if (tag && strcmp(tag, mapping ? TAG_PREFIX "map" : TAG_PREFIX "seq") != 0)
    return parse_fail_at(pc, start->start_mark, "tag '%.60s' is not supported", tag);
  if (depth >= MAX_DEPTH)
    return parse_fail_at(pc, start->start_mark, "nested deeper than %d levels", MAX_DEPTH);
  cnode *node = node_new(mapping ? VZ_CONFIG_MAPPING : VZ_CONFIG_SEQUENCE);
  if (!node)
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "%s: out of memory", pc->origin);
  vz_status st = VZ_OK;
  for (;;) {
    yaml_event_t ev;
    if ((st = next_event(pc, &ev)) != VZ_OK)
      break;
    if (ev.type == (mapping ? YAML_MAPPING_END_EVENT : YAML_SEQUENCE_END_EVENT)) {
      yaml_event_delete(&ev);
      break;
    }
    if (node->n >= MAX_ENTRIES) {
      st = parse_fail_at(pc, ev.start_mark, "more than %d entries in one %s", MAX_ENTRIES,
                         mapping ? "mapping" : "sequence");
      yaml_event_delete(&ev);
      break;
    }
    char *key = NULL;
    if (mapping) {
      if (ev.type != YAML_SCALAR_EVENT) {
        st = ev.type == YAML_ALIAS_EVENT
                 ? parse_fail_at(pc, ev.start_mark, "aliases are not supported")
                 : parse_fail_at(pc, ev.start_mark, "a key must be a scalar");
        yaml_event_delete(&ev);
        break;
      }
      if (ev.data.scalar.anchor) {
        st = refuse_anchor(pc, &ev, ev.data.scalar.anchor);
        yaml_event_delete(&ev);
        break;
      }
      const char *text = (const char *)ev.data.scalar.value;
      if (strlen(text) != ev.data.scalar.length || ev.data.scalar.length > MAX_KEY) {
        st = parse_fail_at(pc, ev.start_mark, "a key must be under %d bytes, without NUL", MAX_KEY);
        yaml_event_delete(&ev);
        break;
      }
      if (map_get(node, text, NULL)) {
        st = parse_fail_at(pc, ev.start_mark, "duplicate key '%.80s'", text);
        yaml_event_delete(&ev);
        break;
      }
      key = strdup(text);
      yaml_event_delete(&ev);
      if (!key) {
        st = vz_fail(VZ_ERR_OUT_OF_MEMORY, "%s: out of memory", pc->origin);
        break;
      }
      if ((st = next_event(pc, &ev)) != VZ_OK) {
        free(key);
        break;
      }
    }
    cnode *child = NULL;
    if ((st = parse_node(pc, &ev, depth + 1, &child)) != VZ_OK) {
      free(key);
      break;
    }
    if (!node_append(node, key, child)) {
      free(key);
      node_free(child);
      st = vz_fail(VZ_ERR_OUT_OF_MEMORY, "%s: out of memory", pc->origin);
      break;
    }
  }
  if (st != VZ_OK) {
    node_free(node);
    return st;
  }
  *out = node;
  return VZ_OK;
}

/* Parses the node that starts with *ev (consumed). */
static vz_status parse_node(parse_ctx *pc, yaml_event_t *ev, int depth, cnode **out) {
  *out = NULL;
  vz_status st = VZ_OK;
  if (++pc->nodes > MAX_NODES) {
    st = parse_fail_at(pc, ev->start_mark, "more than %d values", MAX_NODES);
  } else if (ev->type == YAML_ALIAS_EVENT) {
    st = parse_fail_at(pc, ev->start_mark,
                       "aliases (*%.40s) and anchors are not supported; write the value out",
                       (const char *)ev->data.alias.anchor);
  } else if (ev->type == YAML_SCALAR_EVENT) {
    const char *text = (const char *)ev->data.scalar.value;
    vz_config_kind kind = VZ_CONFIG_STRING;
    if (ev->data.scalar.anchor)
      st = refuse_anchor(pc, ev, ev->data.scalar.anchor);
    else if (strlen(text) != ev->data.scalar.length)
      st = parse_fail_at(pc, ev->start_mark, "a NUL character inside a value");
    else if (ev->data.scalar.length > MAX_SCALAR)
      st = parse_fail_at(pc, ev->start_mark, "a value longer than %d bytes", MAX_SCALAR);
    else if ((st = scalar_kind(pc, ev, text, &kind)) == VZ_OK && !(*out = scalar_new(kind, text)))
      st = vz_fail(VZ_ERR_OUT_OF_MEMORY, "%s: out of memory", pc->origin);
  } else if (ev->type == YAML_MAPPING_START_EVENT || ev->type == YAML_SEQUENCE_START_EVENT) {
    st = parse_collection(pc, ev, depth, out);
  } else {
    st = parse_fail_at(pc, ev->start_mark, "unexpected YAML event");
  }
  yaml_event_delete(ev);
  return st;
}

/* One YAML document into a tree; the root must be a mapping unless
 * any_root. */
static vz_status parse_text(const char *text, size_t size, const char *origin, bool any_root,
                            cnode **out) {
  *out = NULL;
  if (size > MAX_FILE)
    return failf(VZ_ERR_FORMAT, "%s: %zu bytes; a configuration is at most %d bytes", origin, size,
                 MAX_FILE);
  parse_ctx pc = {.origin = origin, .text = text, .size = size};
  if (!yaml_parser_initialize(&pc.parser))
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "%s: cannot start the YAML parser", origin);
  yaml_parser_set_input_string(&pc.parser, (const unsigned char *)text, size);
  yaml_parser_set_encoding(&pc.parser, YAML_UTF8_ENCODING);
  cnode *root = NULL;
  yaml_event_t ev;
  vz_status st = next_event(&pc, &ev); /* stream start */
  if (st == VZ_OK) {
    yaml_event_delete(&ev);
    st = next_event(&pc, &ev);
  }
  if (st == VZ_OK && ev.type != YAML_DOCUMENT_START_EVENT) {
    yaml_event_delete(&ev);
    st = failf(VZ_ERR_FORMAT, "%s: empty (no YAML document)", origin);
  } else if (st == VZ_OK) {
    yaml_mark_t mark = ev.start_mark;
    yaml_event_delete(&ev);
    if ((st = next_event(&pc, &ev)) == VZ_OK) {
      mark = ev.start_mark;
      st = parse_node(&pc, &ev, 0, &root);
    }
    if (st == VZ_OK && !any_root && root->kind != VZ_CONFIG_MAPPING)
      st = parse_fail_at(&pc, mark, "the document is a %s, not a mapping of keys",
                         vz_config_kind_name(root->kind));
    if (st == VZ_OK && (st = next_event(&pc, &ev)) == VZ_OK) /* document end */
      yaml_event_delete(&ev);
    if (st == VZ_OK && (st = next_event(&pc, &ev)) == VZ_OK) {
      if (ev.type != YAML_STREAM_END_EVENT)
        st = parse_fail_at(&pc, ev.start_mark, "a second document; a configuration is one");
      yaml_event_delete(&ev);
    }
  }
  yaml_parser_delete(&pc.parser);
  if (st != VZ_OK) {
    node_free(root);
    return st;
  }
  *out = root;
  return VZ_OK;
}

/* ---- Configs ---- */

static char *base_name(const char *path, bool strip_yaml) {
  size_t len = strlen(path);
  while (len > 1 && path[len - 1] == '/')
    len--;
  size_t start = len;
  while (start > 0 && path[start - 1] != '/')
    start--;
  size_t end = len;
  if (strip_yaml) {
    if (end - start > 5 && strncmp(path + end - 5, ".yaml", 5) == 0)
      end -= 5;
    else if (end - start > 4 && strncmp(path + end - 4, ".yml", 4) == 0)
      end -= 4;
  }
  char *out = malloc(end - start + 1);
  if (out) {
    memcpy(out, path + start, end - start);
    out[end - start] = '\0';
  }
  return out;
}

static char *dir_name(const char *path) {
  const char *slash = strrchr(path, '/');
  if (!slash)
    return strdup(".");
  if (slash == path)
    return strdup("/");
  size_t len = (size_t)(slash - path);
  char *out = malloc(len + 1);
  if (out) {
    memcpy(out, path, len);
    out[len] = '\0';
  }
  return out;
}

static vz_status config_new(cnode *root, const char *name, const char *source, const char *dir,
                            vz_config **out) {
  vz_config *cfg = calloc(1, sizeof *cfg);
  if (!cfg || !(cfg->name = strdup(name)) || !(cfg->source = strdup(source)) ||
      (dir && !(cfg->dir = strdup(dir)))) {
    if (cfg) {
      free(cfg->name);
      free(cfg->source);
      free(cfg);
    }
    node_free(root);
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "config: out of memory");
  }
  cfg->root = root;
  *out = cfg;
  return VZ_OK;
}

vz_status vz_config_parse(const char *text, size_t size, const char *origin, vz_config **out) {
  if (!out)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "vz_config_parse: NULL out");
  *out = NULL;
  if (!text && size)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "vz_config_parse: NULL text");
  if (!origin)
    origin = "<string>";
  cnode *root = NULL;
  vz_status st = parse_text(text ? text : "", size, origin, false, &root);
  if (st != VZ_OK)
    return st;
  char *name = base_name(origin, true);
  if (!name) {
    node_free(root);
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "config: out of memory");
  }
  st = config_new(root, name, origin, NULL, out);
  free(name);
  return st;
}

void vz_config_free(vz_config *cfg) {
  if (!cfg)
    return;
  node_free(cfg->root);
  free(cfg->name);
  free(cfg->source);
  free(cfg->dir);
  free(cfg);
}

const char *vz_config_name(const vz_config *cfg) { return cfg ? cfg->name : ""; }
const char *vz_config_source(const vz_config *cfg) { return cfg ? cfg->source : ""; }

const char *vz_config_dir(const vz_config *cfg) { return cfg ? cfg->dir : NULL; }

/* ---- Dotted keys ---- */

typedef struct key_parts {
  char buf[MAX_KEY + 1];
  char *part[MAX_KEY_PARTS];
  int n;
} key_parts;

/* Splits a dotted key; false (without a message) when it is empty, too
 * long, has an empty part or too many parts. */
static bool split_key_quiet(const char *key, key_parts *kp) {
  if (!key || !*key)
    return false;
  size_t len = strlen(key);
  if (len > MAX_KEY)
    return false;
  memcpy(kp->buf, key, len + 1);
  kp->n = 0;
  char *p = kp->buf;
  for (;;) {
    char *dot = strchr(p, '.');
    if (dot)
      *dot = '\0';
    if (!*p || kp->n == MAX_KEY_PARTS)
      return false;
    kp->part[kp->n++] = p;
    if (!dot)
      return true;
    p = dot + 1;
  }
}

static vz_status split_key(const char *key, key_parts *kp) {
  if (split_key_quiet(key, kp))
    return VZ_OK;
  return failf(VZ_ERR_INVALID_ARGUMENT,
               "config: bad key '%.80s' (dotted names, no empty part, at most %d parts and %d "
               "bytes)",
               key ? key : "", MAX_KEY_PARTS, MAX_KEY);
}

/* Suggests keys of `section` close to `missing`, as "prefix.key". */
static void suggest_keys(const cnode *section, const char *missing, const char *prefix, char *out,
                         size_t size) {
  out[0] = '\0';
  if (!section || section->kind != VZ_CONFIG_MAPPING || section->n == 0)
    return;
  char names[512];
  vz_closest_names(missing, (const char *const *)section->keys, section->n, 3, names, sizeof names);
  if (!names[0])
    return;
  size_t used = (size_t)snprintf(out, size, "; did you mean ");
  char *save = NULL;
  int shown = 0;
  for (char *tok = strtok_r(names, ", ", &save); tok && used < size;
       tok = strtok_r(NULL, ", ", &save))
    used += (size_t)snprintf(out + used, size - used, "%s%s%s%s", shown++ ? " or " : "", prefix,
                             *prefix ? "." : "", tok);
  if (used < size)
    snprintf(out + used, size - used, "?");
}

/* Finds the node a dotted key names, with its parent and index there. */
static vz_status find_key(const vz_config *cfg, const char *key, cnode **node, cnode **parent,
                          size_t *index) {
  if (!cfg || !cfg->root)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "config: NULL config");
  key_parts kp;
  vz_status st = split_key(key, &kp);
  if (st != VZ_OK)
    return st;
  cnode *root = cfg->root;
  cnode *model = map_get(root, "model", NULL);
  cnode *model_config = map_get(model, "model_config", NULL);
  cnode *cur = NULL;
  char prefix[MAX_KEY + 64] = "";
  if (map_get(root, kp.part[0], NULL)) {
    cur = root;
  } else if (map_get(model_config, kp.part[0], NULL)) {
    cur = model_config;
  } else if (map_get(model, kp.part[0], NULL)) {
    cur = model;
  } else {
    char hint[600] = "", names[512] = "";
    size_t used = 0;
    if (kp.n == 1) {
      /* A key of a section, given without the section (hidden_size). */
      const cnode *parents[] = {model_config, map_get(root, "processor", NULL)};
      for (int s = 0; s < 2; s++)
        for (size_t i = 0; parents[s] && parents[s]->kind == VZ_CONFIG_MAPPING &&
                           i < parents[s]->n && used < sizeof hint - 80;
             i++)
          if (map_get(parents[s]->items[i], kp.part[0], NULL))
            used += (size_t)snprintf(hint + used, sizeof hint - used, "%s%s%s.%s",
                                     used ? " or " : "; did you mean ", s ? "processor." : "",
                                     parents[s]->keys[i], kp.part[0]);
      if (used)
        snprintf(hint + used, sizeof hint - used, "?");
    }
    const cnode *sections[] = {model_config, root, model};
    for (int s = 0; s < 3 && !used && !names[0]; s++)
      if (sections[s] && sections[s]->kind == VZ_CONFIG_MAPPING)
        vz_closest_names(kp.part[0], (const char *const *)sections[s]->keys, sections[s]->n, 3,
                         names, sizeof names);
    if (names[0])
      snprintf(hint, sizeof hint, "; did you mean %s?", names);
    return failf(VZ_ERR_NOT_FOUND,
                 "config %s: no key '%s' (looked at the top level, in model.model_config and in "
                 "model)%s",
                 cfg->name, key, hint);
  }
  cnode *par = NULL;
  size_t idx = 0;
  for (int i = 0; i < kp.n; i++) {
    const char *part = kp.part[i];
    cnode *next = NULL;
    if (cur->kind == VZ_CONFIG_MAPPING) {
      next = map_get(cur, part, &idx);
      if (!next) {
        char hint[600];
        suggest_keys(cur, part, prefix, hint, sizeof hint);
        return failf(VZ_ERR_NOT_FOUND, "config %s: no key '%s'%s", cfg->name, key, hint);
      }
    } else if (cur->kind == VZ_CONFIG_SEQUENCE) {
      int64_t at = -1;
      if (!all_digits(part, 10) || !parse_int_text(part, &at) || (uint64_t)at >= cur->n)
        return failf(VZ_ERR_NOT_FOUND,
                     "config %s: no key '%s' (%s is a sequence of %zu items: use 0 to %zu)",
                     cfg->name, key, *prefix ? prefix : "it", cur->n, cur->n ? cur->n - 1 : 0);
      idx = (size_t)at;
      next = cur->items[idx];
    } else {
      return failf(VZ_ERR_NOT_FOUND, "config %s: no key '%s' (%s is a %s, not a section)",
                   cfg->name, key, prefix, vz_config_kind_name(cur->kind));
    }
    size_t used = strlen(prefix);
    snprintf(prefix + used, sizeof prefix - used, "%s%s", used ? "." : "", part);
    par = cur;
    cur = next;
  }
  if (node)
    *node = cur;
  if (parent)
    *parent = par;
  if (index)
    *index = idx;
  return VZ_OK;
}

bool vz_config_has(const vz_config *cfg, const char *key) {
  if (!cfg || !key)
    return false;
  /* Looks without leaving a message behind. */
  key_parts kp;
  if (!split_key_quiet(key, &kp))
    return false;
  cnode *root = cfg->root;
  cnode *model = map_get(root, "model", NULL);
  cnode *model_config = map_get(model, "model_config", NULL);
  const cnode *cur = map_get(root, kp.part[0], NULL)           ? root
                     : map_get(model_config, kp.part[0], NULL) ? model_config
                     : map_get(model, kp.part[0], NULL)        ? model
                                                               : NULL;
  for (int i = 0; cur && i < kp.n; i++) {
    if (cur->kind == VZ_CONFIG_MAPPING) {
      cur = map_get(cur, kp.part[i], NULL);
    } else if (cur->kind == VZ_CONFIG_SEQUENCE) {
      int64_t at = -1;
      cur = all_digits(kp.part[i], 10) && parse_int_text(kp.part[i], &at) && (uint64_t)at < cur->n
                ? cur->items[at]
                : NULL;
    } else {
      cur = NULL;
    }
  }
  return cur != NULL;
}

vz_status vz_config_kind_of(const vz_config *cfg, const char *key, vz_config_kind *out) {
  cnode *n = NULL;
  vz_status st = find_key(cfg, key, &n, NULL, NULL);
  if (st == VZ_OK && out)
    *out = n->kind;
  return st;
}

static vz_status wrong_kind(const vz_config *cfg, const char *key, const cnode *n,
                            const char *wanted) {
  if (n->kind == VZ_CONFIG_NULL)
    return failf(VZ_ERR_INVALID_ARGUMENT, "config %s: %s is null, not %s", cfg->name, key, wanted);
  if (n->text)
    return failf(VZ_ERR_INVALID_ARGUMENT, "config %s: %s is %s %s ('%.60s'), not %s", cfg->name,
                 key, n->kind == VZ_CONFIG_INT ? "an" : "a", vz_config_kind_name(n->kind), n->text,
                 wanted);
  return failf(VZ_ERR_INVALID_ARGUMENT, "config %s: %s is a %s, not %s", cfg->name, key,
               vz_config_kind_name(n->kind), wanted);
}

vz_status vz_config_get_int(const vz_config *cfg, const char *key, int64_t *out) {
  cnode *n = NULL;
  vz_status st = find_key(cfg, key, &n, NULL, NULL);
  if (st != VZ_OK)
    return st;
  if (n->kind != VZ_CONFIG_INT)
    return wrong_kind(cfg, key, n, "an integer");
  int64_t v;
  if (!parse_int_text(n->text, &v))
    return failf(VZ_ERR_INVALID_ARGUMENT, "config %s: %s = %s is out of the 64-bit range",
                 cfg->name, key, n->text);
  if (out)
    *out = v;
  return VZ_OK;
}

vz_status vz_config_get_float(const vz_config *cfg, const char *key, double *out) {
  cnode *n = NULL;
  vz_status st = find_key(cfg, key, &n, NULL, NULL);
  if (st != VZ_OK)
    return st;
  if (n->kind != VZ_CONFIG_FLOAT && n->kind != VZ_CONFIG_INT)
    return wrong_kind(cfg, key, n, "a number");
  double v;
  if (!parse_float_text(n->text, &v))
    return failf(VZ_ERR_INVALID_ARGUMENT, "config %s: %s = %s is not a number", cfg->name, key,
                 n->text);
  if (out)
    *out = v;
  return VZ_OK;
}

vz_status vz_config_get_bool(const vz_config *cfg, const char *key, bool *out) {
  cnode *n = NULL;
  vz_status st = find_key(cfg, key, &n, NULL, NULL);
  if (st != VZ_OK)
    return st;
  bool v = false;
  if (n->kind != VZ_CONFIG_BOOL || !is_bool_text(n->text, &v))
    return wrong_kind(cfg, key, n, "true or false");
  if (out)
    *out = v;
  return VZ_OK;
}

vz_status vz_config_get_string(const vz_config *cfg, const char *key, const char **out) {
  cnode *n = NULL;
  vz_status st = find_key(cfg, key, &n, NULL, NULL);
  if (st != VZ_OK)
    return st;
  if (n->kind != VZ_CONFIG_STRING)
    return wrong_kind(cfg, key, n, "a string");
  if (out)
    *out = n->text;
  return VZ_OK;
}

vz_status vz_config_get_length(const vz_config *cfg, const char *key, size_t *out) {
  cnode *n = NULL;
  vz_status st = find_key(cfg, key, &n, NULL, NULL);
  if (st != VZ_OK)
    return st;
  if (n->kind != VZ_CONFIG_SEQUENCE && n->kind != VZ_CONFIG_MAPPING)
    return wrong_kind(cfg, key, n, "a sequence or a mapping");
  if (out)
    *out = n->n;
  return VZ_OK;
}

/* ---- Overrides ---- */

/* A scalar of `kind` from user text, or an error naming what was wanted. */
static vz_status typed_scalar(const vz_config *cfg, const char *key, vz_config_kind kind,
                              const char *value, cnode **out) {
  char text[128];
  *out = NULL;
  switch (kind) {
  case VZ_CONFIG_STRING: *out = scalar_new(VZ_CONFIG_STRING, value); break;
  case VZ_CONFIG_INT: {
    int64_t v;
    if (!parse_int_text(value, &v))
      return failf(VZ_ERR_INVALID_ARGUMENT, "config %s: %s takes an integer, not '%.60s'",
                   cfg->name, key, value);
    snprintf(text, sizeof text, "%lld", (long long)v);
    *out = scalar_new(VZ_CONFIG_INT, text);
    break;
  }
  case VZ_CONFIG_FLOAT: {
    double v;
    if (!parse_float_text(value, &v))
      return failf(VZ_ERR_INVALID_ARGUMENT, "config %s: %s takes a number, not '%.60s'", cfg->name,
                   key, value);
    float_text_of(v, text, sizeof text);
    *out = scalar_new(VZ_CONFIG_FLOAT, text);
    break;
  }
  case VZ_CONFIG_BOOL: {
    bool v;
    char lower[8] = "";
    size_t len = strlen(value);
    for (size_t i = 0; i < len && i < sizeof lower - 1; i++)
      lower[i] = (char)tolower((unsigned char)value[i]);
    lower[len < sizeof lower - 1 ? len : sizeof lower - 1] = '\0';
    if (len < sizeof lower &&
        (strcmp(lower, "true") == 0 || strcmp(lower, "yes") == 0 || strcmp(lower, "on") == 0))
      v = true;
    else if (len < sizeof lower &&
             (strcmp(lower, "false") == 0 || strcmp(lower, "no") == 0 || strcmp(lower, "off") == 0))
      v = false;
    else
      return failf(VZ_ERR_INVALID_ARGUMENT, "config %s: %s takes true or false, not '%.60s'",
                   cfg->name, key, value);
    *out = scalar_new(VZ_CONFIG_BOOL, v ? "true" : "false");
    break;
  }
  case VZ_CONFIG_NULL: {
    vz_config_kind k = resolve_plain(value);
    if (k == VZ_CONFIG_FLOAT)
      return typed_scalar(cfg, key, k, value, out);
    *out = scalar_new(k, value);
    break;
  }
  default:
    return failf(VZ_ERR_INVALID_ARGUMENT, "config %s: %s cannot be set from text", cfg->name, key);
  }
  if (!*out)
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "config: out of memory");
  return VZ_OK;
}

static vz_status set_sequence(const vz_config *cfg, const char *key, const cnode *old,
                              const char *value, cnode **out) {
  cnode *parsed = NULL;
  char origin[MAX_KEY + 32];
  snprintf(origin, sizeof origin, "value of %s", key);
  vz_status st = parse_text(value, strlen(value), origin, true, &parsed);
  if (st != VZ_OK)
    return st;
  if (parsed->kind != VZ_CONFIG_SEQUENCE) {
    node_free(parsed);
    return failf(VZ_ERR_INVALID_ARGUMENT, "config %s: %s takes a sequence like [a, b], not '%.60s'",
                 cfg->name, key, value);
  }
  cnode *seq = node_new(VZ_CONFIG_SEQUENCE);
  if (!seq) {
    node_free(parsed);
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "config: out of memory");
  }
  for (size_t i = 0; i < parsed->n && st == VZ_OK; i++) {
    const cnode *item = parsed->items[i];
    if (item->kind == VZ_CONFIG_SEQUENCE || item->kind == VZ_CONFIG_MAPPING) {
      st = failf(VZ_ERR_INVALID_ARGUMENT, "config %s: %s takes a sequence of scalars", cfg->name,
                 key);
      break;
    }
    /* Typed like the old items (the first one when the new list is longer). */
    vz_config_kind want = item->kind;
    if (old->n > 0) {
      const cnode *model = old->items[i < old->n ? i : 0];
      if (model->kind != VZ_CONFIG_SEQUENCE && model->kind != VZ_CONFIG_MAPPING)
        want = model->kind;
    }
    char item_key[MAX_KEY + 32];
    snprintf(item_key, sizeof item_key, "%s.%zu", key, i);
    cnode *typed = NULL;
    if (want == VZ_CONFIG_NULL || item->kind == want)
      typed = scalar_new(item->kind, item->text);
    else if ((st = typed_scalar(cfg, item_key, want, item->text, &typed)) != VZ_OK)
      break;
    if (!typed || !node_append(seq, NULL, typed)) {
      node_free(typed);
      st = vz_fail(VZ_ERR_OUT_OF_MEMORY, "config: out of memory");
    }
  }
  node_free(parsed);
  if (st != VZ_OK) {
    node_free(seq);
    return st;
  }
  *out = seq;
  return VZ_OK;
}

vz_status vz_config_set(vz_config *cfg, const char *key, const char *value) {
  if (!cfg || !key || !value)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "vz_config_set: NULL argument");
  cnode *old = NULL, *parent = NULL;
  size_t index = 0;
  vz_status st = find_key(cfg, key, &old, &parent, &index);
  if (st != VZ_OK)
    return st;
  if (!parent)
    return failf(VZ_ERR_INVALID_ARGUMENT, "config %s: cannot replace the whole document",
                 cfg->name);
  cnode *fresh = NULL;
  if (old->kind == VZ_CONFIG_MAPPING) {
    char keys[400] = "";
    size_t used = 0;
    for (size_t i = 0; i < old->n && used < sizeof keys - 8; i++)
      used +=
          (size_t)snprintf(keys + used, sizeof keys - used, "%s%s", i ? ", " : "", old->keys[i]);
    return failf(VZ_ERR_INVALID_ARGUMENT, "config %s: %s is a section; set one of its keys (%s)",
                 cfg->name, key, keys);
  }
  if (old->kind == VZ_CONFIG_SEQUENCE)
    st = set_sequence(cfg, key, old, value, &fresh);
  else
    st = typed_scalar(cfg, key, old->kind, value, &fresh);
  if (st != VZ_OK)
    return st;
  node_free(parent->items[index]);
  parent->items[index] = fresh;
  return VZ_OK;
}

vz_status vz_config_set_override(vz_config *cfg, const char *assignment) {
  if (!cfg || !assignment)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "vz_config_set_override: NULL argument");
  const char *eq = strchr(assignment, '=');
  if (!eq || eq == assignment)
    return failf(VZ_ERR_INVALID_ARGUMENT, "override '%.80s' is not KEY=VALUE", assignment);
  size_t len = (size_t)(eq - assignment);
  if (len > MAX_KEY)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "override: key longer than %d bytes", MAX_KEY);
  char key[MAX_KEY + 1];
  memcpy(key, assignment, len);
  key[len] = '\0';
  return vz_config_set(cfg, key, eq + 1);
}

/* ---- Emitting ---- */

typedef struct out_buf {
  char *data;
  size_t len, cap;
} out_buf;

static int write_out(void *user, unsigned char *bytes, size_t size) {
  out_buf *b = user;
  if (b->len + size + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + size + 1)
      cap *= 2;
    char *data = realloc(b->data, cap);
    if (!data)
      return 0;
    b->data = data;
    b->cap = cap;
  }
  memcpy(b->data + b->len, bytes, size);
  b->len += size;
  b->data[b->len] = '\0';
  return 1;
}

static bool emit_scalar(yaml_emitter_t *em, vz_config_kind kind, const char *text) {
  char canonical[128];
  yaml_scalar_style_t style = YAML_PLAIN_SCALAR_STYLE;
  if (kind == VZ_CONFIG_STRING) {
    /* Quoted when a reader would take the plain text for something else. */
    style = resolve_plain(text) != VZ_CONFIG_STRING || is_yaml11_bool(text)
                ? YAML_DOUBLE_QUOTED_SCALAR_STYLE
                : YAML_ANY_SCALAR_STYLE;
  } else if (kind == VZ_CONFIG_FLOAT && strlen(text) < 100) {
    float_text_canonical(text, canonical, sizeof canonical);
    text = canonical;
  } else if (kind == VZ_CONFIG_NULL) {
    text = "null";
  }
  yaml_event_t ev;
  if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)text, (int)strlen(text), 1, 1,
                                    style))
    return false;
  return yaml_emitter_emit(em, &ev) != 0;
}

static bool emit_node(yaml_emitter_t *em, const cnode *n) {
  yaml_event_t ev;
  if (n->kind == VZ_CONFIG_MAPPING) {
    if (!yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE) ||
        !yaml_emitter_emit(em, &ev))
      return false;
    for (size_t i = 0; i < n->n; i++)
      if (!emit_scalar(em, VZ_CONFIG_STRING, n->keys[i]) || !emit_node(em, n->items[i]))
        return false;
    return yaml_mapping_end_event_initialize(&ev) && yaml_emitter_emit(em, &ev);
  }
  if (n->kind == VZ_CONFIG_SEQUENCE) {
    bool scalars = n->n <= FLOW_SEQUENCE_ITEMS;
    for (size_t i = 0; i < n->n && scalars; i++)
      scalars = n->items[i]->kind != VZ_CONFIG_MAPPING && n->items[i]->kind != VZ_CONFIG_SEQUENCE;
    if (!yaml_sequence_start_event_initialize(
            &ev, NULL, NULL, 1, scalars ? YAML_FLOW_SEQUENCE_STYLE : YAML_BLOCK_SEQUENCE_STYLE) ||
        !yaml_emitter_emit(em, &ev))
      return false;
    for (size_t i = 0; i < n->n; i++)
      if (!emit_node(em, n->items[i]))
        return false;
    return yaml_sequence_end_event_initialize(&ev) && yaml_emitter_emit(em, &ev);
  }
  return emit_scalar(em, n->kind, n->text);
}

vz_status vz_config_to_yaml(const vz_config *cfg, char **text) {
  if (!cfg || !text)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "vz_config_to_yaml: NULL argument");
  *text = NULL;
  yaml_emitter_t em;
  if (!yaml_emitter_initialize(&em))
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "config: cannot start the YAML emitter");
  out_buf buf = {0};
  yaml_emitter_set_output(&em, write_out, &buf);
  yaml_emitter_set_unicode(&em, 1);
  yaml_emitter_set_indent(&em, 2);
  yaml_emitter_set_width(&em, -1);
  yaml_event_t ev;
  bool ok = yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING) &&
            yaml_emitter_emit(&em, &ev) &&
            yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1) &&
            yaml_emitter_emit(&em, &ev) && emit_node(&em, cfg->root) &&
            yaml_document_end_event_initialize(&ev, 1) && yaml_emitter_emit(&em, &ev) &&
            yaml_stream_end_event_initialize(&ev) && yaml_emitter_emit(&em, &ev) &&
            yaml_emitter_flush(&em);
  const char *problem = em.problem;
  bool memory = em.error == YAML_MEMORY_ERROR || em.error == YAML_WRITER_ERROR;
  yaml_emitter_delete(&em);
  if (!ok) {
    free(buf.data);
    if (memory || !problem)
      return vz_fail(VZ_ERR_OUT_OF_MEMORY, "config %s: out of memory while writing YAML",
                     cfg->name);
    return vz_fail(VZ_ERR_FORMAT, "config %s: cannot write YAML: %s", cfg->name, problem);
  }
  if (!buf.data && !(buf.data = strdup("")))
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "config: out of memory");
  *text = buf.data;
  return VZ_OK;
}

/* ---- Files ---- */

static vz_status read_file(const char *path, char **text, size_t *size) {
  *text = NULL;
  FILE *f = fopen(path, "rb");
  if (!f)
    return failf(errno == ENOENT ? VZ_ERR_NOT_FOUND : VZ_ERR_IO, "cannot read %s: %s", path,
                 strerror(errno));
  char *buf = malloc(MAX_FILE + 1);
  if (!buf) {
    fclose(f);
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "config: out of memory");
  }
  size_t got = fread(buf, 1, MAX_FILE + 1, f);
  bool failed = ferror(f) != 0;
  fclose(f);
  if (failed) {
    free(buf);
    return failf(VZ_ERR_IO, "cannot read %s", path);
  }
  if (got > MAX_FILE) {
    free(buf);
    return failf(VZ_ERR_FORMAT, "%s: larger than %d bytes; not a configuration", path, MAX_FILE);
  }
  buf[got] = '\0';
  *text = buf;
  *size = got;
  return VZ_OK;
}

static vz_status load_yaml_file(const char *path, vz_config **out) {
  char *text = NULL;
  size_t size = 0;
  vz_status st = read_file(path, &text, &size);
  if (st != VZ_OK)
    return st;
  cnode *root = NULL;
  st = parse_text(text, size, path, false, &root);
  free(text);
  if (st != VZ_OK)
    return st;
  char *name = base_name(path, true), *dir = dir_name(path);
  if (name && dir)
    st = config_new(root, name, path, dir, out);
  else {
    node_free(root);
    st = vz_fail(VZ_ERR_OUT_OF_MEMORY, "config: out of memory");
  }
  free(name);
  free(dir);
  return st;
}

/* ---- Building trees (Hugging Face translation) ---- */

/* Sticky failure: after the first allocation failure every call is a no-op. */
typedef struct builder {
  bool failed;
} builder;

static void b_put(builder *b, cnode *map, const char *key, cnode *value) {
  char *k = NULL;
  if (b->failed || !map || !value || !(k = strdup(key)) || !node_append(map, k, value)) {
    free(k);
    node_free(value);
    b->failed = true;
  }
}

static cnode *b_map(builder *b, cnode *parent, const char *key) {
  cnode *m = b->failed ? NULL : node_new(VZ_CONFIG_MAPPING);
  b_put(b, parent, key, m);
  return b->failed ? NULL : m;
}

static void b_scalar(builder *b, cnode *map, const char *key, vz_config_kind kind,
                     const char *text) {
  b_put(b, map, key, b->failed ? NULL : scalar_new(kind, text));
}

static void b_str(builder *b, cnode *map, const char *key, const char *text) {
  b_scalar(b, map, key, VZ_CONFIG_STRING, text);
}

static void b_int(builder *b, cnode *map, const char *key, int64_t v) {
  char text[32];
  snprintf(text, sizeof text, "%lld", (long long)v);
  b_scalar(b, map, key, VZ_CONFIG_INT, text);
}

static void b_float(builder *b, cnode *map, const char *key, double v) {
  char text[64];
  float_text_of(v, text, sizeof text);
  b_scalar(b, map, key, VZ_CONFIG_FLOAT, text);
}

static void b_bool(builder *b, cnode *map, const char *key, bool v) {
  b_scalar(b, map, key, VZ_CONFIG_BOOL, v ? "true" : "false");
}

static void b_floats(builder *b, cnode *map, const char *key, const double *v, int n) {
  cnode *seq = b->failed ? NULL : node_new(VZ_CONFIG_SEQUENCE);
  for (int i = 0; seq && i < n; i++) {
    char text[64];
    float_text_of(v[i], text, sizeof text);
    cnode *item = scalar_new(VZ_CONFIG_FLOAT, text);
    if (!item || !node_append(seq, NULL, item)) {
      node_free(item);
      node_free(seq);
      seq = NULL;
      b->failed = true;
    }
  }
  b_put(b, map, key, seq);
}

/* ---- Hugging Face config.json ---- */

typedef struct hf_ctx {
  const char *path;
  vz_status st;
} hf_ctx;

static json_object *j_get(json_object *obj, const char *key) {
  json_object *v = NULL;
  if (!obj || !json_object_is_type(obj, json_type_object) ||
      !json_object_object_get_ex(obj, key, &v) || json_object_is_type(v, json_type_null))
    return NULL;
  return v;
}

static void hf_bad(hf_ctx *h, const char *where, const char *key, const char *what) {
  if (h->st == VZ_OK)
    h->st =
        failf(VZ_ERR_FORMAT, "%s: %s%s%s must be %s", h->path, where, *where ? "." : "", key, what);
}

static int64_t j_int(hf_ctx *h, json_object *obj, const char *where, const char *key, int64_t def) {
  json_object *v = j_get(obj, key);
  if (!v)
    return def;
  if (json_object_is_type(v, json_type_int))
    return json_object_get_int64(v);
  if (json_object_is_type(v, json_type_double)) {
    double d = json_object_get_double(v);
    if (d == floor(d) && fabs(d) < 9e15)
      return (int64_t)d;
  }
  hf_bad(h, where, key, "an integer");
  return def;
}

static double j_double(hf_ctx *h, json_object *obj, const char *where, const char *key,
                       double def) {
  json_object *v = j_get(obj, key);
  if (!v)
    return def;
  if (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double))
    return json_object_get_double(v);
  hf_bad(h, where, key, "a number");
  return def;
}

static bool j_bool(hf_ctx *h, json_object *obj, const char *where, const char *key, bool def) {
  json_object *v = j_get(obj, key);
  if (!v)
    return def;
  if (json_object_is_type(v, json_type_boolean))
    return json_object_get_boolean(v);
  hf_bad(h, where, key, "true or false");
  return def;
}

static const char *j_str(hf_ctx *h, json_object *obj, const char *where, const char *key,
                         const char *def) {
  json_object *v = j_get(obj, key);
  if (!v)
    return def;
  if (json_object_is_type(v, json_type_string))
    return json_object_get_string(v);
  hf_bad(h, where, key, "a string");
  return def;
}

/* The LLM part of text_config in the zoo's keys, with the defaults of the
 * family's transformers config class for what the file leaves out. */
static void hf_text_config(hf_ctx *h, builder *b, cnode *mc, json_object *tc,
                           const char **tokenizer) {
  const char *w = "text_config";
  const char *type = j_str(h, tc, w, "model_type", "opt");
  cnode *t = b_map(b, mc, "text_config");
  int64_t bos = -1, eos = -1, pad = -1;
  if (strcmp(type, "opt") == 0) {
    int64_t hidden = j_int(h, tc, w, "hidden_size", 768);
    b_str(b, t, "type", "OPTConfig");
    b_str(b, t, "architecture", "opt");
    b_int(b, t, "hidden_size", hidden);
    b_int(b, t, "num_layers", j_int(h, tc, w, "num_hidden_layers", 12));
    b_int(b, t, "num_heads", j_int(h, tc, w, "num_attention_heads", 12));
    b_int(b, t, "intermediate_size", j_int(h, tc, w, "ffn_dim", 3072));
    b_int(b, t, "vocab_size", j_int(h, tc, w, "vocab_size", 50272));
    b_int(b, t, "max_position_embeddings", j_int(h, tc, w, "max_position_embeddings", 2048));
    b_int(b, t, "word_embed_proj_dim", j_int(h, tc, w, "word_embed_proj_dim", hidden));
    b_bool(b, t, "do_layer_norm_before", j_bool(h, tc, w, "do_layer_norm_before", true));
    b_str(b, t, "activation_function", j_str(h, tc, w, "activation_function", "relu"));
    b_float(b, t, "layer_norm_eps", 1e-5);
    b_bool(b, t, "tie_word_embeddings", j_bool(h, tc, w, "tie_word_embeddings", true));
    bos = j_int(h, tc, w, "bos_token_id", 2);
    eos = j_int(h, tc, w, "eos_token_id", 2);
    pad = j_int(h, tc, w, "pad_token_id", 1);
    *tokenizer = "GPT2Tokenizer";
  } else if (strcmp(type, "t5") == 0 || strcmp(type, "mt5") == 0) {
    bool mt5 = type[0] == 'm';
    int64_t layers = j_int(h, tc, w, "num_layers", mt5 ? 8 : 6);
    const char *ffp = j_str(h, tc, w, "feed_forward_proj", mt5 ? "gated-gelu" : "relu");
    const char *dash = strrchr(ffp, '-');
    const char *act = strcmp(ffp, "gated-gelu") == 0 ? "gelu_new" : dash ? dash + 1 : ffp;
    b_str(b, t, "type", mt5 ? "MT5Config" : "T5Config");
    b_str(b, t, "architecture", type);
    b_int(b, t, "hidden_size", j_int(h, tc, w, "d_model", 512));
    b_int(b, t, "num_layers", layers);
    b_int(b, t, "num_decoder_layers", j_int(h, tc, w, "num_decoder_layers", layers));
    b_int(b, t, "num_heads", j_int(h, tc, w, "num_heads", mt5 ? 6 : 8));
    b_int(b, t, "d_kv", j_int(h, tc, w, "d_kv", 64));
    b_int(b, t, "intermediate_size", j_int(h, tc, w, "d_ff", mt5 ? 1024 : 2048));
    b_int(b, t, "vocab_size", j_int(h, tc, w, "vocab_size", mt5 ? 250112 : 32128));
    b_str(b, t, "feed_forward_proj", ffp);
    /* transformers keeps an explicit dense_act_fn (BLIP-2's "gelu"). */
    b_str(b, t, "dense_act_fn", j_str(h, tc, w, "dense_act_fn", act));
    b_float(b, t, "layer_norm_epsilon", j_double(h, tc, w, "layer_norm_epsilon", 1e-6));
    b_int(b, t, "relative_attention_num_buckets",
          j_int(h, tc, w, "relative_attention_num_buckets", 32));
    b_int(b, t, "relative_attention_max_distance",
          j_int(h, tc, w, "relative_attention_max_distance", 128));
    b_bool(b, t, "tie_word_embeddings", j_bool(h, tc, w, "tie_word_embeddings", !mt5));
    bos = j_int(h, tc, w, "bos_token_id", -1);
    eos = j_int(h, tc, w, "eos_token_id", 1);
    pad = j_int(h, tc, w, "pad_token_id", 0);
    b_int(b, t, "decoder_start_token_id", j_int(h, tc, w, "decoder_start_token_id", 0));
    *tokenizer = "T5Tokenizer";
  } else if (strcmp(type, "llama") == 0 || strcmp(type, "baichuan") == 0) {
    b_str(b, t, "type", "LlamaConfig");
    b_str(b, t, "architecture", type);
    b_int(b, t, "hidden_size", j_int(h, tc, w, "hidden_size", 4096));
    b_int(b, t, "num_layers", j_int(h, tc, w, "num_hidden_layers", 32));
    b_int(b, t, "num_heads", j_int(h, tc, w, "num_attention_heads", 32));
    b_int(b, t, "intermediate_size", j_int(h, tc, w, "intermediate_size", 11008));
    b_int(b, t, "vocab_size", j_int(h, tc, w, "vocab_size", type[0] == 'b' ? 64000 : 32000));
    b_float(b, t, "rms_norm_eps", j_double(h, tc, w, "rms_norm_eps", 1e-6));
    b_float(b, t, "theta", j_double(h, tc, w, "rope_theta", 10000.0));
    b_int(b, t, "max_position_embeddings", j_int(h, tc, w, "max_position_embeddings", 2048));
    b_bool(b, t, "tie_word_embeddings", j_bool(h, tc, w, "tie_word_embeddings", false));
    bos = j_int(h, tc, w, "bos_token_id", 1);
    eos = j_int(h, tc, w, "eos_token_id", 2);
    pad = j_int(h, tc, w, "pad_token_id", -1);
    *tokenizer = "LlamaTokenizer";
  } else if (strcmp(type, "bloom") == 0) {
    int64_t hidden = j_int(h, tc, w, "hidden_size", j_int(h, tc, w, "n_embed", 64));
    b_str(b, t, "type", "BloomConfig");
    b_str(b, t, "architecture", "bloom");
    b_int(b, t, "hidden_size", hidden);
    b_int(b, t, "num_layers", j_int(h, tc, w, "n_layer", j_int(h, tc, w, "num_hidden_layers", 2)));
    b_int(b, t, "num_heads", j_int(h, tc, w, "n_head", j_int(h, tc, w, "num_attention_heads", 8)));
    b_int(b, t, "intermediate_size", 4 * hidden);
    b_int(b, t, "vocab_size", j_int(h, tc, w, "vocab_size", 250880));
    b_float(b, t, "layer_norm_epsilon", j_double(h, tc, w, "layer_norm_epsilon", 1e-5));
    b_bool(b, t, "tie_word_embeddings", j_bool(h, tc, w, "tie_word_embeddings", true));
    bos = j_int(h, tc, w, "bos_token_id", 1);
    eos = j_int(h, tc, w, "eos_token_id", 2);
    pad = j_int(h, tc, w, "pad_token_id", 3);
    *tokenizer = "BloomTokenizerFast";
  } else if (h->st == VZ_OK) {
    h->st = failf(VZ_ERR_UNSUPPORTED,
                  "%s: text_config.model_type '%s' is not an LLM vlzoo runs (opt, t5, mt5, llama, "
                  "baichuan, bloom)",
                  h->path, type);
    return;
  }
  if (bos >= 0)
    b_int(b, t, "bos_token_id", bos);
  if (eos >= 0)
    b_int(b, t, "eos_token_id", eos);
  if (pad >= 0)
    b_int(b, t, "pad_token_id", pad);
  /* transformers' GenerationConfig defaults: greedy, 20 tokens. */
  b_bool(b, t, "do_sample", false);
  b_int(b, t, "num_beams", 1);
  b_int(b, t, "max_new_tokens", 20);
  b_int(b, t, "min_new_tokens", 0);
  b_int(b, t, "top_k", 50);
  b_float(b, t, "top_p", 1.0);
  b_float(b, t, "temperature", 1.0);
  b_float(b, t, "repetition_penalty", 1.0);
  b_float(b, t, "length_penalty", 1.0);
}

static bool has_architecture(json_object *root, const char *name) {
  json_object *arch = j_get(root, "architectures");
  if (!arch || !json_object_is_type(arch, json_type_array))
    return false;
  for (size_t i = 0; i < json_object_array_length(arch); i++) {
    json_object *a = json_object_array_get_idx(arch, i);
    if (a && json_object_is_type(a, json_type_string) &&
        strcmp(json_object_get_string(a), name) == 0)
      return true;
  }
  return false;
}

static const double clip_mean[3] = {0.48145466, 0.4578275, 0.40821073};
static const double clip_std[3] = {0.26862954, 0.26130258, 0.27577711};

/* config.json of a Blip2 model into the zoo's keys (reference: HF
 * configuration_blip_2.py; hub files store only non-default values). */
static vz_status hf_translate(const char *folder, const char *path, json_object *root,
                              cnode **out) {
  hf_ctx h = {.path = path, .st = VZ_OK};
  builder b = {0};
  const char *model_type = j_str(&h, root, "", "model_type", "");
  if (h.st != VZ_OK)
    return h.st;
  if (strcmp(model_type, "blip-2") != 0 &&
      !(model_type[0] == '\0' && j_get(root, "qformer_config")))
    return failf(VZ_ERR_UNSUPPORTED, "%s: model_type '%s' is not BLIP-2 ('blip-2')", path,
                 model_type);
  json_object *vc = j_get(root, "vision_config"), *qc = j_get(root, "qformer_config");
  json_object *tc = j_get(root, "text_config");
  bool stage1 = has_architecture(root, "Blip2ForImageTextRetrieval") ||
                has_architecture(root, "Blip2VisionModelWithProjection") ||
                has_architecture(root, "Blip2TextModelWithProjection");

  int64_t image = 224, patch = 14;
  json_object *img = j_get(vc, "image_size");
  if (img && json_object_is_type(img, json_type_array) && json_object_array_length(img) == 2 &&
      json_object_get_int64(json_object_array_get_idx(img, 0)) ==
          json_object_get_int64(json_object_array_get_idx(img, 1)))
    image = json_object_get_int64(json_object_array_get_idx(img, 0));
  else
    image = j_int(&h, vc, "vision_config", "image_size", 224);
  patch = j_int(&h, vc, "vision_config", "patch_size", 14);
  int64_t vhidden = j_int(&h, vc, "vision_config", "hidden_size", 1408);
  double veps = j_double(&h, vc, "vision_config", "layer_norm_eps", 1e-6);

  cnode *top = node_new(VZ_CONFIG_MAPPING);
  if (!top)
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "config: out of memory");
  char desc[600];
  snprintf(desc, sizeof desc, "Hugging Face BLIP-2 folder %s", folder);
  b_str(&b, top, "description", desc);
  cnode *model = b_map(&b, top, "model");
  cnode *mc = b_map(&b, model, "model_config");
  b_str(&b, mc, "type", "Blip2Config");
  b_str(&b, mc, "checkpoint_name_or_path", folder);
  b_int(&b, mc, "max_txt_len", 32);
  b_bool(&b, mc, "prompt", false);
  b_int(&b, mc, "prompt_length", 0);
  if (j_get(root, "image_token_index"))
    b_int(&b, mc, "image_token_index", j_int(&h, root, "", "image_token_index", 0));
  b_str(&b, mc, "weights_origin", "hf");
  b_float(&b, mc, "ln_vision_eps", veps); /* HF's post_layernorm uses the ViT's eps */
  b_str(&b, mc, "itc_pooling", "max");
  b_float(&b, mc, "default_temp", 0.07);

  cnode *v = b_map(&b, mc, "vision_config");
  const char *vw = "vision_config";
  b_str(&b, v, "type", "ViTConfig");
  b_str(&b, v, "architecture", "eva_vit_g");
  b_int(&b, v, "image_size", image);
  b_int(&b, v, "patch_size", patch);
  b_int(&b, v, "num_channels", 3);
  b_int(&b, v, "hidden_size", vhidden);
  b_int(&b, v, "num_hidden_layers", j_int(&h, vc, vw, "num_hidden_layers", 39));
  b_int(&b, v, "num_attention_heads", j_int(&h, vc, vw, "num_attention_heads", 16));
  b_int(&b, v, "intermediate_size", j_int(&h, vc, vw, "intermediate_size", 6144));
  b_bool(&b, v, "qkv_bias", j_bool(&h, vc, vw, "qkv_bias", true));
  b_str(&b, v, "hidden_act", j_str(&h, vc, vw, "hidden_act", "gelu"));
  b_float(&b, v, "layer_norm_eps", veps);
  b_int(&b, v, "pos_embed_grid", patch > 0 ? image / patch : 0);

  cnode *q = b_map(&b, mc, "qformer_config");
  const char *qw = "qformer_config";
  b_str(&b, q, "type", "QFormerConfig");
  b_str(&b, q, "architecture", "qformer");
  b_int(&b, q, "query_length", j_int(&h, root, "", "num_query_tokens", 32));
  b_int(&b, q, "hidden_size", j_int(&h, qc, qw, "hidden_size", 768));
  b_int(&b, q, "num_hidden_layers", j_int(&h, qc, qw, "num_hidden_layers", 12));
  b_int(&b, q, "num_attention_heads", j_int(&h, qc, qw, "num_attention_heads", 12));
  b_int(&b, q, "intermediate_size", j_int(&h, qc, qw, "intermediate_size", 3072));
  b_str(&b, q, "hidden_act", j_str(&h, qc, qw, "hidden_act", "gelu"));
  b_int(&b, q, "cross_attention_freq", j_int(&h, qc, qw, "cross_attention_frequency", 2));
  b_int(&b, q, "encoder_width", vhidden); /* Blip2Config sets it to the ViT width */
  b_int(&b, q, "vocab_size", j_int(&h, qc, qw, "vocab_size", 30522));
  b_int(&b, q, "special_token_nums", 0);
  b_bool(&b, q, "resize_token_embeddings", false);
  b_int(&b, q, "bos_token_id", 30522); /* [DEC], when the vocabulary has it */
  b_int(&b, q, "pad_token_id", j_int(&h, qc, qw, "pad_token_id", 0));
  b_int(&b, q, "max_position_embeddings", j_int(&h, qc, qw, "max_position_embeddings", 512));
  b_float(&b, q, "layer_norm_eps", j_double(&h, qc, qw, "layer_norm_eps", 1e-12));
  b_int(&b, q, "head_embed_dim", j_int(&h, root, "", "image_text_hidden_size", 256));
  b_bool(&b, q, "tie_word_embeddings", true);

  const char *tokenizer = "BertTokenizer";
  if (!stage1)
    hf_text_config(&h, &b, mc, tc, &tokenizer);
  cnode *arch = b_map(&b, model, "arch");
  b_str(&b, arch, "type", stage1 ? "Blip2Qformer" : "Blip2ImageToTextGeneration");

  cnode *proc = b_map(&b, top, "processor");
  b_str(&b, proc, "type", "Blip2Processor");
  cnode *ip = b_map(&b, proc, "image_processor");
  b_str(&b, ip, "type", "Blip2ImageProcessor");
  b_int(&b, ip, "image_size", image);
  b_str(&b, ip, "interpolation", "bicubic");
  b_floats(&b, ip, "mean", clip_mean, 3);
  b_floats(&b, ip, "std", clip_std, 3);
  b_bool(&b, ip, "is_hwc", false);
  cnode *tok = b_map(&b, proc, "tokenizer");
  b_str(&b, tok, "type", tokenizer);
  b_str(&b, tok, "checkpoint_name_or_path", folder);
  b_int(&b, tok, "max_length", 32);
  b_bool(&b, tok, "truncation", true);

  cnode *pipe = b_map(&b, top, "pipeline");
  if (stage1) {
    b_str(&b, pipe, "task", "image_to_text_retrieval");
    b_int(&b, pipe, "k_test", 128);
    b_str(&b, pipe, "hypothesis_template", "a picture of {}.");
  } else {
    b_str(&b, pipe, "task", "image_to_text_generation");
    b_str(&b, pipe, "caption_prompt", "");
    b_str(&b, pipe, "vqa_template", "Question: {} Answer:");
  }
  if (h.st != VZ_OK || b.failed) {
    node_free(top);
    return h.st != VZ_OK ? h.st : vz_fail(VZ_ERR_OUT_OF_MEMORY, "config: out of memory");
  }
  *out = top;
  return VZ_OK;
}

static void line_column(const char *text, size_t offset, size_t *line, size_t *column) {
  *line = 1;
  *column = 1;
  for (size_t i = 0; i < offset && text[i]; i++) {
    if (text[i] == '\n') {
      (*line)++;
      *column = 1;
    } else {
      (*column)++;
    }
  }
}

static vz_status load_hf_folder(const char *folder, const char *json_path, vz_config **out) {
  char *text = NULL;
  size_t size = 0;
  vz_status st = read_file(json_path, &text, &size);
  if (st != VZ_OK)
    return st;
  json_tokener *tok = json_tokener_new_ex(MAX_JSON_DEPTH);
  if (!tok) {
    free(text);
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "config: out of memory");
  }
  json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
  json_object *root = json_tokener_parse_ex(tok, text, (int)size);
  enum json_tokener_error jerr = json_tokener_get_error(tok);
  size_t end = json_tokener_get_parse_end(tok);
  json_tokener_free(tok);
  if (!root || jerr != json_tokener_success || !json_object_is_type(root, json_type_object)) {
    size_t line, column;
    line_column(text, end, &line, &column);
    free(text);
    json_object_put(root);
    return failf(VZ_ERR_FORMAT, "%s:%zu:%zu: %s", json_path, line, column,
                 jerr != json_tokener_success ? json_tokener_error_desc(jerr)
                 : !root                      ? "incomplete JSON"
                                              : "not a JSON object");
  }
  free(text);
  cnode *tree = NULL;
  st = hf_translate(folder, json_path, root, &tree);
  json_object_put(root);
  if (st != VZ_OK)
    return st;
  char *name = base_name(folder, false);
  if (!name) {
    node_free(tree);
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "config: out of memory");
  }
  st = config_new(tree, name, folder, folder, out);
  free(name);
  return st;
}

static bool ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* A folder: Hugging Face (config.json) or MindFormers (one .yaml and
 * optionally one .ckpt, which becomes checkpoint_name_or_path). */
static vz_status load_folder(const char *folder, vz_config **out) {
  size_t len = strlen(folder);
  char *path = malloc(len + 32);
  if (!path)
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "config: out of memory");
  snprintf(path, len + 32, "%s/config.json", folder);
  struct stat sb;
  if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) {
    vz_status st = load_hf_folder(folder, path, out);
    free(path);
    return st;
  }
  free(path);
  DIR *d = opendir(folder);
  if (!d)
    return failf(VZ_ERR_IO, "cannot list %s: %s", folder, strerror(errno));
  char yaml_name[256] = "", ckpt_name[256] = "";
  int yamls = 0, ckpts = 0;
  for (struct dirent *e; (e = readdir(d));) {
    if (ends_with(e->d_name, ".yaml") || ends_with(e->d_name, ".yml")) {
      if (yamls++ == 0)
        snprintf(yaml_name, sizeof yaml_name, "%s", e->d_name);
    } else if (ends_with(e->d_name, ".ckpt")) {
      if (ckpts++ == 0)
        snprintf(ckpt_name, sizeof ckpt_name, "%s", e->d_name);
    }
  }
  closedir(d);
  if (yamls != 1)
    return failf(VZ_ERR_NOT_FOUND,
                 "%s has no config.json (Hugging Face) and %s .yaml file (MindFormers style needs "
                 "exactly one)",
                 folder, yamls ? "more than one" : "no");
  size_t size = len + strlen(yaml_name) + strlen(ckpt_name) + 2;
  path = malloc(size);
  if (!path)
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "config: out of memory");
  snprintf(path, size, "%s/%s", folder, yaml_name);
  vz_status st = load_yaml_file(path, out);
  if (st == VZ_OK && ckpts == 1) {
    snprintf(path, size, "%s/%s", folder, ckpt_name);
    cnode *mc = map_get(map_get((*out)->root, "model", NULL), "model_config", NULL);
    cnode *ck = map_get(mc, "checkpoint_name_or_path", NULL);
    builder b = {0};
    if (ck) {
      char *copy = strdup(path);
      if (copy) {
        free(ck->text);
        ck->text = copy;
        ck->kind = VZ_CONFIG_STRING;
      } else {
        b.failed = true;
      }
    } else if (mc) {
      b_str(&b, mc, "checkpoint_name_or_path", path);
    }
    if (b.failed) {
      vz_config_free(*out);
      *out = NULL;
      st = vz_fail(VZ_ERR_OUT_OF_MEMORY, "config: out of memory");
    }
  }
  free(path);
  return st;
}

static vz_status load_zoo_name(const char *name, vz_config **out) {
  const char *text = NULL;
  size_t size = 0;
  vz_status st = vz_zoo_yaml(name, &text, &size);
  if (st != VZ_OK)
    return st;
  char origin[300];
  snprintf(origin, sizeof origin, "zoo-configs/%s.yaml", name);
  cnode *root = NULL;
  if ((st = parse_text(text, size, origin, false, &root)) != VZ_OK)
    return st;
  return config_new(root, name, "zoo", NULL, out);
}

vz_status vz_config_load(const char *name_or_path, vz_config **out) {
  if (!out)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "vz_config_load: NULL out");
  *out = NULL;
  if (!name_or_path || !*name_or_path)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "vz_config_load: no model name or path");
  struct stat sb;
  vz_status st;
  if (stat(name_or_path, &sb) == 0) {
    if (S_ISDIR(sb.st_mode)) {
      st = load_folder(name_or_path, out);
    } else if (ends_with(name_or_path, ".json")) {
      /* A Hugging Face config.json named directly: its folder is the model. */
      char *folder = dir_name(name_or_path);
      st = folder ? load_hf_folder(folder, name_or_path, out)
                  : vz_fail(VZ_ERR_OUT_OF_MEMORY, "config: out of memory");
      free(folder);
    } else {
      st = load_yaml_file(name_or_path, out);
    }
  } else if (strchr(name_or_path, '/') || ends_with(name_or_path, ".yaml") ||
             ends_with(name_or_path, ".yml") || ends_with(name_or_path, ".json")) {
    return failf(VZ_ERR_NOT_FOUND, "no file or folder '%s'", name_or_path);
  } else {
    st = load_zoo_name(name_or_path, out);
  }
  if (st != VZ_OK)
    return st;
  /* Every model configuration has model.model_config. */
  cnode *mc = map_get(map_get((*out)->root, "model", NULL), "model_config", NULL);
  if (!mc || mc->kind != VZ_CONFIG_MAPPING) {
    st = failf(VZ_ERR_FORMAT, "%s: no model.model_config section; not a model configuration",
               strcmp((*out)->source, "zoo") == 0 ? (*out)->name : (*out)->source);
    vz_config_free(*out);
    *out = NULL;
  }
  return st;
}

vz_status vz_config_clone(const vz_config *cfg, vz_config **out) {
  if (!cfg || !out)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "vz_config_clone: NULL argument");
  cnode *root = node_clone(cfg->root);
  if (!root)
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "config: out of memory");
  return config_new(root, cfg->name, cfg->source, cfg->dir, out);
}

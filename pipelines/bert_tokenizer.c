/* BERT WordPiece tokenizer with Hugging Face's semantics.
 *
 * The pipeline follows tokenizers' (BertTokenizerFast's) order exactly:
 *   1. added / special tokens that are not "normalized" are cut out of the
 *      raw text (leftmost-longest, case-sensitive) and never split;
 *   2. each remaining piece goes through BertNormalizer: clean_text (drop
 *      NUL, U+FFFD and C* control/format/private-use characters, turn
 *      whitespace into ' '), handle_chinese_chars (spaces around the CJK
 *      ranges of HF's _is_chinese_char), strip_accents (NFD, drop Mn),
 *      lowercase (full mapping: U+0130 becomes "i\u0307");
 *   3. "normalized" added tokens are cut out of the normalized text;
 *   4. BertPreTokenizer: split on whitespace (dropped) and on punctuation
 *      (ASCII 33-47, 58-64, 91-96, 123-126 and Unicode P*, kept alone);
 *   5. WordPiece: greedy longest-match-first, "##" continuation, words
 *      longer than max_input_chars_per_word code points become [UNK], as
 *      does a word with a piece that is not in the vocabulary.
 *
 * Unicode properties come from utf8proc (Unicode 15.0 in Debian 12).
 * Measured against tokenizers 0.23.3 by encoding "ab<c>cd <c>" for every
 * code point: identical except for 568 code points, all characters that
 * tokenizers' own (Unicode 8-era) category tables do not know: marks,
 * punctuation and format characters added or re-categorized since (e.g.
 * U+08D4..U+08E2, U+1AB0 block additions, U+2E43..U+2E5D, new scripts in
 * the supplementary planes); there tokenizers treats them as letters, we
 * use their current category (as Python 3.11's slow tokenizer does for 545
 * of them). Deliberate choices where the slow (Python) BertTokenizer and the
 * fast one disagree, following the fast one:
 *   - capital sigma lowercases to plain sigma everywhere (so does
 *     transformers 4's slow tokenizer, which lowercases one character at a
 *     time; transformers 5's BertTokenizerLegacy uses str.lower on words
 *     and gives final sigma at the end of a word);
 *   - unassigned code points are kept as letters (Python drops them as
 *     category Cn);
 *   - U+2B820..U+2B91F are not split off as CJK (tokenizers' range starts
 *     at U+2B920);
 *   - no NFC before splitting (the Python one composes first; with accent
 *     stripping on, the ids are the same).
 * Lowercasing is the full mapping per code point (utf8proc_tolower, plus
 * U+0130 -> "i\u0307"), as Rust's char::to_lowercase; after accent
 * stripping U+0130 is plain "i" either way. */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "ops/internal.h"
#include "vlzoo/tokenizer.h"

/* ---- Small growable arrays ---- */

typedef struct ids_vec {
  int32_t *v;
  size_t n, cap;
} ids_vec;

static bool ids_push(ids_vec *a, int32_t id) {
  if (a->n == a->cap) {
    size_t cap = a->cap ? a->cap * 2 : 64;
    int32_t *v = realloc(a->v, cap * sizeof *v);
    if (!v)
      return false;
    a->v = v;
    a->cap = cap;
  }
  a->v[a->n++] = id;
  return true;
}

typedef struct str_buf {
  char *s;
  size_t n, cap;
} str_buf;

static bool buf_reserve(str_buf *b, size_t extra) {
  if (b->n + extra + 1 <= b->cap)
    return true;
  size_t cap = b->cap ? b->cap : 64;
  while (cap < b->n + extra + 1)
    cap *= 2;
  char *s = realloc(b->s, cap);
  if (!s)
    return false;
  b->s = s;
  b->cap = cap;
  return true;
}

static bool buf_append(str_buf *b, const char *s, size_t len) {
  if (!buf_reserve(b, len))
    return false;
  memcpy(b->s + b->n, s, len);
  b->n += len;
  b->s[b->n] = '\0';
  return true;
}

/* ---- UTF-8 ---- */

/* Decodes one code point from s[0..len); returns its length in bytes, or 0
 * for invalid UTF-8 (overlong, surrogate, past U+10FFFF, truncated). */
static size_t utf8_decode(const unsigned char *s, size_t len, int32_t *cp) {
  unsigned char c = s[0];
  if (c < 0x80) {
    *cp = c;
    return 1;
  }
  size_t n;
  int32_t v, min;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2, v = c & 0x1F, min = 0x80;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3, v = c & 0x0F, min = 0x800;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4, v = c & 0x07, min = 0x10000;
  } else {
    return 0;
  }
  if (len < n)
    return 0;
  for (size_t i = 1; i < n; i++) {
    if ((s[i] & 0xC0) != 0x80)
      return 0;
    v = (v << 6) | (s[i] & 0x3F);
  }
  if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
    return 0;
  *cp = v;
  return n;
}

static size_t utf8_encode(int32_t cp, char *out) {
  if (cp < 0x80) {
    out[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = (char)(0xE0 | (cp >> 12));
    out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = (char)(0xF0 | (cp >> 18));
  out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
  out[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

/* Checks that s[0..len) is valid UTF-8; names the first bad byte. Text
 * from the caller is an invalid argument, text from a file a format error. */
static vz_status utf8_check_as(vz_status status, const char *what, const char *s, size_t len) {
  const unsigned char *u = (const unsigned char *)s;
  for (size_t i = 0; i < len;) {
    int32_t cp;
    size_t k = utf8_decode(u + i, len - i, &cp);
    if (k == 0)
      return vz_fail(status, "%s: invalid UTF-8 at byte %zu (0x%02x)", what, i, u[i]);
    i += k;
  }
  return VZ_OK;
}

static vz_status utf8_check(const char *what, const char *s, size_t len) {
  return utf8_check_as(VZ_ERR_INVALID_ARGUMENT, what, s, len);
}

/* Code points of valid UTF-8 s[0..len) into a new array. */
static int32_t *utf8_to_cps(const char *s, size_t len, size_t *n) {
  int32_t *cps = malloc((len + 1) * sizeof *cps);
  if (!cps)
    return NULL;
  size_t k = 0;
  for (size_t i = 0; i < len;) {
    size_t step = utf8_decode((const unsigned char *)s + i, len - i, &cps[k]);
    if (step == 0) /* cannot happen after utf8_check */
      step = 1, cps[k] = 0xFFFD;
    i += step;
    k++;
  }
  *n = k;
  return cps;
}

/* ---- Character classes (HF's definitions over utf8proc's tables) ---- */

/* Rust's char::is_whitespace (the White_Space property), which the fast
 * tokenizer uses: Zs plus TAB..CR, NEL, LINE and PARAGRAPH SEPARATOR. */
static bool is_whitespace(int32_t cp) {
  if (cp == ' ' || (cp >= 0x09 && cp <= 0x0D))
    return true;
  if (cp < 0x80)
    return false;
  if (cp == 0x85 || cp == 0x2028 || cp == 0x2029)
    return true;
  return utf8proc_category(cp) == UTF8PROC_CATEGORY_ZS;
}

/* HF's _is_control: categories Cc, Cf, Co, Cs, except TAB, LF, CR.
 * Unassigned code points (Cn) are kept, as tokenizers keeps them. */
static bool is_control(int32_t cp) {
  if (cp == '\t' || cp == '\n' || cp == '\r')
    return false;
  if (cp < 0x20 || cp == 0x7F)
    return true;
  if (cp < 0x80)
    return false;
  switch (utf8proc_category(cp)) {
  case UTF8PROC_CATEGORY_CC:
  case UTF8PROC_CATEGORY_CF:
  case UTF8PROC_CATEGORY_CO:
  case UTF8PROC_CATEGORY_CS: return true;
  default: return false;
  }
}

/* HF's _is_punctuation: all non-alphanumeric printable ASCII, and P*. */
static bool is_punctuation(int32_t cp) {
  if ((cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) ||
      (cp >= 123 && cp <= 126))
    return true;
  if (cp < 0x80)
    return false;
  utf8proc_category_t c = utf8proc_category(cp);
  return c >= UTF8PROC_CATEGORY_PC && c <= UTF8PROC_CATEGORY_PO;
}

/* tokenizers' is_chinese_char: the CJK Unified Ideographs blocks. The
 * fast tokenizer starts Extension F at U+2B920 where the Python
 * BertTokenizer has U+2B820 (U+2B820..U+2B91F, Extension E, is not split
 * off by the fast one); we follow the fast tokenizer. */
static bool is_chinese_char(int32_t cp) {
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
         (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
         (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

static bool is_alnum(int32_t cp) {
  if (cp < 0x80)
    return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z');
  utf8proc_category_t c = utf8proc_category(cp);
  return (c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO) ||
         (c >= UTF8PROC_CATEGORY_ND && c <= UTF8PROC_CATEGORY_NO);
}

/* ---- Vocabulary hash (token -> id) ---- */

typedef struct vocab_slot {
  const char *s; /* NULL: empty slot */
  uint32_t len;
  int32_t id;
} vocab_slot;

static uint64_t hash_bytes(const char *s, size_t len) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < len; i++) {
    h ^= (unsigned char)s[i];
    h *= 1099511628211ull;
  }
  return h ^ (h >> 29);
}

typedef struct added_token {
  char *content;
  size_t len;
  int32_t id;
  bool special, normalized, single_word;
} added_token;

struct vz_bert_tokenizer {
  /* id -> token; NULL for holes. Model ids first, then added ones. */
  char **tokens;
  int32_t n_ids;
  int32_t model_size; /* ids below this belong to the WordPiece model */
  vocab_slot *slots;
  size_t n_slots; /* a power of two */
  added_token *added;
  int n_added;
  /* normalizer */
  bool clean_text, chinese_chars, strip_accents, lowercase;
  /* model */
  char *prefix;
  size_t prefix_len;
  int max_chars;
  int32_t unk_id, cls_id, sep_id, pad_id;
  /* first bytes of the added tokens, for a quick scan */
  bool first_byte[2][256]; /* [normalized][byte] */
};

static int32_t vocab_lookup(const vz_bert_tokenizer *t, const char *s, size_t len) {
  size_t mask = t->n_slots - 1;
  for (size_t i = hash_bytes(s, len) & mask;; i = (i + 1) & mask) {
    const vocab_slot *e = &t->slots[i];
    if (!e->s)
      return -1;
    if (e->len == len && memcmp(e->s, s, len) == 0)
      return e->id;
  }
}

/* Inserts or overwrites (a later duplicate wins, like a Python dict). */
static void vocab_insert(vz_bert_tokenizer *t, const char *s, size_t len, int32_t id) {
  size_t mask = t->n_slots - 1;
  for (size_t i = hash_bytes(s, len) & mask;; i = (i + 1) & mask) {
    vocab_slot *e = &t->slots[i];
    if (!e->s) {
      e->s = s;
      e->len = (uint32_t)len;
      e->id = id;
      return;
    }
    if (e->len == len && memcmp(e->s, s, len) == 0) {
      e->id = id;
      return;
    }
  }
}

static vz_status vocab_alloc(vz_bert_tokenizer *t, size_t n_entries) {
  size_t n = 16;
  while (n < 2 * n_entries + 1)
    n *= 2;
  t->slots = calloc(n, sizeof *t->slots);
  if (!t->slots)
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "bert tokenizer: no memory for %zu vocabulary slots", n);
  t->n_slots = n;
  return VZ_OK;
}

static const added_token *find_added(const vz_bert_tokenizer *t, const char *s, size_t len) {
  for (int i = 0; i < t->n_added; i++)
    if (t->added[i].len == len && memcmp(t->added[i].content, s, len) == 0)
      return &t->added[i];
  return NULL;
}

/* Ensures ids [0, n) exist in t->tokens. */
static bool grow_ids(vz_bert_tokenizer *t, int32_t n) {
  if (n <= t->n_ids)
    return true;
  char **tokens = realloc(t->tokens, (size_t)n * sizeof *tokens);
  if (!tokens)
    return false;
  for (int32_t i = t->n_ids; i < n; i++)
    tokens[i] = NULL;
  t->tokens = tokens;
  t->n_ids = n;
  return true;
}

static vz_status add_token(vz_bert_tokenizer *t, const char *content, int32_t id, bool special,
                           bool normalized, bool single_word) {
  size_t len = strlen(content);
  added_token *a = realloc(t->added, (size_t)(t->n_added + 1) * sizeof *a);
  if (!a)
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "bert tokenizer: no memory for an added token");
  t->added = a;
  char *copy = malloc(len + 1);
  if (!copy)
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "bert tokenizer: no memory for an added token");
  memcpy(copy, content, len + 1);
  if (!grow_ids(t, id + 1)) {
    free(copy);
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "bert tokenizer: no memory for an added token");
  }
  if (!t->tokens[id]) {
    t->tokens[id] = malloc(len + 1);
    if (!t->tokens[id]) {
      free(copy);
      return vz_fail(VZ_ERR_OUT_OF_MEMORY, "bert tokenizer: no memory for an added token");
    }
    memcpy(t->tokens[id], content, len + 1);
  }
  a[t->n_added++] = (added_token){.content = copy,
                                  .len = len,
                                  .id = id,
                                  .special = special,
                                  .normalized = normalized,
                                  .single_word = single_word};
  t->first_byte[normalized][(unsigned char)content[0]] = true;
  return VZ_OK;
}

void vz_bert_tokenizer_free(vz_bert_tokenizer *t) {
  if (!t)
    return;
  for (int32_t i = 0; i < t->n_ids; i++)
    free(t->tokens[i]);
  free(t->tokens);
  free(t->slots);
  for (int i = 0; i < t->n_added; i++)
    free(t->added[i].content);
  free(t->added);
  free(t->prefix);
  free(t);
}

/* ---- Loading ---- */

static vz_status read_file(const char *path, char **data, size_t *size) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return vz_fail(VZ_ERR_IO, "bert tokenizer: cannot open '%s': %s", path, strerror(errno));
  str_buf b = {0};
  char chunk[65536];
  size_t got;
  while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
    if (!buf_append(&b, chunk, got)) {
      fclose(f);
      free(b.s);
      return vz_fail(VZ_ERR_OUT_OF_MEMORY, "bert tokenizer: no memory to read '%s'", path);
    }
  }
  bool failed = ferror(f) != 0;
  fclose(f);
  if (failed) {
    free(b.s);
    return vz_fail(VZ_ERR_IO, "bert tokenizer: cannot read '%s'", path);
  }
  if (!b.s && !buf_reserve(&b, 0))
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "bert tokenizer: no memory to read '%s'", path);
  b.s[b.n] = '\0';
  *data = b.s;
  *size = b.n;
  return VZ_OK;
}

static vz_status set_prefix(vz_bert_tokenizer *t, const char *prefix) {
  free(t->prefix);
  t->prefix_len = strlen(prefix);
  t->prefix = malloc(t->prefix_len + 1);
  if (!t->prefix)
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "bert tokenizer: no memory");
  memcpy(t->prefix, prefix, t->prefix_len + 1);
  return VZ_OK;
}

/* vocab.txt: one token per line; like HF's load_vocab, only the '\n' is
 * removed (a '\r' stays part of the token). */
static vz_status load_vocab_txt(vz_bert_tokenizer *t, const char *path, char *data, size_t size) {
  size_t lines = 0;
  for (size_t i = 0; i < size; i++)
    lines += data[i] == '\n';
  if (size > 0 && data[size - 1] != '\n')
    lines++;
  if (lines == 0)
    return vz_fail(VZ_ERR_FORMAT, "bert tokenizer: '%s' is empty", path);
  if (lines > INT32_MAX / 2)
    return vz_fail(VZ_ERR_FORMAT, "bert tokenizer: '%s' has too many lines", path);
  vz_status st = utf8_check_as(VZ_ERR_FORMAT, "bert tokenizer: vocabulary", data, size);
  if (st != VZ_OK)
    return vz_fail_context(st, "'%s': ", path);
  if (!grow_ids(t, (int32_t)lines))
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "bert tokenizer: no memory for %zu tokens", lines);
  if ((st = vocab_alloc(t, lines)) != VZ_OK)
    return st;
  size_t start = 0;
  for (int32_t id = 0; id < (int32_t)lines; id++) {
    size_t end = start;
    while (end < size && data[end] != '\n')
      end++;
    size_t len = end - start;
    t->tokens[id] = malloc(len + 1);
    if (!t->tokens[id])
      return vz_fail(VZ_ERR_OUT_OF_MEMORY, "bert tokenizer: no memory for tokens");
    memcpy(t->tokens[id], data + start, len);
    t->tokens[id][len] = '\0';
    vocab_insert(t, t->tokens[id], len, id);
    start = end + 1;
  }
  t->model_size = (int32_t)lines;
  /* bert-base-uncased's tokenizer_config: lowercase, strip accents. */
  t->clean_text = t->chinese_chars = t->strip_accents = t->lowercase = true;
  t->max_chars = 100;
  if ((st = set_prefix(t, "##")) != VZ_OK)
    return st;
  static const char *const specials[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
  for (size_t i = 0; i < sizeof specials / sizeof specials[0]; i++) {
    int32_t id = vocab_lookup(t, specials[i], strlen(specials[i]));
    if (id >= 0 && (st = add_token(t, specials[i], id, true, false, false)) != VZ_OK)
      return st;
  }
  t->unk_id = vocab_lookup(t, "[UNK]", 5);
  t->cls_id = vocab_lookup(t, "[CLS]", 5);
  t->sep_id = vocab_lookup(t, "[SEP]", 5);
  t->pad_id = vocab_lookup(t, "[PAD]", 5);
  return VZ_OK;
}

static json_object *get(json_object *o, const char *key) {
  json_object *v = NULL;
  if (!o || !json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, key, &v))
    return NULL;
  return v;
}

static bool get_bool(json_object *o, const char *key, bool fallback) {
  json_object *v = get(o, key);
  return v && json_object_is_type(v, json_type_boolean) ? json_object_get_boolean(v) : fallback;
}

static const char *get_string(json_object *o, const char *key) {
  json_object *v = get(o, key);
  return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

/* The first and last SpecialToken of a TemplateProcessing "single", or the
 * cls/sep pairs of a BertProcessing / RobertaProcessing. */
static void read_post_processor(json_object *pp, const char **cls, const char **sep) {
  const char *type = get_string(pp, "type");
  if (!type)
    return;
  if (strcmp(type, "TemplateProcessing") == 0) {
    json_object *single = get(pp, "single");
    if (!single || !json_object_is_type(single, json_type_array))
      return;
    size_t n = json_object_array_length(single);
    const char *first = NULL, *last = NULL;
    bool seen_sequence = false;
    for (size_t i = 0; i < n; i++) {
      json_object *item = json_object_array_get_idx(single, i);
      json_object *special = get(item, "SpecialToken");
      if (special) {
        const char *id = get_string(special, "id");
        if (!seen_sequence && !first)
          first = id;
        if (seen_sequence)
          last = id;
      } else if (get(item, "Sequence")) {
        seen_sequence = true;
      }
    }
    *cls = first;
    *sep = last;
  } else if (strcmp(type, "BertProcessing") == 0 || strcmp(type, "RobertaProcessing") == 0) {
    json_object *c = get(pp, "cls"), *s = get(pp, "sep");
    if (c && json_object_is_type(c, json_type_array) && json_object_array_length(c) > 0)
      *cls = json_object_get_string(json_object_array_get_idx(c, 0));
    if (s && json_object_is_type(s, json_type_array) && json_object_array_length(s) > 0)
      *sep = json_object_get_string(json_object_array_get_idx(s, 0));
  }
}

static vz_status load_tokenizer_json(vz_bert_tokenizer *t, const char *path, const char *data,
                                     size_t size) {
  if (size > INT32_MAX)
    return vz_fail(VZ_ERR_FORMAT, "bert tokenizer: '%s' is too large", path);
  json_tokener *jt = json_tokener_new();
  if (!jt)
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "bert tokenizer: no memory for a JSON parser");
  json_object *root = json_tokener_parse_ex(jt, data, (int)size);
  enum json_tokener_error jerr = json_tokener_get_error(jt);
  size_t end = json_tokener_get_parse_end(jt);
  json_tokener_free(jt);
  if (!root || jerr != json_tokener_success) {
    json_object_put(root);
    return vz_fail(VZ_ERR_FORMAT, "bert tokenizer: '%s' is not valid JSON: %s", path,
                   jerr == json_tokener_continue ? "unexpected end of file"
                                                 : json_tokener_error_desc(jerr));
  }
  for (; end < size; end++) {
    char c = data[end];
    if (c != ' ' && c != '\n' && c != '\r' && c != '\t') {
      json_object_put(root);
      return vz_fail(VZ_ERR_FORMAT, "bert tokenizer: '%s': text after the JSON value", path);
    }
  }
  vz_status st = VZ_OK;
  json_object *model = get(root, "model");
  const char *type = get_string(model, "type");
  json_object *vocab = get(model, "vocab");
  if (!model || !vocab || !json_object_is_type(vocab, json_type_object)) {
    st = vz_fail(VZ_ERR_FORMAT, "bert tokenizer: '%s' has no model.vocab object", path);
    goto done;
  }
  if (type && strcmp(type, "WordPiece") != 0) {
    st = vz_fail(VZ_ERR_UNSUPPORTED, "bert tokenizer: '%s' holds a %s model, not WordPiece", path,
                 type);
    goto done;
  }
  /* Model vocabulary. */
  size_t count = (size_t)json_object_object_length(vocab);
  if (count == 0) {
    st = vz_fail(VZ_ERR_FORMAT, "bert tokenizer: '%s' has an empty vocabulary", path);
    goto done;
  }
  int64_t max_id = -1;
  json_object_object_foreach(vocab, key0, val0) {
    if (!json_object_is_type(val0, json_type_int) || json_object_get_int64(val0) < 0 ||
        json_object_get_int64(val0) >= INT32_MAX / 2) {
      st = vz_fail(VZ_ERR_FORMAT, "bert tokenizer: '%s': vocabulary entry '%.64s' has no valid id",
                   path, key0);
      goto done;
    }
    if (json_object_get_int64(val0) > max_id)
      max_id = json_object_get_int64(val0);
  }
  if (!grow_ids(t, (int32_t)max_id + 1) || (st = vocab_alloc(t, count)) != VZ_OK) {
    st = vz_fail(VZ_ERR_OUT_OF_MEMORY, "bert tokenizer: no memory for %zu tokens", count);
    goto done;
  }
  /* Keys live in the tokens array (the first key for an id) or in a
   * separate copy kept in the hash only; duplicates of an id are rare. */
  json_object_object_foreach(vocab, key, val) {
    int32_t id = (int32_t)json_object_get_int64(val);
    size_t len = strlen(key);
    if ((st = utf8_check_as(VZ_ERR_FORMAT, "bert tokenizer: vocabulary", key, len)) != VZ_OK) {
      st = vz_fail_context(st, "'%s': ", path);
      goto done;
    }
    if (t->tokens[id]) {
      st = vz_fail(VZ_ERR_FORMAT, "bert tokenizer: '%s': id %d is given to two tokens", path,
                   (int)id);
      goto done;
    }
    t->tokens[id] = malloc(len + 1);
    if (!t->tokens[id]) {
      st = vz_fail(VZ_ERR_OUT_OF_MEMORY, "bert tokenizer: no memory for tokens");
      goto done;
    }
    memcpy(t->tokens[id], key, len + 1);
    vocab_insert(t, t->tokens[id], len, id);
  }
  t->model_size = (int32_t)max_id + 1;
  const char *prefix = get_string(model, "continuing_subword_prefix");
  if ((st = set_prefix(t, prefix ? prefix : "##")) != VZ_OK)
    goto done;
  json_object *mc = get(model, "max_input_chars_per_word");
  t->max_chars = mc && json_object_is_type(mc, json_type_int) ? json_object_get_int(mc) : 100;
  const char *unk = get_string(model, "unk_token");
  t->unk_id = vocab_lookup(t, unk ? unk : "[UNK]", strlen(unk ? unk : "[UNK]"));
  if (t->unk_id < 0) {
    st = vz_fail(VZ_ERR_FORMAT,
                 "bert tokenizer: '%s': the unknown token '%s' is not in the vocabulary", path,
                 unk ? unk : "[UNK]");
    goto done;
  }

  /* Normalizer: BertNormalizer, or none. */
  json_object *norm = get(root, "normalizer");
  const char *ntype = get_string(norm, "type");
  if (norm && !json_object_is_type(norm, json_type_null)) {
    if (!ntype || strcmp(ntype, "BertNormalizer") != 0) {
      st = vz_fail(VZ_ERR_UNSUPPORTED, "bert tokenizer: '%s': normalizer %s is not supported", path,
                   ntype ? ntype : "(untyped)");
      goto done;
    }
    t->clean_text = get_bool(norm, "clean_text", true);
    t->chinese_chars = get_bool(norm, "handle_chinese_chars", true);
    t->lowercase = get_bool(norm, "lowercase", true);
    /* strip_accents: null means "same as lowercase". */
    t->strip_accents = get_bool(norm, "strip_accents", t->lowercase);
  }
  json_object *pre = get(root, "pre_tokenizer");
  const char *ptype = get_string(pre, "type");
  if (pre && !json_object_is_type(pre, json_type_null) &&
      (!ptype || strcmp(ptype, "BertPreTokenizer") != 0)) {
    st = vz_fail(VZ_ERR_UNSUPPORTED, "bert tokenizer: '%s': pre-tokenizer %s is not supported",
                 path, ptype ? ptype : "(untyped)");
    goto done;
  }

  /* Added tokens. */
  json_object *added = get(root, "added_tokens");
  if (added && json_object_is_type(added, json_type_array)) {
    size_t n = json_object_array_length(added);
    for (size_t i = 0; i < n; i++) {
      json_object *a = json_object_array_get_idx(added, i);
      const char *content = get_string(a, "content");
      json_object *idv = get(a, "id");
      if (!content || !content[0] || !idv || !json_object_is_type(idv, json_type_int) ||
          json_object_get_int64(idv) < 0 || json_object_get_int64(idv) >= INT32_MAX / 2) {
        st =
            vz_fail(VZ_ERR_FORMAT, "bert tokenizer: '%s': added_tokens[%zu] is malformed", path, i);
        goto done;
      }
      if ((st = utf8_check_as(VZ_ERR_FORMAT, "bert tokenizer: added token", content,
                              strlen(content))) != VZ_OK) {
        st = vz_fail_context(st, "'%s': ", path);
        goto done;
      }
      bool special = get_bool(a, "special", false);
      if ((st = add_token(t, content, (int32_t)json_object_get_int64(idv), special,
                          get_bool(a, "normalized", !special),
                          get_bool(a, "single_word", false))) != VZ_OK)
        goto done;
    }
  }

  const char *cls = NULL, *sep = NULL;
  read_post_processor(get(root, "post_processor"), &cls, &sep);
  t->cls_id = vz_bert_tokenizer_id(t, cls ? cls : "[CLS]");
  t->sep_id = vz_bert_tokenizer_id(t, sep ? sep : "[SEP]");
  json_object *padding = get(root, "padding");
  json_object *pad_id = get(padding, "pad_id");
  if (pad_id && json_object_is_type(pad_id, json_type_int))
    t->pad_id = json_object_get_int(pad_id);
  else
    t->pad_id = vz_bert_tokenizer_id(t, "[PAD]");
done:
  json_object_put(root);
  return st;
}

vz_status vz_bert_tokenizer_load(const char *path, vz_bert_tokenizer **out) {
  if (!out)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "bert tokenizer: out is NULL");
  *out = NULL;
  if (!path)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "bert tokenizer: path is NULL");
  char *data;
  size_t size;
  vz_status st = read_file(path, &data, &size);
  if (st != VZ_OK)
    return st;
  vz_bert_tokenizer *t = calloc(1, sizeof *t);
  if (!t) {
    free(data);
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "bert tokenizer: no memory");
  }
  t->unk_id = t->cls_id = t->sep_id = t->pad_id = -1;
  size_t i = 0;
  if (size >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0)
    i = 3; /* a byte-order mark before JSON */
  while (i < size && (data[i] == ' ' || data[i] == '\t' || data[i] == '\r' || data[i] == '\n'))
    i++;
  if (i < size && data[i] == '{')
    st = load_tokenizer_json(t, path, data + i, size - i);
  else
    st = load_vocab_txt(t, path, data, size);
  free(data);
  if (st == VZ_OK && t->unk_id < 0)
    st = vz_fail(VZ_ERR_FORMAT, "bert tokenizer: '%s' has no [UNK] token", path);
  if (st != VZ_OK) {
    vz_bert_tokenizer_free(t);
    return st;
  }
  *out = t;
  return VZ_OK;
}

/* ---- Queries ---- */

int32_t vz_bert_tokenizer_id(const vz_bert_tokenizer *t, const char *token) {
  if (!t || !token)
    return -1;
  size_t len = strlen(token);
  const added_token *a = find_added(t, token, len);
  if (a)
    return a->id;
  return vocab_lookup(t, token, len);
}

const char *vz_bert_tokenizer_token(const vz_bert_tokenizer *t, int32_t id) {
  if (!t || id < 0 || id >= t->n_ids)
    return NULL;
  return t->tokens[id];
}

int32_t vz_bert_tokenizer_size(const vz_bert_tokenizer *t) { return t ? t->n_ids : 0; }

vz_status vz_bert_tokenizer_add_token(vz_bert_tokenizer *t, const char *content, int32_t *id) {
  if (!t || !content || !content[0])
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "bert tokenizer: add_token needs a tokenizer and a "
                                            "non-empty token");
  size_t len = strlen(content);
  vz_status st = utf8_check("bert tokenizer: add_token", content, len);
  if (st != VZ_OK)
    return st;
  const added_token *a = find_added(t, content, len);
  int32_t new_id;
  if (a) {
    new_id = a->id;
  } else {
    /* Like tokenizers: a vocabulary token keeps its id (and from now on is
     * matched whole); a new one gets the next id. */
    new_id = vocab_lookup(t, content, len);
    if (new_id < 0)
      new_id = t->n_ids;
    if (new_id >= INT32_MAX / 2)
      return vz_fail(VZ_ERR_INVALID_ARGUMENT, "bert tokenizer: too many tokens");
    if ((st = add_token(t, content, new_id, true, false, false)) != VZ_OK)
      return st;
  }
  if (id)
    *id = new_id;
  return VZ_OK;
}

/* ---- Encoding ---- */

typedef struct encoder {
  const vz_bert_tokenizer *t;
  ids_vec ids;
  str_buf key;  /* prefix + word, for vocabulary lookups */
  str_buf norm; /* normalized text of one piece */
} encoder;

static vz_status no_memory(void) {
  return vz_fail(VZ_ERR_OUT_OF_MEMORY, "bert tokenizer: no memory");
}

/* WordPiece on one pre-token w[0..len) (valid UTF-8, no whitespace). */
static vz_status wordpiece(encoder *e, const char *w, size_t len) {
  const vz_bert_tokenizer *t = e->t;
  size_t chars = 0;
  for (size_t i = 0; i < len; i++)
    chars += ((unsigned char)w[i] & 0xC0) != 0x80;
  if (t->max_chars >= 0 && chars > (size_t)t->max_chars)
    return ids_push(&e->ids, t->unk_id) ? VZ_OK : no_memory();
  /* key = prefix + w; lookups read key+prefix_len (first piece) or key. */
  e->key.n = 0;
  if (!buf_append(&e->key, t->prefix, t->prefix_len) || !buf_append(&e->key, w, len))
    return no_memory();
  size_t before = e->ids.n;
  size_t start = 0;
  while (start < len) {
    /* The piece is key[from, from + prefix_len + ...): w itself for the
     * first piece, else the prefix written just before w[start] (over bytes
     * of w that are already consumed). */
    const char *piece = e->key.s + t->prefix_len;
    size_t extra = 0;
    if (start > 0) {
      memcpy(e->key.s + start, t->prefix, t->prefix_len);
      piece = e->key.s + start;
      extra = t->prefix_len;
    }
    size_t end = len;
    int32_t found = -1;
    while (start < end) {
      found = vocab_lookup(t, piece, extra + end - start);
      if (found >= 0)
        break;
      do
        end--;
      while (end > start && ((unsigned char)w[end] & 0xC0) == 0x80);
    }
    if (found < 0) {
      e->ids.n = before;
      return ids_push(&e->ids, t->unk_id) ? VZ_OK : no_memory();
    }
    if (!ids_push(&e->ids, found))
      return no_memory();
    start = end;
  }
  return VZ_OK;
}

/* Canonical ordering of combining marks (part of NFD). */
static void canonical_order(int32_t *cps, size_t n) {
  for (size_t i = 1; i < n; i++) {
    size_t j = i;
    int ccc = utf8proc_get_property(cps[j])->combining_class;
    if (ccc == 0)
      continue;
    while (j > 0) {
      int prev = utf8proc_get_property(cps[j - 1])->combining_class;
      if (prev <= ccc)
        break;
      int32_t tmp = cps[j - 1];
      cps[j - 1] = cps[j];
      cps[j] = tmp;
      j--;
    }
  }
}

/* BertNormalizer on the valid UTF-8 s[0..len), into e->norm. */
static vz_status normalize(encoder *e, const char *s, size_t len) {
  const vz_bert_tokenizer *t = e->t;
  e->norm.n = 0;
  if (!buf_reserve(&e->norm, len))
    return no_memory();
  e->norm.s[0] = '\0';
  if (!t->clean_text && !t->chinese_chars && !t->strip_accents && !t->lowercase)
    return buf_append(&e->norm, s, len) ? VZ_OK : no_memory();
  ids_vec a = {0}, b = {0};
  vz_status st = VZ_OK;
  const unsigned char *u = (const unsigned char *)s;
  for (size_t i = 0; i < len;) {
    int32_t cp;
    i += utf8_decode(u + i, len - i, &cp);
    if (t->clean_text) {
      if (cp == 0 || cp == 0xFFFD || is_control(cp))
        continue;
      if (is_whitespace(cp))
        cp = ' ';
    }
    bool ok;
    if (t->chinese_chars && is_chinese_char(cp))
      ok = ids_push(&a, ' ') && ids_push(&a, cp) && ids_push(&a, ' ');
    else
      ok = ids_push(&a, cp);
    if (!ok) {
      st = no_memory();
      goto done;
    }
  }
  ids_vec *cur = &a;
  if (t->strip_accents) {
    for (size_t i = 0; i < a.n; i++) {
      int32_t d[32];
      int bound = 0;
      utf8proc_ssize_t k = utf8proc_decompose_char(a.v[i], d, 32, UTF8PROC_DECOMPOSE, &bound);
      if (k < 0 || k > 32) {
        d[0] = a.v[i];
        k = 1;
      }
      for (utf8proc_ssize_t j = 0; j < k; j++) {
        if (!ids_push(&b, d[j])) {
          st = no_memory();
          goto done;
        }
      }
    }
    canonical_order(b.v, b.n);
    size_t kept = 0;
    for (size_t i = 0; i < b.n; i++)
      if (utf8proc_category(b.v[i]) != UTF8PROC_CATEGORY_MN)
        b.v[kept++] = b.v[i];
    b.n = kept;
    cur = &b;
  }
  for (size_t i = 0; i < cur->n; i++) {
    char tmp[8];
    size_t k;
    int32_t cp = cur->v[i];
    if (t->lowercase && cp == 0x130) { /* full mapping: i + COMBINING DOT ABOVE */
      k = utf8_encode('i', tmp);
      k += utf8_encode(0x307, tmp + k);
    } else {
      k = utf8_encode(t->lowercase ? utf8proc_tolower(cp) : cp, tmp);
    }
    if (!buf_append(&e->norm, tmp, k)) {
      st = no_memory();
      goto done;
    }
  }
done:
  free(a.v);
  free(b.v);
  return st;
}

/* BertPreTokenizer then WordPiece on normalized text s[0..len). */
static vz_status pretokenize(encoder *e, const char *s, size_t len) {
  const unsigned char *u = (const unsigned char *)s;
  size_t word = 0;
  bool in_word = false;
  vz_status st;
  for (size_t i = 0; i < len;) {
    int32_t cp;
    size_t k = utf8_decode(u + i, len - i, &cp);
    if (k == 0)
      k = 1, cp = u[i];
    bool space = is_whitespace(cp), punct = !space && is_punctuation(cp);
    if (space || punct) {
      if (in_word && (st = wordpiece(e, s + word, i - word)) != VZ_OK)
        return st;
      in_word = false;
      if (punct && (st = wordpiece(e, s + i, k)) != VZ_OK)
        return st;
    } else if (!in_word) {
      in_word = true;
      word = i;
    }
    i += k;
  }
  if (in_word)
    return wordpiece(e, s + word, len - word);
  return VZ_OK;
}

static bool is_word_char(int32_t cp) { return cp == '_' || is_alnum(cp); }

/* The leftmost-longest added token (normalized or not) in s[from..len);
 * returns its start or len when there is none. Matches of single-word
 * tokens inside words are passed over, like tokenizers does. */
static size_t find_added_token(const vz_bert_tokenizer *t, bool normalized, const char *s,
                               size_t len, size_t from, const added_token **found) {
  const unsigned char *u = (const unsigned char *)s;
  for (size_t pos = from; pos < len; pos++) {
    if (!t->first_byte[normalized][u[pos]])
      continue;
    const added_token *best = NULL;
    for (int i = 0; i < t->n_added; i++) {
      const added_token *a = &t->added[i];
      if (a->normalized != normalized || a->len > len - pos || (best && a->len <= best->len))
        continue;
      if (memcmp(s + pos, a->content, a->len) == 0)
        best = a;
    }
    if (!best)
      continue;
    if (best->single_word) {
      bool inside = false;
      if (pos > 0) {
        size_t p = pos - 1;
        while (p > 0 && (u[p] & 0xC0) == 0x80)
          p--;
        int32_t cp;
        if (utf8_decode(u + p, pos - p, &cp) && is_word_char(cp))
          inside = true;
      }
      size_t end = pos + best->len;
      int32_t cp;
      if (end < len && utf8_decode(u + end, len - end, &cp) && is_word_char(cp))
        inside = true;
      if (inside) {
        pos = end - 1; /* the match is consumed, as in aho-corasick's find_iter */
        continue;
      }
    }
    *found = best;
    return pos;
  }
  return len;
}

/* A piece of raw text between non-normalized added tokens. */
static vz_status encode_piece(encoder *e, const char *s, size_t len) {
  if (len == 0)
    return VZ_OK;
  vz_status st = normalize(e, s, len);
  if (st != VZ_OK)
    return st;
  const str_buf *norm = &e->norm; /* wordpiece() only touches e->key */
  size_t start = 0;
  while (start < norm->n) {
    const added_token *a = NULL;
    size_t pos = find_added_token(e->t, true, norm->s, norm->n, start, &a);
    if ((st = pretokenize(e, norm->s + start, pos - start)) != VZ_OK)
      return st;
    if (!a)
      break;
    if (!ids_push(&e->ids, a->id))
      return no_memory();
    start = pos + a->len;
  }
  return VZ_OK;
}

static vz_status encode_text(encoder *e, const char *text, size_t len) {
  size_t start = 0;
  while (start <= len) {
    const added_token *a = NULL;
    size_t pos = find_added_token(e->t, false, text, len, start, &a);
    vz_status st = encode_piece(e, text + start, pos - start);
    if (st != VZ_OK)
      return st;
    if (!a)
      break;
    if (!ids_push(&e->ids, a->id))
      return no_memory();
    start = pos + a->len;
  }
  return VZ_OK;
}

vz_status vz_bert_encode(const vz_bert_tokenizer *t, const char *text,
                         const vz_bert_encode_options *opts, int32_t *ids, int32_t *mask, int *n) {
  if (!t || !text || !n)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "bert encode: tokenizer, text and n must be given");
  static const vz_bert_encode_options defaults = VZ_BERT_ENCODE_OPTIONS_INIT;
  if (!opts)
    opts = &defaults;
  int capacity = ids ? *n : 0;
  if (capacity < 0)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "bert encode: negative capacity %d", capacity);
  if (opts->max_length < 0)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "bert encode: negative max_length %d",
                   opts->max_length);
  if ((opts->truncation || opts->pad_to_max_length) && opts->max_length == 0)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT,
                   "bert encode: truncation and padding need max_length > 0");
  int n_special = opts->add_special_tokens ? 2 : 0;
  int32_t first = opts->bos_id >= 0 ? opts->bos_id : t->cls_id;
  if (opts->add_special_tokens) {
    if (opts->bos_id >= t->n_ids)
      return vz_fail(VZ_ERR_INVALID_ARGUMENT,
                     "bert encode: bos_id %d is outside the vocabulary (%d)", (int)opts->bos_id,
                     (int)t->n_ids);
    if (first < 0 || t->sep_id < 0)
      return vz_fail(VZ_ERR_INVALID_ARGUMENT, "bert encode: the vocabulary has no %s token",
                     first < 0 ? "[CLS]" : "[SEP]");
  }
  if (opts->truncation && opts->max_length < n_special)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT,
                   "bert encode: max_length %d leaves no room for the %d special tokens",
                   opts->max_length, n_special);
  if (opts->pad_to_max_length && t->pad_id < 0)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "bert encode: the vocabulary has no [PAD] token");
  size_t len = strlen(text);
  vz_status st = utf8_check("bert encode: text", text, len);
  if (st != VZ_OK)
    return st;

  encoder e = {.t = t};
  st = encode_text(&e, text, len);
  free(e.key.s);
  free(e.norm.s);
  if (st != VZ_OK) {
    free(e.ids.v);
    return st;
  }
  size_t body = e.ids.n;
  if (opts->truncation && body + (size_t)n_special > (size_t)opts->max_length)
    body = (size_t)(opts->max_length - n_special);
  size_t total = body + (size_t)n_special;
  if (opts->pad_to_max_length && total < (size_t)opts->max_length)
    total = (size_t)opts->max_length;
  if (total > INT32_MAX) {
    free(e.ids.v);
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "bert encode: %zu tokens do not fit an int", total);
  }
  if (!ids || (size_t)capacity < total) {
    free(e.ids.v);
    *n = (int)total;
    if (!ids)
      return VZ_OK;
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "bert encode: %zu ids do not fit the capacity %d",
                   total, capacity);
  }
  size_t k = 0;
  if (opts->add_special_tokens)
    ids[k++] = first;
  if (body)
    memcpy(ids + k, e.ids.v, body * sizeof *ids);
  k += body;
  if (opts->add_special_tokens)
    ids[k++] = t->sep_id;
  size_t used = k;
  while (k < total)
    ids[k++] = t->pad_id;
  if (mask)
    for (size_t i = 0; i < total; i++)
      mask[i] = i < used;
  free(e.ids.v);
  *n = (int)total;
  return VZ_OK;
}

/* ---- Decoding ---- */

static bool is_special_id(const vz_bert_tokenizer *t, int32_t id) {
  for (int i = 0; i < t->n_added; i++)
    if (t->added[i].id == id && t->added[i].special)
      return true;
  return false;
}

/* HF's clean_up_tokenization (in place). */
static void cleanup_spaces(char *s) {
  static const char *const from[] = {" .",   " ?",  " !",  " ,",   " ' ",
                                     " n't", " 'm", " 's", " 've", " 're"};
  static const char *const to[] = {".", "?", "!", ",", "'", "n't", "'m", "'s", "'ve", "'re"};
  for (size_t r = 0; r < sizeof from / sizeof from[0]; r++) {
    size_t fl = strlen(from[r]), tl = strlen(to[r]);
    char *w = s;
    for (const char *p = s; *p;) {
      if (strncmp(p, from[r], fl) == 0) {
        memmove(w, to[r], tl);
        w += tl;
        p += fl;
      } else {
        *w++ = *p++;
      }
    }
    *w = '\0';
  }
}

vz_status vz_bert_decode(const vz_bert_tokenizer *t, const int32_t *ids, int n,
                         bool skip_special_tokens, char **out) {
  if (!out)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "bert decode: out is NULL");
  *out = NULL;
  if (!t || (n > 0 && !ids) || n < 0)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "bert decode: bad tokenizer, ids or count");
  str_buf b = {0};
  if (!buf_reserve(&b, 0))
    return no_memory();
  b.s[0] = '\0';
  bool first = true;
  for (int i = 0; i < n; i++) {
    const char *tok = vz_bert_tokenizer_token(t, ids[i]);
    if (!tok) {
      free(b.s);
      return vz_fail(VZ_ERR_INVALID_ARGUMENT, "bert decode: id %d at %d is not a token",
                     (int)ids[i], i);
    }
    if (skip_special_tokens && is_special_id(t, ids[i]))
      continue;
    size_t len = strlen(tok);
    bool ok;
    if (!first && t->prefix_len > 0 && strncmp(tok, t->prefix, t->prefix_len) == 0)
      ok = buf_append(&b, tok + t->prefix_len, len - t->prefix_len);
    else
      ok = (first || buf_append(&b, " ", 1)) && buf_append(&b, tok, len);
    if (!ok) {
      free(b.s);
      return no_memory();
    }
    first = false;
  }
  cleanup_spaces(b.s);
  *out = b.s;
  return VZ_OK;
}

/* ---- LAVIS blip_caption cleanup ---- */

/* Python's str.isspace / re's \s. */
static bool is_py_space(int32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 ||
         (cp >= 0x80 &&
          (cp == 0x2028 || cp == 0x2029 || utf8proc_category(cp) == UTF8PROC_CATEGORY_ZS));
}

/* Unicode "Cased" (approximated by Lu, Ll, Lt and utf8proc's case flags). */
static bool is_cased(int32_t cp) {
  utf8proc_category_t c = utf8proc_category(cp);
  return c == UTF8PROC_CATEGORY_LU || c == UTF8PROC_CATEGORY_LL || c == UTF8PROC_CATEGORY_LT ||
         utf8proc_islower(cp) || utf8proc_isupper(cp);
}

/* Unicode "Case_Ignorable": Mn, Me, Cf, Lm, Sk and the word-break
 * MidLetter / MidNumLet / Single_Quote characters. */
static bool is_case_ignorable(int32_t cp) {
  switch (cp) {
  case 0x27:
  case 0x2E:
  case 0x3A:
  case 0xB7:
  case 0x387:
  case 0x55F:
  case 0x5F4:
  case 0x2018:
  case 0x2019:
  case 0x2024:
  case 0x2027:
  case 0xFE13:
  case 0xFE52:
  case 0xFE55:
  case 0xFF07:
  case 0xFF0E:
  case 0xFF1A: return true;
  default: break;
  }
  switch (utf8proc_category(cp)) {
  case UTF8PROC_CATEGORY_MN:
  case UTF8PROC_CATEGORY_ME:
  case UTF8PROC_CATEGORY_CF:
  case UTF8PROC_CATEGORY_LM:
  case UTF8PROC_CATEGORY_SK: return true;
  default: return false;
  }
}

/* Python's str.lower on code points: full mapping (U+0130) and the
 * Final_Sigma rule for U+03A3. */
static vz_status python_lower(const int32_t *in, size_t n, ids_vec *out) {
  for (size_t i = 0; i < n; i++) {
    int32_t cp = in[i];
    bool ok;
    if (cp == 0x130) {
      ok = ids_push(out, 'i') && ids_push(out, 0x307);
    } else if (cp == 0x3A3) {
      size_t j = i;
      while (j > 0 && is_case_ignorable(in[j - 1]))
        j--;
      bool final = j > 0 && is_cased(in[j - 1]);
      if (final) {
        j = i + 1;
        while (j < n && is_case_ignorable(in[j]))
          j++;
        final = j == n || !is_cased(in[j]);
      }
      ok = ids_push(out, final ? 0x3C2 : 0x3C3);
    } else {
      ok = ids_push(out, utf8proc_tolower(cp));
    }
    if (!ok)
      return no_memory();
  }
  return VZ_OK;
}

vz_status vz_blip_caption_clean(const char *text, int max_words, char **out) {
  if (!out)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "blip caption: out is NULL");
  *out = NULL;
  if (!text)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "blip caption: text is NULL");
  size_t len = strlen(text);
  vz_status st = utf8_check("blip caption", text, len);
  if (st != VZ_OK)
    return st;
  size_t n;
  int32_t *cps = utf8_to_cps(text, len, &n);
  if (!cps)
    return no_memory();
  ids_vec low = {0};
  st = python_lower(cps, n, &low);
  free(cps);
  if (st != VZ_OK) {
    free(low.v);
    return st;
  }
  /* re.sub(r'([.!"()*#:;~])', ' ') then re.sub(r'\s{2,}', ' '). */
  size_t m = 0;
  for (size_t i = 0; i < low.n; i++)
    if (low.v[i] < 0x80 && strchr(".!\"()*#:;~", (int)low.v[i]) && low.v[i] != 0)
      low.v[i] = ' ';
  for (size_t i = 0; i < low.n;) {
    if (is_py_space(low.v[i])) {
      size_t j = i;
      while (j < low.n && is_py_space(low.v[j]))
        j++;
      if (j - i >= 2) {
        low.v[m++] = ' ';
        i = j;
        continue;
      }
    }
    low.v[m++] = low.v[i++];
  }
  /* rstrip("\n"), strip(" "). */
  while (m > 0 && low.v[m - 1] == '\n')
    m--;
  while (m > 0 && low.v[m - 1] == ' ')
    m--;
  size_t begin = 0;
  while (begin < m && low.v[begin] == ' ')
    begin++;
  /* caption.split(" ")[:max_words] joined by " ": cut before the
   * max_words-th space. */
  size_t end = m;
  if (max_words > 0) {
    int spaces = 0;
    for (size_t i = begin; i < m; i++) {
      if (low.v[i] == ' ' && ++spaces == max_words) {
        end = i;
        break;
      }
    }
  }
  str_buf b = {0};
  if (!buf_reserve(&b, (end - begin) * 4)) {
    free(low.v);
    return no_memory();
  }
  for (size_t i = begin; i < end; i++)
    b.n += utf8_encode(low.v[i], b.s + b.n);
  b.s[b.n] = '\0';
  free(low.v);
  *out = b.s;
  return VZ_OK;
}

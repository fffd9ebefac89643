/* The BERT WordPiece tokenizer against Hugging Face's ids: llama.cpp's
 * bert-bge cases and a multilingual set made by
 * tests/fixtures/make_tokenizer_references.py (BertTokenizerFast), both
 * from vocab.txt and from tokenizer.json; LAVIS's examples; [DEC]; padding,
 * truncation and masks; decoding; the blip_caption cleanup; errors.
 *
 * Needs ../shared/assets (found from VLZOO_ASSETS_DIR, or as
 * $VLZOO_FIXTURES_DIR/../../../shared/assets); skips without it. */
#define _POSIX_C_SOURCE 200809L
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "tests/test_util.h"
#include "vlzoo/tokenizer.h"

static const char *assets_dir;   /* test_assets_dir() */
static const char *fixtures_dir; /* test_fixtures_dir() */
static char tmp_dir[2048];

static bool is_file(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Parses space-separated integers; returns the count. */
static int parse_ids(const char *s, int32_t *ids, int cap) {
  int n = 0;
  while (*s) {
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s)
      break;
    if (n < cap)
      ids[n] = (int32_t)v;
    n++;
    s = end;
  }
  return n;
}

static bool same_ids(const char *what, const int32_t *got, int n_got, const int32_t *want,
                     int n_want) {
  if (n_got == n_want && memcmp(got, want, (size_t)n_got * sizeof *got) == 0)
    return true;
  fprintf(stderr, "%s: got %d ids, want %d\n  got ", what, n_got, n_want);
  for (int i = 0; i < n_got && i < 40; i++)
    fprintf(stderr, " %d", (int)got[i]);
  fprintf(stderr, "\n  want");
  for (int i = 0; i < n_want && i < 40; i++)
    fprintf(stderr, " %d", (int)want[i]);
  fprintf(stderr, "\n");
  return false;
}

enum { MAX_IDS = 4096 };

/* Encodes with the given options; returns the count or -1. */
static int encode(const vz_bert_tokenizer *tok, const char *text, const vz_bert_encode_options *o,
                  int32_t *ids, int32_t *mask) {
  int n = MAX_IDS;
  vz_status st = vz_bert_encode(tok, text, o, ids, mask, &n);
  if (st != VZ_OK) {
    fprintf(stderr, "encode failed: %s\n", vz_last_error());
    return -1;
  }
  return n;
}

/* ---- (a) llama.cpp's bert-bge cases ---- */

static void test_bge(const vz_bert_tokenizer *tok, const char *which) {
  char inp_path[4096], out_path[4096];
  test_path_join(inp_path, sizeof inp_path, assets_dir, "tokenizer-tests/bert-bge.inp");
  test_path_join(out_path, sizeof out_path, assets_dir, "tokenizer-tests/bert-bge.out");
  size_t inp_size;
  char *inp = test_read_file(inp_path, &inp_size);
  char *out = test_read_file(out_path, NULL);
  CHECK(inp && out);
  if (!inp || !out) {
    free(inp);
    free(out);
    return;
  }
  static const char sep[] = "\n__ggml_vocab_test__\n";
  size_t sep_len = strlen(sep);
  /* The file ends with a separator: cut it, so no empty case follows. */
  if (inp_size >= sep_len && memcmp(inp + inp_size - sep_len, sep, sep_len) == 0)
    inp[inp_size - sep_len] = '\0';
  char *case_start = inp;
  char *line = out;
  int cases = 0, matched = 0;
  static int32_t ids[MAX_IDS], want[MAX_IDS];
  vz_bert_encode_options o = VZ_BERT_ENCODE_OPTIONS_INIT;
  o.add_special_tokens = false;
  for (;;) {
    char *next = strstr(case_start, sep);
    if (next)
      *next = '\0';
    char *eol = strchr(line, '\n');
    if (eol)
      *eol = '\0';
    int n_want = parse_ids(line, want, MAX_IDS);
    int n = encode(tok, case_start, &o, ids, NULL);
    char what[128];
    snprintf(what, sizeof what, "bert-bge (%s) case %d", which, cases);
    if (same_ids(what, ids, n, want, n_want))
      matched++;
    else
      test_failures++;
    cases++;
    if (!next || !eol)
      break;
    case_start = next + sep_len;
    line = eol + 1;
  }
  printf("bert-bge (%s): %d/%d cases identical\n", which, matched, cases);
  CHECK(cases == 46);
  free(inp);
  free(out);
}

/* ---- (b) the multilingual set ---- */

static void test_multilingual(const vz_bert_tokenizer *tok, const vz_bert_tokenizer *plain,
                              const char *which) {
  char txt_path[4096], ids_path[4096];
  test_path_join(txt_path, sizeof txt_path, fixtures_dir, "tokenizer/bert_multilingual.txt");
  test_path_join(ids_path, sizeof ids_path, fixtures_dir, "tokenizer/bert_multilingual.ids");
  char *txt = test_read_file(txt_path, NULL);
  char *ref = test_read_file(ids_path, NULL);
  CHECK(txt && ref);
  if (!txt || !ref) {
    free(txt);
    free(ref);
    return;
  }
  /* Inputs: one JSON string a line. */
  int n_inputs = 0;
  for (char *p = txt; *p && n_inputs < 1000000; p++)
    n_inputs += *p == '\n';
  const char **inputs = calloc((size_t)n_inputs, sizeof *inputs);
  json_object **objs = calloc((size_t)n_inputs, sizeof *objs);
  char *p = txt;
  for (int i = 0; i < n_inputs; i++) {
    char *eol = strchr(p, '\n');
    *eol = '\0';
    objs[i] = json_tokener_parse(p);
    CHECK(objs[i] && json_object_is_type(objs[i], json_type_string));
    inputs[i] = objs[i] ? json_object_get_string(objs[i]) : "";
    p = eol + 1;
  }
  static int32_t ids[MAX_IDS], mask[MAX_IDS], want[MAX_IDS], full[MAX_IDS];
  int n_full = 0, full_line = -1;
  int checked = 0, failed = 0, decoded = 0;
  bool *line_ok = calloc((size_t)n_inputs, sizeof *line_ok);
  for (int i = 0; i < n_inputs; i++)
    line_ok[i] = true;
  for (char *l = ref; *l;) {
    char *eol = strchr(l, '\n');
    if (eol)
      *eol = '\0';
    int line;
    char config[16];
    int used = 0;
    if (sscanf(l, "%d %15s %n", &line, config, &used) < 2 || line < 0 || line >= n_inputs) {
      CHECK(!"malformed line in bert_multilingual.ids");
      break;
    }
    const char *rest = l + used;
    const char *text = inputs[line];
    vz_bert_encode_options o = VZ_BERT_ENCODE_OPTIONS_INIT;
    const vz_bert_tokenizer *t = tok;
    bool is_mask = false, ok = true;
    char what[160];
    snprintf(what, sizeof what, "multilingual (%s) line %d %s", which, line, config);
    if (strcmp(config, "dec") == 0) {
      json_object *s = json_tokener_parse(rest);
      char *got = NULL;
      CHECK(full_line == line);
      CHECK_OK(vz_bert_decode(tok, full, n_full, true, &got));
      ok = s && got && strcmp(got, json_object_get_string(s)) == 0;
      if (!ok)
        fprintf(stderr, "%s: got \"%s\", want %s\n", what, got ? got : "(null)", rest);
      free(got);
      json_object_put(s);
      decoded++;
    } else {
      if (strcmp(config, "full") == 0) {
      } else if (strcmp(config, "t32") == 0) {
        o.truncation = true, o.max_length = 32;
      } else if (strcmp(config, "t512") == 0) {
        o.truncation = true, o.max_length = 512;
      } else if (strcmp(config, "p32") == 0 || strcmp(config, "p32mask") == 0) {
        o.truncation = true, o.max_length = 32, o.pad_to_max_length = true;
        is_mask = config[3] == 'm';
      } else if (strcmp(config, "bare") == 0) {
        o.add_special_tokens = false;
      } else if (strcmp(config, "nodec") == 0) {
        t = plain;
      } else {
        CHECK(!"unknown config in bert_multilingual.ids");
        ok = false;
      }
      int n_want = parse_ids(rest, want, MAX_IDS);
      int n = encode(t, text, &o, ids, mask);
      ok = ok && same_ids(what, is_mask ? mask : ids, n, want, n_want);
      if (strcmp(config, "full") == 0) {
        memcpy(full, ids, sizeof ids[0] * (size_t)(n > 0 ? n : 0));
        n_full = n;
        full_line = line;
        /* A text whose t32 / t512 is absent must fit: check it here. */
        for (int cap = 32; cap <= 512; cap += 480) {
          vz_bert_encode_options ot = VZ_BERT_ENCODE_OPTIONS_INIT;
          ot.truncation = true, ot.max_length = cap;
          int nt = encode(t, text, &ot, ids, NULL);
          int expect = n < cap ? n : cap;
          if (nt != expect || memcmp(ids, full, (size_t)(expect - 1) * sizeof *ids) != 0 ||
              ids[nt - 1] != 102) {
            fprintf(stderr, "%s: truncation at %d is not a prefix + [SEP]\n", what, cap);
            ok = false;
          }
        }
      }
      checked++;
    }
    if (!ok) {
      failed++;
      line_ok[line] = false;
      test_failures++;
    }
    if (!eol)
      break;
    l = eol + 1;
  }
  int lines_ok = 0;
  for (int i = 0; i < n_inputs; i++)
    lines_ok += line_ok[i];
  printf("multilingual (%s): %d inputs, %d/%d encodings and %d decodings checked, %d differ; "
         "%d/%d inputs identical in every configuration\n",
         which, n_inputs, checked - failed, checked, decoded, failed, lines_ok, n_inputs);
  CHECK(n_inputs >= 300);
  for (int i = 0; i < n_inputs; i++)
    json_object_put(objs[i]);
  free(line_ok);
  free(objs);
  free(inputs);
  free(txt);
  free(ref);
}

/* ---- (c) LAVIS examples, [DEC], options ---- */

static void test_lavis(vz_bert_tokenizer *tok) {
  int32_t ids[64], mask[64];
  /* MF docstring: "a boy" -> [101, 1037, 2879, 102, 0...] padded. */
  vz_bert_encode_options o = VZ_BERT_ENCODE_OPTIONS_INIT;
  o.max_length = 8, o.truncation = true, o.pad_to_max_length = true;
  int n = 64;
  CHECK_OK(vz_bert_encode(tok, "a boy", &o, ids, mask, &n));
  static const int32_t boy[] = {101, 1037, 2879, 102, 0, 0, 0, 0};
  static const int32_t boy_mask[] = {1, 1, 1, 1, 0, 0, 0, 0};
  CHECK(same_ids("a boy", ids, n, boy, 8));
  CHECK(same_ids("a boy mask", mask, n, boy_mask, 8));
  n = 64;
  CHECK_OK(vz_bert_encode(tok, "a girl", NULL, ids, mask, &n));
  static const int32_t girl[] = {101, 1037, 2611, 102};
  CHECK(same_ids("a girl", ids, n, girl, 4));

  /* [DEC] is 30522 and is matched whole; adding again returns the same id. */
  int32_t dec = -1, again = -1;
  CHECK(vz_bert_tokenizer_size(tok) == 30522);
  CHECK(vz_bert_tokenizer_id(tok, "[DEC]") == -1);
  CHECK_OK(vz_bert_tokenizer_add_token(tok, "[DEC]", &dec));
  CHECK(dec == 30522);
  CHECK_OK(vz_bert_tokenizer_add_token(tok, "[DEC]", &again));
  CHECK(again == 30522);
  CHECK(vz_bert_tokenizer_size(tok) == 30523);
  CHECK(vz_bert_tokenizer_id(tok, "[DEC]") == 30522);
  CHECK(vz_bert_tokenizer_id(tok, "[SEP]") == 102);
  CHECK(vz_bert_tokenizer_id(tok, "[CLS]") == 101);
  CHECK(vz_bert_tokenizer_id(tok, "[PAD]") == 0);
  CHECK(vz_bert_tokenizer_id(tok, "no-such-token") == -1);
  CHECK(strcmp(vz_bert_tokenizer_token(tok, 30522), "[DEC]") == 0);
  CHECK(strcmp(vz_bert_tokenizer_token(tok, 2879), "boy") == 0);
  CHECK(vz_bert_tokenizer_token(tok, 30523) == NULL);
  CHECK(vz_bert_tokenizer_token(tok, -1) == NULL);
  int32_t existing = -1;
  CHECK_OK(vz_bert_tokenizer_add_token(tok, "[MASK]", &existing));
  CHECK(existing == 103 && vz_bert_tokenizer_size(tok) == 30523);

  n = 64;
  CHECK_OK(vz_bert_encode(tok, "[DEC] a photo", NULL, ids, NULL, &n));
  static const int32_t dec_photo[] = {101, 30522, 1037, 6302, 102};
  CHECK(same_ids("[DEC] a photo", ids, n, dec_photo, 5));
  n = 64;
  CHECK_OK(vz_bert_encode(tok, "x[DEC]y [dec]", NULL, ids, NULL, &n));
  static const int32_t dec_inside[] = {101, 1060, 30522, 1061, 1031, 11703, 1033, 102};
  CHECK(same_ids("x[DEC]y [dec]", ids, n, dec_inside, 8));

  /* LAVIS ITG: [DEC] instead of [CLS]. */
  o = (vz_bert_encode_options)VZ_BERT_ENCODE_OPTIONS_INIT;
  o.bos_id = dec;
  n = 64;
  CHECK_OK(vz_bert_encode(tok, "a boy", &o, ids, mask, &n));
  static const int32_t boy_dec[] = {30522, 1037, 2879, 102};
  CHECK(same_ids("a boy with [DEC]", ids, n, boy_dec, 4));
  o.bos_id = 40000;
  n = 64;
  CHECK_FAILS(vz_bert_encode(tok, "a boy", &o, ids, mask, &n), VZ_ERR_INVALID_ARGUMENT);

  /* Truncation keeps [SEP]; padding without truncation; masks. */
  o = (vz_bert_encode_options)VZ_BERT_ENCODE_OPTIONS_INIT;
  o.max_length = 4, o.truncation = true;
  n = 64;
  CHECK_OK(vz_bert_encode(tok, "a boy and a girl", &o, ids, mask, &n));
  static const int32_t cut[] = {101, 1037, 2879, 102};
  CHECK(same_ids("truncated at 4", ids, n, cut, 4));
  o.max_length = 2;
  n = 64;
  CHECK_OK(vz_bert_encode(tok, "a boy", &o, ids, mask, &n));
  static const int32_t only_specials[] = {101, 102};
  CHECK(same_ids("truncated at 2", ids, n, only_specials, 2));
  o.max_length = 1;
  n = 64;
  CHECK_FAILS(vz_bert_encode(tok, "a boy", &o, ids, mask, &n), VZ_ERR_INVALID_ARGUMENT);
  o = (vz_bert_encode_options)VZ_BERT_ENCODE_OPTIONS_INIT;
  o.max_length = 3, o.pad_to_max_length = true; /* longer than max_length: no cut, no pad */
  n = 64;
  CHECK_OK(vz_bert_encode(tok, "a boy", &o, ids, mask, &n));
  CHECK(n == 4 && mask[3] == 1);
  o.max_length = 6;
  n = 64;
  CHECK_OK(vz_bert_encode(tok, "[PAD]", &o, ids, mask, &n));
  static const int32_t pad_text[] = {101, 0, 102, 0, 0, 0};
  static const int32_t pad_mask[] = {1, 1, 1, 0, 0, 0};
  CHECK(same_ids("[PAD] as text", ids, n, pad_text, 6));
  CHECK(same_ids("[PAD] as text mask", mask, n, pad_mask, 6));
  o.pad_to_max_length = true, o.max_length = 0;
  n = 64;
  CHECK_FAILS(vz_bert_encode(tok, "a", &o, ids, mask, &n), VZ_ERR_INVALID_ARGUMENT);
  o = (vz_bert_encode_options)VZ_BERT_ENCODE_OPTIONS_INIT;
  o.truncation = true;
  n = 64;
  CHECK_FAILS(vz_bert_encode(tok, "a", &o, ids, mask, &n), VZ_ERR_INVALID_ARGUMENT);

  /* Sizing: NULL ids asks for the count; a small capacity fails and tells. */
  n = 0;
  CHECK_OK(vz_bert_encode(tok, "a boy and a girl", NULL, NULL, NULL, &n));
  CHECK(n == 7);
  n = 3;
  CHECK_FAILS(vz_bert_encode(tok, "a boy and a girl", NULL, ids, NULL, &n),
              VZ_ERR_INVALID_ARGUMENT);
  CHECK(n == 7);
  n = 64;
  CHECK_OK(vz_bert_encode(tok, "", NULL, ids, mask, &n));
  CHECK(same_ids("empty", ids, n, only_specials, 2));

  /* Case mapping: U+0130 and capital sigma. */
  vz_bert_encode_options bare = VZ_BERT_ENCODE_OPTIONS_INIT;
  bare.add_special_tokens = false;
  int32_t want[8];
  n = 64;
  CHECK_OK(vz_bert_encode(tok, "\xC4\xB0stanbul", &bare, ids, NULL, &n)); /* İstanbul */
  int n_want = 8;
  CHECK_OK(vz_bert_encode(tok, "istanbul", &bare, want, NULL, &n_want));
  CHECK(same_ids("Istanbul with dotted I", ids, n, want, n_want));
  n = 64;
  /* Σ -> σ (1173) everywhere, like the fast tokenizer; ς is 1172. */
  CHECK_OK(vz_bert_encode(tok, "\xCE\xA3 \xCE\x9F\xCE\xA3 \xCF\x82", &bare, ids, NULL, &n));
  static const int32_t sigmas[] = {1173, 1169, 29733, 1172}; /* σ ο ##σ ς */
  CHECK(same_ids("capital sigma", ids, n, sigmas, 4));

  /* Decoding. */
  char *text = NULL;
  static const int32_t sentence[] = {101, 30522, 1037, 2879, 1005, 1055, 3899, 1012, 102, 0};
  CHECK_OK(vz_bert_decode(tok, sentence, 10, true, &text));
  CHECK(text && strcmp(text, "a boy's dog.") == 0);
  free(text);
  CHECK_OK(vz_bert_decode(tok, sentence, 10, false, &text));
  CHECK(text && strcmp(text, "[CLS] [DEC] a boy's dog. [SEP] [PAD]") == 0);
  free(text);
  CHECK_OK(vz_bert_decode(tok, sentence, 0, true, &text));
  CHECK(text && text[0] == '\0');
  free(text);
  n = 64;
  CHECK_OK(vz_bert_encode(tok, "unaffable", &bare, ids, NULL, &n));
  CHECK_OK(vz_bert_decode(tok, ids, n, true, &text));
  CHECK(text && strcmp(text, "unaffable") == 0);
  free(text);
  static const int32_t bad_id[] = {101, 30523};
  CHECK_FAILS(vz_bert_decode(tok, bad_id, 2, true, &text), VZ_ERR_INVALID_ARGUMENT);
  CHECK(text == NULL);

  /* Round trips (HF keeps the space before ':'). */
  const char *round[][2] = {
      {"A photo of a cat sitting on a couch.", "a photo of a cat sitting on a couch."},
      {"Question: what is this? Answer:", "question : what is this? answer :"},
      {"the Merlion fountain in Singapore", "the merlion fountain in singapore"}};
  for (size_t i = 0; i < sizeof round / sizeof round[0]; i++) {
    n = 64;
    CHECK_OK(vz_bert_encode(tok, round[i][0], NULL, ids, NULL, &n));
    CHECK_OK(vz_bert_decode(tok, ids, n, true, &text));
    if (!text || strcmp(text, round[i][1]) != 0) {
      fprintf(stderr, "round trip: '%s' -> '%s'\n", round[i][0], text ? text : "(null)");
      test_failures++;
    }
    free(text);
  }

  /* Invalid UTF-8 is refused. */
  const char *bad_utf8[] = {"abc\xff",          "\xC0\xAF", "\xED\xA0\x80",
                            "\xF4\x90\x80\x80", "\xE2\x82", "\x80"};
  for (size_t i = 0; i < sizeof bad_utf8 / sizeof bad_utf8[0]; i++) {
    n = 64;
    CHECK_FAILS(vz_bert_encode(tok, bad_utf8[i], NULL, ids, NULL, &n), VZ_ERR_INVALID_ARGUMENT);
  }
  CHECK_FAILS(vz_bert_tokenizer_add_token(tok, "\xff", NULL), VZ_ERR_INVALID_ARGUMENT);
  CHECK_FAILS(vz_bert_tokenizer_add_token(tok, "", NULL), VZ_ERR_INVALID_ARGUMENT);
  n = 64;
  CHECK_FAILS(vz_bert_encode(NULL, "a", NULL, ids, NULL, &n), VZ_ERR_INVALID_ARGUMENT);
  CHECK_FAILS(vz_bert_encode(tok, NULL, NULL, ids, NULL, &n), VZ_ERR_INVALID_ARGUMENT);
}

/* Throughput: hashed lookups keep this fast. */
static void test_speed(const vz_bert_tokenizer *tok) {
  static int32_t ids[MAX_IDS];
  const char *text = "A man riding a wave on top of a surfboard, while a dog watches from the "
                     "beach; über den Wolken, 一只猫坐在窗台上。";
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  int reps = 2000, tokens = 0;
  for (int i = 0; i < reps; i++) {
    int n = MAX_IDS;
    if (vz_bert_encode(tok, text, NULL, ids, NULL, &n) != VZ_OK) {
      CHECK(!"encode failed");
      break;
    }
    tokens += n;
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double s = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
  printf("speed: %d encodes (%d tokens) in %.3f s: %.0f encodes/s\n", reps, tokens, s,
         s > 0 ? reps / s : 0.0);
}

/* ---- blip_caption cleanup ---- */

static void check_clean(const char *in, int max_words, const char *want) {
  char *out = NULL;
  CHECK_OK(vz_blip_caption_clean(in, max_words, &out));
  if (!out || strcmp(out, want) != 0) {
    fprintf(stderr, "blip_caption_clean('%s', %d) = '%s', want '%s'\n", in, max_words,
            out ? out : "(null)", want);
    test_failures++;
  }
  free(out);
}

static void test_caption_clean(void) {
  check_clean("A Man riding a wave on top of a surfboard.", 50,
              "a man riding a wave on top of a surfboard");
  check_clean("  Hello!!  (World): \"quoted\" *#~;  ", 50, "hello world quoted");
  check_clean("one two three four five", 3, "one two three");
  check_clean("one  two   three", 2, "one two");
  check_clean("tab\tstays single", 50, "tab\tstays single");
  check_clean("trailing newline\n", 50, "trailing newline");
  check_clean("a\n", 50, "a");
  check_clean("", 50, "");
  check_clean("...", 50, "");
  check_clean("don't-stop, ok?", 50, "don't-stop, ok?");
  /* Python's str.lower: İ -> i + U+0307, word-final Σ -> ς. */
  check_clean("\xC4\xB0", 50, "i\xCC\x87");
  check_clean("\xCE\x9F\xCE\x94\xCE\x9F\xCE\xA3 \xCE\xA3", 50,
              "\xCE\xBF\xCE\xB4\xCE\xBF\xCF\x82 \xCF\x83"); /* ΟΔΟΣ Σ -> οδος σ */
  check_clean("no\xC2\xA0\xC2\xA0"
              "break",
              50, "no break");
  char *out = NULL;
  CHECK_FAILS(vz_blip_caption_clean("\xff", 50, &out), VZ_ERR_INVALID_ARGUMENT);
  CHECK(out == NULL);
  CHECK_FAILS(vz_blip_caption_clean(NULL, 50, &out), VZ_ERR_INVALID_ARGUMENT);
}

/* ---- loading errors ---- */

static const char *write_tmp(const char *name, const char *content) {
  static char path[4096];
  test_path_join(path, sizeof path, tmp_dir, name);
  FILE *f = fopen(path, "wb");
  if (!f)
    return NULL;
  fputs(content, f);
  fclose(f);
  return path;
}

static void test_load_errors(void) {
  vz_bert_tokenizer *t = (vz_bert_tokenizer *)&t;
  CHECK_FAILS(vz_bert_tokenizer_load("/no/such/vocab.txt", &t), VZ_ERR_IO);
  CHECK(t == NULL);
  CHECK_FAILS(vz_bert_tokenizer_load(NULL, &t), VZ_ERR_INVALID_ARGUMENT);
  CHECK_FAILS(vz_bert_tokenizer_load("x", NULL), VZ_ERR_INVALID_ARGUMENT);
  const char *p;
  if ((p = write_tmp("vz_bert_empty.txt", "")))
    CHECK_FAILS(vz_bert_tokenizer_load(p, &t), VZ_ERR_FORMAT);
  if ((p = write_tmp("vz_bert_nounk.txt", "[PAD]\nhello\n")))
    CHECK_FAILS(vz_bert_tokenizer_load(p, &t), VZ_ERR_FORMAT);
  if ((p = write_tmp("vz_bert_badutf8.txt", "[UNK]\n\xff\xfe\n")))
    CHECK_FAILS(vz_bert_tokenizer_load(p, &t), VZ_ERR_FORMAT);
  if ((p = write_tmp("vz_bert_badutf8.json",
                     "{\"model\": {\"vocab\": {\"[UNK]\": 0, \"\xC0\xAF\": 1}}}")))
    CHECK_FAILS(vz_bert_tokenizer_load(p, &t), VZ_ERR_FORMAT);
  if ((p = write_tmp("vz_bert_bom.json",
                     "\xEF\xBB\xBF {\"model\": {\"vocab\": {\"[UNK]\": 0}}}"))) {
    CHECK_OK(vz_bert_tokenizer_load(p, &t));
    vz_bert_tokenizer_free(t);
    t = NULL;
  }
  if ((p = write_tmp("vz_bert_bad.json", "{\"model\": {\"vocab\": {\"a\": 0,")))
    CHECK_FAILS(vz_bert_tokenizer_load(p, &t), VZ_ERR_FORMAT);
  if ((p = write_tmp("vz_bert_trailing.json", "{\"model\": {\"vocab\": {\"[UNK]\": 0}}} x")))
    CHECK_FAILS(vz_bert_tokenizer_load(p, &t), VZ_ERR_FORMAT);
  if ((p = write_tmp("vz_bert_novocab.json", "{\"model\": {\"type\": \"WordPiece\"}}")))
    CHECK_FAILS(vz_bert_tokenizer_load(p, &t), VZ_ERR_FORMAT);
  if ((p = write_tmp("vz_bert_badid.json", "{\"model\": {\"vocab\": {\"[UNK]\": \"zero\"}}}")))
    CHECK_FAILS(vz_bert_tokenizer_load(p, &t), VZ_ERR_FORMAT);
  if ((p = write_tmp(
           "vz_bert_bpe.json",
           "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"[UNK]\": 0}, \"merges\": []}}")))
    CHECK_FAILS(vz_bert_tokenizer_load(p, &t), VZ_ERR_UNSUPPORTED);
  if ((p = write_tmp("vz_bert_nfkc.json", "{\"normalizer\": {\"type\": \"NFKC\"}, \"model\": "
                                          "{\"type\": \"WordPiece\", \"vocab\": {\"[UNK]\": 0}}}")))
    CHECK_FAILS(vz_bert_tokenizer_load(p, &t), VZ_ERR_UNSUPPORTED);

  /* A tiny tokenizer.json: options, a single-word added token, CRLF vocab. */
  const char *tiny =
      "{\"added_tokens\": [{\"id\": 0, \"content\": \"[UNK]\", \"special\": true, \"normalized\": "
      "false}, {\"id\": 5, \"content\": \"<w>\", \"special\": false, \"normalized\": false, "
      "\"single_word\": true}],\n"
      "\"normalizer\": {\"type\": \"BertNormalizer\", \"clean_text\": true, "
      "\"handle_chinese_chars\": true, \"strip_accents\": false, \"lowercase\": false},\n"
      "\"pre_tokenizer\": {\"type\": \"BertPreTokenizer\"},\n"
      "\"model\": {\"type\": \"WordPiece\", \"unk_token\": \"[UNK]\", "
      "\"continuing_subword_prefix\": \"@@\", \"max_input_chars_per_word\": 5, "
      "\"vocab\": {\"[UNK]\": 0, \"ab\": 1, \"@@c\": 2, \"\xC3\xA9\": 3, \"<\": 4}}}\n";
  if ((p = write_tmp("vz_bert_tiny.json", tiny))) {
    vz_bert_tokenizer *tiny_tok = NULL;
    CHECK_OK(vz_bert_tokenizer_load(p, &tiny_tok));
    if (tiny_tok) {
      int32_t ids[32];
      int n = 32;
      vz_bert_encode_options o = VZ_BERT_ENCODE_OPTIONS_INIT;
      o.add_special_tokens = false;
      /* no lowercase / accents kept; "@@" prefix; >5 chars -> [UNK];
       * <w> only as a single word. */
      CHECK_OK(vz_bert_encode(tiny_tok, "abc \xC3\xA9 AB abcccc <w> a<w>", &o, ids, NULL, &n));
      static const int32_t want[] = {1, 2, 3, 0, 0, 5, 0, 4, 0, 0};
      CHECK(same_ids("tiny tokenizer.json", ids, n, want, 10));
      n = 32;
      CHECK_FAILS(vz_bert_encode(tiny_tok, "abc", NULL, ids, NULL, &n), VZ_ERR_INVALID_ARGUMENT);
      vz_bert_tokenizer_free(tiny_tok);
    }
  }
}

int main(void) {
  fixtures_dir = test_fixtures_dir();
  assets_dir = test_assets_dir();
  const char *tmp = getenv("TMPDIR");
  snprintf(tmp_dir, sizeof tmp_dir, "%s", tmp ? tmp : "/tmp");

  char vocab_txt[4096] = "", vocab_json[4096] = "";
  if (assets_dir) {
    test_path_join(vocab_txt, sizeof vocab_txt, assets_dir,
                   "tokenizers/bert-base-uncased-vocab.txt");
    test_path_join(vocab_json, sizeof vocab_json, assets_dir,
                   "tokenizers/bert-base-uncased-tokenizer.json");
  }

  test_caption_clean();
  test_load_errors();
  if (!fixtures_dir || !is_file(vocab_txt) || !is_file(vocab_json)) {
    if (fixtures_dir)
      printf("skipped: shared assets not found at %s (set VLZOO_ASSETS_DIR)\n", assets_dir);
    else
      printf("skipped: VLZOO_FIXTURES_DIR is not set\n");
    if (test_failures)
      return test_finish("bert_tokenizer");
    return TEST_SKIP;
  }

  const char *paths[2] = {vocab_txt, vocab_json};
  const char *names[2] = {"vocab.txt", "tokenizer.json"};
  for (int i = 0; i < 2; i++) {
    vz_bert_tokenizer *tok = NULL, *plain = NULL;
    CHECK_OK(vz_bert_tokenizer_load(paths[i], &tok));
    CHECK_OK(vz_bert_tokenizer_load(paths[i], &plain));
    if (!tok || !plain) {
      vz_bert_tokenizer_free(tok);
      vz_bert_tokenizer_free(plain);
      continue;
    }
    CHECK(vz_bert_tokenizer_size(tok) == 30522);
    test_bge(tok, names[i]);
    test_lavis(tok); /* adds [DEC] */
    test_multilingual(tok, plain, names[i]);
    if (i == 0)
      test_speed(tok);
    vz_bert_tokenizer_free(tok);
    vz_bert_tokenizer_free(plain);
  }
  return test_finish("bert_tokenizer");
}

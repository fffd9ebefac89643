/* The tokenizer blip2_tiny_shapes ships (zoo-configs/shipped/
 * blip2_tiny_shapes_vocab.json: the pieces it knows at their
 * bert-base-uncased ids, and [DEC]) against the full bert-base-uncased
 * vocabulary: found by name through the zoo, it must give the ids of the
 * full vocab.txt (with [DEC] added as LAVIS adds it) on texts made of its
 * words: the classification prompts, sentences, and every whole word it
 * holds. [DEC] must be 30522 and the id count 30523, the Q-Former's rows.
 *
 * A few ids written down from Hugging Face tokenizers are checked always;
 * the comparison with the full vocabulary needs ../shared/assets and skips
 * (77) without it. */
#define _POSIX_C_SOURCE 200809L /* setenv */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tests/test_util.h"

enum { MAX_IDS = 256 };

static bool encode(const vz_bert_tokenizer *tok, const char *text, int32_t *ids, int *n) {
  *n = MAX_IDS;
  vz_status st = vz_bert_encode(tok, text, NULL, ids, NULL, n);
  if (st != VZ_OK) {
    fprintf(stderr, "encoding '%s': %s\n", text, vz_last_error());
    test_failures++;
    return false;
  }
  return true;
}

static bool same_ids(const char *what, const vz_bert_tokenizer *got_tok,
                     const vz_bert_tokenizer *want_tok, const char *text) {
  int32_t got[MAX_IDS], want[MAX_IDS];
  int n_got, n_want;
  if (!encode(got_tok, text, got, &n_got) || !encode(want_tok, text, want, &n_want))
    return false;
  if (n_got == n_want && memcmp(got, want, (size_t)n_got * sizeof *got) == 0)
    return true;
  fprintf(stderr, "%s: '%s'\n  shipped:", what, text);
  for (int i = 0; i < n_got; i++)
    fprintf(stderr, " %d", (int)got[i]);
  fprintf(stderr, "\n  full:   ");
  for (int i = 0; i < n_want; i++)
    fprintf(stderr, " %d", (int)want[i]);
  fprintf(stderr, "\n");
  test_failures++;
  return false;
}

/* Ids that need no other file: Hugging Face's BertTokenizerFast on
 * bert-base-uncased (and LAVIS's [DEC]). */
static void check_known_ids(vz_bert_tokenizer *tok) {
  static const struct {
    const char *text;
    int n;
    int32_t ids[12];
  } cases[] = {
      {"a red circle", 5, {101, 1037, 2417, 4418, 102}},
      {"a picture of a yellow triangle.", 9, {101, 1037, 3861, 1997, 1037, 3756, 9546, 1012, 102}},
      {"A Blue Square", 5, {101, 1037, 2630, 2675, 102}},
      {"green", 3, {101, 2665, 102}},
      {"[DEC] a red circle", 6, {101, 30522, 1037, 2417, 4418, 102}},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    int32_t ids[MAX_IDS];
    int n;
    if (!encode(tok, cases[c].text, ids, &n))
      continue;
    if (n != cases[c].n || memcmp(ids, cases[c].ids, (size_t)n * sizeof *ids) != 0) {
      fprintf(stderr, "'%s': %d ids, first %d, expected %d ids\n", cases[c].text, n,
              n > 1 ? (int)ids[1] : -1, cases[c].n);
      test_failures++;
    }
  }
  CHECK(vz_bert_tokenizer_id(tok, "[DEC]") == 30522);
  CHECK(vz_bert_tokenizer_size(tok) == 30523);
  int32_t id = -1;
  CHECK_OK(vz_bert_tokenizer_add_token(tok, "[DEC]", &id));
  CHECK(id == 30522); /* already there: adding it again (as pipelines do) keeps the id */
  /* the LM's first token */
  int32_t ids[MAX_IDS];
  int n = MAX_IDS;
  vz_bert_encode_options opts = VZ_BERT_ENCODE_OPTIONS_INIT;
  opts.bos_id = 30522;
  CHECK_OK(vz_bert_encode(tok, "a green square", &opts, ids, NULL, &n));
  CHECK(n == 5 && ids[0] == 30522 && ids[3] == 2675 && ids[4] == 102);
  /* a word it does not hold is unknown, not split into letters */
  n = MAX_IDS;
  CHECK_OK(vz_bert_encode(tok, "a zebra", NULL, ids, NULL, &n));
  CHECK(n == 4 && ids[2] == 100);
}

static void check_against_full(const vz_bert_tokenizer *shipped, const vz_bert_tokenizer *full) {
  static const char *const colors[] = {"red", "green", "blue", "yellow"};
  static const char *const shapes[] = {"circle", "square", "triangle"};
  static const char *const templates[] = {"%s", "a picture of %s.", "a photo of %s",
                                          "an image of %s.", "This is %s!"};
  char text[512];
  int checked = 0;
  for (int c = 0; c < 4; c++)
    for (int s = 0; s < 3; s++)
      for (size_t t = 0; t < sizeof templates / sizeof templates[0]; t++) {
        char label[64];
        snprintf(label, sizeof label, "a %s %s", colors[c], shapes[s]);
        snprintf(text, sizeof text, templates[t], label);
        same_ids("prompt", shipped, full, text);
        checked++;
      }
  static const char *const sentences[] = {
      "A photo of a small green square in the middle.",
      "this is a picture of two big yellow triangles on a white background!",
      "RED CIRCLE",
      "an image of 3 blue circles, one large and one tiny (in the corner)",
      "a drawing: a dark red square, next to a light blue triangle; 4 lines?",
      "  a   picture\tof\na  purple   star  ",
      "[DEC] a red circle [SEP]",
  };
  for (size_t i = 0; i < sizeof sentences / sizeof sentences[0]; i++, checked++)
    same_ids("sentence", shipped, full, sentences[i]);
  /* every whole word of the shipped vocabulary, eight to a text */
  size_t used = 0;
  int words = 0;
  for (int32_t id = 0; id < vz_bert_tokenizer_size(shipped); id++) {
    const char *token = vz_bert_tokenizer_token(shipped, id);
    if (!token || token[0] == '[' || strncmp(token, "##", 2) == 0)
      continue;
    size_t len = strlen(token);
    if (used + len + 2 >= sizeof text)
      break;
    used += (size_t)snprintf(text + used, sizeof text - used, "%s%s", used ? " " : "", token);
    if (++words % 8 == 0) {
      same_ids("vocabulary words", shipped, full, text);
      checked++;
      used = 0;
    }
  }
  if (used)
    same_ids("vocabulary words", shipped, full, text), checked++;
  CHECK(words >= 200); /* the common words, not only the training texts */
  printf("%d texts (%d vocabulary words) give the full vocabulary's ids\n", checked, words);
}

int main(void) {
  /* the shipped file, not a copy in the user's model folder */
  setenv("VLZOO_HOME", "/nonexistent/vlzoo-home-for-tests", 1);
  vz_config *cfg = NULL;
  char *path = NULL;
  vz_bert_tokenizer *shipped = NULL, *full = NULL;
  CHECK_OK(vz_config_load("blip2_tiny_shapes", &cfg));
  if (cfg)
    CHECK_OK(vz_config_tokenizer_path(cfg, NULL, NULL, &path));
  if (path) {
    printf("shipped tokenizer: %s\n", path);
    CHECK(strstr(path, "zoo-configs/shipped/blip2_tiny_shapes_vocab.json") != NULL);
    CHECK_OK(vz_bert_tokenizer_load(path, &shipped));
  }
  if (shipped)
    check_known_ids(shipped);

  const char *assets = test_assets_dir();
  char vocab[4096] = "";
  struct stat sb;
  if (assets)
    test_path_join(vocab, sizeof vocab, assets, "tokenizers/bert-base-uncased-vocab.txt");
  int rc;
  if (!assets || stat(vocab, &sb) != 0) {
    printf("skipped the comparison with the full vocabulary: %s not found (set "
           "VLZOO_ASSETS_DIR)\n",
           assets ? vocab : "../shared/assets");
    rc = test_failures ? test_finish("test_tiny_shapes_vocab") : TEST_SKIP;
  } else {
    CHECK_OK(vz_bert_tokenizer_load(vocab, &full));
    int32_t dec = -1;
    if (full)
      CHECK_OK(vz_bert_tokenizer_add_token(full, "[DEC]", &dec));
    CHECK(dec == 30522);
    if (shipped && full)
      check_against_full(shipped, full);
    rc = test_finish("test_tiny_shapes_vocab");
  }
  vz_bert_tokenizer_free(shipped);
  vz_bert_tokenizer_free(full);
  free(path);
  vz_config_free(cfg);
  return rc;
}

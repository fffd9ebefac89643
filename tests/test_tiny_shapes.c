/* blip2_tiny_shapes, the model vlzoo ships (zoo-configs/shipped), against
 * the PyTorch model it was trained as: loaded by name through
 * vz_blip2_stage1_from_pretrained (so the zoo config, the built-in weights
 * folder, the .ckpt reader and the tied LM decoder are all on the path),
 * with `vlzoo embed`'s preprocessing (vz_image_load, vz_image_to_tensor,
 * the shipped tokenizer with max_txt_len, no padding), every output must
 * match tests/fixtures/tiny_shapes/expected.json, which the training script
 * (scripts/train_tiny_shapes.py --record-fixture) computed in f32 from the
 * f16 weights as stored: the query features, text features, ITC scores and
 * ITM logits of three 224 x 224 images (resized to the model's size by
 * vlzoo's Pillow-exact bicubic, as by Pillow in the script) and five texts.
 * The same with f16 matmul weights, to a looser tolerance; and each image
 * is classified as the class it was drawn as.
 *
 * Skips (77) without VLZOO_FIXTURES_DIR. */
#define _POSIX_C_SOURCE 200809L /* setenv */

#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/shapes_gen.h"
#include "tests/test_util.h"

/* f32 weights: max |got - want| <= ABS_TOL * max(1, max |want|) and, for
 * vectors, cos(got, want) >= MIN_COSINE. f16 weights: the F16_ bounds. */
#define ABS_TOL 1e-4
#define MIN_COSINE 0.99999
#define F16_ABS_TOL 2e-2
#define F16_MIN_COSINE 0.999

enum { MAX_IDS = 64, N_CLASSES = SHAPES_N_CLASSES };

typedef struct session {
  vz_backend *be;
  vz_config *cfg;
  vz_blip2_stage1 *model;
  vz_bert_tokenizer *tok;
  int64_t image_size, max_len;
  float mean[3], std[3];
} session;

static void session_free(session *s) {
  vz_bert_tokenizer_free(s->tok);
  vz_blip2_stage1_free(s->model);
  vz_config_free(s->cfg);
  *s = (session){.be = s->be};
}

static bool ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* The model by name, its tokenizer and its preprocessing settings. */
static bool session_open(session *s, vz_dtype weight_dtype) {
  vz_load_options opts = {.weight_dtype = weight_dtype};
  vz_status st =
      vz_blip2_stage1_from_pretrained("blip2_tiny_shapes", &opts, s->be, &s->model, &s->cfg);
  if (st != VZ_OK) {
    fprintf(stderr, "loading blip2_tiny_shapes: %s\n", vz_last_error());
    test_failures++;
    return false;
  }
  char *weights = NULL, *vocab = NULL;
  CHECK_OK(vz_config_weights_path(s->cfg, NULL, &weights));
  CHECK(weights && ends_with(weights, "zoo-configs/shipped/blip2_tiny_shapes.ckpt"));
  CHECK_OK(vz_config_tokenizer_path(s->cfg, NULL, NULL, &vocab));
  CHECK(vocab && ends_with(vocab, "zoo-configs/shipped/blip2_tiny_shapes_vocab.json"));
  if (vocab)
    CHECK_OK(vz_bert_tokenizer_load(vocab, &s->tok));
  free(weights);
  free(vocab);
  CHECK_OK(vz_config_get_int(s->cfg, "processor.image_processor.image_size", &s->image_size));
  CHECK_OK(vz_config_get_int(s->cfg, "max_txt_len", &s->max_len));
  for (int c = 0; c < 3; c++) {
    char key[64];
    double v = 0;
    snprintf(key, sizeof key, "processor.image_processor.mean.%d", c);
    CHECK_OK(vz_config_get_float(s->cfg, key, &v));
    s->mean[c] = (float)v;
    snprintf(key, sizeof key, "processor.image_processor.std.%d", c);
    CHECK_OK(vz_config_get_float(s->cfg, key, &v));
    s->std[c] = (float)v;
  }
  const bool sizes_ok = s->max_len > 2 && s->max_len <= MAX_IDS && s->image_size > 0;
  CHECK(sizes_ok);
  return s->tok && sizes_ok;
}

/* ---- Comparing ---- */

/* The numbers of a JSON array nested `depth` deep, row-major; NULL when it
 * is not one or does not hold exactly n. */
static double *json_numbers(json_object *o, size_t n) {
  double *v = malloc((n ? n : 1) * sizeof *v);
  size_t k = 0;
  /* depth-first over nested arrays */
  json_object *stack[8];
  size_t index[8];
  int top = 0;
  stack[0] = o;
  index[0] = 0;
  if (!v || !json_object_is_type(o, json_type_array)) {
    free(v);
    return NULL;
  }
  while (top >= 0) {
    json_object *a = stack[top];
    if (index[top] == json_object_array_length(a)) {
      top--;
      continue;
    }
    json_object *e = json_object_array_get_idx(a, index[top]++);
    if (json_object_is_type(e, json_type_array) && top + 1 < 8) {
      stack[++top] = e;
      index[top] = 0;
    } else if ((json_object_is_type(e, json_type_double) ||
                json_object_is_type(e, json_type_int)) &&
               k < n) {
      v[k++] = json_object_get_double(e);
    } else {
      free(v);
      return NULL;
    }
  }
  if (k != n) {
    free(v);
    return NULL;
  }
  return v;
}

/* One output against its expected values; prints the figures. */
static void compare(const char *what, const vz_tensor *t, json_object *want_json, double abs_tol,
                    double min_cosine) {
  int64_t n = t ? vz_tensor_numel(t) : 0;
  float *got = t ? test_read_f32(t) : NULL;
  double *want = json_numbers(want_json, (size_t)n);
  if (!got || !want) {
    fprintf(stderr, "%s: no values, or not %lld expected ones\n", what, (long long)n);
    test_failures++;
    free(got);
    free(want);
    return;
  }
  double max_ref = 0, max_err = 0, dot = 0, gg = 0, ww = 0;
  int64_t worst = 0;
  for (int64_t i = 0; i < n; i++) {
    double e = fabs(got[i] - want[i]);
    max_ref = fmax(max_ref, fabs(want[i]));
    if (!(e <= max_err)) { /* NaN counts as the worst */
      max_err = e;
      worst = i;
    }
    dot += got[i] * want[i];
    gg += (double)got[i] * got[i];
    ww += want[i] * want[i];
  }
  double tol = abs_tol * (max_ref > 1 ? max_ref : 1);
  double cosine = n > 1 ? dot / sqrt(gg * ww) : 1;
  bool ok = max_err <= tol && (n == 1 || cosine >= min_cosine);
  printf("  %-34s max abs err %.3g (tol %.3g), cosine %.9f %s\n", what, max_err, tol, cosine,
         ok ? "ok" : "MISMATCH");
  if (!ok) {
    fprintf(stderr, "%s: element %lld is %.9g, expected %.9g\n", what, (long long)worst, got[worst],
            want[worst]);
    test_failures++;
  }
  free(got);
  free(want);
}

/* ---- The model's outputs ---- */

static vz_status image_outputs(session *s, const char *path, vz_tensor **embeds,
                               vz_tensor **features) {
  vz_image *img = NULL;
  vz_tensor *pixels = NULL, *queries = NULL;
  vz_status st = vz_image_load(path, &img);
  if (st == VZ_OK)
    st = vz_image_to_tensor(img, (int)s->image_size, s->mean, s->std, s->be, &pixels);
  if (st == VZ_OK)
    st = vz_blip2_image_embeds(s->model, pixels, embeds);
  if (st == VZ_OK)
    st = vz_blip2_query_output(s->model, *embeds, &queries);
  if (st == VZ_OK)
    st = vz_blip2_image_features(s->model, queries, features);
  vz_image_free(img);
  vz_tensor_free(pixels);
  vz_tensor_free(queries);
  return st;
}

/* ids [1, L] and mask as `vlzoo embed` makes them: truncated, not padded. */
static vz_status encode(session *s, const char *text, int32_t *ids, int *n, vz_tensor **ids_t,
                        vz_tensor **mask_t) {
  int32_t mask[MAX_IDS];
  vz_bert_encode_options opts = VZ_BERT_ENCODE_OPTIONS_INIT;
  opts.max_length = (int)s->max_len;
  opts.truncation = true;
  *n = MAX_IDS;
  vz_status st = vz_bert_encode(s->tok, text, &opts, ids, mask, n);
  int64_t shape[2] = {1, *n};
  if (st == VZ_OK)
    st = vz_tensor_from_host(s->be, VZ_I32, 2, shape, ids, (size_t)*n * 4, ids_t);
  if (st == VZ_OK)
    st = vz_tensor_from_host(s->be, VZ_I32, 2, shape, mask, (size_t)*n * 4, mask_t);
  return st;
}

static json_object *get(json_object *o, const char *key) {
  json_object *v = NULL;
  return json_object_object_get_ex(o, key, &v) ? v : NULL;
}

/* Every image and text of the fixture, with f32 (strict) or f16 weights. */
static void check_fixture(session *s, json_object *fixture, const char *dir, bool strict) {
  double tol = strict ? ABS_TOL : F16_ABS_TOL, cos_min = strict ? MIN_COSINE : F16_MIN_COSINE;
  json_object *images = get(fixture, "images"), *texts = get(fixture, "texts");
  size_t n_images = images ? json_object_array_length(images) : 0;
  size_t n_texts = texts ? json_object_array_length(texts) : 0;
  CHECK(n_images == 3 && n_texts == 5);
  vz_tensor *embeds[3] = {NULL}, *features[3] = {NULL};
  char path[4096], what[128];
  for (size_t i = 0; i < n_images && i < 3; i++) {
    json_object *im = json_object_array_get_idx(images, i);
    const char *file = json_object_get_string(get(im, "file"));
    test_path_join(path, sizeof path, dir, file ? file : "?");
    CHECK_OK(image_outputs(s, path, &embeds[i], &features[i]));
    snprintf(what, sizeof what, "%s image_embeds", file ? file : "?");
    compare(what, features[i], get(im, "image_embeds"), tol, cos_min);
  }
  for (size_t j = 0; j < n_texts; j++) {
    json_object *tx = json_object_array_get_idx(texts, j);
    const char *text = json_object_get_string(get(tx, "text"));
    int32_t ids[MAX_IDS];
    int n = 0;
    vz_tensor *ids_t = NULL, *mask_t = NULL, *text_feat = NULL;
    CHECK_OK(encode(s, text ? text : "", ids, &n, &ids_t, &mask_t));
    /* the shipped tokenizer gives the ids the model was run on */
    json_object *want_ids = get(tx, "ids");
    bool same = want_ids && (int)json_object_array_length(want_ids) == n;
    for (int k = 0; same && k < n; k++)
      same = json_object_get_int(json_object_array_get_idx(want_ids, (size_t)k)) == ids[k];
    if (!same) {
      fprintf(stderr, "'%s': the shipped tokenizer's ids differ from the fixture's\n", text);
      test_failures++;
    }
    CHECK_OK(vz_blip2_text_features(s->model, ids_t, mask_t, &text_feat));
    snprintf(what, sizeof what, "'%.20s' text_embed", text ? text : "");
    compare(what, text_feat, get(tx, "text_embed"), tol, cos_min);
    for (size_t i = 0; i < n_images && i < 3 && features[i] && text_feat; i++) {
      vz_tensor *itc = NULL, *itm = NULL;
      CHECK_OK(vz_blip2_itc(s->model, features[i], text_feat, &itc));
      CHECK_OK(vz_blip2_itm_logits(s->model, embeds[i], ids_t, mask_t, &itm));
      json_object *w = json_object_array_get_idx(get(tx, "itc"), i);
      json_object *one = json_object_new_array();
      json_object_array_add(one, json_object_get(w));
      snprintf(what, sizeof what, "'%.20s' itc, image %zu", text ? text : "", i);
      compare(what, itc, one, tol, cos_min);
      json_object_put(one);
      snprintf(what, sizeof what, "'%.20s' itm_logits, image %zu", text ? text : "", i);
      compare(what, itm, json_object_array_get_idx(get(tx, "itm_logits"), i), tol, cos_min);
      vz_tensor_free(itc);
      vz_tensor_free(itm);
    }
    vz_tensor_free(ids_t);
    vz_tensor_free(mask_t);
    vz_tensor_free(text_feat);
  }
  for (int i = 0; i < 3; i++) {
    vz_tensor_free(embeds[i]);
    vz_tensor_free(features[i]);
  }
}

/* The fixture images are named after what was drawn (red_circle.png): the
 * zoo's template over the 12 labels must pick that class. */
static void check_classes(session *s, json_object *fixture, const char *dir) {
  const char *template = NULL;
  CHECK_OK(vz_config_get_string(s->cfg, "pipeline.hypothesis_template", &template));
  if (!template || !strstr(template, "{}"))
    return;
  int32_t ids[N_CLASSES][MAX_IDS], mask[N_CLASSES][MAX_IDS];
  int len[N_CLASSES], longest = 0;
  for (int c = 0; c < N_CLASSES; c++) {
    char text[128];
    const char *at = strstr(template, "{}");
    snprintf(text, sizeof text, "%.*s%s%s", (int)(at - template), template, shapes_class_label(c),
             at + 2);
    vz_bert_encode_options opts = VZ_BERT_ENCODE_OPTIONS_INIT;
    opts.max_length = (int)s->max_len;
    opts.truncation = true;
    len[c] = MAX_IDS;
    CHECK_OK(vz_bert_encode(s->tok, text, &opts, ids[c], mask[c], &len[c]));
    longest = len[c] > longest ? len[c] : longest;
  }
  /* one padded batch [12, longest] */
  int32_t *batch_ids = calloc((size_t)N_CLASSES * (size_t)longest, sizeof *batch_ids);
  int32_t *batch_mask = calloc((size_t)N_CLASSES * (size_t)longest, sizeof *batch_mask);
  for (int c = 0; batch_ids && batch_mask && c < N_CLASSES; c++) {
    memcpy(batch_ids + c * longest, ids[c], (size_t)len[c] * sizeof(int32_t));
    memcpy(batch_mask + c * longest, mask[c], (size_t)len[c] * sizeof(int32_t));
  }
  int64_t shape[2] = {N_CLASSES, longest};
  vz_tensor *ids_t = test_tensor_of(s->be, VZ_I32, 2, shape, batch_ids);
  vz_tensor *mask_t = test_tensor_of(s->be, VZ_I32, 2, shape, batch_mask);
  vz_tensor *text_feats = NULL;
  CHECK_OK(vz_blip2_text_features(s->model, ids_t, mask_t, &text_feats));
  json_object *images = get(fixture, "images");
  for (size_t i = 0; text_feats && images && i < json_object_array_length(images); i++) {
    const char *file = json_object_get_string(get(json_object_array_get_idx(images, i), "file"));
    char path[4096], drawn[64];
    test_path_join(path, sizeof path, dir, file ? file : "?");
    snprintf(drawn, sizeof drawn, "a %s", file ? file : "?");
    char *dot = strrchr(drawn, '.'), *underscore = strchr(drawn, '_');
    if (dot)
      *dot = '\0';
    if (underscore)
      *underscore = ' ';
    vz_tensor *embeds = NULL, *features = NULL, *sim = NULL;
    CHECK_OK(image_outputs(s, path, &embeds, &features));
    CHECK_OK(vz_blip2_itc(s->model, features, text_feats, &sim));
    float *scores = sim ? test_read_f32(sim) : NULL;
    int best = 0;
    for (int c = 1; scores && c < N_CLASSES; c++)
      best = scores[c] > scores[best] ? c : best;
    const char *guess = shapes_class_label(best);
    printf("  %s: classified as '%s'\n", file ? file : "?", guess);
    if (!scores || strcmp(guess, drawn) != 0) {
      fprintf(stderr, "%s: classified as '%s', drawn as '%s'\n", file, guess, drawn);
      test_failures++;
    }
    free(scores);
    vz_tensor_free(embeds);
    vz_tensor_free(features);
    vz_tensor_free(sim);
  }
  free(batch_ids);
  free(batch_mask);
  vz_tensor_free(ids_t);
  vz_tensor_free(mask_t);
  vz_tensor_free(text_feats);
}

int main(void) {
  const char *fixtures = test_fixtures_dir();
  if (!fixtures) {
    printf("skipped: VLZOO_FIXTURES_DIR is not set\n");
    return TEST_SKIP;
  }
  /* the shipped files, not a copy in the user's model folder */
  setenv("VLZOO_HOME", "/nonexistent/vlzoo-home-for-tests", 1);
  char dir[4096], expected[4096];
  test_path_join(dir, sizeof dir, fixtures, "tiny_shapes");
  test_path_join(expected, sizeof expected, dir, "expected.json");
  json_object *fixture = json_object_from_file(expected);
  if (!fixture) {
    fprintf(stderr, "cannot read %s\n", expected);
    return 1;
  }
  session s = {.be = test_backend()};
  printf("f32 weights:\n");
  if (session_open(&s, VZ_F32)) {
    check_fixture(&s, fixture, dir, true);
    check_classes(&s, fixture, dir);
  }
  session_free(&s);
  printf("f16 weights:\n");
  if (session_open(&s, VZ_F16))
    check_fixture(&s, fixture, dir, false);
  session_free(&s);
  vz_backend_free(s.be);
  json_object_put(fixture);
  return test_finish("test_tiny_shapes");
}

/* The stage-1 pipelines on the tiny Hugging Face model of
 * tests/fixtures/embed_tiny, whose ITC similarity for (merlion.png, "a large
 * fountain spewing water into the air") was recorded from transformers
 * (expected.json): classification, retrieval both ways and galleries must
 * reproduce it, score with softmax(similarity / temp) as the test computes
 * it in double, and give the same answers whatever the batch size. Needs
 * VLZOO_FIXTURES_DIR and the shared assets (images, bert vocabulary). */
#define _POSIX_C_SOURCE 200809L

#include <json-c/json.h>
#include <limits.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "tests/test_util.h"

static const char *const k_reference_text = "a large fountain spewing water into the air";

static char g_model[PATH_MAX], g_vocab[PATH_MAX], g_merlion[PATH_MAX], g_cat[PATH_MAX],
    g_bus[PATH_MAX];
static double g_reference_itc;
static vz_backend *g_backend;

static vz_stage1_pipeline *open_pipeline(vz_backend *be, int batch_size) {
  vz_pipeline_options opts = {
      .load = {.weight_dtype = VZ_F32}, .tokenizer = g_vocab, .batch_size = batch_size};
  vz_stage1_pipeline *p = NULL;
  CHECK_OK(vz_stage1_pipeline_open(g_model, &opts, be, &p));
  return p;
}

/* Scores must be the softmax of similarity / temp, best first. */
static void check_scores(const vz_label_score *row, int n, float temp) {
  double top = -INFINITY, total = 0;
  for (int j = 0; j < n; j++)
    top = fmax(top, row[j].similarity / (double)temp);
  for (int j = 0; j < n; j++)
    total += exp(row[j].similarity / (double)temp - top);
  for (int j = 0; j < n; j++) {
    double want = exp(row[j].similarity / (double)temp - top) / total;
    CHECK(fabs(row[j].score - want) < 1e-6);
    if (j > 0)
      CHECK(row[j].score <= row[j - 1].score);
  }
}

static void test_classify(vz_backend *be) {
  const char *labels[] = {"a dog", k_reference_text, "a red bus"};
  const char *images[] = {g_merlion, g_cat, g_merlion, g_bus, g_merlion};
  enum { NL = 3, NI = 5 };
  vz_label_score by_batch[2][NI * NL];
  const int batch_sizes[2] = {1, 2};
  for (int b = 0; b < 2; b++) {
    vz_stage1_pipeline *p = open_pipeline(be, batch_sizes[b]);
    vz_label_set *set = NULL;
    if (!p)
      return;
    CHECK_OK(vz_label_set_new(p, labels, NL, "{}", &set));
    CHECK_OK(vz_zero_shot_classify(p, set, images, NI, by_batch[b]));
    const float temp = vz_blip2_stage1_temp(vz_stage1_pipeline_model(p));
    for (int i = 0; i < NI; i++)
      check_scores(by_batch[b] + i * NL, NL, temp);
    /* merlion's similarity to the reference text is transformers' ITC */
    for (int r = 0; r < NL; r++)
      if (by_batch[b][r].label == 1)
        CHECK(fabs(by_batch[b][r].similarity - g_reference_itc) < 1e-5);
    CHECK(strcmp(vz_label_set_label(set, 1), k_reference_text) == 0);
    vz_label_set_free(set);

    /* the template reaches the text: "{}" around the label changes nothing */
    vz_label_score templated[NL];
    CHECK_OK(vz_label_set_new(
        p, (const char *[]){"a dog", "fountain spewing water into the air", "a red bus"}, NL,
        "a large {}", &set));
    CHECK_OK(vz_zero_shot_classify(p, set, images, 1, templated));
    for (int r = 0; r < NL; r++)
      if (templated[r].label == 1)
        CHECK(fabs(templated[r].similarity - g_reference_itc) < 1e-5);
    vz_label_set_free(set);

    CHECK_FAILS(vz_label_set_new(p, labels, NL, "no hole", &set), VZ_ERR_INVALID_ARGUMENT);
    CHECK_FAILS(vz_label_set_new(p, (const char *[]){"a", ""}, 2, NULL, &set),
                VZ_ERR_INVALID_ARGUMENT);
    vz_stage1_pipeline_free(p);
  }
  for (int x = 0; x < NI * NL; x++) {
    CHECK(by_batch[0][x].label == by_batch[1][x].label);
    CHECK(fabs(by_batch[0][x].similarity - by_batch[1][x].similarity) < 1e-6);
  }
  /* the same image in three places of a batch gets the same answer */
  for (int x = 0; x < NL; x++) {
    CHECK(by_batch[1][x].label == by_batch[1][2 * NL + x].label);
    CHECK(fabs(by_batch[1][x].similarity - by_batch[1][4 * NL + x].similarity) < 1e-6);
  }
}

/* The same classification on another device (OpenCL, where there is one)
 * gives the same ranking and similarities within 1e-4 of the CPU's. */
static void test_other_device(vz_backend *cpu) {
  vz_backend *dev = NULL;
  if (vz_backend_create("opencl", &dev) != VZ_OK) {
    printf("other device: no OpenCL device here (%s); skipped\n", vz_last_error());
    return;
  }
  const char *labels[] = {"a dog", k_reference_text, "a red bus", "a cat"};
  const char *images[] = {g_merlion, g_cat, g_bus};
  enum { NL = 4, NI = 3 };
  vz_label_score got[2][NI * NL];
  vz_backend *backends[2] = {cpu, dev};
  for (int b = 0; b < 2; b++) {
    vz_stage1_pipeline *p = open_pipeline(backends[b], 2);
    vz_label_set *set = NULL;
    if (p)
      CHECK_OK(vz_label_set_new(p, labels, NL, "a photo of {}", &set));
    if (set)
      CHECK_OK(vz_zero_shot_classify(p, set, images, NI, got[b]));
    vz_label_set_free(set);
    vz_stage1_pipeline_free(p);
  }
  int same = 0;
  for (int x = 0; x < NI * NL; x++) {
    same += got[0][x].label == got[1][x].label;
    CHECK(got[0][x].label == got[1][x].label);
    CHECK(fabs(got[0][x].similarity - got[1][x].similarity) < 1e-4);
    CHECK(fabs(got[0][x].score - got[1][x].score) < 1e-4);
  }
  printf("other device: opencl ranks %d of %d labels as the CPU does\n", same, NI * NL);
  vz_backend_free(dev);
}

static void test_retrieval(vz_backend *be) {
  vz_stage1_pipeline *p = open_pipeline(be, 2);
  if (!p)
    return;
  /* texts for an image */
  const char *texts[] = {"a red bus", k_reference_text, "a dog"};
  vz_match m[3];
  int n = 0;
  CHECK_OK(vz_retrieve_texts(p, g_merlion, texts, 3, 2, m, &n));
  CHECK(n == 2);
  for (int r = 0; r < n; r++) {
    if (m[r].index == 1)
      CHECK(fabs(m[r].similarity - g_reference_itc) < 1e-5);
    if (r > 0)
      CHECK(m[r].similarity <= m[r - 1].similarity);
  }
  /* images for a text, through a saved and reloaded gallery */
  const char *images[] = {g_cat, g_merlion, g_bus};
  vz_gallery *g = NULL, *again = NULL;
  CHECK_OK(vz_gallery_build(p, images, 3, &g));
  char path[] = "/tmp/vlzoo_test_gallery_XXXXXX";
  int fd = mkstemp(path);
  CHECK(fd >= 0);
  if (fd >= 0)
    close(fd);
  if (g) {
    CHECK_OK(vz_gallery_save(p, g, path));
    CHECK_OK(vz_gallery_load(p, path, &again));
  }
  if (again) {
    CHECK(vz_gallery_size(again) == 3);
    CHECK(strcmp(vz_gallery_image(again, 1), g_merlion) == 0);
    vz_match a[3], b[3];
    int na = 0, nb = 0;
    CHECK_OK(vz_retrieve_images(p, g, k_reference_text, 5, a, &na));
    CHECK_OK(vz_retrieve_images(p, again, k_reference_text, 5, b, &nb));
    CHECK(na == 3 && nb == 3);
    for (int r = 0; r < na && r < nb; r++) {
      CHECK(a[r].index == b[r].index && a[r].similarity == b[r].similarity);
      if (a[r].index == 1)
        CHECK(fabs(a[r].similarity - g_reference_itc) < 1e-5);
    }
  }
  vz_gallery_free(g);
  vz_gallery_free(again);
  unlink(path);
  vz_stage1_pipeline_free(p);
}

/* ---- eval-retrieval against a brute-force evaluation ----
 * The reference scores every pair with vz_blip2_itm_logits (no prepared
 * images, no pair lists), picks the top k by sorting whole rows, and ranks
 * by counting, as LAVIS's procedure describes it. */

enum { EV_IMAGES = 5, EV_CAPTIONS = 2, EV_TEXTS = EV_IMAGES * EV_CAPTIONS, EV_K = 3 };

static const char *const k_captions[EV_TEXTS] = {
    "a cat lying on a sofa", "a small kitten",       "a dog in the grass", "a puppy",
    "a red bus on a street", "two buses and a car",  "a fountain",         "water spraying",
    "a rocket launch",       "a space rocket rising"};

/* Whether x is among the k largest of row (ties: the lower index wins). */
static bool in_top_k(const float *row, int n, int stride, int x, int k) {
  int better = 0;
  for (int j = 0; j < n; j++)
    better += row[j * stride] > row[x * stride] || (row[j * stride] == row[x * stride] && j < x);
  return better < k;
}

static int rank_in(const float *row, int n, int stride, int self) {
  int r = 0;
  for (int j = 0; j < n; j++)
    r += row[j * stride] > row[self * stride] ||
         (row[j * stride] == row[self * stride] && j != self);
  return r;
}

static void reference_metrics(vz_stage1_pipeline *p, const char *const *images,
                              vz_retrieval_metrics *m) {
  const int Q = vz_stage1_pipeline_num_queries(p), E = vz_stage1_pipeline_embed_dim(p);
  int64_t T, Dv;
  vz_stage1_pipeline_image_embeds_shape(p, &T, &Dv);
  float *img = malloc(sizeof(float) * EV_IMAGES * Q * E);
  float *emb = malloc(sizeof(float) * EV_IMAGES * T * Dv);
  float txt[EV_TEXTS * 512], sim[EV_IMAGES * EV_TEXTS], itm[EV_IMAGES * EV_TEXTS];
  const vz_text_options opts = {.max_length = 35, .caption_words = 50};
  CHECK(E <= 512);
  CHECK_OK(vz_pipeline_image_features(p, images, EV_IMAGES, img, emb));
  CHECK_OK(vz_pipeline_text_features(p, k_captions, EV_TEXTS, &opts, txt));
  CHECK_OK(vz_pipeline_similarity(p, img, EV_IMAGES, txt, EV_TEXTS, sim));
  const vz_blip2_stage1 *model = vz_stage1_pipeline_model(p);
  for (int i = 0; i < EV_IMAGES; i++)
    for (int t = 0; t < EV_TEXTS; t++) {
      vz_tensor *e = NULL, *ids = NULL, *mask = NULL, *logits = NULL;
      float v[2] = {0, 0};
      CHECK_OK(vz_tensor_from_host(g_backend, VZ_F32, 3, (int64_t[]){1, T, Dv}, emb + i * T * Dv,
                                   sizeof(float) * (size_t)(T * Dv), &e));
      CHECK_OK(vz_pipeline_tokenize(p, &k_captions[t], 1, &opts, &ids, &mask));
      CHECK_OK(vz_blip2_itm_logits(model, e, ids, mask, &logits));
      if (logits)
        CHECK_OK(vz_tensor_to_host(logits, v, sizeof v));
      itm[i * EV_TEXTS + t] = v[1];
      vz_tensor *all[] = {e, ids, mask, logits};
      for (int k = 0; k < 4; k++)
        vz_tensor_free(all[k]);
    }
  float i2t[EV_IMAGES * EV_TEXTS], t2i[EV_TEXTS * EV_IMAGES];
  for (int i = 0; i < EV_IMAGES; i++)
    for (int t = 0; t < EV_TEXTS; t++) {
      const float score = itm[i * EV_TEXTS + t] + sim[i * EV_TEXTS + t];
      i2t[i * EV_TEXTS + t] = in_top_k(sim + i * EV_TEXTS, EV_TEXTS, 1, t, EV_K) ? score : -100;
      t2i[t * EV_IMAGES + i] = in_top_k(sim + t, EV_IMAGES, EV_TEXTS, i, EV_K) ? score : -100;
    }
  int hits[2][3] = {{0}};
  const int ks[3] = {1, 5, 10};
  for (int i = 0; i < EV_IMAGES; i++) {
    int best = 1 << 30;
    for (int c = 0; c < EV_CAPTIONS; c++) {
      int r = rank_in(i2t + i * EV_TEXTS, EV_TEXTS, 1, i * EV_CAPTIONS + c);
      best = r < best ? r : best;
    }
    for (int k = 0; k < 3; k++)
      hits[0][k] += best < ks[k];
  }
  for (int t = 0; t < EV_TEXTS; t++)
    for (int k = 0; k < 3; k++)
      hits[1][k] += rank_in(t2i + t * EV_IMAGES, EV_IMAGES, 1, t / EV_CAPTIONS) < ks[k];
  m->txt_r1 = 100.0 * hits[0][0] / EV_IMAGES;
  m->txt_r5 = 100.0 * hits[0][1] / EV_IMAGES;
  m->txt_r10 = 100.0 * hits[0][2] / EV_IMAGES;
  m->img_r1 = 100.0 * hits[1][0] / EV_TEXTS;
  m->img_r5 = 100.0 * hits[1][1] / EV_TEXTS;
  m->img_r10 = 100.0 * hits[1][2] / EV_TEXTS;
  free(img);
  free(emb);
}

static void test_eval_retrieval(vz_backend *be, const char *const *images) {
  vz_stage1_pipeline *p = open_pipeline(be, 2);
  if (!p)
    return;
  char path[] = "/tmp/vlzoo_test_annotations_XXXXXX";
  int fd = mkstemp(path);
  CHECK(fd >= 0);
  if (fd < 0) {
    vz_stage1_pipeline_free(p);
    return;
  }
  FILE *f = fdopen(fd, "w");
  if (!f) {
    CHECK(f != NULL);
    vz_stage1_pipeline_free(p);
    return;
  }
  fprintf(f, "[");
  for (int i = 0; i < EV_IMAGES; i++)
    fprintf(f, "%s{\"image\": \"%s\", \"caption\": [\"%s\", \"%s\"]}", i ? ", " : "", images[i],
            k_captions[2 * i], k_captions[2 * i + 1]);
  fprintf(f, "]\n");
  fclose(f);
  vz_retrieval_metrics got = {0}, want = {0};
  CHECK_OK(vz_eval_retrieval(p, path, NULL, EV_K, &got));
  reference_metrics(p, images, &want);
  printf("eval-retrieval: TR@1/5/10 %.1f %.1f %.1f (reference %.1f %.1f %.1f), IR@1/5/10 %.1f "
         "%.1f %.1f (reference %.1f %.1f %.1f)\n",
         got.txt_r1, got.txt_r5, got.txt_r10, want.txt_r1, want.txt_r5, want.txt_r10, got.img_r1,
         got.img_r5, got.img_r10, want.img_r1, want.img_r5, want.img_r10);
  CHECK(got.n_images == EV_IMAGES && got.n_texts == EV_TEXTS);
  const double pairs[][2] = {{got.txt_r1, want.txt_r1},   {got.txt_r5, want.txt_r5},
                             {got.txt_r10, want.txt_r10}, {got.img_r1, want.img_r1},
                             {got.img_r5, want.img_r5},   {got.img_r10, want.img_r10}};
  for (size_t k = 0; k < sizeof pairs / sizeof pairs[0]; k++)
    CHECK(fabs(pairs[k][0] - pairs[k][1]) < 1e-9);
  CHECK(fabs(got.r_mean -
             (got.txt_r1 + got.txt_r5 + got.txt_r10 + got.img_r1 + got.img_r5 + got.img_r10) / 6) <
        1e-9);
  unlink(path);

  /* a broken annotation file is refused with its name */
  char broken[] = "/tmp/vlzoo_test_annotations_XXXXXX";
  fd = mkstemp(broken);
  f = fd >= 0 ? fdopen(fd, "w") : NULL;
  CHECK(f != NULL);
  if (f) {
    fprintf(f, "[{\"image\": \"x.png\"}]");
    fclose(f);
    CHECK_FAILS(vz_eval_retrieval(p, broken, NULL, EV_K, &got), VZ_ERR_FORMAT);
    CHECK(strstr(vz_last_error(), broken) != NULL);
    unlink(broken);
  }
  vz_stage1_pipeline_free(p);
}

static bool setup(void) {
  const char *fixtures = test_fixtures_dir(), *assets = test_assets_dir();
  if (!fixtures || !assets) {
    printf("skip: needs VLZOO_FIXTURES_DIR and the shared assets (../shared/assets)\n");
    return false;
  }
  char expected[PATH_MAX];
  test_path_join(g_model, sizeof g_model, fixtures, "embed_tiny");
  test_path_join(expected, sizeof expected, g_model, "expected.json");
  test_path_join(g_vocab, sizeof g_vocab, assets, "tokenizers/bert-base-uncased-vocab.txt");
  test_path_join(g_merlion, sizeof g_merlion, assets, "images/merlion.png");
  test_path_join(g_cat, sizeof g_cat, assets, "images/cat.jpg");
  test_path_join(g_bus, sizeof g_bus, assets, "images/buses.jpg");
  const char *needed[] = {g_vocab, g_merlion, g_cat, g_bus};
  for (size_t i = 0; i < sizeof needed / sizeof needed[0]; i++)
    if (access(needed[i], R_OK) != 0) {
      printf("skip: %s is missing\n", needed[i]);
      return false;
    }
  json_object *ref = json_object_from_file(expected), *itc = NULL;
  if (!ref || !json_object_object_get_ex(ref, "itc", &itc)) {
    fprintf(stderr, "cannot read the reference %s\n", expected);
    json_object_put(ref);
    return false;
  }
  g_reference_itc = json_object_get_double(itc);
  json_object_put(ref);
  return true;
}

int main(void) {
  if (!setup())
    return test_failures ? 1 : TEST_SKIP;
  vz_backend *be = NULL;
  CHECK_OK(vz_backend_create("cpu", &be));
  g_backend = be;
  if (be) {
    test_classify(be);
    test_retrieval(be);
    test_other_device(be);
    char dog[PATH_MAX], fountain[PATH_MAX], rocket[PATH_MAX];
    const char *assets = test_assets_dir();
    test_path_join(dog, sizeof dog, assets, "images/dog.jpg");
    test_path_join(fountain, sizeof fountain, assets, "images/merlion.png");
    test_path_join(rocket, sizeof rocket, assets, "images/rocket.jpg");
    const char *images[EV_IMAGES] = {g_cat, dog, g_bus, fountain, rocket};
    test_eval_retrieval(be, images);
  }
  vz_backend_free(be);
  return test_finish("test_pipelines");
}

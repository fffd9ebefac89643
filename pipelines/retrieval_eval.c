/* Retrieval evaluation as LAVIS runs it for COCO and Flickr30k
 * (compute_sim_matrix, then _report_metrics; reference section 3.5): ITC
 * similarity for every image-text pair, then the top k_test of each image's
 * row and of each text's column re-ranked by ITM logit + similarity, then
 * recall at 1, 5 and 10 in both directions. */
#define _POSIX_C_SOURCE 200809L

#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pipelines/stage1_pipeline.h"

/* LAVIS's evaluation text settings: blip_caption cleanup (max_words 50),
 * then BERT with max_length 35. */
enum { EVAL_CAPTION_WORDS = 50, EVAL_TEXT_LENGTH = 35, ITM_TEXT_BATCH = 32 };
#define NOT_RERANKED (-100.0f) /* LAVIS's score for pairs outside the top k */

typedef struct dataset {
  int64_t n_images, n_texts;
  char **image_paths;  /* [n_images] image_root/image */
  char **texts;        /* [n_texts] */
  int64_t *text_image; /* [n_texts] the image a text describes */
  int64_t *first_text; /* [n_images + 1] image i's texts: first_text[i] .. first_text[i+1]-1 */
} dataset;

static void dataset_free(dataset *d) {
  for (int64_t i = 0; d->image_paths && i < d->n_images; i++)
    free(d->image_paths[i]);
  for (int64_t i = 0; d->texts && i < d->n_texts; i++)
    free(d->texts[i]);
  free(d->image_paths);
  free(d->texts);
  free(d->text_image);
  free(d->first_text);
  *d = (dataset){0};
}

static double seconds_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* An entry's captions: a list of strings, or one string. */
static vz_status entry_captions(json_object *entry, int64_t index, const char *path,
                                json_object **captions, int64_t *count) {
  json_object *img = NULL;
  if (!json_object_is_type(entry, json_type_object) ||
      !json_object_object_get_ex(entry, "image", &img) ||
      !json_object_is_type(img, json_type_string) ||
      !json_object_object_get_ex(entry, "caption", captions))
    return vz_fail(VZ_ERR_FORMAT, "%s: entry %lld is not an object with \"image\" and \"caption\"",
                   path, (long long)index);
  if (json_object_is_type(*captions, json_type_string)) {
    *count = 1;
    return VZ_OK;
  }
  if (!json_object_is_type(*captions, json_type_array))
    return vz_fail(VZ_ERR_FORMAT, "%s: entry %lld: \"caption\" is neither a string nor a list",
                   path, (long long)index);
  *count = (int64_t)json_object_array_length(*captions);
  for (int64_t j = 0; j < *count; j++)
    if (!json_object_is_type(json_object_array_get_idx(*captions, (size_t)j), json_type_string))
      return vz_fail(VZ_ERR_FORMAT, "%s: entry %lld: caption %lld is not a string", path,
                     (long long)index, (long long)j);
  return VZ_OK;
}

static char *join_path(const char *root, const char *name) {
  if (!root || !root[0] || name[0] == '/')
    return strdup(name);
  size_t n = strlen(root) + strlen(name) + 2;
  char *out = malloc(n);
  if (out)
    snprintf(out, n, "%s/%s", root, name);
  return out;
}

static vz_status dataset_fill(json_object *root, const char *path, const char *image_root,
                              dataset *d) {
  d->n_images = (int64_t)json_object_array_length(root);
  for (int64_t i = 0; i < d->n_images; i++) {
    json_object *captions;
    int64_t count;
    vz_status st =
        entry_captions(json_object_array_get_idx(root, (size_t)i), i, path, &captions, &count);
    if (st != VZ_OK)
      return st;
    d->n_texts += count;
  }
  if (d->n_images < 1 || d->n_texts < 1)
    return vz_fail(VZ_ERR_FORMAT, "%s has no images or no captions", path);
  d->image_paths = calloc((size_t)d->n_images, sizeof *d->image_paths);
  d->texts = calloc((size_t)d->n_texts, sizeof *d->texts);
  d->text_image = malloc((size_t)d->n_texts * sizeof *d->text_image);
  d->first_text = malloc((size_t)(d->n_images + 1) * sizeof *d->first_text);
  if (!d->image_paths || !d->texts || !d->text_image || !d->first_text)
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory");
  int64_t t = 0;
  for (int64_t i = 0; i < d->n_images; i++) {
    json_object *entry = json_object_array_get_idx(root, (size_t)i), *img, *captions;
    int64_t count;
    json_object_object_get_ex(entry, "image", &img);
    entry_captions(entry, i, path, &captions, &count);
    d->first_text[i] = t;
    if (!(d->image_paths[i] = join_path(image_root, json_object_get_string(img))))
      return vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory");
    for (int64_t j = 0; j < count; j++, t++) {
      json_object *c = json_object_is_type(captions, json_type_string)
                           ? captions
                           : json_object_array_get_idx(captions, (size_t)j);
      d->text_image[t] = i;
      if (!(d->texts[t] = strdup(json_object_get_string(c))))
        return vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory");
    }
  }
  d->first_text[d->n_images] = t;
  return VZ_OK;
}

static vz_status dataset_load(const char *path, const char *image_root, dataset *d) {
  *d = (dataset){0};
  json_object *root = json_object_from_file(path);
  if (!root)
    return vz_fail(VZ_ERR_FORMAT, "cannot read %s as JSON: %s", path, json_util_get_last_err());
  vz_status st = json_object_is_type(root, json_type_array)
                     ? dataset_fill(root, path, image_root, d)
                     : vz_fail(VZ_ERR_FORMAT, "%s is not a JSON list of annotations", path);
  json_object_put(root);
  if (st != VZ_OK)
    dataset_free(d);
  return st;
}

/* ---- Ranking ---- */

/* Rank of `value` among row[0..n): entries strictly better, plus ties other
 * than `self` (ties count against the ground truth). */
static int64_t rank_of(const float *row, int64_t n, int64_t self) {
  int64_t r = 0;
  for (int64_t j = 0; j < n; j++)
    r += row[j] > row[self] || (row[j] == row[self] && j != self);
  return r;
}

static void recall(const int64_t *ranks, int64_t n, double *r1, double *r5, double *r10) {
  int64_t a = 0, b = 0, c = 0;
  for (int64_t i = 0; i < n; i++) {
    a += ranks[i] < 1;
    b += ranks[i] < 5;
    c += ranks[i] < 10;
  }
  *r1 = 100.0 * (double)a / (double)n;
  *r5 = 100.0 * (double)b / (double)n;
  *r10 = 100.0 * (double)c / (double)n;
}

/* _report_metrics: an image's rank is its best caption's; a text's rank is
 * its image's. */
static vz_status report(const dataset *d, const float *i2t, const float *t2i,
                        vz_retrieval_metrics *m) {
  int64_t *ranks =
      malloc((size_t)(d->n_images > d->n_texts ? d->n_images : d->n_texts) * sizeof *ranks);
  if (!ranks)
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory");
  for (int64_t i = 0; i < d->n_images; i++) {
    ranks[i] = INT64_MAX;
    for (int64_t t = d->first_text[i]; t < d->first_text[i + 1]; t++) {
      int64_t r = rank_of(i2t + i * d->n_texts, d->n_texts, t);
      ranks[i] = r < ranks[i] ? r : ranks[i];
    }
  }
  recall(ranks, d->n_images, &m->txt_r1, &m->txt_r5, &m->txt_r10);
  for (int64_t t = 0; t < d->n_texts; t++)
    ranks[t] = rank_of(t2i + t * d->n_images, d->n_images, d->text_image[t]);
  recall(ranks, d->n_texts, &m->img_r1, &m->img_r5, &m->img_r10);
  free(ranks);
  m->txt_r_mean = (m->txt_r1 + m->txt_r5 + m->txt_r10) / 3;
  m->img_r_mean = (m->img_r1 + m->img_r5 + m->img_r10) / 3;
  m->r_mean = (m->txt_r_mean + m->img_r_mean) / 2;
  m->n_images = d->n_images;
  m->n_texts = d->n_texts;
  return VZ_OK;
}

/* ---- ITM re-ranking ---- */

/* ITM match logits of texts[0..n) against one prepared image. */
static vz_status itm_scores(vz_stage1_pipeline *p, const vz_blip2_itm_image *img, const dataset *d,
                            const int64_t *texts, int64_t n, float *out) {
  const vz_text_options opts = {.max_length = EVAL_TEXT_LENGTH,
                                .caption_words = EVAL_CAPTION_WORDS};
  const char *batch_texts[ITM_TEXT_BATCH];
  vz_status st = VZ_OK;
  for (int64_t start = 0; start < n && st == VZ_OK; start += ITM_TEXT_BATCH) {
    const int64_t count = n - start < ITM_TEXT_BATCH ? n - start : ITM_TEXT_BATCH;
    for (int64_t j = 0; j < count; j++)
      batch_texts[j] = d->texts[texts[start + j]];
    vz_tensor *ids = NULL, *mask = NULL, *logits = NULL;
    float values[2 * ITM_TEXT_BATCH];
    TRY(vz_pipeline_tokenize(p, batch_texts, count, &opts, &ids, &mask));
    TRY(vz_blip2_itm_logits_one_image(p->model, img, ids, mask, &logits));
    TRY(vz_tensor_to_host(logits, values, (size_t)(2 * count) * sizeof(float)));
    for (int64_t j = 0; j < count; j++)
      out[start + j] = values[2 * j + 1]; /* the "match" logit, averaged over queries */
  done:
    vz_tensor_free(ids);
    vz_tensor_free(mask);
    vz_tensor_free(logits);
  }
  return st;
}

/* For each image, the texts to re-rank against it: its own top k (i2t) and
 * the texts that have it in their top k (t2i); each image is prepared once
 * for both directions. */
static vz_status rerank(vz_stage1_pipeline *p, const dataset *d, const float *sim,
                        const float *image_embeds, int64_t k, float *i2t, float *t2i) {
  const int64_t Ni = d->n_images, Nt = d->n_texts;
  int64_t T, Dv;
  vz_stage1_pipeline_image_embeds_shape(p, &T, &Dv);
  const int64_t k_i2t = k < Nt ? k : Nt, k_t2i = k < Ni ? k : Ni;
  int64_t *top_texts = malloc((size_t)(Ni * k_i2t) * sizeof *top_texts);
  int64_t *top_images = malloc((size_t)(Nt * k_t2i) * sizeof *top_images);
  int64_t *count = calloc((size_t)Ni + 1, sizeof *count);
  vz_match *best = malloc((size_t)(k_i2t > k_t2i ? k_i2t : k_t2i) * sizeof *best);
  int64_t *texts = malloc((size_t)(k_i2t + Nt) * sizeof *texts);
  float *scores = malloc((size_t)(k_i2t + Nt) * sizeof *scores);
  vz_status st = top_texts && top_images && count && best && texts && scores
                     ? VZ_OK
                     : vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory");
  for (int64_t i = 0; i < Ni && st == VZ_OK; i++) {
    st = vz_pipeline_top_k(sim + i * Nt, Nt, 1, k_i2t, best);
    for (int64_t r = 0; r < k_i2t && st == VZ_OK; r++)
      top_texts[i * k_i2t + r] = best[r].index;
  }
  for (int64_t t = 0; t < Nt && st == VZ_OK; t++) {
    st = vz_pipeline_top_k(sim + t, Ni, Nt, k_t2i, best);
    for (int64_t r = 0; r < k_t2i && st == VZ_OK; r++)
      top_images[t * k_t2i + r] = best[r].index;
  }
  for (int64_t x = 0; x < Ni * Nt && st == VZ_OK; x++)
    i2t[x] = t2i[x] = NOT_RERANKED;
  /* texts whose top k holds image i, gathered per image (a CSR list) */
  int64_t *by_image_start = count, *by_image = NULL;
  if (st == VZ_OK) {
    for (int64_t x = 0; x < Nt * k_t2i; x++)
      count[top_images[x] + 1]++;
    for (int64_t i = 0; i < Ni; i++)
      by_image_start[i + 1] += by_image_start[i];
    by_image = malloc((size_t)(Nt * k_t2i) * sizeof *by_image);
    int64_t *fill = malloc((size_t)Ni * sizeof *fill);
    if (!by_image || !fill)
      st = vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory");
    else {
      memcpy(fill, by_image_start, (size_t)Ni * sizeof *fill);
      for (int64_t t = 0; t < Nt; t++)
        for (int64_t r = 0; r < k_t2i; r++) {
          const int64_t i = top_images[t * k_t2i + r];
          by_image[fill[i]++] = t;
        }
    }
    free(fill);
  }
  for (int64_t i = 0; i < Ni && st == VZ_OK; i++) {
    /* the union: i's top texts, then the t2i texts not already there */
    int64_t n = 0;
    for (int64_t r = 0; r < k_i2t; r++)
      texts[n++] = top_texts[i * k_i2t + r];
    for (int64_t x = by_image_start[i]; x < by_image_start[i + 1]; x++) {
      bool seen = false;
      for (int64_t r = 0; r < k_i2t && !seen; r++)
        seen = texts[r] == by_image[x];
      if (!seen)
        texts[n++] = by_image[x];
    }
    vz_tensor *embeds = NULL;
    vz_blip2_itm_image *img = NULL;
    TRY(vz_tensor_from_floats(p->be, 3, (int64_t[]){1, T, Dv}, image_embeds + i * T * Dv, &embeds));
    TRY(vz_blip2_itm_image_prepare(p->model, embeds, &img));
    TRY(itm_scores(p, img, d, texts, n, scores));
    for (int64_t r = 0; r < k_i2t; r++) {
      const int64_t t = texts[r];
      i2t[i * Nt + t] = scores[r] + sim[i * Nt + t];
    }
    for (int64_t r = 0; r < n; r++) {
      const int64_t t = texts[r];
      for (int64_t x = 0; x < k_t2i; x++)
        if (top_images[t * k_t2i + x] == i)
          t2i[t * Ni + i] = scores[r] + sim[i * Nt + t];
    }
    vz_pipeline_report(p, "itm", i + 1, Ni);
  done:
    vz_blip2_itm_image_free(img);
    vz_tensor_free(embeds);
  }
  free(top_texts);
  free(top_images);
  free(count);
  free(by_image);
  free(best);
  free(texts);
  free(scores);
  return st;
}

/* ---- The evaluation ---- */

static vz_status check_memory(const vz_stage1_pipeline *p, const dataset *d) {
  int64_t T, Dv;
  vz_stage1_pipeline_image_embeds_shape(p, &T, &Dv);
  const double need = 4.0 * ((double)d->n_images * (double)(T * Dv) +
                             3.0 * (double)d->n_images * (double)d->n_texts);
  uint64_t avail = 0;
  if (vz_available_memory(&avail) == VZ_OK && need > (double)avail)
    return vz_fail(VZ_ERR_OUT_OF_MEMORY,
                   "evaluating %lld images and %lld texts needs about %.1f GiB for image "
                   "embeddings and score matrices; %.1f GiB are available",
                   (long long)d->n_images, (long long)d->n_texts, need / (1 << 30),
                   (double)avail / (1 << 30));
  return VZ_OK;
}

static int k_test_of(const vz_stage1_pipeline *p, int k_test) {
  int64_t k = 128;
  if (k_test > 0)
    return k_test;
  if (vz_config_has(p->cfg, "pipeline.k_test"))
    vz_config_get_int(p->cfg, "pipeline.k_test", &k);
  return k > 0 && k < INT32_MAX ? (int)k : 128;
}

vz_status vz_eval_retrieval(vz_stage1_pipeline *p, const char *annotations_path,
                            const char *image_root, int k_test, vz_retrieval_metrics *out) {
  if (!p || !annotations_path || !out)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "vz_eval_retrieval: NULL argument");
  *out = (vz_retrieval_metrics){0};
  dataset d;
  vz_status st = dataset_load(annotations_path, image_root, &d);
  if (st != VZ_OK)
    return st;
  const int64_t E = p->params.qformer.embed_dim, Ni = d.n_images, Nt = d.n_texts;
  int64_t T, Dv;
  vz_stage1_pipeline_image_embeds_shape(p, &T, &Dv);
  float *text_features = NULL, *image_features = NULL, *image_embeds = NULL, *sim = NULL,
        *i2t = NULL, *t2i = NULL;
  const vz_text_options opts = {.max_length = EVAL_TEXT_LENGTH,
                                .caption_words = EVAL_CAPTION_WORDS};
  TRY(check_memory(p, &d));
  text_features = malloc((size_t)(Nt * E) * sizeof(float));
  image_features = malloc((size_t)(Ni * vz_stage1_pipeline_num_queries(p) * E) * sizeof(float));
  image_embeds = malloc((size_t)(Ni * T * Dv) * sizeof(float));
  sim = malloc((size_t)(Ni * Nt) * sizeof(float));
  i2t = malloc((size_t)(Ni * Nt) * sizeof(float));
  t2i = malloc((size_t)(Ni * Nt) * sizeof(float));
  if (!text_features || !image_features || !image_embeds || !sim || !i2t || !t2i)
    TRY(vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory"));
  double t0 = seconds_now();
  TRY(vz_pipeline_text_features(p, (const char *const *)d.texts, Nt, &opts, text_features));
  double t1 = seconds_now();
  TRY(vz_pipeline_image_features(p, (const char *const *)d.image_paths, Ni, image_features,
                                 image_embeds));
  double t2 = seconds_now();
  TRY(vz_pipeline_similarity(p, image_features, Ni, text_features, Nt, sim));
  TRY(rerank(p, &d, sim, image_embeds, k_test_of(p, k_test), i2t, t2i));
  double t3 = seconds_now();
  TRY(report(&d, i2t, t2i, out));
  out->seconds_texts = t1 - t0;
  out->seconds_images = t2 - t1;
  out->seconds_itm = t3 - t2;
done:
  free(text_features);
  free(image_features);
  free(image_embeds);
  free(sim);
  free(i2t);
  free(t2i);
  dataset_free(&d);
  return st;
}

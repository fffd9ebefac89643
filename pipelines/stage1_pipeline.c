/* The stage-1 pipeline: model, config, tokenizer and image processor
 * settings loaded together, and the feature steps every stage-1 pipeline
 * is made of. */
#define _POSIX_C_SOURCE 200809L

#include "pipelines/stage1_pipeline.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "convert/sha256.h"
#include "vlzoo/image.h"

enum { DEFAULT_BATCH = 8, MAX_TEXT_LENGTH = 512 };

/* ---- Opening ---- */

static vz_status config_floats(const vz_config *cfg, const char *key, float out[3]) {
  char path[128];
  for (int i = 0; i < 3; i++) {
    double v;
    snprintf(path, sizeof path, "%s.%d", key, i);
    vz_status st = vz_config_get_float(cfg, path, &v);
    if (st != VZ_OK)
      return st;
    out[i] = (float)v;
  }
  return VZ_OK;
}

static vz_status config_int_or(const vz_config *cfg, const char *key, int64_t fallback, int64_t lo,
                               int64_t hi, int *out) {
  int64_t v = fallback;
  if (vz_config_has(cfg, key)) {
    vz_status st = vz_config_get_int(cfg, key, &v);
    if (st != VZ_OK)
      return st;
  }
  if (v < lo || v > hi)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "%s: %lld is outside %lld..%lld", key, (long long)v,
                   (long long)lo, (long long)hi);
  *out = (int)v;
  return VZ_OK;
}

/* The image processor and tokenizer settings of the config. */
static vz_status read_settings(vz_stage1_pipeline *p) {
  vz_status st = config_int_or(p->cfg, "processor.image_processor.image_size",
                               p->params.vision.image_size, 1, 4096, &p->image_size);
  if (st == VZ_OK && vz_config_has(p->cfg, "processor.image_processor.mean"))
    st = config_floats(p->cfg, "processor.image_processor.mean", p->mean);
  else
    memcpy(p->mean, VZ_CLIP_MEAN, sizeof p->mean);
  if (st == VZ_OK && vz_config_has(p->cfg, "processor.image_processor.std"))
    st = config_floats(p->cfg, "processor.image_processor.std", p->std);
  else
    memcpy(p->std, VZ_CLIP_STD, sizeof p->std);
  for (int c = 0; c < 3 && st == VZ_OK; c++)
    if (!(p->std[c] > 0))
      st = vz_fail(VZ_ERR_INVALID_ARGUMENT, "processor.image_processor.std must be positive");
  if (st == VZ_OK)
    st = config_int_or(p->cfg, "processor.tokenizer.max_length", 32, 2, MAX_TEXT_LENGTH,
                       &p->text_max_length);
  return st;
}

/* The tokenizer is loaded when a text first needs it, so that image-only
 * work runs without one. */
static vz_status load_tokenizer(vz_stage1_pipeline *p) {
  if (p->tok)
    return VZ_OK;
  char *path = NULL;
  vz_status st = vz_config_tokenizer_path(p->cfg, p->weights_path, p->tokenizer_arg, &path);
  if (st == VZ_OK)
    st = vz_bert_tokenizer_load(path, &p->tok);
  /* BLIP-2 adds [DEC] (30522 on bert-base-uncased); a tokenizer that already
   * has it keeps its id. */
  int32_t dec = -1;
  if (st == VZ_OK)
    st = vz_bert_tokenizer_add_token(p->tok, "[DEC]", &dec);
  if (st == VZ_OK && dec != p->params.qformer.dec_token_id)
    st = vz_fail(VZ_ERR_INVALID_ARGUMENT,
                 "tokenizer %s gives [DEC] the id %d but the model expects %d: a tokenizer of "
                 "another vocabulary?",
                 path, (int)dec, p->params.qformer.dec_token_id);
  if (st == VZ_OK && vz_bert_tokenizer_size(p->tok) > p->params.qformer.vocab_size)
    st = vz_fail(VZ_ERR_INVALID_ARGUMENT,
                 "tokenizer %s has %d ids but the model's vocabulary only %d rows", path,
                 (int)vz_bert_tokenizer_size(p->tok), p->params.qformer.vocab_size);
  if (st != VZ_OK) {
    vz_bert_tokenizer_free(p->tok);
    p->tok = NULL;
  }
  free(path);
  return st;
}

vz_status vz_stage1_pipeline_open(const char *name_or_path, const vz_pipeline_options *opts,
                                  vz_backend *be, vz_stage1_pipeline **out) {
  if (!name_or_path || !be || !out)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "vz_stage1_pipeline_open: NULL argument");
  *out = NULL;
  vz_pipeline_options defaults = {.load = {.weight_dtype = VZ_F32}};
  if (!opts)
    opts = &defaults;
  if (opts->batch_size < 0 || opts->batch_size > 4096)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "batch size %d is outside 1..4096", opts->batch_size);
  vz_stage1_pipeline *p = calloc(1, sizeof *p);
  if (!p)
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory");
  p->be = be;
  p->batch_size = opts->batch_size ? opts->batch_size : DEFAULT_BATCH;
  vz_status st = vz_blip2_stage1_from_pretrained(name_or_path, &opts->load, be, &p->model, &p->cfg);
  if (st == VZ_OK)
    st = vz_config_stage1_params(p->cfg, &p->params);
  if (st == VZ_OK)
    st = vz_config_weights_path(p->cfg, opts->load.weights, &p->weights_path);
  if (st == VZ_OK)
    st = read_settings(p);
  if (st == VZ_OK && opts->tokenizer && !(p->tokenizer_arg = strdup(opts->tokenizer)))
    st = vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory");
  if (st != VZ_OK) {
    vz_stage1_pipeline_free(p);
    return st;
  }
  *out = p;
  return VZ_OK;
}

void vz_stage1_pipeline_free(vz_stage1_pipeline *p) {
  if (!p)
    return;
  vz_bert_tokenizer_free(p->tok);
  free(p->tokenizer_arg);
  vz_blip2_stage1_free(p->model);
  vz_config_free(p->cfg);
  free(p->weights_path);
  free(p);
}

void vz_stage1_pipeline_set_progress(vz_stage1_pipeline *p, vz_progress_fn fn, void *user) {
  if (!p)
    return;
  p->progress = fn;
  p->progress_user = user;
}

void vz_pipeline_report(const vz_stage1_pipeline *p, const char *what, int64_t done,
                        int64_t total) {
  if (p->progress)
    p->progress(p->progress_user, what, done, total);
}

const vz_config *vz_stage1_pipeline_config(const vz_stage1_pipeline *p) {
  return p ? p->cfg : NULL;
}
const vz_blip2_stage1 *vz_stage1_pipeline_model(const vz_stage1_pipeline *p) {
  return p ? p->model : NULL;
}
const char *vz_stage1_pipeline_weights_path(const vz_stage1_pipeline *p) {
  return p ? p->weights_path : NULL;
}
int vz_stage1_pipeline_num_queries(const vz_stage1_pipeline *p) {
  return p ? p->params.qformer.num_query_tokens : 0;
}
int vz_stage1_pipeline_embed_dim(const vz_stage1_pipeline *p) {
  return p ? p->params.qformer.embed_dim : 0;
}

void vz_stage1_pipeline_image_embeds_shape(const vz_stage1_pipeline *p, int64_t *tokens,
                                           int64_t *width) {
  const int64_t side = p->params.vision.image_size / p->params.vision.patch_size;
  *tokens = side * side + 1;
  *width = p->params.vision.hidden_size;
}

/* ---- Weights' hash ---- */

static vz_status hash_file(vz_sha256 *h, const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return vz_fail(VZ_ERR_IO, "cannot read %s: %s", path, strerror(errno));
  enum { CHUNK = 1 << 20 };
  unsigned char *buf = malloc(CHUNK);
  vz_status st = buf ? VZ_OK : vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory");
  for (ssize_t got; st == VZ_OK && (got = read(fd, buf, CHUNK)) != 0;) {
    if (got < 0 && errno != EINTR)
      st = vz_fail(VZ_ERR_IO, "cannot read %s: %s", path, strerror(errno));
    else if (got > 0)
      vz_sha256_update(h, buf, (size_t)got);
  }
  free(buf);
  close(fd);
  return st;
}

static bool is_weight_file(const char *name) {
  static const char *const suffixes[] = {".safetensors", ".bin", ".ckpt", ".pth", ".pt"};
  size_t len = strlen(name);
  for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
    size_t n = strlen(suffixes[i]);
    if (len > n && strcmp(name + len - n, suffixes[i]) == 0)
      return true;
  }
  return false;
}

static int compare_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every weight file of a folder, in name order. */
static vz_status hash_folder(vz_sha256 *h, const char *dir) {
  DIR *d = opendir(dir);
  if (!d)
    return vz_fail(VZ_ERR_IO, "cannot read the folder %s: %s", dir, strerror(errno));
  char **names = NULL;
  size_t n = 0, cap = 0;
  vz_status st = VZ_OK;
  for (struct dirent *e; st == VZ_OK && (e = readdir(d));) {
    if (!is_weight_file(e->d_name))
      continue;
    if (n == cap) {
      cap = cap ? 2 * cap : 16;
      char **grown = realloc(names, cap * sizeof *grown);
      if (!grown) {
        st = vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory");
        break;
      }
      names = grown;
    }
    if (!(names[n] = strdup(e->d_name)))
      st = vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory");
    else
      n++;
  }
  closedir(d);
  if (n > 1)
    qsort(names, n, sizeof *names, compare_names);
  char path[4096];
  for (size_t i = 0; i < n && st == VZ_OK; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    vz_sha256_update(h, names[i], strlen(names[i]) + 1);
    st = hash_file(h, path);
  }
  for (size_t i = 0; i < n; i++)
    free(names[i]);
  free(names);
  return st;
}

vz_status vz_stage1_pipeline_weights_sha256(vz_stage1_pipeline *p, char hex[65]) {
  if (!p || !hex)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "vz_stage1_pipeline_weights_sha256: NULL argument");
  if (!p->weights_sha256[0]) {
    vz_sha256 h;
    vz_sha256_init(&h);
    struct stat sb;
    vz_status st = stat(p->weights_path, &sb) != 0
                       ? vz_fail(VZ_ERR_IO, "cannot read %s: %s", p->weights_path, strerror(errno))
                   : S_ISDIR(sb.st_mode) ? hash_folder(&h, p->weights_path)
                                         : hash_file(&h, p->weights_path);
    if (st != VZ_OK)
      return st;
    uint8_t digest[32];
    vz_sha256_final(&h, digest);
    for (int i = 0; i < 32; i++)
      snprintf(p->weights_sha256 + 2 * i, 3, "%02x", digest[i]);
  }
  memcpy(hex, p->weights_sha256, 65);
  return VZ_OK;
}

/* ---- Text ---- */

vz_status vz_pipeline_tokenize(vz_stage1_pipeline *p, const char *const *texts, int64_t n,
                               const vz_text_options *opts, vz_tensor **ids, vz_tensor **mask) {
  const int max_len = opts && opts->max_length > 0 ? opts->max_length : p->text_max_length;
  vz_status tok_st = load_tokenizer(p);
  if (tok_st != VZ_OK)
    return tok_st;
  if (max_len < 2 || max_len > p->params.qformer.max_position_embeddings)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT,
                   "text length %d is outside 2..%d (the model's max_position_embeddings)", max_len,
                   p->params.qformer.max_position_embeddings);
  int32_t *all_ids = calloc((size_t)(n * max_len), sizeof *all_ids);
  int32_t *all_mask = calloc((size_t)(n * max_len), sizeof *all_mask);
  int longest = 1;
  vz_status st = all_ids && all_mask ? VZ_OK : vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory");
  vz_bert_encode_options enc = VZ_BERT_ENCODE_OPTIONS_INIT;
  enc.max_length = max_len;
  enc.truncation = true;
  enc.pad_to_max_length = true;
  for (int64_t i = 0; i < n && st == VZ_OK; i++) {
    char *clean = NULL;
    const char *text = texts[i];
    if (opts && opts->caption_words > 0) {
      st = vz_blip_caption_clean(text, opts->caption_words, &clean);
      text = clean;
    }
    int len = max_len;
    if (st == VZ_OK)
      st = vz_bert_encode(p->tok, text, &enc, all_ids + i * max_len, all_mask + i * max_len, &len);
    free(clean);
    if (st != VZ_OK) {
      st = vz_fail_context(st, "text %lld: ", (long long)i);
      break;
    }
    for (int j = 0; j < max_len; j++)
      if (all_mask[i * max_len + j] && j + 1 > longest)
        longest = j + 1;
  }
  /* Padding past the longest text changes nothing (it is masked), so the
   * batch is cut there. */
  for (int64_t i = 1; i < n && st == VZ_OK && longest < max_len; i++) {
    memmove(all_ids + i * longest, all_ids + i * max_len, (size_t)longest * sizeof *all_ids);
    memmove(all_mask + i * longest, all_mask + i * max_len, (size_t)longest * sizeof *all_mask);
  }
  const int64_t shape[2] = {n, longest};
  const size_t bytes = (size_t)(n * longest) * sizeof(int32_t);
  if (st == VZ_OK)
    st = vz_tensor_from_host(p->be, VZ_I32, 2, shape, all_ids, bytes, ids);
  if (st == VZ_OK)
    st = vz_tensor_from_host(p->be, VZ_I32, 2, shape, all_mask, bytes, mask);
  free(all_ids);
  free(all_mask);
  return st;
}

vz_status vz_pipeline_text_features(vz_stage1_pipeline *p, const char *const *texts, int64_t n,
                                    const vz_text_options *opts, float *out) {
  if (!p || (n > 0 && (!texts || !out)) || n < 0)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "vz_pipeline_text_features: bad argument");
  const int64_t E = p->params.qformer.embed_dim, batch = 64;
  vz_status st = VZ_OK;
  for (int64_t start = 0; start < n && st == VZ_OK; start += batch) {
    const int64_t count = n - start < batch ? n - start : batch;
    vz_tensor *ids = NULL, *mask = NULL, *features = NULL;
    TRY(vz_pipeline_tokenize(p, texts + start, count, opts, &ids, &mask));
    TRY(vz_blip2_text_features(p->model, ids, mask, &features));
    TRY(vz_tensor_to_host(features, out + start * E, (size_t)(count * E) * sizeof(float)));
    vz_pipeline_report(p, "texts", start + count, n);
  done:
    vz_tensor_free(ids);
    vz_tensor_free(mask);
    vz_tensor_free(features);
  }
  return st;
}

/* ---- Images ---- */

vz_status vz_pipeline_pixels(vz_stage1_pipeline *p, const char *const *paths, int64_t n,
                             vz_tensor **out) {
  if (!p || !paths || n < 1 || !out)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "vz_pipeline_pixels: bad argument");
  vz_image **imgs = calloc((size_t)n, sizeof *imgs);
  vz_status st = imgs ? VZ_OK : vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory");
  for (int64_t i = 0; i < n && st == VZ_OK; i++)
    st = vz_image_load(paths[i], &imgs[i]);
  if (st == VZ_OK)
    st = vz_pipeline_pixels_from_images(p, (const vz_image *const *)imgs, n, out);
  for (int64_t i = 0; imgs && i < n; i++)
    vz_image_free(imgs[i]);
  free(imgs);
  return st;
}

vz_status vz_pipeline_pixels_from_images(vz_stage1_pipeline *p, const vz_image *const *images,
                                         int64_t n, vz_tensor **out) {
  if (!p || !images || n < 1 || n > INT32_MAX || !out)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "vz_pipeline_pixels_from_images: bad argument");
  return vz_image_batch_to_tensor(images, (int)n, p->image_size, p->mean, p->std, p->be, out);
}

/* Image features of a batch given as files (paths) or decoded images. */
static vz_status batch_features(vz_stage1_pipeline *p, const vz_image_source *src, int64_t start,
                                int64_t count, float *features, float *image_embeds) {
  const int64_t QE = (int64_t)p->params.qformer.num_query_tokens * p->params.qformer.embed_dim;
  int64_t T, Dv;
  vz_stage1_pipeline_image_embeds_shape(p, &T, &Dv);
  vz_tensor *pixels = NULL, *embeds = NULL, *queries = NULL, *feats = NULL;
  vz_status st;
  if (src->paths)
    TRY(vz_pipeline_pixels(p, src->paths + start, count, &pixels));
  else
    TRY(vz_pipeline_pixels_from_images(p, src->images + start, count, &pixels));
  TRY(vz_blip2_image_embeds(p->model, pixels, &embeds));
  TRY(vz_blip2_query_output(p->model, embeds, &queries));
  TRY(vz_blip2_image_features(p->model, queries, &feats));
  TRY(vz_tensor_to_host(feats, features + start * QE, (size_t)(count * QE) * sizeof(float)));
  if (image_embeds)
    TRY(vz_tensor_to_host(embeds, image_embeds + start * T * Dv,
                          (size_t)(count * T * Dv) * sizeof(float)));
done:
  vz_tensor_free(pixels);
  vz_tensor_free(embeds);
  vz_tensor_free(queries);
  vz_tensor_free(feats);
  return st;
}

vz_status vz_pipeline_source_features(vz_stage1_pipeline *p, const vz_image_source *src, int64_t n,
                                      float *features, float *image_embeds) {
  if (!p || !src || n < 0 || (n > 0 && (!features || (!src->paths == !src->images))))
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "image features: bad argument");
  vz_status st = VZ_OK;
  for (int64_t start = 0; start < n && st == VZ_OK; start += p->batch_size) {
    const int64_t count = n - start < p->batch_size ? n - start : p->batch_size;
    st = batch_features(p, src, start, count, features, image_embeds);
    if (st == VZ_OK)
      vz_pipeline_report(p, "images", start + count, n);
  }
  return st;
}

vz_status vz_pipeline_image_features(vz_stage1_pipeline *p, const char *const *paths, int64_t n,
                                     float *features, float *image_embeds) {
  const vz_image_source src = {.paths = paths};
  return vz_pipeline_source_features(p, &src, n, features, image_embeds);
}

/* ---- Similarity ---- */

vz_status vz_pipeline_similarity(vz_stage1_pipeline *p, const float *image_features,
                                 int64_t n_images, const float *text_features, int64_t n_texts,
                                 float *out) {
  if (!p || !image_features || !text_features || !out || n_images < 1 || n_texts < 1)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "vz_pipeline_similarity: bad argument");
  const int64_t Q = p->params.qformer.num_query_tokens, E = p->params.qformer.embed_dim;
  vz_tensor *img = NULL, *txt = NULL, *sim = NULL;
  vz_status st;
  TRY(vz_tensor_from_floats(p->be, 3, (int64_t[]){n_images, Q, E}, image_features, &img));
  TRY(vz_tensor_from_floats(p->be, 2, (int64_t[]){n_texts, E}, text_features, &txt));
  TRY(vz_blip2_itc(p->model, img, txt, &sim));
  TRY(vz_tensor_to_host(sim, out, (size_t)(n_images * n_texts) * sizeof(float)));
done:
  vz_tensor_free(img);
  vz_tensor_free(txt);
  vz_tensor_free(sim);
  return st;
}

/* ---- Ranking ---- */

static int by_similarity(const void *a, const void *b) {
  const vz_match *x = a, *y = b;
  if (x->similarity != y->similarity)
    return x->similarity > y->similarity ? -1 : 1;
  return x->index < y->index ? -1 : x->index > y->index;
}

vz_status vz_pipeline_top_k(const float *values, int64_t n, int64_t stride, int64_t k,
                            vz_match *out) {
  vz_match *all = malloc((size_t)(n > 0 ? n : 1) * sizeof *all);
  if (!all)
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory");
  for (int64_t i = 0; i < n; i++)
    all[i] = (vz_match){.index = i, .similarity = values[i * stride]};
  qsort(all, (size_t)n, sizeof *all, by_similarity);
  memcpy(out, all, (size_t)(k < n ? k : n) * sizeof *out);
  free(all);
  return VZ_OK;
}

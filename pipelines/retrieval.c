/* Image-text retrieval by ITC similarity, and galleries of image features
 * saved as safetensors index files that remember the model that made them. */
#define _POSIX_C_SOURCE 200809L

#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "pipelines/stage1_pipeline.h"
#include "vlzoo/weights.h"

#define INDEX_KIND "vlzoo stage-1 gallery 1"

struct vz_gallery {
  int64_t n;
  char **paths;
  float *features; /* [n, Q, E] */
};

void vz_gallery_free(vz_gallery *g) {
  if (!g)
    return;
  for (int64_t i = 0; g->paths && i < g->n; i++)
    free(g->paths[i]);
  free(g->paths);
  free(g->features);
  free(g);
}

int64_t vz_gallery_size(const vz_gallery *g) { return g ? g->n : 0; }

const char *vz_gallery_image(const vz_gallery *g, int64_t i) {
  return g && i >= 0 && i < g->n ? g->paths[i] : NULL;
}

static vz_status gallery_alloc(int64_t n, int64_t QE, vz_gallery **out) {
  vz_gallery *g = calloc(1, sizeof *g);
  if (g && (g->paths = calloc((size_t)n, sizeof *g->paths)) &&
      (g->features = malloc((size_t)(n * QE) * sizeof(float)))) {
    g->n = n;
    *out = g;
    return VZ_OK;
  }
  vz_gallery_free(g);
  return vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory for a gallery of %lld images", (long long)n);
}

static int64_t query_values(const vz_stage1_pipeline *p) {
  return (int64_t)p->params.qformer.num_query_tokens * p->params.qformer.embed_dim;
}

vz_status vz_gallery_build(vz_stage1_pipeline *p, const char *const *paths, int64_t n,
                           vz_gallery **out) {
  if (!p || !paths || !out)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "vz_gallery_build: NULL argument");
  *out = NULL;
  if (n < 1)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "a gallery needs at least one image");
  vz_gallery *g = NULL;
  vz_status st = gallery_alloc(n, query_values(p), &g);
  for (int64_t i = 0; i < n && st == VZ_OK; i++)
    if (!(g->paths[i] = strdup(paths[i])))
      st = vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory");
  if (st == VZ_OK)
    st = vz_pipeline_image_features(p, paths, n, g->features, NULL);
  if (st != VZ_OK) {
    vz_gallery_free(g);
    return st;
  }
  *out = g;
  return VZ_OK;
}

vz_status vz_gallery_save(vz_stage1_pipeline *p, const vz_gallery *g, const char *path) {
  if (!p || !g || !path)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "vz_gallery_save: NULL argument");
  char hash[65];
  vz_status st = vz_stage1_pipeline_weights_sha256(p, hash);
  if (st != VZ_OK)
    return st;
  json_object *paths = json_object_new_array();
  for (int64_t i = 0; paths && i < g->n; i++)
    json_object_array_add(paths, json_object_new_string(g->paths[i]));
  const char *paths_text =
      paths ? json_object_to_json_string_ext(paths, JSON_C_TO_STRING_PLAIN) : NULL;
  vz_weights_writer *wr = NULL;
  const int64_t shape[3] = {g->n, p->params.qformer.num_query_tokens, p->params.qformer.embed_dim};
  if (!paths_text)
    st = vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory");
  if (st == VZ_OK)
    st = vz_weights_writer_open(path, VZ_FORMAT_SAFETENSORS, &wr);
  if (st == VZ_OK)
    st = vz_weights_writer_add(wr, "image_features", VZ_F32, 3, shape, g->features,
                               (size_t)(g->n * query_values(p)) * sizeof(float));
  const char *pairs[][2] = {{"kind", INDEX_KIND},
                            {"model", vz_config_name(p->cfg)},
                            {"weights_sha256", hash},
                            {"images", paths_text}};
  for (size_t i = 0; i < sizeof pairs / sizeof pairs[0] && st == VZ_OK; i++)
    st = vz_weights_writer_set_metadata(wr, pairs[i][0], pairs[i][1] ? pairs[i][1] : "");
  if (st == VZ_OK) {
    st = vz_weights_writer_commit(wr);
    wr = NULL;
  }
  vz_weights_writer_abort(wr);
  json_object_put(paths);
  return st;
}

/* The gallery's metadata must say it was made by this model and weights. */
static vz_status check_origin(vz_stage1_pipeline *p, const vz_weights *w, const char *path) {
  const char *kind = vz_weights_metadata(w, "kind");
  const char *model = vz_weights_metadata(w, "model");
  const char *hash = vz_weights_metadata(w, "weights_sha256");
  if (!kind || strcmp(kind, INDEX_KIND) != 0 || !model || !hash)
    return vz_fail(VZ_ERR_FORMAT, "%s is not a vlzoo gallery index", path);
  const char *name = vz_config_name(p->cfg);
  if (strcmp(model, name ? name : "") != 0)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT,
                   "%s was made by the model %s, not %s; rebuild it with this model", path, model,
                   name ? name : "(unnamed)");
  char ours[65];
  vz_status st = vz_stage1_pipeline_weights_sha256(p, ours);
  if (st == VZ_OK && strcmp(hash, ours) != 0)
    st = vz_fail(VZ_ERR_INVALID_ARGUMENT,
                 "%s was made with other weights of %s (SHA-256 %.12s..., these are %.12s...); "
                 "rebuild it",
                 path, model, hash, ours);
  return st;
}

static vz_status read_paths(const vz_weights *w, const char *path, int64_t n, char **out) {
  const char *text = vz_weights_metadata(w, "images");
  json_object *arr = text ? json_tokener_parse(text) : NULL;
  vz_status st = VZ_OK;
  if (!arr || !json_object_is_type(arr, json_type_array) ||
      (int64_t)json_object_array_length(arr) != n)
    st = vz_fail(VZ_ERR_FORMAT, "%s: the image list does not match its %lld feature rows", path,
                 (long long)n);
  for (int64_t i = 0; i < n && st == VZ_OK; i++) {
    json_object *e = json_object_array_get_idx(arr, (size_t)i);
    if (!json_object_is_type(e, json_type_string))
      st = vz_fail(VZ_ERR_FORMAT, "%s: image %lld is not a string", path, (long long)i);
    else if (!(out[i] = strdup(json_object_get_string(e))))
      st = vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory");
  }
  json_object_put(arr);
  return st;
}

vz_status vz_gallery_load(vz_stage1_pipeline *p, const char *path, vz_gallery **out) {
  if (!p || !path || !out)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "vz_gallery_load: NULL argument");
  *out = NULL;
  vz_weights *w = NULL;
  vz_gallery *g = NULL;
  size_t index;
  const void *data = NULL;
  size_t nbytes = 0;
  vz_status st = vz_weights_open(path, &w);
  if (st == VZ_OK)
    st = check_origin(p, w, path);
  if (st == VZ_OK && vz_weights_find(w, "image_features", &index) != VZ_OK)
    st = vz_fail(VZ_ERR_FORMAT, "%s has no image_features", path);
  const vz_weight_info *info = st == VZ_OK ? vz_weights_info(w, index) : NULL;
  if (info && (info->dtype != VZ_F32 || info->ndim != 3 || info->shape[0] < 1 ||
               info->shape[1] != p->params.qformer.num_query_tokens ||
               info->shape[2] != p->params.qformer.embed_dim))
    st = vz_fail(VZ_ERR_SHAPE, "%s: image_features must be f32 [N, %d, %d]", path,
                 p->params.qformer.num_query_tokens, p->params.qformer.embed_dim);
  if (st == VZ_OK)
    st = vz_weights_data(w, index, &data, &nbytes);
  if (st == VZ_OK)
    st = gallery_alloc(info->shape[0], query_values(p), &g);
  if (st == VZ_OK)
    st = read_paths(w, path, g->n, g->paths);
  if (st == VZ_OK)
    memcpy(g->features, data, nbytes);
  vz_weights_close(w);
  if (st != VZ_OK) {
    vz_gallery_free(g);
    return st;
  }
  *out = g;
  return VZ_OK;
}

/* ---- Ranking ---- */

/* The k best of n similarities, best first. */
static vz_status top_k(const float *sim, int64_t n, int k, vz_match *out, int *n_out) {
  *n_out = (int)(k < n ? k : n);
  return vz_pipeline_top_k(sim, n, 1, *n_out, out);
}

vz_status vz_retrieve_images(vz_stage1_pipeline *p, const vz_gallery *g, const char *text, int k,
                             vz_match *out, int *n_out) {
  if (!p || !g || !text || !out || !n_out || k < 1)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "vz_retrieve_images: bad argument");
  float *text_feature = malloc((size_t)p->params.qformer.embed_dim * sizeof(float));
  float *sim = malloc((size_t)g->n * sizeof(float));
  vz_status st = text_feature && sim ? VZ_OK : vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory");
  if (st == VZ_OK)
    st = vz_pipeline_text_features(p, &text, 1, NULL, text_feature);
  if (st == VZ_OK)
    st = vz_pipeline_similarity(p, g->features, g->n, text_feature, 1, sim);
  if (st == VZ_OK)
    st = top_k(sim, g->n, k, out, n_out);
  free(text_feature);
  free(sim);
  return st;
}

vz_status vz_retrieve_texts(vz_stage1_pipeline *p, const char *image_path, const char *const *texts,
                            int64_t n, int k, vz_match *out, int *n_out) {
  if (!p || !image_path || !texts || n < 1 || !out || !n_out || k < 1)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "vz_retrieve_texts: bad argument");
  float *image_feature = malloc((size_t)query_values(p) * sizeof(float));
  float *text_features = malloc((size_t)(n * p->params.qformer.embed_dim) * sizeof(float));
  float *sim = malloc((size_t)n * sizeof(float));
  vz_status st = image_feature && text_features && sim
                     ? VZ_OK
                     : vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory");
  if (st == VZ_OK)
    st = vz_pipeline_image_features(p, &image_path, 1, image_feature, NULL);
  if (st == VZ_OK)
    st = vz_pipeline_text_features(p, texts, n, NULL, text_features);
  if (st == VZ_OK)
    st = vz_pipeline_similarity(p, image_feature, 1, text_features, n, sim);
  if (st == VZ_OK)
    st = top_k(sim, n, k, out, n_out);
  free(image_feature);
  free(text_features);
  free(sim);
  return st;
}

/* What the stage-1 pipelines (classification, retrieval, its evaluation)
 * share: the pipeline's state and the steps they are built from. */
#ifndef VLZOO_PIPELINES_STAGE1_PIPELINE_H
#define VLZOO_PIPELINES_STAGE1_PIPELINE_H

#include "models/model_util.h"
#include "vlzoo/image.h"
#include "vlzoo/pipeline.h"
#include "vlzoo/tokenizer.h"
#include "vlzoo/zoo.h"

struct vz_stage1_pipeline {
  vz_backend *be;
  vz_config *cfg;
  vz_blip2_stage1 *model;
  vz_blip2_stage1_params params;
  vz_bert_tokenizer *tok; /* loaded on first use */
  char *tokenizer_arg;    /* the explicit tokenizer path, or NULL */
  char *weights_path;
  char weights_sha256[65]; /* "" until computed */
  int image_size;
  float mean[3], std[3];
  int text_max_length; /* processor.tokenizer.max_length */
  int batch_size;
  vz_progress_fn progress;
  void *progress_user;
};

/* Tells the progress callback, when there is one. */
void vz_pipeline_report(const vz_stage1_pipeline *p, const char *what, int64_t done, int64_t total);

/* The k largest of values[0], values[stride], ... (n of them), best first
 * (ties: the lower index first), into out[0..k); k <= n. */
vz_status vz_pipeline_top_k(const float *values, int64_t n, int64_t stride, int64_t k,
                            vz_match *out);

/* Images given as files or as decoded images (exactly one is set). */
typedef struct vz_image_source {
  const char *const *paths;
  const vz_image *const *images;
} vz_image_source;

/* vz_pipeline_image_features for either kind of source. */
vz_status vz_pipeline_source_features(vz_stage1_pipeline *p, const vz_image_source *src, int64_t n,
                                      float *features, float *image_embeds);

#endif

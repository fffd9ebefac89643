/* Pipelines over a BLIP-2 stage-1 model: zero-shot image classification,
 * image-text retrieval (with galleries saved to index files) and the
 * retrieval evaluation that LAVIS runs on COCO and Flickr30k (reference:
 * blip2-family.md sections 3.5, 3.6 and 8.4).
 *
 * A pipeline owns a model, its resolved config and its tokenizer; it is used
 * by one thread at a time. Features come back to the host as f32 arrays in
 * caller-given memory. Every function returns a vz_status and leaves a
 * message (vz_last_error) on failure; none prints. */
#ifndef VLZOO_PIPELINE_H
#define VLZOO_PIPELINE_H

#include <stdbool.h>
#include <stdint.h>

#include "vlzoo/backend.h"
#include "vlzoo/image.h"
#include "vlzoo/model.h"
#include "vlzoo/status.h"

#ifdef __cplusplus
extern "C" {
#endif

struct vz_config;

typedef struct vz_stage1_pipeline vz_stage1_pipeline;

typedef struct vz_pipeline_options {
  vz_load_options load;  /* weights path, config overrides, weight dtype */
  const char *tokenizer; /* vocab.txt / tokenizer.json / folder; NULL: from the config */
  int batch_size;        /* images per forward pass; 0: 8 */
} vz_pipeline_options;

/* Called after each step of a long job: `done` of `total` units of `what`
 * ("images", "texts", "itm"). Used by the program to draw a progress bar. */
typedef void (*vz_progress_fn)(void *user, const char *what, int64_t done, int64_t total);

/* Loads the model (vz_blip2_stage1_from_pretrained) and its tokenizer. */
vz_status vz_stage1_pipeline_open(const char *name_or_path, const vz_pipeline_options *opts,
                                  vz_backend *be, vz_stage1_pipeline **out);
void vz_stage1_pipeline_free(vz_stage1_pipeline *p); /* NULL is ignored */
void vz_stage1_pipeline_set_progress(vz_stage1_pipeline *p, vz_progress_fn fn, void *user);

const struct vz_config *vz_stage1_pipeline_config(const vz_stage1_pipeline *p);
const vz_blip2_stage1 *vz_stage1_pipeline_model(const vz_stage1_pipeline *p);
/* The weights' path as resolved from the config (--weights, VLZOO_HOME...). */
const char *vz_stage1_pipeline_weights_path(const vz_stage1_pipeline *p);
int vz_stage1_pipeline_num_queries(const vz_stage1_pipeline *p); /* Q */
int vz_stage1_pipeline_embed_dim(const vz_stage1_pipeline *p);   /* E */

/* SHA-256 of the weights (every file of a folder or shard set, in name
 * order), as 64 hex digits; computed on first use, then remembered. */
vz_status vz_stage1_pipeline_weights_sha256(vz_stage1_pipeline *p, char hex[65]);

/* ---- Features ---- */

typedef struct vz_text_options {
  int max_length;    /* tokens, with [CLS] and [SEP]; 0: the config's */
  int caption_words; /* > 0: LAVIS blip_caption cleanup keeping this many words */
} vz_text_options;

/* The model's inputs, for callers that run the model functions themselves:
 * n texts -> token ids and mask [n, L] i32 tensors on the pipeline's
 * backend (padded to the longest text, at most the options' max_length);
 * n image files -> pixels [n, 3, S, S] (a file that cannot be read is named
 * in the message). The caller frees the tensors. */
vz_status vz_pipeline_tokenize(vz_stage1_pipeline *p, const char *const *texts, int64_t n,
                               const vz_text_options *opts, vz_tensor **ids, vz_tensor **mask);
vz_status vz_pipeline_pixels(vz_stage1_pipeline *p, const char *const *paths, int64_t n,
                             vz_tensor **out);
/* The same from decoded images (vz_image_load, or the caller's own). */
vz_status vz_pipeline_pixels_from_images(vz_stage1_pipeline *p, const vz_image *const *images,
                                         int64_t n, vz_tensor **out);

/* n texts -> L2-normalized text features [n, E] in out. */
vz_status vz_pipeline_text_features(vz_stage1_pipeline *p, const char *const *texts, int64_t n,
                                    const vz_text_options *opts, float *out);

/* n image files -> L2-normalized query features [n, Q, E] in features and,
 * when image_embeds is not NULL, the ln_vision outputs [n, T, Dv] (what ITM
 * needs; T and Dv from vz_stage1_pipeline_image_embeds_shape). */
vz_status vz_pipeline_image_features(vz_stage1_pipeline *p, const char *const *paths, int64_t n,
                                     float *features, float *image_embeds);
void vz_stage1_pipeline_image_embeds_shape(const vz_stage1_pipeline *p, int64_t *tokens,
                                           int64_t *width);

/* Image-text similarity [n_images, n_texts] from host features, pooled over
 * the queries as the config's itc_pooling says (max, or query 0). */
vz_status vz_pipeline_similarity(vz_stage1_pipeline *p, const float *image_features,
                                 int64_t n_images, const float *text_features, int64_t n_texts,
                                 float *out);

/* ---- Zero-shot classification ---- */

/* A label set: the labels' text features, computed once. */
typedef struct vz_label_set vz_label_set;

/* Each label is put into `template` ("{}" marks the label; NULL: the
 * config's pipeline.hypothesis_template, "{}" when it has none). */
vz_status vz_label_set_new(vz_stage1_pipeline *p, const char *const *labels, int n,
                           const char *template_text, vz_label_set **out);
void vz_label_set_free(vz_label_set *set); /* NULL is ignored */
int vz_label_set_size(const vz_label_set *set);
const char *vz_label_set_label(const vz_label_set *set, int i);

typedef struct vz_label_score {
  int label;        /* index into the label set */
  float score;      /* softmax over the labels of similarity / temp */
  float similarity; /* the raw image-text similarity */
} vz_label_score;

/* Classifies n image files in batches: out[i * n_labels + r] is image i's
 * r-th best label (scores in descending order; ties keep label order). */
vz_status vz_zero_shot_classify(vz_stage1_pipeline *p, const vz_label_set *labels,
                                const char *const *images, int64_t n, vz_label_score *out);
/* The same for decoded images. */
vz_status vz_zero_shot_classify_images(vz_stage1_pipeline *p, const vz_label_set *labels,
                                       const vz_image *const *images, int64_t n,
                                       vz_label_score *out);

/* ---- Retrieval ---- */

/* A gallery: images and their query features [N, Q, E]. */
typedef struct vz_gallery vz_gallery;

vz_status vz_gallery_build(vz_stage1_pipeline *p, const char *const *paths, int64_t n,
                           vz_gallery **out);
/* Saves the gallery as a safetensors file ("image_features" [N, Q, E] f32;
 * metadata: the model's name, the weights' SHA-256, the image paths), written
 * atomically. */
vz_status vz_gallery_save(vz_stage1_pipeline *p, const vz_gallery *g, const char *path);
/* Loads a saved gallery; refuses one made by another model or other weights. */
vz_status vz_gallery_load(vz_stage1_pipeline *p, const char *path, vz_gallery **out);
void vz_gallery_free(vz_gallery *g); /* NULL is ignored */
int64_t vz_gallery_size(const vz_gallery *g);
const char *vz_gallery_image(const vz_gallery *g, int64_t i);

typedef struct vz_match {
  int64_t index;    /* into the gallery, or the texts */
  float similarity; /* ITC similarity */
} vz_match;

/* The k gallery images most similar to `text` (fewer when the gallery is
 * smaller; *n_out says how many), best first. */
vz_status vz_retrieve_images(vz_stage1_pipeline *p, const vz_gallery *g, const char *text, int k,
                             vz_match *out, int *n_out);
/* The k texts most similar to the image at `image_path`, best first. */
vz_status vz_retrieve_texts(vz_stage1_pipeline *p, const char *image_path, const char *const *texts,
                            int64_t n, int k, vz_match *out, int *n_out);

/* ---- Retrieval evaluation (LAVIS compute_sim_matrix + _report_metrics) ---- */

typedef struct vz_retrieval_metrics {
  double txt_r1, txt_r5, txt_r10, txt_r_mean; /* image -> text recall, % */
  double img_r1, img_r5, img_r10, img_r_mean; /* text -> image recall, % */
  double r_mean;
  int64_t n_images, n_texts;
  double seconds_images, seconds_texts, seconds_itm; /* where the time went */
} vz_retrieval_metrics;

/* Evaluates on a LAVIS annotation file (a JSON list of {"image": path
 * relative to image_root, "caption": [texts]}): ITC for all pairs, then ITM
 * re-ranking of the top k_test in both directions (score = ITM match logit
 * + ITC similarity). k_test <= 0: the config's pipeline.k_test. */
vz_status vz_eval_retrieval(vz_stage1_pipeline *p, const char *annotations_path,
                            const char *image_root, int k_test, vz_retrieval_metrics *out);

#ifdef __cplusplus
}
#endif
#endif

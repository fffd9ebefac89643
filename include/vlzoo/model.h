/* Models built from the op API: BLIP-2 stage 1 (EVA ViT + ln_vision +
 * Q-Former + ITC / ITM / LM heads). Weights carry Hugging Face names (plus
 * `temp` and `qformer.cls.predictions.*`, see convert/name_map.h). */
#ifndef VLZOO_MODEL_H
#define VLZOO_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "vlzoo/backend.h"
#include "vlzoo/status.h"
#include "vlzoo/tensor.h"
#include "vlzoo/weights.h"

#ifdef __cplusplus
extern "C" {
#endif

/* EVA-style ViT (BLIP-2's visual encoder) hyper-parameters. */
typedef struct vz_vit_params {
  int image_size;            /* 224 or 364 */
  int patch_size;            /* 14 */
  int hidden_size;           /* 1408 */
  int num_layers;            /* 39 */
  int num_heads;             /* 16 */
  int intermediate_size;     /* 6144 */
  float layer_norm_eps;      /* 1e-6 inside the blocks */
  float post_layer_norm_eps; /* ln_vision: 1e-5 (LAVIS, MindFormers) or 1e-6 (HF) */
  int pos_embed_grid;        /* the checkpoint's grid side (16 for 224 px); interpolated
                                bicubically when it differs from image_size / patch_size */
} vz_vit_params;

/* Q-Former (BERT-base with cross-attention) hyper-parameters. */
typedef struct vz_qformer_params {
  int num_query_tokens;        /* 32 */
  int hidden_size;             /* 768 */
  int num_layers;              /* 12 */
  int num_heads;               /* 12 */
  int intermediate_size;       /* 3072 */
  int cross_attention_freq;    /* 2: layers 0, 2, 4, ... */
  int encoder_hidden_size;     /* 1408 (the ViT width) */
  int vocab_size;              /* 30523 with [DEC] */
  int max_position_embeddings; /* 512 */
  float layer_norm_eps;        /* 1e-12 */
  int embed_dim;               /* 256: vision/text projection width */
  int dec_token_id;            /* 30522: [DEC], put in place of [CLS] for the LM loss */
  int pad_token_id;            /* 0: [PAD], whose positions the LM loss ignores */
} vz_qformer_params;

/* Which query scores a similarity: LAVIS / HF take the max over queries,
 * MindFormers' classifier query 0 only. */
typedef enum vz_itc_pooling { VZ_ITC_MAX_OVER_QUERIES, VZ_ITC_FIRST_QUERY } vz_itc_pooling;

typedef struct vz_blip2_stage1_params {
  vz_vit_params vision;
  vz_qformer_params qformer;
  vz_itc_pooling itc_pooling;
  float default_temp; /* used when the checkpoint has no `temp` (HF) */
} vz_blip2_stage1_params;

/* ---- BLIP-2 stage 1 ----
 *
 * A model holds its weights on one backend and is used by one thread at a
 * time (the backend's rule). Every function that gives a tensor stores a new
 * one in *out, which the caller frees with vz_tensor_free. Token ids are i32
 * or i64 [B, L]; an attention mask is [B, L] of 0 / 1 (any integer dtype, or
 * f32), or NULL for "no padding". Shapes in the comments: B batch, S image
 * side, T = (S / patch)^2 + 1 image tokens, Dv the ViT width, Q query tokens,
 * H the Q-Former width, E embed_dim, V vocab_size. */

typedef struct vz_blip2_stage1 vz_blip2_stage1;

/* Builds the model from `w` (vlzoo names: Hugging Face's
 * Blip2ForImageTextRetrieval, plus optional `temp` and optional LM head
 * `qformer.cls.predictions.*`, whose decoder falls back to the tied word
 * embeddings). Every expected tensor's presence and shape is checked against
 * `p` before any is copied, and the first mismatch is named. Matmul weights
 * (Linear layers, word embeddings) are stored as `weight_dtype` (f32, bf16 or
 * f16); norms, biases, embeddings of positions / CLS / queries stay f32. The
 * position embedding is interpolated bicubically when p->vision.pos_embed_grid
 * differs from image_size / patch_size. `w` may be closed after loading. */
vz_status vz_blip2_stage1_load(const vz_blip2_stage1_params *p, vz_weights *w, vz_backend *be,
                               vz_dtype weight_dtype, vz_blip2_stage1 **out);
void vz_blip2_stage1_free(vz_blip2_stage1 *m); /* NULL is ignored */

/* Whether the weights had an LM head (needed by the LM functions). */
bool vz_blip2_stage1_has_lm_head(const vz_blip2_stage1 *m);
/* The ITC temperature: the checkpoint's `temp`, else params.default_temp. */
float vz_blip2_stage1_temp(const vz_blip2_stage1 *m);

/* pixels [B, 3, S, S] f32 -> ln_vision(ViT(pixels)) [B, T, Dv] */
vz_status vz_blip2_image_embeds(const vz_blip2_stage1 *m, const vz_tensor *pixels, vz_tensor **out);
/* image embeds [B, T, Dv] -> Q-Former query outputs [B, Q, H] (queries only,
 * cross-attention to the image) */
vz_status vz_blip2_query_output(const vz_blip2_stage1 *m, const vz_tensor *image_embeds,
                                vz_tensor **out);
/* query outputs [B, Q, H] -> L2-normalized vision_proj [B, Q, E] */
vz_status vz_blip2_image_features(const vz_blip2_stage1 *m, const vz_tensor *query_output,
                                  vz_tensor **out);
/* ids [B, L], mask -> L2-normalized text_proj of the first ([CLS]) output
 * of a text-only pass (padding mask, bidirectional) [B, E] */
vz_status vz_blip2_text_features(const vz_blip2_stage1 *m, const vz_tensor *ids,
                                 const vz_tensor *mask, vz_tensor **out);
/* image features [Bi, Q, E], text features [Bt, E] -> similarity [Bi, Bt]:
 * the max over queries of the cosine (LAVIS, Hugging Face) or query 0's
 * (MindFormers' classifier), as params.itc_pooling says; no temperature. */
vz_status vz_blip2_itc(const vz_blip2_stage1 *m, const vz_tensor *image_features,
                       const vz_tensor *text_features, vz_tensor **out);
/* image embeds [B, T, Dv] with ids [B, L], mask -> ITM logits [B, 2]:
 * itm_head on the Q query rows of a queries + text pass (bidirectional),
 * averaged over the queries; softmax(...)[1] is the match probability. */
vz_status vz_blip2_itm_logits(const vz_blip2_stage1 *m, const vz_tensor *image_embeds,
                              const vz_tensor *ids, const vz_tensor *mask, vz_tensor **out);
/* One image made ready to be scored by ITM against many texts (retrieval
 * re-ranking): the cross-attention keys and values of every layer are
 * computed once from image embeds [1, T, Dv]. Freed with
 * vz_blip2_itm_image_free before the model. */
typedef struct vz_blip2_itm_image vz_blip2_itm_image;
vz_status vz_blip2_itm_image_prepare(const vz_blip2_stage1 *m, const vz_tensor *image_embeds,
                                     vz_blip2_itm_image **out);
void vz_blip2_itm_image_free(vz_blip2_itm_image *img); /* NULL is ignored */
/* ITM logits [B, 2] of B texts (ids [B, L], mask) against the prepared
 * image: the same as vz_blip2_itm_logits with the image repeated B times. */
vz_status vz_blip2_itm_logits_one_image(const vz_blip2_stage1 *m, const vz_blip2_itm_image *img,
                                        const vz_tensor *ids, const vz_tensor *mask,
                                        vz_tensor **out);
/* image embeds [B, T, Dv] with ids [B, L] (first id [DEC] when captioning),
 * mask -> LM prediction scores [B, L, V] for the text positions of a
 * queries + text pass with the UniLM mask (queries see queries; text sees the
 * queries and earlier text). Needs the LM head. */
vz_status vz_blip2_lm_logits(const vz_blip2_stage1 *m, const vz_tensor *image_embeds,
                             const vz_tensor *ids, const vz_tensor *mask, vz_tensor **out);

/* ---- Stage-1 training losses, as LAVIS Blip2Qformer.forward computes them on
 * one device (no gather across devices). Reductions run on the host in
 * double precision. */

/* image features [B, Q, E], text features [B, E] (pair i matches):
 * sim = max over queries of the cosine / temp;
 * (CE(sim, i) + CE(sim^T, i)) / 2 with label smoothing 0.1. */
vz_status vz_blip2_itc_loss(const vz_blip2_stage1 *m, const vz_tensor *image_features,
                            const vz_tensor *text_features, float *loss);
/* Cross entropy of the ITM logits over B positive pairs (label 1) followed by
 * N negative pairs (label 0), no smoothing. LAVIS's negatives are 2B pairs:
 * (a hard-negative image, text b) and (image b, a hard-negative text). */
vz_status vz_blip2_itm_loss(const vz_blip2_stage1 *m, const vz_tensor *image_embeds,
                            const vz_tensor *ids, const vz_tensor *mask,
                            const vz_tensor *neg_image_embeds, const vz_tensor *neg_ids,
                            const vz_tensor *neg_mask, float *loss);
/* Captioning loss: ids [B, L] as tokenized ([CLS] first) with position 0
 * replaced by params.qformer.dec_token_id; labels are the next ids with pad
 * ids ignored; cross entropy with label smoothing 0.1, averaged over the
 * labelled positions (LAVIS BertLMHeadModel). Needs the LM head. */
vz_status vz_blip2_lm_loss(const vz_blip2_stage1 *m, const vz_tensor *image_embeds,
                           const vz_tensor *ids, const vz_tensor *mask, float *loss);

/* ---- Loading by name (MindFormers' from_pretrained) ---- */

typedef struct vz_load_options {
  const char *weights;          /* explicit weights path, or NULL */
  const char *const *overrides; /* "key=value" strings (vlzoo show --set) */
  int n_overrides;
  vz_dtype weight_dtype; /* f32, bf16 or f16 for matmul weights */
} vz_load_options;

struct vz_config;

/* A stage-1 model from a zoo name, a YAML file or a Hugging Face folder:
 * the config is resolved (overrides applied), the weights are found as
 * vz_config_weights_path describes, checked to fit in memory in the
 * requested dtype before anything is read, then loaded. *config_out (may be
 * NULL) receives the resolved config, which the caller frees with
 * vz_config_free; it names the tokenizer and the image size. */
vz_status vz_blip2_stage1_from_pretrained(const char *name_or_path, const vz_load_options *opts,
                                          vz_backend *be, vz_blip2_stage1 **out,
                                          struct vz_config **config_out);

#ifdef __cplusplus
}
#endif
#endif

/* The BLIP-2 Q-Former (reference: blip2-family.md section 2), under Hugging
 * Face's names (Blip2ForImageTextRetrieval: query_tokens, embeddings.*,
 * qformer.*): a BERT whose first Q rows are learned queries that also
 * cross-attend to the image in every cross_attention_freq-th layer and have
 * their own FFN; text rows use BERT's FFN and never see the image. */
#ifndef VLZOO_MODELS_QFORMER_H
#define VLZOO_MODELS_QFORMER_H

#include "models/model_util.h"
#include "vlzoo/model.h"

/* BERT attention with its output block: LN(dense(attn(x, kv)) + x).
 * H = hidden_size; K = H for self-attention, encoder_hidden_size for cross. */
typedef struct vz_qformer_attention {
  vz_tensor *q_w, *q_b;     /* [H, H], [H]  attention.query */
  vz_tensor *k_w, *k_b;     /* [H, K], [H]  attention.key */
  vz_tensor *v_w, *v_b;     /* [H, K], [H]  attention.value */
  vz_tensor *out_w, *out_b; /* [H, H], [H]  output.dense */
  vz_tensor *ln_w, *ln_b;   /* [H]          output.LayerNorm */
} vz_qformer_attention;

/* BERT feed-forward: LN(out(gelu(in(x))) + x). I = intermediate_size. */
typedef struct vz_qformer_ffn {
  vz_tensor *in_w, *in_b;   /* [I, H], [I]  intermediate(_query).dense */
  vz_tensor *out_w, *out_b; /* [H, I], [H]  output(_query).dense */
  vz_tensor *ln_w, *ln_b;   /* [H]          output(_query).LayerNorm */
} vz_qformer_ffn;

typedef struct vz_qformer_layer {
  vz_qformer_attention self;  /* attention.* */
  bool has_cross;             /* layer % cross_attention_freq == 0 */
  vz_qformer_attention cross; /* crossattention.* (query rows only) */
  vz_qformer_ffn ffn_query;   /* intermediate_query / output_query */
  vz_qformer_ffn ffn_text;    /* intermediate / output (absent without text input) */
} vz_qformer_layer;

typedef struct vz_qformer {
  vz_qformer_params p;
  bool has_text;            /* text embeddings and text FFNs loaded */
  vz_tensor *query_tokens;  /* [1, Q, H] f32 */
  vz_tensor *word_emb;      /* [V, H] matmul dtype  embeddings.word_embeddings */
  vz_tensor *pos_emb;       /* [P, H] f32  embeddings.position_embeddings */
  vz_tensor *emb_ln_w;      /* [H]  qformer.layernorm (LAVIS embeddings.LayerNorm) */
  vz_tensor *emb_ln_b;      /* [H] */
  vz_qformer_layer *layers; /* [num_layers] */
} vz_qformer;

vz_status vz_qformer_check_params(const vz_qformer_params *p);
/* Loads (or checks) query_tokens, qformer.* and, with `text`, the text
 * embeddings and text FFNs. `qf` must be zeroed by the caller. */
vz_status vz_qformer_load(vz_qformer *qf, const vz_qformer_params *p, bool text, vz_loader *ld);
void vz_qformer_release(vz_qformer *qf);

/* The embedding layer's output [B, Q + L, H]: the Q query tokens (when
 * `queries`) followed by word + position embeddings of ids [B, L] (positions
 * 0..L-1; ids may be NULL), then the embedding LayerNorm. */
vz_status vz_qformer_embed(const vz_qformer *qf, int64_t batch, bool queries, const vz_tensor *ids,
                           vz_tensor **out);

/* Runs every layer over x [B, n_query + L, H] (the first n_query rows are
 * queries). mask: additive, broadcasting to [B, 1, n_query + L, n_query + L],
 * or NULL. image_embeds [B, T, K]: the cross-attention keys and values
 * (needed when n_query > 0). */
vz_status vz_qformer_forward(const vz_qformer *qf, const vz_tensor *x, int64_t n_query,
                             const vz_tensor *mask, const vz_tensor *image_embeds, vz_tensor **out);

/* One image's cross-attention keys and values, projected once for every
 * layer that has cross-attention (k[i], v[i]: [1, heads, T, d]; NULL in the
 * other layers), so that many texts can be scored against the image (ITM
 * re-ranking) without projecting the image again for each. */
typedef struct vz_qformer_image_kv {
  int n_layers;
  vz_tensor **k, **v;
} vz_qformer_image_kv;

/* image_embeds [1, T, K] -> *out (released with vz_qformer_image_kv_release). */
vz_status vz_qformer_image_kv_compute(const vz_qformer *qf, const vz_tensor *image_embeds,
                                      vz_qformer_image_kv *out);
void vz_qformer_image_kv_release(vz_qformer_image_kv *kv);

/* vz_qformer_forward for B sequences that all attend to the one image of
 * image_kv (the same result as passing that image B times). */
vz_status vz_qformer_forward_one_image(const vz_qformer *qf, const vz_tensor *x, int64_t n_query,
                                       const vz_tensor *mask, const vz_qformer_image_kv *image_kv,
                                       vz_tensor **out);

/* Additive attention masks (0 where a key is seen, -10000 where hidden, as
 * LAVIS / Hugging Face build them), from a key padding mask `pad` [B, L]
 * (0 / 1 host floats, NULL for all ones):
 *   bidirectional: [B, 1, 1, n_query + L], queries always seen;
 *   unilm: [B, 1, n_query + L, n_query + L], query rows see the queries only,
 *          text row i sees the queries and text 0..i (and padding hides keys). */
vz_status vz_qformer_mask(vz_backend *be, int64_t batch, int64_t n_query, int64_t length,
                          const float *pad, bool unilm, vz_tensor **out);

#endif

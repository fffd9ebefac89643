/* BLIP-2 stage 1: EVA ViT + ln_vision + Q-Former + the ITC / ITM / LM heads
 * and their training losses (reference: blip2-family.md section 3). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models/eva_vit.h"
#include "models/qformer.h"
#include "vlzoo/model.h"

#define LM "qformer.cls.predictions."

struct vz_blip2_stage1 {
  vz_blip2_stage1_params p;
  vz_backend *be;
  vz_eva_vit vit; /* pixels -> image embeds [B, T, Dv] */
  vz_qformer qf;  /* queries (+ text) -> [B, Q (+ L), H] */
  /* heads; E = embed_dim, H = Q-Former width, V = vocab_size */
  vz_tensor *vision_proj_w, *vision_proj_b; /* [E, H], [E]  vision_projection */
  vz_tensor *text_proj_w, *text_proj_b;     /* [E, H], [E]  text_projection */
  vz_tensor *itm_w, *itm_b;                 /* [2, H], [2]  itm_head */
  float temp;                               /* ITC temperature */
  /* LM head (BertOnlyMLMHead), optional */
  bool has_lm_head;
  vz_tensor *lm_dense_w, *lm_dense_b; /* [H, H], [H]  transform.dense */
  vz_tensor *lm_ln_w, *lm_ln_b;       /* [H]  transform.LayerNorm */
  vz_tensor *lm_decoder_w;            /* [V, H] decoder.weight; NULL: tied to the word embeddings */
  vz_tensor *lm_bias;                 /* [V]  predictions.bias (= decoder.bias) */
  /* Constants of the additive padding mask, kept on the model's backend so
   * that a mask given on a device never travels to the host. */
  vz_tensor *mask_hidden; /* [1] -10000 */
  vz_tensor *query_seen;  /* [1, Q] 0: queries are always seen */
};

/* ---- Loading ---- */

/* Whether the file's decoder.weight holds the same bytes as the word
 * embeddings (a tied copy written out by a converter): then one tensor does. */
static bool decoder_is_tied_copy(vz_weights *w) {
  size_t a, b;
  const void *da, *db;
  size_t na, nb;
  if (vz_weights_find(w, LM "decoder.weight", &a) != VZ_OK ||
      vz_weights_find(w, "embeddings.word_embeddings.weight", &b) != VZ_OK)
    return false;
  if (vz_weights_info(w, a)->dtype != vz_weights_info(w, b)->dtype)
    return false;
  if (vz_weights_data(w, a, &da, &na) != VZ_OK || vz_weights_data(w, b, &db, &nb) != VZ_OK)
    return false;
  return na == nb && memcmp(da, db, na) == 0;
}

/* Every tensor of the model, checked or uploaded as ld says. */
static vz_status load_parts(vz_blip2_stage1 *m, vz_loader *ld) {
  const vz_blip2_stage1_params *p = &m->p;
  const int64_t H = p->qformer.hidden_size, E = p->qformer.embed_dim, V = p->qformer.vocab_size;
  vz_status st = vz_eva_vit_load(&m->vit, &p->vision, ld);
  if (st == VZ_OK)
    st = vz_qformer_load(&m->qf, &p->qformer, true, ld);
  if (st != VZ_OK)
    return st;
  m->vision_proj_w = vz_load_mat(ld, E, H, "vision_projection.weight");
  m->vision_proj_b = vz_load_vec(ld, E, "vision_projection.bias");
  m->text_proj_w = vz_load_mat(ld, E, H, "text_projection.weight");
  m->text_proj_b = vz_load_vec(ld, E, "text_projection.bias");
  m->itm_w = vz_load_mat(ld, 2, H, "itm_head.weight");
  m->itm_b = vz_load_vec(ld, 2, "itm_head.bias");

  m->has_lm_head = vz_load_has(ld, LM "transform.dense.weight");
  if (m->has_lm_head) {
    m->lm_dense_w = vz_load_mat(ld, H, H, LM "transform.dense.weight");
    m->lm_dense_b = vz_load_vec(ld, H, LM "transform.dense.bias");
    m->lm_ln_w = vz_load_vec(ld, H, LM "transform.LayerNorm.weight");
    m->lm_ln_b = vz_load_vec(ld, H, LM "transform.LayerNorm.bias");
    if (vz_load_has(ld, LM "decoder.weight")) {
      if (ld->check_only || !decoder_is_tied_copy(ld->w))
        m->lm_decoder_w = vz_load_mat(ld, V, H, LM "decoder.weight");
    }
    m->lm_bias = vz_load_vec(ld, V, vz_load_has(ld, LM "bias") ? LM "bias" : LM "decoder.bias");
  }

  m->temp = p->default_temp;
  if (vz_load_has(ld, "temp")) {
    vz_tensor *t = vz_load(ld, VZ_F32, 0, NULL, "temp");
    if (t) {
      st = vz_tensor_to_host(t, &m->temp, sizeof m->temp);
      vz_tensor_free(t);
      if (st != VZ_OK)
        return st;
    }
  }
  if (ld->st == VZ_OK && !ld->check_only && !(m->temp > 0 && isfinite(m->temp)))
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "the ITC temperature %g is not > 0", m->temp);
  return ld->st;
}

vz_status vz_blip2_stage1_load(const vz_blip2_stage1_params *p, vz_weights *w, vz_backend *be,
                               vz_dtype weight_dtype, vz_blip2_stage1 **out) {
  if (!p || !w || !be || !out)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "blip2_stage1_load: NULL argument");
  *out = NULL;
  if (weight_dtype != VZ_F32 && weight_dtype != VZ_BF16 && weight_dtype != VZ_F16)
    return vz_fail(VZ_ERR_DTYPE, "blip2_stage1_load: weights are f32, bf16 or f16, not %s",
                   vz_dtype_name(weight_dtype));
  if (p->qformer.encoder_hidden_size != p->vision.hidden_size)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT,
                   "qformer.encoder_hidden_size (%d) differs from vision.hidden_size (%d)",
                   p->qformer.encoder_hidden_size, p->vision.hidden_size);
  if (p->itc_pooling != VZ_ITC_MAX_OVER_QUERIES && p->itc_pooling != VZ_ITC_FIRST_QUERY)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "unknown itc_pooling %d", (int)p->itc_pooling);
  vz_blip2_stage1 *m = calloc(1, sizeof *m);
  if (!m)
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory for a BLIP-2 model");
  m->p = *p;
  m->be = be;
  /* First every name and shape, then the bytes. */
  vz_loader check = {.w = w, .be = be, .matmul_dtype = weight_dtype, .check_only = true};
  vz_status st = load_parts(m, &check);
  if (st == VZ_OK) {
    vz_loader ld = {.w = w, .be = be, .matmul_dtype = weight_dtype};
    st = load_parts(m, &ld);
  }
  if (st == VZ_OK)
    st = vz_tensor_from_floats(be, 1, (int64_t[]){1}, (const float[]){-10000.0f}, &m->mask_hidden);
  if (st == VZ_OK)
    st =
        vz_tensor_zeros(be, VZ_F32, 2, (int64_t[]){1, p->qformer.num_query_tokens}, &m->query_seen);
  if (st != VZ_OK) {
    vz_blip2_stage1_free(m);
    return vz_fail_context(st, "blip2_stage1_load: ");
  }
  *out = m;
  return VZ_OK;
}

void vz_blip2_stage1_free(vz_blip2_stage1 *m) {
  if (!m)
    return;
  vz_eva_vit_release(&m->vit);
  vz_qformer_release(&m->qf);
  vz_tensor *all[] = {m->vision_proj_w, m->vision_proj_b, m->text_proj_w,  m->text_proj_b,
                      m->itm_w,         m->itm_b,         m->lm_dense_w,   m->lm_dense_b,
                      m->lm_ln_w,       m->lm_ln_b,       m->lm_decoder_w, m->lm_bias,
                      m->mask_hidden,   m->query_seen};
  for (size_t k = 0; k < sizeof all / sizeof all[0]; k++)
    vz_tensor_free(all[k]);
  free(m);
}

bool vz_blip2_stage1_has_lm_head(const vz_blip2_stage1 *m) { return m && m->has_lm_head; }

float vz_blip2_stage1_temp(const vz_blip2_stage1 *m) { return m ? m->temp : NAN; }

/* ---- Inputs ---- */

static vz_status check_image_embeds(const vz_blip2_stage1 *m, const vz_tensor *x) {
  if (!x || x->dtype != VZ_F32 || x->ndim != 3 || x->shape[2] != m->p.vision.hidden_size)
    return vz_fail(VZ_ERR_SHAPE, "image embeds must be f32 [B, T, %d]", m->p.vision.hidden_size);
  return VZ_OK;
}

/* ids [B, L] and the padding mask read back as host floats (*pad NULL when
 * no mask is given: every position is seen). */
/* Checks token ids [B, L] (B = batch unless batch < 0) and their mask. */
static vz_status check_text(const vz_tensor *ids, const vz_tensor *mask, int64_t batch) {
  if (!ids || ids->ndim != 2 || (ids->dtype != VZ_I32 && ids->dtype != VZ_I64))
    return vz_fail(VZ_ERR_SHAPE, "token ids must be i32 or i64 [B, L]");
  if (batch >= 0 && ids->shape[0] != batch)
    return vz_fail(VZ_ERR_SHAPE, "%lld token rows for a batch of %lld", (long long)ids->shape[0],
                   (long long)batch);
  if (mask &&
      (mask->ndim != 2 || mask->shape[0] != ids->shape[0] || mask->shape[1] != ids->shape[1]))
    return vz_fail(VZ_ERR_SHAPE, "the attention mask must have the ids' shape [%lld, %lld]",
                   (long long)ids->shape[0], (long long)ids->shape[1]);
  return VZ_OK;
}

/* check_text, then the mask's values on the host (NULL without a mask),
 * for the masks built there (the UniLM mask of the LM passes). */
static vz_status read_text(const vz_tensor *ids, const vz_tensor *mask, int64_t batch,
                           float **pad) {
  *pad = NULL;
  vz_status check = check_text(ids, mask, batch);
  if (check != VZ_OK || !mask)
    return check;
  int64_t n = vz_tensor_numel(mask);
  *pad = malloc((size_t)(n > 0 ? n : 1) * sizeof **pad);
  if (!*pad)
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory for an attention mask");
  vz_status st = vz_read_floats(mask, *pad, n);
  if (st != VZ_OK) {
    free(*pad);
    *pad = NULL;
  }
  return st;
}

/* The additive mask of a bidirectional pass, built with ops where the
 * inputs are: [B, 1, 1, n_query + L], 0 where a key is seen (the queries,
 * and text where mask is 1) and -10000 where it is padding, as
 * vz_qformer_mask makes it; NULL when there is no padding mask. */
static vz_status padding_mask(const vz_blip2_stage1 *m, const vz_tensor *ids, const vz_tensor *mask,
                              int64_t n_query, vz_tensor **out) {
  *out = NULL;
  if (!mask)
    return VZ_OK;
  const int64_t B = ids->shape[0], L = ids->shape[1];
  vz_tensor *seen = NULL, *text = NULL, *queries = NULL, *all = NULL;
  vz_status st;
  TRY(vz_cast(mask, VZ_F32, &seen));        /* 1 seen, 0 padding */
  TRY(vz_scale(seen, 10000.0f, &text));     /* 10000 or 0 */
  TRY(vz_add(text, m->mask_hidden, &text)); /* 0 or -10000 */
  if (n_query > 0) {
    TRY(vz_expand(m->query_seen, 2, (int64_t[]){B, n_query}, &queries));
    TRY(vz_concat((const vz_tensor *[]){queries, text}, 2, 1, &all));
  }
  TRY(vz_reshape(all ? all : text, 4, (int64_t[]){B, 1, 1, n_query + L}, out));
done:
  vz_tensor_free(seen);
  vz_tensor_free(text);
  vz_tensor_free(queries);
  vz_tensor_free(all);
  return st;
}

/* ---- Stage-1 outputs ---- */

vz_status vz_blip2_image_embeds(const vz_blip2_stage1 *m, const vz_tensor *pixels,
                                vz_tensor **out) {
  if (!m || !out)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "blip2_image_embeds: NULL argument");
  vz_status st = vz_eva_vit_forward(&m->vit, pixels, out);
  return st == VZ_OK ? st : vz_fail_context(st, "blip2_image_embeds: ");
}

vz_status vz_blip2_query_output(const vz_blip2_stage1 *m, const vz_tensor *image_embeds,
                                vz_tensor **out) {
  if (!m || !out)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "blip2_query_output: NULL argument");
  vz_tensor *x = NULL;
  vz_status st;
  TRY(check_image_embeds(m, image_embeds));
  TRY(vz_qformer_embed(&m->qf, image_embeds->shape[0], true, NULL, &x)); /* [B, Q, H] */
  TRY(vz_qformer_forward(&m->qf, x, m->p.qformer.num_query_tokens, NULL, image_embeds, out));
done:
  vz_tensor_free(x);
  return st == VZ_OK ? st : vz_fail_context(st, "blip2_query_output: ");
}

vz_status vz_blip2_image_features(const vz_blip2_stage1 *m, const vz_tensor *query_output,
                                  vz_tensor **out) {
  if (!m || !out || !query_output)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "blip2_image_features: NULL argument");
  vz_tensor *proj = NULL;
  vz_status st;
  TRY(vz_linear(query_output, m->vision_proj_w, m->vision_proj_b, &proj)); /* [B, Q, E] */
  TRY(vz_l2_normalize(proj, -1, 1e-12f, out));
done:
  vz_tensor_free(proj);
  return st == VZ_OK ? st : vz_fail_context(st, "blip2_image_features: ");
}

vz_status vz_blip2_text_features(const vz_blip2_stage1 *m, const vz_tensor *ids,
                                 const vz_tensor *mask, vz_tensor **out) {
  if (!m || !out)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "blip2_text_features: NULL argument");
  vz_tensor *att = NULL, *x = NULL, *h = NULL, *cls = NULL, *proj = NULL, *flat = NULL;
  vz_status st;
  TRY(check_text(ids, mask, -1));
  const int64_t B = ids->shape[0], E = m->p.qformer.embed_dim;
  TRY(padding_mask(m, ids, mask, 0, &att));         /* [B, 1, 1, L] or none */
  TRY(vz_qformer_embed(&m->qf, B, false, ids, &x)); /* [B, L, H] */
  TRY(vz_qformer_forward(&m->qf, x, 0, att, NULL, &h));
  drop(&x);
  TRY(vz_slice(h, 1, 0, 1, 1, &cls)); /* [CLS] [B, 1, H] */
  TRY(vz_linear(cls, m->text_proj_w, m->text_proj_b, &proj));
  TRY(vz_reshape(proj, 2, (int64_t[]){B, E}, &flat));
  TRY(vz_l2_normalize(flat, -1, 1e-12f, out));
done:
  vz_tensor_free(att);
  vz_tensor_free(x);
  vz_tensor_free(h);
  vz_tensor_free(cls);
  vz_tensor_free(proj);
  vz_tensor_free(flat);
  return st == VZ_OK ? st : vz_fail_context(st, "blip2_text_features: ");
}

/* Cosine similarities [Bi, Bt] pooled over the queries as `pooling` says. */
static vz_status similarity(const vz_tensor *image_features, const vz_tensor *text_features,
                            vz_itc_pooling pooling, vz_tensor **out) {
  if (!image_features || !text_features || image_features->ndim != 3 || text_features->ndim != 2 ||
      image_features->shape[2] != text_features->shape[1])
    return vz_fail(VZ_ERR_SHAPE, "expected image features [Bi, Q, E] and text features [Bt, E]");
  vz_tensor *img = NULL, *sim = NULL;
  vz_status st;
  if (pooling == VZ_ITC_FIRST_QUERY)
    TRY(vz_slice(image_features, 1, 0, 1, 1, &img)); /* query 0: [Bi, 1, E] */
  TRY(vz_matmul(img ? img : image_features, text_features, false, true, &sim)); /* [Bi, Q, Bt] */
  TRY(vz_max(sim, 1, false, out));
done:
  vz_tensor_free(img);
  vz_tensor_free(sim);
  return st;
}

vz_status vz_blip2_itc(const vz_blip2_stage1 *m, const vz_tensor *image_features,
                       const vz_tensor *text_features, vz_tensor **out) {
  if (!m || !out)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "blip2_itc: NULL argument");
  vz_status st = similarity(image_features, text_features, m->p.itc_pooling, out);
  return st == VZ_OK ? st : vz_fail_context(st, "blip2_itc: ");
}

/* The queries + text pass: [B, Q + L, H] with the bidirectional or UniLM mask. */
/* The queries + text pass against B images (image_embeds [B, T, Dv]) or
 * against the one image of `prepared` for all B texts. */
static vz_status multimodal(const vz_blip2_stage1 *m, const vz_tensor *image_embeds,
                            const vz_qformer_image_kv *prepared, const vz_tensor *ids,
                            const vz_tensor *mask, bool unilm, vz_tensor **out) {
  const int64_t Q = m->p.qformer.num_query_tokens;
  float *pad = NULL;
  vz_tensor *att = NULL, *x = NULL;
  vz_status st;
  int64_t B;
  if (prepared) {
    if (!ids || ids->ndim != 2)
      return vz_fail(VZ_ERR_SHAPE, "token ids must be [B, L]");
    B = ids->shape[0];
  } else {
    TRY(check_image_embeds(m, image_embeds));
    B = image_embeds->shape[0];
  }
  if (unilm) {
    TRY(read_text(ids, mask, B, &pad));
    TRY(vz_qformer_mask(m->be, B, Q, ids->shape[1], pad, true, &att));
  } else {
    TRY(check_text(ids, mask, B));
    TRY(padding_mask(m, ids, mask, Q, &att));
  }
  TRY(vz_qformer_embed(&m->qf, B, true, ids, &x)); /* [B, Q + L, H] */
  if (prepared)
    TRY(vz_qformer_forward_one_image(&m->qf, x, Q, att, prepared, out));
  else
    TRY(vz_qformer_forward(&m->qf, x, Q, att, image_embeds, out));
done:
  free(pad);
  vz_tensor_free(att);
  vz_tensor_free(x);
  return st;
}

/* itm_head on the query rows of a multimodal pass, averaged over queries. */
static vz_status itm_head(const vz_blip2_stage1 *m, const vz_tensor *h, vz_tensor **out) {
  vz_tensor *rows = NULL, *logits = NULL;
  vz_status st;
  TRY(vz_slice(h, 1, 0, m->p.qformer.num_query_tokens, 1, &rows)); /* [B, Q, H] */
  TRY(vz_linear(rows, m->itm_w, m->itm_b, &logits));               /* [B, Q, 2] */
  TRY(vz_mean(logits, 1, false, out));                             /* [B, 2] */
done:
  vz_tensor_free(rows);
  vz_tensor_free(logits);
  return st;
}

vz_status vz_blip2_itm_logits(const vz_blip2_stage1 *m, const vz_tensor *image_embeds,
                              const vz_tensor *ids, const vz_tensor *mask, vz_tensor **out) {
  if (!m || !out)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "blip2_itm_logits: NULL argument");
  vz_tensor *h = NULL;
  vz_status st;
  TRY(multimodal(m, image_embeds, NULL, ids, mask, false, &h));
  TRY(itm_head(m, h, out));
done:
  vz_tensor_free(h);
  return st == VZ_OK ? st : vz_fail_context(st, "blip2_itm_logits: ");
}

struct vz_blip2_itm_image {
  const vz_blip2_stage1 *model;
  vz_qformer_image_kv kv;
};

vz_status vz_blip2_itm_image_prepare(const vz_blip2_stage1 *m, const vz_tensor *image_embeds,
                                     vz_blip2_itm_image **out) {
  if (!m || !image_embeds || !out)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "blip2_itm_image_prepare: NULL argument");
  *out = NULL;
  vz_status st = check_image_embeds(m, image_embeds);
  if (st == VZ_OK && image_embeds->shape[0] != 1)
    st = vz_fail(VZ_ERR_SHAPE, "one image at a time: image embeds [1, T, Dv], not batch %lld",
                 (long long)image_embeds->shape[0]);
  vz_blip2_itm_image *img = NULL;
  if (st == VZ_OK && !(img = calloc(1, sizeof *img)))
    st = vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory");
  if (st == VZ_OK)
    st = vz_qformer_image_kv_compute(&m->qf, image_embeds, &img->kv);
  if (st != VZ_OK) {
    free(img);
    return vz_fail_context(st, "blip2_itm_image_prepare: ");
  }
  img->model = m;
  *out = img;
  return VZ_OK;
}

void vz_blip2_itm_image_free(vz_blip2_itm_image *img) {
  if (!img)
    return;
  vz_qformer_image_kv_release(&img->kv);
  free(img);
}

vz_status vz_blip2_itm_logits_one_image(const vz_blip2_stage1 *m, const vz_blip2_itm_image *img,
                                        const vz_tensor *ids, const vz_tensor *mask,
                                        vz_tensor **out) {
  if (!m || !img || !out)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "blip2_itm_logits_one_image: NULL argument");
  if (img->model != m)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT,
                   "blip2_itm_logits_one_image: the image was prepared by another model");
  vz_tensor *h = NULL;
  vz_status st;
  TRY(multimodal(m, NULL, &img->kv, ids, mask, false, &h));
  TRY(itm_head(m, h, out));
done:
  vz_tensor_free(h);
  return st == VZ_OK ? st : vz_fail_context(st, "blip2_itm_logits_one_image: ");
}

vz_status vz_blip2_lm_logits(const vz_blip2_stage1 *m, const vz_tensor *image_embeds,
                             const vz_tensor *ids, const vz_tensor *mask, vz_tensor **out) {
  if (!m || !out)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "blip2_lm_logits: NULL argument");
  if (!m->has_lm_head)
    return vz_fail(VZ_ERR_UNSUPPORTED, "blip2_lm_logits: the weights have no LM head (%s*)", LM);
  const int64_t Q = m->p.qformer.num_query_tokens;
  vz_tensor *h = NULL, *rows = NULL, *t = NULL, *n = NULL;
  vz_status st;
  TRY(multimodal(m, image_embeds, NULL, ids, mask, true, &h));
  TRY(vz_slice(h, 1, Q, h->shape[1], 1, &rows)); /* the text rows [B, L, H] */
  drop(&h);
  /* BertLMPredictionHead: dense, GELU, LayerNorm, then the (tied) decoder */
  TRY(vz_linear(rows, m->lm_dense_w, m->lm_dense_b, &t));
  drop(&rows);
  TRY(vz_gelu_erf(t, &t));
  TRY(vz_layer_norm(t, m->lm_ln_w, m->lm_ln_b, m->p.qformer.layer_norm_eps, &n));
  TRY(vz_linear(n, m->lm_decoder_w ? m->lm_decoder_w : m->qf.word_emb, m->lm_bias, out));
done:
  vz_tensor_free(h);
  vz_tensor_free(rows);
  vz_tensor_free(t);
  vz_tensor_free(n);
  return st == VZ_OK ? st : vz_fail_context(st, "blip2_lm_logits: ");
}

/* ---- Losses (host reductions in double) ---- */

/* torch's cross entropy of one row of logits [C] against class y, with
 * label smoothing eps: (1 - eps) * -log p_y + eps * mean_c(-log p_c). */
static double cross_entropy(const float *logits, int64_t classes, int64_t y, double eps) {
  double mx = logits[0];
  for (int64_t c = 1; c < classes; c++)
    mx = logits[c] > mx ? logits[c] : mx;
  double sum = 0, mean_logit = 0;
  for (int64_t c = 0; c < classes; c++) {
    sum += exp(logits[c] - mx);
    mean_logit += logits[c];
  }
  double lse = mx + log(sum);
  mean_logit /= (double)classes;
  return (1 - eps) * (lse - logits[y]) + eps * (lse - mean_logit);
}

/* A tensor's elements as a new host array of floats. */
static vz_status to_host(const vz_tensor *t, float **out) {
  int64_t n = vz_tensor_numel(t);
  *out = malloc((size_t)(n > 0 ? n : 1) * sizeof **out);
  if (!*out)
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory reading a result back");
  vz_status st = vz_tensor_to_host(t, *out, (size_t)n * sizeof **out);
  if (st != VZ_OK) {
    free(*out);
    *out = NULL;
  }
  return st;
}

vz_status vz_blip2_itc_loss(const vz_blip2_stage1 *m, const vz_tensor *image_features,
                            const vz_tensor *text_features, float *loss) {
  if (!m || !loss)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "blip2_itc_loss: NULL argument");
  vz_tensor *sim = NULL;
  float *s = NULL, *row = NULL;
  vz_status st;
  /* LAVIS scores ITC training with the max over queries, whatever pooling
   * a classifier uses. */
  TRY(similarity(image_features, text_features, VZ_ITC_MAX_OVER_QUERIES, &sim));
  const int64_t B = sim->shape[0];
  if (sim->shape[1] != B) {
    st = vz_fail(VZ_ERR_SHAPE, "ITC loss needs as many texts as images (pair i matches)");
    goto done;
  }
  TRY(to_host(sim, &s));
  row = malloc((size_t)B * sizeof *row);
  if (!row) {
    st = vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory");
    goto done;
  }
  double total = 0;
  for (int64_t i = 0; i < B; i++) {
    for (int64_t j = 0; j < B; j++)
      row[j] = s[i * B + j] / m->temp; /* image i against every text */
    total += cross_entropy(row, B, i, 0.1);
    for (int64_t j = 0; j < B; j++)
      row[j] = s[j * B + i] / m->temp; /* text i against every image */
    total += cross_entropy(row, B, i, 0.1);
  }
  *loss = (float)(total / (2.0 * (double)B));
done:
  vz_tensor_free(sim);
  free(s);
  free(row);
  return st == VZ_OK ? st : vz_fail_context(st, "blip2_itc_loss: ");
}

vz_status vz_blip2_itm_loss(const vz_blip2_stage1 *m, const vz_tensor *image_embeds,
                            const vz_tensor *ids, const vz_tensor *mask,
                            const vz_tensor *neg_image_embeds, const vz_tensor *neg_ids,
                            const vz_tensor *neg_mask, float *loss) {
  if (!m || !loss)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "blip2_itm_loss: NULL argument");
  vz_tensor *pos = NULL, *neg = NULL;
  float *lp = NULL, *ln = NULL;
  vz_status st;
  TRY(vz_blip2_itm_logits(m, image_embeds, ids, mask, &pos)); /* label 1 */
  TRY(to_host(pos, &lp));
  const int64_t B = pos->shape[0];
  int64_t N = 0;
  if (neg_image_embeds) {
    TRY(vz_blip2_itm_logits(m, neg_image_embeds, neg_ids, neg_mask, &neg)); /* label 0 */
    TRY(to_host(neg, &ln));
    N = neg->shape[0];
  }
  double total = 0;
  for (int64_t i = 0; i < B; i++)
    total += cross_entropy(lp + 2 * i, 2, 1, 0.0);
  for (int64_t i = 0; i < N; i++)
    total += cross_entropy(ln + 2 * i, 2, 0, 0.0);
  *loss = (float)(total / (double)(B + N));
done:
  vz_tensor_free(pos);
  vz_tensor_free(neg);
  free(lp);
  free(ln);
  return st == VZ_OK ? st : vz_fail_context(st, "blip2_itm_loss: ");
}

vz_status vz_blip2_lm_loss(const vz_blip2_stage1 *m, const vz_tensor *image_embeds,
                           const vz_tensor *ids, const vz_tensor *mask, float *loss) {
  if (!m || !loss)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "blip2_lm_loss: NULL argument");
  int64_t *dec = NULL;
  float *scores = NULL;
  vz_tensor *ids64 = NULL, *dec_ids = NULL, *logits = NULL;
  vz_status st;
  if (!ids || ids->ndim != 2 || (ids->dtype != VZ_I32 && ids->dtype != VZ_I64)) {
    st = vz_fail(VZ_ERR_SHAPE, "token ids must be i32 or i64 [B, L]");
    goto done;
  }
  const int64_t B = ids->shape[0], L = ids->shape[1], V = m->p.qformer.vocab_size;
  if (m->p.qformer.dec_token_id < 0 || m->p.qformer.dec_token_id >= V) {
    st = vz_fail(VZ_ERR_INVALID_ARGUMENT,
                 "[DEC] id %d is outside the vocabulary of %lld (qformer_config.bos_token_id)",
                 m->p.qformer.dec_token_id, (long long)V);
    goto done;
  }
  /* decoder ids: position 0 becomes [DEC] */
  dec = malloc((size_t)(B * L) * sizeof *dec);
  if (!dec) {
    st = vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory");
    goto done;
  }
  if (ids->dtype != VZ_I64)
    TRY(vz_cast(ids, VZ_I64, &ids64));
  TRY(vz_tensor_to_host(ids64 ? ids64 : ids, dec, (size_t)(B * L) * sizeof *dec));
  for (int64_t b = 0; b < B; b++)
    dec[b * L] = m->p.qformer.dec_token_id;
  TRY(vz_tensor_from_host(m->be, VZ_I64, 2, (int64_t[]){B, L}, dec, (size_t)(B * L) * sizeof *dec,
                          &dec_ids));
  TRY(vz_blip2_lm_logits(m, image_embeds, dec_ids, mask, &logits)); /* [B, L, V] */
  TRY(to_host(logits, &scores));
  /* position t predicts id t + 1; [PAD] labels are ignored (-100) */
  double total = 0;
  int64_t counted = 0;
  for (int64_t b = 0; b < B; b++) {
    for (int64_t t = 0; t + 1 < L; t++) {
      int64_t label = dec[b * L + t + 1];
      if (label == m->p.qformer.pad_token_id)
        continue;
      if (label < 0 || label >= V) {
        st = vz_fail(VZ_ERR_INVALID_ARGUMENT, "token id %lld is outside the vocabulary",
                     (long long)label);
        goto done;
      }
      total += cross_entropy(scores + (b * L + t) * V, V, label, 0.1);
      counted++;
    }
  }
  if (counted == 0) {
    st = vz_fail(VZ_ERR_INVALID_ARGUMENT, "no position has a label (all [PAD])");
    goto done;
  }
  *loss = (float)(total / (double)counted);
done:
  free(dec);
  free(scores);
  vz_tensor_free(ids64);
  vz_tensor_free(dec_ids);
  vz_tensor_free(logits);
  return st == VZ_OK ? st : vz_fail_context(st, "blip2_lm_loss: ");
}

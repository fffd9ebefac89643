/* The BLIP-2 Q-Former on the op API. */
#include "models/qformer.h"

#include <math.h>
#include <stdlib.h>

#define QF "qformer.encoder.layer.%d."

vz_status vz_qformer_check_params(const vz_qformer_params *p) {
  if (p->hidden_size < 1 || p->num_heads < 1 || p->hidden_size % p->num_heads != 0)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT,
                   "qformer.hidden_size (%d) must be a positive multiple of qformer.num_heads (%d)",
                   p->hidden_size, p->num_heads);
  if (p->num_query_tokens < 1 || p->num_layers < 1 || p->intermediate_size < 1 ||
      p->cross_attention_freq < 1 || p->encoder_hidden_size < 1 || p->vocab_size < 1 ||
      p->max_position_embeddings < 1 || p->embed_dim < 1)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT,
                   "qformer sizes (num_query_tokens, num_layers, intermediate_size, "
                   "cross_attention_freq, encoder_hidden_size, vocab_size, "
                   "max_position_embeddings, embed_dim) must be >= 1");
  if (!(p->layer_norm_eps >= 0))
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "qformer.layer_norm_eps must be >= 0");
  return VZ_OK;
}

static void load_attention(vz_loader *ld, vz_qformer_attention *a, const char *which, int i,
                           int64_t H, int64_t K) {
  a->q_w = vz_load_mat(ld, H, H, QF "%s.attention.query.weight", i, which);
  a->q_b = vz_load_vec(ld, H, QF "%s.attention.query.bias", i, which);
  a->k_w = vz_load_mat(ld, H, K, QF "%s.attention.key.weight", i, which);
  a->k_b = vz_load_vec(ld, H, QF "%s.attention.key.bias", i, which);
  a->v_w = vz_load_mat(ld, H, K, QF "%s.attention.value.weight", i, which);
  a->v_b = vz_load_vec(ld, H, QF "%s.attention.value.bias", i, which);
  a->out_w = vz_load_mat(ld, H, H, QF "%s.output.dense.weight", i, which);
  a->out_b = vz_load_vec(ld, H, QF "%s.output.dense.bias", i, which);
  a->ln_w = vz_load_vec(ld, H, QF "%s.output.LayerNorm.weight", i, which);
  a->ln_b = vz_load_vec(ld, H, QF "%s.output.LayerNorm.bias", i, which);
}

/* `in` and `out` name the two halves: intermediate / output or
 * intermediate_query / output_query. */
static void load_ffn(vz_loader *ld, vz_qformer_ffn *f, const char *in, const char *out, int i,
                     int64_t H, int64_t I) {
  f->in_w = vz_load_mat(ld, I, H, QF "%s.dense.weight", i, in);
  f->in_b = vz_load_vec(ld, I, QF "%s.dense.bias", i, in);
  f->out_w = vz_load_mat(ld, H, I, QF "%s.dense.weight", i, out);
  f->out_b = vz_load_vec(ld, H, QF "%s.dense.bias", i, out);
  f->ln_w = vz_load_vec(ld, H, QF "%s.LayerNorm.weight", i, out);
  f->ln_b = vz_load_vec(ld, H, QF "%s.LayerNorm.bias", i, out);
}

vz_status vz_qformer_load(vz_qformer *qf, const vz_qformer_params *p, bool text, vz_loader *ld) {
  vz_status st = vz_qformer_check_params(p);
  if (st != VZ_OK)
    return st;
  const int64_t H = p->hidden_size, I = p->intermediate_size, K = p->encoder_hidden_size;
  qf->p = *p;
  qf->has_text = text;

  qf->query_tokens = vz_load(ld, VZ_F32, 3, (int64_t[]){1, p->num_query_tokens, H}, "query_tokens");
  if (text) {
    qf->word_emb = vz_load_mat(ld, p->vocab_size, H, "embeddings.word_embeddings.weight");
    qf->pos_emb = vz_load(ld, VZ_F32, 2, (int64_t[]){p->max_position_embeddings, H},
                          "embeddings.position_embeddings.weight");
  }
  qf->emb_ln_w = vz_load_vec(ld, H, "qformer.layernorm.weight");
  qf->emb_ln_b = vz_load_vec(ld, H, "qformer.layernorm.bias");
  if (!ld->check_only && !qf->layers) {
    qf->layers = calloc((size_t)p->num_layers, sizeof *qf->layers);
    if (!qf->layers)
      return vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory for %d Q-Former layers", p->num_layers);
  }
  for (int i = 0; i < p->num_layers; i++) {
    vz_qformer_layer tmp = {0}, *L = qf->layers ? &qf->layers[i] : &tmp;
    load_attention(ld, &L->self, "attention", i, H, H);
    L->has_cross = i % p->cross_attention_freq == 0;
    if (L->has_cross)
      load_attention(ld, &L->cross, "crossattention", i, H, K);
    if (text)
      load_ffn(ld, &L->ffn_text, "intermediate", "output", i, H, I);
    load_ffn(ld, &L->ffn_query, "intermediate_query", "output_query", i, H, I);
  }
  return ld->st;
}

static void release_attention(vz_qformer_attention *a) {
  vz_tensor *all[] = {a->q_w, a->q_b,   a->k_w,   a->k_b,  a->v_w,
                      a->v_b, a->out_w, a->out_b, a->ln_w, a->ln_b};
  for (size_t k = 0; k < sizeof all / sizeof all[0]; k++)
    vz_tensor_free(all[k]);
}

static void release_ffn(vz_qformer_ffn *f) {
  vz_tensor *all[] = {f->in_w, f->in_b, f->out_w, f->out_b, f->ln_w, f->ln_b};
  for (size_t k = 0; k < sizeof all / sizeof all[0]; k++)
    vz_tensor_free(all[k]);
}

void vz_qformer_release(vz_qformer *qf) {
  if (!qf)
    return;
  vz_tensor_free(qf->query_tokens);
  vz_tensor_free(qf->word_emb);
  vz_tensor_free(qf->pos_emb);
  vz_tensor_free(qf->emb_ln_w);
  vz_tensor_free(qf->emb_ln_b);
  for (int i = 0; qf->layers && i < qf->p.num_layers; i++) {
    release_attention(&qf->layers[i].self);
    release_attention(&qf->layers[i].cross);
    release_ffn(&qf->layers[i].ffn_query);
    release_ffn(&qf->layers[i].ffn_text);
  }
  free(qf->layers);
  *qf = (vz_qformer){0};
}

vz_status vz_qformer_embed(const vz_qformer *qf, int64_t batch, bool queries, const vz_tensor *ids,
                           vz_tensor **out) {
  const int64_t H = qf->p.hidden_size, Q = qf->p.num_query_tokens;
  vz_tensor *query = NULL, *text = NULL, *pos = NULL, *x = NULL;
  vz_status st = VZ_OK;
  if (ids) {
    if (!qf->has_text)
      return vz_fail(VZ_ERR_UNSUPPORTED, "this Q-Former has no text embeddings");
    if (ids->ndim != 2 || ids->shape[0] != batch || (ids->dtype != VZ_I32 && ids->dtype != VZ_I64))
      return vz_fail(VZ_ERR_SHAPE, "token ids must be i32 or i64 [%lld, L]", (long long)batch);
    if (ids->shape[1] < 1 || ids->shape[1] > qf->p.max_position_embeddings)
      return vz_fail(VZ_ERR_SHAPE, "text length %lld is outside 1..%d (max_position_embeddings)",
                     (long long)ids->shape[1], qf->p.max_position_embeddings);
  }
  if (queries)
    TRY(vz_expand(qf->query_tokens, 3, (int64_t[]){batch, Q, H}, &query)); /* [B, Q, H] */
  if (ids) {
    TRY(vz_embedding(qf->word_emb, ids, &text));              /* [B, L, H] */
    TRY(vz_slice(qf->pos_emb, 0, 0, ids->shape[1], 1, &pos)); /* [L, H]: positions 0.. */
    TRY(vz_add(text, pos, &text));
  }
  if (query && text)
    TRY(vz_concat((const vz_tensor *[]){query, text}, 2, 1, &x)); /* [B, Q + L, H] */
  TRY(vz_layer_norm(x       ? x
                    : query ? query
                            : text,
                    qf->emb_ln_w, qf->emb_ln_b, qf->p.layer_norm_eps, out));
done:
  vz_tensor_free(query);
  vz_tensor_free(text);
  vz_tensor_free(pos);
  vz_tensor_free(x);
  return st;
}

/* linear(x) split into heads: [B, S, H] -> [B, heads, S, d] */
static vz_status project_heads(const vz_qformer *qf, const vz_tensor *w, const vz_tensor *b,
                               const vz_tensor *x, vz_tensor **out) {
  vz_tensor *t = NULL;
  vz_status st = vz_linear(x, w, b, &t);
  if (st == VZ_OK)
    st = vz_split_heads(t, qf->p.num_heads, out);
  vz_tensor_free(t);
  return st;
}

/* LN(dense(softmax(q k^T / sqrt(d) + mask) v) + x) with q from x [B, S, H]
 * and k, v [B, heads, Sk, d] already projected. */
static vz_status attend(const vz_qformer *qf, const vz_qformer_attention *a, const vz_tensor *x,
                        const vz_tensor *k, const vz_tensor *v, const vz_tensor *mask,
                        vz_tensor **out) {
  const float scale = 1.0f / sqrtf((float)(qf->p.hidden_size / qf->p.num_heads));
  vz_tensor *t = NULL, *q = NULL, *ctx = NULL;
  vz_status st;
  TRY(project_heads(qf, a->q_w, a->q_b, x, &q));
  TRY(vz_attention(q, k, v, NULL, mask, scale, false, &ctx));
  drop(&q);
  TRY(vz_merge_heads(ctx, &t)); /* [B, S, H] */
  drop(&ctx);
  TRY(vz_linear(t, a->out_w, a->out_b, &q));
  drop(&t);
  TRY(vz_add(q, x, &q));
  TRY(vz_layer_norm(q, a->ln_w, a->ln_b, qf->p.layer_norm_eps, out));
done:
  vz_tensor_free(t);
  vz_tensor_free(q);
  vz_tensor_free(ctx);
  return st;
}

/* attend() with k and v projected from kv [B, Sk, K]. */
static vz_status attention(const vz_qformer *qf, const vz_qformer_attention *a, const vz_tensor *x,
                           const vz_tensor *kv, const vz_tensor *mask, vz_tensor **out) {
  vz_tensor *k = NULL, *v = NULL;
  vz_status st;
  TRY(project_heads(qf, a->k_w, a->k_b, kv, &k));
  TRY(project_heads(qf, a->v_w, a->v_b, kv, &v));
  TRY(attend(qf, a, x, k, v, mask, out));
done:
  vz_tensor_free(k);
  vz_tensor_free(v);
  return st;
}

/* Cross-attention of the query rows x [B, Q, H] of B texts to one image
 * whose keys and values were projected once: the B x Q rows attend as one
 * batch of B * Q rows (cross-attention has no mask, so rows are
 * independent). */
static vz_status attention_one_image(const vz_qformer *qf, const vz_qformer_attention *a,
                                     const vz_tensor *x, const vz_tensor *k, const vz_tensor *v,
                                     vz_tensor **out) {
  const int64_t B = x->shape[0], Q = x->shape[1], H = x->shape[2];
  vz_tensor *rows = NULL, *y = NULL;
  vz_status st;
  TRY(vz_reshape(x, 3, (int64_t[]){1, B * Q, H}, &rows));
  TRY(attend(qf, a, rows, k, v, NULL, &y));
  TRY(vz_reshape(y, 3, (int64_t[]){B, Q, H}, out));
done:
  vz_tensor_free(rows);
  vz_tensor_free(y);
  return st;
}

vz_status vz_qformer_image_kv_compute(const vz_qformer *qf, const vz_tensor *image_embeds,
                                      vz_qformer_image_kv *out) {
  *out = (vz_qformer_image_kv){0};
  const vz_tensor *im = image_embeds;
  if (!im || im->dtype != VZ_F32 || im->ndim != 3 || im->shape[0] != 1 ||
      im->shape[2] != qf->p.encoder_hidden_size)
    return vz_fail(VZ_ERR_SHAPE, "image embeds must be f32 [1, T, %d]", qf->p.encoder_hidden_size);
  out->k = calloc((size_t)qf->p.num_layers, sizeof *out->k);
  out->v = calloc((size_t)qf->p.num_layers, sizeof *out->v);
  out->n_layers = qf->p.num_layers;
  if (!out->k || !out->v) {
    vz_qformer_image_kv_release(out);
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory for the image's keys and values");
  }
  vz_status st = VZ_OK;
  for (int i = 0; i < qf->p.num_layers && st == VZ_OK; i++) {
    const vz_qformer_layer *L = &qf->layers[i];
    if (!L->has_cross)
      continue;
    st = project_heads(qf, L->cross.k_w, L->cross.k_b, im, &out->k[i]);
    if (st == VZ_OK)
      st = project_heads(qf, L->cross.v_w, L->cross.v_b, im, &out->v[i]);
  }
  if (st != VZ_OK)
    vz_qformer_image_kv_release(out);
  return st;
}

void vz_qformer_image_kv_release(vz_qformer_image_kv *kv) {
  for (int i = 0; kv && i < kv->n_layers; i++) {
    if (kv->k)
      vz_tensor_free(kv->k[i]);
    if (kv->v)
      vz_tensor_free(kv->v[i]);
  }
  if (kv) {
    free(kv->k);
    free(kv->v);
    *kv = (vz_qformer_image_kv){0};
  }
}

/* LN(out(gelu(in(x))) + x) */
static vz_status ffn(const vz_qformer *qf, const vz_qformer_ffn *f, const vz_tensor *x,
                     vz_tensor **out) {
  vz_tensor *h = NULL, *y = NULL;
  vz_status st;
  TRY(vz_linear(x, f->in_w, f->in_b, &h)); /* [B, S, I] */
  TRY(vz_gelu_erf(h, &h));
  TRY(vz_linear(h, f->out_w, f->out_b, &y));
  drop(&h);
  TRY(vz_add(y, x, &y));
  TRY(vz_layer_norm(y, f->ln_w, f->ln_b, qf->p.layer_norm_eps, out));
done:
  vz_tensor_free(h);
  vz_tensor_free(y);
  return st;
}

/* One layer: self-attention over all rows; the query rows then
 * cross-attend (in layers that have it) and take the query FFN; the text
 * rows take the text FFN. */
static vz_status layer(const vz_qformer *qf, int index, const vz_tensor *x, int64_t n_query,
                       const vz_tensor *mask, const vz_tensor *image,
                       const vz_qformer_image_kv *image_kv, vz_tensor **out) {
  const vz_qformer_layer *L = &qf->layers[index];
  const int64_t S = x->shape[1];
  vz_tensor *att = NULL, *rows = NULL, *crossed = NULL, *yq = NULL, *yt = NULL;
  vz_status st;
  TRY(attention(qf, &L->self, x, x, mask, &att));
  if (n_query == 0) {
    TRY(ffn(qf, &L->ffn_text, att, out));
    goto done;
  }
  TRY(vz_slice(att, 1, 0, n_query, 1, &rows)); /* the query rows */
  if (L->has_cross && image_kv)
    TRY(attention_one_image(qf, &L->cross, rows, image_kv->k[index], image_kv->v[index], &crossed));
  else if (L->has_cross)
    TRY(attention(qf, &L->cross, rows, image, NULL, &crossed));
  TRY(ffn(qf, &L->ffn_query, crossed ? crossed : rows, &yq));
  drop(&rows);
  drop(&crossed);
  if (S == n_query) {
    *out = yq;
    yq = NULL;
    goto done;
  }
  TRY(vz_slice(att, 1, n_query, S, 1, &rows)); /* the text rows */
  drop(&att);
  TRY(ffn(qf, &L->ffn_text, rows, &yt));
  drop(&rows);
  TRY(vz_concat((const vz_tensor *[]){yq, yt}, 2, 1, out));
done:
  vz_tensor_free(att);
  vz_tensor_free(rows);
  vz_tensor_free(crossed);
  vz_tensor_free(yq);
  vz_tensor_free(yt);
  return st;
}

static vz_status run_layers(const vz_qformer *qf, const vz_tensor *x, int64_t n_query,
                            const vz_tensor *mask, const vz_tensor *image_embeds,
                            const vz_qformer_image_kv *image_kv, vz_tensor **out) {
  const int64_t H = qf->p.hidden_size;
  if (x->ndim != 3 || x->shape[2] != H || n_query < 0 || n_query > x->shape[1])
    return vz_fail(VZ_ERR_SHAPE, "Q-Former input must be [B, S, %lld] with S >= %lld", (long long)H,
                   (long long)n_query);
  if (x->shape[1] > n_query && !qf->has_text)
    return vz_fail(VZ_ERR_UNSUPPORTED, "this Q-Former has no text FFNs");
  vz_tensor *h = NULL, *next = NULL;
  vz_status st = VZ_OK;
  for (int i = 0; i < qf->p.num_layers; i++) {
    st = layer(qf, i, h ? h : x, n_query, mask, image_embeds, image_kv, &next);
    if (st != VZ_OK) {
      st = vz_fail_context(st, "Q-Former layer %d: ", i);
      goto done;
    }
    vz_tensor_free(h);
    h = next;
    next = NULL;
  }
  *out = h;
  h = NULL;
done:
  vz_tensor_free(h);
  return st;
}

vz_status vz_qformer_forward(const vz_qformer *qf, const vz_tensor *x, int64_t n_query,
                             const vz_tensor *mask, const vz_tensor *image_embeds,
                             vz_tensor **out) {
  if (n_query > 0) {
    const vz_tensor *im = image_embeds;
    if (!im || im->dtype != VZ_F32 || im->ndim != 3 || x->ndim != 3 ||
        im->shape[0] != x->shape[0] || im->shape[2] != qf->p.encoder_hidden_size)
      return vz_fail(VZ_ERR_SHAPE, "image embeds must be f32 [%lld, T, %d]",
                     (long long)(x->ndim == 3 ? x->shape[0] : 0), qf->p.encoder_hidden_size);
  }
  return run_layers(qf, x, n_query, mask, image_embeds, NULL, out);
}

vz_status vz_qformer_forward_one_image(const vz_qformer *qf, const vz_tensor *x, int64_t n_query,
                                       const vz_tensor *mask, const vz_qformer_image_kv *image_kv,
                                       vz_tensor **out) {
  if (!image_kv || image_kv->n_layers != qf->p.num_layers)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT,
                   "Q-Former: the image keys and values were made for another model");
  if (n_query < 1)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "Q-Former: a pass against an image needs queries");
  return run_layers(qf, x, n_query, mask, NULL, image_kv, out);
}

vz_status vz_qformer_mask(vz_backend *be, int64_t batch, int64_t n_query, int64_t length,
                          const float *pad, bool unilm, vz_tensor **out) {
  const int64_t S = n_query + length, rows = unilm ? S : 1;
  float *m = malloc((size_t)(batch * rows * S) * sizeof *m);
  if (!m)
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory for an attention mask");
  for (int64_t b = 0; b < batch; b++) {
    for (int64_t i = 0; i < rows; i++) {
      for (int64_t j = 0; j < S; j++) {
        bool seen = j < n_query || !pad || pad[b * length + (j - n_query)] != 0.0f;
        if (unilm && j >= n_query) /* text keys: hidden from queries, causal for text */
          seen = seen && i >= n_query && j <= i;
        m[(b * rows + i) * S + j] = seen ? 0.0f : -10000.0f;
      }
    }
  }
  vz_status st = vz_tensor_from_floats(be, 4, (int64_t[]){batch, 1, rows, S}, m, out);
  free(m);
  return st;
}

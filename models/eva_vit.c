/* EVA ViT-g (BLIP-2's visual encoder) and ln_vision, on the op API. */
#include "models/eva_vit.h"

#include <math.h>
#include <stdlib.h>

#define VIT "vision_model."

vz_status vz_eva_vit_check_params(const vz_vit_params *p) {
  if (p->image_size < 1 || p->patch_size < 1 || p->image_size % p->patch_size != 0)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT,
                   "vision.image_size (%d) must be a positive multiple of vision.patch_size (%d)",
                   p->image_size, p->patch_size);
  if (p->hidden_size < 1 || p->num_heads < 1 || p->hidden_size % p->num_heads != 0)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT,
                   "vision.hidden_size (%d) must be a positive multiple of vision.num_heads (%d)",
                   p->hidden_size, p->num_heads);
  if (p->num_layers < 1 || p->intermediate_size < 1 || p->pos_embed_grid < 1)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT,
                   "vision.num_layers, intermediate_size and pos_embed_grid must be >= 1");
  if (!(p->layer_norm_eps >= 0) || !(p->post_layer_norm_eps >= 0))
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "vision layer norm eps must be >= 0");
  return VZ_OK;
}

/* LAVIS interpolate_pos_embed: the grid rows of pos [1, old^2 + 1, D] resized
 * bicubically (torch's kernel, align_corners false) to new x new; the CLS
 * row is kept as it is. */
static vz_status interpolate_pos(const vz_tensor *pos, int64_t old, int64_t new_grid,
                                 vz_tensor **out) {
  const int64_t dim = pos->shape[2];
  vz_tensor *cls = NULL, *grid = NULL, *hw = NULL, *chw = NULL, *resized = NULL, *back = NULL,
            *flat = NULL;
  vz_status st;
  TRY(vz_slice(pos, 1, 0, 1, 1, &cls));
  TRY(vz_slice(pos, 1, 1, old * old + 1, 1, &grid));
  TRY(vz_reshape(grid, 4, (int64_t[]){1, old, old, dim}, &hw));
  TRY(vz_permute(hw, (const int[]){0, 3, 1, 2}, &chw)); /* [1, D, old, old] */
  TRY(vz_bicubic(chw, new_grid, new_grid, false, &resized));
  TRY(vz_permute(resized, (const int[]){0, 2, 3, 1}, &back)); /* [1, new, new, D] */
  TRY(vz_reshape(back, 3, (int64_t[]){1, new_grid * new_grid, dim}, &flat));
  TRY(vz_concat((const vz_tensor *[]){cls, flat}, 2, 1, out));
done:
  vz_tensor_free(cls);
  vz_tensor_free(grid);
  vz_tensor_free(hw);
  vz_tensor_free(chw);
  vz_tensor_free(resized);
  vz_tensor_free(back);
  vz_tensor_free(flat);
  return st;
}

vz_status vz_eva_vit_load(vz_eva_vit *vit, const vz_vit_params *p, vz_loader *ld) {
  vz_status st = vz_eva_vit_check_params(p);
  if (st != VZ_OK)
    return st;
  const int64_t D = p->hidden_size, F = p->intermediate_size, P = p->patch_size;
  const int64_t old = p->pos_embed_grid;
  vit->p = *p;
  vit->grid = p->image_size / p->patch_size;

  vit->patch_w =
      vz_load(ld, VZ_F32, 4, (int64_t[]){D, 3, P, P}, VIT "embeddings.patch_embedding.weight");
  vit->patch_b = vz_load_vec(ld, D, VIT "embeddings.patch_embedding.bias");
  vit->cls = vz_load(ld, VZ_F32, 3, (int64_t[]){1, 1, D}, VIT "embeddings.class_embedding");
  vit->pos =
      vz_load(ld, VZ_F32, 3, (int64_t[]){1, old * old + 1, D}, VIT "embeddings.position_embedding");
  if (!ld->check_only && !vit->layers) {
    vit->layers = calloc((size_t)p->num_layers, sizeof *vit->layers);
    if (!vit->layers)
      return vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory for %d ViT layers", p->num_layers);
  }
  for (int i = 0; i < p->num_layers; i++) {
    vz_vit_layer tmp = {0}, *L = vit->layers ? &vit->layers[i] : &tmp;
#define LAYER VIT "encoder.layers.%d."
    L->ln1_w = vz_load_vec(ld, D, LAYER "layer_norm1.weight", i);
    L->ln1_b = vz_load_vec(ld, D, LAYER "layer_norm1.bias", i);
    L->qkv_w = vz_load_mat(ld, 3 * D, D, LAYER "self_attn.qkv.weight", i);
    L->qkv_b = vz_load_vec(ld, 3 * D, LAYER "self_attn.qkv.bias", i);
    L->proj_w = vz_load_mat(ld, D, D, LAYER "self_attn.projection.weight", i);
    L->proj_b = vz_load_vec(ld, D, LAYER "self_attn.projection.bias", i);
    L->ln2_w = vz_load_vec(ld, D, LAYER "layer_norm2.weight", i);
    L->ln2_b = vz_load_vec(ld, D, LAYER "layer_norm2.bias", i);
    L->fc1_w = vz_load_mat(ld, F, D, LAYER "mlp.fc1.weight", i);
    L->fc1_b = vz_load_vec(ld, F, LAYER "mlp.fc1.bias", i);
    L->fc2_w = vz_load_mat(ld, D, F, LAYER "mlp.fc2.weight", i);
    L->fc2_b = vz_load_vec(ld, D, LAYER "mlp.fc2.bias", i);
#undef LAYER
  }
  vit->post_ln_w = vz_load_vec(ld, D, VIT "post_layernorm.weight");
  vit->post_ln_b = vz_load_vec(ld, D, VIT "post_layernorm.bias");
  if (ld->st != VZ_OK || ld->check_only)
    return ld->st;

  if (old != vit->grid) {
    vz_tensor *resized = NULL;
    st = interpolate_pos(vit->pos, old, vit->grid, &resized);
    if (st != VZ_OK)
      return vz_fail_context(st,
                             "interpolating the position embedding from %lldx%lld to "
                             "%lldx%lld: ",
                             (long long)old, (long long)old, (long long)vit->grid,
                             (long long)vit->grid);
    vz_tensor_free(vit->pos);
    vit->pos = resized;
  }
  return VZ_OK;
}

void vz_eva_vit_release(vz_eva_vit *vit) {
  if (!vit)
    return;
  vz_tensor_free(vit->patch_w);
  vz_tensor_free(vit->patch_b);
  vz_tensor_free(vit->cls);
  vz_tensor_free(vit->pos);
  for (int i = 0; vit->layers && i < vit->p.num_layers; i++) {
    vz_vit_layer *L = &vit->layers[i];
    vz_tensor *all[] = {L->ln1_w, L->ln1_b, L->qkv_w, L->qkv_b, L->proj_w, L->proj_b,
                        L->ln2_w, L->ln2_b, L->fc1_w, L->fc1_b, L->fc2_w,  L->fc2_b};
    for (size_t k = 0; k < sizeof all / sizeof all[0]; k++)
      vz_tensor_free(all[k]);
  }
  free(vit->layers);
  vz_tensor_free(vit->post_ln_w);
  vz_tensor_free(vit->post_ln_b);
  *vit = (vz_eva_vit){0};
}

/* Patch embedding, CLS token and positions: pixels [B, 3, S, S] -> [B, T, D]. */
static vz_status embed(const vz_eva_vit *vit, const vz_tensor *pixels, vz_tensor **out) {
  const int64_t B = pixels->shape[0], D = vit->p.hidden_size, N = vit->grid * vit->grid;
  vz_tensor *patches = NULL, *flat = NULL, *tokens = NULL, *cls = NULL, *x = NULL;
  vz_status st;
  TRY(vz_conv2d(pixels, vit->patch_w, vit->patch_b, vit->p.patch_size, vit->p.patch_size, 0, 0,
                &patches));                                     /* [B, D, G, G] */
  TRY(vz_reshape(patches, 3, (int64_t[]){B, D, N}, &flat));     /* [B, D, N] */
  TRY(vz_transpose(flat, 1, 2, &tokens));                       /* [B, N, D], raster order */
  TRY(vz_expand(vit->cls, 3, (int64_t[]){B, 1, D}, &cls));      /* [B, 1, D] */
  TRY(vz_concat((const vz_tensor *[]){cls, tokens}, 2, 1, &x)); /* [B, T, D] */
  TRY(vz_add(x, vit->pos, &x));
  *out = x;
  x = NULL;
done:
  vz_tensor_free(patches);
  vz_tensor_free(flat);
  vz_tensor_free(tokens);
  vz_tensor_free(cls);
  vz_tensor_free(x);
  return st;
}

/* One block, updating x [B, T, D] in place. */
static vz_status block(const vz_eva_vit *vit, const vz_vit_layer *L, vz_tensor *x) {
  const int64_t D = vit->p.hidden_size;
  const int heads = vit->p.num_heads;
  const float eps = vit->p.layer_norm_eps;
  const float scale = 1.0f / sqrtf((float)(D / heads)); /* head_dim^-0.5: 88^-0.5 for ViT-g */
  vz_tensor *h = NULL, *qkv = NULL, *part = NULL, *q = NULL, *k = NULL, *v = NULL, *ctx = NULL,
            *merged = NULL;
  vz_status st;

  /* x += projection(attention(layer_norm1(x))) */
  TRY(vz_layer_norm(x, L->ln1_w, L->ln1_b, eps, &h));
  TRY(vz_linear(h, L->qkv_w, L->qkv_b, &qkv)); /* [B, T, 3D] */
  drop(&h);
  vz_tensor **dst[3] = {&q, &k, &v};
  for (int i = 0; i < 3; i++) {
    TRY(vz_slice(qkv, 2, i * D, (i + 1) * D, 1, &part));
    TRY(vz_split_heads(part, heads, dst[i])); /* [B, heads, T, d] */
    drop(&part);
  }
  drop(&qkv);
  TRY(vz_attention(q, k, v, NULL, NULL, scale, false, &ctx));
  drop(&q);
  drop(&k);
  drop(&v);
  TRY(vz_merge_heads(ctx, &merged)); /* [B, T, D] */
  drop(&ctx);
  /* bias and residual ride on the GEMM's tiles where the backend fuses them */
  TRY(vz_linear_act(merged, L->proj_w, L->proj_b, VZ_OP_COUNT, x, &x));
  drop(&merged);

  /* x += fc2(gelu(fc1(layer_norm2(x)))) */
  TRY(vz_layer_norm(x, L->ln2_w, L->ln2_b, eps, &h));
  TRY(vz_linear_act(h, L->fc1_w, L->fc1_b, VZ_OP_GELU_ERF, NULL, &merged)); /* [B, T, F] */
  drop(&h);
  TRY(vz_linear_act(merged, L->fc2_w, L->fc2_b, VZ_OP_COUNT, x, &x));
done:
  vz_tensor_free(h);
  vz_tensor_free(qkv);
  vz_tensor_free(part);
  vz_tensor_free(q);
  vz_tensor_free(k);
  vz_tensor_free(v);
  vz_tensor_free(ctx);
  vz_tensor_free(merged);
  return st;
}

vz_status vz_eva_vit_forward(const vz_eva_vit *vit, const vz_tensor *pixels, vz_tensor **out) {
  const int64_t S = vit->p.image_size;
  if (!pixels || pixels->dtype != VZ_F32 || pixels->ndim != 4 || pixels->shape[1] != 3 ||
      pixels->shape[2] != S || pixels->shape[3] != S)
    return vz_fail(VZ_ERR_SHAPE, "pixels must be f32 [B, 3, %lld, %lld]", (long long)S,
                   (long long)S);
  vz_tensor *x = NULL;
  vz_status st;
  TRY(embed(vit, pixels, &x));
  for (int i = 0; i < vit->p.num_layers; i++) {
    st = block(vit, &vit->layers[i], x);
    if (st != VZ_OK) {
      st = vz_fail_context(st, "ViT layer %d: ", i);
      goto done;
    }
  }
  TRY(vz_layer_norm(x, vit->post_ln_w, vit->post_ln_b, vit->p.post_layer_norm_eps, out));
done:
  vz_tensor_free(x);
  return st;
}

/* EVA ViT-g as BLIP-2 uses it (reference: blip2-family.md section 1), under
 * Hugging Face's names (Blip2VisionModel, prefix vision_model.): pre-norm
 * blocks, one qkv Linear whose bias is [q_bias, 0, v_bias], exact GELU, no
 * final norm inside the ViT, then ln_vision (HF's post_layernorm). */
#ifndef VLZOO_MODELS_EVA_VIT_H
#define VLZOO_MODELS_EVA_VIT_H

#include "models/model_util.h"
#include "vlzoo/model.h"

/* One pre-norm block: x += proj(attn(LN1(x))); x += fc2(gelu(fc1(LN2(x)))).
 * D = hidden_size, F = intermediate_size. */
typedef struct vz_vit_layer {
  vz_tensor *ln1_w, *ln1_b;   /* [D]      layer_norm1 */
  vz_tensor *qkv_w;           /* [3D, D]  rows: q, k, v; head h owns rows h*d.. of each */
  vz_tensor *qkv_b;           /* [3D]     [q_bias, 0, v_bias] */
  vz_tensor *proj_w, *proj_b; /* [D, D], [D]  self_attn.projection */
  vz_tensor *ln2_w, *ln2_b;   /* [D]      layer_norm2 */
  vz_tensor *fc1_w, *fc1_b;   /* [F, D], [F] */
  vz_tensor *fc2_w, *fc2_b;   /* [D, F], [D] */
} vz_vit_layer;

typedef struct vz_eva_vit {
  vz_vit_params p;
  int64_t grid;                     /* image_size / patch_size */
  vz_tensor *patch_w;               /* [D, 3, P, P] f32  embeddings.patch_embedding */
  vz_tensor *patch_b;               /* [D] */
  vz_tensor *cls;                   /* [1, 1, D]  embeddings.class_embedding */
  vz_tensor *pos;                   /* [1, grid^2 + 1, D]  position_embedding, interpolated */
  vz_vit_layer *layers;             /* [num_layers] */
  vz_tensor *post_ln_w, *post_ln_b; /* [D]  post_layernorm = LAVIS ln_vision */
} vz_eva_vit;

/* Checks the params (a message names the bad one). */
vz_status vz_eva_vit_check_params(const vz_vit_params *p);
/* Loads (or, with ld->check_only, checks) the tensors under "vision_model.".
 * `vit` must be zeroed by the caller; on failure the caller frees it. */
vz_status vz_eva_vit_load(vz_eva_vit *vit, const vz_vit_params *p, vz_loader *ld);
void vz_eva_vit_release(vz_eva_vit *vit);

/* pixels [B, 3, S, S] -> image embeds [B, T, D] after ln_vision. */
vz_status vz_eva_vit_forward(const vz_eva_vit *vit, const vz_tensor *pixels, vz_tensor **out);

#endif

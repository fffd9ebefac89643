/* Name maps between LAVIS, VPGTrans, Hugging Face, MindFormers and vlzoo
 * (see name_map.h). The maps are the tables below; the code only matches
 * patterns and applies the transform a row names.
 *
 * Sources of the names (read from the implementations):
 * - LAVIS: lavis/models/eva_vit.py (VisionTransformer, Block, Attention with
 *   q_bias / v_bias), lavis/models/blip2_models/blip2.py (ln_vision),
 *   Qformer.py (BertEmbeddings with the position_ids buffer, BertLayer with
 *   crossattention on layer % cross_attention_freq == 0, *_query FFNs,
 *   BertLMPredictionHead), blip2_qformer.py (vision_proj, text_proj,
 *   itm_head, temp, query_tokens); salesforce/LAVIS @561d8af / c6bec01.
 * - MindFormers r1.0: mindformers/models/vit/vit.py (cls_tokens, pos_embed,
 *   patch_embed.proj, blocks, fc_norm), vit_modules.py (Block layernorm1/2,
 *   Attention dense1/2/3 transpose_b=True and projection transpose_b=False,
 *   MLP mapping / projection transpose_b=False: weights stored [in, out]),
 *   mindformers/models/blip2/blip2.py (ln_vision), qformer.py (BertEmbeddings
 *   with an int32 position_ids Parameter, self_att, layernorm gamma/beta,
 *   Linear decoder with the tied bias), blip2_qformer.py (vision_proj,
 *   text_proj, itm_head, temp), convert_weight.py (whose fc1/fc2 weight
 *   names are swapped: a latent bug not copied here; vit/convert_weight.py
 *   maps fc1 -> mapping, fc2 -> projection, both transposed, as done here).
 * - Hugging Face: transformers' modeling_blip_2.py (Blip2ForImageTextRetrieval,
 *   Blip2Model); tests/fixtures/names/hf_*.json were dumped from it. */
#define _POSIX_C_SOURCE 200809L /* strdup */
#include "convert/name_map.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/internal.h"

/* ---- The tables ---- */

typedef enum rule_kind {
  K_RENAME,           /* one foreign tensor, same layout */
  K_TRANSPOSE,        /* one foreign tensor, the 2-D transpose of the vlzoo one */
  K_SPLIT3,           /* three foreign tensors; vlzoo = their concatenation along dim 0 */
  K_QV_BIAS,          /* foreign q_bias, v_bias; vlzoo qkv.bias = cat(q_bias, zeros, v_bias) */
  K_VLZOO_EXTRA,      /* vlzoo-only tensor (temp, LM head): kept by vlzoo, dropped for hf */
  K_IGNORE,           /* foreign-only: dropped on reading, never written */
  K_POSITION_IDS,     /* foreign-only buffer: checked to be 0..n-1 and dropped; made when writing */
  K_UNUSED_LN_WEIGHT, /* foreign-only unused LayerNorm: dropped; made (ones) when writing */
  K_UNUSED_LN_BIAS,   /* same, zeros */
  K_LLM,              /* an LLM tensor: stage 2, refused for now */
} rule_kind;

typedef enum layer_kind {
  L_NONE,    /* no layer number */
  L_VISION,  /* ViT block: must be < vision_layers */
  L_EVA,     /* ViT block of eva_vit_g.pth: blocks >= vision_layers are dropped */
  L_QFORMER, /* Q-Former layer */
  L_CROSS,   /* Q-Former layer with cross-attention */
} layer_kind;

typedef struct rule {
  const char *canon;      /* vlzoo pattern; NULL for foreign-only rows */
  const char *foreign[3]; /* this naming's pattern(s); foreign[0] NULL: same as canon */
  rule_kind kind;
  layer_kind layer;
  unsigned part;
  const char *ref; /* made rows: the vlzoo tensor whose size they take */
  vz_dtype dtype;  /* K_POSITION_IDS: the dtype the target declares */
  const char *note;
} rule;

#define ROW(c, f, k, l, p)                                                                         \
  { c, {f, NULL, NULL}, k, l, p, NULL, VZ_F32, NULL }
#define ROW3(c, f1, f2, f3, k, l, p)                                                               \
  { c, {f1, f2, f3}, k, l, p, NULL, VZ_F32, NULL }
/* weight and bias of one Linear / LayerNorm under two prefixes */
#define WB(c, f, l, p)                                                                             \
  ROW(c "weight", f "weight", K_RENAME, l, p), ROW(c "bias", f "bias", K_RENAME, l, p)
#define LN_GB(c, f, l, p)                                                                          \
  ROW(c "weight", f "gamma", K_RENAME, l, p), ROW(c "bias", f "beta", K_RENAME, l, p)
#define SAME(c, k, l, p) ROW(c, NULL, k, l, p)
#define SAME_WB(c, l, p) SAME(c "weight", K_RENAME, l, p), SAME(c "bias", K_RENAME, l, p)

#define HV "vision_model.encoder.layers.{i}."
#define HQ "qformer.encoder.layer.{i}."
#define HLM "qformer.cls.predictions."

#define NOTE_IDS "a buffer holding 0..n-1, remade when needed"
#define NOTE_FC_NORM                                                                               \
  "MindFormers' ViTModel has this LayerNorm, BLIP-2 never uses it (it takes the blocks' output)"
#define NOTE_LLM "LLM name maps come with the stage-2 issue"

/* LAVIS's EVA ViT under prefix P ("visual_encoder." in BLIP-2 checkpoints,
 * "" in eva_vit_g.pth, whose 40th block BLIP-2 does not use). */
#define LAVIS_VIT(P, L)                                                                            \
  ROW("vision_model.embeddings.class_embedding", P "cls_token", K_RENAME, L_NONE, VZ_PART_VISION), \
      ROW("vision_model.embeddings.position_embedding", P "pos_embed", K_RENAME, L_NONE,           \
          VZ_PART_VISION),                                                                         \
      WB("vision_model.embeddings.patch_embedding.", P "patch_embed.proj.", L_NONE,                \
         VZ_PART_VISION),                                                                          \
      WB(HV "layer_norm1.", P "blocks.{i}.norm1.", L, VZ_PART_VISION),                             \
      ROW(HV "self_attn.qkv.weight", P "blocks.{i}.attn.qkv.weight", K_RENAME, L, VZ_PART_VISION), \
      ROW3(HV "self_attn.qkv.bias", P "blocks.{i}.attn.q_bias", P "blocks.{i}.attn.v_bias", NULL,  \
           K_QV_BIAS, L, VZ_PART_VISION),                                                          \
      WB(HV "self_attn.projection.", P "blocks.{i}.attn.proj.", L, VZ_PART_VISION),                \
      WB(HV "layer_norm2.", P "blocks.{i}.norm2.", L, VZ_PART_VISION),                             \
      WB(HV "mlp.fc1.", P "blocks.{i}.mlp.fc1.", L, VZ_PART_VISION),                               \
      WB(HV "mlp.fc2.", P "blocks.{i}.mlp.fc2.", L, VZ_PART_VISION)

/* LAVIS's Q-Former attention block (self or cross) under "attention" /
 * "crossattention". */
#define LAVIS_ATT(A, L)                                                                            \
  WB(HQ A ".attention.query.", "Qformer.bert.encoder.layer.{i}." A ".self.query.", L,              \
     VZ_PART_QFORMER),                                                                             \
      WB(HQ A ".attention.key.", "Qformer.bert.encoder.layer.{i}." A ".self.key.", L,              \
         VZ_PART_QFORMER),                                                                         \
      WB(HQ A ".attention.value.", "Qformer.bert.encoder.layer.{i}." A ".self.value.", L,          \
         VZ_PART_QFORMER),                                                                         \
      WB(HQ A ".output.dense.", "Qformer.bert.encoder.layer.{i}." A ".output.dense.", L,           \
         VZ_PART_QFORMER),                                                                         \
      WB(HQ A ".output.LayerNorm.", "Qformer.bert.encoder.layer.{i}." A ".output.LayerNorm.", L,   \
         VZ_PART_QFORMER)

#define LAVIS_COMMON                                                                               \
  ROW("query_tokens", "query_tokens", K_RENAME, L_NONE, VZ_PART_QFORMER),                          \
      LAVIS_VIT("visual_encoder.", L_VISION), LAVIS_VIT("", L_EVA),                                \
      WB("vision_model.post_layernorm.", "ln_vision.", L_NONE, VZ_PART_LN_VISION),                 \
      ROW("embeddings.word_embeddings.weight", "Qformer.bert.embeddings.word_embeddings.weight",   \
          K_RENAME, L_NONE, VZ_PART_QFORMER_TEXT),                                                 \
      ROW("embeddings.position_embeddings.weight",                                                 \
          "Qformer.bert.embeddings.position_embeddings.weight", K_RENAME, L_NONE,                  \
          VZ_PART_QFORMER_TEXT),                                                                   \
      {NULL,                                                                                       \
       {"Qformer.bert.embeddings.position_ids"},                                                   \
       K_POSITION_IDS,                                                                             \
       L_NONE,                                                                                     \
       VZ_PART_QFORMER_TEXT,                                                                       \
       "embeddings.position_embeddings.weight",                                                    \
       VZ_I64,                                                                                     \
       NOTE_IDS},                                                                                  \
      WB("qformer.layernorm.", "Qformer.bert.embeddings.LayerNorm.", L_NONE, VZ_PART_QFORMER),     \
      LAVIS_ATT("attention", L_QFORMER), LAVIS_ATT("crossattention", L_CROSS),                     \
      WB(HQ "intermediate.dense.", "Qformer.bert.encoder.layer.{i}.intermediate.dense.",           \
         L_QFORMER, VZ_PART_QFORMER_TEXT),                                                         \
      WB(HQ "output.dense.", "Qformer.bert.encoder.layer.{i}.output.dense.", L_QFORMER,            \
         VZ_PART_QFORMER_TEXT),                                                                    \
      WB(HQ "output.LayerNorm.", "Qformer.bert.encoder.layer.{i}.output.LayerNorm.", L_QFORMER,    \
         VZ_PART_QFORMER_TEXT),                                                                    \
      WB(HQ "intermediate_query.dense.",                                                           \
         "Qformer.bert.encoder.layer.{i}.intermediate_query.dense.", L_QFORMER, VZ_PART_QFORMER),  \
      WB(HQ "output_query.dense.", "Qformer.bert.encoder.layer.{i}.output_query.dense.",           \
         L_QFORMER, VZ_PART_QFORMER),                                                              \
      WB(HQ "output_query.LayerNorm.", "Qformer.bert.encoder.layer.{i}.output_query.LayerNorm.",   \
         L_QFORMER, VZ_PART_QFORMER),                                                              \
      WB(HLM "transform.dense.", "Qformer.cls.predictions.transform.dense.", L_NONE,               \
         VZ_PART_LM_HEAD),                                                                         \
      WB(HLM "transform.LayerNorm.", "Qformer.cls.predictions.transform.LayerNorm.", L_NONE,       \
         VZ_PART_LM_HEAD),                                                                         \
      WB(HLM "decoder.", "Qformer.cls.predictions.decoder.", L_NONE, VZ_PART_LM_HEAD),             \
      ROW(HLM "bias", "Qformer.cls.predictions.bias", K_RENAME, L_NONE, VZ_PART_LM_HEAD),          \
      WB("vision_projection.", "vision_proj.", L_NONE, VZ_PART_HEADS),                             \
      WB("text_projection.", "text_proj.", L_NONE, VZ_PART_HEADS),                                 \
      WB("itm_head.", "itm_head.", L_NONE, VZ_PART_HEADS),                                         \
      ROW("temp", "temp", K_RENAME, L_NONE, VZ_PART_HEADS)

static const rule lavis_rules[] = {
    LAVIS_COMMON,
    /* stage 2 (blip2_opt.py, blip2_t5.py, blip2_vicuna_instruct.py) */
    WB("language_projection.", "opt_proj.", L_NONE, VZ_PART_LLM_PROJ),
    WB("language_projection.", "t5_proj.", L_NONE, VZ_PART_LLM_PROJ),
    WB("language_projection.", "llm_proj.", L_NONE, VZ_PART_LLM_PROJ),
    {NULL, {"opt_model.*"}, K_LLM, L_NONE, 0, NULL, VZ_F32, NOTE_LLM},
    {NULL, {"t5_model.*"}, K_LLM, L_NONE, 0, NULL, VZ_F32, NOTE_LLM},
    {NULL, {"llm_model.*"}, K_LLM, L_NONE, 0, NULL, VZ_F32, NOTE_LLM},
};

/* VPGTrans (its LAVIS fork): the vision side and Q-Former are LAVIS's; the
 * projection and the LLM are named after LLaMA. */
static const rule vpgtrans_rules[] = {
    LAVIS_COMMON,
    WB("language_projection.", "llama_proj.", L_NONE, VZ_PART_LLM_PROJ),
    {NULL, {"llama_model.*"}, K_LLM, L_NONE, 0, NULL, VZ_F32, NOTE_LLM},
};

#define MV "visual_encoder.blocks.{i}."
#define MQ "qformer.bert.encoder.layer.{i}."
#define MLM "qformer.cls.predictions."

#define MF_ATT(A, L)                                                                               \
  WB(HQ A ".attention.query.", MQ A ".self_att.query.", L, VZ_PART_QFORMER),                       \
      WB(HQ A ".attention.key.", MQ A ".self_att.key.", L, VZ_PART_QFORMER),                       \
      WB(HQ A ".attention.value.", MQ A ".self_att.value.", L, VZ_PART_QFORMER),                   \
      WB(HQ A ".output.dense.", MQ A ".output.dense.", L, VZ_PART_QFORMER),                        \
      LN_GB(HQ A ".output.LayerNorm.", MQ A ".output.layernorm.", L, VZ_PART_QFORMER)

static const rule mindformers_rules[] = {
    ROW("query_tokens", "query_tokens", K_RENAME, L_NONE, VZ_PART_QFORMER),
    ROW("vision_model.embeddings.class_embedding", "visual_encoder.cls_tokens", K_RENAME, L_NONE,
        VZ_PART_VISION),
    ROW("vision_model.embeddings.position_embedding", "visual_encoder.pos_embed", K_RENAME, L_NONE,
        VZ_PART_VISION),
    WB("vision_model.embeddings.patch_embedding.", "visual_encoder.patch_embed.proj.", L_NONE,
       VZ_PART_VISION),
    LN_GB(HV "layer_norm1.", MV "layernorm1.", L_VISION, VZ_PART_VISION),
    ROW3(HV "self_attn.qkv.weight", MV "attention.dense1.weight", MV "attention.dense2.weight",
         MV "attention.dense3.weight", K_SPLIT3, L_VISION, VZ_PART_VISION),
    ROW3(HV "self_attn.qkv.bias", MV "attention.dense1.bias", MV "attention.dense2.bias",
         MV "attention.dense3.bias", K_SPLIT3, L_VISION, VZ_PART_VISION),
    ROW(HV "self_attn.projection.weight", MV "attention.projection.weight", K_TRANSPOSE, L_VISION,
        VZ_PART_VISION),
    ROW(HV "self_attn.projection.bias", MV "attention.projection.bias", K_RENAME, L_VISION,
        VZ_PART_VISION),
    LN_GB(HV "layer_norm2.", MV "layernorm2.", L_VISION, VZ_PART_VISION),
    ROW(HV "mlp.fc1.weight", MV "output.mapping.weight", K_TRANSPOSE, L_VISION, VZ_PART_VISION),
    ROW(HV "mlp.fc1.bias", MV "output.mapping.bias", K_RENAME, L_VISION, VZ_PART_VISION),
    ROW(HV "mlp.fc2.weight", MV "output.projection.weight", K_TRANSPOSE, L_VISION, VZ_PART_VISION),
    ROW(HV "mlp.fc2.bias", MV "output.projection.bias", K_RENAME, L_VISION, VZ_PART_VISION),
    {NULL,
     {"visual_encoder.fc_norm.gamma"},
     K_UNUSED_LN_WEIGHT,
     L_NONE,
     VZ_PART_VISION,
     "vision_model.embeddings.class_embedding",
     VZ_F32,
     NOTE_FC_NORM},
    {NULL,
     {"visual_encoder.fc_norm.beta"},
     K_UNUSED_LN_BIAS,
     L_NONE,
     VZ_PART_VISION,
     "vision_model.embeddings.class_embedding",
     VZ_F32,
     NOTE_FC_NORM},
    LN_GB("vision_model.post_layernorm.", "ln_vision.", L_NONE, VZ_PART_LN_VISION),
    ROW("embeddings.word_embeddings.weight",
        "qformer.bert.embeddings.word_embeddings.embedding_table", K_RENAME, L_NONE,
        VZ_PART_QFORMER_TEXT),
    ROW("embeddings.position_embeddings.weight",
        "qformer.bert.embeddings.position_embeddings.embedding_table", K_RENAME, L_NONE,
        VZ_PART_QFORMER_TEXT),
    {NULL,
     {"qformer.bert.embeddings.position_ids"},
     K_POSITION_IDS,
     L_NONE,
     VZ_PART_QFORMER_TEXT,
     "embeddings.position_embeddings.weight",
     VZ_I32,
     NOTE_IDS},
    LN_GB("qformer.layernorm.", "qformer.bert.embeddings.layernorm.", L_NONE, VZ_PART_QFORMER),
    MF_ATT("attention", L_QFORMER),
    MF_ATT("crossattention", L_CROSS),
    WB(HQ "intermediate.dense.", MQ "intermediate.dense.", L_QFORMER, VZ_PART_QFORMER_TEXT),
    WB(HQ "output.dense.", MQ "output.dense.", L_QFORMER, VZ_PART_QFORMER_TEXT),
    LN_GB(HQ "output.LayerNorm.", MQ "output.layernorm.", L_QFORMER, VZ_PART_QFORMER_TEXT),
    WB(HQ "intermediate_query.dense.", MQ "intermediate_query.dense.", L_QFORMER, VZ_PART_QFORMER),
    WB(HQ "output_query.dense.", MQ "output_query.dense.", L_QFORMER, VZ_PART_QFORMER),
    LN_GB(HQ "output_query.LayerNorm.", MQ "output_query.layernorm.", L_QFORMER, VZ_PART_QFORMER),
    WB(HLM "transform.dense.", MLM "transform.dense.", L_NONE, VZ_PART_LM_HEAD),
    LN_GB(HLM "transform.LayerNorm.", MLM "transform.layernorm.", L_NONE, VZ_PART_LM_HEAD),
    /* decoder.bias is the same Parameter as predictions.bias in MindFormers
     * (as in LAVIS); both names are written, as MindFormers' converter does. */
    WB(HLM "decoder.", MLM "decoder.", L_NONE, VZ_PART_LM_HEAD),
    ROW(HLM "bias", MLM "bias", K_RENAME, L_NONE, VZ_PART_LM_HEAD),
    WB("vision_projection.", "vision_proj.", L_NONE, VZ_PART_HEADS),
    WB("text_projection.", "text_proj.", L_NONE, VZ_PART_HEADS),
    WB("itm_head.", "itm_head.", L_NONE, VZ_PART_HEADS),
    ROW("temp", "temp", K_RENAME, L_NONE, VZ_PART_HEADS),
    /* stage 2 (blip2_llm.py: llm_proj, llm_model) */
    WB("language_projection.", "llm_proj.", L_NONE, VZ_PART_LLM_PROJ),
    {NULL, {"llm_model.*"}, K_LLM, L_NONE, 0, NULL, VZ_F32, NOTE_LLM},
};

#define HF_ATT(A, L)                                                                               \
  SAME_WB(HQ A ".attention.query.", L, VZ_PART_QFORMER),                                           \
      SAME_WB(HQ A ".attention.key.", L, VZ_PART_QFORMER),                                         \
      SAME_WB(HQ A ".attention.value.", L, VZ_PART_QFORMER),                                       \
      SAME_WB(HQ A ".output.dense.", L, VZ_PART_QFORMER),                                          \
      SAME_WB(HQ A ".output.LayerNorm.", L, VZ_PART_QFORMER)

/* Hugging Face names are vlzoo's; the K_VLZOO_EXTRA rows are what
 * transformers has no place for (kept in vlzoo files, dropped for hf). */
static const rule hf_rules[] = {
    SAME("query_tokens", K_RENAME, L_NONE, VZ_PART_QFORMER),
    SAME("vision_model.embeddings.class_embedding", K_RENAME, L_NONE, VZ_PART_VISION),
    SAME("vision_model.embeddings.position_embedding", K_RENAME, L_NONE, VZ_PART_VISION),
    SAME_WB("vision_model.embeddings.patch_embedding.", L_NONE, VZ_PART_VISION),
    SAME_WB(HV "layer_norm1.", L_VISION, VZ_PART_VISION),
    SAME_WB(HV "self_attn.qkv.", L_VISION, VZ_PART_VISION),
    SAME_WB(HV "self_attn.projection.", L_VISION, VZ_PART_VISION),
    SAME_WB(HV "layer_norm2.", L_VISION, VZ_PART_VISION),
    SAME_WB(HV "mlp.fc1.", L_VISION, VZ_PART_VISION),
    SAME_WB(HV "mlp.fc2.", L_VISION, VZ_PART_VISION),
    SAME_WB("vision_model.post_layernorm.", L_NONE, VZ_PART_LN_VISION),
    SAME("embeddings.word_embeddings.weight", K_RENAME, L_NONE, VZ_PART_QFORMER_TEXT),
    SAME("embeddings.position_embeddings.weight", K_RENAME, L_NONE, VZ_PART_QFORMER_TEXT),
    {NULL,
     {"embeddings.position_ids"},
     K_IGNORE,
     L_NONE,
     VZ_PART_QFORMER_TEXT,
     NULL,
     VZ_I64,
     "a non-persistent buffer in transformers"},
    SAME_WB("qformer.layernorm.", L_NONE, VZ_PART_QFORMER),
    HF_ATT("attention", L_QFORMER),
    HF_ATT("crossattention", L_CROSS),
    SAME_WB(HQ "intermediate.dense.", L_QFORMER, VZ_PART_QFORMER_TEXT),
    SAME_WB(HQ "output.dense.", L_QFORMER, VZ_PART_QFORMER_TEXT),
    SAME_WB(HQ "output.LayerNorm.", L_QFORMER, VZ_PART_QFORMER_TEXT),
    SAME_WB(HQ "intermediate_query.dense.", L_QFORMER, VZ_PART_QFORMER),
    SAME_WB(HQ "output_query.dense.", L_QFORMER, VZ_PART_QFORMER),
    SAME_WB(HQ "output_query.LayerNorm.", L_QFORMER, VZ_PART_QFORMER),
    SAME_WB("vision_projection.", L_NONE, VZ_PART_HEADS),
    SAME_WB("text_projection.", L_NONE, VZ_PART_HEADS),
    SAME_WB("itm_head.", L_NONE, VZ_PART_HEADS),
    SAME("temp", K_VLZOO_EXTRA, L_NONE, VZ_PART_HEADS),
    SAME(HLM "transform.dense.weight", K_VLZOO_EXTRA, L_NONE, VZ_PART_LM_HEAD),
    SAME(HLM "transform.dense.bias", K_VLZOO_EXTRA, L_NONE, VZ_PART_LM_HEAD),
    SAME(HLM "transform.LayerNorm.weight", K_VLZOO_EXTRA, L_NONE, VZ_PART_LM_HEAD),
    SAME(HLM "transform.LayerNorm.bias", K_VLZOO_EXTRA, L_NONE, VZ_PART_LM_HEAD),
    SAME(HLM "decoder.weight", K_VLZOO_EXTRA, L_NONE, VZ_PART_LM_HEAD),
    SAME(HLM "decoder.bias", K_VLZOO_EXTRA, L_NONE, VZ_PART_LM_HEAD),
    SAME(HLM "bias", K_VLZOO_EXTRA, L_NONE, VZ_PART_LM_HEAD),
    SAME_WB("language_projection.", L_NONE, VZ_PART_LLM_PROJ),
    {NULL, {"language_model.*"}, K_LLM, L_NONE, 0, NULL, VZ_F32, NOTE_LLM},
};

/* Tied tensors: when a vlzoo tensor is missing but its twin is there (and
 * the LM head is present at all), it is made as a copy of the twin. */
static const struct tie {
  const char *name, *twin, *note;
} ties[] = {
    {HLM "decoder.weight", "embeddings.word_embeddings.weight",
     "the LM head decoder is tied to the word embeddings"},
    {HLM "decoder.bias", HLM "bias", "the LM head decoder bias is the same tensor as its bias"},
    {HLM "bias", HLM "decoder.bias", "the LM head bias is the same tensor as its decoder bias"},
};

#define N_ROWS(t) (sizeof(t) / sizeof((t)[0]))

static const rule *rules_for(vz_naming naming, size_t *n) {
  switch (naming) {
  case VZ_NAMING_LAVIS: *n = N_ROWS(lavis_rules); return lavis_rules;
  case VZ_NAMING_VPGTRANS: *n = N_ROWS(vpgtrans_rules); return vpgtrans_rules;
  case VZ_NAMING_MINDFORMERS: *n = N_ROWS(mindformers_rules); return mindformers_rules;
  case VZ_NAMING_VLZOO:
  case VZ_NAMING_HF:
  default: *n = N_ROWS(hf_rules); return hf_rules;
  }
}

/* ---- Models ---- */

#define STAGE1(n)                                                                                  \
  { n, 39, 12, 2, VZ_PARTS_STAGE1, 0, false }
#define STAGE2(n)                                                                                  \
  { n, 39, 12, 2, VZ_PARTS_STAGE2, VZ_PART_QFORMER_TEXT | VZ_PART_HEADS | VZ_PART_LM_HEAD, true }

/* Every model once, as X(STAGE1 or STAGE2, name): the table below and the
 * NULL-ended name list vz_map_model_names returns. */
#define MODELS(X)                                                                                  \
  X(STAGE1, "blip2_stage1_vit_g")                                                                  \
  X(STAGE1, "blip2_stage1_evaluator")                                                              \
  X(STAGE1, "blip2_stage1_classification")                                                         \
  X(STAGE1, "blip2_stage1_pretrained")                                                             \
  X(STAGE2, "blip2_stage2_vit_g_llama_7b")                                                         \
  X(STAGE2, "blip2_stage2_vit_g_baichuan_7b")                                                      \
  X(STAGE2, "itt_blip2_stage2_vit_g_llama_7b")                                                     \
  X(STAGE2, "itt_blip2_stage2_vit_g_baichuan_7b")                                                  \
  X(STAGE2, "blip2_opt_2.7b")                                                                      \
  X(STAGE2, "blip2_flan_t5_xl")                                                                    \
  X(STAGE2, "mblip_mt0_xl")                                                                        \
  X(STAGE2, "mblip_bloomz_7b")                                                                     \
  X(STAGE2, "vl_llama_7b")                                                                         \
  X(STAGE2, "vl_vicuna_7b")

#define MODEL_ROW(stage, n) stage(n),
#define MODEL_NAME(stage, n) n,
static const vz_map_model models[] = {MODELS(MODEL_ROW)};
static const char *const model_names[] = {MODELS(MODEL_NAME) NULL};

const vz_map_model *vz_map_model_find(const char *name) {
  if (!name)
    return NULL;
  for (size_t i = 0; i < N_ROWS(models); i++)
    if (strcmp(models[i].name, name) == 0)
      return &models[i];
  return NULL;
}

const char *const *vz_map_model_names(void) { return model_names; }

const char *vz_map_model_suggest(const char *name, char *buf, size_t size) {
  return vz_closest_names(name, model_names, N_ROWS(models), 3, buf, size);
}

/* ---- Namings ---- */

static const char *const naming_names[VZ_NAMING_COUNT] = {"vlzoo", "hf", "lavis", "mindformers",
                                                          "vpgtrans"};

const char *vz_naming_name(vz_naming naming) {
  return (unsigned)naming < VZ_NAMING_COUNT ? naming_names[naming] : "?";
}

vz_status vz_naming_from_name(const char *name, vz_naming *out) {
  if (!name || !out)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "naming: NULL argument");
  for (int i = 0; i < VZ_NAMING_COUNT; i++)
    if (strcmp(name, naming_names[i]) == 0) {
      *out = (vz_naming)i;
      return VZ_OK;
    }
  if (strcmp(name, "huggingface") == 0 || strcmp(name, "transformers") == 0) {
    *out = VZ_NAMING_HF;
    return VZ_OK;
  }
  if (strcmp(name, "mf") == 0 || strcmp(name, "ms") == 0 || strcmp(name, "mindspore") == 0) {
    *out = VZ_NAMING_MINDFORMERS;
    return VZ_OK;
  }
  return vz_fail(VZ_ERR_INVALID_ARGUMENT,
                 "unknown naming '%s' (expected vlzoo, hf, lavis, mindformers or vpgtrans)", name);
}

/* ---- Patterns ---- */

/* Whether `name` fits `pat`; "{i}" takes a decimal number without leading
 * zeros (stored in *layer), a trailing "*" takes any rest. */
static bool pattern_match(const char *pat, const char *name, int *layer) {
  *layer = -1;
  for (;;) {
    if (pat[0] == '*' && pat[1] == '\0')
      return true;
    if (strncmp(pat, "{i}", 3) == 0) {
      if (!isdigit((unsigned char)*name) || (name[0] == '0' && isdigit((unsigned char)name[1])))
        return false;
      long v = 0;
      while (isdigit((unsigned char)*name)) {
        v = v * 10 + (*name - '0');
        if (v > 1000000)
          return false;
        name++;
      }
      *layer = (int)v;
      pat += 3;
      continue;
    }
    if (*pat != *name)
      return false;
    if (*pat == '\0')
      return true;
    pat++;
    name++;
  }
}

/* `pat` with "{i}" replaced by `layer`; malloc'd, NULL on failure. */
static char *pattern_fill(const char *pat, int layer) {
  const char *at = strstr(pat, "{i}");
  size_t len = strlen(pat) + 16;
  char *s = malloc(len);
  if (!s)
    return NULL;
  if (at)
    snprintf(s, len, "%.*s%d%s", (int)(at - pat), pat, layer, at + 3);
  else
    snprintf(s, len, "%s", pat);
  return s;
}

static const char *foreign_pattern(const rule *r, int k) {
  return r->foreign[0] ? r->foreign[k] : (k == 0 ? r->canon : NULL);
}

static int foreign_count(const rule *r) {
  if (!r->foreign[0])
    return 1;
  int n = 0;
  while (n < 3 && r->foreign[n])
    n++;
  return n;
}

/* ---- Plans ---- */

void vz_map_plan_free(vz_map_plan *plan) {
  if (!plan)
    return;
  for (size_t i = 0; i < plan->count; i++)
    free(plan->items[i].name);
  for (size_t i = 0; i < plan->n_notes; i++)
    free(plan->notes[i].text);
  free(plan->items);
  free(plan->notes);
  memset(plan, 0, sizeof *plan);
}

static vz_status plan_push(vz_map_plan *p, const vz_map_entry *e) {
  if (p->count == p->capacity) {
    size_t cap = p->capacity ? 2 * p->capacity : 64;
    vz_map_entry *items = realloc(p->items, cap * sizeof *items);
    if (!items)
      return vz_fail(VZ_ERR_OUT_OF_MEMORY, "name map: out of memory");
    p->items = items;
    p->capacity = cap;
  }
  p->items[p->count++] = *e;
  return VZ_OK;
}

/* Adds an entry named by `pat` at `layer` (takes no ownership of e->name). */
static vz_status plan_add(vz_map_plan *p, const char *pat, int layer, vz_map_entry e) {
  e.name = pattern_fill(pat, layer);
  if (!e.name)
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "name map: out of memory");
  vz_status st = plan_push(p, &e);
  if (st != VZ_OK)
    free(e.name);
  return st;
}

static vz_status plan_note(vz_map_plan *p, vz_map_check check, size_t src, int64_t offset,
                           int64_t count, const char *fmt, ...) VZ_PRINTF(6, 7);

static vz_status plan_note(vz_map_plan *p, vz_map_check check, size_t src, int64_t offset,
                           int64_t count, const char *fmt, ...) {
  if (p->n_notes == p->notes_capacity) {
    size_t cap = p->notes_capacity ? 2 * p->notes_capacity : 16;
    vz_map_note *notes = realloc(p->notes, cap * sizeof *notes);
    if (!notes)
      return vz_fail(VZ_ERR_OUT_OF_MEMORY, "name map: out of memory");
    p->notes = notes;
    p->notes_capacity = cap;
  }
  va_list ap;
  va_start(ap, fmt);
  char buf[512];
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  char *text = strdup(buf);
  if (!text)
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "name map: out of memory");
  p->notes[p->n_notes++] = (vz_map_note){text, check, src, offset, count};
  return VZ_OK;
}

static const char *shape_text(const vz_map_entry *e, char *buf, size_t size) {
  return vz_shape_text(e->ndim, e->shape, buf, size);
}

static int64_t numel_of(const vz_map_entry *e) {
  int64_t n = 1;
  for (int d = 0; d < e->ndim; d++)
    n *= e->shape[d];
  return n;
}

static bool same_shape(const vz_map_entry *a, const vz_map_entry *b) {
  if (a->ndim != b->ndim)
    return false;
  for (int d = 0; d < a->ndim; d++)
    if (a->shape[d] != b->shape[d])
      return false;
  return true;
}

/* ---- Layer numbers and parts ---- */

typedef enum verdict { V_KEEP, V_DROP, V_FAIL } verdict;

/* Checks a row's layer number and part against the model. `what` names the
 * tensor in messages; `drop_why` receives the reason for V_DROP. */
static verdict check_row(const vz_map_model *m, const rule *r, int layer, const char *what,
                         const char **drop_why, vz_status *st) {
  *drop_why = NULL;
  if (!m)
    return V_KEEP;
  int freq = m->cross_attention_freq > 0 ? m->cross_attention_freq : 2;
  switch (r->layer) {
  case L_NONE: break;
  case L_EVA:
    if (m->vision_layers > 0 && layer >= m->vision_layers) {
      *drop_why = "BLIP-2 uses the first blocks of EVA-CLIP's ViT (the penultimate output)";
      return V_DROP;
    }
    break;
  case L_VISION:
    if (m->vision_layers > 0 && layer >= m->vision_layers) {
      *st = vz_fail(VZ_ERR_FORMAT, "'%s': block %d, but %s has %d ViT blocks", what, layer, m->name,
                    m->vision_layers);
      return V_FAIL;
    }
    break;
  case L_CROSS:
    if (layer % freq != 0) {
      *st = vz_fail(VZ_ERR_FORMAT,
                    "'%s': Q-Former layer %d has no cross-attention (every %d layers from 0)", what,
                    layer, freq);
      return V_FAIL;
    }
    /* fall through */
  case L_QFORMER:
    if (m->qformer_layers > 0 && layer >= m->qformer_layers) {
      *st = vz_fail(VZ_ERR_FORMAT, "'%s': Q-Former layer %d, but %s has %d", what, layer, m->name,
                    m->qformer_layers);
      return V_FAIL;
    }
    break;
  }
  if (r->part && !(r->part & m->parts)) {
    if (r->part & m->drop_parts) {
      *drop_why = "not part of this model";
      return V_DROP;
    }
    *st = vz_fail(VZ_ERR_FORMAT, "'%s' is not part of %s%s", what, m->name,
                  r->part == VZ_PART_LLM_PROJ ? " (it belongs to a stage-2 model)" : "");
    return V_FAIL;
  }
  return V_KEEP;
}

/* ---- Foreign -> vlzoo ---- */

/* A vlzoo tensor being assembled from up to three foreign ones. */
typedef struct pending {
  const rule *r;
  int layer;
  size_t src[3];
  bool have[3];
} pending;

static int cmp_entry_ptr(const void *a, const void *b) {
  const vz_map_entry *x = *(const vz_map_entry *const *)a, *y = *(const vz_map_entry *const *)b;
  return strcmp(x->name, y->name);
}

/* Fails when two entries of a plan share a name, naming the inputs they
 * come from (`in`, the stage before). */
static vz_status check_unique(const vz_map_plan *p, const char *what, const vz_map_entry *in) {
  if (p->count < 2)
    return VZ_OK;
  const vz_map_entry **sorted = malloc(p->count * sizeof *sorted);
  if (!sorted)
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "name map: out of memory");
  for (size_t i = 0; i < p->count; i++)
    sorted[i] = &p->items[i];
  qsort(sorted, p->count, sizeof *sorted, cmp_entry_ptr);
  vz_status st = VZ_OK;
  for (size_t i = 1; i < p->count; i++) {
    const vz_map_entry *a = sorted[i - 1], *b = sorted[i];
    if (strcmp(a->name, b->name) != 0)
      continue;
    if (in && a->n_src > 0 && b->n_src > 0)
      st = vz_fail(VZ_ERR_FORMAT, "'%s' and '%s' both give the %s tensor '%s'", in[a->src[0]].name,
                   in[b->src[0]].name, what, a->name);
    else
      st = vz_fail(VZ_ERR_FORMAT, "two inputs give the %s tensor '%s'", what, a->name);
    break;
  }
  free(sorted);
  return st;
}

static ptrdiff_t find_entry(const vz_map_entry *e, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(e[i].name, name) == 0)
      return (ptrdiff_t)i;
  return -1;
}

/* Builds the vlzoo entry of a completed pending tensor. */
static vz_status finish_pending(const pending *pd, const vz_map_entry *in, vz_map_plan *out) {
  const rule *r = pd->r;
  const vz_map_entry *a = &in[pd->src[0]];
  vz_map_entry e = {0};
  e.dtype = a->dtype;
  e.ndim = a->ndim;
  memcpy(e.shape, a->shape, sizeof e.shape);
  e.src[0] = pd->src[0];
  e.n_src = 1;
  char s1[96], s2[96];
  switch (r->kind) {
  case K_RENAME:
  case K_VLZOO_EXTRA: e.op = VZ_MAP_COPY; break;
  case K_TRANSPOSE:
    if (a->ndim != 2)
      return vz_fail(VZ_ERR_SHAPE, "'%s' is %s, expected 2 dimensions", a->name,
                     shape_text(a, s1, sizeof s1));
    e.op = VZ_MAP_TRANSPOSE;
    e.shape[0] = a->shape[1];
    e.shape[1] = a->shape[0];
    break;
  case K_SPLIT3:
    for (int k = 1; k < 3; k++) {
      const vz_map_entry *b = &in[pd->src[k]];
      if (!same_shape(a, b) || a->dtype != b->dtype)
        return vz_fail(VZ_ERR_SHAPE, "'%s' (%s %s) and '%s' (%s %s) must match", a->name,
                       vz_dtype_name(a->dtype), shape_text(a, s1, sizeof s1), b->name,
                       vz_dtype_name(b->dtype), shape_text(b, s2, sizeof s2));
    }
    if (a->ndim < 1)
      return vz_fail(VZ_ERR_SHAPE, "'%s' is a scalar, expected rows", a->name);
    e.op = VZ_MAP_CONCAT;
    e.n_src = 3;
    e.src[1] = pd->src[1];
    e.src[2] = pd->src[2];
    e.shape[0] = 3 * a->shape[0];
    break;
  case K_QV_BIAS: {
    const vz_map_entry *b = &in[pd->src[1]];
    if (a->ndim != 1 || !same_shape(a, b) || a->dtype != b->dtype)
      return vz_fail(VZ_ERR_SHAPE, "'%s' (%s %s) and '%s' (%s %s) must be vectors of one size",
                     a->name, vz_dtype_name(a->dtype), shape_text(a, s1, sizeof s1), b->name,
                     vz_dtype_name(b->dtype), shape_text(b, s2, sizeof s2));
    e.op = VZ_MAP_QV_BIAS;
    e.n_src = 2;
    e.src[1] = pd->src[1];
    e.shape[0] = 3 * a->shape[0];
    break;
  }
  default: return vz_fail(VZ_ERR_INVALID_ARGUMENT, "name map: bad row kind");
  }
  return plan_add(out, r->canon, pd->layer, e);
}

vz_status vz_map_to_vlzoo(vz_naming from, const vz_map_model *model, const vz_map_entry *in,
                          size_t n, vz_map_plan *out) {
  if (!out || (n && !in) || (unsigned)from >= VZ_NAMING_COUNT)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "vz_map_to_vlzoo: bad argument");
  memset(out, 0, sizeof *out);
  size_t n_rules;
  const rule *rules = rules_for(from, &n_rules);
  pending *pend = calloc(n ? n : 1, sizeof *pend);
  if (!pend)
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "name map: out of memory");
  size_t n_pend = 0, unmatched = 0;
  const char *first_unmatched = NULL;
  vz_status st = VZ_OK;

  for (size_t i = 0; i < n && st == VZ_OK; i++) {
    const rule *hit = NULL;
    int layer = -1, part = 0;
    for (size_t k = 0; k < n_rules && !hit; k++) {
      int nf = foreign_count(&rules[k]);
      for (int f = 0; f < nf; f++)
        if (pattern_match(foreign_pattern(&rules[k], f), in[i].name, &layer)) {
          hit = &rules[k];
          part = f;
          break;
        }
    }
    if (!hit) {
      if (!first_unmatched)
        first_unmatched = in[i].name;
      unmatched++;
      continue;
    }
    const char *why = NULL;
    switch (hit->kind) {
    case K_LLM: st = vz_fail(VZ_ERR_UNSUPPORTED, "'%s': %s", in[i].name, NOTE_LLM); continue;
    case K_IGNORE:
    case K_UNUSED_LN_WEIGHT:
    case K_UNUSED_LN_BIAS:
      st = plan_note(out, VZ_MAP_CHECK_NONE, i, 0, 0, "dropped %s: %s", in[i].name, hit->note);
      continue;
    case K_POSITION_IDS:
      st = plan_note(out, VZ_MAP_CHECK_ARANGE, i, 0, numel_of(&in[i]), "dropped %s: %s", in[i].name,
                     hit->note);
      continue;
    default: break;
    }
    verdict v = check_row(model, hit, layer, in[i].name, &why, &st);
    if (v == V_FAIL)
      break;
    if (v == V_DROP) {
      st = plan_note(out, VZ_MAP_CHECK_NONE, i, 0, 0, "dropped %s: %s", in[i].name, why);
      continue;
    }
    /* join the pending tensor of this row and layer, or start one */
    pending *pd = NULL;
    for (size_t k = 0; k < n_pend; k++)
      if (pend[k].r == hit && pend[k].layer == layer) {
        pd = &pend[k];
        break;
      }
    if (!pd) {
      pd = &pend[n_pend++];
      pd->r = hit;
      pd->layer = layer;
    }
    if (pd->have[part]) {
      st = vz_fail(VZ_ERR_FORMAT, "'%s' and '%s' give the same tensor", in[pd->src[part]].name,
                   in[i].name);
      break;
    }
    pd->have[part] = true;
    pd->src[part] = i;
  }
  if (st == VZ_OK && unmatched)
    st = vz_fail(VZ_ERR_FORMAT, "no %s name rule for '%s'%s", vz_naming_name(from), first_unmatched,
                 unmatched > 1 ? " (and other names: is --from right?)" : "");
  for (size_t k = 0; k < n_pend && st == VZ_OK; k++) {
    int nf = foreign_count(pend[k].r);
    for (int f = 0; f < nf && st == VZ_OK; f++)
      if (!pend[k].have[f]) {
        int got = 0;
        while (!pend[k].have[got])
          got++;
        char *missing = pattern_fill(foreign_pattern(pend[k].r, f), pend[k].layer);
        st = vz_fail(VZ_ERR_FORMAT, "'%s' needs '%s', which no input has",
                     in[pend[k].src[got]].name, missing ? missing : "?");
        free(missing);
      }
    if (st == VZ_OK)
      st = finish_pending(&pend[k], in, out);
  }
  free(pend);

  /* tied tensors */
  bool lm_head = false;
  for (size_t i = 0; i < out->count && st == VZ_OK; i++)
    lm_head |= strncmp(out->items[i].name, HLM, strlen(HLM)) == 0;
  for (size_t t = 0; t < N_ROWS(ties) && st == VZ_OK && lm_head; t++) {
    if (find_entry(out->items, out->count, ties[t].name) >= 0)
      continue;
    ptrdiff_t twin = find_entry(out->items, out->count, ties[t].twin);
    if (twin < 0)
      continue;
    vz_map_entry e = out->items[twin];
    st = plan_add(out, ties[t].name, -1, e);
    if (st == VZ_OK)
      st = plan_note(out, VZ_MAP_CHECK_NONE, 0, 0, 0, "made %s: %s", ties[t].name, ties[t].note);
  }
  if (st == VZ_OK)
    st = check_unique(out, "vlzoo", in);
  if (st != VZ_OK)
    vz_map_plan_free(out);
  return st;
}

/* ---- vlzoo -> foreign ---- */

vz_status vz_map_from_vlzoo(vz_naming to, const vz_map_model *model, const vz_map_entry *in,
                            size_t n, vz_map_plan *out) {
  if (!out || (n && !in) || (unsigned)to >= VZ_NAMING_COUNT)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "vz_map_from_vlzoo: bad argument");
  memset(out, 0, sizeof *out);
  size_t n_rules;
  const rule *rules = rules_for(to, &n_rules);
  vz_status st = VZ_OK;
  char s1[96];

  for (size_t i = 0; i < n && st == VZ_OK; i++) {
    const vz_map_entry *c = &in[i];
    const rule *hit = NULL;
    int layer = -1;
    for (size_t k = 0; k < n_rules && !hit; k++)
      if (rules[k].canon && pattern_match(rules[k].canon, c->name, &layer))
        hit = &rules[k];
    if (!hit) {
      st = vz_fail(VZ_ERR_FORMAT, "no %s name for the vlzoo tensor '%s'", vz_naming_name(to),
                   c->name);
      break;
    }
    const char *why = NULL;
    verdict v = check_row(model, hit, layer, c->name, &why, &st);
    if (v == V_FAIL)
      break;
    if (v == V_DROP) {
      st = plan_note(out, VZ_MAP_CHECK_NONE, i, 0, 0, "dropped %s: %s", c->name, why);
      continue;
    }
    vz_map_entry e = {0};
    e.dtype = c->dtype;
    e.ndim = c->ndim;
    memcpy(e.shape, c->shape, sizeof e.shape);
    e.n_src = 1;
    e.src[0] = i;
    switch (hit->kind) {
    case K_VLZOO_EXTRA:
      if (to == VZ_NAMING_HF) {
        st = plan_note(out, VZ_MAP_CHECK_NONE, i, 0, 0,
                       "dropped %s: Hugging Face transformers has no place for it", c->name);
        break;
      }
      /* fall through */
    case K_RENAME:
      e.op = VZ_MAP_COPY;
      st = plan_add(out, foreign_pattern(hit, 0), layer, e);
      break;
    case K_TRANSPOSE:
      if (c->ndim != 2) {
        st = vz_fail(VZ_ERR_SHAPE, "'%s' is %s, expected 2 dimensions", c->name,
                     shape_text(c, s1, sizeof s1));
        break;
      }
      e.op = VZ_MAP_TRANSPOSE;
      e.shape[0] = c->shape[1];
      e.shape[1] = c->shape[0];
      st = plan_add(out, foreign_pattern(hit, 0), layer, e);
      break;
    case K_SPLIT3:
    case K_QV_BIAS: {
      if (c->ndim < 1 || c->shape[0] % 3 != 0 || (hit->kind == K_QV_BIAS && c->ndim != 1)) {
        st = vz_fail(VZ_ERR_SHAPE, "'%s' is %s, expected %s with a multiple of 3 rows", c->name,
                     shape_text(c, s1, sizeof s1), hit->kind == K_QV_BIAS ? "a vector" : "rows");
        break;
      }
      int64_t rows = c->shape[0] / 3;
      e.op = VZ_MAP_SLICE;
      e.shape[0] = rows;
      int nf = foreign_count(hit);
      for (int f = 0; f < nf && st == VZ_OK; f++) {
        int third = hit->kind == K_QV_BIAS ? 2 * f : f; /* q_bias: 0, v_bias: 2 */
        e.offset = third * rows;
        st = plan_add(out, foreign_pattern(hit, f), layer, e);
      }
      if (st == VZ_OK && hit->kind == K_QV_BIAS)
        st = plan_note(out, VZ_MAP_CHECK_ZERO, i, rows, rows,
                       "dropped the k part of %s: %s keeps no k bias (it must be zero)", c->name,
                       vz_naming_name(to));
      break;
    }
    default: st = vz_fail(VZ_ERR_INVALID_ARGUMENT, "name map: bad row kind"); break;
    }
  }

  /* tensors the target declares that vlzoo does not keep: made up */
  for (size_t k = 0; k < n_rules && st == VZ_OK; k++) {
    const rule *r = &rules[k];
    if (r->kind != K_POSITION_IDS && r->kind != K_UNUSED_LN_WEIGHT && r->kind != K_UNUSED_LN_BIAS)
      continue;
    if (model && !(r->part & model->parts))
      continue;
    ptrdiff_t ref = find_entry(in, n, r->ref);
    if (ref < 0)
      continue;
    const vz_map_entry *c = &in[ref];
    vz_map_entry e = {0};
    if (r->kind == K_POSITION_IDS) {
      e.op = VZ_MAP_ARANGE;
      e.dtype = r->dtype;
      e.ndim = 2;
      e.shape[0] = 1;
      e.shape[1] = c->ndim > 0 ? c->shape[0] : 1;
    } else {
      e.op = r->kind == K_UNUSED_LN_WEIGHT ? VZ_MAP_ONES : VZ_MAP_ZEROS;
      e.dtype = c->dtype;
      e.ndim = 1;
      e.shape[0] = c->ndim > 0 ? c->shape[c->ndim - 1] : 1;
    }
    st = plan_add(out, r->foreign[0], -1, e);
    if (st == VZ_OK)
      st = plan_note(out, VZ_MAP_CHECK_NONE, 0, 0, 0, "made %s: %s", r->foreign[0], r->note);
  }
  if (st == VZ_OK)
    st = check_unique(out, vz_naming_name(to), NULL);
  if (st != VZ_OK)
    vz_map_plan_free(out);
  return st;
}

/* ---- Detection ---- */

vz_status vz_map_detect(const vz_map_entry *in, size_t n, vz_naming *out, size_t *covered) {
  if (!out || (n && !in))
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "vz_map_detect: bad argument");
  static const vz_naming order[] = {VZ_NAMING_HF, VZ_NAMING_LAVIS, VZ_NAMING_MINDFORMERS,
                                    VZ_NAMING_VPGTRANS};
  size_t best = 0;
  vz_naming best_naming = VZ_NAMING_HF;
  for (size_t o = 0; o < sizeof order / sizeof order[0]; o++) {
    size_t n_rules;
    const rule *rules = rules_for(order[o], &n_rules);
    size_t hits = 0;
    for (size_t i = 0; i < n; i++) {
      bool hit = false;
      int layer;
      for (size_t k = 0; k < n_rules && !hit; k++) {
        int nf = foreign_count(&rules[k]);
        for (int f = 0; f < nf && !hit; f++)
          hit = pattern_match(foreign_pattern(&rules[k], f), in[i].name, &layer);
      }
      hits += hit;
    }
    if (hits > best) {
      best = hits;
      best_naming = order[o];
    }
  }
  if (covered)
    *covered = best;
  if (best == 0)
    return vz_fail(VZ_ERR_FORMAT, "no known naming (lavis, hf, mindformers, vpgtrans) covers %s",
                   n ? in[0].name : "an empty input");
  *out = best_naming;
  return VZ_OK;
}

/* Name maps between the namings of BLIP-2 checkpoints: LAVIS (and the
 * unprefixed eva_vit_g.pth), VPGTrans (LAVIS plus llama_proj), Hugging Face
 * transformers, MindFormers r1.0, and vlzoo's own naming.
 *
 * vlzoo names tensors as Hugging Face transformers does
 * (Blip2ForImageTextRetrieval for stage 1, Blip2Model for stage 2), plus
 * what transformers has no place for, under names in the same style:
 *   temp                                   ITC temperature, scalar
 *   qformer.cls.predictions.transform.dense.{weight,bias}
 *   qformer.cls.predictions.transform.LayerNorm.{weight,bias}
 *   qformer.cls.predictions.decoder.{weight,bias}
 *   qformer.cls.predictions.bias           the Q-Former LM head (ITG)
 * The maps are tables of name patterns (convert/name_map.c): "{i}" stands
 * for a layer number, a trailing "*" for any rest. Each row says how one
 * vlzoo tensor is stored in another naming (renamed, transposed, split in
 * three, the LAVIS q_bias / v_bias pair), or that a foreign tensor is
 * dropped or made up (buffers, unused LayerNorms, tied copies), with why.
 * A name that no row covers is an error that names it.
 *
 * Mapping works on names, dtypes and shapes only and produces a plan: each
 * output tensor says how its bytes are computed from the input tensors. The
 * converter (convert/convert.c) runs a plan on data; the tests check plans
 * against the name lists of the real implementations. */
#ifndef VLZOO_CONVERT_NAME_MAP_H
#define VLZOO_CONVERT_NAME_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vlzoo/dtype.h"
#include "vlzoo/status.h"
#include "vlzoo/weights.h"

typedef enum vz_naming {
  VZ_NAMING_VLZOO,       /* "vlzoo": Hugging Face names plus temp and the LM head */
  VZ_NAMING_HF,          /* "hf": Hugging Face transformers */
  VZ_NAMING_LAVIS,       /* "lavis": salesforce/LAVIS, eva_vit_g.pth included */
  VZ_NAMING_MINDFORMERS, /* "mindformers": MindFormers r1.0 (.ckpt) */
  VZ_NAMING_VPGTRANS,    /* "vpgtrans": LAVIS with llama_proj / llama_model */
  VZ_NAMING_COUNT
} vz_naming;

const char *vz_naming_name(vz_naming naming);
/* Parses one of the names above ("huggingface", "ms" and "mf" accepted too). */
vz_status vz_naming_from_name(const char *name, vz_naming *out);

/* Model parts, for selecting what a model holds. */
enum {
  VZ_PART_VISION = 1u << 0,       /* EVA ViT-g: embeddings and blocks */
  VZ_PART_LN_VISION = 1u << 1,    /* ln_vision (HF vision_model.post_layernorm) */
  VZ_PART_QFORMER = 1u << 2,      /* query_tokens, Q-Former query path */
  VZ_PART_QFORMER_TEXT = 1u << 3, /* Q-Former text embeddings and text FFNs */
  VZ_PART_HEADS = 1u << 4,        /* vision/text projections, itm_head, temp */
  VZ_PART_LM_HEAD = 1u << 5,      /* Q-Former LM head (cls.predictions) */
  VZ_PART_LLM_PROJ = 1u << 6,     /* Q-Former -> LLM projection */
  VZ_PART_ALL = (1u << 7) - 1,
  VZ_PARTS_STAGE1 = VZ_PART_VISION | VZ_PART_LN_VISION | VZ_PART_QFORMER | VZ_PART_QFORMER_TEXT |
                    VZ_PART_HEADS | VZ_PART_LM_HEAD,
  VZ_PARTS_STAGE2 = VZ_PART_VISION | VZ_PART_LN_VISION | VZ_PART_QFORMER | VZ_PART_LLM_PROJ,
};

/* What a model is made of, as far as names go. Zero layer counts mean "no
 * bound" (any layer number is accepted). */
typedef struct vz_map_model {
  const char *name;
  int vision_layers;        /* ViT blocks used (ViT-g: 39; eva_vit_g.pth has 40) */
  int qformer_layers;       /* 12 */
  int cross_attention_freq; /* cross-attention in layers i % freq == 0; 0 means 2 */
  unsigned parts;           /* VZ_PART_* the model has */
  unsigned drop_parts;      /* parts dropped with a note when an input has them */
  bool has_llm;             /* stage 2: the LLM part is not mapped yet */
} vz_map_model;

/* The zoo models the converter knows (stage-1 BLIP-2 and the stage-2 names,
 * whose LLM part is refused). NULL when `name` is none of them. */
const vz_map_model *vz_map_model_find(const char *name);
/* NULL-terminated list of the known model names. */
const char *const *vz_map_model_names(void);
/* Writes into buf the known names closest to `name` (", "-separated, at
 * most three); "" when none is close. Returns buf. */
const char *vz_map_model_suggest(const char *name, char *buf, size_t size);

/* How one tensor of a plan is computed from the tensors of the stage
 * before (src[] index those). */
typedef enum vz_map_op {
  VZ_MAP_COPY,      /* src[0] as it is */
  VZ_MAP_SLICE,     /* rows [offset, offset + shape[0]) of src[0] along dim 0 */
  VZ_MAP_TRANSPOSE, /* 2-D transpose of src[0] */
  VZ_MAP_CONCAT,    /* src[0 .. n_src) joined along dim 0 */
  VZ_MAP_QV_BIAS,   /* src[0], zeros shaped like src[0], src[1] joined (EVA qkv bias) */
  VZ_MAP_ZEROS,     /* made from nothing: zeros */
  VZ_MAP_ONES,      /* ones (an identity LayerNorm weight) */
  VZ_MAP_ARANGE,    /* 0, 1, ..., n-1 (position ids) */
} vz_map_op;

typedef struct vz_map_entry {
  char *name; /* malloc'd, owned by the plan */
  vz_dtype dtype;
  int ndim;
  int64_t shape[VZ_WEIGHT_MAX_DIMS];
  vz_map_op op;
  int n_src;
  size_t src[3];
  int64_t offset; /* VZ_MAP_SLICE: first row */
} vz_map_entry;

/* What the data must satisfy for a dropped tensor (or part) to lose
 * nothing; the converter checks it before writing. */
typedef enum vz_map_check {
  VZ_MAP_CHECK_NONE,
  VZ_MAP_CHECK_ARANGE, /* src is 0, 1, ..., n-1 (a position_ids buffer) */
  VZ_MAP_CHECK_ZERO,   /* elements [offset, offset + count) of src are all zero */
} vz_map_check;

typedef struct vz_map_note {
  char *text; /* "dropped X: why" or "made Y: why"; malloc'd */
  vz_map_check check;
  size_t src;
  int64_t offset, count;
} vz_map_note;

typedef struct vz_map_plan {
  vz_map_entry *items;
  size_t count, capacity;
  vz_map_note *notes;
  size_t n_notes, notes_capacity;
} vz_map_plan;

void vz_map_plan_free(vz_map_plan *plan);

/* Input descriptions (name, dtype, ndim, shape; the rest is ignored) to
 * vlzoo names: `out` receives one entry per vlzoo tensor. `model` bounds
 * layer numbers and selects parts; NULL accepts everything. Fails, naming
 * the tensor, on a name no row covers, a missing part (q_bias without
 * v_bias, dense1 without dense3), a shape that does not fit its transform,
 * two inputs giving one vlzoo tensor, or an LLM tensor (stage 2). */
vz_status vz_map_to_vlzoo(vz_naming from, const vz_map_model *model, const vz_map_entry *in,
                          size_t n, vz_map_plan *out);

/* vlzoo tensors (a plan from vz_map_to_vlzoo) to the naming `to`. */
vz_status vz_map_from_vlzoo(vz_naming to, const vz_map_model *model, const vz_map_entry *in,
                            size_t n, vz_map_plan *out);

/* The naming whose rows cover the most of the names (preferring, on a tie,
 * hf, lavis, mindformers, vpgtrans in that order). Fails when no naming
 * covers any name. `*covered` (optional) receives how many it covers. */
vz_status vz_map_detect(const vz_map_entry *in, size_t n, vz_naming *out, size_t *covered);

#endif

/* Checkpoint conversion: read one or more checkpoints (any format
 * vz_weights_open reads), map names and layouts between LAVIS, VPGTrans,
 * Hugging Face, MindFormers and vlzoo, and write one MindSpore .ckpt or
 * safetensors file.
 *
 * Without a model the tensors are copied as they are (names and dtypes
 * kept; only --dtype changes them). With a model the names are mapped: a
 * .ckpt gets MindFormers' names and layouts (ViT qkv split into
 * dense1/2/3 with a zero dense2.bias for LAVIS input, attention.projection
 * and MLP weights stored [in, out], fc1 -> output.mapping, fc2 ->
 * output.projection, LayerNorm gamma/beta, embedding_table, self_att, an
 * int32 position_ids and an unused fc_norm made so that MindFormers'
 * load_param_into_net finds every parameter), a safetensors file gets
 * Hugging Face's (Blip2ForImageTextRetrieval for stage 1; temp and the
 * Q-Former LM head, which transformers has no place for, are dropped with a
 * note unless `to` is "vlzoo"; in vlzoo naming the LM decoder's weight and
 * bias are left out when they only repeat the word embeddings and the
 * head's bias, as LAVIS ties them: vlzoo's loader ties them back). Values
 * are never changed except by those layout transforms and by an explicit
 * dtype. The output appears only when everything succeeded (temporary file
 * + rename). */
#ifndef VLZOO_CONVERT_H
#define VLZOO_CONVERT_H

#include <stdbool.h>
#include <stddef.h>

#include "vlzoo/dtype.h"
#include "vlzoo/status.h"
#include "vlzoo/weights.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vz_convert_summary {
  size_t tensors_read; /* after merging the inputs */
  size_t tensors_written;
  size_t dropped; /* tensors (or parts) left out, each with a note */
  size_t made;    /* tensors made up (tied copies, zero/one/arange buffers) */
  char from[16];  /* the input naming used ("" without a model) */
  char to[16];    /* the output naming ("" without a model) */
} vz_convert_summary;

typedef struct vz_convert_options {
  const char *const *inputs; /* checkpoint paths, merged into one set of tensors */
  size_t n_inputs;
  /* Input naming: "lavis", "hf", "mindformers", "vpgtrans", "vlzoo", or
   * NULL / "auto" to detect it from the names. Used only with a model. */
  const char *from;
  /* A zoo name (blip2_stage1_vit_g, blip2_stage1_evaluator,
   * blip2_stage1_classification, blip2_stage1_pretrained, or a stage-2
   * name, whose LLM tensors are refused for now); NULL keeps names. */
  const char *model;
  const char *output;
  vz_weights_file_format format;
  /* Output naming with a model: NULL for the format's default
   * (mindformers for .ckpt, hf for safetensors), or "vlzoo", "lavis", ... */
  const char *to;
  bool cast;      /* convert floating-point tensors to `dtype` */
  vz_dtype dtype; /* VZ_F32, VZ_F16 or VZ_BF16 */
  /* Called once per note (a tensor dropped or made, and why); optional. */
  void (*note)(void *user, const char *text);
  void *user;
  vz_convert_summary *summary; /* optional */
} vz_convert_options;

vz_status vz_convert(const vz_convert_options *opts);

/* VZ_OK when `model` is a zoo name the converter knows; otherwise
 * VZ_ERR_NOT_FOUND with a message that suggests the closest names. */
vz_status vz_convert_check_model(const char *model);

#ifdef __cplusplus
}
#endif
#endif

/* The model zoo: configurations selectable by name, like MindFormers'
 * from_pretrained.
 *
 * Every zoo name is a YAML file in zoo-configs/, embedded into the library at
 * build time (so `vlzoo list` works from any directory). A configuration
 * follows MindFormers' key structure:
 *
 *   description: one line (vlzoo)
 *   model:
 *     model_config: {type: Blip2Config, checkpoint_name_or_path, max_txt_len,
 *                    weights_origin, ln_vision_eps, itc_pooling, default_temp,
 *                    vision_config: {...}, qformer_config: {...},
 *                    text_config: {...} (stage 2)}
 *     arch: {type: Blip2Qformer | Blip2Classifier | ...}
 *   processor: {image_processor: {image_size, ...}, tokenizer: {type, ...}}
 *   pipeline: {task, hypothesis_template, ...} (vlzoo)
 *
 * Keys that MindFormers lacks are commented where they appear in the YAML.
 *
 * Dotted keys. Functions that take a key accept a dotted path such as
 * "qformer_config.query_length" or "processor.image_processor.mean.0" (a
 * number indexes a sequence). The path is looked up from the root when its
 * first part is a key of the root mapping (model, processor, pipeline,
 * description); otherwise under model.model_config, and failing that under
 * model (so "arch.type" works too).
 *
 * The parser (libyaml) accepts one document of mappings, sequences and
 * scalars; anchors, aliases, tags other than the standard ones, duplicate
 * keys and non-scalar keys are refused, nesting is limited to 32 levels, a
 * file to 1 MiB, and a failure names the line and column. Plain scalars are
 * typed with YAML 1.2's core schema (null, true/false, integers, floats;
 * "1e-5" is a float), quoted scalars are strings.
 *
 * Returned strings stay valid until the next change of the config or its
 * free; text and paths given to the caller are malloc'ed (free() them). */
#ifndef VLZOO_ZOO_H
#define VLZOO_ZOO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vlzoo/dtype.h"
#include "vlzoo/model.h"
#include "vlzoo/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vz_config vz_config;

typedef enum vz_config_kind {
  VZ_CONFIG_NULL,
  VZ_CONFIG_BOOL,
  VZ_CONFIG_INT,
  VZ_CONFIG_FLOAT,
  VZ_CONFIG_STRING,
  VZ_CONFIG_SEQUENCE,
  VZ_CONFIG_MAPPING,
} vz_config_kind;

/* "null", "bool", "int", "float", "string", "sequence", "mapping". */
const char *vz_config_kind_name(vz_config_kind kind);

/* ---- The support list ---- */

/* The zoo names, sorted, NULL-terminated (MindFormers' show_support_list). */
const char *const *vz_zoo_names(void);
/* The one-line description of a zoo name (its `description`), or NULL. */
const char *vz_zoo_description(const char *name);
/* The embedded YAML text of a zoo name (not NUL-terminated in general: use
 * *size); VZ_ERR_NOT_FOUND when the name is not in the zoo. */
vz_status vz_zoo_yaml(const char *name, const char **text, size_t *size);
/* Writes the zoo names closest to `name` (edit distance, or containing it)
 * into buf, ", "-separated, at most three; "" when none is close. */
const char *vz_zoo_suggest(const char *name, char *buf, size_t size);

/* ---- Loading ---- */

/* Loads a configuration from
 *  - a zoo name ("blip2_stage1_vit_g");
 *  - a YAML file (a path ending in .yaml / .yml, or any existing file);
 *  - a Hugging Face model folder: config.json (Blip2Config, model_type
 *    "blip-2") [+ *.safetensors or pytorch_model*.bin], translated into the
 *    equivalent zoo configuration (weights_origin hf, HF's defaults for the
 *    keys the file leaves out) with checkpoint_name_or_path set to the
 *    folder (a path to the config.json itself works too); or a folder with
 *    one .yaml (and its .ckpt), MindFormers style.
 * An unknown name fails with VZ_ERR_NOT_FOUND and suggests close names;
 * malformed YAML or JSON fails with VZ_ERR_FORMAT naming file:line:column. */
vz_status vz_config_load(const char *name_or_path, vz_config **out);
/* Parses YAML text; `origin` names it in messages and becomes the config's
 * name (its base name without .yaml) when no better one is known. */
vz_status vz_config_parse(const char *text, size_t size, const char *origin, vz_config **out);
void vz_config_free(vz_config *cfg);
/* A deep copy. */
vz_status vz_config_clone(const vz_config *cfg, vz_config **out);

/* The zoo name, or the file's / folder's base name (without .yaml). */
const char *vz_config_name(const vz_config *cfg);
/* Where it came from: "zoo", a file path or a folder path. */
const char *vz_config_source(const vz_config *cfg);

/* ---- Values ---- */

bool vz_config_has(const vz_config *cfg, const char *key);
vz_status vz_config_kind_of(const vz_config *cfg, const char *key, vz_config_kind *out);
/* Typed getters: VZ_ERR_NOT_FOUND for a missing key, VZ_ERR_INVALID_ARGUMENT
 * naming the actual kind for a wrong one. get_float accepts integers;
 * get_string only strings. */
vz_status vz_config_get_int(const vz_config *cfg, const char *key, int64_t *out);
vz_status vz_config_get_float(const vz_config *cfg, const char *key, double *out);
vz_status vz_config_get_bool(const vz_config *cfg, const char *key, bool *out);
vz_status vz_config_get_string(const vz_config *cfg, const char *key, const char **out);
/* Number of items of a sequence or mapping. */
vz_status vz_config_get_length(const vz_config *cfg, const char *key, size_t *out);

/* Overrides one existing value, typed by the value it replaces: an integer
 * key takes an integer, a float key an integer or a float, a bool key
 * true/false (yes/no, on/off), a string key any text (kept verbatim), a
 * sequence key a flow sequence "[a, b]" of scalars of the same kinds, a null
 * key any scalar (typed by the core schema). A key that does not exist fails
 * with VZ_ERR_NOT_FOUND (and suggests keys of that section); a value of the
 * wrong type, or a mapping key, with VZ_ERR_INVALID_ARGUMENT. */
vz_status vz_config_set(vz_config *cfg, const char *key, const char *value);
/* vz_config_set from "KEY=VALUE" (the --set syntax). */
vz_status vz_config_set_override(vz_config *cfg, const char *assignment);

/* The configuration as YAML (libyaml emitter; comments are not kept; floats
 * written so that PyYAML also reads them as floats). free() *text. */
vz_status vz_config_to_yaml(const vz_config *cfg, char **text);

/* ---- What a configuration describes ---- */

/* Fills the BLIP-2 vision side (ViT + ln_vision + Q-Former + ITC settings)
 * from vision_config, qformer_config and model_config (any BLIP-2 config;
 * stage-2 ones describe their vision side). Checks that sizes are positive
 * and within bounds, that widths divide by the head counts, that the
 * patch divides the image, that encoder_width equals the ViT width and that
 * processor.image_processor.image_size agrees with vision_config. */
vz_status vz_config_stage1_params(const vz_config *cfg, vz_blip2_stage1_params *out);

/* Parameters of the whole model, computed from the sizes (ViT, ln_vision,
 * Q-Former with or without its text side and heads, projection, LLM). */
vz_status vz_config_param_count(const vz_config *cfg, uint64_t *count);

/* Where the weights are, first match wins:
 *  1. explicit_weights (when not NULL): must exist;
 *  2. checkpoint_name_or_path as a path (absolute, relative to the current
 *     directory, or to the YAML file's directory);
 *  3. in $VLZOO_HOME (default ~/.cache/vlzoo), then in the built-in weight
 *     folders (VLZOO_WEIGHTS_DIRS at build time): checkpoint_name_or_path
 *     and then the config's name, each as NAME.ckpt, NAME.safetensors or a
 *     folder NAME/.
 * VZ_ERR_NOT_FOUND lists every place looked at. free() *path. */
vz_status vz_config_weights_path(const vz_config *cfg, const char *explicit_weights, char **path);

/* Where the BERT tokenizer (vocab.txt or tokenizer.json) is, first match
 * wins: explicit_path (a file, or a folder holding one); a tokenizer beside
 * the weights when weights_path is a folder (Hugging Face layout);
 * processor.tokenizer.checkpoint_name_or_path as a path, then as NAME.json,
 * NAME.txt or NAME/ in the config's folder, $VLZOO_HOME and the built-in
 * weight folders. VZ_ERR_NOT_FOUND lists every place looked at. free() *path. */
vz_status vz_config_tokenizer_path(const vz_config *cfg, const char *weights_path,
                                   const char *explicit_path, char **path);

/* Memory available to this process, in bytes: /proc/meminfo MemAvailable,
 * else sysconf(_SC_AVPHYS_PAGES) * page size; capped by $VLZOO_MEMORY_LIMIT
 * (bytes, or with a K, M, G or T suffix) when set. */
vz_status vz_available_memory(uint64_t *bytes);

/* Checks before loading that the weights fit: needed = parameters * size of
 * weight_dtype plus 10 % for activations and buffers, compared with
 * `available_bytes` (0: vz_available_memory()). Fails with
 * VZ_ERR_OUT_OF_MEMORY saying how much is needed, how much is available and
 * which smaller dtype (f16 / bf16) would fit. needed_bytes may be NULL. */
vz_status vz_config_check_memory(const vz_config *cfg, vz_dtype weight_dtype,
                                 uint64_t available_bytes, uint64_t *needed_bytes);

#ifdef __cplusplus
}
#endif
#endif

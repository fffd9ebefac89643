/* Loading a stage-1 model by name, YAML file or Hugging Face folder: the
 * config, its overrides, the weights' location, a memory check, the load. */
#include <stdlib.h>

#include "ops/internal.h"
#include "vlzoo/model.h"
#include "vlzoo/zoo.h"

static vz_status apply_overrides(vz_config *cfg, const vz_load_options *opts) {
  for (int i = 0; i < opts->n_overrides; i++) {
    vz_status st = vz_config_set_override(cfg, opts->overrides[i]);
    if (st != VZ_OK)
      return st;
  }
  return VZ_OK;
}

static vz_status load_weights(const vz_config *cfg, const vz_load_options *opts, vz_backend *be,
                              vz_blip2_stage1 **out) {
  vz_blip2_stage1_params params;
  vz_status st = vz_config_stage1_params(cfg, &params);
  if (st != VZ_OK)
    return st;
  char *path = NULL;
  if ((st = vz_config_weights_path(cfg, opts->weights, &path)) != VZ_OK)
    return st;
  /* Fail before reading gigabytes when they cannot fit. */
  st = vz_config_check_memory(cfg, opts->weight_dtype, 0, NULL);
  vz_weights *w = NULL;
  if (st == VZ_OK)
    st = vz_weights_open(path, &w);
  if (st == VZ_OK)
    st = vz_blip2_stage1_load(&params, w, be, opts->weight_dtype, out);
  if (st != VZ_OK)
    vz_fail_context(st, "%s: ", path);
  vz_weights_close(w);
  free(path);
  return st;
}

vz_status vz_blip2_stage1_from_pretrained(const char *name_or_path, const vz_load_options *opts,
                                          vz_backend *be, vz_blip2_stage1 **out,
                                          vz_config **config_out) {
  if (!name_or_path || !be || !out)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "from_pretrained: NULL argument");
  vz_load_options defaults = {.weight_dtype = VZ_F32};
  if (!opts)
    opts = &defaults;
  *out = NULL;
  if (config_out)
    *config_out = NULL;
  vz_config *cfg = NULL;
  vz_status st = vz_config_load(name_or_path, &cfg);
  if (st == VZ_OK)
    st = apply_overrides(cfg, opts);
  if (st == VZ_OK)
    st = load_weights(cfg, opts, be, out);
  if (st == VZ_OK && config_out)
    *config_out = cfg;
  else
    vz_config_free(cfg);
  return st;
}

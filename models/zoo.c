/* The zoo: the support list (embedded YAML files), what a configuration
 * describes (the BLIP-2 vision side's parameters, the parameter count of the
 * whole model), where its weights are, and whether they fit in memory. */
#define _POSIX_C_SOURCE 200809L

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "models/zoo_internal.h"
#include "ops/internal.h"
#include "vlzoo/zoo.h"

/* ---- The support list ---- */

const char *const *vz_zoo_names(void) { return vz_zoo_name_list; }

static const vz_zoo_file *zoo_file(const char *name) {
  if (!name)
    return NULL;
  for (size_t i = 0; i < vz_zoo_file_count; i++)
    if (strcmp(vz_zoo_files[i].name, name) == 0)
      return &vz_zoo_files[i];
  return NULL;
}

const char *vz_zoo_description(const char *name) {
  const vz_zoo_file *f = zoo_file(name);
  return f ? f->description : NULL;
}

const char *vz_zoo_suggest(const char *name, char *buf, size_t size) {
  return vz_closest_names(name, vz_zoo_name_list, vz_zoo_file_count, 3, buf, size);
}

vz_status vz_zoo_yaml(const char *name, const char **text, size_t *size) {
  const vz_zoo_file *f = zoo_file(name);
  if (!f) {
    char close[256];
    vz_zoo_suggest(name, close, sizeof close);
    if (close[0])
      return vz_fail(VZ_ERR_NOT_FOUND,
                     "unknown model '%s'; did you mean %s? ('vlzoo list' shows "
                     "the zoo)",
                     name ? name : "", close);
    return vz_fail(VZ_ERR_NOT_FOUND,
                   "unknown model '%s': not a zoo name, a .yaml file or a model folder ('vlzoo "
                   "list' shows the zoo)",
                   name ? name : "");
  }
  if (text)
    *text = f->text;
  if (size)
    *size = f->size;
  return VZ_OK;
}

/* ---- Reading sizes with checks ---- */

typedef struct reader {
  const vz_config *cfg;
  vz_status st;
} reader;

static void r_fail(reader *r, vz_status status, const char *fmt, ...) VZ_PRINTF(3, 4);
static void r_fail(reader *r, vz_status status, const char *fmt, ...) {
  if (r->st != VZ_OK)
    return;
  char msg[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  r->st = vz_fail(status, "config %s: %s", vz_config_name(r->cfg), msg);
}

/* An integer in [lo, hi]; `def` when absent and has_def. */
static int64_t r_int_def(reader *r, const char *key, bool has_def, int64_t def, int64_t lo,
                         int64_t hi) {
  if (r->st != VZ_OK)
    return lo;
  if (has_def && !vz_config_has(r->cfg, key))
    return def;
  int64_t v = 0;
  vz_status st = vz_config_get_int(r->cfg, key, &v);
  if (st != VZ_OK) {
    r->st = st;
    return lo;
  }
  if (v < lo || v > hi) {
    r_fail(r, VZ_ERR_INVALID_ARGUMENT, "%s = %lld is outside [%lld, %lld]", key, (long long)v,
           (long long)lo, (long long)hi);
    return lo;
  }
  return v;
}

static int64_t r_int(reader *r, const char *key, int64_t lo, int64_t hi) {
  return r_int_def(r, key, false, 0, lo, hi);
}

/* A number in (lo, hi]; `def` when absent and has_def. */
static double r_float_def(reader *r, const char *key, bool has_def, double def, double lo,
                          double hi) {
  if (r->st != VZ_OK)
    return def;
  if (has_def && !vz_config_has(r->cfg, key))
    return def;
  double v = 0;
  vz_status st = vz_config_get_float(r->cfg, key, &v);
  if (st != VZ_OK) {
    r->st = st;
    return def;
  }
  if (!(v > lo && v <= hi)) {
    r_fail(r, VZ_ERR_INVALID_ARGUMENT, "%s = %g is outside (%g, %g]", key, v, lo, hi);
    return def;
  }
  return v;
}

static bool r_bool_def(reader *r, const char *key, bool def) {
  if (r->st != VZ_OK || !vz_config_has(r->cfg, key))
    return def;
  bool v = def;
  vz_status st = vz_config_get_bool(r->cfg, key, &v);
  if (st != VZ_OK)
    r->st = st;
  return v;
}

/* A string, or `def` when absent (NULL def: required). */
static const char *r_str_def(reader *r, const char *key, const char *def) {
  if (r->st != VZ_OK)
    return def ? def : "";
  if (def && !vz_config_has(r->cfg, key))
    return def;
  const char *v = NULL;
  vz_status st = vz_config_get_string(r->cfg, key, &v);
  if (st != VZ_OK) {
    r->st = st;
    return def ? def : "";
  }
  return v;
}

static bool one_of(const char *s, const char *const *list) {
  for (; *list; list++)
    if (strcmp(s, *list) == 0)
      return true;
  return false;
}

/* ---- Stage-1 parameters ---- */

enum {
  MAX_IMAGE = 4096,
  MAX_WIDTH = 16384,
  MAX_LAYERS = 256,
  MAX_HEADS = 1024,
  MAX_FFN = 262144,
  MAX_QUERIES = 1024,
  MAX_VOCAB = 1 << 22,
  MAX_POSITIONS = 1 << 16,
};

static const char *weights_origin(reader *r) {
  static const char *const origins[] = {"lavis", "hf", "mindformers", "vlzoo", NULL};
  const char *origin = r_str_def(r, "weights_origin", "mindformers");
  if (r->st == VZ_OK && !one_of(origin, origins))
    r_fail(r, VZ_ERR_INVALID_ARGUMENT, "weights_origin '%s' is not lavis, hf, mindformers or vlzoo",
           origin);
  return origin;
}

vz_status vz_config_stage1_params(const vz_config *cfg, vz_blip2_stage1_params *out) {
  if (!cfg || !out)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "vz_config_stage1_params: NULL argument");
  memset(out, 0, sizeof *out);
  reader r = {.cfg = cfg, .st = VZ_OK};
  if (!vz_config_has(cfg, "vision_config") || !vz_config_has(cfg, "qformer_config"))
    return vz_fail(VZ_ERR_INVALID_ARGUMENT,
                   "config %s: no vision_config and qformer_config under model.model_config; not "
                   "a BLIP-2 model",
                   vz_config_name(cfg));
  const char *origin = weights_origin(&r);

  vz_vit_params *v = &out->vision;
  v->image_size = (int)r_int(&r, "vision_config.image_size", 1, MAX_IMAGE);
  v->patch_size = (int)r_int(&r, "vision_config.patch_size", 1, MAX_IMAGE);
  v->hidden_size = (int)r_int(&r, "vision_config.hidden_size", 1, MAX_WIDTH);
  v->num_layers = (int)r_int(&r, "vision_config.num_hidden_layers", 1, MAX_LAYERS);
  v->num_heads = (int)r_int(&r, "vision_config.num_attention_heads", 1, MAX_HEADS);
  v->intermediate_size = (int)r_int(&r, "vision_config.intermediate_size", 1, MAX_FFN);
  v->layer_norm_eps = (float)r_float_def(&r, "vision_config.layer_norm_eps", true, 1e-6, 0, 0.1);
  v->post_layer_norm_eps = (float)r_float_def(&r, "ln_vision_eps", true,
                                              strcmp(origin, "hf") == 0 ? 1e-6 : 1e-5, 0, 0.1);
  if (r.st == VZ_OK && v->image_size % v->patch_size != 0)
    r_fail(&r, VZ_ERR_INVALID_ARGUMENT,
           "vision_config.patch_size %d does not divide vision_config.image_size %d", v->patch_size,
           v->image_size);
  if (r.st == VZ_OK)
    v->pos_embed_grid = (int)r_int_def(&r, "vision_config.pos_embed_grid", true,
                                       v->image_size / v->patch_size, 1, MAX_IMAGE);
  if (r.st == VZ_OK && v->hidden_size % v->num_heads != 0)
    r_fail(&r, VZ_ERR_INVALID_ARGUMENT,
           "vision_config.hidden_size %d is not a multiple of num_attention_heads %d",
           v->hidden_size, v->num_heads);

  vz_qformer_params *q = &out->qformer;
  q->num_query_tokens = (int)r_int(&r, "qformer_config.query_length", 1, MAX_QUERIES);
  q->hidden_size = (int)r_int(&r, "qformer_config.hidden_size", 1, MAX_WIDTH);
  q->num_layers = (int)r_int(&r, "qformer_config.num_hidden_layers", 1, MAX_LAYERS);
  q->num_heads = (int)r_int(&r, "qformer_config.num_attention_heads", 1, MAX_HEADS);
  q->intermediate_size = (int)r_int(&r, "qformer_config.intermediate_size", 1, MAX_FFN);
  q->cross_attention_freq = (int)r_int(&r, "qformer_config.cross_attention_freq", 1, MAX_LAYERS);
  q->encoder_hidden_size = (int)r_int(&r, "qformer_config.encoder_width", 1, MAX_WIDTH);
  int64_t vocab = r_int(&r, "qformer_config.vocab_size", 1, MAX_VOCAB);
  /* MindFormers' QFormerConfig defaults: resize_token_embeddings true,
   * special_token_nums 1 ([DEC]). */
  bool resize = r_bool_def(&r, "qformer_config.resize_token_embeddings", true);
  int64_t special = r_int_def(&r, "qformer_config.special_token_nums", true, 1, 0, 1024);
  q->vocab_size = (int)(vocab + (resize ? special : 0));
  q->max_position_embeddings =
      (int)r_int(&r, "qformer_config.max_position_embeddings", 1, MAX_POSITIONS);
  q->layer_norm_eps = (float)r_float_def(&r, "qformer_config.layer_norm_eps", true, 1e-12, 0, 0.1);
  q->embed_dim = (int)r_int_def(&r, "qformer_config.head_embed_dim", true, 256, 1, MAX_WIDTH);
  /* MindFormers' bos_token_id is [DEC] (LAVIS' bos for ITG). */
  q->dec_token_id = (int)r_int_def(&r, "qformer_config.bos_token_id", true, 30522, 0, MAX_VOCAB);
  q->pad_token_id = (int)r_int_def(&r, "qformer_config.pad_token_id", true, 0, 0, MAX_VOCAB);
  /* Stage 1 embeds text: padding must have a row (stage 2 has no text
   * side). [DEC] matters only to the LM head, which checks it on loading
   * (Hugging Face configs, which have no LM head, leave bos_token_id unset). */
  if (r.st == VZ_OK && !vz_config_has(cfg, "text_config") && q->pad_token_id >= q->vocab_size)
    r_fail(&r, VZ_ERR_INVALID_ARGUMENT,
           "qformer_config.pad_token_id %d is outside the %d rows of the vocabulary "
           "(vocab_size + special_token_nums)",
           q->pad_token_id, q->vocab_size);
  if (r.st == VZ_OK && q->hidden_size % q->num_heads != 0)
    r_fail(&r, VZ_ERR_INVALID_ARGUMENT,
           "qformer_config.hidden_size %d is not a multiple of num_attention_heads %d",
           q->hidden_size, q->num_heads);
  if (r.st == VZ_OK && q->cross_attention_freq > q->num_layers)
    r_fail(&r, VZ_ERR_INVALID_ARGUMENT,
           "qformer_config.cross_attention_freq %d is more than num_hidden_layers %d",
           q->cross_attention_freq, q->num_layers);
  if (r.st == VZ_OK && q->encoder_hidden_size != v->hidden_size)
    r_fail(&r, VZ_ERR_INVALID_ARGUMENT,
           "qformer_config.encoder_width %d differs from vision_config.hidden_size %d (the "
           "cross-attention reads the ViT's output)",
           q->encoder_hidden_size, v->hidden_size);

  static const char *const poolings[] = {"max", "first_query", NULL};
  const char *arch = r_str_def(&r, "arch.type", "");
  const char *pooling =
      r_str_def(&r, "itc_pooling", strcmp(arch, "Blip2Classifier") == 0 ? "first_query" : "max");
  if (r.st == VZ_OK && !one_of(pooling, poolings))
    r_fail(&r, VZ_ERR_INVALID_ARGUMENT, "itc_pooling '%s' is not max or first_query", pooling);
  out->itc_pooling =
      strcmp(pooling, "first_query") == 0 ? VZ_ITC_FIRST_QUERY : VZ_ITC_MAX_OVER_QUERIES;
  out->default_temp = (float)r_float_def(&r, "default_temp", true, 0.07, 0, 100);

  /* The image processor must produce what the ViT takes. */
  const char *pkey = "processor.image_processor.image_size";
  vz_config_kind kind;
  if (r.st == VZ_OK && vz_config_has(cfg, pkey) && vz_config_kind_of(cfg, pkey, &kind) == VZ_OK) {
    int64_t sizes[2] = {0, 0};
    int count = 0;
    if (kind == VZ_CONFIG_SEQUENCE) {
      sizes[0] = r_int(&r, "processor.image_processor.image_size.0", 1, MAX_IMAGE);
      sizes[1] = r_int(&r, "processor.image_processor.image_size.1", 1, MAX_IMAGE);
      count = 2;
    } else {
      sizes[0] = r_int(&r, pkey, 1, MAX_IMAGE);
      count = 1;
    }
    for (int i = 0; i < count && r.st == VZ_OK; i++)
      if (sizes[i] != v->image_size)
        r_fail(&r, VZ_ERR_INVALID_ARGUMENT,
               "%s %lld differs from vision_config.image_size %d; set both", pkey,
               (long long)sizes[i], v->image_size);
  }
  if (r.st != VZ_OK)
    memset(out, 0, sizeof *out);
  return r.st;
}

/* ---- Parameter count ---- */

static uint64_t vit_count(uint64_t h, uint64_t ffn, uint64_t layers, uint64_t image,
                          uint64_t patch) {
  uint64_t grid = image / patch, tokens = grid * grid + 1;
  uint64_t embed = h * 3 * patch * patch + h + h + h * tokens; /* conv + bias, cls, pos */
  uint64_t block = 4 * h                                       /* two LayerNorms */
                   + 3 * h * h + 2 * h                         /* qkv, q_bias, v_bias */
                   + h * h + h                                 /* proj */
                   + ffn * h + ffn + h * ffn + h;              /* fc1, fc2 */
  return embed + layers * block;
}

/* Q-Former: the query path (stage 2), or everything with the text side,
 * the LM head and the ITC / ITM heads (stage 1). */
static uint64_t qformer_count(const vz_qformer_params *q, bool stage1) {
  uint64_t h = (uint64_t)q->hidden_size, f = (uint64_t)q->intermediate_size;
  uint64_t e = (uint64_t)q->encoder_hidden_size, layers = (uint64_t)q->num_layers;
  uint64_t cross_layers =
      (layers + (uint64_t)q->cross_attention_freq - 1) / (uint64_t)q->cross_attention_freq;
  uint64_t self_attn = 4 * (h * h + h) + 2 * h;
  uint64_t cross = 2 * (h * h + h) + 2 * (e * h + h) + 2 * h;
  uint64_t ffn = h * f + f + f * h + h + 2 * h;
  uint64_t n = 2 * h + (uint64_t)q->num_query_tokens * h; /* embedding LN, query tokens */
  n += layers * (self_attn + ffn) + cross_layers * cross;
  if (stage1) {
    uint64_t v = (uint64_t)q->vocab_size, d = (uint64_t)q->embed_dim;
    n += v * h + (uint64_t)q->max_position_embeddings * h; /* word, position embeddings */
    n += layers * ffn;                                     /* the text FFNs */
    n += h * h + h + 2 * h + v;                            /* LM head (decoder tied) */
    n += 2 * (h * d + d) + 2 * h + 2 + 1;                  /* vision/text proj, itm, temp */
  }
  return n;
}

static int64_t llama_ffn(int64_t hidden, int64_t multiple_of) {
  int64_t dim = 2 * (4 * hidden) / 3;
  return multiple_of * ((dim + multiple_of - 1) / multiple_of);
}

static uint64_t llm_count(reader *r, uint64_t *hidden_out) {
  static const char *const archs[] = {"llama", "baichuan", "opt", "t5", "mt5", "bloom", NULL};
  const char *arch = r_str_def(r, "text_config.architecture", NULL);
  if (r->st == VZ_OK && !one_of(arch, archs))
    r_fail(r, VZ_ERR_INVALID_ARGUMENT,
           "text_config.architecture '%s' is not llama, baichuan, opt, t5, mt5 or bloom", arch);
  uint64_t h = (uint64_t)r_int(r, "text_config.hidden_size", 1, 65536);
  uint64_t layers = (uint64_t)r_int(r, "text_config.num_layers", 1, MAX_LAYERS);
  uint64_t heads = (uint64_t)r_int(r, "text_config.num_heads", 1, MAX_HEADS);
  uint64_t v = (uint64_t)r_int(r, "text_config.vocab_size", 1, MAX_VOCAB);
  if (r->st != VZ_OK)
    return 0;
  bool llama = strcmp(arch, "llama") == 0 || strcmp(arch, "baichuan") == 0;
  bool t5 = strcmp(arch, "t5") == 0 || strcmp(arch, "mt5") == 0;
  int64_t default_ffn =
      llama ? llama_ffn((int64_t)h, r_int_def(r, "text_config.multiple_of", true, 256, 1, 65536))
            : (int64_t)(4 * h);
  uint64_t f =
      (uint64_t)r_int_def(r, "text_config.intermediate_size", true, default_ffn, 1, 1 << 20);
  bool tie = r_bool_def(r, "text_config.tie_word_embeddings",
                        strcmp(arch, "opt") == 0 || strcmp(arch, "bloom") == 0);
  uint64_t head = tie ? 0 : v * h;
  uint64_t n = 0;
  if (llama) {
    n = v * h + layers * (4 * h * h + 3 * h * f + 2 * h) + h + head;
  } else if (strcmp(arch, "opt") == 0) {
    uint64_t pos =
        (uint64_t)r_int_def(r, "text_config.max_position_embeddings", true, 2048, 1, MAX_POSITIONS);
    n = v * h + (pos + 2) * h + layers * (4 * (h * h + h) + 4 * h + h * f + f + f * h + h) + 2 * h +
        head;
  } else if (strcmp(arch, "bloom") == 0) {
    n = v * h + 2 * h +
        layers * (2 * h + 3 * h * h + 3 * h + h * h + h + 2 * h + h * f + f + f * h + h) + 2 * h +
        head;
  } else if (t5) {
    uint64_t dec = (uint64_t)r_int_def(r, "text_config.num_decoder_layers", true, (int64_t)layers,
                                       1, MAX_LAYERS);
    uint64_t dkv =
        (uint64_t)r_int_def(r, "text_config.d_kv", true, (int64_t)(h / heads), 1, MAX_WIDTH);
    uint64_t buckets =
        (uint64_t)r_int_def(r, "text_config.relative_attention_num_buckets", true, 32, 1, 1024);
    const char *ffp = r_str_def(r, "text_config.feed_forward_proj", "gated-gelu");
    uint64_t wi = strncmp(ffp, "gated", 5) == 0 ? 2 : 1;
    uint64_t inner = heads * dkv;
    uint64_t enc = layers * (4 * h * inner + h + (wi + 1) * h * f + h);
    uint64_t decs = dec * (8 * h * inner + 3 * h + (wi + 1) * h * f);
    n = v * h + enc + decs + 2 * buckets * heads + 2 * h + head;
  }
  *hidden_out = h;
  return r->st == VZ_OK ? n : 0;
}

vz_status vz_config_param_count(const vz_config *cfg, uint64_t *count) {
  if (!cfg || !count)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "vz_config_param_count: NULL argument");
  *count = 0;
  vz_blip2_stage1_params p;
  vz_status st = vz_config_stage1_params(cfg, &p);
  if (st != VZ_OK)
    return st;
  bool stage2 = vz_config_has(cfg, "text_config");
  uint64_t n = vit_count((uint64_t)p.vision.hidden_size, (uint64_t)p.vision.intermediate_size,
                         (uint64_t)p.vision.num_layers, (uint64_t)p.vision.image_size,
                         (uint64_t)p.vision.patch_size);
  n += 2 * (uint64_t)p.vision.hidden_size; /* ln_vision */
  n += qformer_count(&p.qformer, !stage2);
  if (stage2) {
    reader r = {.cfg = cfg, .st = VZ_OK};
    uint64_t llm_hidden = 0;
    uint64_t llm = llm_count(&r, &llm_hidden);
    if (r.st != VZ_OK)
      return r.st;
    n += (uint64_t)p.qformer.hidden_size * llm_hidden + llm_hidden; /* projection */
    n += llm;
  }
  *count = n;
  return VZ_OK;
}

/* ---- Weights ---- */

static bool path_exists(const char *path, bool dir_only) {
  struct stat sb;
  if (stat(path, &sb) != 0)
    return false;
  return dir_only ? S_ISDIR(sb.st_mode) : (S_ISDIR(sb.st_mode) || S_ISREG(sb.st_mode));
}

typedef struct search {
  char looked[900];
  size_t used;
  bool truncated;
  char *found;
  bool failed; /* out of memory */
} search;

/* Tries one path; records it among the places looked at. */
static bool try_path(search *s, const char *path, bool dir_only) {
  if (s->found || s->failed)
    return true;
  if (path_exists(path, dir_only)) {
    s->found = strdup(path);
    s->failed = !s->found;
    return true;
  }
  size_t room = sizeof s->looked - s->used;
  int w =
      snprintf(s->looked + s->used, room, "%s%s%s", s->used ? ", " : "", path, dir_only ? "/" : "");
  if (w < 0 || (size_t)w >= room)
    s->truncated = true;
  else
    s->used += (size_t)w;
  return false;
}

/* path = dir/name + suffix; false when that does not fit (a cut path
 * would name another file, so it is not tried). */
static bool join_path(char *path, size_t size, const char *dir, const char *name,
                      const char *suffix) {
  int n = snprintf(path, size, "%s/%s%s", dir, name, suffix);
  return n >= 0 && (size_t)n < size;
}

static void try_in_dir(search *s, const char *dir, const char *name) {
  char path[4096];
  static const char *const suffixes[] = {".ckpt", ".safetensors"};
  for (int i = 0; i < 2; i++)
    if (join_path(path, sizeof path, dir, name, suffixes[i]) && try_path(s, path, false))
      return;
  if (join_path(path, sizeof path, dir, name, ""))
    try_path(s, path, true);
}

#ifndef VLZOO_WEIGHTS_DIRS
#define VLZOO_WEIGHTS_DIRS ""
#endif

static void vlzoo_home(char *home, size_t size);

vz_status vz_config_weights_path(const vz_config *cfg, const char *explicit_weights, char **path) {
  if (!cfg || !path)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "vz_config_weights_path: NULL argument");
  *path = NULL;
  if (explicit_weights) {
    if (!path_exists(explicit_weights, false))
      return vz_fail(VZ_ERR_NOT_FOUND, "weights '%s' not found", explicit_weights);
    *path = strdup(explicit_weights);
    return *path ? VZ_OK : vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory");
  }
  search s = {.used = 0};
  const char *ckpt = NULL;
  if (vz_config_has(cfg, "checkpoint_name_or_path")) {
    vz_config_kind kind = VZ_CONFIG_NULL;
    vz_config_kind_of(cfg, "checkpoint_name_or_path", &kind);
    if (kind == VZ_CONFIG_STRING)
      vz_config_get_string(cfg, "checkpoint_name_or_path", &ckpt);
    if (ckpt && !*ckpt)
      ckpt = NULL;
  }
  char buf[4096];
  const char *dir = vz_config_dir(cfg);
  if (ckpt) {
    try_path(&s, ckpt, false);
    if (ckpt[0] != '/' && dir && strcmp(dir, ".") != 0 && strcmp(dir, ckpt) != 0) {
      snprintf(buf, sizeof buf, "%s/%s", dir, ckpt);
      try_path(&s, buf, false);
    }
  }
  /* Names looked up in the weight folders: the checkpoint's (when it is a
   * bare name) and the config's. */
  const char *names[2] = {NULL, NULL};
  int n_names = 0;
  if (ckpt && !strchr(ckpt, '/'))
    names[n_names++] = ckpt;
  if (!ckpt || strcmp(ckpt, vz_config_name(cfg)) != 0)
    names[n_names++] = vz_config_name(cfg);
  char home[2048];
  vlzoo_home(home, sizeof home);
  for (int i = 0; i < n_names && home[0]; i++)
    try_in_dir(&s, home, names[i]);
  /* Built-in folders (colon-separated at build time). */
  const char *builtin = VLZOO_WEIGHTS_DIRS;
  while (*builtin && !s.found) {
    const char *colon = strchr(builtin, ':');
    size_t len = colon ? (size_t)(colon - builtin) : strlen(builtin);
    if (len > 0 && len < sizeof buf) {
      memcpy(buf, builtin, len);
      buf[len] = '\0';
      for (int i = 0; i < n_names; i++)
        try_in_dir(&s, buf, names[i]);
    }
    builtin += len + (colon ? 1 : 0);
  }
  if (s.failed)
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory");
  if (s.found) {
    *path = s.found;
    return VZ_OK;
  }
  return vz_fail(VZ_ERR_NOT_FOUND,
                 "no weights for %s; looked at %s%s; give the weights' path (--weights) or put "
                 "them in $VLZOO_HOME (default ~/.cache/vlzoo)",
                 vz_config_name(cfg), s.used ? s.looked : "(nowhere: no name, no HOME)",
                 s.truncated ? ", ..." : "");
}

/* A tokenizer file in `dir`: the folder's vocab.txt or tokenizer.json. */
static void try_tokenizer_dir(search *s, const char *dir) {
  char path[4096];
  static const char *const files[] = {"tokenizer.json", "vocab.txt"};
  for (int i = 0; i < 2 && !s->found; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, files[i]);
    try_path(s, path, false);
  }
}

/* NAME as a file or folder inside `dir` (NAME.txt, NAME.json, NAME/...). */
static void try_tokenizer_in(search *s, const char *dir, const char *name) {
  char path[4096];
  static const char *const suffixes[] = {".json", ".txt"};
  for (int i = 0; i < 2 && !s->found; i++)
    if (join_path(path, sizeof path, dir, name, suffixes[i]))
      try_path(s, path, false);
  if (!s->found && join_path(path, sizeof path, dir, name, "") && path_exists(path, true))
    try_tokenizer_dir(s, path);
}

static void vlzoo_home(char *home, size_t size) {
  const char *env = getenv("VLZOO_HOME");
  const char *user_home = getenv("HOME");
  home[0] = '\0';
  if (env && *env)
    snprintf(home, size, "%s", env);
  else if (user_home && *user_home)
    snprintf(home, size, "%s/.cache/vlzoo", user_home);
}

vz_status vz_config_tokenizer_path(const vz_config *cfg, const char *weights_path,
                                   const char *explicit_path, char **path) {
  if (!cfg || !path)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "vz_config_tokenizer_path: NULL argument");
  *path = NULL;
  if (explicit_path) {
    if (!path_exists(explicit_path, false))
      return vz_fail(VZ_ERR_NOT_FOUND, "tokenizer '%s' not found", explicit_path);
    search s = {.used = 0};
    if (path_exists(explicit_path, true))
      try_tokenizer_dir(&s, explicit_path);
    else
      try_path(&s, explicit_path, false);
    if (s.found) {
      *path = s.found;
      return VZ_OK;
    }
    return vz_fail(VZ_ERR_NOT_FOUND, "no vocab.txt or tokenizer.json in '%s'", explicit_path);
  }
  search s = {.used = 0};
  /* A Hugging Face folder carries its tokenizer beside the weights. */
  if (weights_path && path_exists(weights_path, true))
    try_tokenizer_dir(&s, weights_path);
  const char *name = NULL;
  if (vz_config_has(cfg, "processor.tokenizer.checkpoint_name_or_path"))
    vz_config_get_string(cfg, "processor.tokenizer.checkpoint_name_or_path", &name);
  char buf[4096], home[2048];
  const char *dir = vz_config_dir(cfg);
  if (name && *name && !s.found) {
    if (path_exists(name, true))
      try_tokenizer_dir(&s, name);
    else
      try_path(&s, name, false);
    /* A bare name is looked up in the config's folder and the weight
     * folders; a path was tried as it is above. */
    bool bare = !strchr(name, '/');
    if (!s.found && bare && dir) {
      snprintf(buf, sizeof buf, "%s", dir);
      try_tokenizer_in(&s, buf, name);
    }
    vlzoo_home(home, sizeof home);
    if (!s.found && bare && home[0])
      try_tokenizer_in(&s, home, name);
    const char *builtin = bare ? VLZOO_WEIGHTS_DIRS : "";
    while (*builtin && !s.found) {
      const char *colon = strchr(builtin, ':');
      size_t len = colon ? (size_t)(colon - builtin) : strlen(builtin);
      if (len > 0 && len < sizeof buf) {
        memcpy(buf, builtin, len);
        buf[len] = '\0';
        try_tokenizer_in(&s, buf, name);
      }
      builtin += len + (colon ? 1 : 0);
    }
  }
  if (s.failed)
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory");
  if (s.found) {
    *path = s.found;
    return VZ_OK;
  }
  return vz_fail(VZ_ERR_NOT_FOUND,
                 "no tokenizer for %s; looked at %s%s; give one with --tokenizer (a vocab.txt, a "
                 "tokenizer.json or a folder holding one) or put it in $VLZOO_HOME",
                 vz_config_name(cfg), s.used ? s.looked : "(nowhere)", s.truncated ? ", ..." : "");
}

/* ---- Memory ---- */

/* "123", "1.5G", "512MiB", "2 GB" (binary multiples). */
static bool parse_size(const char *text, uint64_t *out) {
  char *end = NULL;
  errno = 0;
  double v = strtod(text, &end);
  if (end == text || errno || !(v >= 0))
    return false;
  while (*end == ' ')
    end++;
  static const char units[] = "KMGT";
  double scale = 1;
  const char *unit = *end ? strchr(units, toupper((unsigned char)*end)) : NULL;
  if (unit) {
    for (const char *u = units; u <= unit; u++)
      scale *= 1024.0;
    end++;
    if (*end == 'i')
      end++;
  }
  if (toupper((unsigned char)*end) == 'B')
    end++;
  if (*end)
    return false;
  double bytes = v * scale;
  if (bytes >= 1.8e19)
    return false;
  *out = (uint64_t)bytes;
  return true;
}

vz_status vz_available_memory(uint64_t *bytes) {
  if (!bytes)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "vz_available_memory: NULL argument");
  uint64_t avail = 0;
  bool known = false;
  FILE *f = fopen("/proc/meminfo", "r");
  if (f) {
    char line[256];
    while (fgets(line, sizeof line, f)) {
      unsigned long long kb = 0;
      if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) {
        avail = (uint64_t)kb * 1024;
        known = true;
        break;
      }
    }
    fclose(f);
  }
#ifdef _SC_AVPHYS_PAGES
  if (!known) {
    long pages = sysconf(_SC_AVPHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages > 0 && page > 0) {
      avail = (uint64_t)pages * (uint64_t)page;
      known = true;
    }
  }
#endif
  const char *limit = getenv("VLZOO_MEMORY_LIMIT");
  if (limit && *limit) {
    uint64_t cap = 0;
    if (!parse_size(limit, &cap))
      return vz_fail(VZ_ERR_INVALID_ARGUMENT,
                     "VLZOO_MEMORY_LIMIT='%s' is not a size (bytes, or with K, M, G or T)", limit);
    if (!known || cap < avail)
      avail = cap;
    known = true;
  }
  if (!known)
    return vz_fail(VZ_ERR_UNSUPPORTED,
                   "cannot tell the available memory here (no /proc/meminfo); set "
                   "VLZOO_MEMORY_LIMIT");
  *bytes = avail;
  return VZ_OK;
}

static double gib(uint64_t bytes) { return (double)bytes / (1024.0 * 1024.0 * 1024.0); }

vz_status vz_config_check_memory(const vz_config *cfg, vz_dtype weight_dtype,
                                 uint64_t available_bytes, uint64_t *needed_bytes) {
  if (!cfg)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "vz_config_check_memory: NULL config");
  size_t size = vz_dtype_size(weight_dtype);
  if (!size || !vz_dtype_is_float(weight_dtype))
    return vz_fail(VZ_ERR_DTYPE, "weights are loaded as f32, f16, bf16 or f64, not %s",
                   vz_dtype_name(weight_dtype));
  uint64_t params = 0;
  vz_status st = vz_config_param_count(cfg, &params);
  if (st != VZ_OK)
    return st;
  uint64_t need = params * size;
  need += need / 10; /* activations, buffers */
  if (needed_bytes)
    *needed_bytes = need;
  if (available_bytes == 0 && (st = vz_available_memory(&available_bytes)) != VZ_OK)
    return st;
  if (need <= available_bytes)
    return VZ_OK;
  char hint[256] = "";
  if (size > 2) {
    uint64_t half = params * 2 + params * 2 / 10;
    if (half <= available_bytes)
      snprintf(hint, sizeof hint, "; as bf16 or f16 it needs %.1f GiB, which fits", gib(half));
    else
      snprintf(hint, sizeof hint, "; even as bf16 or f16 it needs %.1f GiB", gib(half));
  }
  return vz_fail(VZ_ERR_OUT_OF_MEMORY,
                 "%s needs about %.1f GiB (%.3g billion parameters as %s, plus 10 %%) but %.1f "
                 "GiB of memory is available%s",
                 vz_config_name(cfg), gib(need), (double)params / 1e9, vz_dtype_name(weight_dtype),
                 gib(available_bytes), hint);
}

/* vlzoo embed: BLIP-2 stage-1 features of an image and/or a text, their
 * ITC similarity and ITM logits: how anyone checks vlzoo against another
 * implementation without writing C. */
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/internal.h"
#include "tools/commands.h"
#include "vlzoo/vlzoo.h"

enum { MAX_OVERRIDES = 64 };

typedef struct embed_args {
  const char *model, *weights, *tokenizer, *image, *text, *device;
  const char *overrides[MAX_OVERRIDES];
  int n_overrides;
  vz_dtype dtype;
  bool json;
} embed_args;

static void usage(FILE *to) {
  fprintf(to, "usage: vlzoo embed --model NAME|FILE.yaml|HF_FOLDER [--weights PATH] [--image P]\n"
              "                   [--text T] [--tokenizer PATH] [--dtype f32|bf16|f16]\n"
              "                   [--device cpu|opencl] [--set KEY=VALUE ...] [--json]\n\n"
              "Prints BLIP-2 stage-1 features: the normalized image query embeddings (Q x E, e.g.\n"
              "32 x 256) for --image, the normalized text embedding (E) for --text, and with both\n"
              "the ITC similarity (as the config's itc_pooling says) and the ITM logits\n"
              "[no match, match]. At least one of --image and --text is needed.\n\n"
              "  --model      a zoo name (vlzoo list), a YAML file or a Hugging Face folder\n"
              "  --weights    the checkpoint, when not where the config says (vlzoo show NAME)\n"
              "  --tokenizer  vocab.txt, tokenizer.json or a folder with one (default: from the\n"
              "               config: processor.tokenizer.checkpoint_name_or_path)\n"
              "  --dtype      matmul weights in f32 (default), bf16 or f16\n"
              "  --set        override a config value, as in vlzoo show\n"
              "  --json       one JSON object: image_embeds, text_embed, itc, itm_logits\n");
}

static int bad_usage(const char *message, const char *arg) {
  fprintf(stderr, "vlzoo embed: %s%s\n(see 'vlzoo embed --help')\n", message, arg ? arg : "");
  return 2;
}

static int parse_args(int argc, char **argv, embed_args *a) {
  *a = (embed_args){.dtype = VZ_F32};
  for (int i = 1; i < argc; i++) {
    const char *opt = argv[i];
    if (strcmp(opt, "--help") == 0 || strcmp(opt, "-h") == 0) {
      usage(stdout);
      return -1;
    }
    if (strcmp(opt, "--json") == 0) {
      a->json = true;
      continue;
    }
    if (i + 1 >= argc)
      return bad_usage("missing value after ", opt);
    const char *value = argv[++i];
    if (strcmp(opt, "--model") == 0)
      a->model = value;
    else if (strcmp(opt, "--weights") == 0)
      a->weights = value;
    else if (strcmp(opt, "--tokenizer") == 0)
      a->tokenizer = value;
    else if (strcmp(opt, "--image") == 0)
      a->image = value;
    else if (strcmp(opt, "--text") == 0)
      a->text = value;
    else if (strcmp(opt, "--device") == 0)
      a->device = value;
    else if (strcmp(opt, "--set") == 0) {
      if (a->n_overrides == MAX_OVERRIDES)
        return bad_usage("too many --set options", NULL);
      if (!strchr(value, '='))
        return bad_usage("--set takes KEY=VALUE, not ", value);
      a->overrides[a->n_overrides++] = value;
    } else if (strcmp(opt, "--dtype") == 0) {
      if (vz_dtype_from_name(value, &a->dtype) != VZ_OK ||
          (a->dtype != VZ_F32 && a->dtype != VZ_BF16 && a->dtype != VZ_F16))
        return bad_usage("--dtype must be f32, bf16 or f16, not ", value);
    } else {
      return bad_usage("unknown option ", opt);
    }
  }
  if (!a->model)
    return bad_usage("no model given (--model NAME)", NULL);
  if (!a->image && !a->text)
    return bad_usage("nothing to embed: give --image, --text or both", NULL);
  return 0;
}

/* Everything one run holds; released by session_free in any state. */
typedef struct session {
  vz_backend *be;
  vz_config *cfg;
  vz_blip2_stage1 *model;
  vz_bert_tokenizer *tok;
  vz_tensor *pixels, *image_embeds, *queries, *image_features;
  vz_tensor *ids, *mask, *text_features, *itc, *itm;
} session;

static void session_free(session *s) {
  vz_tensor *tensors[] = {s->pixels,         s->image_embeds, s->queries,
                          s->image_features, s->ids,          s->mask,
                          s->text_features,  s->itc,          s->itm};
  for (size_t i = 0; i < sizeof tensors / sizeof tensors[0]; i++)
    vz_tensor_free(tensors[i]);
  vz_bert_tokenizer_free(s->tok);
  vz_blip2_stage1_free(s->model);
  vz_config_free(s->cfg);
  vz_backend_free(s->be);
}

static vz_status get_floats(const vz_config *cfg, const char *key, float out[3]) {
  char path[128];
  for (int i = 0; i < 3; i++) {
    double v;
    snprintf(path, sizeof path, "%s.%d", key, i);
    vz_status st = vz_config_get_float(cfg, path, &v);
    if (st != VZ_OK)
      return st;
    out[i] = (float)v;
  }
  return VZ_OK;
}

static vz_status embed_image(session *s, const char *path) {
  int64_t size;
  float mean[3], std[3];
  vz_status st = vz_config_get_int(s->cfg, "processor.image_processor.image_size", &size);
  if (st == VZ_OK)
    st = get_floats(s->cfg, "processor.image_processor.mean", mean);
  if (st == VZ_OK)
    st = get_floats(s->cfg, "processor.image_processor.std", std);
  vz_image *img = NULL;
  if (st == VZ_OK)
    st = vz_image_load(path, &img);
  if (st == VZ_OK)
    st = vz_image_to_tensor(img, (int)size, mean, std, s->be, &s->pixels);
  vz_image_free(img);
  if (st == VZ_OK)
    st = vz_blip2_image_embeds(s->model, s->pixels, &s->image_embeds);
  if (st == VZ_OK)
    st = vz_blip2_query_output(s->model, s->image_embeds, &s->queries);
  if (st == VZ_OK)
    st = vz_blip2_image_features(s->model, s->queries, &s->image_features);
  return st;
}

static vz_status embed_text(session *s, const char *tokenizer, const char *text) {
  char *tok_path = NULL;
  vz_status st = vz_config_tokenizer_path(s->cfg, NULL, tokenizer, &tok_path);
  if (st == VZ_OK)
    st = vz_bert_tokenizer_load(tok_path, &s->tok);
  free(tok_path);
  int64_t max_len = 32;
  if (st == VZ_OK && vz_config_has(s->cfg, "max_txt_len"))
    st = vz_config_get_int(s->cfg, "max_txt_len", &max_len);
  if (st != VZ_OK)
    return st;
  if (max_len < 2 || max_len > 4096)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "max_txt_len %lld is outside 2..4096",
                   (long long)max_len);
  int32_t ids[4096], mask[4096];
  int n = (int)max_len;
  vz_bert_encode_options opts = VZ_BERT_ENCODE_OPTIONS_INIT;
  opts.max_length = (int)max_len;
  opts.truncation = true;
  if ((st = vz_bert_encode(s->tok, text, &opts, ids, mask, &n)) != VZ_OK)
    return st;
  int64_t shape[2] = {1, n};
  st = vz_tensor_from_host(s->be, VZ_I32, 2, shape, ids, (size_t)n * 4, &s->ids);
  if (st == VZ_OK)
    st = vz_tensor_from_host(s->be, VZ_I32, 2, shape, mask, (size_t)n * 4, &s->mask);
  if (st == VZ_OK)
    st = vz_blip2_text_features(s->model, s->ids, s->mask, &s->text_features);
  return st;
}

/* A tensor's f32 values as a JSON array, nested by its shape. */
static json_object *json_values(const float *v, const int64_t *shape, int ndim) {
  json_object *arr = json_object_new_array();
  if (ndim == 1) {
    for (int64_t i = 0; i < shape[0]; i++)
      json_object_array_add(arr, json_object_new_double((double)v[i]));
    return arr;
  }
  int64_t inner = 1;
  for (int d = 1; d < ndim; d++)
    inner *= shape[d];
  for (int64_t i = 0; i < shape[0]; i++)
    json_object_array_add(arr, json_values(v + i * inner, shape + 1, ndim - 1));
  return arr;
}

/* Adds `key`: the tensor's values without its leading batch dimension. */
static vz_status add_tensor(json_object *obj, const char *key, const vz_tensor *t) {
  float *v = malloc(vz_tensor_nbytes(t));
  if (!v)
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory");
  vz_status st = vz_tensor_to_host(t, v, vz_tensor_nbytes(t));
  if (st == VZ_OK)
    json_object_object_add(obj, key, json_values(v, t->shape + 1, t->ndim - 1));
  free(v);
  return st;
}

static vz_status add_scalar(json_object *obj, const char *key, const vz_tensor *t) {
  float v;
  vz_status st = vz_tensor_to_host(t, &v, sizeof v);
  if (st == VZ_OK)
    json_object_object_add(obj, key, json_object_new_double((double)v));
  return st;
}

/* The readable report: sizes, a few leading values, the scores. */
static void print_text(json_object *obj) {
  json_object *v;
  if (json_object_object_get_ex(obj, "image_embeds", &v)) {
    size_t q = json_object_array_length(v);
    json_object *row = json_object_array_get_idx(v, 0);
    printf("image_embeds: %zu x %zu, query 0 starts", q, json_object_array_length(row));
    for (size_t i = 0; i < 4 && i < json_object_array_length(row); i++)
      printf(" %.6f", json_object_get_double(json_object_array_get_idx(row, i)));
    printf("\n");
  }
  if (json_object_object_get_ex(obj, "text_embed", &v)) {
    printf("text_embed: %zu, starts", json_object_array_length(v));
    for (size_t i = 0; i < 4 && i < json_object_array_length(v); i++)
      printf(" %.6f", json_object_get_double(json_object_array_get_idx(v, i)));
    printf("\n");
  }
  if (json_object_object_get_ex(obj, "itc", &v))
    printf("itc: %.6f\n", json_object_get_double(v));
  if (json_object_object_get_ex(obj, "itm_logits", &v)) {
    double no = json_object_get_double(json_object_array_get_idx(v, 0));
    double yes = json_object_get_double(json_object_array_get_idx(v, 1));
    printf("itm_logits: [%.6f, %.6f] (match probability %.4f)\n", no, yes,
           1.0 / (1.0 + exp(no - yes)));
  }
}

static vz_status run(const embed_args *a, session *s, json_object *result) {
  vz_status st = vz_backend_create(a->device, &s->be);
  vz_load_options opts = {.weights = a->weights,
                          .overrides = a->overrides,
                          .n_overrides = a->n_overrides,
                          .weight_dtype = a->dtype};
  if (st == VZ_OK)
    st = vz_blip2_stage1_from_pretrained(a->model, &opts, s->be, &s->model, &s->cfg);
  if (st == VZ_OK && a->image)
    st = embed_image(s, a->image);
  if (st == VZ_OK && a->text)
    st = embed_text(s, a->tokenizer, a->text);
  if (st == VZ_OK && a->image && a->text) {
    st = vz_blip2_itc(s->model, s->image_features, s->text_features, &s->itc);
    if (st == VZ_OK)
      st = vz_blip2_itm_logits(s->model, s->image_embeds, s->ids, s->mask, &s->itm);
  }
  if (st == VZ_OK && s->image_features)
    st = add_tensor(result, "image_embeds", s->image_features);
  if (st == VZ_OK && s->text_features)
    st = add_tensor(result, "text_embed", s->text_features);
  if (st == VZ_OK && s->itc)
    st = add_scalar(result, "itc", s->itc);
  if (st == VZ_OK && s->itm)
    st = add_tensor(result, "itm_logits", s->itm);
  return st;
}

int vz_cmd_embed(int argc, char **argv) {
  embed_args a;
  int usage_status = parse_args(argc, argv, &a);
  if (usage_status)
    return usage_status < 0 ? 0 : usage_status;
  session s = {0};
  json_object *result = json_object_new_object();
  vz_status st = run(&a, &s, result);
  if (st == VZ_OK) {
    if (a.json)
      printf("%s\n", json_object_to_json_string_ext(result, JSON_C_TO_STRING_PLAIN));
    else
      print_text(result);
  } else {
    fprintf(stderr, "vlzoo embed: %s\n", vz_last_error());
  }
  json_object_put(result);
  session_free(&s);
  return st == VZ_OK ? 0 : 1;
}

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
#include "tools/model_args.h"
#include "vlzoo/vlzoo.h"

typedef struct embed_args {
  vz_model_args m;
  const char *image, *text;
} embed_args;

static void usage(FILE *to) {
  fprintf(to, "usage: vlzoo embed --model NAME|FILE.yaml|HF_FOLDER [--weights PATH] [--image P]\n"
              "                   [--text T] [--tokenizer PATH] [--dtype f32|bf16|f16]\n"
              "                   [--device cpu|opencl] [--set KEY=VALUE ...] [--json]\n\n"
              "Prints BLIP-2 stage-1 features: the normalized image query embeddings (Q x E, e.g.\n"
              "32 x 256) for --image, the normalized text embedding (E) for --text, and with both\n"
              "the ITC similarity (as the config's itc_pooling says) and the ITM logits\n"
              "[no match, match]. At least one of --image and --text is needed.\n\n");
  vz_model_args_usage(to);
  fprintf(to, "\nWith --json: one object with image_embeds, text_embed, itc, itm_logits.\n");
}

static int parse_args(int argc, char **argv, embed_args *a) {
  *a = (embed_args){.m = {.command = "embed", .dtype = VZ_F32}};
  for (int i = 1; i < argc; i++) {
    const char *opt = argv[i], *value = NULL;
    switch (vz_model_args_next(argc, argv, &i, &a->m, &value)) {
    case VZ_ARG_HELP: usage(stdout); return -1;
    case VZ_ARG_BAD: return 2;
    case VZ_ARG_SHARED: continue;
    case VZ_ARG_OWN: break;
    }
    if (strcmp(opt, "--image") == 0)
      a->image = value;
    else if (strcmp(opt, "--text") == 0)
      a->text = value;
    else
      return vz_bad_usage("embed", "unknown option ", opt);
  }
  if (!a->m.model)
    return vz_bad_usage("embed", "no model given (--model NAME)", NULL);
  if (!a->image && !a->text)
    return vz_bad_usage("embed", "nothing to embed: give --image, --text or both", NULL);
  return 0;
}

/* Everything one run holds; released by session_free in any state. */
typedef struct session {
  vz_model_session run;
  vz_tensor *pixels, *image_embeds, *queries, *image_features;
  vz_tensor *ids, *mask, *text_features, *itc, *itm;
} session;

static void session_free(session *s) {
  vz_tensor *tensors[] = {s->pixels,         s->image_embeds, s->queries,
                          s->image_features, s->ids,          s->mask,
                          s->text_features,  s->itc,          s->itm};
  for (size_t i = 0; i < sizeof tensors / sizeof tensors[0]; i++)
    vz_tensor_free(tensors[i]);
  vz_model_session_close(&s->run);
}

static vz_status embed_image(session *s, const char *path) {
  vz_stage1_pipeline *p = s->run.pipeline;
  const vz_blip2_stage1 *m = vz_stage1_pipeline_model(p);
  vz_status st = vz_pipeline_pixels(p, &path, 1, &s->pixels);
  if (st == VZ_OK)
    st = vz_blip2_image_embeds(m, s->pixels, &s->image_embeds);
  if (st == VZ_OK)
    st = vz_blip2_query_output(m, s->image_embeds, &s->queries);
  if (st == VZ_OK)
    st = vz_blip2_image_features(m, s->queries, &s->image_features);
  return st;
}

static vz_status embed_text(session *s, const char *text) {
  vz_stage1_pipeline *p = s->run.pipeline;
  /* The length the model was trained with (max_txt_len), as LAVIS encodes. */
  int64_t max_len = 32;
  vz_status st = VZ_OK;
  if (vz_config_has(vz_stage1_pipeline_config(p), "max_txt_len"))
    st = vz_config_get_int(vz_stage1_pipeline_config(p), "max_txt_len", &max_len);
  if (st != VZ_OK)
    return st;
  if (max_len < 2 || max_len > 4096)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "max_txt_len %lld is outside 2..4096",
                   (long long)max_len);
  const vz_text_options opts = {.max_length = (int)max_len};
  st = vz_pipeline_tokenize(p, &text, 1, &opts, &s->ids, &s->mask);
  if (st == VZ_OK)
    st = vz_blip2_text_features(vz_stage1_pipeline_model(p), s->ids, s->mask, &s->text_features);
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
  vz_status st = vz_model_session_open(&a->m, &s->run);
  if (st == VZ_OK && a->image)
    st = embed_image(s, a->image);
  if (st == VZ_OK && a->text)
    st = embed_text(s, a->text);
  if (st == VZ_OK && a->image && a->text) {
    const vz_blip2_stage1 *m = vz_stage1_pipeline_model(s->run.pipeline);
    st = vz_blip2_itc(m, s->image_features, s->text_features, &s->itc);
    if (st == VZ_OK)
      st = vz_blip2_itm_logits(m, s->image_embeds, s->ids, s->mask, &s->itm);
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
    if (a.m.json)
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

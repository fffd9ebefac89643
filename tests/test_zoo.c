/* The zoo's configurations: every name loads, validates and round-trips
 * through the emitter; the stage-1 parameters are the reference numbers;
 * parameter counts match the reference's totals; overrides, getters,
 * suggestions, malformed YAML and JSON (with line numbers), Hugging Face
 * and MindFormers-style folders, weight resolution and the memory check. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp, setenv */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/test_util.h"
#include "vlzoo/zoo.h"

static char tmpdir[256];

static void write_text(const char *name, const char *text, char *path, size_t size) {
  snprintf(path, size, "%s/%s", tmpdir, name);
  FILE *f = fopen(path, "wb");
  if (!f) {
    fprintf(stderr, "cannot write %s\n", path);
    exit(1);
  }
  fwrite(text, 1, strlen(text), f);
  fclose(f);
}

static bool contains(const char *text, const char *part) {
  bool ok = strstr(text, part) != NULL;
  if (!ok)
    fprintf(stderr, "  '%s' not found in: %s\n", part, text);
  return ok;
}

static int64_t get_int(const vz_config *cfg, const char *key) {
  int64_t v = -12345;
  CHECK_OK(vz_config_get_int(cfg, key, &v));
  return v;
}

static const char *get_str(const vz_config *cfg, const char *key) {
  const char *v = "";
  CHECK_OK(vz_config_get_string(cfg, key, &v));
  return v;
}

static bool same_params(const vz_blip2_stage1_params *a, const vz_blip2_stage1_params *b) {
  return memcmp(&a->vision, &b->vision, sizeof a->vision) == 0 &&
         memcmp(&a->qformer, &b->qformer, sizeof a->qformer) == 0 &&
         a->itc_pooling == b->itc_pooling && a->default_temp == b->default_temp;
}

/* Every name: loads, validates, round-trips emitter -> parser -> emitter. */
static void test_every_name(void) {
  int count = 0;
  for (const char *const *name = vz_zoo_names(); *name; name++, count++) {
    vz_config *cfg = NULL;
    CHECK_OK(vz_config_load(*name, &cfg));
    if (!cfg)
      continue;
    CHECK(strcmp(vz_config_name(cfg), *name) == 0);
    CHECK(strcmp(vz_config_source(cfg), "zoo") == 0);
    CHECK(vz_zoo_description(*name) &&
          strcmp(get_str(cfg, "description"), vz_zoo_description(*name)) == 0);
    vz_blip2_stage1_params p, p2;
    uint64_t params = 0, params2 = 0;
    CHECK_OK(vz_config_stage1_params(cfg, &p));
    CHECK_OK(vz_config_param_count(cfg, &params));
    CHECK(params > 0);
    char *text = NULL, *text2 = NULL;
    CHECK_OK(vz_config_to_yaml(cfg, &text));
    vz_config *again = NULL;
    if (text)
      CHECK_OK(vz_config_parse(text, strlen(text), *name, &again));
    if (again) {
      CHECK_OK(vz_config_to_yaml(again, &text2));
      CHECK(text2 && strcmp(text, text2) == 0);
      CHECK_OK(vz_config_stage1_params(again, &p2));
      CHECK(same_params(&p, &p2));
      CHECK_OK(vz_config_param_count(again, &params2));
      CHECK(params == params2);
      /* Kinds survive: floats stay floats, strings stay strings. */
      vz_config_kind k = VZ_CONFIG_NULL;
      CHECK_OK(vz_config_kind_of(again, "ln_vision_eps", &k));
      CHECK(k == VZ_CONFIG_FLOAT);
      CHECK_OK(vz_config_kind_of(again, "processor.image_processor.mean.0", &k));
      CHECK(k == VZ_CONFIG_FLOAT);
      CHECK_OK(vz_config_kind_of(again, "pipeline.task", &k));
      CHECK(k == VZ_CONFIG_STRING);
    }
    /* The emitted YAML carries what the consumers read. */
    CHECK(text && contains(text, "model_config:") && contains(text, "weights_origin:"));
    free(text);
    free(text2);
    vz_config_free(again);
    vz_config_free(cfg);
  }
  CHECK(count == 13);
  const char *expected[] = {"blip2_stage1_vit_g",
                            "blip2_stage1_evaluator",
                            "blip2_stage1_classification",
                            "itt_blip2_stage2_vit_g_llama_7b",
                            "itt_blip2_stage2_vit_g_baichuan_7b",
                            "mblip_mt0_xl",
                            "mblip_bloomz_7b",
                            "blip2_opt_2.7b",
                            "blip2_flan_t5_xl",
                            "vl_llama_7b",
                            "vl_vicuna_7b",
                            "blip2_tiny_shapes",
                            "itt_blip2_tiny_shapes_llama"};
  for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++) {
    const char *text = NULL;
    size_t size = 0;
    CHECK_OK(vz_zoo_yaml(expected[i], &text, &size));
    CHECK(text && size > 100);
  }
}

static void test_stage1_reference(void) {
  vz_config *cfg = NULL;
  CHECK_OK(vz_config_load("blip2_stage1_vit_g", &cfg));
  if (!cfg)
    return;
  vz_blip2_stage1_params p;
  CHECK_OK(vz_config_stage1_params(cfg, &p));
  CHECK(p.vision.hidden_size == 1408);
  CHECK(p.vision.num_layers == 39);
  CHECK(p.vision.num_heads == 16);
  CHECK(p.vision.intermediate_size == 6144);
  CHECK(p.vision.patch_size == 14);
  CHECK(p.vision.image_size == 224);
  CHECK(p.vision.pos_embed_grid == 16);
  CHECK(p.vision.layer_norm_eps == 1e-6f);
  CHECK(p.vision.post_layer_norm_eps == 1e-5f); /* lavis origin */
  CHECK(p.qformer.hidden_size == 768);
  CHECK(p.qformer.num_layers == 12);
  CHECK(p.qformer.num_heads == 12);
  CHECK(p.qformer.intermediate_size == 3072);
  CHECK(p.qformer.num_query_tokens == 32);
  CHECK(p.qformer.cross_attention_freq == 2);
  CHECK(p.qformer.encoder_hidden_size == 1408);
  CHECK(p.qformer.vocab_size == 30523);
  CHECK(p.qformer.max_position_embeddings == 512);
  CHECK(p.qformer.layer_norm_eps == 1e-12f);
  CHECK(p.qformer.embed_dim == 256);
  CHECK(p.qformer.dec_token_id == 30522);
  CHECK(p.qformer.pad_token_id == 0);
  CHECK(p.itc_pooling == VZ_ITC_MAX_OVER_QUERIES);
  CHECK(p.default_temp == 0.07f);
  vz_config_free(cfg);

  /* Pooling and ln_vision eps per configuration. */
  struct {
    const char *name;
    vz_itc_pooling pooling;
    float ln_eps;
  } cases[] = {
      {"blip2_stage1_vit_g", VZ_ITC_MAX_OVER_QUERIES, 1e-5f},
      {"blip2_stage1_evaluator", VZ_ITC_MAX_OVER_QUERIES, 1e-5f},
      {"blip2_stage1_classification", VZ_ITC_FIRST_QUERY, 1e-5f},
      {"itt_blip2_stage2_vit_g_llama_7b", VZ_ITC_MAX_OVER_QUERIES, 1e-5f},
      {"itt_blip2_stage2_vit_g_baichuan_7b", VZ_ITC_MAX_OVER_QUERIES, 1e-5f},
      {"vl_llama_7b", VZ_ITC_MAX_OVER_QUERIES, 1e-5f},
      {"vl_vicuna_7b", VZ_ITC_MAX_OVER_QUERIES, 1e-5f},
      {"blip2_opt_2.7b", VZ_ITC_MAX_OVER_QUERIES, 1e-6f},
      {"blip2_flan_t5_xl", VZ_ITC_MAX_OVER_QUERIES, 1e-6f},
      {"mblip_mt0_xl", VZ_ITC_MAX_OVER_QUERIES, 1e-6f},
      {"mblip_bloomz_7b", VZ_ITC_MAX_OVER_QUERIES, 1e-6f},
      {"blip2_tiny_shapes", VZ_ITC_MAX_OVER_QUERIES, 1e-5f},
      {"itt_blip2_tiny_shapes_llama", VZ_ITC_MAX_OVER_QUERIES, 1e-5f},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    cfg = NULL;
    CHECK_OK(vz_config_load(cases[i].name, &cfg));
    if (!cfg)
      continue;
    CHECK_OK(vz_config_stage1_params(cfg, &p));
    if (p.itc_pooling != cases[i].pooling || p.vision.post_layer_norm_eps != cases[i].ln_eps) {
      fprintf(stderr, "%s: pooling %d, ln_vision eps %g\n", cases[i].name, (int)p.itc_pooling,
              p.vision.post_layer_norm_eps);
      test_failures++;
    }
    vz_config_free(cfg);
  }

  /* The tiny model of the repository. */
  cfg = NULL;
  CHECK_OK(vz_config_load("blip2_tiny_shapes", &cfg));
  if (cfg) {
    CHECK_OK(vz_config_stage1_params(cfg, &p));
    CHECK(p.vision.image_size == 96 && p.vision.patch_size == 8 && p.vision.hidden_size == 128);
    CHECK(p.vision.num_layers == 4 && p.vision.num_heads == 4 && p.vision.intermediate_size == 512);
    CHECK(p.vision.pos_embed_grid == 12);
    CHECK(p.qformer.hidden_size == 128 && p.qformer.num_layers == 4 && p.qformer.num_heads == 4);
    CHECK(p.qformer.num_query_tokens == 16 && p.qformer.cross_attention_freq == 2);
    CHECK(p.qformer.encoder_hidden_size == 128 && p.qformer.embed_dim == 128);
    CHECK(p.qformer.vocab_size == 30523);
    CHECK(strcmp(get_str(cfg, "checkpoint_name_or_path"), "blip2_tiny_shapes") == 0);
    vz_config_free(cfg);
  }
  cfg = NULL;
  CHECK_OK(vz_config_load("itt_blip2_tiny_shapes_llama", &cfg));
  if (cfg) {
    CHECK(get_int(cfg, "text_config.hidden_size") == 256);
    CHECK(get_int(cfg, "text_config.num_layers") == 4);
    CHECK(get_int(cfg, "text_config.num_heads") == 4);
    CHECK(get_int(cfg, "text_config.vocab_size") == 32000);
    vz_config_free(cfg);
  }
}

/* Parameter totals of reference section 11 (LAVIS layout). */
static void test_param_counts(void) {
  struct {
    const char *name;
    uint64_t params;
  } cases[] = {
      {"blip2_stage1_vit_g", 1172599998ull},
      {"blip2_opt_2.7b", 3744625024ull + 81920ull}, /* hub vocab 50304 */
      {"blip2_flan_t5_xl", 3942391680ull},
      {"mblip_mt0_xl", 4835254144ull},
      {"mblip_bloomz_7b", 8163225472ull},
      {"itt_blip2_stage2_vit_g_llama_7b", 7832625024ull},
      {"itt_blip2_stage2_vit_g_baichuan_7b", 8094769024ull + 2 * 4096ull}, /* vocab 64001 */
      {"vl_llama_7b", 7832625024ull},
      {"vl_vicuna_7b", 7832625024ull},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    vz_config *cfg = NULL;
    uint64_t n = 0;
    CHECK_OK(vz_config_load(cases[i].name, &cfg));
    CHECK_OK(vz_config_param_count(cfg, &n));
    if (n != cases[i].params) {
      fprintf(stderr, "%s: %llu parameters, expected %llu\n", cases[i].name, (unsigned long long)n,
              (unsigned long long)cases[i].params);
      test_failures++;
    }
    vz_config_free(cfg);
  }
}

static void test_overrides(void) {
  vz_config *cfg = NULL;
  CHECK_OK(vz_config_load("blip2_stage1_vit_g", &cfg));
  if (!cfg)
    return;
  /* Dotted keys: relative to model.model_config, from the root, or under model. */
  CHECK(get_int(cfg, "qformer_config.query_length") == 32);
  CHECK(get_int(cfg, "model.model_config.qformer_config.query_length") == 32);
  CHECK(strcmp(get_str(cfg, "arch.type"), "Blip2Qformer") == 0);
  CHECK(strcmp(get_str(cfg, "model.arch.type"), "Blip2Qformer") == 0);
  CHECK(get_int(cfg, "processor.image_processor.image_size") == 224);
  double mean1 = 0;
  CHECK_OK(vz_config_get_float(cfg, "processor.image_processor.mean.1", &mean1));
  CHECK(mean1 == 0.4578275);
  size_t len = 0;
  CHECK_OK(vz_config_get_length(cfg, "processor.image_processor.std", &len));
  CHECK(len == 3);
  CHECK(vz_config_has(cfg, "vision_config.hidden_size"));
  CHECK(!vz_config_has(cfg, "vision_config.hidden_sizes"));
  CHECK(!vz_config_has(cfg, "processor.image_processor.mean.3"));
  CHECK(!vz_config_has(cfg, "a..b"));
  double eps = 0;
  CHECK_OK(vz_config_get_float(cfg, "qformer_config.layer_norm_eps", &eps));
  CHECK(eps == 1e-12);
  bool flag = false;
  CHECK_OK(vz_config_get_bool(cfg, "vision_config.qkv_bias", &flag));
  CHECK(flag);

  /* Typed by the existing value. */
  CHECK_OK(vz_config_set(cfg, "qformer_config.query_length", "16"));
  CHECK(get_int(cfg, "qformer_config.query_length") == 16);
  CHECK_OK(vz_config_set_override(cfg, "ln_vision_eps=1e-6"));
  CHECK_OK(vz_config_set(cfg, "default_temp", "1"));
  CHECK_OK(vz_config_set(cfg, "vision_config.qkv_bias", "False"));
  CHECK_OK(vz_config_set(cfg, "pipeline.hypothesis_template", "yes"));
  CHECK_OK(vz_config_set(cfg, "processor.tokenizer.pad_token", "32"));
  CHECK_OK(vz_config_set(cfg, "processor.image_processor.mean", "[0.5, 1, 0.25]"));
  CHECK_OK(vz_config_set(cfg, "processor.image_processor.std.2", "0.5"));
  vz_blip2_stage1_params p;
  CHECK_OK(vz_config_stage1_params(cfg, &p));
  CHECK(p.qformer.num_query_tokens == 16);
  CHECK(p.vision.post_layer_norm_eps == 1e-6f);
  CHECK(p.default_temp == 1.0f);
  char *text = NULL;
  CHECK_OK(vz_config_to_yaml(cfg, &text));
  if (text) {
    CHECK(contains(text, "query_length: 16\n"));
    CHECK(contains(text, "ln_vision_eps: 1.0e-6\n"));
    CHECK(contains(text, "default_temp: 1.0\n"));
    CHECK(contains(text, "qkv_bias: false\n"));
    CHECK(contains(text, "hypothesis_template: \"yes\"\n"));
    CHECK(contains(text, "pad_token: \"32\"\n"));
    CHECK(contains(text, "mean: [0.5, 1.0, 0.25]\n"));
    CHECK(contains(text, "std: [0.26862954, 0.26130258, 0.5]\n"));
    vz_config *again = NULL;
    CHECK_OK(vz_config_parse(text, strlen(text), "again.yaml", &again));
    if (again) {
      CHECK(strcmp(get_str(again, "pipeline.hypothesis_template"), "yes") == 0);
      CHECK(strcmp(get_str(again, "processor.tokenizer.pad_token"), "32") == 0);
      double m = 0;
      CHECK_OK(vz_config_get_float(again, "processor.image_processor.mean.1", &m));
      CHECK(m == 1.0);
    }
    vz_config_free(again);
    free(text);
  }

  /* Errors: unknown keys (with suggestions), wrong types, sections. */
  CHECK_FAILS(vz_config_set(cfg, "qformer_config.query_lenght", "8"), VZ_ERR_NOT_FOUND);
  CHECK(contains(vz_last_error(), "did you mean qformer_config.query_length?"));
  CHECK_FAILS(vz_config_set(cfg, "hidden_size", "8"), VZ_ERR_NOT_FOUND);
  CHECK(contains(vz_last_error(), "vision_config.hidden_size or qformer_config.hidden_size"));
  CHECK_FAILS(vz_config_set(cfg, "no_such_key", "8"), VZ_ERR_NOT_FOUND);
  CHECK_FAILS(vz_config_set(cfg, "qformer_config.query_length", "16.5"), VZ_ERR_INVALID_ARGUMENT);
  CHECK(contains(vz_last_error(), "takes an integer"));
  CHECK_FAILS(vz_config_set(cfg, "qformer_config.query_length", "99999999999999999999"),
              VZ_ERR_INVALID_ARGUMENT);
  CHECK_FAILS(vz_config_set(cfg, "ln_vision_eps", "small"), VZ_ERR_INVALID_ARGUMENT);
  CHECK_FAILS(vz_config_set(cfg, "vision_config.qkv_bias", "2"), VZ_ERR_INVALID_ARGUMENT);
  CHECK_FAILS(vz_config_set(cfg, "qformer_config", "3"), VZ_ERR_INVALID_ARGUMENT);
  CHECK(contains(vz_last_error(), "is a section"));
  CHECK_FAILS(vz_config_set(cfg, "processor.image_processor.mean", "0.5"), VZ_ERR_INVALID_ARGUMENT);
  CHECK_FAILS(vz_config_set(cfg, "processor.image_processor.mean", "[0.5, x]"),
              VZ_ERR_INVALID_ARGUMENT);
  CHECK_FAILS(vz_config_set(cfg, "processor.image_processor.mean", "[0.5, [1]]"),
              VZ_ERR_INVALID_ARGUMENT);
  CHECK_FAILS(vz_config_set(cfg, "processor.image_processor.mean.7", "1"), VZ_ERR_NOT_FOUND);
  CHECK_FAILS(vz_config_set(cfg, "vision_config.hidden_size.x", "1"), VZ_ERR_NOT_FOUND);
  CHECK_FAILS(vz_config_set(cfg, "a..b", "1"), VZ_ERR_INVALID_ARGUMENT);
  CHECK_FAILS(vz_config_set_override(cfg, "query_length"), VZ_ERR_INVALID_ARGUMENT);
  CHECK_FAILS(vz_config_set_override(cfg, "=3"), VZ_ERR_INVALID_ARGUMENT);
  CHECK(get_int(cfg, "qformer_config.query_length") == 16); /* failures change nothing */

  /* Getters: missing keys and wrong kinds. */
  int64_t i64 = 0;
  const char *s = NULL;
  bool b = false;
  double d = 0;
  CHECK_FAILS(vz_config_get_int(cfg, "vision_config.nope", &i64), VZ_ERR_NOT_FOUND);
  CHECK_FAILS(vz_config_get_int(cfg, "ln_vision_eps", &i64), VZ_ERR_INVALID_ARGUMENT);
  CHECK(contains(vz_last_error(), "is a float"));
  CHECK_FAILS(vz_config_get_string(cfg, "qformer_config.query_length", &s),
              VZ_ERR_INVALID_ARGUMENT);
  CHECK_FAILS(vz_config_get_bool(cfg, "pipeline.task", &b), VZ_ERR_INVALID_ARGUMENT);
  CHECK_FAILS(vz_config_get_float(cfg, "vision_config", &d), VZ_ERR_INVALID_ARGUMENT);
  CHECK_FAILS(vz_config_get_length(cfg, "ln_vision_eps", &len), VZ_ERR_INVALID_ARGUMENT);

  /* Validation of what the sizes describe. */
  vz_config *bad = NULL;
  CHECK_OK(vz_config_clone(cfg, &bad));
  if (bad) {
    CHECK_OK(vz_config_set(bad, "vision_config.num_attention_heads", "5"));
    CHECK_FAILS(vz_config_stage1_params(bad, &p), VZ_ERR_INVALID_ARGUMENT);
    CHECK(contains(vz_last_error(), "not a multiple of num_attention_heads"));
    CHECK_OK(vz_config_set(bad, "vision_config.num_attention_heads", "16"));
    CHECK_OK(vz_config_set(bad, "qformer_config.encoder_width", "1024"));
    CHECK_FAILS(vz_config_stage1_params(bad, &p), VZ_ERR_INVALID_ARGUMENT);
    CHECK(contains(vz_last_error(), "encoder_width 1024 differs"));
    CHECK_OK(vz_config_set(bad, "qformer_config.encoder_width", "1408"));
    CHECK_OK(vz_config_set(bad, "vision_config.image_size", "364"));
    CHECK_FAILS(vz_config_stage1_params(bad, &p), VZ_ERR_INVALID_ARGUMENT);
    CHECK(contains(vz_last_error(), "set both"));
    CHECK_OK(vz_config_set(bad, "processor.image_processor.image_size", "364"));
    CHECK_OK(vz_config_stage1_params(bad, &p));
    CHECK(p.vision.image_size == 364 && p.vision.pos_embed_grid == 16);
    CHECK_OK(vz_config_set(bad, "vision_config.image_size", "365"));
    CHECK_OK(vz_config_set(bad, "processor.image_processor.image_size", "365"));
    CHECK_FAILS(vz_config_stage1_params(bad, &p), VZ_ERR_INVALID_ARGUMENT);
    CHECK_OK(vz_config_set(bad, "vision_config.image_size", "224"));
    CHECK_OK(vz_config_set(bad, "processor.image_processor.image_size", "224"));
    CHECK_OK(vz_config_set(bad, "vision_config.hidden_size", "0"));
    CHECK_FAILS(vz_config_stage1_params(bad, &p), VZ_ERR_INVALID_ARGUMENT);
    CHECK(contains(vz_last_error(), "outside"));
    CHECK_OK(vz_config_set(bad, "vision_config.hidden_size", "1408"));
    CHECK_OK(vz_config_set(bad, "itc_pooling", "mean"));
    CHECK_FAILS(vz_config_stage1_params(bad, &p), VZ_ERR_INVALID_ARGUMENT);
    CHECK_OK(vz_config_set(bad, "itc_pooling", "first_query"));
    CHECK_OK(vz_config_set(bad, "weights_origin", "pytorch"));
    CHECK_FAILS(vz_config_stage1_params(bad, &p), VZ_ERR_INVALID_ARGUMENT);
    CHECK_OK(vz_config_set(bad, "weights_origin", "hf"));
    CHECK_OK(vz_config_set(bad, "qformer_config.pad_token_id", "30523"));
    CHECK_FAILS(vz_config_stage1_params(bad, &p), VZ_ERR_INVALID_ARGUMENT);
    CHECK(contains(vz_last_error(), "pad_token_id 30523"));
    CHECK_OK(vz_config_set(bad, "qformer_config.pad_token_id", "0"));
    CHECK_OK(vz_config_stage1_params(bad, &p));
    CHECK(p.itc_pooling == VZ_ITC_FIRST_QUERY);
    vz_config_free(bad);
  }
  vz_config_free(cfg);
}

static void test_unknown_name(void) {
  vz_config *cfg = NULL;
  CHECK_FAILS(vz_config_load("blip2_stage1_vitg", &cfg), VZ_ERR_NOT_FOUND);
  CHECK(contains(vz_last_error(), "did you mean blip2_stage1_vit_g"));
  CHECK(cfg == NULL);
  CHECK_FAILS(vz_config_load("opt", &cfg), VZ_ERR_NOT_FOUND);
  CHECK_FAILS(vz_config_load("mblip_mt0_xxl", &cfg), VZ_ERR_NOT_FOUND);
  CHECK(contains(vz_last_error(), "mblip_mt0_xl"));
  CHECK_FAILS(vz_config_load("zzzzzzzzzzzzzzzzzzzzzzzzzzzz", &cfg), VZ_ERR_NOT_FOUND);
  CHECK(contains(vz_last_error(), "vlzoo list"));
  CHECK_FAILS(vz_config_load("/no/such/file.yaml", &cfg), VZ_ERR_NOT_FOUND);
  CHECK_FAILS(vz_config_load("", &cfg), VZ_ERR_INVALID_ARGUMENT);
  char buf[256];
  CHECK(strcmp(vz_zoo_suggest("blip2_opt_2.7", buf, sizeof buf), "blip2_opt_2.7b") == 0);
  CHECK(vz_zoo_suggest("tiny_shapes", buf, sizeof buf)[0] != '\0');
  CHECK(contains(buf, "blip2_tiny_shapes"));
  CHECK(vz_zoo_description("nope") == NULL);
}

/* Malformed files: VZ_ERR_FORMAT naming file:line:column. */
static void test_malformed(void) {
  struct {
    const char *file, *text, *expect;
  } cases[] = {
      {"unclosed.yaml", "model:\n  model_config:\n    mean: [1, 2\n    b: 3\n", "unclosed.yaml:"},
      {"tab.yaml", "model:\n\tmodel_config: 1\n", "tab.yaml:2:"},
      {"duplicate.yaml", "model:\n  model_config:\n    a: 1\n    a: 2\n",
       "duplicate.yaml:4:5: duplicate key 'a'"},
      {"anchor.yaml", "model:\n  model_config:\n    a: &x 1\n    b: *x\n",
       "anchor.yaml:3:8: anchors"},
      {"alias.yaml", "model:\n  model_config:\n    a: 1\n    b: *x\n", "alias.yaml:4:"},
      {"two.yaml", "model: {model_config: {}}\n---\nb: 2\n", "two.yaml:2:1: a second document"},
      {"list.yaml", "- 1\n- 2\n", "list.yaml:1:1: the document is a sequence"},
      {"deep.yaml",
       "model: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n",
       "deep.yaml:1:"},
      {"tag.yaml", "model:\n  model_config: !!python/object:os.system x\n",
       "tag.yaml:2:17: tag 'tag:yaml.org,2002:python/object:os.system' is not supported"},
      {"badint.yaml", "model:\n  model_config:\n    a: !!int abc\n", "badint.yaml:3:8:"},
      {"colon.yaml", "model:\n  model_config:\n    a: b: c\n", "colon.yaml:3:"},
      {"empty.yaml", "# nothing\n", "empty.yaml: empty"},
      {"keymap.yaml", "model:\n  ? [a, b]\n  : 1\n", "keymap.yaml:2:5: a key must be a scalar"},
      {"nomodel.yaml", "processor:\n  type: x\n", "no model.model_config"},
      {"control.yaml", "model:\n  model_config: {a: \"\x01\"}\n",
       "control.yaml:2:22: control characters"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char path[512];
    write_text(cases[i].file, cases[i].text, path, sizeof path);
    vz_config *cfg = NULL;
    vz_clear_error();
    vz_status st = vz_config_load(path, &cfg);
    if (st != VZ_ERR_FORMAT || !strstr(vz_last_error(), cases[i].expect)) {
      fprintf(stderr, "%s: %s: '%s', expected format error with '%s'\n", cases[i].file,
              vz_status_string(st), vz_last_error(), cases[i].expect);
      test_failures++;
    }
    CHECK(cfg == NULL);
    vz_config_free(cfg);
    unlink(path);
  }
  /* A file over the size limit. */
  char path[512];
  snprintf(path, sizeof path, "%s/huge.yaml", tmpdir);
  FILE *f = fopen(path, "wb");
  if (f) {
    for (int i = 0; i < 70000; i++)
      fputs("# padding\n", f);
    fclose(f);
  }
  vz_config *cfg = NULL;
  CHECK_FAILS(vz_config_load(path, &cfg), VZ_ERR_FORMAT);
  unlink(path);
  /* A well-formed user file works, with its name and directory. */
  write_text("mine.yml",
             "model:\n  model_config:\n    checkpoint_name_or_path: w.ckpt\n    x: 1e-5\n"
             "    y: .5\n    z: 0x10\n    n: ~\n    s: '12'\n    t: !!str 7\n",
             path, sizeof path);
  CHECK_OK(vz_config_load(path, &cfg));
  if (cfg) {
    CHECK(strcmp(vz_config_name(cfg), "mine") == 0);
    vz_config_kind k = VZ_CONFIG_STRING;
    CHECK_OK(vz_config_kind_of(cfg, "x", &k));
    CHECK(k == VZ_CONFIG_FLOAT);
    CHECK(get_int(cfg, "z") == 16);
    CHECK_OK(vz_config_kind_of(cfg, "n", &k));
    CHECK(k == VZ_CONFIG_NULL);
    CHECK(strcmp(get_str(cfg, "s"), "12") == 0);
    CHECK(strcmp(get_str(cfg, "t"), "7") == 0);
    CHECK_OK(vz_config_set(cfg, "n", "3"));
    CHECK(get_int(cfg, "n") == 3);
    char *text = NULL;
    CHECK_OK(vz_config_to_yaml(cfg, &text));
    /* Floats are written so that PyYAML reads them as floats too; keys PyYAML
     * takes for booleans (y, n) are quoted. */
    CHECK(text && contains(text, "x: 1.0e-5\n") && contains(text, "\"y\": 0.5\n"));
    free(text);
    /* checkpoint_name_or_path relative to the file's folder. */
    char ckpt[512], *found = NULL;
    write_text("w.ckpt", "x", ckpt, sizeof ckpt);
    CHECK_OK(vz_config_weights_path(cfg, NULL, &found));
    CHECK(found && strcmp(found, ckpt) == 0);
    free(found);
    unlink(ckpt);
    vz_config_free(cfg);
  }
  unlink(path);
}

/* Modelled on Salesforce/blip2-itm-vit-g's config.json (the hub stores only
 * non-default values). */
static const char itm_config[] = "{\n"
                                 "  \"architectures\": [\"Blip2ForImageTextRetrieval\"],\n"
                                 "  \"image_text_hidden_size\": 256,\n"
                                 "  \"image_token_index\": 30523,\n"
                                 "  \"initializer_factor\": 1.0,\n"
                                 "  \"initializer_range\": 0.02,\n"
                                 "  \"model_type\": \"blip-2\",\n"
                                 "  \"num_query_tokens\": 32,\n"
                                 "  \"qformer_config\": {\n"
                                 "    \"model_type\": \"blip_2_qformer\",\n"
                                 "    \"use_qformer_text_input\": true,\n"
                                 "    \"vocab_size\": 30523\n"
                                 "  },\n"
                                 "  \"text_config\": {\"model_type\": \"opt\"},\n"
                                 "  \"torch_dtype\": \"float32\",\n"
                                 "  \"transformers_version\": \"4.48.0.dev0\",\n"
                                 "  \"use_decoder_only_language_model\": true,\n"
                                 "  \"vision_config\": {\"model_type\": \"blip_2_vision_model\"}\n"
                                 "}\n";

/* Like Salesforce/blip2-opt-2.7b's (abridged: sizes that differ from
 * OPTConfig's defaults). */
static const char opt_config[] =
    "{\"architectures\": [\"Blip2ForConditionalGeneration\"], \"model_type\": \"blip-2\",\n"
    " \"num_query_tokens\": 32, \"image_token_index\": 50265,\n"
    " \"qformer_config\": {\"model_type\": \"blip_2_qformer\"},\n"
    " \"text_config\": {\"model_type\": \"opt\", \"hidden_size\": 2560, \"ffn_dim\": 10240,\n"
    "   \"num_hidden_layers\": 32, \"num_attention_heads\": 32, \"word_embed_proj_dim\": 2560,\n"
    "   \"vocab_size\": 50304, \"eos_token_id\": 50118},\n"
    " \"vision_config\": {\"model_type\": \"blip_2_vision_model\"}}\n";

/* Like Salesforce/blip2-flan-t5-xl's (abridged). */
static const char t5_config[] =
    "{\"architectures\": [\"Blip2ForConditionalGeneration\"], \"model_type\": \"blip-2\",\n"
    " \"text_config\": {\"model_type\": \"t5\", \"d_model\": 2048, \"d_ff\": 5120,\n"
    "   \"num_layers\": 24, \"num_heads\": 32, \"feed_forward_proj\": \"gated-gelu\",\n"
    "   \"dense_act_fn\": \"gelu\", \"tie_word_embeddings\": false, \"bos_token_id\": 1},\n"
    " \"vision_config\": {}, \"qformer_config\": {}}\n";

static void make_folder(const char *name, char *path, size_t size) {
  snprintf(path, size, "%s/%s", tmpdir, name);
  mkdir(path, 0755);
}

static void test_hf_folder(void) {
  char folder[512], file[600];
  make_folder("blip2-itm-vit-g", folder, sizeof folder);
  snprintf(file, sizeof file, "blip2-itm-vit-g/config.json");
  char path[600];
  write_text(file, itm_config, path, sizeof path);
  write_text("blip2-itm-vit-g/model.safetensors", "x", file, sizeof file);
  vz_config *hf = NULL, *zoo = NULL;
  CHECK_OK(vz_config_load(folder, &hf));
  CHECK_OK(vz_config_load("blip2_stage1_vit_g", &zoo));
  if (hf && zoo) {
    vz_blip2_stage1_params a, b;
    CHECK_OK(vz_config_stage1_params(hf, &a));
    CHECK_OK(vz_config_stage1_params(zoo, &b));
    /* Equal but for HF's ln_vision eps (post_layernorm uses 1e-6). */
    CHECK(a.vision.post_layer_norm_eps == 1e-6f);
    b.vision.post_layer_norm_eps = 1e-6f;
    CHECK(same_params(&a, &b));
    CHECK(strcmp(get_str(hf, "weights_origin"), "hf") == 0);
    CHECK(strcmp(get_str(hf, "checkpoint_name_or_path"), folder) == 0);
    CHECK(strcmp(get_str(hf, "arch.type"), "Blip2Qformer") == 0);
    CHECK(!vz_config_has(hf, "text_config"));
    CHECK(strcmp(vz_config_name(hf), "blip2-itm-vit-g") == 0);
    vz_config *direct = NULL;
    CHECK_OK(vz_config_load(path, &direct)); /* .../config.json itself */
    vz_blip2_stage1_params c;
    if (direct) {
      CHECK_OK(vz_config_stage1_params(direct, &c));
      CHECK(same_params(&a, &c));
      CHECK(strcmp(get_str(direct, "checkpoint_name_or_path"), folder) == 0);
    }
    vz_config_free(direct);
    char *weights = NULL;
    CHECK_OK(vz_config_weights_path(hf, NULL, &weights));
    CHECK(weights && strcmp(weights, folder) == 0);
    free(weights);
    /* Same parameters as the zoo's (LAVIS layout) stage-1 model. */
    uint64_t n1 = 0, n2 = 0;
    CHECK_OK(vz_config_param_count(hf, &n1));
    CHECK_OK(vz_config_param_count(zoo, &n2));
    CHECK(n1 == n2);
    /* It round-trips like any config. */
    char *text = NULL;
    CHECK_OK(vz_config_to_yaml(hf, &text));
    vz_config *again = NULL;
    if (text)
      CHECK_OK(vz_config_parse(text, strlen(text), "hf.yaml", &again));
    if (again) {
      CHECK_OK(vz_config_stage1_params(again, &c));
      CHECK(same_params(&a, &c));
    }
    vz_config_free(again);
    free(text);
  }
  vz_config_free(hf);
  vz_config_free(zoo);
  unlink(file);
  unlink(path);

  /* A stage-2 folder: the same model as the zoo's blip2_opt_2.7b. */
  make_folder("blip2-opt-2.7b", folder, sizeof folder);
  write_text("blip2-opt-2.7b/config.json", opt_config, path, sizeof path);
  hf = zoo = NULL;
  CHECK_OK(vz_config_load(folder, &hf));
  CHECK_OK(vz_config_load("blip2_opt_2.7b", &zoo));
  if (hf && zoo) {
    uint64_t n1 = 0, n2 = 0;
    CHECK_OK(vz_config_param_count(hf, &n1));
    CHECK_OK(vz_config_param_count(zoo, &n2));
    CHECK(n1 == n2);
    const char *keys[] = {"text_config.hidden_size",  "text_config.num_layers",
                          "text_config.num_heads",    "text_config.intermediate_size",
                          "text_config.vocab_size",   "text_config.max_position_embeddings",
                          "text_config.eos_token_id", "text_config.pad_token_id",
                          "text_config.bos_token_id", "image_token_index"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
      if (get_int(hf, keys[i]) != get_int(zoo, keys[i])) {
        fprintf(stderr, "%s differs\n", keys[i]);
        test_failures++;
      }
    CHECK(strcmp(get_str(hf, "text_config.architecture"), "opt") == 0);
    CHECK(strcmp(get_str(hf, "arch.type"), "Blip2ImageToTextGeneration") == 0);
  }
  vz_config_free(hf);
  vz_config_free(zoo);
  unlink(path);
  write_text("blip2-opt-2.7b/config.json", t5_config, path, sizeof path);
  hf = zoo = NULL;
  CHECK_OK(vz_config_load(folder, &hf));
  CHECK_OK(vz_config_load("blip2_flan_t5_xl", &zoo));
  if (hf && zoo) {
    uint64_t n1 = 0, n2 = 0;
    CHECK_OK(vz_config_param_count(hf, &n1));
    CHECK_OK(vz_config_param_count(zoo, &n2));
    CHECK(n1 == n2);
    CHECK(strcmp(get_str(hf, "text_config.dense_act_fn"), "gelu") == 0);
    CHECK(get_int(hf, "text_config.num_decoder_layers") == 24);
  }
  vz_config_free(hf);
  vz_config_free(zoo);
  unlink(path);

  /* Broken or foreign config.json files. */
  struct {
    const char *text;
    vz_status status;
    const char *expect;
  } bad[] = {
      {"{\n  \"model_type\": \"blip-2\",\n  \"num_query_tokens\": 32,,\n}\n", VZ_ERR_FORMAT,
       "config.json:3:"},
      {"{\"model_type\": \"instructblip\"}", VZ_ERR_UNSUPPORTED, "not BLIP-2"},
      {"{\"model_type\": \"blip-2\", \"num_query_tokens\": \"many\"}", VZ_ERR_FORMAT,
       "num_query_tokens must be an integer"},
      {"{\"model_type\": \"blip-2\", \"text_config\": {\"model_type\": \"gpt2\"}}",
       VZ_ERR_UNSUPPORTED, "gpt2"},
      {"[1, 2]", VZ_ERR_FORMAT, "not a JSON object"},
  };
  make_folder("broken", folder, sizeof folder);
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    write_text("broken/config.json", bad[i].text, path, sizeof path);
    vz_config *cfg = NULL;
    vz_clear_error();
    vz_status st = vz_config_load(folder, &cfg);
    if (st != bad[i].status || !strstr(vz_last_error(), bad[i].expect)) {
      fprintf(stderr, "config.json case %zu: %s: '%s', expected '%s'\n", i, vz_status_string(st),
              vz_last_error(), bad[i].expect);
      test_failures++;
    }
    vz_config_free(cfg);
    unlink(path);
  }
  /* An empty folder: neither Hugging Face nor MindFormers style. */
  vz_config *cfg = NULL;
  CHECK_FAILS(vz_config_load(folder, &cfg), VZ_ERR_NOT_FOUND);
  rmdir(folder);

  /* MindFormers style: one .yaml and its .ckpt. */
  make_folder("mf", folder, sizeof folder);
  char yaml[600], ckpt[600];
  const char *text = NULL;
  size_t size = 0;
  CHECK_OK(vz_zoo_yaml("blip2_stage1_classification", &text, &size));
  write_text("mf/run_blip2_classification.yaml", text ? text : "", yaml, sizeof yaml);
  write_text("mf/blip2_pretrained.ckpt", "x", ckpt, sizeof ckpt);
  CHECK_OK(vz_config_load(folder, &cfg));
  if (cfg) {
    CHECK(strcmp(get_str(cfg, "checkpoint_name_or_path"), ckpt) == 0);
    char *weights = NULL;
    CHECK_OK(vz_config_weights_path(cfg, NULL, &weights));
    CHECK(weights && strcmp(weights, ckpt) == 0);
    free(weights);
    vz_config_free(cfg);
  }
  unlink(yaml);
  unlink(ckpt);
  rmdir(folder);
}

static void test_weights_path(void) {
  char home[512];
  snprintf(home, sizeof home, "%s/home", tmpdir);
  mkdir(home, 0755);
  setenv("VLZOO_HOME", home, 1);
  vz_config *cfg = NULL;
  CHECK_OK(vz_config_load("blip2_stage1_classification", &cfg));
  if (!cfg)
    return;
  char *path = NULL;
  CHECK_FAILS(vz_config_weights_path(cfg, NULL, &path), VZ_ERR_NOT_FOUND);
  char where[700];
  snprintf(where, sizeof where, "%s/blip2_stage1_vit_g.ckpt", home);
  CHECK(contains(vz_last_error(), where));
  snprintf(where, sizeof where, "%s/blip2_stage1_classification.safetensors", home);
  CHECK(contains(vz_last_error(), where));
  CHECK(path == NULL);
  CHECK_FAILS(vz_config_weights_path(cfg, "/no/such/weights.ckpt", &path), VZ_ERR_NOT_FOUND);

  /* The shared checkpoint name first, then the config's own name. */
  char file[600];
  write_text("home/blip2_stage1_classification.ckpt", "x", file, sizeof file);
  CHECK_OK(vz_config_weights_path(cfg, NULL, &path));
  CHECK(path && strcmp(path, file) == 0);
  free(path);
  path = NULL;
  char shared[600];
  write_text("home/blip2_stage1_vit_g.safetensors", "x", shared, sizeof shared);
  CHECK_OK(vz_config_weights_path(cfg, NULL, &path));
  CHECK(path && strcmp(path, shared) == 0);
  free(path);
  path = NULL;
  /* An explicit path wins. */
  CHECK_OK(vz_config_weights_path(cfg, file, &path));
  CHECK(path && strcmp(path, file) == 0);
  free(path);
  path = NULL;
  /* checkpoint_name_or_path as an absolute path. */
  CHECK_OK(vz_config_set(cfg, "checkpoint_name_or_path", file));
  CHECK_OK(vz_config_weights_path(cfg, NULL, &path));
  CHECK(path && strcmp(path, file) == 0);
  free(path);
  unlink(file);
  unlink(shared);
  /* A folder named like the model. */
  CHECK_OK(vz_config_set(cfg, "checkpoint_name_or_path", "blip2_stage1_vit_g"));
  char dir[600];
  snprintf(dir, sizeof dir, "%s/blip2_stage1_vit_g", home);
  mkdir(dir, 0755);
  path = NULL;
  CHECK_OK(vz_config_weights_path(cfg, NULL, &path));
  CHECK(path && strcmp(path, dir) == 0);
  free(path);
  rmdir(dir);
  rmdir(home);
  unsetenv("VLZOO_HOME");
  vz_config_free(cfg);
}

static void test_memory(void) {
  vz_config *cfg = NULL;
  CHECK_OK(vz_config_load("blip2_opt_2.7b", &cfg));
  if (!cfg)
    return;
  uint64_t params = 0, need = 0;
  CHECK_OK(vz_config_param_count(cfg, &params));
  const uint64_t gib = 1024ull * 1024 * 1024;
  CHECK_OK(vz_config_check_memory(cfg, VZ_F32, 64 * gib, &need));
  CHECK(need == params * 4 + params * 4 / 10);
  CHECK_FAILS(vz_config_check_memory(cfg, VZ_F32, 10 * gib, &need), VZ_ERR_OUT_OF_MEMORY);
  CHECK(contains(vz_last_error(), "needs about 15.3 GiB"));
  CHECK(contains(vz_last_error(), "10.0 GiB of memory is available"));
  CHECK(contains(vz_last_error(), "as bf16 or f16 it needs 7.7 GiB, which fits"));
  CHECK_FAILS(vz_config_check_memory(cfg, VZ_F32, 4 * gib, NULL), VZ_ERR_OUT_OF_MEMORY);
  CHECK(contains(vz_last_error(), "even as bf16 or f16"));
  CHECK_OK(vz_config_check_memory(cfg, VZ_BF16, 10 * gib, NULL));
  CHECK_FAILS(vz_config_check_memory(cfg, VZ_I8, 64 * gib, NULL), VZ_ERR_DTYPE);
  vz_config_free(cfg);

  /* The limit from the environment (what the program sees). */
  cfg = NULL;
  CHECK_OK(vz_config_load("blip2_tiny_shapes", &cfg));
  setenv("VLZOO_MEMORY_LIMIT", "1M", 1);
  uint64_t avail = 0;
  CHECK_OK(vz_available_memory(&avail));
  CHECK(avail <= 1024 * 1024);
  CHECK_FAILS(vz_config_check_memory(cfg, VZ_F32, 0, NULL), VZ_ERR_OUT_OF_MEMORY);
  CHECK(contains(vz_last_error(), "blip2_tiny_shapes needs about"));
  setenv("VLZOO_MEMORY_LIMIT", "2GiB", 1);
  CHECK_OK(vz_available_memory(&avail));
  CHECK(avail <= 2 * gib);
  setenv("VLZOO_MEMORY_LIMIT", "lots", 1);
  CHECK_FAILS(vz_available_memory(&avail), VZ_ERR_INVALID_ARGUMENT);
  unsetenv("VLZOO_MEMORY_LIMIT");
  CHECK_OK(vz_available_memory(&avail));
  CHECK(avail > 0);
  vz_config_free(cfg);
}

int main(void) {
  snprintf(tmpdir, sizeof tmpdir, "/tmp/vlzoo-test-zoo-XXXXXX");
  if (!mkdtemp(tmpdir)) {
    perror("mkdtemp");
    return 1;
  }
  test_every_name();
  test_stage1_reference();
  test_param_counts();
  test_overrides();
  test_unknown_name();
  test_malformed();
  test_hf_folder();
  test_weights_path();
  test_memory();
  char folder[600];
  snprintf(folder, sizeof folder, "%s/blip2-itm-vit-g", tmpdir);
  rmdir(folder);
  snprintf(folder, sizeof folder, "%s/blip2-opt-2.7b", tmpdir);
  rmdir(folder);
  rmdir(tmpdir);
  return test_finish("test_zoo");
}

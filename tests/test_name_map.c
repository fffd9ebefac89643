/* The name maps against the name lists of the real implementations
 * (the JSON files in tests/fixtures/names, made by make_name_fixtures.py): every
 * mapping between LAVIS, Hugging Face, MindFormers and vlzoo must give
 * exactly the other side's set of names, with shapes transformed as that
 * side stores them. */
#define _POSIX_C_SOURCE 200809L
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert/name_map.h"
#include "ops/internal.h"
#include "tests/test_util.h"

typedef struct list {
  vz_map_entry *e;
  size_t n;
} list;

static const char *fixtures_dir; /* test_fixtures_dir() */

static void list_free(list *l) {
  for (size_t i = 0; i < l->n; i++)
    free(l->e[i].name);
  free(l->e);
  l->e = NULL;
  l->n = 0;
}

static void list_add(list *l, const char *name, vz_dtype dtype, int ndim, const int64_t *shape) {
  l->e = realloc(l->e, (l->n + 1) * sizeof *l->e);
  if (!l->e) {
    fprintf(stderr, "out of memory\n");
    exit(1);
  }
  vz_map_entry *e = &l->e[l->n++];
  memset(e, 0, sizeof *e);
  e->name = strdup(name);
  e->dtype = dtype;
  e->ndim = ndim;
  for (int d = 0; d < ndim; d++)
    e->shape[d] = shape[d];
}

/* Loads names/<file>: its "tensors" (and, when extra is given, the names
 * under "ckpt_extra", looked up in the tensors for their shapes). */
static list load(const char *file, list *extra) {
  char path[1200];
  snprintf(path, sizeof path, "%s/names/%s", fixtures_dir, file);
  json_object *root = json_object_from_file(path);
  if (!root) {
    fprintf(stderr, "cannot read %s\n", path);
    exit(1);
  }
  list l = {0};
  json_object *tensors = json_object_object_get(root, "tensors");
  for (size_t i = 0; i < json_object_array_length(tensors); i++) {
    json_object *t = json_object_array_get_idx(tensors, i);
    json_object *shape = json_object_object_get(t, "shape");
    int64_t dims[VZ_WEIGHT_MAX_DIMS];
    int ndim = (int)json_object_array_length(shape);
    for (int d = 0; d < ndim; d++)
      dims[d] = json_object_get_int64(json_object_array_get_idx(shape, (size_t)d));
    vz_dtype dtype = VZ_F32;
    vz_dtype_from_name(json_object_get_string(json_object_object_get(t, "dtype")), &dtype);
    list_add(&l, json_object_get_string(json_object_object_get(t, "name")), dtype, ndim, dims);
  }
  json_object *ex = json_object_object_get(root, "ckpt_extra");
  if (extra && ex)
    for (size_t i = 0; i < json_object_array_length(ex); i++)
      list_add(extra, json_object_get_string(json_object_array_get_idx(ex, i)), VZ_F32, 1,
               (int64_t[]){30523});
  json_object_put(root);
  return l;
}

/* The entries of `l` whose names start with none of `drop` (NULL-ended). */
static list without(const list *l, const char *const *drop) {
  list out = {0};
  for (size_t i = 0; i < l->n; i++) {
    bool skip = false;
    for (const char *const *d = drop; *d && !skip; d++)
      skip = strncmp(l->e[i].name, *d, strlen(*d)) == 0;
    if (!skip)
      list_add(&out, l->e[i].name, l->e[i].dtype, l->e[i].ndim, l->e[i].shape);
  }
  return out;
}

static list only(const list *l, const char *prefix) {
  list out = {0};
  for (size_t i = 0; i < l->n; i++)
    if (strncmp(l->e[i].name, prefix, strlen(prefix)) == 0)
      list_add(&out, l->e[i].name, l->e[i].dtype, l->e[i].ndim, l->e[i].shape);
  return out;
}

static list concat(const list *a, const list *b) {
  list out = {0};
  for (size_t i = 0; i < a->n; i++)
    list_add(&out, a->e[i].name, a->e[i].dtype, a->e[i].ndim, a->e[i].shape);
  for (size_t i = 0; i < b->n; i++)
    list_add(&out, b->e[i].name, b->e[i].dtype, b->e[i].ndim, b->e[i].shape);
  return out;
}

static const vz_map_entry *find(const vz_map_entry *e, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(e[i].name, name) == 0)
      return &e[i];
  return NULL;
}

static bool same_shape(const vz_map_entry *a, const vz_map_entry *b) {
  if (a->ndim != b->ndim)
    return false;
  for (int d = 0; d < a->ndim; d++)
    if (a->shape[d] != b->shape[d])
      return false;
  return true;
}

/* The plan holds exactly the names of `want`, with its shapes. */
static void check_same(const char *what, const vz_map_plan *got, const list *want) {
  int shown = 0;
  char s1[96], s2[96];
  for (size_t i = 0; i < want->n; i++) {
    const vz_map_entry *g = find(got->items, got->count, want->e[i].name);
    if (!g) {
      if (shown++ < 8)
        fprintf(stderr, "%s: missing %s\n", what, want->e[i].name);
      test_failures++;
    } else if (!same_shape(g, &want->e[i])) {
      if (shown++ < 8)
        fprintf(stderr, "%s: %s is %s, expected %s\n", what, g->name,
                vz_shape_text(g->ndim, g->shape, s1, sizeof s1),
                vz_shape_text(want->e[i].ndim, want->e[i].shape, s2, sizeof s2));
      test_failures++;
    }
  }
  for (size_t i = 0; i < got->count; i++)
    if (!find(want->e, want->n, got->items[i].name)) {
      if (shown++ < 8)
        fprintf(stderr, "%s: extra %s\n", what, got->items[i].name);
      test_failures++;
    }
  if (got->count != want->n) {
    fprintf(stderr, "%s: %zu tensors, expected %zu\n", what, got->count, want->n);
    test_failures++;
  }
}

static const vz_map_model two_layers = {"two-layer test model", 2, 2, 2, VZ_PARTS_STAGE1, 0, false};

/* from -> vlzoo -> to, compared with `want`; the vlzoo plan is kept in
 * *mid when given. */
static void check_route(const char *what, vz_naming from, const list *in, vz_naming to,
                        const list *want, vz_map_plan *mid_out, vz_map_plan *out_keep) {
  vz_map_plan mid = {0}, out = {0};
  CHECK_OK(vz_map_to_vlzoo(from, &two_layers, in->e, in->n, &mid));
  CHECK_OK(vz_map_from_vlzoo(to, &two_layers, mid.items, mid.count, &out));
  check_same(what, &out, want);
  if (mid_out)
    *mid_out = mid;
  else
    vz_map_plan_free(&mid);
  if (out_keep)
    *out_keep = out;
  else
    vz_map_plan_free(&out);
}

static bool has_note(const vz_map_plan *p, const char *text) {
  for (size_t i = 0; i < p->n_notes; i++)
    if (strstr(p->notes[i].text, text))
      return true;
  return false;
}

static void test_routes(void) {
  list mf_extra = {0};
  list lavis = load("lavis_blip2_qformer.json", NULL);
  list mf = load("mindformers_blip2_qformer.json", &mf_extra);
  list hf = load("hf_blip2_itr.json", NULL);
  list mf_ckpt = concat(&mf, &mf_extra);
  static const char *const no_extras_lavis[] = {"temp", "Qformer.cls.", NULL};
  static const char *const no_extras_mf[] = {"temp", "qformer.cls.", NULL};
  list lavis_hf = without(&lavis, no_extras_lavis);
  list mf_hf = without(&mf, no_extras_mf);

  /* LAVIS -> MindFormers: the ckpt MindFormers' loader takes (plus the
   * tied decoder.bias its own converter writes too) */
  vz_map_plan mid = {0}, out = {0};
  check_route("lavis->mindformers", VZ_NAMING_LAVIS, &lavis, VZ_NAMING_MINDFORMERS, &mf_ckpt, &mid,
              &out);
  /* layouts: qkv split, zero k bias, transposes */
  const vz_map_entry *d2 =
      find(out.items, out.count, "visual_encoder.blocks.1.attention.dense2.weight");
  const vz_map_entry *b2 =
      find(out.items, out.count, "visual_encoder.blocks.1.attention.dense2.bias");
  const vz_map_entry *b3 =
      find(out.items, out.count, "visual_encoder.blocks.1.attention.dense3.bias");
  const vz_map_entry *map =
      find(out.items, out.count, "visual_encoder.blocks.0.output.mapping.weight");
  const vz_map_entry *proj =
      find(out.items, out.count, "visual_encoder.blocks.0.output.projection.weight");
  const vz_map_entry *att =
      find(out.items, out.count, "visual_encoder.blocks.0.attention.projection.weight");
  const vz_map_entry *ids = find(out.items, out.count, "qformer.bert.embeddings.position_ids");
  const vz_map_entry *fcn = find(out.items, out.count, "visual_encoder.fc_norm.gamma");
  CHECK(d2 && d2->op == VZ_MAP_SLICE && d2->offset == 1408 && d2->shape[0] == 1408);
  CHECK(b2 && b2->op == VZ_MAP_SLICE && b2->offset == 1408);
  CHECK(b3 && b3->op == VZ_MAP_SLICE && b3->offset == 2816);
  if (b2 && b2->src[0] < mid.count) {
    const vz_map_entry *qkv_bias = &mid.items[b2->src[0]];
    CHECK(strcmp(qkv_bias->name, "vision_model.encoder.layers.1.self_attn.qkv.bias") == 0);
    CHECK(qkv_bias->op == VZ_MAP_QV_BIAS && qkv_bias->n_src == 2);
    CHECK(strcmp(lavis.e[qkv_bias->src[0]].name, "visual_encoder.blocks.1.attn.q_bias") == 0);
    CHECK(strcmp(lavis.e[qkv_bias->src[1]].name, "visual_encoder.blocks.1.attn.v_bias") == 0);
  }
  CHECK(map && map->op == VZ_MAP_TRANSPOSE && map->shape[0] == 1408 && map->shape[1] == 6144);
  if (map && map->src[0] < mid.count)
    CHECK(strcmp(mid.items[map->src[0]].name, "vision_model.encoder.layers.0.mlp.fc1.weight") == 0);
  CHECK(proj && proj->op == VZ_MAP_TRANSPOSE && proj->shape[0] == 6144);
  if (proj && proj->src[0] < mid.count)
    CHECK(strcmp(mid.items[proj->src[0]].name, "vision_model.encoder.layers.0.mlp.fc2.weight") ==
          0);
  CHECK(att && att->op == VZ_MAP_TRANSPOSE);
  CHECK(ids && ids->op == VZ_MAP_ARANGE && ids->dtype == VZ_I32 && ids->shape[1] == 512);
  CHECK(fcn && fcn->op == VZ_MAP_ONES && fcn->shape[0] == 1408);
  CHECK(has_note(&mid, "dropped Qformer.bert.embeddings.position_ids"));
  bool checked_ids = false;
  for (size_t i = 0; i < mid.n_notes; i++)
    checked_ids |= mid.notes[i].check == VZ_MAP_CHECK_ARANGE && mid.notes[i].count == 512;
  CHECK(checked_ids);
  CHECK(has_note(&out, "made visual_encoder.fc_norm.gamma"));
  /* vlzoo names: HF's plus temp and the LM head */
  list vlzoo_want = {0};
  static const char *const lm_names[] = {
      "temp",
      "qformer.cls.predictions.transform.dense.weight",
      "qformer.cls.predictions.transform.dense.bias",
      "qformer.cls.predictions.transform.LayerNorm.weight",
      "qformer.cls.predictions.transform.LayerNorm.bias",
      "qformer.cls.predictions.decoder.weight",
      "qformer.cls.predictions.decoder.bias",
      "qformer.cls.predictions.bias",
      NULL,
  };
  for (size_t i = 0; i < hf.n; i++)
    list_add(&vlzoo_want, hf.e[i].name, hf.e[i].dtype, hf.e[i].ndim, hf.e[i].shape);
  for (const char *const *n = lm_names; *n; n++) {
    const vz_map_entry *e = find(mid.items, mid.count, *n);
    CHECK(e != NULL);
    if (e)
      list_add(&vlzoo_want, e->name, e->dtype, e->ndim, e->shape);
  }
  check_same("lavis->vlzoo", &mid, &vlzoo_want);
  vz_map_plan_free(&mid);
  vz_map_plan_free(&out);

  check_route("mindformers->lavis", VZ_NAMING_MINDFORMERS, &mf, VZ_NAMING_LAVIS, &lavis, &mid,
              &out);
  CHECK(has_note(&mid, "dropped visual_encoder.fc_norm.gamma"));
  const vz_map_entry *fc1 =
      find(mid.items, mid.count, "vision_model.encoder.layers.1.mlp.fc1.weight");
  CHECK(fc1 && fc1->op == VZ_MAP_TRANSPOSE && fc1->shape[0] == 6144 &&
        strcmp(mf.e[fc1->src[0]].name, "visual_encoder.blocks.1.output.mapping.weight") == 0);
  const vz_map_entry *qkv =
      find(mid.items, mid.count, "vision_model.encoder.layers.0.self_attn.qkv.weight");
  CHECK(qkv && qkv->op == VZ_MAP_CONCAT && qkv->n_src == 3 && qkv->shape[0] == 4224 &&
        strcmp(mf.e[qkv->src[2]].name, "visual_encoder.blocks.0.attention.dense3.weight") == 0);
  const vz_map_entry *ids64 = find(out.items, out.count, "Qformer.bert.embeddings.position_ids");
  CHECK(ids64 && ids64->dtype == VZ_I64 && ids64->op == VZ_MAP_ARANGE);
  bool zero_k = false;
  for (size_t i = 0; i < out.n_notes; i++)
    zero_k |= out.notes[i].check == VZ_MAP_CHECK_ZERO && out.notes[i].offset == 1408 &&
              out.notes[i].count == 1408;
  CHECK(zero_k);
  vz_map_plan_free(&mid);
  vz_map_plan_free(&out);

  check_route("hf->lavis", VZ_NAMING_HF, &hf, VZ_NAMING_LAVIS, &lavis_hf, NULL, NULL);
  check_route("lavis->hf", VZ_NAMING_LAVIS, &lavis, VZ_NAMING_HF, &hf, NULL, &out);
  CHECK(has_note(&out, "dropped temp"));
  CHECK(has_note(&out, "dropped qformer.cls.predictions.decoder.weight"));
  vz_map_plan_free(&out);
  check_route("mindformers->hf", VZ_NAMING_MINDFORMERS, &mf, VZ_NAMING_HF, &hf, NULL, NULL);
  check_route("hf->mindformers", VZ_NAMING_HF, &hf, VZ_NAMING_MINDFORMERS, &mf_hf, NULL, NULL);
  check_route("mindformers->mindformers", VZ_NAMING_MINDFORMERS, &mf, VZ_NAMING_MINDFORMERS,
              &mf_ckpt, NULL, NULL);
  check_route("lavis->lavis", VZ_NAMING_LAVIS, &lavis, VZ_NAMING_LAVIS, &lavis, NULL, NULL);
  check_route("hf->hf", VZ_NAMING_HF, &hf, VZ_NAMING_HF, &hf, NULL, NULL);
  check_route("vpgtrans->lavis", VZ_NAMING_VPGTRANS, &lavis, VZ_NAMING_LAVIS, &lavis, NULL, NULL);

  /* vlzoo keeps what hf drops: lavis -> vlzoo -> (read as vlzoo) -> lavis */
  vz_map_plan v1 = {0}, v2 = {0}, v3 = {0}, back = {0};
  CHECK_OK(vz_map_to_vlzoo(VZ_NAMING_LAVIS, &two_layers, lavis.e, lavis.n, &v1));
  CHECK_OK(vz_map_from_vlzoo(VZ_NAMING_VLZOO, &two_layers, v1.items, v1.count, &v2));
  CHECK_OK(vz_map_to_vlzoo(VZ_NAMING_VLZOO, &two_layers, v2.items, v2.count, &v3));
  CHECK_OK(vz_map_from_vlzoo(VZ_NAMING_LAVIS, &two_layers, v3.items, v3.count, &back));
  check_same("lavis->vlzoo->vlzoo->lavis", &back, &lavis);
  vz_map_plan_free(&v1);
  vz_map_plan_free(&v2);
  vz_map_plan_free(&v3);
  vz_map_plan_free(&back);

  /* detection */
  vz_naming got;
  size_t covered = 0;
  CHECK_OK(vz_map_detect(lavis.e, lavis.n, &got, &covered));
  CHECK(got == VZ_NAMING_LAVIS && covered == lavis.n);
  CHECK_OK(vz_map_detect(mf.e, mf.n, &got, &covered));
  CHECK(got == VZ_NAMING_MINDFORMERS && covered == mf.n);
  CHECK_OK(vz_map_detect(hf.e, hf.n, &got, &covered));
  CHECK(got == VZ_NAMING_HF && covered == hf.n);

  list_free(&lavis);
  list_free(&mf);
  list_free(&hf);
  list_free(&mf_extra);
  list_free(&mf_ckpt);
  list_free(&lavis_hf);
  list_free(&mf_hf);
  list_free(&vlzoo_want);
}

/* eva_vit_g.pth (unprefixed, one block more than BLIP-2 uses) merged with a
 * stage-1 file that has no ViT (as LAVIS saves blip2_pretrained.pth). */
static void test_eva_merge(void) {
  list eva = load("lavis_eva_vit_g.json", NULL);
  list lavis = load("lavis_blip2_qformer.json", NULL);
  list mf_extra = {0};
  list mf = load("mindformers_blip2_qformer.json", &mf_extra);
  list mf_ckpt = concat(&mf, &mf_extra);
  static const char *const vit[] = {"visual_encoder.", NULL};
  list stage1 = without(&lavis, vit);
  list merged = concat(&stage1, &eva);

  vz_map_plan mid = {0}, out = {0};
  CHECK_OK(vz_map_to_vlzoo(VZ_NAMING_LAVIS, &two_layers, merged.e, merged.n, &mid));
  CHECK(has_note(&mid, "dropped blocks.2.attn.qkv.weight"));
  CHECK(!find(mid.items, mid.count, "vision_model.encoder.layers.2.mlp.fc1.weight"));
  CHECK_OK(vz_map_from_vlzoo(VZ_NAMING_MINDFORMERS, &two_layers, mid.items, mid.count, &out));
  check_same("eva+lavis->mindformers", &out, &mf_ckpt);
  vz_map_plan_free(&mid);
  vz_map_plan_free(&out);

  /* the ViT alone */
  list mf_vit = only(&mf, "visual_encoder.");
  CHECK_OK(vz_map_to_vlzoo(VZ_NAMING_LAVIS, &two_layers, eva.e, eva.n, &mid));
  CHECK_OK(vz_map_from_vlzoo(VZ_NAMING_MINDFORMERS, &two_layers, mid.items, mid.count, &out));
  check_same("eva->mindformers", &out, &mf_vit);
  vz_map_plan_free(&mid);
  vz_map_plan_free(&out);

  /* the same ViT twice, prefixed and not: two inputs give one tensor */
  list both = concat(&lavis, &eva);
  CHECK_FAILS(vz_map_to_vlzoo(VZ_NAMING_LAVIS, &two_layers, both.e, both.n, &mid), VZ_ERR_FORMAT);
  CHECK(strstr(vz_last_error(), "vision_model.embeddings.class_embedding") != NULL);

  list_free(&eva);
  list_free(&lavis);
  list_free(&mf);
  list_free(&mf_extra);
  list_free(&mf_ckpt);
  list_free(&stage1);
  list_free(&merged);
  list_free(&mf_vit);
  list_free(&both);
}

static void test_stage2(void) {
  list hf = load("hf_blip2_model_opt.json", NULL);
  const vz_map_model *opt = vz_map_model_find("blip2_opt_2.7b");
  CHECK(opt && opt->has_llm);
  vz_map_plan mid = {0}, out = {0};
  CHECK_FAILS(vz_map_to_vlzoo(VZ_NAMING_HF, opt, hf.e, hf.n, &mid), VZ_ERR_UNSUPPORTED);
  CHECK(strstr(vz_last_error(), "LLM name maps come with the stage-2 issue") != NULL);
  CHECK(strstr(vz_last_error(), "language_model.") != NULL);
  static const char *const llm[] = {"language_model.", NULL};
  list bridge = without(&hf, llm);
  CHECK_OK(vz_map_to_vlzoo(VZ_NAMING_HF, opt, bridge.e, bridge.n, &mid));
  CHECK_OK(vz_map_from_vlzoo(VZ_NAMING_MINDFORMERS, opt, mid.items, mid.count, &out));
  CHECK(find(out.items, out.count, "llm_proj.weight") != NULL);
  CHECK(find(out.items, out.count, "qformer.bert.encoder.layer.1.output_query.layernorm.gamma"));
  CHECK(!find(out.items, out.count, "qformer.bert.embeddings.position_ids"));
  vz_map_plan_free(&mid);
  vz_map_plan_free(&out);
  /* a stage-2 projection is not part of a stage-1 model */
  CHECK_FAILS(vz_map_to_vlzoo(VZ_NAMING_HF, vz_map_model_find("blip2_stage1_vit_g"), bridge.e,
                              bridge.n, &mid),
              VZ_ERR_FORMAT);
  CHECK(strstr(vz_last_error(), "language_projection") != NULL);
  /* stage-1 text parts are dropped, with a note, for a stage-2 model */
  list lavis = load("lavis_blip2_qformer.json", NULL);
  CHECK_OK(vz_map_to_vlzoo(VZ_NAMING_LAVIS, opt, lavis.e, lavis.n, &mid));
  CHECK(has_note(&mid, "dropped temp: not part of this model"));
  CHECK(!find(mid.items, mid.count, "embeddings.word_embeddings.weight"));
  CHECK(find(mid.items, mid.count, "qformer.encoder.layer.0.crossattention.attention.key.weight"));
  vz_map_plan_free(&mid);
  list_free(&hf);
  list_free(&bridge);
  list_free(&lavis);
}

/* A one-tensor list for the error cases. */
static vz_status map_one(vz_naming from, const vz_map_model *m, const char *name, int ndim,
                         const int64_t *shape) {
  list l = {0};
  list_add(&l, name, VZ_F32, ndim, shape);
  vz_map_plan p = {0};
  vz_status st = vz_map_to_vlzoo(from, m, l.e, l.n, &p);
  vz_map_plan_free(&p);
  list_free(&l);
  return st;
}

static void test_errors(void) {
  const vz_map_model *vitg = vz_map_model_find("blip2_stage1_vit_g");
  CHECK(vitg && vitg->vision_layers == 39 && vitg->qformer_layers == 12);
  int64_t v[1] = {768}, m[2] = {768, 768};
  CHECK_FAILS(map_one(VZ_NAMING_LAVIS, vitg,
                      "Qformer.bert.encoder.layer.0.attention.sself.query.bias", 1, v),
              VZ_ERR_FORMAT);
  CHECK(strstr(vz_last_error(), "attention.sself.query.bias") != NULL);
  /* cross-attention only on even layers */
  CHECK_FAILS(map_one(VZ_NAMING_LAVIS, vitg,
                      "Qformer.bert.encoder.layer.3.crossattention.self.query.weight", 2, m),
              VZ_ERR_FORMAT);
  CHECK(strstr(vz_last_error(), "layer 3") != NULL);
  CHECK_OK(map_one(VZ_NAMING_LAVIS, vitg,
                   "Qformer.bert.encoder.layer.10.crossattention.self.query.weight", 2, m));
  /* layer numbers beyond the model */
  CHECK_FAILS(
      map_one(VZ_NAMING_LAVIS, vitg, "Qformer.bert.encoder.layer.12.output.dense.bias", 1, v),
      VZ_ERR_FORMAT);
  CHECK_FAILS(map_one(VZ_NAMING_LAVIS, vitg, "visual_encoder.blocks.39.norm1.weight", 1, v),
              VZ_ERR_FORMAT);
  CHECK_OK(map_one(VZ_NAMING_LAVIS, vitg, "visual_encoder.blocks.38.norm1.weight", 1, v));
  CHECK_OK(map_one(VZ_NAMING_LAVIS, vitg, "blocks.39.norm1.weight", 1, v)); /* eva: dropped */
  CHECK_FAILS(map_one(VZ_NAMING_LAVIS, vitg, "visual_encoder.blocks.07.norm1.weight", 1, v),
              VZ_ERR_FORMAT);
  /* q_bias without v_bias */
  CHECK_FAILS(map_one(VZ_NAMING_LAVIS, vitg, "visual_encoder.blocks.0.attn.q_bias", 1, v),
              VZ_ERR_FORMAT);
  CHECK(strstr(vz_last_error(), "visual_encoder.blocks.0.attn.v_bias") != NULL);
  /* MindFormers dense1 and dense2 without dense3 */
  list l = {0};
  list_add(&l, "visual_encoder.blocks.0.attention.dense1.weight", VZ_F32, 2, m);
  list_add(&l, "visual_encoder.blocks.0.attention.dense2.weight", VZ_F32, 2, m);
  vz_map_plan p = {0};
  CHECK_FAILS(vz_map_to_vlzoo(VZ_NAMING_MINDFORMERS, vitg, l.e, l.n, &p), VZ_ERR_FORMAT);
  CHECK(strstr(vz_last_error(), "dense3.weight") != NULL);
  /* ... and parts that do not fit together */
  list_add(&l, "visual_encoder.blocks.0.attention.dense3.weight", VZ_F32, 1, v);
  CHECK_FAILS(vz_map_to_vlzoo(VZ_NAMING_MINDFORMERS, vitg, l.e, l.n, &p), VZ_ERR_SHAPE);
  list_free(&l);
  /* a transpose needs a matrix */
  CHECK_FAILS(
      map_one(VZ_NAMING_MINDFORMERS, vitg, "visual_encoder.blocks.0.output.mapping.weight", 1, v),
      VZ_ERR_SHAPE);
  /* writing: a qkv that does not split in three */
  list_add(&l, "vision_model.encoder.layers.0.self_attn.qkv.weight", VZ_F32, 2,
           (int64_t[]){100, 8});
  CHECK_OK(vz_map_to_vlzoo(VZ_NAMING_HF, vitg, l.e, l.n, &p));
  vz_map_plan q = {0};
  CHECK_FAILS(vz_map_from_vlzoo(VZ_NAMING_MINDFORMERS, vitg, p.items, p.count, &q), VZ_ERR_SHAPE);
  vz_map_plan_free(&p);
  list_free(&l);
  /* namings and models */
  vz_naming n;
  CHECK_OK(vz_naming_from_name("mindformers", &n));
  CHECK(n == VZ_NAMING_MINDFORMERS);
  CHECK_FAILS(vz_naming_from_name("timm", &n), VZ_ERR_INVALID_ARGUMENT);
  CHECK(vz_map_model_find("blip2_stage1_vitg") == NULL);
  char buf[256];
  CHECK(strstr(vz_map_model_suggest("blip2_stage1_vitg", buf, sizeof buf), "blip2_stage1_vit_g"));
  CHECK(strstr(vz_map_model_suggest("stage1_classif", buf, sizeof buf),
               "blip2_stage1_classification"));
  CHECK(vz_map_model_suggest("zzzzzzzzzzzzzzzzzzzzzz", buf, sizeof buf)[0] == '\0');
  size_t count = 0;
  for (const char *const *name = vz_map_model_names(); *name; name++, count++)
    CHECK(vz_map_model_find(*name) != NULL);
  CHECK(count >= 14);
}

/* The full-size stage-1 model: 39 ViT blocks, 12 Q-Former layers. The
 * per-layer names of the fixture are repeated to every layer. */
static void test_full_size(void) {
  list lavis = load("lavis_blip2_qformer.json", NULL);
  list full = {0};
  char name[256];
  for (size_t i = 0; i < lavis.n; i++) {
    const char *s = lavis.e[i].name;
    if (strstr(s, "blocks.1.") || strstr(s, "layer.1."))
      continue; /* layer 0 has every per-layer pattern */
    const char *vb = strstr(s, "blocks.0."), *ql = strstr(s, "layer.0.");
    if (!vb && !ql) {
      list_add(&full, s, lavis.e[i].dtype, lavis.e[i].ndim, lavis.e[i].shape);
      continue;
    }
    const char *digit = vb ? vb + 7 : ql + 6;
    bool cross = strstr(s, "crossattention") != NULL;
    for (int k = 0; k < (vb ? 39 : 12); k++)
      if (!cross || k % 2 == 0) {
        snprintf(name, sizeof name, "%.*s%d%s", (int)(digit - s), s, k, digit + 1);
        list_add(&full, name, lavis.e[i].dtype, lavis.e[i].ndim, lavis.e[i].shape);
      }
  }
  const vz_map_model *vitg = vz_map_model_find("blip2_stage1_vit_g");
  vz_map_plan mid = {0}, out = {0};
  CHECK_OK(vz_map_to_vlzoo(VZ_NAMING_LAVIS, vitg, full.e, full.n, &mid));
  CHECK_OK(vz_map_from_vlzoo(VZ_NAMING_MINDFORMERS, vitg, mid.items, mid.count, &out));
  /* LAVIS 13 tensors per block, MindFormers 16; Q-Former layers 22 + 10 on
   * even layers in both; MindFormers adds fc_norm (2), drops nothing. */
  size_t lavis_want = 4 + 39 * 13 + 2 + 5 + 12 * 22 + 6 * 10 + 7 + 6 + 2;
  CHECK(full.n == lavis_want);
  CHECK(out.count == lavis_want + 39 * 3 + 2);
  CHECK(find(out.items, out.count, "visual_encoder.blocks.38.attention.dense2.bias") != NULL);
  CHECK(find(out.items, out.count,
             "qformer.bert.encoder.layer.10.crossattention.self_att.key.weight"));
  CHECK(!find(out.items, out.count,
              "qformer.bert.encoder.layer.11.crossattention.self_att.key.weight"));
  vz_map_plan_free(&mid);
  vz_map_plan_free(&out);
  list_free(&lavis);
  list_free(&full);
}

int main(void) {
  fixtures_dir = test_fixtures_dir();
  if (!fixtures_dir) {
    printf("test_name_map: VLZOO_FIXTURES_DIR is not set; skipping\n");
    return TEST_SKIP;
  }
  test_routes();
  test_eva_merge();
  test_stage2();
  test_errors();
  test_full_size();
  return test_finish("test_name_map");
}

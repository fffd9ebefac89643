/* BLIP-2 stage 1 (include/vlzoo/model.h) against transformers / LAVIS:
 * the tiny fixtures of tests/fixtures/make_blip2_parity.py run through every
 * output and loss and must match (max |error| <= 1e-4 * max(1, max |ref|)
 * and cosine >= 0.99999); the same comparison must fail once one weight is
 * perturbed by 1e-3 (a ViT, a Q-Former and a head weight), while outputs
 * that do not depend on that weight still pass; loading must name the first
 * missing tensor and the first wrong shape; bf16 and f16 weights must stay
 * within cosine 0.999 of the f32 references. test_blip2_full.c reuses this
 * file for the full-size model (VLZOO_BLIP2_FULL_DIR). */
#define _XOPEN_SOURCE 700 /* mkdtemp */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tests/test_util.h"
#include "vlzoo/model.h"
#include "vlzoo/weights.h"

static vz_backend *g_be;
#ifndef VZ_BLIP2_FULL_ONLY
static char g_tmp[256]; /* files this test writes */
#endif

/* ---- fixtures ---- */

typedef struct fixture {
  char dir[1024];
  vz_blip2_stage1_params p;
  vz_weights *io; /* inputs and reference outputs */
} fixture;

static bool read_params(const char *path, vz_blip2_stage1_params *p) {
  FILE *f = fopen(path, "r");
  if (!f)
    return false;
  memset(p, 0, sizeof *p);
  p->itc_pooling = VZ_ITC_MAX_OVER_QUERIES;
  char key[128];
  double v;
  int n = 0;
  char line[256];
  while (fgets(line, sizeof line, f)) {
    if (line[0] == '#' || sscanf(line, "%127s %lf", key, &v) != 2)
      continue;
    struct {
      const char *name;
      int *i;
      float *f;
    } keys[] = {
        {"vision.image_size", &p->vision.image_size, NULL},
        {"vision.patch_size", &p->vision.patch_size, NULL},
        {"vision.hidden_size", &p->vision.hidden_size, NULL},
        {"vision.num_layers", &p->vision.num_layers, NULL},
        {"vision.num_heads", &p->vision.num_heads, NULL},
        {"vision.intermediate_size", &p->vision.intermediate_size, NULL},
        {"vision.layer_norm_eps", NULL, &p->vision.layer_norm_eps},
        {"vision.post_layer_norm_eps", NULL, &p->vision.post_layer_norm_eps},
        {"vision.pos_embed_grid", &p->vision.pos_embed_grid, NULL},
        {"qformer.num_query_tokens", &p->qformer.num_query_tokens, NULL},
        {"qformer.hidden_size", &p->qformer.hidden_size, NULL},
        {"qformer.num_layers", &p->qformer.num_layers, NULL},
        {"qformer.num_heads", &p->qformer.num_heads, NULL},
        {"qformer.intermediate_size", &p->qformer.intermediate_size, NULL},
        {"qformer.cross_attention_freq", &p->qformer.cross_attention_freq, NULL},
        {"qformer.encoder_hidden_size", &p->qformer.encoder_hidden_size, NULL},
        {"qformer.vocab_size", &p->qformer.vocab_size, NULL},
        {"qformer.max_position_embeddings", &p->qformer.max_position_embeddings, NULL},
        {"qformer.layer_norm_eps", NULL, &p->qformer.layer_norm_eps},
        {"qformer.embed_dim", &p->qformer.embed_dim, NULL},
        {"qformer.dec_token_id", &p->qformer.dec_token_id, NULL},
        {"qformer.pad_token_id", &p->qformer.pad_token_id, NULL},
        {"default_temp", NULL, &p->default_temp},
    };
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
      if (strcmp(key, keys[k].name) == 0) {
        if (keys[k].i)
          *keys[k].i = (int)v;
        else
          *keys[k].f = (float)v;
        n++;
      }
    }
  }
  fclose(f);
  return n == 23;
}

static bool fixture_open(fixture *fx, const char *dir) {
  memset(fx, 0, sizeof *fx);
  snprintf(fx->dir, sizeof fx->dir, "%s", dir);
  char path[1100];
  snprintf(path, sizeof path, "%s/params.txt", dir);
  if (!read_params(path, &fx->p)) {
    fprintf(stderr, "cannot read %s\n", path);
    return false;
  }
  snprintf(path, sizeof path, "%s/io.safetensors", dir);
  if (vz_weights_open(path, &fx->io) != VZ_OK) {
    fprintf(stderr, "cannot open %s: %s\n", path, vz_last_error());
    return false;
  }
  return true;
}

static void fixture_close(fixture *fx) { vz_weights_close(fx->io); }

static const char *weights_path(const fixture *fx) {
  static char path[1100];
  snprintf(path, sizeof path, "%s/model.safetensors", fx->dir);
  return path;
}

/* An io tensor uploaded with its file dtype, or NULL when absent. */
static vz_tensor *io_tensor(const fixture *fx, const char *name) {
  size_t i;
  if (vz_weights_find(fx->io, name, &i) != VZ_OK)
    return NULL;
  const vz_weight_info *info = vz_weights_info(fx->io, i);
  const void *data;
  size_t nbytes;
  vz_tensor *t = NULL;
  CHECK_OK(vz_weights_data(fx->io, i, &data, &nbytes));
  CHECK_OK(vz_tensor_from_host(g_be, info->dtype, info->ndim, info->shape, data, nbytes, &t));
  return t;
}

/* ---- running every output ---- */

enum {
  O_IMAGE_EMBEDS,
  O_QUERY_OUTPUT,
  O_IMAGE_FEATURES,
  O_TEXT_FEATURES,
  O_ITC,
  O_ITM_LOGITS,
  O_LM_LOGITS,
  O_ITC_LOSS,
  O_ITM_LOSS,
  O_LM_LOSS,
  O_COUNT
};
static const char *const k_names[O_COUNT] = {
    "image_embeds", "query_output", "image_features", "text_features", "itc",
    "itm_logits",   "lm_logits",    "itc_loss",       "itm_loss",      "lm_loss"};

typedef struct outputs {
  float *v[O_COUNT];
  int64_t n[O_COUNT];
  double seconds_vit, seconds_qformer; /* image -> embeds; embeds -> query output */
} outputs;

static void outputs_free(outputs *o) {
  for (int i = 0; i < O_COUNT; i++)
    free(o->v[i]);
  memset(o, 0, sizeof *o);
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void keep(outputs *o, int which, vz_tensor *t) {
  if (!t)
    return;
  o->v[which] = test_read_f32(t);
  o->n[which] = vz_tensor_numel(t);
}

static void keep_scalar(outputs *o, int which, float v) {
  o->v[which] = malloc(sizeof(float));
  o->v[which][0] = v;
  o->n[which] = 1;
}

/* Runs every output of the model on the fixture's inputs, each stage fed by
 * the model's own previous result. */
static bool run_all(const vz_blip2_stage1 *m, const fixture *fx, outputs *o) {
  memset(o, 0, sizeof *o);
  int failures = test_failures;
  vz_tensor *pixels = io_tensor(fx, "pixel_values"), *ids = io_tensor(fx, "input_ids");
  vz_tensor *mask = io_tensor(fx, "attention_mask"), *lm_ids = io_tensor(fx, "lm_input_ids");
  vz_tensor *neg_img = io_tensor(fx, "itm_neg_image_index");
  vz_tensor *neg_txt = io_tensor(fx, "itm_neg_text_index");
  vz_tensor *emb = NULL, *qo = NULL, *imf = NULL, *txf = NULL, *itc = NULL, *itm = NULL, *lm = NULL,
            *nemb = NULL, *nids = NULL, *nmask = NULL;
  double t0 = now();
  CHECK_OK(vz_blip2_image_embeds(m, pixels, &emb));
  double t1 = now();
  if (emb)
    CHECK_OK(vz_blip2_query_output(m, emb, &qo));
  double t2 = now();
  o->seconds_vit = t1 - t0;
  o->seconds_qformer = t2 - t1;
  if (qo)
    CHECK_OK(vz_blip2_image_features(m, qo, &imf));
  CHECK_OK(vz_blip2_text_features(m, ids, mask, &txf));
  if (imf && txf)
    CHECK_OK(vz_blip2_itc(m, imf, txf, &itc));
  if (emb) {
    CHECK_OK(vz_blip2_itm_logits(m, emb, ids, mask, &itm));
    if (lm_ids && vz_weights_find(fx->io, "lm_logits", &(size_t){0}) == VZ_OK)
      CHECK_OK(vz_blip2_lm_logits(m, emb, lm_ids, mask, &lm)); /* [DEC] first */
    CHECK_OK(vz_index_select(emb, 0, neg_img, &nemb));
    CHECK_OK(vz_index_select(ids, 0, neg_txt, &nids));
    CHECK_OK(vz_index_select(mask, 0, neg_txt, &nmask));
  }
  keep(o, O_IMAGE_EMBEDS, emb);
  keep(o, O_QUERY_OUTPUT, qo);
  keep(o, O_IMAGE_FEATURES, imf);
  keep(o, O_TEXT_FEATURES, txf);
  keep(o, O_ITC, itc);
  keep(o, O_ITM_LOGITS, itm);
  keep(o, O_LM_LOGITS, lm);
  float loss;
  if (imf && txf) {
    CHECK_OK(vz_blip2_itc_loss(m, imf, txf, &loss));
    keep_scalar(o, O_ITC_LOSS, loss);
  }
  if (nemb) {
    CHECK_OK(vz_blip2_itm_loss(m, emb, ids, mask, nemb, nids, nmask, &loss));
    keep_scalar(o, O_ITM_LOSS, loss);
    CHECK_OK(vz_blip2_lm_loss(m, emb, ids, mask, &loss));
    keep_scalar(o, O_LM_LOSS, loss);
  }
  vz_tensor *all[] = {pixels, ids, mask, lm_ids, neg_img, neg_txt, emb,  qo,
                      imf,    txf, itc,  itm,    lm,      nemb,    nids, nmask};
  for (size_t k = 0; k < sizeof all / sizeof all[0]; k++)
    vz_tensor_free(all[k]);
  return test_failures == failures;
}

/* ---- comparing ---- */

typedef struct verdict {
  double max_err, tol, cosine, max_ref;
  bool pass;
} verdict;

static verdict compare(const float *got, const float *want, int64_t n) {
  verdict v = {0};
  double dot = 0, gg = 0, ww = 0;
  for (int64_t i = 0; i < n; i++) {
    double e = fabs((double)got[i] - want[i]);
    if (!(e <= v.max_err))
      v.max_err = isnan(e) ? INFINITY : e;
    v.max_ref = fmax(v.max_ref, fabs(want[i]));
    dot += (double)got[i] * want[i];
    gg += (double)got[i] * got[i];
    ww += (double)want[i] * want[i];
  }
  v.cosine = gg > 0 && ww > 0 ? dot / sqrt(gg * ww) : (gg == ww ? 1.0 : 0.0);
  v.tol = 1e-4 * fmax(1.0, v.max_ref);
  v.pass = v.max_err <= v.tol && v.cosine >= 0.99999;
  return v;
}

/* The reference of output `which` as host floats (NULL when the fixture has
 * none, like lm_logits at full size). */
static float *reference(const fixture *fx, int which, int64_t *n) {
  vz_tensor *t = io_tensor(fx, k_names[which]);
  if (!t)
    return NULL;
  float *r = test_read_f32(t);
  *n = vz_tensor_numel(t);
  vz_tensor_free(t);
  return r;
}

/* Compares every output; fills pass[] (true when absent from the fixture)
 * and prints a line each when `print`. */
static void judge(const fixture *fx, const outputs *o, bool pass[O_COUNT], verdict vs[O_COUNT],
                  const char *label, bool print) {
  for (int i = 0; i < O_COUNT; i++) {
    int64_t n = 0;
    float *ref = reference(fx, i, &n);
    pass[i] = true;
    vs[i] = (verdict){0};
    if (!ref)
      continue;
    if (!o->v[i] || o->n[i] != n) {
      pass[i] = false;
      vs[i].max_err = INFINITY;
    } else {
      vs[i] = compare(o->v[i], ref, n);
      pass[i] = vs[i].pass;
    }
    if (print)
      printf("  %-8s %-15s max|err| %.3e (tol %.1e)  cosine %.9f  %s\n", label, k_names[i],
             vs[i].max_err, vs[i].tol, vs[i].cosine, pass[i] ? "ok" : "FAIL");
    free(ref);
  }
}

/* Loads the model and closes the weights at once: from here on the model
 * keeps the file open for the bytes it uses in place. Where the backend
 * reads host memory (the CPU) no weight is uploaded: f32 weights are used
 * where they lie in the file, and other dtypes cast from there; the one
 * upload is the model's own constant (the 4-byte mask value). */
static vz_blip2_stage1 *load(const vz_blip2_stage1_params *p, const char *path, vz_dtype dtype) {
  vz_weights *w = NULL;
  vz_blip2_stage1 *m = NULL;
  CHECK_OK(vz_weights_open(path, &w));
  vz_backend_reset_transfers(g_be);
  if (w)
    CHECK_OK(vz_blip2_stage1_load(p, w, g_be, dtype, &m));
  vz_weights_close(w);
  vz_transfer_counts moved = vz_backend_transfers(g_be);
  if (m && vz_backend_wraps_host_memory(g_be) && (moved.uploads > 1 || moved.upload_bytes > 4)) {
    fprintf(stderr, "loading %s uploaded %llu bytes in %llu copies\n", path,
            (unsigned long long)moved.upload_bytes, (unsigned long long)moved.uploads);
    test_failures++;
  }
  return m;
}

/* bf16 / f16 matmul weights against the f32 references: cosine >= 0.999,
 * and for the scalar losses (where a cosine says nothing) 1% relative. */
static void check_low_precision(const fixture *fx, const outputs *o, const char *label,
                                vz_dtype dtype) {
  bool pass[O_COUNT];
  verdict vs[O_COUNT];
  judge(fx, o, pass, vs, label, false);
  printf("%s (%s weights) against the f32 reference:\n", label, vz_dtype_name(dtype));
  for (int i = 0; i < O_COUNT; i++) {
    if (!o->v[i] || vs[i].tol == 0)
      continue;
    bool scalar = o->n[i] == 1;
    double rel = vs[i].max_err / fmax(vs[i].max_ref, 1e-30);
    bool ok = scalar ? rel <= 1e-2 : vs[i].cosine >= 0.999;
    printf("  %-9s %-15s max|err| %.3e  cosine %.6f  %s\n", label, k_names[i], vs[i].max_err,
           vs[i].cosine, ok ? "ok" : "FAIL");
    if (!ok) {
      fprintf(stderr, "%s %s: %s too far from f32\n", label, vz_dtype_name(dtype), k_names[i]);
      test_failures++;
    }
  }
}

#ifndef VZ_BLIP2_FULL_ONLY
/* ---- parity ---- */

/* ITM with each image prepared once and scored against every text: row b
 * of image b's logits must equal the reference's pair (image b, text b). */
static void check_itm_one_image(const vz_blip2_stage1 *m, const fixture *fx, const char *name) {
  vz_tensor *pix = io_tensor(fx, "pixel_values"), *ids = io_tensor(fx, "input_ids");
  vz_tensor *mask = io_tensor(fx, "attention_mask"), *ref = io_tensor(fx, "itm_logits");
  vz_tensor *emb = NULL;
  CHECK_OK(vz_blip2_image_embeds(m, pix, &emb));
  float *want = ref ? test_read_f32(ref) : NULL;
  const int64_t B = emb ? emb->shape[0] : 0;
  float *got = calloc((size_t)(2 * (B ? B : 1)), sizeof *got);
  for (int64_t b = 0; b < B && want && got; b++) {
    vz_tensor *one = NULL, *logits = NULL;
    vz_blip2_itm_image *img = NULL;
    CHECK_OK(vz_slice(emb, 0, b, b + 1, 1, &one));
    CHECK_OK(vz_blip2_itm_image_prepare(m, one, &img));
    if (img)
      CHECK_OK(vz_blip2_itm_logits_one_image(m, img, ids, mask, &logits));
    if (logits) {
      CHECK(logits->shape[0] == B && logits->shape[1] == 2);
      float *all = test_read_f32(logits);
      got[2 * b] = all[2 * b];
      got[2 * b + 1] = all[2 * b + 1];
      free(all);
    }
    vz_blip2_itm_image_free(img);
    vz_tensor_free(logits);
    vz_tensor_free(one);
  }
  verdict v = want && got && B ? compare(got, want, 2 * B) : (verdict){0};
  printf("  %-8s %-15s max|err| %.3e  cosine %.9f  %s\n", name, "itm_one_image", v.max_err,
         v.cosine, v.pass ? "ok" : "FAIL");
  CHECK(v.pass);
  free(got);
  free(want);
  vz_tensor *all[] = {pix, ids, mask, ref, emb};
  for (size_t k = 0; k < sizeof all / sizeof all[0]; k++)
    vz_tensor_free(all[k]);
}

static void test_parity(const fixture *fx, const char *name) {
  printf("%s (f32 weights):\n", name);
  vz_blip2_stage1 *m = load(&fx->p, weights_path(fx), VZ_F32);
  if (!m)
    return;
  CHECK(vz_blip2_stage1_has_lm_head(m));
  outputs o;
  CHECK(run_all(m, fx, &o));
  bool pass[O_COUNT];
  verdict vs[O_COUNT];
  judge(fx, &o, pass, vs, name, true);
  for (int i = 0; i < O_COUNT; i++)
    if (!pass[i]) {
      fprintf(stderr, "%s: %s does not match the reference\n", name, k_names[i]);
      test_failures++;
    }
  outputs_free(&o);
  check_itm_one_image(m, fx, name);
  vz_blip2_stage1_free(m);

  /* MindFormers' classifier pooling: query 0 only */
  vz_blip2_stage1_params p = fx->p;
  p.itc_pooling = VZ_ITC_FIRST_QUERY;
  m = load(&p, weights_path(fx), VZ_F32);
  int64_t n = 0;
  vz_tensor *ref = io_tensor(fx, "itc_first_query");
  if (m && ref) {
    vz_tensor *pix = io_tensor(fx, "pixel_values"), *ids = io_tensor(fx, "input_ids"),
              *mask = io_tensor(fx, "attention_mask");
    vz_tensor *emb = NULL, *qo = NULL, *imf = NULL, *txf = NULL, *itc = NULL;
    CHECK_OK(vz_blip2_image_embeds(m, pix, &emb));
    CHECK_OK(vz_blip2_query_output(m, emb, &qo));
    CHECK_OK(vz_blip2_image_features(m, qo, &imf));
    CHECK_OK(vz_blip2_text_features(m, ids, mask, &txf));
    CHECK_OK(vz_blip2_itc(m, imf, txf, &itc));
    float *got = itc ? test_read_f32(itc) : NULL, *want = test_read_f32(ref);
    n = vz_tensor_numel(ref);
    verdict v = got ? compare(got, want, n) : (verdict){0};
    printf("  %-8s %-15s max|err| %.3e  cosine %.9f  %s\n", name, "itc_first_query", v.max_err,
           v.cosine, v.pass ? "ok" : "FAIL");
    CHECK(v.pass);
    free(got);
    free(want);
    vz_tensor *all[] = {pix, ids, mask, emb, qo, imf, txf, itc};
    for (size_t k = 0; k < sizeof all / sizeof all[0]; k++)
      vz_tensor_free(all[k]);
  }
  vz_tensor_free(ref);
  vz_blip2_stage1_free(m);
}

static void test_low_precision(const fixture *fx, const char *name, vz_dtype dtype) {
  vz_blip2_stage1 *m = load(&fx->p, weights_path(fx), dtype);
  if (!m)
    return;
  outputs o;
  CHECK(run_all(m, fx, &o));
  check_low_precision(fx, &o, name, dtype);
  outputs_free(&o);
  vz_blip2_stage1_free(m);
}

/* ---- weight files made here ---- */

/* A copy of `src` with tensor `perturb` element `flat` increased by `delta`,
 * the tensors whose names start with `drop_name` left out and tensor
 * `reshape_name` given shape
 * [rows, cols] (its first rows*cols elements); any may be NULL. */
static bool write_variant(const char *src, const char *dst, const char *perturb, int64_t flat,
                          float delta, const char *drop_name, const char *reshape_name,
                          int64_t rows, int64_t cols) {
  vz_weights *w = NULL;
  vz_weights_writer *wr = NULL;
  void *copy = NULL;
  bool ok = false;
  if (vz_weights_open(src, &w) != VZ_OK ||
      vz_weights_writer_open(dst, VZ_FORMAT_SAFETENSORS, &wr) != VZ_OK)
    goto done;
  for (size_t i = 0; i < vz_weights_count(w); i++) {
    const vz_weight_info *info = vz_weights_info(w, i);
    const void *data;
    size_t nbytes;
    if (vz_weights_data(w, i, &data, &nbytes) != VZ_OK)
      goto done;
    if (drop_name && strncmp(info->name, drop_name, strlen(drop_name)) == 0)
      continue;
    int ndim = info->ndim;
    int64_t shape[VZ_WEIGHT_MAX_DIMS];
    memcpy(shape, info->shape, sizeof shape);
    if (reshape_name && strcmp(info->name, reshape_name) == 0) {
      ndim = 2;
      shape[0] = rows;
      shape[1] = cols;
      nbytes = (size_t)(rows * cols) * vz_dtype_size(info->dtype);
    }
    if (perturb && strcmp(info->name, perturb) == 0) {
      if (info->dtype != VZ_F32 || (size_t)flat >= nbytes / sizeof(float))
        goto done;
      copy = malloc(nbytes);
      memcpy(copy, data, nbytes);
      ((float *)copy)[flat] += delta;
      data = copy;
    }
    if (vz_weights_writer_add(wr, info->name, info->dtype, ndim, shape, data, nbytes) != VZ_OK)
      goto done;
  }
  ok = vz_weights_writer_commit(wr) == VZ_OK;
  wr = NULL;
done:
  if (!ok)
    fprintf(stderr, "cannot write %s: %s\n", dst, vz_last_error());
  vz_weights_writer_abort(wr);
  vz_weights_close(w);
  free(copy);
  return ok;
}

static int output_index(const char *name) {
  for (int i = 0; i < O_COUNT; i++)
    if (strcmp(k_names[i], name) == 0)
      return i;
  return -1;
}

/* Outputs a weight cannot influence, from where it sits in the model. */
static bool independent(const char *weight, int output) {
  if (strncmp(weight, "vision_model.", 13) == 0)
    return output == O_TEXT_FEATURES;
  if (strstr(weight, "_query.") || strstr(weight, "crossattention") ||
      strcmp(weight, "query_tokens") == 0)
    return output == O_IMAGE_EMBEDS || output == O_TEXT_FEATURES;
  if (strncmp(weight, "vision_projection.", 18) == 0)
    return output != O_IMAGE_FEATURES && output != O_ITC && output != O_ITC_LOSS;
  return false;
}

/* Each weight listed in mutation.txt, perturbed by 1e-3: the outputs the
 * script saw move must now fail the parity comparison; those that cannot
 * depend on the weight must still pass. */
static void test_mutations(const fixture *fx, const char *name) {
  char path[1100];
  snprintf(path, sizeof path, "%s/mutation.txt", fx->dir);
  FILE *f = fopen(path, "r");
  if (!f)
    return;
  char line[512];
  int tried = 0;
  while (fgets(line, sizeof line, f)) {
    char weight[256], moved[256];
    long long flat;
    if (line[0] == '#' || sscanf(line, "%255s %lld %255s", weight, &flat, moved) != 3)
      continue;
    char dst[600];
    snprintf(dst, sizeof dst, "%s/mutated.safetensors", g_tmp);
    if (!write_variant(weights_path(fx), dst, weight, flat, 1e-3f, NULL, NULL, 0, 0)) {
      test_failures++;
      continue;
    }
    vz_blip2_stage1 *m = load(&fx->p, dst, VZ_F32);
    unlink(dst);
    if (!m)
      continue;
    outputs o;
    run_all(m, fx, &o);
    bool pass[O_COUNT];
    verdict vs[O_COUNT];
    judge(fx, &o, pass, vs, name, false);
    printf("%s: %s[%lld] += 1e-3:", name, weight, flat);
    for (int i = 0; i < O_COUNT; i++)
      if (o.v[i])
        printf(" %s %s (%.1e/%.1e)", k_names[i], pass[i] ? "passes" : "FAILS", vs[i].max_err,
               vs[i].tol);
    printf("\n");
    for (char *tok = strtok(moved, ","); tok; tok = strtok(NULL, ",")) {
      int k = output_index(tok);
      CHECK(k >= 0);
      if (k >= 0 && pass[k]) {
        fprintf(stderr, "%s: perturbing %s went unnoticed in %s\n", name, weight, tok);
        test_failures++;
      }
    }
    for (int i = 0; i < O_COUNT; i++)
      if (independent(weight, i) && !pass[i]) {
        fprintf(stderr, "%s: perturbing %s changed %s, which cannot depend on it\n", name, weight,
                k_names[i]);
        test_failures++;
      }
    outputs_free(&o);
    vz_blip2_stage1_free(m);
    tried++;
  }
  fclose(f);
  CHECK(tried == 3);
}

/* Loading names the first missing tensor and the first wrong shape. */
static void test_load_errors(const fixture *fx) {
  char dst[600];
  snprintf(dst, sizeof dst, "%s/broken.safetensors", g_tmp);
  const char *fc1 = "vision_model.encoder.layers.1.mlp.fc1.weight";
  const char *query = "qformer.encoder.layer.0.attention.attention.query.weight";
  const vz_blip2_stage1_params *p = &fx->p;
  char want[512];
  vz_weights *w = NULL;
  vz_blip2_stage1 *m = NULL;

  /* a missing tensor (a later one is missing too: the first is named) */
  if (write_variant(weights_path(fx), dst, NULL, 0, 0, fc1, NULL, 0, 0)) {
    CHECK_OK(vz_weights_open(dst, &w));
    CHECK_FAILS(vz_blip2_stage1_load(p, w, g_be, VZ_F32, &m), VZ_ERR_NOT_FOUND);
    snprintf(want, sizeof want, "no tensor %s", fc1);
    CHECK(strstr(vz_last_error(), want) != NULL);
    CHECK(m == NULL);
    printf("missing tensor: %s\n", vz_last_error());
    vz_weights_close(w);
  }
  /* a wrong shape */
  if (write_variant(weights_path(fx), dst, NULL, 0, 0, NULL, fc1, p->vision.intermediate_size,
                    p->vision.hidden_size - 1)) {
    CHECK_OK(vz_weights_open(dst, &w));
    CHECK_FAILS(vz_blip2_stage1_load(p, w, g_be, VZ_F32, &m), VZ_ERR_SHAPE);
    snprintf(want, sizeof want, "%s has shape [%d, %d], expected [%d, %d]", fc1,
             p->vision.intermediate_size, p->vision.hidden_size - 1, p->vision.intermediate_size,
             p->vision.hidden_size);
    CHECK(strstr(vz_last_error(), want) != NULL);
    printf("wrong shape: %s\n", vz_last_error());
    vz_weights_close(w);
  }
  /* two faults: the first in load order (the ViT comes first) is named */
  if (write_variant(weights_path(fx), dst, NULL, 0, 0, query, fc1, 3, 3)) {
    CHECK_OK(vz_weights_open(dst, &w));
    CHECK_FAILS(vz_blip2_stage1_load(p, w, g_be, VZ_F32, &m), VZ_ERR_SHAPE);
    CHECK(strstr(vz_last_error(), fc1) != NULL && !strstr(vz_last_error(), query));
    vz_weights_close(w);
  }

  /* a Hugging Face file: no LM head, no temp; everything else still works */
  char hf[600];
  snprintf(hf, sizeof hf, "%s/hf.safetensors", g_tmp);
  if (write_variant(weights_path(fx), dst, NULL, 0, 0, "qformer.cls.", NULL, 0, 0) &&
      write_variant(dst, hf, NULL, 0, 0, "temp", NULL, 0, 0)) {
    vz_blip2_stage1_params q = *p;
    q.default_temp = 0.5f;
    m = load(&q, hf, VZ_F32);
    if (m) {
      CHECK(!vz_blip2_stage1_has_lm_head(m));
      CHECK(vz_blip2_stage1_temp(m) == 0.5f);
      vz_tensor *pix = io_tensor(fx, "pixel_values"), *ids = io_tensor(fx, "input_ids");
      vz_tensor *emb = NULL, *itm = NULL, *lm = NULL;
      float loss = 0;
      CHECK_OK(vz_blip2_image_embeds(m, pix, &emb));
      CHECK_OK(vz_blip2_itm_logits(m, emb, ids, NULL, &itm));
      CHECK_FAILS(vz_blip2_lm_logits(m, emb, ids, NULL, &lm), VZ_ERR_UNSUPPORTED);
      CHECK_FAILS(vz_blip2_lm_loss(m, emb, ids, NULL, &loss), VZ_ERR_UNSUPPORTED);
      CHECK(lm == NULL);
      vz_tensor *all[] = {pix, ids, emb, itm};
      for (size_t k = 0; k < sizeof all / sizeof all[0]; k++)
        vz_tensor_free(all[k]);
      vz_blip2_stage1_free(m);
      m = NULL;
    }
  }
  unlink(hf);
  unlink(dst);

  /* params that disagree with the file: one more Q-Former layer */
  CHECK_OK(vz_weights_open(weights_path(fx), &w));
  vz_blip2_stage1_params q = *p;
  q.qformer.num_layers++;
  CHECK_FAILS(vz_blip2_stage1_load(&q, w, g_be, VZ_F32, &m), VZ_ERR_NOT_FOUND);
  snprintf(want, sizeof want, "no tensor qformer.encoder.layer.%d.", p->qformer.num_layers);
  CHECK(strstr(vz_last_error(), want) != NULL);
  printf("extra layer: %s\n", vz_last_error());
  /* a wrong checkpoint grid */
  q = *p;
  q.vision.pos_embed_grid++;
  CHECK_FAILS(vz_blip2_stage1_load(&q, w, g_be, VZ_F32, &m), VZ_ERR_SHAPE);
  CHECK(strstr(vz_last_error(), "vision_model.embeddings.position_embedding has shape") != NULL);
  /* bad arguments */
  CHECK_FAILS(vz_blip2_stage1_load(p, w, g_be, VZ_I32, &m), VZ_ERR_DTYPE);
  q = *p;
  q.qformer.encoder_hidden_size++;
  CHECK_FAILS(vz_blip2_stage1_load(&q, w, g_be, VZ_F32, &m), VZ_ERR_INVALID_ARGUMENT);
  q = *p;
  q.vision.num_heads = 5;
  CHECK_FAILS(vz_blip2_stage1_load(&q, w, g_be, VZ_F32, &m), VZ_ERR_INVALID_ARGUMENT);
  CHECK(m == NULL);

  /* inputs of the wrong shape are refused with a message */
  CHECK_OK(vz_blip2_stage1_load(p, w, g_be, VZ_F32, &m));
  vz_weights_close(w);
  if (m) {
    vz_tensor *bad = NULL, *out = NULL;
    CHECK_OK(vz_tensor_zeros(g_be, VZ_F32, 4,
                             (int64_t[]){1, 3, p->vision.image_size + 1, p->vision.image_size + 1},
                             &bad));
    CHECK_FAILS(vz_blip2_image_embeds(m, bad, &out), VZ_ERR_SHAPE);
    vz_tensor_free(bad);
    CHECK_OK(vz_tensor_zeros(g_be, VZ_I64, 2,
                             (int64_t[]){1, p->qformer.max_position_embeddings + 1}, &bad));
    CHECK_FAILS(vz_blip2_text_features(m, bad, NULL, &out), VZ_ERR_SHAPE);
    vz_tensor_free(bad);
    CHECK(out == NULL);
    vz_blip2_stage1_free(m);
  }
}

#endif /* !VZ_BLIP2_FULL_ONLY */

#ifdef VZ_BLIP2_FULL_ONLY
/* ---- full size ---- */

static long peak_rss_kb(const char *field) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kb = -1;
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, field, strlen(field)) == 0)
      kb = atol(line + strlen(field));
  if (f)
    fclose(f);
  return kb;
}

/* Clears the kernel's record of this process's peak RSS (Linux). */
static void reset_peak_rss(void) {
  FILE *f = fopen("/proc/self/clear_refs", "w");
  if (f) {
    fputs("5", f);
    fclose(f);
  }
}

static void test_full(const char *dir) {
  fixture fx;
  if (!fixture_open(&fx, dir)) {
    test_failures++;
    return;
  }
  /* f16 takes the f16-product GEMM on avx512fp16 processors */
  vz_dtype dtypes[] = {VZ_F32, VZ_BF16, VZ_F16};
  for (size_t d = 0; d < sizeof dtypes / sizeof dtypes[0]; d++) {
    const char *dt = vz_dtype_name(dtypes[d]);
    reset_peak_rss();
    double t0 = now();
    vz_blip2_stage1 *m = load(&fx.p, weights_path(&fx), dtypes[d]);
    double t1 = now();
    if (!m)
      continue;
    printf("full %s: loaded in %.1f s; peak RSS while loading %ld MiB (the mapped file's pages "
           "included); after closing the file: RSS %ld MiB, of it anonymous %ld MiB\n",
           dt, t1 - t0, peak_rss_kb("VmHWM:") / 1024, peak_rss_kb("VmRSS:") / 1024,
           peak_rss_kb("RssAnon:") / 1024);
    reset_peak_rss();
    outputs o;
    CHECK(run_all(m, &fx, &o));
    /* warm timings: the first pass above also pays for first-use costs */
    vz_tensor *pixels = io_tensor(&fx, "pixel_values");
    double best_vit = 1e30, best_qf = 1e30;
    for (int rep = 0; rep < 2; rep++) {
      vz_tensor *emb = NULL, *qo = NULL;
      double a = now();
      CHECK_OK(vz_blip2_image_embeds(m, pixels, &emb));
      double b = now();
      CHECK_OK(vz_blip2_query_output(m, emb, &qo));
      double c = now();
      best_vit = fmin(best_vit, b - a);
      best_qf = fmin(best_qf, c - b);
      vz_tensor_free(emb);
      vz_tensor_free(qo);
    }
    printf("full %s: batch %lld: ViT %.2f s, Q-Former %.3f s (best of 2; first run %.2f / %.3f "
           "s); peak RSS while running %ld MiB\n",
           dt, (long long)pixels->shape[0], best_vit, best_qf, o.seconds_vit, o.seconds_qformer,
           peak_rss_kb("VmHWM:") / 1024);
    vz_tensor_free(pixels);
    if (dtypes[d] == VZ_F32) {
      bool pass[O_COUNT];
      verdict vs[O_COUNT];
      judge(&fx, &o, pass, vs, "full", true);
      for (int i = 0; i < O_COUNT; i++)
        if (!pass[i]) {
          fprintf(stderr, "full: %s does not match the reference\n", k_names[i]);
          test_failures++;
        }
    } else {
      check_low_precision(&fx, &o, "full", dtypes[d]);
    }
    outputs_free(&o);
    vz_blip2_stage1_free(m);
  }
  fixture_close(&fx);
}

int main(void) {
  const char *full = getenv("VLZOO_BLIP2_FULL_DIR");
  if (!full || !*full) {
    printf(
        "SKIP: set VLZOO_BLIP2_FULL_DIR to a directory written by make_blip2_parity.py --full\n");
    return TEST_SKIP;
  }
  g_be = test_backend();
  test_full(full);
  vz_backend_free(g_be);
  return test_finish("test_blip2_full");
}
#else
int main(void) {
  g_be = test_backend();
  const char *root = getenv("VLZOO_FIXTURES_DIR");
  if (!root) {
    printf("SKIP: VLZOO_FIXTURES_DIR is not set\n");
    return TEST_SKIP;
  }
  snprintf(g_tmp, sizeof g_tmp, "/tmp/vz_blip2_XXXXXX");
  if (!mkdtemp(g_tmp)) {
    perror("mkdtemp");
    return 1;
  }
  const char *names[] = {"base", "interp"};
  for (size_t i = 0; i < 2; i++) {
    char dir[600];
    snprintf(dir, sizeof dir, "%s/blip2_tiny/%s", root, names[i]);
    fixture fx;
    if (!fixture_open(&fx, dir)) {
      test_failures++;
      continue;
    }
    test_parity(&fx, names[i]);
    test_low_precision(&fx, names[i], VZ_BF16);
    test_low_precision(&fx, names[i], VZ_F16);
    test_mutations(&fx, names[i]);
    if (i == 0)
      test_load_errors(&fx);
    fixture_close(&fx);
  }
  rmdir(g_tmp);
  vz_backend_free(g_be);
  return test_finish("test_blip2_parity");
}
#endif

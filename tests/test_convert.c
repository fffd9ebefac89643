/* vz_convert end to end on tiny LAVIS checkpoints written by torch.save
 * (tests/fixtures/convert, made by make_convert_fixtures.py): the .ckpt and
 * safetensors it writes are read back and compared, tensor by tensor and
 * byte by byte, with the files the fixture script computed independently,
 * and the layout rules are checked value by value against the input. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/test_util.h"
#include "vlzoo/convert.h"
#include "vlzoo/weights.h"

static const char *fixtures; /* test_fixtures_dir() */
static char tmpdir[256];

static const char *fx(const char *name) {
  static char buf[4][1200];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/convert/%s", fixtures, name);
  return buf[k];
}

static const char *tmp(const char *name) {
  static char buf[4][512];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
  return buf[k];
}

static bool exists(const char *path) { return access(path, F_OK) == 0; }

static int notes_seen;
static void count_note(void *user, const char *text) {
  (void)text;
  (*(int *)user)++;
  notes_seen++;
}

static vz_status run(const char *const *inputs, size_t n, const char *model, const char *out,
                     vz_weights_file_format format, const char *from, const char *to) {
  int notes = 0;
  vz_convert_options o = {0};
  o.inputs = inputs;
  o.n_inputs = n;
  o.model = model;
  o.output = out;
  o.format = format;
  o.from = from;
  o.to = to;
  o.note = count_note;
  o.user = &notes;
  return vz_convert(&o);
}

/* Every tensor of `got` equals the one of `want` with its name (dtype,
 * shape, bytes), and both hold the same names. */
static void check_same_file(const char *what, const char *got_path, const char *want_path) {
  vz_weights *got = NULL, *want = NULL;
  CHECK_OK(vz_weights_open(got_path, &got));
  CHECK_OK(vz_weights_open(want_path, &want));
  if (!got || !want) {
    vz_weights_close(got);
    vz_weights_close(want);
    return;
  }
  if (vz_weights_count(got) != vz_weights_count(want)) {
    fprintf(stderr, "%s: %zu tensors, expected %zu\n", what, vz_weights_count(got),
            vz_weights_count(want));
    test_failures++;
  }
  int shown = 0;
  for (size_t i = 0; i < vz_weights_count(want); i++) {
    const vz_weight_info *w = vz_weights_info(want, i);
    size_t j;
    if (vz_weights_find(got, w->name, &j) != VZ_OK) {
      if (shown++ < 6)
        fprintf(stderr, "%s: missing %s\n", what, w->name);
      test_failures++;
      continue;
    }
    const vz_weight_info *g = vz_weights_info(got, j);
    const void *gd = NULL, *wd = NULL;
    size_t gn = 0, wn = 0;
    CHECK_OK(vz_weights_data(got, j, &gd, &gn));
    CHECK_OK(vz_weights_data(want, i, &wd, &wn));
    bool same = g->dtype == w->dtype && g->ndim == w->ndim && gn == wn &&
                memcmp(g->shape, w->shape, sizeof g->shape[0] * (size_t)g->ndim) == 0 && gd && wd &&
                memcmp(gd, wd, gn) == 0;
    if (!same) {
      if (shown++ < 6)
        fprintf(stderr, "%s: %s differs (%s vs %s, %zu vs %zu bytes)\n", what, w->name,
                vz_dtype_name(g->dtype), vz_dtype_name(w->dtype), gn, wn);
      test_failures++;
    }
  }
  for (size_t i = 0; i < vz_weights_count(got); i++) {
    size_t j;
    if (vz_weights_find(want, vz_weights_info(got, i)->name, &j) != VZ_OK) {
      if (shown++ < 6)
        fprintf(stderr, "%s: extra %s\n", what, vz_weights_info(got, i)->name);
      test_failures++;
    }
  }
  vz_weights_close(got);
  vz_weights_close(want);
}

/* A tensor's values as floats (f32 or f16), or NULL. */
static float *read_floats(vz_weights *w, const char *name, int64_t *n) {
  size_t i;
  if (vz_weights_find(w, name, &i) != VZ_OK) {
    fprintf(stderr, "no tensor %s\n", name);
    test_failures++;
    return NULL;
  }
  const vz_weight_info *info = vz_weights_info(w, i);
  const void *d;
  size_t nb;
  if (vz_weights_data(w, i, &d, &nb) != VZ_OK)
    return NULL;
  size_t es = vz_dtype_size(info->dtype);
  *n = (int64_t)(nb / es);
  float *f = malloc(nb / es * sizeof *f + 1);
  for (int64_t k = 0; k < *n; k++) {
    if (info->dtype == VZ_F32) {
      memcpy(&f[k], (const char *)d + 4 * k, 4);
    } else {
      uint16_t h;
      memcpy(&h, (const char *)d + 2 * k, 2);
      f[k] = info->dtype == VZ_F16 ? vz_f16_to_f32(h) : vz_bf16_to_f32(h);
    }
  }
  return f;
}

/* The layout rules, value by value, between the LAVIS input and the
 * MindFormers output. */
static void check_layouts(const char *ckpt) {
  vz_weights *in = NULL, *out = NULL;
  CHECK_OK(vz_weights_open(fx("lavis_stage1.pth"), &in));
  CHECK_OK(vz_weights_open(ckpt, &out));
  if (!in || !out) {
    vz_weights_close(in);
    vz_weights_close(out);
    return;
  }
  int64_t n1, n2;
  /* attention.projection.weight = attn.proj.weight^T ([12, 12]) */
  float *a = read_floats(in, "visual_encoder.blocks.1.attn.proj.weight", &n1);
  float *b = read_floats(out, "visual_encoder.blocks.1.attention.projection.weight", &n2);
  CHECK(a && b && n1 == 144 && n2 == 144);
  for (int r = 0; a && b && r < 12; r++)
    for (int c = 0; c < 12; c++)
      CHECK(b[c * 12 + r] == a[r * 12 + c]);
  free(a);
  free(b);
  /* fc1 [20, 12] -> output.mapping [12, 20]; fc2 [12, 20] -> output.projection [20, 12] */
  static const char *const pairs[2][2] = {
      {"visual_encoder.blocks.0.mlp.fc1.weight", "visual_encoder.blocks.0.output.mapping.weight"},
      {"visual_encoder.blocks.0.mlp.fc2.weight",
       "visual_encoder.blocks.0.output.projection.weight"}};
  for (int p = 0; p < 2; p++) {
    a = read_floats(in, pairs[p][0], &n1);
    b = read_floats(out, pairs[p][1], &n2);
    int rows = p == 0 ? 20 : 12, cols = p == 0 ? 12 : 20;
    CHECK(a && b && n1 == 240 && n2 == 240);
    for (int r = 0; a && b && r < rows; r++)
      for (int c = 0; c < cols; c++)
        CHECK(b[c * rows + r] == a[r * cols + c]);
    free(a);
    free(b);
  }
  /* qkv [36, 12] -> dense1/2/3 [12, 12]; q_bias / zeros / v_bias */
  a = read_floats(in, "visual_encoder.blocks.1.attn.qkv.weight", &n1);
  for (int j = 0; j < 3; j++) {
    char name[96];
    snprintf(name, sizeof name, "visual_encoder.blocks.1.attention.dense%d.weight", j + 1);
    b = read_floats(out, name, &n2);
    CHECK(a && b && n2 == 144 && memcmp(b, a + j * 144, 144 * sizeof *a) == 0);
    free(b);
  }
  free(a);
  a = read_floats(in, "visual_encoder.blocks.1.attn.q_bias", &n1);
  b = read_floats(out, "visual_encoder.blocks.1.attention.dense1.bias", &n2);
  CHECK(a && b && n1 == n2 && memcmp(a, b, (size_t)n1 * sizeof *a) == 0);
  free(a);
  free(b);
  b = read_floats(out, "visual_encoder.blocks.0.attention.dense2.bias", &n2);
  for (int64_t k = 0; b && k < n2; k++)
    CHECK(b[k] == 0.0f);
  free(b);
  /* the tied decoder weight is the word embeddings */
  a = read_floats(out, "qformer.bert.embeddings.word_embeddings.embedding_table", &n1);
  b = read_floats(out, "qformer.cls.predictions.decoder.weight", &n2);
  CHECK(a && b && n1 == n2 && memcmp(a, b, (size_t)n1 * sizeof *a) == 0);
  free(a);
  free(b);
  vz_weights_close(in);
  vz_weights_close(out);
}

static void test_good(void) {
  const char *full[] = {fx("lavis_stage1.pth")};
  CHECK_OK(
      run(full, 1, "blip2_stage1_vit_g", tmp("mf.ckpt"), VZ_FORMAT_MINDSPORE_CKPT, NULL, NULL));
  check_same_file("lavis->ckpt", tmp("mf.ckpt"), fx("expected_mindformers.safetensors"));
  check_layouts(tmp("mf.ckpt"));

  CHECK_OK(run(full, 1, "blip2_stage1_vit_g", tmp("hf.safetensors"), VZ_FORMAT_SAFETENSORS, "lavis",
               NULL));
  check_same_file("lavis->safetensors", tmp("hf.safetensors"), fx("expected_hf.safetensors"));

  /* eva_vit_g.pth + blip2_pretrained.pth give the same files */
  const char *split[] = {fx("eva_vit.pth"), fx("lavis_pretrained.pth")};
  CHECK_OK(run(split, 2, "blip2_stage1_pretrained", tmp("mf2.ckpt"), VZ_FORMAT_MINDSPORE_CKPT, NULL,
               NULL));
  check_same_file("eva+pretrained->ckpt", tmp("mf2.ckpt"), fx("expected_mindformers.safetensors"));

  /* the same file twice: identical duplicates are kept once */
  const char *twice[] = {fx("lavis_stage1.pth"), fx("lavis_stage1.pth")};
  CHECK_OK(run(twice, 2, "blip2_stage1_evaluator", tmp("mf3.ckpt"), VZ_FORMAT_MINDSPORE_CKPT, NULL,
               NULL));
  check_same_file("twice->ckpt", tmp("mf3.ckpt"), fx("expected_mindformers.safetensors"));

  /* back from MindFormers: .ckpt -> Hugging Face, and -> MindFormers again */
  const char *mf[] = {tmp("mf.ckpt")};
  CHECK_OK(run(mf, 1, "blip2_stage1_classification", tmp("hf2.safetensors"), VZ_FORMAT_SAFETENSORS,
               NULL, NULL));
  check_same_file("ckpt->safetensors", tmp("hf2.safetensors"), fx("expected_hf.safetensors"));
  CHECK_OK(run(mf, 1, "blip2_stage1_vit_g", tmp("mf4.ckpt"), VZ_FORMAT_MINDSPORE_CKPT,
               "mindformers", NULL));
  check_same_file("ckpt->ckpt", tmp("mf4.ckpt"), tmp("mf.ckpt"));

  /* vlzoo naming keeps temp and the LM head; reading it back gives the ckpt */
  CHECK_OK(run(full, 1, "blip2_stage1_vit_g", tmp("vz.safetensors"), VZ_FORMAT_SAFETENSORS, NULL,
               "vlzoo"));
  const char *vz[] = {tmp("vz.safetensors")};
  CHECK_OK(
      run(vz, 1, "blip2_stage1_vit_g", tmp("mf5.ckpt"), VZ_FORMAT_MINDSPORE_CKPT, "vlzoo", NULL));
  check_same_file("vlzoo->ckpt", tmp("mf5.ckpt"), fx("expected_mindformers.safetensors"));

  /* no model: names and bytes kept */
  CHECK_OK(run(mf, 1, NULL, tmp("plain.safetensors"), VZ_FORMAT_SAFETENSORS, NULL, NULL));
  check_same_file("plain", tmp("plain.safetensors"), tmp("mf.ckpt"));
}

static void test_dtype(void) {
  const char *full[] = {fx("lavis_stage1.pth")};
  vz_convert_options o = {0};
  o.inputs = full;
  o.n_inputs = 1;
  o.model = "blip2_stage1_vit_g";
  o.output = tmp("bf16.safetensors");
  o.format = VZ_FORMAT_SAFETENSORS;
  o.cast = true;
  o.dtype = VZ_BF16;
  vz_convert_summary sum;
  o.summary = &sum;
  CHECK_OK(vz_convert(&o));
  CHECK(sum.tensors_read == 106 && sum.tensors_written == 95);
  CHECK(strcmp(sum.from, "lavis") == 0 && strcmp(sum.to, "hf") == 0);
  vz_weights *got = NULL, *want = NULL;
  CHECK_OK(vz_weights_open(o.output, &got));
  CHECK_OK(vz_weights_open(fx("expected_hf.safetensors"), &want));
  for (size_t i = 0; got && want && i < vz_weights_count(want); i++) {
    const vz_weight_info *w = vz_weights_info(want, i);
    size_t j;
    if (vz_weights_find(got, w->name, &j) != VZ_OK) {
      test_failures++;
      continue;
    }
    CHECK(vz_weights_info(got, j)->dtype == VZ_BF16);
    int64_t n1 = 0, n2 = 0;
    float *a = read_floats(want, w->name, &n1), *b = read_floats(got, w->name, &n2);
    CHECK(a && b && n1 == n2);
    for (int64_t k = 0; a && b && k < n1; k++)
      CHECK(b[k] == vz_bf16_to_f32(vz_f32_to_bf16(a[k])));
    free(a);
    free(b);
  }
  vz_weights_close(got);
  vz_weights_close(want);
  o.dtype = VZ_I8;
  o.output = tmp("i8.safetensors");
  CHECK_FAILS(vz_convert(&o), VZ_ERR_INVALID_ARGUMENT);
  CHECK(!exists(o.output));
}

static void test_bad(void) {
  const char *missing[] = {fx("lavis_stage1.pth"), tmp("no-such-file.pth")};
  vz_clear_error();
  CHECK(run(missing, 2, "blip2_stage1_vit_g", tmp("bad1.ckpt"), VZ_FORMAT_MINDSPORE_CKPT, NULL,
            NULL) != VZ_OK);
  CHECK(strstr(vz_last_error(), "no-such-file.pth") != NULL);
  CHECK(!exists(tmp("bad1.ckpt")));

  const char *bad_name[] = {fx("lavis_bad_name.pth")};
  CHECK_FAILS(run(bad_name, 1, "blip2_stage1_vit_g", tmp("bad2.ckpt"), VZ_FORMAT_MINDSPORE_CKPT,
                  "lavis", NULL),
              VZ_ERR_FORMAT);
  CHECK(strstr(vz_last_error(), "attention.self.rotary.inv_freq") != NULL);
  CHECK(!exists(tmp("bad2.ckpt")));

  const char *bad_ids[] = {fx("lavis_bad_ids.pth")};
  CHECK_FAILS(
      run(bad_ids, 1, "blip2_stage1_vit_g", tmp("bad3.ckpt"), VZ_FORMAT_MINDSPORE_CKPT, NULL, NULL),
      VZ_ERR_FORMAT);
  CHECK(strstr(vz_last_error(), "position_ids") != NULL);
  CHECK(!exists(tmp("bad3.ckpt")));

  /* the ViT twice (prefixed and unprefixed) */
  const char *both[] = {fx("lavis_stage1.pth"), fx("eva_vit.pth")};
  CHECK_FAILS(
      run(both, 2, "blip2_stage1_vit_g", tmp("bad4.ckpt"), VZ_FORMAT_MINDSPORE_CKPT, NULL, NULL),
      VZ_ERR_FORMAT);
  CHECK(!exists(tmp("bad4.ckpt")));

  /* one name in two inputs with different values */
  const char *clash[] = {tmp("mf.ckpt"), fx("expected_hf.safetensors"), tmp("hf2.safetensors")};
  CHECK_OK(run(clash + 1, 2, NULL, tmp("ok.safetensors"), VZ_FORMAT_SAFETENSORS, NULL, NULL));
  CHECK_OK(run(clash, 1, NULL, tmp("ok2.safetensors"), VZ_FORMAT_SAFETENSORS, NULL, NULL));
  const char *diff[] = {fx("expected_hf.safetensors"), tmp("bf16.safetensors")};
  CHECK_FAILS(run(diff, 2, NULL, tmp("bad5.safetensors"), VZ_FORMAT_SAFETENSORS, NULL, NULL),
              VZ_ERR_FORMAT);
  CHECK(strstr(vz_last_error(), "different values") != NULL);
  CHECK(!exists(tmp("bad5.safetensors")));

  /* unknown model: a suggestion */
  const char *full[] = {fx("lavis_stage1.pth")};
  CHECK_FAILS(
      run(full, 1, "blip2_stage1_vitg", tmp("bad6.ckpt"), VZ_FORMAT_MINDSPORE_CKPT, NULL, NULL),
      VZ_ERR_NOT_FOUND);
  CHECK(strstr(vz_last_error(), "did you mean blip2_stage1_vit_g") != NULL);
  CHECK(!exists(tmp("bad6.ckpt")));
  CHECK_FAILS(vz_convert_check_model("itt_blip2_stage2_llama"), VZ_ERR_NOT_FOUND);
  CHECK(strstr(vz_last_error(), "itt_blip2_stage2_vit_g_llama_7b") != NULL);

  /* the wrong naming given */
  CHECK_FAILS(run(full, 1, "blip2_stage1_vit_g", tmp("bad7.ckpt"), VZ_FORMAT_MINDSPORE_CKPT,
                  "mindformers", NULL),
              VZ_ERR_FORMAT);
  CHECK(!exists(tmp("bad7.ckpt")));
  /* a naming without a model */
  CHECK_FAILS(run(full, 1, NULL, tmp("bad8.ckpt"), VZ_FORMAT_MINDSPORE_CKPT, "lavis", NULL),
              VZ_ERR_INVALID_ARGUMENT);
  /* an output directory that does not exist */
  CHECK_FAILS(run(full, 1, "blip2_stage1_vit_g", tmp("no/such/dir.ckpt"), VZ_FORMAT_MINDSPORE_CKPT,
                  NULL, NULL),
              VZ_ERR_IO);
}

int main(void) {
  fixtures = test_fixtures_dir();
  if (!fixtures) {
    printf("test_convert: VLZOO_FIXTURES_DIR is not set; skipping\n");
    return TEST_SKIP;
  }
  snprintf(tmpdir, sizeof tmpdir, "/tmp/vlzoo-test-convert-XXXXXX");
  if (!mkdtemp(tmpdir)) {
    perror("mkdtemp");
    return 1;
  }
  test_good();
  test_dtype();
  test_bad();
  CHECK(notes_seen > 0);
  int rc = test_finish("test_convert");
  /* remove what the tests wrote */
  static const char *const files[] = {
      "mf.ckpt",        "hf.safetensors",  "mf2.ckpt", "mf3.ckpt",          "hf2.safetensors",
      "mf4.ckpt",       "vz.safetensors",  "mf5.ckpt", "plain.safetensors", "bf16.safetensors",
      "ok.safetensors", "ok2.safetensors", NULL};
  for (const char *const *f = files; *f; f++)
    remove(tmp(*f));
  if (rmdir(tmpdir) != 0)
    fprintf(stderr, "test_convert: %s left behind (unexpected files in it)\n", tmpdir);
  return rc;
}

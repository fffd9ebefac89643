/* BLIP-2 stage 1 on every backend besides the CPU, against the CPU: the
 * tiny parity fixtures (tests/fixtures/blip2_tiny/base and interp) and,
 * when its weights are found, the shipped small model (zoo name
 * blip2_tiny_shapes) must give every output within
 * max |error| <= 1e-4 * max(1, max |cpu|) with f32 weights, and to bf16's
 * precision (1e-2) with bf16 weights.
 *
 * And the device keeps the work to itself: with the weights loaded, a
 * whole forward moves only its inputs up and its results down (the
 * transfer counters of include/vlzoo/backend.h): the image side (pixels to
 * normalized image features) one upload and one download, the text side
 * its ids (and padding mask) up and its scores down; the additive
 * attention mask is built on the device. Any other transfer, such as an op
 * falling back to the CPU, fails the test. */
#include <math.h>
#include <string.h>

#include "tests/test_util.h"
#include "vlzoo/model.h"
#include "vlzoo/weights.h"
#include "vlzoo/zoo.h"

/* max |got - want| <= rel * max(1, max |want|), same shape. */
static void compare(const char *what, const vz_tensor *cpu, const vz_tensor *dev, double rel) {
  if (!cpu || !dev) {
    fprintf(stderr, "%s: missing output\n", what);
    test_failures++;
    return;
  }
  CHECK(cpu->ndim == dev->ndim && vz_tensor_numel(cpu) == vz_tensor_numel(dev));
  float *w = test_read_f32(cpu), *g = test_read_f32(dev);
  int64_t n = vz_tensor_numel(cpu);
  double max_err = 0, max_ref = 0;
  for (int64_t i = 0; w && g && i < n; i++) {
    double e = fabs((double)g[i] - w[i]);
    max_err = isnan(e) ? INFINITY : fmax(max_err, e);
    max_ref = fmax(max_ref, fabs(w[i]));
  }
  double tol = rel * fmax(1.0, max_ref);
  bool ok = w && g && max_err <= tol;
  printf("    %-16s max|err| %.2e (tol %.1e)  %s\n", what, max_err, tol, ok ? "ok" : "FAIL");
  if (!ok)
    test_failures++;
  free(w);
  free(g);
}

static vz_tensor *io_tensor(vz_weights *io, vz_backend *be, const char *name) {
  size_t i;
  if (vz_weights_find(io, name, &i) != VZ_OK)
    return NULL;
  const vz_weight_info *info = vz_weights_info(io, i);
  const void *data;
  size_t nbytes;
  vz_tensor *t = NULL;
  CHECK_OK(vz_weights_data(io, i, &data, &nbytes));
  CHECK_OK(vz_tensor_from_host(be, info->dtype, info->ndim, info->shape, data, nbytes, &t));
  return t;
}

enum { O_EMBEDS, O_QUERY, O_IMAGE_FEATURES, O_TEXT_FEATURES, O_ITC, O_ITM, O_LM, O_COUNT };
static const char *const output_names[O_COUNT] = {"image_embeds",  "query_output", "image_features",
                                                  "text_features", "itc",          "itm_logits",
                                                  "lm_logits"};

/* Every output of the model on the inputs (mask may be NULL; lm_ids NULL
 * skips the LM head). */
static void run_outputs(const vz_blip2_stage1 *m, const vz_tensor *pixels, const vz_tensor *ids,
                        const vz_tensor *mask, const vz_tensor *lm_ids, vz_tensor *out[O_COUNT]) {
  memset(out, 0, O_COUNT * sizeof *out);
  CHECK_OK(vz_blip2_image_embeds(m, pixels, &out[O_EMBEDS]));
  if (out[O_EMBEDS])
    CHECK_OK(vz_blip2_query_output(m, out[O_EMBEDS], &out[O_QUERY]));
  if (out[O_QUERY])
    CHECK_OK(vz_blip2_image_features(m, out[O_QUERY], &out[O_IMAGE_FEATURES]));
  CHECK_OK(vz_blip2_text_features(m, ids, mask, &out[O_TEXT_FEATURES]));
  if (out[O_IMAGE_FEATURES] && out[O_TEXT_FEATURES])
    CHECK_OK(vz_blip2_itc(m, out[O_IMAGE_FEATURES], out[O_TEXT_FEATURES], &out[O_ITC]));
  if (out[O_EMBEDS]) {
    CHECK_OK(vz_blip2_itm_logits(m, out[O_EMBEDS], ids, mask, &out[O_ITM]));
    if (lm_ids && vz_blip2_stage1_has_lm_head(m))
      CHECK_OK(vz_blip2_lm_logits(m, out[O_EMBEDS], lm_ids, mask, &out[O_LM]));
  }
}

static void free_all(vz_tensor **ts, int n) {
  for (int i = 0; i < n; i++)
    vz_tensor_free(ts[i]);
}

static bool counts_are(const char *what, vz_backend *dev, uint64_t uploads, uint64_t downloads) {
  vz_transfer_counts c = vz_backend_transfers(dev);
  bool ok = c.uploads == uploads && c.downloads == downloads;
  printf("    transfers, %s: %llu up (%llu bytes), %llu down (%llu bytes)  %s\n", what,
         (unsigned long long)c.uploads, (unsigned long long)c.upload_bytes,
         (unsigned long long)c.downloads, (unsigned long long)c.download_bytes, ok ? "ok" : "FAIL");
  if (!ok) {
    fprintf(stderr, "%s: expected %llu uploads and %llu downloads\n", what,
            (unsigned long long)uploads, (unsigned long long)downloads);
    test_failures++;
  }
  return ok;
}

/* The forward on the device with its transfers counted. */
static void check_transfers(const vz_blip2_stage1 *m, vz_backend *dev, vz_weights *io) {
  vz_tensor *pixels = NULL, *ids = NULL, *mask = NULL, *emb = NULL, *qo = NULL, *imf = NULL,
            *txf = NULL, *itc = NULL, *itm = NULL;
  /* image side: pixels up, features down */
  vz_backend_reset_transfers(dev);
  pixels = io_tensor(io, dev, "pixel_values");
  CHECK_OK(vz_blip2_image_embeds(m, pixels, &emb));
  if (emb)
    CHECK_OK(vz_blip2_query_output(m, emb, &qo));
  if (qo)
    CHECK_OK(vz_blip2_image_features(m, qo, &imf));
  float *features = imf ? test_read_f32(imf) : NULL;
  counts_are("image to features", dev, 1, 1);
  free(features);

  /* text side, ITC and ITM: ids (and the padding mask) up, scores down */
  vz_backend_reset_transfers(dev);
  ids = io_tensor(io, dev, "input_ids");
  CHECK_OK(vz_blip2_text_features(m, ids, NULL, &txf));
  if (imf && txf)
    CHECK_OK(vz_blip2_itc(m, imf, txf, &itc));
  if (emb)
    CHECK_OK(vz_blip2_itm_logits(m, emb, ids, NULL, &itm));
  float *s1 = itc ? test_read_f32(itc) : NULL, *s2 = itm ? test_read_f32(itm) : NULL;
  counts_are("text, ITC and ITM without a mask", dev, 1, 2);
  free(s1);
  free(s2);
  vz_tensor_free(itm);
  itm = NULL;
  vz_backend_reset_transfers(dev);
  mask = io_tensor(io, dev, "attention_mask");
  CHECK_OK(vz_blip2_itm_logits(m, emb, ids, mask, &itm));
  s2 = itm ? test_read_f32(itm) : NULL;
  counts_are("ITM with a padding mask", dev, 1, 1);
  free(s2);
  vz_tensor *all[] = {pixels, ids, mask, emb, qo, imf, txf, itc, itm};
  free_all(all, sizeof all / sizeof all[0]);
}

/* A model by name or folder on both backends; false (a note printed) when
 * its weights are not here. */
static bool load_pair(const char *name, const char *const *overrides, int n_overrides,
                      vz_dtype dtype, vz_backend *cpu, vz_backend *dev, vz_blip2_stage1 **m_cpu,
                      vz_blip2_stage1 **m_dev, bool required, vz_blip2_stage1_params *params) {
  vz_load_options opts = {
      .weight_dtype = dtype, .overrides = overrides, .n_overrides = n_overrides};
  struct vz_config *config = NULL;
  *m_cpu = *m_dev = NULL;
  vz_status st = vz_blip2_stage1_from_pretrained(name, &opts, cpu, m_cpu, &config);
  if (st == VZ_OK && params)
    st = vz_config_stage1_params(config, params);
  vz_config_free(config);
  if (st != VZ_OK) {
    if (required) {
      fprintf(stderr, "cannot load %s: %s\n", name, vz_last_error());
      test_failures++;
    } else {
      printf("  %s: not checked, its model cannot be loaded here: %s\n", name, vz_last_error());
    }
    return false;
  }
  CHECK_OK(vz_blip2_stage1_from_pretrained(name, &opts, dev, m_dev, NULL));
  if (!*m_dev) {
    vz_blip2_stage1_free(*m_cpu);
    *m_cpu = NULL;
    return false;
  }
  return true;
}

static void test_fixture(vz_backend *cpu, vz_backend *dev, const char *dir, vz_dtype dtype,
                         bool count_transfers) {
  char path[1200];
  snprintf(path, sizeof path, "%s/io.safetensors", dir);
  vz_weights *io = NULL;
  CHECK_OK(vz_weights_open(path, &io));
  vz_blip2_stage1 *m_cpu, *m_dev;
  /* the image size the fixture was made at (its config.json has the
   * checkpoint's; the position embedding is interpolated to it) */
  char sizes[2][80] = {"", ""};
  snprintf(path, sizeof path, "%s/params.txt", dir);
  char *params = test_read_file(path, NULL);
  const char *at = params ? strstr(params, "vision.image_size ") : NULL;
  if (at) {
    snprintf(sizes[0], sizeof sizes[0], "vision_config.image_size=%d", atoi(at + 18));
    snprintf(sizes[1], sizeof sizes[1], "processor.image_processor.image_size=%d", atoi(at + 18));
  }
  free(params);
  CHECK(at != NULL);
  const char *const overrides[2] = {sizes[0], sizes[1]};
  if (!io || !load_pair(dir, overrides, at ? 2 : 0, dtype, cpu, dev, &m_cpu, &m_dev, true, NULL)) {
    vz_weights_close(io);
    return;
  }
  printf("  %s (%s weights):\n", dir, vz_dtype_name(dtype));
  vz_tensor *in[2][4], *out[2][O_COUNT];
  vz_backend *bes[2] = {cpu, dev};
  const vz_blip2_stage1 *models[2] = {m_cpu, m_dev};
  for (int s = 0; s < 2; s++) {
    in[s][0] = io_tensor(io, bes[s], "pixel_values");
    in[s][1] = io_tensor(io, bes[s], "input_ids");
    in[s][2] = io_tensor(io, bes[s], "attention_mask");
    in[s][3] = io_tensor(io, bes[s], "lm_input_ids");
    run_outputs(models[s], in[s][0], in[s][1], in[s][2], in[s][3], out[s]);
  }
  /* bf16 weights take the activations at bf16 precision too: a last-bit
   * difference before that rounding can move a value by a bf16 step, so
   * the two devices agree to bf16's precision there */
  double rel = dtype == VZ_BF16 ? 1e-2 : 1e-4;
  for (int o = 0; o < O_COUNT; o++)
    if (out[0][o] || out[1][o])
      compare(output_names[o], out[0][o], out[1][o], rel);
  if (count_transfers)
    check_transfers(m_dev, dev, io);
  for (int s = 0; s < 2; s++) {
    free_all(in[s], 4);
    free_all(out[s], O_COUNT);
  }
  vz_blip2_stage1_free(m_cpu);
  vz_blip2_stage1_free(m_dev);
  vz_weights_close(io);
}

/* The shipped small model on two synthetic images and two texts (ITM pairs
 * image i with text i). */
static void test_shipped(vz_backend *cpu, vz_backend *dev) {
  const char *name = "blip2_tiny_shapes";
  vz_blip2_stage1 *m_cpu, *m_dev;
  vz_blip2_stage1_params params;
  if (!load_pair(name, NULL, 0, VZ_F32, cpu, dev, &m_cpu, &m_dev, false, &params))
    return;
  printf("  %s:\n", name);
  const int64_t side = params.vision.image_size, n = 2 * 3 * side * side;
  test_seed(7);
  float *pixels = test_random_floats(n, -2, 2);
  int64_t ids[2 * 6] = {101, 7, 8, 9, 102, 0, 101, 10, 11, 12, 13, 102};
  int64_t mask[2 * 6] = {1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1};
  vz_tensor *in[2][3], *out[2][O_COUNT];
  vz_backend *bes[2] = {cpu, dev};
  const vz_blip2_stage1 *models[2] = {m_cpu, m_dev};
  for (int s = 0; s < 2; s++) {
    in[s][0] = test_tensor(bes[s], 4, (int64_t[]){2, 3, side, side}, pixels);
    in[s][1] = test_tensor_of(bes[s], VZ_I64, 2, (int64_t[]){2, 6}, ids);
    in[s][2] = test_tensor_of(bes[s], VZ_I64, 2, (int64_t[]){2, 6}, mask);
    run_outputs(models[s], in[s][0], in[s][1], in[s][2], NULL, out[s]);
  }
  for (int o = 0; o < O_COUNT; o++)
    if (out[0][o] || out[1][o])
      compare(output_names[o], out[0][o], out[1][o], 1e-4);
  for (int s = 0; s < 2; s++) {
    free_all(in[s], 3);
    free_all(out[s], O_COUNT);
  }
  free(pixels);
  vz_blip2_stage1_free(m_cpu);
  vz_blip2_stage1_free(m_dev);
}

int main(void) {
  const char *root = test_fixtures_dir();
  if (!root) {
    printf("SKIP: VLZOO_FIXTURES_DIR is not set\n");
    return TEST_SKIP;
  }
  vz_backend *cpu = NULL;
  CHECK_OK(vz_backend_create("cpu", &cpu));
  int tested = 0;
  for (const char *const *name = vz_backend_names(); cpu && *name; name++) {
    if (strcmp(*name, "cpu") == 0)
      continue;
    vz_backend *dev = NULL;
    if (vz_backend_create(*name, &dev) != VZ_OK) {
      printf("backend %s: not available here, skipped: %s\n", *name, vz_last_error());
      continue;
    }
    printf("backend %s:\n", *name);
    const char *fixtures[] = {"base", "interp"};
    for (int f = 0; f < 2; f++) {
      char dir[1100];
      snprintf(dir, sizeof dir, "%s/blip2_tiny/%s", root, fixtures[f]);
      test_fixture(cpu, dev, dir, VZ_F32, f == 0);
      test_fixture(cpu, dev, dir, VZ_BF16, false);
    }
    test_shipped(cpu, dev);
    vz_backend_free(dev);
    tested++;
  }
  vz_backend_free(cpu);
  if (tested == 0) {
    printf("SKIP: no backend besides the CPU can run here\n");
    return TEST_SKIP;
  }
  return test_finish("test_backend_stage1");
}

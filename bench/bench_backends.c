/* bench_backends: BLIP-2 stage 1 on the CPU and on the OpenCL backend side
 * by side, the two devices alternating round after round in one process so
 * that both see the same machine state. Times per device, after a warm-up
 * pass (which on OpenCL builds or loads the kernels):
 *   image   pixels -> image embeds -> query output -> image features, read back
 *   text    ids -> text features (no padding mask), read back
 *   itm     image embeds + ids -> ITM logits, read back
 * and reports medians and the ratios cpu_ms / opencl_ms (above 1: OpenCL is
 * faster). Prints one JSON line. */
#define _POSIX_C_SOURCE 200809L
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench_util.h"
#include "vlzoo/vlzoo.h"

#ifndef VLZOO_SOURCE_DIR
#define VLZOO_SOURCE_DIR "."
#endif

enum { STAGES = 3, DEVICES = 2, MAX_SETS = 16 };
static const char *const stage_names[STAGES] = {"image", "text", "itm"};
static const char *const device_names[DEVICES] = {"cpu", "opencl"};

static void usage(FILE *to) {
  fprintf(to,
          "usage: bench_backends [--model NAME|DIR|YAML] [--weights FILE] [--set KEY=VALUE]...\n"
          "                      [--dtype f32|bf16] [--batch B] [--length L] [--rounds R]\n\n"
          "Loads a stage-1 model on the CPU and on OpenCL (default model: the tiny parity\n"
          "fixture tests/fixtures/blip2_tiny/base; blip2_tiny_shapes once its weights are\n"
          "installed; blip2_stage1_vit_g with --weights from 'bench_stage1 --make-weights'),\n"
          "then times R rounds (default 5) of, on each device in turn:\n"
          "  image  pixels [B, 3, S, S] (random) to normalized image features\n"
          "  text   ids [B, L] (random, L default 16) to text features\n"
          "  itm    image embeds and ids to ITM logits\n"
          "each ending in a read of its result (so queued work is waited for). JSON: median\n"
          "ms per stage and device, cpu/opencl time ratios, end-to-end ratio, the OpenCL\n"
          "device, and the largest relative difference of OpenCL's results from the CPU's.\n");
}

typedef struct device_run {
  vz_backend *be;
  vz_blip2_stage1 *model;
  vz_tensor *pixels, *ids, *emb;
  float *last[STAGES]; /* the last round's results, host copies */
  int64_t n[STAGES];
  double *ms[STAGES];
} device_run;

/* A result read back to the host (which waits for the device). */
static bool read_back(vz_tensor *t, float **host, int64_t *n) {
  *n = vz_tensor_numel(t);
  free(*host);
  *host = malloc((size_t)*n * sizeof **host);
  return *host && vz_tensor_to_host(t, *host, (size_t)*n * sizeof **host) == VZ_OK;
}

static bool run_stage(device_run *d, int stage, double *ms) {
  vz_tensor *a = NULL, *b = NULL, *c = NULL;
  bool ok = false;
  double t0 = bench_now_ms();
  switch (stage) {
  case 0:
    vz_tensor_free(d->emb);
    d->emb = NULL;
    ok = vz_blip2_image_embeds(d->model, d->pixels, &d->emb) == VZ_OK &&
         vz_blip2_query_output(d->model, d->emb, &a) == VZ_OK &&
         vz_blip2_image_features(d->model, a, &b) == VZ_OK && read_back(b, &d->last[0], &d->n[0]);
    break;
  case 1:
    ok = vz_blip2_text_features(d->model, d->ids, NULL, &c) == VZ_OK &&
         read_back(c, &d->last[1], &d->n[1]);
    break;
  default:
    ok = vz_blip2_itm_logits(d->model, d->emb, d->ids, NULL, &c) == VZ_OK &&
         read_back(c, &d->last[2], &d->n[2]);
    break;
  }
  *ms = bench_now_ms() - t0;
  vz_tensor_free(a);
  vz_tensor_free(b);
  vz_tensor_free(c);
  if (!ok)
    fprintf(stderr, "bench_backends: %s on %s: %s\n", stage_names[stage], vz_backend_name(d->be),
            vz_last_error());
  return ok;
}

static double max_rel_diff(const float *got, const float *want, int64_t n) {
  double err = 0, scale = 0;
  for (int64_t i = 0; i < n; i++) {
    err = fmax(err, fabs((double)got[i] - want[i]));
    scale = fmax(scale, fabs(want[i]));
  }
  return scale > 0 ? err / scale : err;
}

int main(int argc, char **argv) {
  const char *model = VLZOO_SOURCE_DIR "/tests/fixtures/blip2_tiny/base", *weights = NULL;
  const char *sets[MAX_SETS];
  int n_sets = 0;
  long batch = 1, length = 16, rounds = 5;
  vz_dtype dtype = VZ_F32;
  for (int i = 1; i < argc; i++) {
    const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(opt, "--help") || !strcmp(opt, "-h")) {
      usage(stdout);
      return 0;
    }
    bool ok = val != NULL;
    if (!strcmp(opt, "--model"))
      model = val;
    else if (!strcmp(opt, "--weights"))
      weights = val;
    else if (!strcmp(opt, "--set") && n_sets < MAX_SETS)
      sets[n_sets++] = val;
    else if (!strcmp(opt, "--dtype"))
      ok = ok && vz_dtype_from_name(val, &dtype) == VZ_OK && (dtype == VZ_F32 || dtype == VZ_BF16);
    else if (!strcmp(opt, "--batch"))
      ok = bench_parse_count(val, 1, 1024, &batch);
    else if (!strcmp(opt, "--length"))
      ok = bench_parse_count(val, 1, 512, &length);
    else if (!strcmp(opt, "--rounds"))
      ok = bench_parse_count(val, 1, 10000, &rounds);
    else
      ok = false;
    if (!ok) {
      fprintf(stderr, "bench_backends: bad option '%s'\n", opt);
      usage(stderr);
      return 2;
    }
    i++;
  }

  device_run dev[DEVICES];
  memset(dev, 0, sizeof dev);
  vz_load_options opts = {
      .weights = weights, .overrides = sets, .n_overrides = n_sets, .weight_dtype = dtype};
  vz_blip2_stage1_params params;
  int rc = 1;
  for (int d = 0; d < DEVICES; d++) {
    struct vz_config *config = NULL;
    if (vz_backend_create(device_names[d], &dev[d].be) != VZ_OK ||
        vz_blip2_stage1_from_pretrained(model, &opts, dev[d].be, &dev[d].model, &config) != VZ_OK ||
        vz_config_stage1_params(config, &params) != VZ_OK) {
      fprintf(stderr, "bench_backends: %s: %s\n", device_names[d], vz_last_error());
      vz_config_free(config);
      goto done;
    }
    vz_config_free(config);
    for (int s = 0; s < STAGES; s++)
      dev[d].ms[s] = calloc((size_t)rounds, sizeof(double));
  }
  /* the same random inputs on both devices */
  const int64_t S = params.vision.image_size, np = batch * 3 * S * S, ni = batch * length;
  float *pixels = malloc((size_t)np * sizeof *pixels);
  int64_t *ids = malloc((size_t)ni * sizeof *ids);
  uint64_t x = 0x2545f4914f6cdd1dull;
  for (int64_t i = 0; pixels && i < np; i++)
    pixels[i] = (float)((double)(bench_xorshift(&x) >> 40) / 16777216.0 * 4.0 - 2.0);
  for (int64_t i = 0; ids && i < ni; i++)
    ids[i] = 1 + (int64_t)(bench_xorshift(&x) % (uint64_t)(params.qformer.vocab_size - 1));
  for (int d = 0; d < DEVICES && pixels && ids; d++) {
    if (vz_tensor_from_host(dev[d].be, VZ_F32, 4, (int64_t[]){batch, 3, S, S}, pixels,
                            (size_t)np * 4, &dev[d].pixels) != VZ_OK ||
        vz_tensor_from_host(dev[d].be, VZ_I64, 2, (int64_t[]){batch, length}, ids, (size_t)ni * 8,
                            &dev[d].ids) != VZ_OK)
      goto done_inputs;
  }
  /* a warm-up pass, then the rounds, alternating which device goes first */
  double warm[DEVICES][STAGES];
  for (int d = 0; d < DEVICES; d++)
    for (int s = 0; s < STAGES; s++)
      if (!run_stage(&dev[d], s, &warm[d][s]))
        goto done_inputs;
  for (long r = 0; r < rounds; r++)
    for (int i = 0; i < DEVICES; i++) {
      int d = (int)((r + i) % DEVICES);
      for (int s = 0; s < STAGES; s++)
        if (!run_stage(&dev[d], s, &dev[d].ms[s][r]))
          goto done_inputs;
    }

  json_object *o = json_object_new_object();
  json_object_object_add(o, "model", json_object_new_string(model));
  json_object_object_add(o, "dtype", json_object_new_string(vz_dtype_name(dtype)));
  json_object_object_add(o, "batch", json_object_new_int64(batch));
  json_object_object_add(o, "image_size", json_object_new_int64(S));
  json_object_object_add(o, "text_length", json_object_new_int64(length));
  json_object_object_add(o, "rounds", json_object_new_int64(rounds));
  json_object_object_add(o, "opencl_device",
                         json_object_new_string(vz_backend_description(dev[1].be)));
  double total[DEVICES] = {0, 0};
  for (int s = 0; s < STAGES; s++) {
    double med[DEVICES];
    for (int d = 0; d < DEVICES; d++) {
      med[d] = bench_median(dev[d].ms[s], rounds);
      total[d] += med[d];
      char key[64];
      snprintf(key, sizeof key, "%s_%s_ms", stage_names[s], device_names[d]);
      json_object_object_add(o, key, json_object_new_double(med[d]));
      snprintf(key, sizeof key, "%s_%s_first_ms", stage_names[s], device_names[d]);
      json_object_object_add(o, key, json_object_new_double(warm[d][s]));
    }
    char key[64];
    snprintf(key, sizeof key, "%s_cpu_over_opencl", stage_names[s]);
    json_object_object_add(o, key, json_object_new_double(med[0] / med[1]));
    snprintf(key, sizeof key, "%s_max_rel_diff", stage_names[s]);
    json_object_object_add(
        o, key, json_object_new_double(max_rel_diff(dev[1].last[s], dev[0].last[s], dev[0].n[s])));
  }
  json_object_object_add(o, "total_cpu_ms", json_object_new_double(total[0]));
  json_object_object_add(o, "total_opencl_ms", json_object_new_double(total[1]));
  json_object_object_add(o, "total_cpu_over_opencl", json_object_new_double(total[0] / total[1]));
  printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
  json_object_put(o);
  rc = 0;
done_inputs:
  free(pixels);
  free(ids);
done:
  for (int d = 0; d < DEVICES; d++) {
    vz_tensor_free(dev[d].pixels);
    vz_tensor_free(dev[d].ids);
    vz_tensor_free(dev[d].emb);
    for (int s = 0; s < STAGES; s++) {
      free(dev[d].last[s]);
      free(dev[d].ms[s]);
    }
    vz_blip2_stage1_free(dev[d].model);
    vz_backend_free(dev[d].be);
  }
  return rc;
}

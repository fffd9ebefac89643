/* The options shared by the model-running subcommands. */
#include "tools/model_args.h"

#include <stdlib.h>
#include <string.h>

void vz_model_args_usage(FILE *to) {
  fprintf(to, "  --model NAME   a zoo name (vlzoo list), a YAML file or a Hugging Face folder\n"
              "  --weights P    the checkpoint, when not where the config says (vlzoo show NAME)\n"
              "  --tokenizer P  vocab.txt, tokenizer.json or a folder with one (default: from the\n"
              "                 config: processor.tokenizer.checkpoint_name_or_path)\n"
              "  --device D     cpu (default) or opencl; VLZOO_DEVICE sets it too\n"
              "  --dtype D      matmul weights in f32 (default), bf16 or f16\n"
              "  --set K=V      override a config value, as in vlzoo show\n"
              "  --batch-size N images per forward pass (default 8)\n"
              "  --json         machine-readable output\n");
}

int vz_bad_usage(const char *command, const char *message, const char *arg) {
  fprintf(stderr, "vlzoo %s: %s%s\n(see 'vlzoo %s --help')\n", command, message, arg ? arg : "",
          command);
  return 2;
}

int vz_count_arg(const char *command, const char *value, long max, const char *message, int *out) {
  char *end = NULL;
  long n = strtol(value, &end, 10);
  if (!*value || *end || n < 1 || n > max)
    return vz_bad_usage(command, message, value);
  *out = (int)n;
  return 0;
}

int vz_model_args_take(int argc, char **argv, int *i, vz_model_args *a) {
  const char *opt = argv[*i];
  if (strcmp(opt, "--json") == 0) {
    a->json = true;
    return 1;
  }
  static const char *const with_value[] = {"--model", "--weights",    "--tokenizer", "--device",
                                           "--dtype", "--batch-size", "--set"};
  bool ours = false;
  for (size_t k = 0; k < sizeof with_value / sizeof with_value[0]; k++)
    ours = ours || strcmp(opt, with_value[k]) == 0;
  if (!ours)
    return 0;
  if (*i + 1 >= argc)
    return vz_bad_usage(a->command, "missing value after ", opt);
  const char *value = argv[++*i];
  if (strcmp(opt, "--model") == 0) {
    a->model = value;
  } else if (strcmp(opt, "--weights") == 0) {
    a->weights = value;
  } else if (strcmp(opt, "--tokenizer") == 0) {
    a->tokenizer = value;
  } else if (strcmp(opt, "--device") == 0) {
    a->device = value;
  } else if (strcmp(opt, "--dtype") == 0) {
    if (vz_dtype_from_name(value, &a->dtype) != VZ_OK ||
        (a->dtype != VZ_F32 && a->dtype != VZ_BF16 && a->dtype != VZ_F16))
      return vz_bad_usage(a->command, "--dtype must be f32, bf16 or f16, not ", value);
  } else if (strcmp(opt, "--batch-size") == 0) {
    if (vz_count_arg(a->command, value, 4096, "--batch-size takes a number in 1..4096, not ",
                     &a->batch_size) != 0)
      return 2;
  } else {
    if (a->n_overrides == VZ_MAX_OVERRIDES)
      return vz_bad_usage(a->command, "too many --set options", NULL);
    if (!strchr(value, '='))
      return vz_bad_usage(a->command, "--set takes KEY=VALUE, not ", value);
    a->overrides[a->n_overrides++] = value;
  }
  return 1;
}

vz_arg_kind vz_model_args_next(int argc, char **argv, int *i, vz_model_args *a,
                               const char **value) {
  const char *opt = argv[*i];
  if (strcmp(opt, "--help") == 0 || strcmp(opt, "-h") == 0)
    return VZ_ARG_HELP;
  int taken = vz_model_args_take(argc, argv, i, a);
  if (taken)
    return taken == 1 ? VZ_ARG_SHARED : VZ_ARG_BAD;
  if (*i + 1 >= argc) {
    vz_bad_usage(a->command, "missing value after ", opt);
    return VZ_ARG_BAD;
  }
  *value = argv[++*i];
  return VZ_ARG_OWN;
}

vz_status vz_model_session_open(const vz_model_args *a, vz_model_session *s) {
  *s = (vz_model_session){0};
  vz_progress_bar_init(&s->bar);
  vz_pipeline_options opts = {.load = {.weights = a->weights,
                                       .overrides = a->overrides,
                                       .n_overrides = a->n_overrides,
                                       .weight_dtype = a->dtype},
                              .tokenizer = a->tokenizer,
                              .batch_size = a->batch_size};
  vz_status st = vz_backend_create(a->device, &s->be);
  if (st == VZ_OK)
    st = vz_stage1_pipeline_open(a->model, &opts, s->be, &s->pipeline);
  if (st == VZ_OK)
    vz_stage1_pipeline_set_progress(s->pipeline, vz_progress_bar_update, &s->bar);
  return st;
}

void vz_model_session_close(vz_model_session *s) {
  vz_progress_bar_finish(&s->bar);
  vz_stage1_pipeline_free(s->pipeline);
  vz_backend_free(s->be);
  *s = (vz_model_session){0};
}

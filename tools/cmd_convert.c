/* vlzoo convert: checkpoints in, one .ckpt or safetensors file out. The
 * option names follow MindFormers' convert_weight.py (--torch_path,
 * --mindspore_path); hyphenated spellings are accepted too. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/commands.h"
#include "vlzoo/convert.h"
#include "vlzoo/vlzoo.h"

static void usage(FILE *to) {
  fprintf(
      to,
      "usage: vlzoo convert --torch_path IN [--torch_path IN2 ...]\n"
      "                     (--mindspore_path OUT.ckpt | --safetensors_path OUT.safetensors)\n"
      "                     [--model ZOO_NAME] [--from lavis|hf|mindformers|vpgtrans|vlzoo|auto]\n"
      "                     [--to NAMING] [--dtype f32|f16|bf16] [--quiet]\n"
      "\n"
      "Reads checkpoints (PyTorch .pth/.bin, safetensors, MindSpore .ckpt; several inputs are\n"
      "merged, e.g. eva_vit_g.pth + blip2_pretrained.pth) and writes one file.\n"
      "\n"
      "  --torch_path IN        an input (any readable format); repeat for more\n"
      "  --mindspore_path OUT   write a MindSpore .ckpt (MindFormers names with --model)\n"
      "  --safetensors_path OUT write safetensors (Hugging Face names with --model)\n"
      "  --model NAME           map names and layouts for this zoo model: blip2_stage1_vit_g,\n"
      "                         blip2_stage1_evaluator, blip2_stage1_classification,\n"
      "                         blip2_stage1_pretrained (stage-2 names: LLM part not yet)\n"
      "                         without it, names are kept as they are\n"
      "  --from NAMING          the inputs' naming (default: detected from the names)\n"
      "  --to NAMING            the output naming (default: mindformers for .ckpt, hf for\n"
      "                         safetensors; vlzoo keeps temp and the Q-Former LM head)\n"
      "  --dtype D              convert floating-point tensors to f32, f16 or bf16\n"
      "                         (default: every dtype kept)\n"
      "  --quiet                do not list the tensors dropped or made\n"
      "\n"
      "Hyphenated spellings (--torch-path, --mindspore-path, --safetensors-path) work too.\n"
      "Nothing is written unless the whole conversion succeeds.\n");
}

/* Matches --a_b and --a-b. */
static bool is_opt(const char *arg, const char *name) {
  if (strncmp(arg, "--", 2) != 0)
    return false;
  arg += 2;
  for (; *arg && *name; arg++, name++)
    if (*arg != *name && !(*arg == '-' && *name == '_'))
      return false;
  return *arg == '\0' && *name == '\0';
}

static void print_note(void *user, const char *text) {
  (void)user;
  fprintf(stderr, "vlzoo convert: %s\n", text);
}

int vz_cmd_convert(int argc, char **argv) {
  const char **inputs = calloc((size_t)argc, sizeof *inputs);
  if (!inputs) {
    fprintf(stderr, "vlzoo convert: out of memory\n");
    return 1;
  }
  size_t n_inputs = 0;
  const char *ckpt = NULL, *safetensors = NULL, *model = NULL, *from = NULL, *to = NULL,
             *dtype = NULL;
  bool quiet = false;
  int rc = 2;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(stdout);
      free(inputs);
      return 0;
    }
    if (is_opt(a, "quiet")) {
      quiet = true;
      continue;
    }
    const char **slot = NULL;
    if (is_opt(a, "torch_path") || is_opt(a, "input"))
      slot = &inputs[n_inputs];
    else if (is_opt(a, "mindspore_path"))
      slot = &ckpt;
    else if (is_opt(a, "safetensors_path"))
      slot = &safetensors;
    else if (is_opt(a, "model"))
      slot = &model;
    else if (is_opt(a, "from"))
      slot = &from;
    else if (is_opt(a, "to"))
      slot = &to;
    else if (is_opt(a, "dtype"))
      slot = &dtype;
    if (!slot) {
      fprintf(stderr, "vlzoo convert: unknown argument '%s' (see vlzoo convert --help)\n", a);
      goto done;
    }
    if (i + 1 >= argc || argv[i + 1][0] == '\0') {
      fprintf(stderr, "vlzoo convert: %s needs a value\n", a);
      goto done;
    }
    if (*slot && slot != &inputs[n_inputs]) {
      fprintf(stderr, "vlzoo convert: %s given twice\n", a);
      goto done;
    }
    *slot = argv[++i];
    if (slot == &inputs[n_inputs])
      n_inputs++;
  }
  if (n_inputs == 0) {
    fprintf(stderr, "vlzoo convert: no input (--torch_path IN)\n");
    goto done;
  }
  if (!ckpt == !safetensors) {
    fprintf(stderr, "vlzoo convert: give one output: --mindspore_path OUT.ckpt or "
                    "--safetensors_path OUT\n");
    goto done;
  }
  if (model && vz_convert_check_model(model) != VZ_OK) {
    fprintf(stderr, "vlzoo convert: %s\n", vz_last_error());
    goto done;
  }
  if ((from || to) && !model) {
    fprintf(stderr, "vlzoo convert: --from and --to need --model (without it names are kept)\n");
    goto done;
  }
  static const char *const namings[] = {"auto", "lavis", "hf", "mindformers", "vpgtrans", "vlzoo"};
  for (int k = 0; k < 2; k++) {
    const char *v = k ? to : from;
    if (!v)
      continue;
    bool ok = false;
    for (size_t j = k; j < sizeof namings / sizeof namings[0]; j++)
      ok |= strcmp(v, namings[j]) == 0;
    if (!ok) {
      fprintf(stderr, "vlzoo convert: --%s must be %s, not '%s'\n", k ? "to" : "from",
              k ? "lavis, hf, mindformers, vpgtrans or vlzoo"
                : "auto, lavis, hf, mindformers, vpgtrans or vlzoo",
              v);
      goto done;
    }
  }
  vz_convert_options o = {0};
  if (dtype) {
    if (vz_dtype_from_name(dtype, &o.dtype) != VZ_OK ||
        (o.dtype != VZ_F32 && o.dtype != VZ_F16 && o.dtype != VZ_BF16)) {
      fprintf(stderr, "vlzoo convert: --dtype must be f32, f16 or bf16, not '%s'\n", dtype);
      goto done;
    }
    o.cast = true;
  }
  vz_convert_summary sum;
  o.inputs = inputs;
  o.n_inputs = n_inputs;
  o.from = from;
  o.to = to;
  o.model = model;
  o.output = ckpt ? ckpt : safetensors;
  o.format = ckpt ? VZ_FORMAT_MINDSPORE_CKPT : VZ_FORMAT_SAFETENSORS;
  o.note = quiet ? NULL : print_note;
  o.summary = &sum;
  if (vz_convert(&o) != VZ_OK) {
    fprintf(stderr, "vlzoo convert: %s\n", vz_last_error());
    rc = 1;
    goto done;
  }
  printf("wrote %s: %zu tensors (%zu read", o.output, sum.tensors_written, sum.tensors_read);
  if (sum.from[0])
    printf(", %s -> %s names", sum.from, sum.to);
  printf(", %zu dropped, %zu made)\n", sum.dropped, sum.made);
  rc = 0;
done:
  free(inputs);
  return rc;
}

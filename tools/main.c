/* The vlzoo program: subcommand dispatch. */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/commands.h"
#include "vlzoo/vlzoo.h"

static const vz_command commands[] = {
    {"info", "show the version, backends and their devices", vz_cmd_info},
    {"bench", "run a benchmark (bench gemm ...)", vz_cmd_bench},
    {"convert", "convert checkpoints (LAVIS, HF, MindFormers namings)", vz_cmd_convert},
    {"inspect", "list the tensors of a checkpoint (--json: with SHA-256)", vz_cmd_inspect},
    {"list", "list the model zoo (the names show and the pipelines take)", vz_cmd_list},
    {"embed", "BLIP-2 stage-1 image/text features, ITC and ITM (--json)", vz_cmd_embed},
    {"show", "print a model's configuration as YAML (--set KEY=VALUE)", vz_cmd_show},
    {"classify", "zero-shot image classification (--labels \"a,b,c\")", vz_cmd_classify},
    {"retrieve", "rank images for a text, or texts for an image (--index)", vz_cmd_retrieve},
    {"eval-retrieval", "TR@K / IR@K on a COCO / Flickr30k annotation file", vz_cmd_eval_retrieval},
};

enum { COMMAND_COUNT = sizeof commands / sizeof commands[0] };

static void usage(FILE *to) {
  fprintf(to, "usage: vlzoo COMMAND [OPTIONS]\n\nBLIP-family vision-language models in C.\n\n"
              "commands:\n");
  for (int i = 0; i < COMMAND_COUNT; i++)
    fprintf(to, "  %-15s %s\n", commands[i].name, commands[i].summary);
  fprintf(to,
          "\n'vlzoo COMMAND --help' describes a command's options. --verbose (anywhere)\n"
          "logs what the library does at info level: which ops a device lacks and runs\n"
          "on the CPU instead, how OpenCL kernels are built.\n"
          "environment: VLZOO_DEVICE (cpu|opencl), VLZOO_OPENCL_DEVICE, VLZOO_THREADS,\n"
          "VLZOO_CPU_ISA (scalar|avx2|avx512|avx512fp16), VLZOO_LOG (debug|info|warn|error|off)\n");
}

/* Takes every --verbose out of argv and raises the library's log level
 * (VLZOO_LOG, read by ops/log.c) to info unless it is already debug. */
static int take_verbose(int argc, char **argv) {
  int kept = 1;
  bool verbose = false;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--verbose") == 0)
      verbose = true;
    else
      argv[kept++] = argv[i];
  }
  argv[kept] = NULL;
  const char *level = getenv("VLZOO_LOG");
  if (verbose && !(level && strcmp(level, "debug") == 0))
    setenv("VLZOO_LOG", "info", 1);
  return kept;
}

int main(int argc, char **argv) {
  argc = take_verbose(argc, argv);
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
      strcmp(argv[1], "help") == 0) {
    usage(stdout);
    return 0;
  }
  if (strcmp(argv[1], "--version") == 0) {
    printf("vlzoo %s\n", vz_version());
    return 0;
  }
  for (int i = 0; i < COMMAND_COUNT; i++)
    if (strcmp(argv[1], commands[i].name) == 0)
      return commands[i].run(argc - 1, argv + 1);
  fprintf(stderr, "vlzoo: unknown command '%s'\n\n", argv[1]);
  usage(stderr);
  return 2;
}

/* The options every model-running subcommand shares (--model, --weights,
 * --tokenizer, --device, --dtype, --set, --batch-size, --json) and the
 * pipeline they open, with a progress bar on stderr when it is a terminal. */
#ifndef VLZOO_TOOLS_MODEL_ARGS_H
#define VLZOO_TOOLS_MODEL_ARGS_H

#include <stdbool.h>
#include <stdio.h>

#include "tools/progress.h"
#include "vlzoo/vlzoo.h"

enum { VZ_MAX_OVERRIDES = 64 };

typedef struct vz_model_args {
  const char *command; /* for messages: "classify" */
  const char *model, *weights, *tokenizer, *device;
  const char *overrides[VZ_MAX_OVERRIDES];
  int n_overrides;
  vz_dtype dtype;
  int batch_size;
  bool json;
} vz_model_args;

/* The help lines of the shared options. */
void vz_model_args_usage(FILE *to);

/* Reads argv[*i] when it is a shared option (advancing *i past its value):
 * returns 1 when it was, 0 when it is not a shared option, 2 after printing
 * a usage error. */
int vz_model_args_take(int argc, char **argv, int *i, vz_model_args *a);

/* What vz_model_args_next found at argv[*i]. */
typedef enum vz_arg_kind {
  VZ_ARG_SHARED, /* a shared option, taken into the vz_model_args */
  VZ_ARG_OWN,    /* the command's own option argv[*i - 1], its value in *value */
  VZ_ARG_HELP,   /* --help or -h */
  VZ_ARG_BAD     /* a usage error, already printed */
} vz_arg_kind;

/* One step of a command's option loop: takes a shared option, or the
 * command's own option with its value (every own option takes one). */
vz_arg_kind vz_model_args_next(int argc, char **argv, int *i, vz_model_args *a, const char **value);

/* Prints "vlzoo COMMAND: message" and the help hint; returns 2. */
int vz_bad_usage(const char *command, const char *message, const char *arg);

/* Reads an option's value as a whole number in 1..max into *out: returns 0,
 * or 2 after printing `message` (e.g. "--top-k takes a positive number,
 * not ") followed by the value. */
int vz_count_arg(const char *command, const char *value, long max, const char *message, int *out);

/* What a run holds: the backend, the pipeline and the progress bar. */
typedef struct vz_model_session {
  vz_backend *be;
  vz_stage1_pipeline *pipeline;
  vz_progress_bar bar;
} vz_model_session;

vz_status vz_model_session_open(const vz_model_args *a, vz_model_session *s);
void vz_model_session_close(vz_model_session *s);

#endif

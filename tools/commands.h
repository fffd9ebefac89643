/* The subcommands of the vlzoo program. Each gets argv from its own name
 * on and returns the process exit code (0 ok, 1 failure, 2 bad usage). */
#ifndef VLZOO_TOOLS_COMMANDS_H
#define VLZOO_TOOLS_COMMANDS_H

typedef struct vz_command {
  const char *name;
  const char *summary;
  int (*run)(int argc, char **argv);
} vz_command;

int vz_cmd_info(int argc, char **argv);
int vz_cmd_bench(int argc, char **argv);
int vz_cmd_convert(int argc, char **argv);
int vz_cmd_inspect(int argc, char **argv);
int vz_cmd_list(int argc, char **argv);
int vz_cmd_show(int argc, char **argv);
int vz_cmd_embed(int argc, char **argv);
int vz_cmd_classify(int argc, char **argv);
int vz_cmd_retrieve(int argc, char **argv);
int vz_cmd_eval_retrieval(int argc, char **argv);

#endif

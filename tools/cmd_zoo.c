/* vlzoo list: the zoo's names with a one-line description each.
 * vlzoo show: a configuration resolved to YAML, with overrides applied. */
#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/commands.h"
#include "vlzoo/vlzoo.h"
#include "vlzoo/zoo.h"

static bool is_help(const char *arg) {
  return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

static void list_usage(FILE *to) {
  fprintf(to, "usage: vlzoo list [--json]\n"
              "\n"
              "Lists the model zoo: every name 'vlzoo show NAME' and the other commands accept,\n"
              "with a one-line description (the configurations are built into vlzoo).\n"
              "\n"
              "  --json   one JSON object per line: {\"name\", \"description\"}\n");
}

int vz_cmd_list(int argc, char **argv) {
  bool json = false;
  for (int i = 1; i < argc; i++) {
    if (is_help(argv[i])) {
      list_usage(stdout);
      return 0;
    }
    if (strcmp(argv[i], "--json") == 0) {
      json = true;
    } else {
      fprintf(stderr, "vlzoo list: unexpected argument '%s' (see vlzoo list --help)\n", argv[i]);
      return 2;
    }
  }
  const char *const *names = vz_zoo_names();
  int width = 0;
  for (const char *const *n = names; *n; n++)
    if ((int)strlen(*n) > width)
      width = (int)strlen(*n);
  for (const char *const *n = names; *n; n++) {
    const char *description = vz_zoo_description(*n);
    if (json) {
      json_object *obj = json_object_new_object();
      if (!obj) {
        fprintf(stderr, "vlzoo list: out of memory\n");
        return 1;
      }
      json_object_object_add(obj, "name", json_object_new_string(*n));
      json_object_object_add(obj, "description", json_object_new_string(description));
      printf("%s\n", json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN |
                                                             JSON_C_TO_STRING_NOSLASHESCAPE));
      json_object_put(obj);
    } else {
      printf("%-*s  %s\n", width, *n, description);
    }
  }
  return 0;
}

static void show_usage(FILE *to) {
  fprintf(to, "usage: vlzoo show NAME|FILE.yaml|FOLDER [--set KEY=VALUE ...]\n"
              "\n"
              "Prints a model configuration as YAML, after overrides: a zoo name (vlzoo list),\n"
              "a YAML file (MindFormers' layout), or a Hugging Face model folder whose\n"
              "config.json is translated into the zoo's keys.\n"
              "\n"
              "  --set KEY=VALUE  override one existing value, typed like the value it replaces\n"
              "                   (repeatable). KEY is dotted; when its first part is not a\n"
              "                   top-level key (model, processor, pipeline, description) it is\n"
              "                   taken under model.model_config, e.g.\n"
              "                   --set qformer_config.query_length=16\n"
              "                   --set processor.image_processor.image_size=364\n"
              "                   --set processor.image_processor.mean=[0.5,0.5,0.5]\n");
}

int vz_cmd_show(int argc, char **argv) {
  const char *target = NULL;
  const char **sets = calloc((size_t)argc + 1, sizeof *sets);
  int n_sets = 0;
  if (!sets) {
    fprintf(stderr, "vlzoo show: out of memory\n");
    return 1;
  }
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    if (is_help(arg)) {
      show_usage(stdout);
      free(sets);
      return 0;
    }
    if (strcmp(arg, "--set") == 0) {
      if (i + 1 >= argc) {
        fprintf(stderr, "vlzoo show: --set needs KEY=VALUE\n");
        free(sets);
        return 2;
      }
      arg = argv[++i];
    } else if (strncmp(arg, "--set=", 6) == 0) {
      arg += 6;
    } else if (arg[0] == '-' && arg[1] != '\0') {
      fprintf(stderr, "vlzoo show: unknown option '%s' (see vlzoo show --help)\n", arg);
      free(sets);
      return 2;
    } else if (target) {
      fprintf(stderr, "vlzoo show: one model at a time ('%s' and '%s')\n", target, arg);
      free(sets);
      return 2;
    } else {
      target = arg;
      continue;
    }
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg) {
      fprintf(stderr, "vlzoo show: --set takes KEY=VALUE, not '%s'\n", arg);
      free(sets);
      return 2;
    }
    sets[n_sets++] = arg;
  }
  if (!target) {
    fprintf(stderr, "vlzoo show: no model given\n");
    show_usage(stderr);
    free(sets);
    return 2;
  }
  vz_config *cfg = NULL;
  if (vz_config_load(target, &cfg) != VZ_OK) {
    fprintf(stderr, "vlzoo show: %s\n", vz_last_error());
    free(sets);
    return 1;
  }
  for (int i = 0; i < n_sets; i++)
    if (vz_config_set_override(cfg, sets[i]) != VZ_OK) {
      fprintf(stderr, "vlzoo show: --set %s: %s\n", sets[i], vz_last_error());
      vz_config_free(cfg);
      free(sets);
      return 1;
    }
  free(sets);
  char *text = NULL;
  if (vz_config_to_yaml(cfg, &text) != VZ_OK) {
    fprintf(stderr, "vlzoo show: %s\n", vz_last_error());
    vz_config_free(cfg);
    return 1;
  }
  fputs(text, stdout);
  free(text);
  vz_config_free(cfg);
  return 0;
}

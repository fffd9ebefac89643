/* Library-internal pieces shared by models/config.c and models/zoo.c. */
#ifndef VLZOO_MODELS_ZOO_INTERNAL_H
#define VLZOO_MODELS_ZOO_INTERNAL_H

#include <stddef.h>

#include "vlzoo/zoo.h"

/* One YAML file of zoo-configs/, embedded by zoo-configs/embed_configs.cmake
 * into the generated source zoo_configs.c. Sorted by name. */
typedef struct vz_zoo_file {
  const char *name;        /* the file name without .yaml */
  const char *description; /* its top-level `description` line */
  const char *text;        /* the YAML, NUL-terminated */
  size_t size;             /* bytes of text, without the NUL */
} vz_zoo_file;

extern const vz_zoo_file vz_zoo_files[];
extern const size_t vz_zoo_file_count;
/* The same names, NULL-terminated. */
extern const char *const vz_zoo_name_list[];

/* The directory that relative paths in the config refer to (the YAML
 * file's, or the model folder), or NULL for a zoo name. */
const char *vz_config_dir(const vz_config *cfg);

#endif

/* vlzoo inspect: every tensor of a checkpoint, as a table or as JSON lines
 * ({"name", "dtype", "shape", "sha256"}, the hash over the tensor's
 * contiguous little-endian bytes, so that files of different formats can
 * be compared tensor by tensor). */
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "convert/sha256.h"
#include "tools/commands.h"
#include "vlzoo/vlzoo.h"
#include "vlzoo/weights.h"

static void usage(FILE *to) {
  fprintf(to,
          "usage: vlzoo inspect [--json] FILE\n"
          "\n"
          "Lists every tensor of a checkpoint (safetensors, PyTorch .pth/.bin, MindSpore .ckpt,\n"
          "a sharded *.index.json or a model directory), in file order.\n"
          "\n"
          "  --json   one JSON object per line: {\"name\", \"dtype\", \"shape\", \"sha256\"},\n"
          "           the SHA-256 of the tensor's contiguous little-endian bytes\n"
          "  (default) a table: name, dtype, shape, bytes, and a total\n");
}

static void shape_text(const vz_weight_info *info, char *buf, size_t size) {
  size_t used = (size_t)snprintf(buf, size, "[");
  for (int d = 0; d < info->ndim && used < size; d++)
    used += (size_t)snprintf(buf + used, size - used, "%s%lld", d ? ", " : "",
                             (long long)info->shape[d]);
  if (used < size)
    snprintf(buf + used, size - used, "]");
}

int vz_cmd_inspect(int argc, char **argv) {
  bool json = false;
  const char *path = NULL;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      usage(stdout);
      return 0;
    }
    if (strcmp(argv[i], "--json") == 0) {
      json = true;
    } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
      fprintf(stderr, "vlzoo inspect: unknown option '%s' (see vlzoo inspect --help)\n", argv[i]);
      return 2;
    } else if (path) {
      fprintf(stderr, "vlzoo inspect: one file at a time ('%s' and '%s')\n", path, argv[i]);
      return 2;
    } else {
      path = argv[i];
    }
  }
  if (!path) {
    fprintf(stderr, "vlzoo inspect: no file given\n");
    usage(stderr);
    return 2;
  }
  vz_weights *w = NULL;
  if (vz_weights_open(path, &w) != VZ_OK) {
    fprintf(stderr, "vlzoo inspect: %s\n", vz_last_error());
    return 1;
  }
  size_t n = vz_weights_count(w), name_width = 4;
  for (size_t i = 0; i < n; i++) {
    size_t len = strlen(vz_weights_info(w, i)->name);
    name_width = len > name_width ? len : name_width;
  }
  if (!json)
    printf("%-*s  %-5s  %-24s  %s\n", (int)name_width, "name", "dtype", "shape", "bytes");
  size_t total = 0;
  int rc = 0;
  for (size_t i = 0; i < n; i++) {
    const vz_weight_info *info = vz_weights_info(w, i);
    total += info->nbytes;
    if (!json) {
      char shape[256];
      shape_text(info, shape, sizeof shape);
      printf("%-*s  %-5s  %-24s  %zu\n", (int)name_width, info->name, vz_dtype_name(info->dtype),
             shape, info->nbytes);
      continue;
    }
    const void *data = NULL;
    size_t nbytes = 0;
    if (vz_weights_data(w, i, &data, &nbytes) != VZ_OK) {
      fprintf(stderr, "vlzoo inspect: %s: %s\n", info->name, vz_last_error());
      rc = 1;
      break;
    }
    char hex[65];
    vz_sha256_hex(data, nbytes, hex);
    json_object *obj = json_object_new_object();
    json_object *shape = json_object_new_array();
    for (int d = 0; d < info->ndim; d++)
      json_object_array_add(shape, json_object_new_int64(info->shape[d]));
    json_object_object_add(obj, "name", json_object_new_string(info->name));
    json_object_object_add(obj, "dtype", json_object_new_string(vz_dtype_name(info->dtype)));
    json_object_object_add(obj, "shape", shape);
    json_object_object_add(obj, "sha256", json_object_new_string(hex));
    printf("%s\n", json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN));
    json_object_put(obj);
  }
  if (!json && rc == 0)
    printf("%zu tensors, %zu bytes (%s)\n", n, total, vz_weights_format(w));
  vz_weights_close(w);
  return rc;
}

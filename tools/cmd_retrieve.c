/* vlzoo retrieve: images for a text (from files, folders or a saved index),
 * or texts for an image, by ITC similarity. */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "ops/internal.h"
#include "tools/commands.h"
#include "tools/model_args.h"
#include "tools/text_list.h"

typedef struct retrieve_args {
  vz_model_args m;
  vz_text_list images, texts;
  const char *image, *index;
  int top_k;
} retrieve_args;

static void usage(FILE *to) {
  fprintf(to, "usage: vlzoo retrieve --model NAME (--images DIR|P ... | --index FILE) --text T\n"
              "                      [--index FILE] [--top-k K] [--json]\n"
              "       vlzoo retrieve --model NAME --image P (--text T ... | --texts-file F)\n"
              "                      [--top-k K] [--json]\n\n"
              "Ranks a gallery of images for one text, or texts for one image, by the ITC\n"
              "similarity of the model (pooled over the queries as the config says).\n\n"
              "  --images X     an image file, or a folder whose .jpg/.jpeg/.png files are taken;\n"
              "                 repeat for more\n"
              "  --index FILE   with --images: save the gallery's features to FILE (safetensors)\n"
              "                 without: use the gallery saved in FILE (refused when another\n"
              "                 model or other weights made it)\n"
              "  --text T       the query text; with --image, a candidate (repeat for more)\n"
              "  --texts-file F candidate texts, one per line\n"
              "  --image P      rank the texts for this image\n"
              "  --top-k K      how many results (default 5)\n");
  vz_model_args_usage(to);
}

static bool is_image_name(const char *name) {
  const char *dot = strrchr(name, '.');
  return dot && (strcasecmp(dot, ".jpg") == 0 || strcasecmp(dot, ".jpeg") == 0 ||
                 strcasecmp(dot, ".png") == 0);
}

static int compare_strings(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A file as it is, a folder as its image files in name order. */
static int add_images(vz_text_list *list, const char *path) {
  struct stat sb;
  if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode))
    return vz_text_list_add(list, path);
  DIR *d = opendir(path);
  if (!d)
    return -1;
  int first = list->n, rc = 0;
  char full[4096];
  for (struct dirent *e; rc == 0 && (e = readdir(d));) {
    if (e->d_name[0] == '.' || !is_image_name(e->d_name))
      continue;
    snprintf(full, sizeof full, "%s/%s", path, e->d_name);
    rc = vz_text_list_add(list, full);
  }
  closedir(d);
  qsort(list->items + first, (size_t)(list->n - first), sizeof *list->items, compare_strings);
  return rc;
}

static int parse_args(int argc, char **argv, retrieve_args *a) {
  a->m = (vz_model_args){.command = "retrieve", .dtype = VZ_F32};
  a->top_k = 5;
  for (int i = 1; i < argc; i++) {
    const char *opt = argv[i], *value = NULL;
    switch (vz_model_args_next(argc, argv, &i, &a->m, &value)) {
    case VZ_ARG_HELP: usage(stdout); return -1;
    case VZ_ARG_BAD: return 2;
    case VZ_ARG_SHARED: continue;
    case VZ_ARG_OWN: break;
    }
    if (strcmp(opt, "--images") == 0) {
      if (add_images(&a->images, value) != 0)
        return vz_bad_usage("retrieve", "cannot read the folder ", value);
    } else if (strcmp(opt, "--text") == 0) {
      if (vz_text_list_add(&a->texts, value) != 0)
        return vz_bad_usage("retrieve", "out of memory", NULL);
    } else if (strcmp(opt, "--texts-file") == 0) {
      if (vz_text_list_read_lines(&a->texts, value) != 0)
        return vz_bad_usage("retrieve", "cannot read ", value);
    } else if (strcmp(opt, "--image") == 0) {
      a->image = value;
    } else if (strcmp(opt, "--index") == 0) {
      a->index = value;
    } else if (strcmp(opt, "--top-k") == 0) {
      if (vz_count_arg("retrieve", value, 1000000, "--top-k takes a positive number, not ",
                       &a->top_k) != 0)
        return 2;
    } else {
      return vz_bad_usage("retrieve", "unknown option ", opt);
    }
  }
  if (!a->m.model)
    return vz_bad_usage("retrieve", "no model given (--model NAME)", NULL);
  if (a->texts.n == 0)
    return vz_bad_usage("retrieve", "no text given (--text T)", NULL);
  if (a->image) {
    if (a->images.n || a->index)
      return vz_bad_usage("retrieve", "--image ranks texts; it does not take --images/--index",
                          NULL);
  } else {
    if (a->texts.n != 1)
      return vz_bad_usage("retrieve", "give one --text to rank images (or --image to rank texts)",
                          NULL);
    if (a->images.n == 0 && !a->index)
      return vz_bad_usage("retrieve", "no gallery: give --images DIR|P or --index FILE", NULL);
  }
  return 0;
}

static void print_results(const retrieve_args *a, const char *query, const vz_match *m, int n,
                          const char *kind, const char *const *names) {
  if (a->m.json) {
    json_object *obj = json_object_new_object(), *results = json_object_new_array();
    json_object_object_add(obj, "query", json_object_new_string(query));
    for (int r = 0; r < n; r++) {
      json_object *e = json_object_new_object();
      json_object_object_add(e, kind, json_object_new_string(names[m[r].index]));
      json_object_object_add(e, "similarity", json_object_new_double(m[r].similarity));
      json_object_array_add(results, e);
    }
    json_object_object_add(obj, "results", results);
    printf("%s\n", json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN));
    json_object_put(obj);
    return;
  }
  printf("%s\n", query);
  for (int r = 0; r < n; r++)
    printf("  %2d. %+.4f  %s\n", r + 1, m[r].similarity, names[m[r].index]);
}

static vz_status rank_images(const retrieve_args *a, vz_model_session *s, vz_match *matches) {
  vz_gallery *g = NULL;
  vz_status st;
  if (a->images.n > 0) {
    st = vz_gallery_build(s->pipeline, (const char *const *)a->images.items, a->images.n, &g);
    vz_progress_bar_finish(&s->bar);
    if (st == VZ_OK && a->index)
      st = vz_gallery_save(s->pipeline, g, a->index);
  } else {
    st = vz_gallery_load(s->pipeline, a->index, &g);
  }
  int n = 0;
  if (st == VZ_OK)
    st = vz_retrieve_images(s->pipeline, g, a->texts.items[0], a->top_k, matches, &n);
  if (st == VZ_OK) {
    const char **names = malloc((size_t)vz_gallery_size(g) * sizeof *names);
    for (int64_t i = 0; names && i < vz_gallery_size(g); i++)
      names[i] = vz_gallery_image(g, i);
    if (names)
      print_results(a, a->texts.items[0], matches, n, "image", names);
    else
      st = vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory");
    free(names);
  }
  vz_gallery_free(g);
  return st;
}

int vz_cmd_retrieve(int argc, char **argv) {
  retrieve_args a = {0};
  int usage_status = parse_args(argc, argv, &a);
  vz_match *matches = NULL;
  vz_status st = VZ_OK;
  vz_model_session s = {0};
  if (usage_status)
    goto done;
  if (!(matches = calloc((size_t)a.top_k, sizeof *matches))) {
    st = vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory");
    goto done;
  }
  st = vz_model_session_open(&a.m, &s);
  if (st == VZ_OK && a.image) {
    int n = 0;
    st = vz_retrieve_texts(s.pipeline, a.image, (const char *const *)a.texts.items, a.texts.n,
                           a.top_k, matches, &n);
    vz_progress_bar_finish(&s.bar);
    if (st == VZ_OK)
      print_results(&a, a.image, matches, n, "text", (const char *const *)a.texts.items);
  } else if (st == VZ_OK) {
    st = rank_images(&a, &s, matches);
  }
  if (st != VZ_OK)
    fprintf(stderr, "vlzoo retrieve: %s\n", vz_last_error());
done:
  free(matches);
  vz_model_session_close(&s);
  vz_text_list_free(&a.images);
  vz_text_list_free(&a.texts);
  if (usage_status)
    return usage_status < 0 ? 0 : usage_status;
  return st == VZ_OK ? 0 : 1;
}

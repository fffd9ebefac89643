/* vlzoo classify: zero-shot image classification with a stage-1 model. */
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "ops/internal.h"
#include "tools/commands.h"
#include "tools/model_args.h"
#include "tools/text_list.h"

typedef struct classify_args {
  vz_model_args m;
  vz_text_list images, labels;
  const char *template_text;
  int top_k;
} classify_args;

static void usage(FILE *to) {
  fprintf(to, "usage: vlzoo classify --model NAME --image P [--image P2 ...] --labels \"a,b,c\"\n"
              "                      [--template \"a picture of {}.\"] [--top-k K] [--json]\n\n"
              "Zero-shot classification: each label, put into the template, is scored against\n"
              "each image. score is the softmax over the labels of similarity / temp (temp from\n"
              "the checkpoint, or the config's default_temp); similarity is the raw image-text\n"
              "similarity, pooled over the queries as the config's itc_pooling says.\n\n"
              "  --image P      an image file (JPEG or PNG); repeat for more\n"
              "  --labels L     comma-separated labels (at least one)\n"
              "  --template T   \"{}\" marks the label (default: the config's\n"
              "                 pipeline.hypothesis_template)\n"
              "  --top-k K      print the K best labels (default: all)\n");
  vz_model_args_usage(to);
  fprintf(to, "\nWith --json: one object per image per line,\n"
              "{\"image\": P, \"results\": [{\"label\", \"score\", \"similarity\"}, ...]}.\n");
}

static int parse_args(int argc, char **argv, classify_args *a) {
  a->m = (vz_model_args){.command = "classify", .dtype = VZ_F32};
  for (int i = 1; i < argc; i++) {
    const char *opt = argv[i], *value = NULL;
    switch (vz_model_args_next(argc, argv, &i, &a->m, &value)) {
    case VZ_ARG_HELP: usage(stdout); return -1;
    case VZ_ARG_BAD: return 2;
    case VZ_ARG_SHARED: continue;
    case VZ_ARG_OWN: break;
    }
    if (strcmp(opt, "--image") == 0) {
      if (vz_text_list_add(&a->images, value) != 0)
        return vz_bad_usage("classify", "out of memory", NULL);
    } else if (strcmp(opt, "--labels") == 0) {
      if (vz_text_list_split(&a->labels, value, ',') != 0)
        return vz_bad_usage("classify", "--labels has an empty label: ", value);
    } else if (strcmp(opt, "--template") == 0) {
      a->template_text = value;
    } else if (strcmp(opt, "--top-k") == 0) {
      if (vz_count_arg("classify", value, 1000000, "--top-k takes a positive number, not ",
                       &a->top_k) != 0)
        return 2;
    } else {
      return vz_bad_usage("classify", "unknown option ", opt);
    }
  }
  if (!a->m.model)
    return vz_bad_usage("classify", "no model given (--model NAME)", NULL);
  if (a->images.n == 0)
    return vz_bad_usage("classify", "no image given (--image P)", NULL);
  if (a->labels.n == 0)
    return vz_bad_usage("classify", "no labels given (--labels \"a,b,c\")", NULL);
  return 0;
}

static void print_image(const classify_args *a, const vz_label_set *set, const char *image,
                        const vz_label_score *row) {
  const int n = vz_label_set_size(set), shown = a->top_k && a->top_k < n ? a->top_k : n;
  if (a->m.json) {
    json_object *obj = json_object_new_object(), *results = json_object_new_array();
    json_object_object_add(obj, "image", json_object_new_string(image));
    for (int r = 0; r < shown; r++) {
      json_object *e = json_object_new_object();
      json_object_object_add(e, "label",
                             json_object_new_string(vz_label_set_label(set, row[r].label)));
      json_object_object_add(e, "score", json_object_new_double(row[r].score));
      json_object_object_add(e, "similarity", json_object_new_double(row[r].similarity));
      json_object_array_add(results, e);
    }
    json_object_object_add(obj, "results", results);
    printf("%s\n", json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN));
    json_object_put(obj);
    return;
  }
  printf("%s\n", image);
  for (int r = 0; r < shown; r++)
    printf("  %-32s score %.4f  similarity %+.4f\n", vz_label_set_label(set, row[r].label),
           row[r].score, row[r].similarity);
}

int vz_cmd_classify(int argc, char **argv) {
  classify_args a = {0};
  int usage_status = parse_args(argc, argv, &a);
  if (usage_status) {
    vz_text_list_free(&a.images);
    vz_text_list_free(&a.labels);
    return usage_status < 0 ? 0 : usage_status;
  }
  vz_model_session s;
  vz_label_set *set = NULL;
  vz_label_score *scores = NULL;
  vz_status st = vz_model_session_open(&a.m, &s);
  if (st == VZ_OK)
    st = vz_label_set_new(s.pipeline, (const char *const *)a.labels.items, a.labels.n,
                          a.template_text, &set);
  if (st == VZ_OK && !(scores = calloc((size_t)a.images.n * (size_t)a.labels.n, sizeof *scores)))
    st = vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory");
  if (st == VZ_OK)
    st = vz_zero_shot_classify(s.pipeline, set, (const char *const *)a.images.items, a.images.n,
                               scores);
  vz_progress_bar_finish(&s.bar);
  for (int i = 0; st == VZ_OK && i < a.images.n; i++)
    print_image(&a, set, a.images.items[i], scores + (size_t)i * (size_t)a.labels.n);
  if (st != VZ_OK)
    fprintf(stderr, "vlzoo classify: %s\n", vz_last_error());
  free(scores);
  vz_label_set_free(set);
  vz_model_session_close(&s);
  vz_text_list_free(&a.images);
  vz_text_list_free(&a.labels);
  return st == VZ_OK ? 0 : 1;
}

/* vlzoo eval-retrieval: recall at 1/5/10 on a LAVIS retrieval annotation
 * file (COCO / Flickr30k test format), ITC then ITM re-ranking. */
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "tools/commands.h"
#include "tools/model_args.h"

typedef struct eval_args {
  vz_model_args m;
  const char *annotations, *image_root;
  int k_test;
} eval_args;

static void usage(FILE *to) {
  fprintf(to, "usage: vlzoo eval-retrieval --model NAME --annotations FILE.json --image-root DIR\n"
              "                            [--k-test 128] [--json]\n\n"
              "Image-text retrieval evaluation as LAVIS runs it on COCO and Flickr30k: ITC\n"
              "similarity for all pairs, then the top k-test of each image and of each text\n"
              "re-ranked by ITM match logit + similarity; prints TR@1/5/10 (image to text),\n"
              "IR@1/5/10 (text to image) and their means.\n\n"
              "  --annotations F  a JSON list of {\"image\": path, \"caption\": [texts]}\n"
              "  --image-root DIR where the annotations' image paths start\n"
              "  --k-test K       pairs re-ranked per query (default: the config's\n"
              "                   pipeline.k_test, 128)\n");
  vz_model_args_usage(to);
}

static int parse_args(int argc, char **argv, eval_args *a) {
  a->m = (vz_model_args){.command = "eval-retrieval", .dtype = VZ_F32};
  for (int i = 1; i < argc; i++) {
    const char *opt = argv[i], *value = NULL;
    switch (vz_model_args_next(argc, argv, &i, &a->m, &value)) {
    case VZ_ARG_HELP: usage(stdout); return -1;
    case VZ_ARG_BAD: return 2;
    case VZ_ARG_SHARED: continue;
    case VZ_ARG_OWN: break;
    }
    if (strcmp(opt, "--annotations") == 0) {
      a->annotations = value;
    } else if (strcmp(opt, "--image-root") == 0) {
      a->image_root = value;
    } else if (strcmp(opt, "--k-test") == 0) {
      if (vz_count_arg("eval-retrieval", value, 1000000, "--k-test takes a positive number, not ",
                       &a->k_test) != 0)
        return 2;
    } else {
      return vz_bad_usage("eval-retrieval", "unknown option ", opt);
    }
  }
  if (!a->m.model)
    return vz_bad_usage("eval-retrieval", "no model given (--model NAME)", NULL);
  if (!a->annotations)
    return vz_bad_usage("eval-retrieval", "no annotation file given (--annotations F)", NULL);
  return 0;
}

static void print_metrics(const eval_args *a, const vz_retrieval_metrics *r) {
  const struct {
    const char *name;
    double value;
  } rows[] = {{"txt_r1", r->txt_r1},
              {"txt_r5", r->txt_r5},
              {"txt_r10", r->txt_r10},
              {"txt_r_mean", r->txt_r_mean},
              {"img_r1", r->img_r1},
              {"img_r5", r->img_r5},
              {"img_r10", r->img_r10},
              {"img_r_mean", r->img_r_mean},
              {"r_mean", r->r_mean},
              {"agg_metrics", r->txt_r_mean},
              {"seconds_texts", r->seconds_texts},
              {"seconds_images", r->seconds_images},
              {"seconds_itm", r->seconds_itm}};
  if (a->m.json) {
    json_object *obj = json_object_new_object();
    json_object_object_add(obj, "images", json_object_new_int64(r->n_images));
    json_object_object_add(obj, "texts", json_object_new_int64(r->n_texts));
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
      json_object_object_add(obj, rows[i].name, json_object_new_double(rows[i].value));
    printf("%s\n", json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN));
    json_object_put(obj);
    return;
  }
  printf("%lld images, %lld texts\n", (long long)r->n_images, (long long)r->n_texts);
  printf("image -> text  TR@1 %6.2f  TR@5 %6.2f  TR@10 %6.2f  mean %6.2f\n", r->txt_r1, r->txt_r5,
         r->txt_r10, r->txt_r_mean);
  printf("text -> image  IR@1 %6.2f  IR@5 %6.2f  IR@10 %6.2f  mean %6.2f\n", r->img_r1, r->img_r5,
         r->img_r10, r->img_r_mean);
  printf("r_mean %.2f\n", r->r_mean);
  printf("time: texts %.2f s, images %.2f s, ITM re-ranking %.2f s\n", r->seconds_texts,
         r->seconds_images, r->seconds_itm);
}

int vz_cmd_eval_retrieval(int argc, char **argv) {
  eval_args a = {0};
  int usage_status = parse_args(argc, argv, &a);
  if (usage_status)
    return usage_status < 0 ? 0 : usage_status;
  vz_model_session s;
  vz_retrieval_metrics r;
  vz_status st = vz_model_session_open(&a.m, &s);
  if (st == VZ_OK)
    st = vz_eval_retrieval(s.pipeline, a.annotations, a.image_root, a.k_test, &r);
  vz_progress_bar_finish(&s.bar);
  if (st == VZ_OK)
    print_metrics(&a, &r);
  else
    fprintf(stderr, "vlzoo eval-retrieval: %s\n", vz_last_error());
  vz_model_session_close(&s);
  return st == VZ_OK ? 0 : 1;
}

/* Zero-shot image classification with a stage-1 model: each label put into
 * a template is a text; an image's score for a label is the softmax over the
 * labels of similarity / temp (MindFormers' Blip2Classifier; the similarity
 * pools the queries as the config says). */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pipelines/stage1_pipeline.h"

struct vz_label_set {
  int n;
  char **labels;
  float *features; /* [n, E] */
  const vz_stage1_pipeline *owner;
};

void vz_label_set_free(vz_label_set *set) {
  if (!set)
    return;
  for (int i = 0; set->labels && i < set->n; i++)
    free(set->labels[i]);
  free(set->labels);
  free(set->features);
  free(set);
}

int vz_label_set_size(const vz_label_set *set) { return set ? set->n : 0; }

const char *vz_label_set_label(const vz_label_set *set, int i) {
  return set && i >= 0 && i < set->n ? set->labels[i] : NULL;
}

/* `template_text` with each "{}" replaced by `label`; malloc'd. */
static char *fill_template(const char *template_text, const char *label) {
  size_t holes = 0, tl = strlen(template_text), ll = strlen(label);
  for (const char *s = strstr(template_text, "{}"); s; s = strstr(s + 2, "{}"))
    holes++;
  char *out = malloc(tl + holes * ll + 1), *w = out;
  if (!out)
    return NULL;
  for (const char *s = template_text; *s;) {
    if (s[0] == '{' && s[1] == '}') {
      memcpy(w, label, ll);
      w += ll;
      s += 2;
    } else {
      *w++ = *s++;
    }
  }
  *w = '\0';
  return out;
}

static const char *default_template(const vz_stage1_pipeline *p) {
  const char *t = NULL;
  if (vz_config_has(p->cfg, "pipeline.hypothesis_template") &&
      vz_config_get_string(p->cfg, "pipeline.hypothesis_template", &t) == VZ_OK && t)
    return t;
  return "{}";
}

vz_status vz_label_set_new(vz_stage1_pipeline *p, const char *const *labels, int n,
                           const char *template_text, vz_label_set **out) {
  if (!p || !labels || !out)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "vz_label_set_new: NULL argument");
  *out = NULL;
  if (n < 1)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "zero-shot classification needs at least one label");
  if (!template_text)
    template_text = default_template(p);
  if (!strstr(template_text, "{}"))
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "template '%s' has no {} for the label", template_text);
  const int64_t E = p->params.qformer.embed_dim;
  vz_label_set *set = calloc(1, sizeof *set);
  char **texts = calloc((size_t)n, sizeof *texts);
  vz_status st = VZ_OK;
  if (!set || !texts || !(set->labels = calloc((size_t)n, sizeof *set->labels)) ||
      !(set->features = malloc((size_t)(n * E) * sizeof(float))))
    st = vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory");
  for (int i = 0; i < n && st == VZ_OK; i++) {
    if (!labels[i] || !labels[i][0])
      st = vz_fail(VZ_ERR_INVALID_ARGUMENT, "label %d is empty", i + 1);
    else if (!(set->labels[i] = strdup(labels[i])) ||
             !(texts[i] = fill_template(template_text, labels[i])))
      st = vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory");
    if (set->labels)
      set->n = i + 1;
  }
  if (st == VZ_OK)
    st = vz_pipeline_text_features(p, (const char *const *)texts, n, NULL, set->features);
  for (int i = 0; texts && i < n; i++)
    free(texts[i]);
  free(texts);
  if (st != VZ_OK) {
    vz_label_set_free(set);
    return st;
  }
  set->owner = p;
  *out = set;
  return VZ_OK;
}

static int by_score(const void *a, const void *b) {
  const vz_label_score *x = a, *y = b;
  if (x->score != y->score)
    return x->score > y->score ? -1 : 1;
  return x->label - y->label;
}

/* One image's row of similarities -> its labels ranked by score. */
static void rank_labels(const float *sim, int n, float temp, vz_label_score *out) {
  double top = -INFINITY, total = 0;
  for (int j = 0; j < n; j++)
    top = fmax(top, (double)sim[j] / temp);
  for (int j = 0; j < n; j++)
    total += exp((double)sim[j] / temp - top);
  for (int j = 0; j < n; j++)
    out[j] = (vz_label_score){.label = j,
                              .score = (float)(exp((double)sim[j] / temp - top) / total),
                              .similarity = sim[j]};
  qsort(out, (size_t)n, sizeof *out, by_score);
}

static vz_status classify(vz_stage1_pipeline *p, const vz_label_set *labels,
                          const vz_image_source *images, int64_t n, vz_label_score *out) {
  if (!p || !labels || (n > 0 && !out) || n < 0)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "vz_zero_shot_classify: bad argument");
  if (labels->owner != p)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "the label set was made by another pipeline");
  const float temp = vz_blip2_stage1_temp(p->model);
  if (!(temp > 0))
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "the model's ITC temperature %g is not positive",
                   (double)temp);
  const int64_t QE = (int64_t)p->params.qformer.num_query_tokens * p->params.qformer.embed_dim;
  const int L = labels->n;
  float *features = malloc((size_t)(p->batch_size * QE) * sizeof(float));
  float *sim = malloc((size_t)(p->batch_size * L) * sizeof(float));
  vz_status st = features && sim ? VZ_OK : vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory");
  /* Batches go through the feature step one at a time, so progress is
   * reported here rather than per feature batch. */
  vz_progress_fn progress = p->progress;
  p->progress = NULL;
  for (int64_t start = 0; start < n && st == VZ_OK; start += p->batch_size) {
    const int64_t count = n - start < p->batch_size ? n - start : p->batch_size;
    const vz_image_source batch = {.paths = images->paths ? images->paths + start : NULL,
                                   .images = images->images ? images->images + start : NULL};
    st = vz_pipeline_source_features(p, &batch, count, features, NULL);
    if (st == VZ_OK)
      st = vz_pipeline_similarity(p, features, count, labels->features, L, sim);
    for (int64_t i = 0; i < count && st == VZ_OK; i++)
      rank_labels(sim + i * L, L, temp, out + (start + i) * L);
    if (st == VZ_OK && progress)
      progress(p->progress_user, "images", start + count, n);
  }
  p->progress = progress;
  free(features);
  free(sim);
  return st;
}

vz_status vz_zero_shot_classify(vz_stage1_pipeline *p, const vz_label_set *labels,
                                const char *const *images, int64_t n, vz_label_score *out) {
  const vz_image_source src = {.paths = images};
  return classify(p, labels, &src, n, out);
}

vz_status vz_zero_shot_classify_images(vz_stage1_pipeline *p, const vz_label_set *labels,
                                       const vz_image *const *images, int64_t n,
                                       vz_label_score *out) {
  const vz_image_source src = {.images = images};
  return classify(p, labels, &src, n, out);
}

/* The shipped blip2_tiny_shapes on images it has never seen, drawn by a
 * generator that shares no code with the one it was trained on
 * (tests/shapes_gen.c, not scripts/train_tiny_shapes.py):
 * zero-shot classification over the 12 labels with the zoo's template must
 * pick the right label for at least 90% of 300 images (25 per class).
 * (Retrieval on such images: tests/tiny_shapes_retrieval.sh.)
 * The model, its weights and its vocabulary ship in the repository, so this
 * needs nothing from outside. */
#include <math.h>
#include <string.h>

#include "tests/shapes_gen.h"
#include "tests/test_util.h"

enum { SIZE = 224, PER_CLASS = 25 };

static vz_image *draw(shapes_rng *rng, int class_index) {
  vz_image *img = NULL;
  if (vz_image_new(SIZE, SIZE, &img) != VZ_OK)
    return NULL;
  shapes_scene scene;
  shapes_random_scene(rng, class_index, SIZE, &scene);
  shapes_draw(&scene, SIZE, img->pixels);
  return img;
}

static const char *labels[SHAPES_N_CLASSES];

static void test_classification(vz_stage1_pipeline *p) {
  enum { N = PER_CLASS * SHAPES_N_CLASSES };
  vz_image *images[N] = {0};
  int truth[N];
  shapes_rng rng;
  shapes_rng_seed(&rng, 20261122);
  for (int i = 0; i < N; i++) {
    truth[i] = i % SHAPES_N_CLASSES;
    images[i] = draw(&rng, truth[i]);
    CHECK(images[i] != NULL);
  }
  vz_label_set *set = NULL;
  static vz_label_score scores[N * SHAPES_N_CLASSES];
  CHECK_OK(vz_label_set_new(p, labels, SHAPES_N_CLASSES, NULL, &set));
  if (set)
    CHECK_OK(vz_zero_shot_classify_images(p, set, (const vz_image *const *)images, N, scores));
  int right = 0, confusion[SHAPES_N_CLASSES][SHAPES_N_CLASSES] = {{0}};
  for (int i = 0; i < N && set; i++) {
    const int guess = scores[i * SHAPES_N_CLASSES].label;
    right += guess == truth[i];
    confusion[truth[i]][guess]++;
  }
  const double accuracy = (double)right / N;
  printf("classification: %d of %d right (%.1f%%)\n", right, N, 100 * accuracy);
  for (int c = 0; c < SHAPES_N_CLASSES; c++)
    for (int g = 0; g < SHAPES_N_CLASSES; g++)
      if (g != c && confusion[c][g])
        printf("  %d x '%s' taken for '%s'\n", confusion[c][g], labels[c], labels[g]);
  CHECK(accuracy >= 0.90);
  vz_label_set_free(set);
  for (int i = 0; i < N; i++)
    vz_image_free(images[i]);
}

int main(void) {
  for (int c = 0; c < SHAPES_N_CLASSES; c++)
    labels[c] = shapes_class_label(c);
  vz_backend *be = NULL;
  vz_stage1_pipeline *p = NULL;
  CHECK_OK(vz_backend_create(NULL, &be));
  vz_pipeline_options opts = {.load = {.weight_dtype = VZ_F32}, .batch_size = 16};
  if (be) {
    vz_status st = vz_stage1_pipeline_open("blip2_tiny_shapes", &opts, be, &p);
    if (st == VZ_ERR_NOT_FOUND) {
      printf("skip: blip2_tiny_shapes is not shipped in this tree (%s)\n", vz_last_error());
      vz_backend_free(be);
      return TEST_SKIP;
    }
    CHECK_OK(st);
  }
  if (p) {
    test_classification(p);
  }
  vz_stage1_pipeline_free(p);
  vz_backend_free(be);
  return test_finish("test_tiny_shapes_accuracy");
}

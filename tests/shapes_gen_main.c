/* vlzoo_shapes_gen: writes images of the shapes world (shapes_gen.h) as PNG
 * files with a LAVIS-style annotation file and the list of labels, for the
 * classification test, retrieval benchmarks and the shipped examples.
 *
 *   vlzoo_shapes_gen --out DIR [--count N] [--seed S] [--size PX] [--one-per-class]
 *
 * DIR/images/NNNNN_COLOR_SHAPE.png  the images (RGB, 8 bits), classes
 *                                   balanced: each run of 12 holds every class
 * DIR/annotations.json              [{"image": "images/00000_red_circle.png",
 *                                     "caption": ["a red circle"]}, ...]
 * DIR/labels.txt                    the 12 labels, one a line, class order
 *
 * With --one-per-class: one image of each class, DIR/COLOR_SHAPE.png. Image
 * i depends only on the seed and i, not on the count. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <png.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tests/shapes_gen.h"

static void usage(FILE *to) {
  fprintf(to, "usage: vlzoo_shapes_gen --out DIR [--count N] [--seed S] [--size PX] "
              "[--one-per-class]\n"
              "Writes N images of one colored shape (12 classes, balanced) as PNG files under\n"
              "DIR/images, DIR/annotations.json (LAVIS style) and DIR/labels.txt.\n"
              "  --count N          number of images (default 120)\n"
              "  --seed S           random seed (default 1)\n"
              "  --size PX          image side in pixels, 32..4096 (default 224)\n"
              "  --one-per-class    one image per class, named DIR/COLOR_SHAPE.png\n");
}

static bool make_dir(const char *path) {
  if (mkdir(path, 0777) == 0 || errno == EEXIST)
    return true;
  fprintf(stderr, "vlzoo_shapes_gen: cannot create %s: %s\n", path, strerror(errno));
  return false;
}

static bool write_png(const char *path, const uint8_t *rgb, int size) {
  FILE *f = fopen(path, "wb");
  if (!f) {
    fprintf(stderr, "vlzoo_shapes_gen: cannot write %s: %s\n", path, strerror(errno));
    return false;
  }
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
  png_infop info = png ? png_create_info_struct(png) : NULL;
  bool ok = false;
  if (!png || !info)
    goto done;
  if (setjmp(png_jmpbuf(png)))
    goto done;
  png_init_io(png, f);
  png_set_IHDR(png, info, (png_uint_32)size, (png_uint_32)size, 8, PNG_COLOR_TYPE_RGB,
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  for (int y = 0; y < size; y++)
    png_write_row(png, rgb + (size_t)y * (size_t)size * 3);
  png_write_end(png, NULL);
  ok = true;
done:
  png_destroy_write_struct(png ? &png : NULL, info ? &info : NULL);
  if (fclose(f) != 0)
    ok = false;
  if (!ok)
    fprintf(stderr, "vlzoo_shapes_gen: failed writing %s\n", path);
  return ok;
}

/* Parses a non-negative integer option value within [lo, hi]. */
static bool parse_count(const char *opt, const char *text, long long lo, long long hi,
                        long long *out) {
  char *end = NULL;
  errno = 0;
  long long v = strtoll(text, &end, 10);
  if (errno || end == text || *end || v < lo || v > hi) {
    fprintf(stderr, "vlzoo_shapes_gen: %s takes an integer in %lld..%lld, not '%s'\n", opt, lo, hi,
            text);
    return false;
  }
  *out = v;
  return true;
}

int main(int argc, char **argv) {
  const char *out = NULL;
  long long count = 120, seed = 1, size = 224;
  bool one_per_class = false;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(stdout);
      return 0;
    }
    if (strcmp(a, "--one-per-class") == 0) {
      one_per_class = true;
      continue;
    }
    if (i + 1 >= argc) {
      fprintf(stderr, "vlzoo_shapes_gen: %s needs a value\n", a);
      return 2;
    }
    const char *v = argv[++i];
    if (strcmp(a, "--out") == 0)
      out = v;
    else if (strcmp(a, "--count") == 0) {
      if (!parse_count(a, v, 1, 10000000, &count))
        return 2;
    } else if (strcmp(a, "--seed") == 0) {
      if (!parse_count(a, v, 0, INT64_MAX, &seed))
        return 2;
    } else if (strcmp(a, "--size") == 0) {
      if (!parse_count(a, v, 32, 4096, &size))
        return 2;
    } else {
      fprintf(stderr, "vlzoo_shapes_gen: unknown argument '%s'\n", a);
      usage(stderr);
      return 2;
    }
  }
  if (!out) {
    usage(stderr);
    return 2;
  }
  if (one_per_class)
    count = SHAPES_N_CLASSES;

  char path[4096], rel[256];
  if (!make_dir(out))
    return 1;
  snprintf(path, sizeof path, "%s/images", out);
  if (!one_per_class && !make_dir(path))
    return 1;
  snprintf(path, sizeof path, "%s/labels.txt", out);
  FILE *labels = fopen(path, "w");
  snprintf(path, sizeof path, "%s/annotations.json", out);
  FILE *ann = fopen(path, "w");
  uint8_t *rgb = malloc((size_t)size * (size_t)size * 3);
  if (!labels || !ann || !rgb) {
    fprintf(stderr, "vlzoo_shapes_gen: cannot write into %s\n", out);
    return 1;
  }
  for (int c = 0; c < SHAPES_N_CLASSES; c++)
    fprintf(labels, "%s\n", shapes_class_label(c));

  /* Classes: each run of 12 images is a shuffle of the 12 classes. */
  shapes_rng order_rng;
  shapes_rng_seed(&order_rng, (uint64_t)seed ^ 0x5348415045530000ull);
  int order[SHAPES_N_CLASSES];
  int status = 0;
  fprintf(ann, "[\n");
  for (long long i = 0; i < count && status == 0; i++) {
    int slot = (int)(i % SHAPES_N_CLASSES);
    if (slot == 0) {
      for (int c = 0; c < SHAPES_N_CLASSES; c++)
        order[c] = c;
      for (int c = SHAPES_N_CLASSES - 1; c > 0 && !one_per_class; c--) {
        int j = (int)(shapes_rng_next(&order_rng) % (uint64_t)(c + 1));
        int t = order[c];
        order[c] = order[j];
        order[j] = t;
      }
    }
    int cls = order[slot];
    /* image i's own stream: depends on the seed and i only */
    shapes_rng rng, mix;
    shapes_rng_seed(&mix, (uint64_t)seed * 0x100000001B3ull + (uint64_t)i);
    shapes_rng_seed(&rng, shapes_rng_next(&mix));
    shapes_scene scene;
    shapes_random_scene(&rng, cls, (int)size, &scene);
    shapes_draw(&scene, (int)size, rgb);
    const char *color = shapes_color_name(scene.color), *kind = shapes_kind_name(scene.kind);
    if (one_per_class)
      snprintf(rel, sizeof rel, "%s_%s.png", color, kind);
    else
      snprintf(rel, sizeof rel, "images/%05lld_%s_%s.png", i, color, kind);
    snprintf(path, sizeof path, "%s/%s", out, rel);
    if (!write_png(path, rgb, (int)size))
      status = 1;
    fprintf(ann, "  {\"image\": \"%s\", \"caption\": [\"%s\"]}%s\n", rel, shapes_class_label(cls),
            i + 1 < count ? "," : "");
  }
  fprintf(ann, "]\n");
  free(rgb);
  if (fclose(labels) != 0 || fclose(ann) != 0) {
    fprintf(stderr, "vlzoo_shapes_gen: failed writing into %s\n", out);
    status = 1;
  }
  if (status == 0)
    printf("wrote %lld images into %s\n", count, out);
  return status;
}

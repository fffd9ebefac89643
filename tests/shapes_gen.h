/* A generator of the shapes world that blip2_tiny_shapes knows: one filled
 * circle, square or triangle in red, green, blue or yellow on a light
 * background, described as "a {color} {shape}" (12 classes).
 *
 * It shares nothing with the Python generator the model was trained on
 * (scripts/train_tiny_shapes.py): its own base colors and jitter, its own
 * size and position distributions, its own rasterizer (4 x 4 supersampled
 * coverage, so edges are anti-aliased), its own random numbers. Images from
 * it measure how the model does on pictures it has never seen drawn this
 * way (tests, retrieval benchmarks, the shipped examples). */
#ifndef VLZOO_TESTS_SHAPES_GEN_H
#define VLZOO_TESTS_SHAPES_GEN_H

#include <stdint.h>

enum { SHAPES_N_COLORS = 4, SHAPES_N_KINDS = 3, SHAPES_N_CLASSES = 12 };

typedef enum shapes_color { SHAPES_RED, SHAPES_GREEN, SHAPES_BLUE, SHAPES_YELLOW } shapes_color;
typedef enum shapes_kind { SHAPES_CIRCLE, SHAPES_SQUARE, SHAPES_TRIANGLE } shapes_kind;

/* Class c (0..11) is color c / 3 and kind c % 3: "a red circle", "a red
 * square", "a red triangle", "a green circle", ... */
const char *shapes_color_name(shapes_color color);
const char *shapes_kind_name(shapes_kind kind);
/* "a red circle" for class 0, ...; NULL outside 0..11. */
const char *shapes_class_label(int class_index);

/* A splitmix64 stream: the same seed gives the same images everywhere. */
typedef struct shapes_rng {
  uint64_t state;
} shapes_rng;

void shapes_rng_seed(shapes_rng *rng, uint64_t seed);
uint64_t shapes_rng_next(shapes_rng *rng);
/* Uniform in [lo, hi). */
double shapes_rng_uniform(shapes_rng *rng, double lo, double hi);

/* What was drawn. */
typedef struct shapes_scene {
  shapes_color color;
  shapes_kind kind;
  double cx, cy;         /* center, pixels (x right, y down) */
  double radius;         /* circle: radius; square: half side; triangle: circumradius */
  double angle;          /* rotation of squares and triangles, radians */
  uint8_t fill[3];       /* RGB of the shape */
  uint8_t background[3]; /* RGB of the background */
} shapes_scene;

/* Picks a scene of class `class_index` for a size x size image: the fill is
 * the color's base RGB with a jitter of up to 22 per channel, the
 * background a light gray or pastel (every channel >= 200), the shape large
 * enough to be seen (its area 2-40 % of the image's) and wholly inside. */
void shapes_random_scene(shapes_rng *rng, int class_index, int size, shapes_scene *scene);

/* Draws `scene` into rgb (size x size pixels, 3 bytes each, rows packed):
 * the background, then the shape blended by its coverage of each pixel. */
void shapes_draw(const shapes_scene *scene, int size, uint8_t *rgb);

/* The fraction of pixel (x, y)'s area that the shape covers, estimated on a
 * 4 x 4 grid of sample points (0, 1/16, ..., 1). */
double shapes_coverage(const shapes_scene *scene, int x, int y);

#endif

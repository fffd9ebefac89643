/* The shapes world's C generator (see shapes_gen.h). */
#include "tests/shapes_gen.h"

#include <math.h>
#include <stdbool.h>
#include <stddef.h>

#define PI 3.14159265358979323846

static const char *const color_names[SHAPES_N_COLORS] = {"red", "green", "blue", "yellow"};
static const char *const kind_names[SHAPES_N_KINDS] = {"circle", "square", "triangle"};
static const char *const class_labels[SHAPES_N_CLASSES] = {
    "a red circle",    "a red square",     "a red triangle",  "a green circle",
    "a green square",  "a green triangle", "a blue circle",   "a blue square",
    "a blue triangle", "a yellow circle",  "a yellow square", "a yellow triangle"};

/* The base fill of each color; a scene moves each channel by up to
 * FILL_JITTER. Chosen as a person would name them, not taken from the
 * training generator's hue ranges. */
static const uint8_t base_fill[SHAPES_N_COLORS][3] = {
    {230, 40, 40},  /* red */
    {40, 170, 60},  /* green */
    {40, 80, 220},  /* blue */
    {240, 210, 30}, /* yellow */
};
enum { FILL_JITTER = 22 };

const char *shapes_color_name(shapes_color color) {
  return (unsigned)color < SHAPES_N_COLORS ? color_names[color] : "?";
}

const char *shapes_kind_name(shapes_kind kind) {
  return (unsigned)kind < SHAPES_N_KINDS ? kind_names[kind] : "?";
}

const char *shapes_class_label(int class_index) {
  return class_index >= 0 && class_index < SHAPES_N_CLASSES ? class_labels[class_index] : NULL;
}

void shapes_rng_seed(shapes_rng *rng, uint64_t seed) { rng->state = seed; }

uint64_t shapes_rng_next(shapes_rng *rng) {
  uint64_t z = (rng->state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

double shapes_rng_uniform(shapes_rng *rng, double lo, double hi) {
  double unit = (double)(shapes_rng_next(rng) >> 11) * (1.0 / 9007199254740992.0); /* [0, 1) */
  return lo + (hi - lo) * unit;
}

static uint8_t clamp_byte(double v) { return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v + 0.5); }

/* How far the shape reaches from its center, as a multiple of `radius`,
 * in the worst direction (so that it stays inside the image). */
static double reach(shapes_kind kind) { return kind == SHAPES_SQUARE ? sqrt(2.0) : 1.0; }

/* The shape's area for radius 1. */
static double unit_area(shapes_kind kind) {
  switch (kind) {
  case SHAPES_CIRCLE: return PI;
  case SHAPES_SQUARE: return 4.0;
  default: return 3.0 * sqrt(3.0) / 4.0; /* equilateral triangle in the unit circle */
  }
}

void shapes_random_scene(shapes_rng *rng, int class_index, int size, shapes_scene *scene) {
  int c = class_index >= 0 && class_index < SHAPES_N_CLASSES ? class_index : 0;
  scene->color = (shapes_color)(c / SHAPES_N_KINDS);
  scene->kind = (shapes_kind)(c % SHAPES_N_KINDS);
  /* Area uniform between 2 % and 40 % of the image (log scale would favor
   * small shapes; a person drawing shapes draws them big as often as not),
   * capped where the shape would no longer fit (triangles: 31 %). */
  double margin = 3.0, biggest = (size / 2.0 - margin) / reach(scene->kind);
  double cap = unit_area(scene->kind) * biggest * biggest / ((double)size * size);
  double fraction = shapes_rng_uniform(rng, 0.02, cap < 0.40 ? cap : 0.40);
  double radius = sqrt(fraction * size * size / unit_area(scene->kind));
  double room = reach(scene->kind) * radius + margin;
  scene->radius = radius;
  scene->cx = shapes_rng_uniform(rng, room, size - room);
  scene->cy = shapes_rng_uniform(rng, room, size - room);
  scene->angle = shapes_rng_uniform(rng, 0, 2 * PI);
  for (int ch = 0; ch < 3; ch++)
    scene->fill[ch] = clamp_byte(base_fill[scene->color][ch] +
                                 shapes_rng_uniform(rng, -FILL_JITTER, FILL_JITTER));
  /* light gray, or a pastel tint of it */
  double level = shapes_rng_uniform(rng, 215, 252);
  bool tinted = shapes_rng_uniform(rng, 0, 1) < 0.5;
  for (int ch = 0; ch < 3; ch++)
    scene->background[ch] = clamp_byte(level + (tinted ? shapes_rng_uniform(rng, -15, 3) : 0));
}

/* Whether point (px, py) lies inside the shape. */
static bool inside(const shapes_scene *s, double px, double py) {
  double dx = px - s->cx, dy = py - s->cy;
  if (s->kind == SHAPES_CIRCLE)
    return dx * dx + dy * dy <= s->radius * s->radius;
  /* into the shape's own frame */
  double cs = cos(s->angle), sn = sin(s->angle);
  double u = cs * dx + sn * dy, v = -sn * dx + cs * dy;
  if (s->kind == SHAPES_SQUARE)
    return fabs(u) <= s->radius && fabs(v) <= s->radius;
  /* equilateral triangle with vertices at angles 90, 210 and 330 degrees:
   * inside when on the inner side of its three edges, whose outward normals
   * point at 270, 30 and 150 degrees, each at distance radius / 2 */
  for (int e = 0; e < 3; e++) {
    double a = (270.0 + 120.0 * e) * PI / 180.0;
    if (u * cos(a) + v * sin(a) > s->radius / 2)
      return false;
  }
  return true;
}

double shapes_coverage(const shapes_scene *scene, int x, int y) {
  int hits = 0;
  for (int j = 0; j < 4; j++)
    for (int i = 0; i < 4; i++)
      hits += inside(scene, x + (i + 0.5) / 4.0, y + (j + 0.5) / 4.0);
  return hits / 16.0;
}

void shapes_draw(const shapes_scene *scene, int size, uint8_t *rgb) {
  /* only pixels near the shape can be covered */
  double r = reach(scene->kind) * scene->radius + 1;
  int x0 = (int)floor(scene->cx - r), x1 = (int)ceil(scene->cx + r);
  int y0 = (int)floor(scene->cy - r), y1 = (int)ceil(scene->cy + r);
  for (int y = 0; y < size; y++) {
    for (int x = 0; x < size; x++) {
      uint8_t *p = rgb + ((size_t)y * (size_t)size + (size_t)x) * 3;
      double a = x >= x0 && x <= x1 && y >= y0 && y <= y1 ? shapes_coverage(scene, x, y) : 0;
      for (int ch = 0; ch < 3; ch++)
        p[ch] = clamp_byte(a * scene->fill[ch] + (1 - a) * scene->background[ch]);
    }
  }
}

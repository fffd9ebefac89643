/* The shapes world's C generator against geometry: the covered area of each
 * drawn shape equals its analytic area, the center pixel has the fill, the
 * corners the background, every scene stays inside the image, colors stay
 * near their base, and a seed gives the same scene twice. */
#include <math.h>
#include <string.h>

#include "tests/shapes_gen.h"
#include "tests/test_util.h"

enum { SIZE = 224 };
static const double PI = 3.14159265358979323846;

static double analytic_area(const shapes_scene *s) {
  double r = s->radius;
  switch (s->kind) {
  case SHAPES_CIRCLE: return PI * r * r;
  case SHAPES_SQUARE: return 4 * r * r;
  default: return 3 * sqrt(3.0) / 4 * r * r;
  }
}

static void test_labels(void) {
  CHECK(strcmp(shapes_class_label(0), "a red circle") == 0);
  CHECK(strcmp(shapes_class_label(5), "a green triangle") == 0);
  CHECK(strcmp(shapes_class_label(7), "a blue square") == 0);
  CHECK(strcmp(shapes_class_label(11), "a yellow triangle") == 0);
  CHECK(shapes_class_label(12) == NULL && shapes_class_label(-1) == NULL);
}

static void test_scenes(void) {
  static uint8_t rgb[SIZE * SIZE * 3];
  static const uint8_t base[4][3] = {{230, 40, 40}, {40, 170, 60}, {40, 80, 220}, {240, 210, 30}};
  shapes_rng rng;
  shapes_rng_seed(&rng, 42);
  for (int n = 0; n < 60; n++) {
    int cls = n % SHAPES_N_CLASSES;
    shapes_scene s;
    shapes_random_scene(&rng, cls, SIZE, &s);
    CHECK((int)s.color == cls / 3 && (int)s.kind == cls % 3);
    double reach = s.kind == SHAPES_SQUARE ? sqrt(2.0) * s.radius : s.radius;
    CHECK(s.cx - reach >= 0 && s.cx + reach <= SIZE && s.cy - reach >= 0 && s.cy + reach <= SIZE);
    double fraction = analytic_area(&s) / (SIZE * SIZE);
    CHECK(fraction >= 0.0199 && fraction <= 0.4001);
    for (int ch = 0; ch < 3; ch++) {
      CHECK(abs((int)s.fill[ch] - (int)base[s.color][ch]) <= 22);
      CHECK(s.background[ch] >= 200);
    }
    shapes_draw(&s, SIZE, rgb);
    /* covered area from the pixels: how far each is from background to fill */
    double covered = 0;
    int channel = 0; /* the channel where fill and background differ most */
    for (int ch = 1; ch < 3; ch++)
      if (abs(s.fill[ch] - s.background[ch]) > abs(s.fill[channel] - s.background[channel]))
        channel = ch;
    double span = (double)s.fill[channel] - s.background[channel];
    for (int i = 0; i < SIZE * SIZE; i++)
      covered += (rgb[i * 3 + channel] - s.background[channel]) / span;
    double want = analytic_area(&s);
    if (fabs(covered - want) > 0.015 * want + 4) {
      fprintf(stderr, "scene %d (%s %s, radius %.1f): covered %.1f px, analytic %.1f\n", n,
              shapes_color_name(s.color), shapes_kind_name(s.kind), s.radius, covered, want);
      test_failures++;
    }
    /* the center is inside every shape; the image corners never are */
    const uint8_t *center = rgb + ((size_t)s.cy * SIZE + (size_t)s.cx) * 3;
    CHECK(shapes_coverage(&s, (int)s.cx, (int)s.cy) == 1.0);
    CHECK(memcmp(center, s.fill, 3) == 0);
    CHECK(memcmp(rgb, s.background, 3) == 0);
    CHECK(memcmp(rgb + ((size_t)SIZE * SIZE - 1) * 3, s.background, 3) == 0);
  }
}

static void test_triangle_geometry(void) {
  /* An upright triangle (angle 0) of circumradius 60 at (112, 112): its
   * vertices are at 90, 210 and 330 degrees; the centroid is inside, points
   * just beyond each edge midpoint are outside. */
  shapes_scene s = {.kind = SHAPES_TRIANGLE, .cx = 112, .cy = 112, .radius = 60, .angle = 0};
  for (int v = 0; v < 3; v++) {
    double a = (90 + 120 * v) * PI / 180;
    double mid = (90 + 120 * v + 180) * PI / 180; /* edge opposite vertex v */
    int vx = (int)floor(112 + 0.9 * 60 * cos(a)), vy = (int)floor(112 + 0.9 * 60 * sin(a));
    CHECK(shapes_coverage(&s, vx, vy) > 0.9);
    int ox = (int)floor(112 + 34 * cos(mid)), oy = (int)floor(112 + 34 * sin(mid));
    CHECK(shapes_coverage(&s, ox, oy) == 0.0);
    int ix = (int)floor(112 + 26 * cos(mid)), iy = (int)floor(112 + 26 * sin(mid));
    CHECK(shapes_coverage(&s, ix, iy) == 1.0);
  }
}

static void test_determinism(void) {
  shapes_rng a, b;
  shapes_rng_seed(&a, 7);
  shapes_rng_seed(&b, 7);
  shapes_scene sa, sb;
  shapes_random_scene(&a, 4, SIZE, &sa);
  shapes_random_scene(&b, 4, SIZE, &sb);
  CHECK(sa.cx == sb.cx && sa.cy == sb.cy && sa.radius == sb.radius && sa.angle == sb.angle);
  CHECK(memcmp(sa.fill, sb.fill, 3) == 0 && memcmp(sa.background, sb.background, 3) == 0);
  /* splitmix64's published first output for seed 0 */
  shapes_rng z;
  shapes_rng_seed(&z, 0);
  CHECK(shapes_rng_next(&z) == 0xE220A8397B1DCDAFull);
}

int main(void) {
  test_labels();
  test_scenes();
  test_triangle_geometry();
  test_determinism();
  return test_finish("test_shapes_gen");
}

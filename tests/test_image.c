/* Image decoding, Pillow's bicubic resize and the BLIP-2 image processor
 * against references from Pillow (tests/fixtures/make_image_references.py):
 * decoded pixels and resizes must be bit-exact (sha256), normalized tensors
 * within 1/255; broken, truncated, empty, foreign and oversized files must
 * fail cleanly with a message.
 *
 * The real photos are read from ../shared/assets/images (VLZOO_ASSETS_DIR
 * overrides); without them the synthetic fixtures are still checked and the
 * test reports itself skipped. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "convert/sha256.h"
#include "test_util.h"
#include "vlzoo/image.h"

static char fixtures_dir[4096]; /* tests/fixtures/images */
static char assets_dir[4096];   /* shared/assets/images, or "" */
static char temp_dir[4096];

static void write_all(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(data, 1, n, f) != n) {
    fprintf(stderr, "cannot write %s\n", path);
    exit(1);
  }
  fclose(f);
}

static void sha_of(const vz_image *img, char hex[65]) {
  vz_sha256_hex(img->pixels, (size_t)img->width * (size_t)img->height * 3, hex);
}

static int n_decoded, n_resized, n_skipped;

/* Resolves "asset NAME" / "fixture NAME"; false, counted as a skipped line,
 * when the asset folder is absent. */
static bool locate(const char *where, const char *name, char *out, size_t size) {
  if (strcmp(where, "asset") == 0) {
    if (!assets_dir[0]) {
      n_skipped++;
      return false;
    }
    test_path_join(out, size, assets_dir, name);
  } else {
    test_path_join(out, size, fixtures_dir, name);
  }
  return true;
}

static void check_resize(const vz_image *img, int w, int h, const char *want, const char *what) {
  vz_image *r = NULL;
  CHECK_OK(vz_image_resize_bicubic(img, w, h, &r));
  if (!r)
    return;
  char hex[65];
  sha_of(r, hex);
  if (strcmp(hex, want) != 0) {
    fprintf(stderr, "%s: %dx%d bicubic resize differs from Pillow's\n", what, w, h);
    test_failures++;
  }
  n_resized++;
  vz_image_free(r);
}

static void check_decode_line(const char *where, const char *name, int w, int h,
                              const char *sha_rgb, const char *sha224, const char *sha364) {
  char path[8192];
  if (!locate(where, name, path, sizeof path))
    return;
  vz_image *img = NULL;
  CHECK_OK(vz_image_load(path, &img));
  if (!img)
    return;
  if (img->width != w || img->height != h) {
    fprintf(stderr, "%s: decoded %dx%d, Pillow %dx%d\n", name, img->width, img->height, w, h);
    test_failures++;
  } else {
    char hex[65];
    sha_of(img, hex);
    if (strcmp(hex, sha_rgb) != 0) {
      fprintf(stderr, "%s: decoded RGB differs from Pillow's convert(\"RGB\")\n", name);
      test_failures++;
    }
    n_decoded++;
    check_resize(img, 224, 224, sha224, name);
    check_resize(img, 364, 364, sha364, name);
  }
  vz_image_free(img);
}

static void check_extra_resize(const char *where, const char *name, int w, int h,
                               const char *want) {
  char path[8192];
  if (!locate(where, name, path, sizeof path))
    return;
  vz_image *img = NULL;
  CHECK_OK(vz_image_load(path, &img));
  if (img)
    check_resize(img, w, h, want, name);
  vz_image_free(img);
}

/* The committed subsample of Pillow + numpy's normalized tensor. */
static void check_tensor(vz_backend *be, const char *where, const char *name, int size, int stride,
                         const char *values_file) {
  char path[8192], ref_path[8192];
  if (!locate(where, name, path, sizeof path))
    return;
  test_path_join(ref_path, sizeof ref_path, fixtures_dir, values_file);
  size_t n = 0;
  unsigned char *ref = test_read_file(ref_path, &n);
  CHECK(ref != NULL);
  if (!ref)
    return;
  unsigned char *nl = memchr(ref, '\n', n);
  CHECK(nl != NULL && memcmp(ref, "vlzoo-f32 ", 10) == 0);
  size_t plane = (size_t)size * size, per_channel = (plane + stride - 1) / stride;
  size_t header = nl ? (size_t)(nl - ref) + 1 : n;
  CHECK(n - header == 3 * per_channel * sizeof(float));
  vz_image *img = NULL;
  vz_tensor *t = NULL;
  CHECK_OK(vz_image_load(path, &img));
  if (img)
    CHECK_OK(vz_image_to_tensor(img, size, VZ_CLIP_MEAN, VZ_CLIP_STD, be, &t));
  if (t && n - header == 3 * per_channel * sizeof(float)) {
    CHECK(t->ndim == 4 && t->shape[0] == 1 && t->shape[1] == 3 && t->shape[2] == size &&
          t->shape[3] == size && t->dtype == VZ_F32);
    float *got = test_read_f32(t);
    float *want = malloc(3 * per_channel * sizeof(float));
    memcpy(want, ref + header, 3 * per_channel * sizeof(float));
    float *sub = malloc(3 * per_channel * sizeof(float));
    for (size_t c = 0; c < 3; c++)
      for (size_t i = 0; i < per_channel; i++)
        sub[c * per_channel + i] = got[c * plane + i * stride];
    double max_diff = 0;
    size_t exact = 0;
    for (size_t i = 0; i < 3 * per_channel; i++) {
      double d = sub[i] > want[i] ? sub[i] - want[i] : want[i] - sub[i];
      max_diff = d > max_diff ? d : max_diff;
      exact += sub[i] == want[i];
    }
    printf("%s at %d: %zu of %zu sampled values equal to Pillow+numpy's, max |diff| %.3g\n", name,
           size, exact, 3 * per_channel, max_diff);
    /* The bar is 1/255 in normalized units; the same f32 steps
     * give the same values, so expect far better. */
    CHECK(test_close(name, sub, want, (int64_t)(3 * per_channel), 1.0f / 255.0f, 0.0f));
    CHECK(max_diff <= 1e-6);
    free(got);
    free(want);
    free(sub);
  }
  vz_tensor_free(t);
  vz_image_free(img);
  free(ref);
}

static void run_references(vz_backend *be) {
  char path[8192];
  test_path_join(path, sizeof path, fixtures_dir, "references.txt");
  FILE *f = fopen(path, "r");
  CHECK(f != NULL);
  if (!f)
    return;
  char line[1024];
  while (fgets(line, sizeof line, f)) {
    char kind[16], where[16], name[256], a[80], b[80], c[80], file[256];
    int w, h, size, stride;
    if (line[0] == '#' || line[0] == '\n')
      continue;
    if (sscanf(line, "decode %15s %255s %d %d %79s %79s %79s", where, name, &w, &h, a, b, c) == 7)
      check_decode_line(where, name, w, h, a, b, c);
    else if (sscanf(line, "resize %15s %255s %d %d %79s", where, name, &w, &h, a) == 5)
      check_extra_resize(where, name, w, h, a);
    else if (sscanf(line, "tensor %15s %255s %d %d %255s", where, name, &size, &stride, file) == 5)
      check_tensor(be, where, name, size, stride, file);
    else if (sscanf(line, "%15s", kind) == 1) {
      fprintf(stderr, "references.txt: cannot parse: %s", line);
      test_failures++;
    }
  }
  fclose(f);
}

/* ---- failures ---- */

static bool message_has(const char *needle) {
  if (strstr(vz_last_error(), needle))
    return true;
  fprintf(stderr, "message '%s' lacks '%s'\n", vz_last_error(), needle);
  return false;
}

static uint32_t crc32_of(const unsigned char *p, size_t n) {
  uint32_t crc = 0xffffffffu;
  for (size_t i = 0; i < n; i++) {
    crc ^= p[i];
    for (int k = 0; k < 8; k++)
      crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1)));
  }
  return ~crc;
}

static void put_be32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24);
  p[1] = (unsigned char)(v >> 16);
  p[2] = (unsigned char)(v >> 8);
  p[3] = (unsigned char)v;
}

/* A PNG whose IHDR claims width x height, with a valid CRC and a tiny IDAT. */
static size_t huge_png(unsigned char *out, uint32_t width, uint32_t height) {
  static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  /* zlib stream of one 3-pixel RGB row of zeros (filter byte + 9 bytes). */
  static const unsigned char idat[] = {0x78, 0xda, 0x63, 0x60, 0x80, 0x01,
                                       0x00, 0x00, 0x0a, 0x00, 0x01};
  size_t n = 0;
  memcpy(out, sig, 8);
  n = 8;
  put_be32(out + n, 13);
  memcpy(out + n + 4, "IHDR", 4);
  put_be32(out + n + 8, width);
  put_be32(out + n + 12, height);
  out[n + 16] = 8; /* depth */
  out[n + 17] = 2; /* RGB */
  out[n + 18] = out[n + 19] = out[n + 20] = 0;
  put_be32(out + n + 21, crc32_of(out + n + 4, 17));
  n += 25;
  put_be32(out + n, sizeof idat);
  memcpy(out + n + 4, "IDAT", 4);
  memcpy(out + n + 8, idat, sizeof idat);
  put_be32(out + n + 8 + sizeof idat, crc32_of(out + n + 4, 4 + sizeof idat));
  n += 12 + sizeof idat;
  put_be32(out + n, 0);
  memcpy(out + n + 4, "IEND", 4);
  put_be32(out + n + 8, crc32_of(out + n + 4, 4));
  return n + 12;
}

/* Offset of the first SOFn marker (baseline or progressive) in a JPEG. */
static size_t find_sof(const unsigned char *d, size_t n) {
  for (size_t i = 2; i + 9 < n; i++)
    if (d[i] == 0xff && (d[i + 1] == 0xc0 || d[i + 1] == 0xc1 || d[i + 1] == 0xc2))
      return i;
  return 0;
}

/* Cuts the file short at several points. Pillow raises "image file is
 * truncated" for every cut of a JPEG; a PNG that lacks only its IEND chunk
 * (the last 12 bytes or fewer) still loads in Pillow, and here. */
static void check_truncations(const char *path, const char *what, bool png) {
  size_t n = 0;
  unsigned char *d = test_read_file(path, &n);
  CHECK(d != NULL);
  if (!d)
    return;
  vz_image *full = NULL;
  CHECK_OK(vz_image_decode(d, n, &full));
  size_t cuts[] = {2, 3, 10, 12, 40, 1000, n / 2, n - 40};
  for (size_t i = 0; full && i < sizeof cuts / sizeof cuts[0]; i++) {
    if (cuts[i] >= n)
      continue;
    vz_image *img = NULL;
    if (png && cuts[i] <= 12) {
      CHECK_OK(vz_image_decode(d, n - cuts[i], &img));
      CHECK(img && memcmp(img->pixels, full->pixels, (size_t)full->width * full->height * 3) == 0);
      vz_image_free(img);
      continue;
    }
    CHECK_FAILS(vz_image_decode(d, n - cuts[i], &img), VZ_ERR_FORMAT);
    if (!message_has("truncated")) {
      fprintf(stderr, "  (%s cut by %zu bytes)\n", what, cuts[i]);
      test_failures++;
    }
    CHECK(img == NULL);
  }
  vz_image_free(full);
  free(d);
}

static void run_failures(vz_backend *be) {
  char path[8192], tmp[8192];
  vz_image *img = NULL;

  /* Files cut short. */
  test_path_join(path, sizeof path, fixtures_dir, "synthetic/rgba8_interlaced.png");
  check_truncations(path, "rgba8_interlaced.png", true);
  test_path_join(path, sizeof path, fixtures_dir, "synthetic/jpeg_420_odd.jpg");
  check_truncations(path, "jpeg_420_odd.jpg", false);
  test_path_join(path, sizeof path, fixtures_dir, "synthetic/jpeg_420_progressive.jpg");
  check_truncations(path, "jpeg_420_progressive.jpg", false);
  if (assets_dir[0]) {
    test_path_join(path, sizeof path, assets_dir, "truncated.jpg");
    CHECK_FAILS(vz_image_load(path, &img), VZ_ERR_FORMAT);
    CHECK(message_has("truncated.jpg") && message_has("truncated JPEG data"));
    printf("truncated.jpg: %s\n", vz_last_error());
    test_path_join(path, sizeof path, assets_dir, "cat.jpg");
    check_truncations(path, "cat.jpg", false);
    test_path_join(path, sizeof path, assets_dir, "grace_hopper_progressive.jpg");
    check_truncations(path, "grace_hopper_progressive.jpg", false);
    test_path_join(path, sizeof path, assets_dir, "chelsea.png");
    check_truncations(path, "chelsea.png", true);
  }

  /* A corrupt PNG: a copy with bytes flipped inside the image data, and one
   * with a flipped IHDR byte (both break a CRC). */
  test_path_join(path, sizeof path, fixtures_dir, "synthetic/rgb16.png");
  size_t n = 0;
  unsigned char *d = test_read_file(path, &n);
  CHECK(d != NULL && n > 200);
  if (d && n > 200) {
    test_path_join(tmp, sizeof tmp, temp_dir, "corrupt.png");
    for (size_t i = 120; i < 130; i++)
      d[i] ^= 0x5a;
    write_all(tmp, d, n);
    CHECK_FAILS(vz_image_load(tmp, &img), VZ_ERR_FORMAT);
    CHECK(message_has("corrupt.png") && message_has("corrupt PNG data"));
    printf("corrupt PNG: %s\n", vz_last_error());
    for (size_t i = 120; i < 130; i++)
      d[i] ^= 0x5a;
    d[8 + 8 + 3] ^= 0x01; /* width */
    write_all(tmp, d, n);
    CHECK_FAILS(vz_image_load(tmp, &img), VZ_ERR_FORMAT);
    CHECK(message_has("CRC"));
    remove(tmp);
  }
  free(d);

  /* A corrupt JPEG header: 12-bit precision, then a zero width. */
  test_path_join(path, sizeof path, fixtures_dir, "synthetic/jpeg_444.jpg");
  d = test_read_file(path, &n);
  size_t sof = d ? find_sof(d, n) : 0;
  CHECK(sof != 0);
  if (sof) {
    d[sof + 4] = 12;
    CHECK_FAILS(vz_image_decode(d, n, &img), VZ_ERR_FORMAT);
    CHECK(message_has("corrupt JPEG data"));
    d[sof + 4] = 8;
    d[sof + 7] = d[sof + 8] = 0; /* width 0 */
    CHECK_FAILS(vz_image_decode(d, n, &img), VZ_ERR_FORMAT);
    /* A huge declared size: 65000 x 65000 is 4.2e9 pixels. */
    d[sof + 5] = d[sof + 7] = 0xfd;
    d[sof + 6] = d[sof + 8] = 0xe8;
    CHECK_FAILS(vz_image_decode(d, n, &img), VZ_ERR_FORMAT);
    CHECK(message_has("exceeds the limit"));
  }
  free(d);

  /* A PNG header claiming 100000 x 100000. */
  unsigned char big[128];
  size_t big_n = huge_png(big, 100000, 100000);
  test_path_join(tmp, sizeof tmp, temp_dir, "huge.png");
  write_all(tmp, big, big_n);
  CHECK_FAILS(vz_image_load(tmp, &img), VZ_ERR_FORMAT);
  CHECK(message_has("huge.png") && message_has("exceeds the limit"));
  printf("huge PNG: %s\n", vz_last_error());
  remove(tmp);
  /* The same header with a plausible size decodes as far as the data goes. */
  big_n = huge_png(big, 3, 1);
  vz_clear_error();
  CHECK_OK(vz_image_decode(big, big_n, &img));
  CHECK(img && img->width == 3 && img->height == 1 && img->pixels[0] == 0);
  vz_image_free(img);
  img = NULL;

  /* An empty file, a text file, a GIF header, a lone PNG signature. */
  test_path_join(tmp, sizeof tmp, temp_dir, "empty.jpg");
  write_all(tmp, "", 0);
  CHECK_FAILS(vz_image_load(tmp, &img), VZ_ERR_FORMAT);
  CHECK(message_has("empty file") && message_has("empty.jpg"));
  remove(tmp);
  test_path_join(tmp, sizeof tmp, temp_dir, "notes.png");
  const char *text = "these are not the pixels you are looking for\n";
  write_all(tmp, text, strlen(text));
  CHECK_FAILS(vz_image_load(tmp, &img), VZ_ERR_FORMAT);
  CHECK(message_has("not a JPEG or PNG"));
  remove(tmp);
  CHECK_FAILS(vz_image_decode("GIF89a\x01\x00\x01\x00", 10, &img), VZ_ERR_UNSUPPORTED);
  CHECK_FAILS(vz_image_decode("\x89PNG\r\n\x1a\n", 8, &img), VZ_ERR_FORMAT);
  CHECK_FAILS(vz_image_decode("\xff\xd8\xff", 3, &img), VZ_ERR_FORMAT);
  test_path_join(tmp, sizeof tmp, temp_dir, "no-such-image.jpg");
  CHECK_FAILS(vz_image_load(tmp, &img), VZ_ERR_NOT_FOUND);
  CHECK(img == NULL);

  /* Bad arguments. */
  CHECK_FAILS(vz_image_load(NULL, &img), VZ_ERR_INVALID_ARGUMENT);
  CHECK_FAILS(vz_image_decode(NULL, 5, &img), VZ_ERR_INVALID_ARGUMENT);
  vz_image *small = NULL;
  CHECK_OK(vz_image_new(4, 3, &small));
  if (small) {
    memset(small->pixels, 7, 4 * 3 * 3);
    CHECK_FAILS(vz_image_resize_bicubic(small, 0, 5, &img), VZ_ERR_INVALID_ARGUMENT);
    CHECK_FAILS(vz_image_resize_bicubic(small, 100000, 100000, &img), VZ_ERR_INVALID_ARGUMENT);
    const float zero_std[3] = {1, 1, 0};
    vz_tensor *t = NULL;
    CHECK_FAILS(vz_image_to_tensor(small, 8, VZ_CLIP_MEAN, zero_std, be, &t),
                VZ_ERR_INVALID_ARGUMENT);
    CHECK_FAILS(vz_image_to_tensor(small, 0, VZ_CLIP_MEAN, VZ_CLIP_STD, be, &t),
                VZ_ERR_INVALID_ARGUMENT);
    CHECK_FAILS(vz_image_batch_to_tensor(NULL, 2, 8, NULL, NULL, be, &t), VZ_ERR_INVALID_ARGUMENT);
    CHECK(t == NULL);
  }
  vz_image_free(small);
  CHECK_FAILS(vz_image_new(0, 1, &img), VZ_ERR_INVALID_ARGUMENT);
}

/* ---- processor details ---- */

static void run_processor(vz_backend *be) {
  char path[8192];
  /* A constant image stays constant through the resize, at every size. */
  vz_image *flat = NULL, *r = NULL;
  CHECK_OK(vz_image_new(37, 23, &flat));
  if (!flat)
    return;
  for (int i = 0; i < 37 * 23; i++) {
    flat->pixels[3 * i] = 12;
    flat->pixels[3 * i + 1] = 200;
    flat->pixels[3 * i + 2] = 255;
  }
  int sizes[][2] = {{1, 1}, {5, 80}, {224, 224}, {37, 2}, {36, 23}};
  for (int s = 0; s < 5; s++) {
    CHECK_OK(vz_image_resize_bicubic(flat, sizes[s][0], sizes[s][1], &r));
    bool same = r != NULL;
    for (int i = 0; r && i < r->width * r->height; i++)
      same = same && r->pixels[3 * i] == 12 && r->pixels[3 * i + 1] == 200 &&
             r->pixels[3 * i + 2] == 255;
    CHECK(same);
    vz_image_free(r);
    r = NULL;
  }

  /* The normalization of a flat image is ((v / 255) - mean) / std in f32. */
  vz_tensor *t = NULL;
  CHECK_OK(vz_image_to_tensor(flat, 5, VZ_CLIP_MEAN, VZ_CLIP_STD, be, &t));
  if (t) {
    float *v = test_read_f32(t);
    float want0 = (12.0f / 255.0f - VZ_CLIP_MEAN[0]) / VZ_CLIP_STD[0];
    float want2 = (255.0f / 255.0f - VZ_CLIP_MEAN[2]) / VZ_CLIP_STD[2];
    CHECK(v[0] == want0 && v[24] == want0 && v[50] == want2 && v[74] == want2);
    free(v);
  }
  vz_tensor_free(t);
  t = NULL;

  /* Decoding from memory equals decoding the file; a batch stacks the
   * single-image tensors. */
  test_path_join(path, sizeof path, fixtures_dir, "synthetic/jpeg_cmyk.jpg");
  size_t n = 0;
  unsigned char *bytes = test_read_file(path, &n);
  vz_image *a = NULL, *b = NULL;
  CHECK(bytes != NULL);
  if (bytes)
    CHECK_OK(vz_image_decode(bytes, n, &a));
  CHECK_OK(vz_image_load(path, &b));
  CHECK(a && b && a->width == b->width && a->height == b->height &&
        memcmp(a->pixels, b->pixels, (size_t)a->width * a->height * 3) == 0);
  free(bytes);
  if (a && b) {
    const vz_image *batch[3] = {a, flat, b};
    vz_tensor *tb = NULL, *t1 = NULL;
    CHECK_OK(vz_image_batch_to_tensor(batch, 3, 16, NULL, NULL, be, &tb));
    CHECK_OK(vz_image_to_tensor(flat, 16, VZ_CLIP_MEAN, VZ_CLIP_STD, be, &t1));
    if (tb && t1) {
      CHECK(tb->ndim == 4 && tb->shape[0] == 3 && tb->shape[1] == 3 && tb->shape[2] == 16);
      float *vb = test_read_f32(tb), *v1 = test_read_f32(t1);
      CHECK(memcmp(vb + 3 * 16 * 16, v1, 3 * 16 * 16 * sizeof(float)) == 0);
      free(vb);
      free(v1);
    }
    vz_tensor_free(tb);
    vz_tensor_free(t1);
  }
  vz_image_free(a);
  vz_image_free(b);
  vz_image_free(flat);
}

int main(void) {
  const char *fx = test_fixtures_dir();
  if (!fx) {
    fprintf(stderr, "VLZOO_FIXTURES_DIR is not set (run through ctest)\n");
    return 1;
  }
  test_path_join(fixtures_dir, sizeof fixtures_dir, fx, "images");
  char candidate[4096];
  test_path_join(candidate, sizeof candidate, test_assets_dir(), "images");
  char probe[8192];
  test_path_join(probe, sizeof probe, candidate, "merlion.png");
  if (access(probe, R_OK) == 0)
    snprintf(assets_dir, sizeof assets_dir, "%s", candidate);
  const char *tmpdir = getenv("TMPDIR");
  snprintf(temp_dir, sizeof temp_dir, "%s/vlzoo-test-image-XXXXXX",
           tmpdir && tmpdir[0] ? tmpdir : "/tmp");
  if (!mkdtemp(temp_dir)) {
    perror("mkdtemp");
    return 1;
  }

  vz_backend *be = test_backend();
  run_references(be);
  run_failures(be);
  run_processor(be);
  vz_backend_free(be);
  rmdir(temp_dir);

  printf("%d images decoded bit-exact-checked, %d resizes checked, %d reference lines skipped\n",
         n_decoded, n_resized, n_skipped);
  if (!assets_dir[0] && test_failures == 0) {
    printf("skipped: no asset images at %s (set VLZOO_ASSETS_DIR); the synthetic fixtures "
           "passed\n",
           candidate);
    return TEST_SKIP;
  }
  return test_finish("test_image");
}

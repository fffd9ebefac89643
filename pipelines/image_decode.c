/* JPEG (libjpeg-turbo) and PNG (libpng) decoding to 8-bit RGB, reproducing
 * Pillow's Image.open(path).convert("RGB") byte for byte.
 *
 * What Pillow does, and so what this file does:
 * - JPEG (JpegImagePlugin.py, libImaging/JpegDecode.c): the mode follows the
 *   number of components (1 L, 3 RGB, 4 CMYK); libjpeg's own colour-space
 *   guess is kept; libjpeg's defaults stay (JDCT_ISLOW, fancy upsampling):
 *   Pillow changes them only in draft mode, which Image.open does not use.
 *   CMYK is read as "CMYK;I" (Adobe inverted: every byte 255 - v) and
 *   convert("RGB") applies cmyk2rgb (Convert.c): nk = 255 - k,
 *   channel = nk - MULDIV255(c, nk). Grayscale is replicated.
 * - PNG (PngImagePlugin.py _MODES, Unpack.c, Convert.c): 1-bit gray is 0/255,
 *   2- and 4-bit gray are scaled by 0x55 and 0x11; 16-bit gray is mode I;16
 *   and convert("RGB") clamps it (values above 255 become 255, I16_RGB);
 *   16-bit RGB, RGBA and gray+alpha keep the high byte of each sample;
 *   palette indices past the end of PLTE give black; alpha and tRNS are
 *   dropped, never composited (rgba2rgb, la2rgb, p2rgb).
 * - A file that ends early is an error, as with Pillow's default
 *   LOAD_TRUNCATED_IMAGES = False (libjpeg alone would pad with gray). */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>
#include <png.h>

#include "ops/internal.h"
#include "vlzoo/image.h"

/* More scans than any real progressive JPEG has; a crafted file with
 * thousands of tiny scans would otherwise take minutes to decode. */
#define VZ_JPEG_MAX_SCANS 1000

vz_status vz_image_new(int width, int height, vz_image **out) {
  if (!out)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "image_new: NULL output");
  *out = NULL;
  if (width <= 0 || height <= 0)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "image_new: size %dx%d is not positive", width, height);
  if ((long long)width * height > VZ_IMAGE_MAX_PIXELS)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT,
                   "image_new: %dx%d is %lld pixels, more than the limit of %lld", width, height,
                   (long long)width * height, VZ_IMAGE_MAX_PIXELS);
  vz_image *img = calloc(1, sizeof *img);
  if (!img)
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "image_new: out of memory");
  size_t bytes = (size_t)width * (size_t)height * 3;
  img->pixels = malloc(bytes);
  if (!img->pixels) {
    free(img);
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "cannot allocate %zu bytes for a %dx%d image", bytes,
                   width, height);
  }
  img->width = width;
  img->height = height;
  *out = img;
  return VZ_OK;
}

void vz_image_free(vz_image *img) {
  if (!img)
    return;
  free(img->pixels);
  free(img);
}

/* The size check every decoder makes before allocating. */
static vz_status check_size(const char *name, unsigned long long width, unsigned long long height) {
  if (width == 0 || height == 0)
    return vz_fail(VZ_ERR_FORMAT, "%s: the image has no pixels (%llux%llu)", name, width, height);
  if (width > INT_MAX || height > INT_MAX ||
      width * height > (unsigned long long)VZ_IMAGE_MAX_PIXELS)
    return vz_fail(VZ_ERR_FORMAT,
                   "%s: image size %llux%llu exceeds the limit of %lld pixels "
                   "(a decompression bomb?)",
                   name, width, height, VZ_IMAGE_MAX_PIXELS);
  return VZ_OK;
}

/* ---- JPEG ---- */

/* Everything the decoder touches after setjmp lives here, on the heap, so
 * that nothing needs to be volatile across the longjmp. */
typedef struct jpeg_job {
  struct jpeg_decompress_struct cinfo;
  struct jpeg_error_mgr err;
  struct jpeg_progress_mgr progress;
  jmp_buf jump;
  int rows_done; /* every scanline has been read: running out now is harmless */
  char message[JMSG_LENGTH_MAX + 64];
  vz_image *img;
  uint8_t *row; /* one scanline when the output is not RGB */
} jpeg_job;

static void jpeg_on_error(j_common_ptr cinfo) {
  jpeg_job *job = (jpeg_job *)cinfo->client_data;
  char text[JMSG_LENGTH_MAX];
  cinfo->err->format_message(cinfo, text);
  snprintf(job->message, sizeof job->message, "corrupt JPEG data: %s", text);
  longjmp(job->jump, 1);
}

/* Warnings (level -1) are ignored as Pillow ignores them, except the one
 * libjpeg gives when the data runs out: it would go on with gray padding,
 * where Pillow raises "image file is truncated". */
static void jpeg_on_message(j_common_ptr cinfo, int level) {
  jpeg_job *job = (jpeg_job *)cinfo->client_data;
  if (level < 0) {
    if (cinfo->err->msg_code == JWRN_JPEG_EOF && !job->rows_done) {
      snprintf(job->message, sizeof job->message,
               "truncated JPEG data (the file ends before the image does)");
      longjmp(job->jump, 1);
    }
    cinfo->err->num_warnings++;
  }
}

static void jpeg_quiet(j_common_ptr cinfo) { (void)cinfo; }

static void jpeg_on_progress(j_common_ptr cinfo) {
  jpeg_job *job = (jpeg_job *)cinfo->client_data;
  if (job->cinfo.input_scan_number > VZ_JPEG_MAX_SCANS) {
    snprintf(job->message, sizeof job->message,
             "corrupt JPEG data: more than %d scans (a decoding bomb?)", VZ_JPEG_MAX_SCANS);
    longjmp(job->jump, 1);
  }
}

/* Pillow's cmyk2rgb on the inverted ("CMYK;I") samples libjpeg returns. */
static void cmyk_inverted_to_rgb(const uint8_t *in, uint8_t *out, int n) {
  for (int i = 0; i < n; i++, in += 4, out += 3) {
    int nk = in[3]; /* 255 - (255 - k) */
    for (int c = 0; c < 3; c++) {
      int tmp = (255 - in[c]) * nk + 128;
      int v = nk - (((tmp >> 8) + tmp) >> 8);
      out[c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
  }
}

static vz_status decode_jpeg(const uint8_t *data, size_t n, const char *name, vz_image **out) {
  jpeg_job *job = calloc(1, sizeof *job);
  if (!job)
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "%s: out of memory", name);
  job->cinfo.err = jpeg_std_error(&job->err);
  job->err.error_exit = jpeg_on_error;
  job->err.emit_message = jpeg_on_message;
  job->err.output_message = jpeg_quiet;
  job->progress.progress_monitor = jpeg_on_progress;

  if (setjmp(job->jump)) {
    jpeg_destroy_decompress(&job->cinfo);
    vz_image_free(job->img);
    free(job->row);
    vz_status st = vz_fail(VZ_ERR_FORMAT, "%s: %s", name, job->message);
    free(job);
    return st;
  }
  jpeg_create_decompress(&job->cinfo);
  job->cinfo.client_data = job;
  job->cinfo.progress = &job->progress;
  jpeg_mem_src(&job->cinfo, data, (unsigned long)n);
  jpeg_read_header(&job->cinfo, TRUE);

  struct jpeg_decompress_struct *ci = &job->cinfo;
  vz_status st = check_size(name, ci->image_width, ci->image_height);
  if (st == VZ_OK) {
    switch (ci->num_components) {
    case 1: ci->out_color_space = JCS_GRAYSCALE; break;
    case 3: ci->out_color_space = JCS_RGB; break;
    case 4: ci->out_color_space = JCS_CMYK; break;
    default:
      st = vz_fail(VZ_ERR_FORMAT, "%s: cannot handle a JPEG with %d components", name,
                   ci->num_components);
    }
  }
  if (st != VZ_OK) {
    jpeg_destroy_decompress(ci);
    free(job);
    return st;
  }
  /* libjpeg's defaults, as Pillow leaves them outside draft mode. */
  ci->dct_method = JDCT_ISLOW;
  ci->do_fancy_upsampling = TRUE;
  ci->do_block_smoothing = TRUE;
  ci->scale_num = ci->scale_denom = 1;

  jpeg_start_decompress(ci);
  int w = (int)ci->output_width, h = (int)ci->output_height, comps = ci->output_components;
  st = vz_image_new(w, h, &job->img);
  if (st == VZ_OK && comps != 3) {
    job->row = malloc((size_t)w * (size_t)comps);
    if (!job->row)
      st = vz_fail(VZ_ERR_OUT_OF_MEMORY, "%s: out of memory", name);
  }
  if (st != VZ_OK) {
    jpeg_destroy_decompress(ci);
    vz_image_free(job->img);
    free(job);
    return vz_fail_context(st, "%s: ", name);
  }
  while (ci->output_scanline < ci->output_height) {
    int y = (int)ci->output_scanline;
    uint8_t *dst = job->img->pixels + (size_t)y * (size_t)w * 3;
    JSAMPROW row = comps == 3 ? dst : job->row;
    if (jpeg_read_scanlines(ci, &row, 1) != 1) {
      snprintf(job->message, sizeof job->message, "truncated JPEG data");
      longjmp(job->jump, 1);
    }
    if (comps == 1) {
      for (int x = 0; x < w; x++)
        dst[3 * x] = dst[3 * x + 1] = dst[3 * x + 2] = job->row[x];
    } else if (comps == 4) {
      cmyk_inverted_to_rgb(job->row, dst, w);
    }
  }
  job->rows_done = 1;
  jpeg_finish_decompress(ci);
  jpeg_destroy_decompress(ci);
  *out = job->img;
  free(job->row);
  free(job);
  return VZ_OK;
}

/* ---- PNG ---- */

typedef struct png_job {
  const uint8_t *data;
  size_t size, pos;
  char message[256];
  vz_image *img;
  uint8_t *raw;   /* decoded rows: one row, or the whole image when interlaced */
  uint8_t **rows; /* row pointers into raw, interlaced images only */
} png_job;

static void png_on_error(png_structp png, png_const_charp msg) {
  png_job *job = png_get_error_ptr(png);
  snprintf(job->message, sizeof job->message, "%s", msg);
  png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg) {
  (void)png;
  (void)msg;
}

static void png_read_bytes(png_structp png, png_bytep dst, size_t n) {
  png_job *job = png_get_io_ptr(png);
  if (n > job->size - job->pos) {
    snprintf(job->message, sizeof job->message,
             "truncated PNG data (the file ends before the image does)");
    png_longjmp(png, 1);
  }
  memcpy(dst, job->data + job->pos, n);
  job->pos += n;
}

/* One decoded row (samples unpacked to a byte each below 8 bits, 16-bit
 * samples big-endian) to RGB, as Pillow's unpackers + convert("RGB") do. */
static void png_row_to_rgb(const uint8_t *in, uint8_t *out, int w, int color_type, int depth,
                           const png_color *palette, int palette_size) {
  int x;
  switch (color_type) {
  case PNG_COLOR_TYPE_GRAY:
    for (x = 0; x < w; x++) {
      int v;
      if (depth == 16)
        v = in[2 * x] ? 255 : in[2 * x + 1]; /* I;16 -> RGB clamps */
      else if (depth == 1)
        v = in[x] ? 255 : 0;
      else if (depth == 2)
        v = in[x] * 0x55;
      else if (depth == 4)
        v = in[x] * 0x11;
      else
        v = in[x];
      out[3 * x] = out[3 * x + 1] = out[3 * x + 2] = (uint8_t)v;
    }
    break;
  case PNG_COLOR_TYPE_GRAY_ALPHA: {
    int step = depth == 16 ? 4 : 2;
    for (x = 0; x < w; x++)
      out[3 * x] = out[3 * x + 1] = out[3 * x + 2] = in[step * x];
    break;
  }
  case PNG_COLOR_TYPE_RGB:
  case PNG_COLOR_TYPE_RGB_ALPHA: {
    int channels = color_type == PNG_COLOR_TYPE_RGB ? 3 : 4;
    int bytes = depth == 16 ? 2 : 1;
    for (x = 0; x < w; x++)
      for (int c = 0; c < 3; c++)
        out[3 * x + c] = in[(x * channels + c) * bytes];
    break;
  }
  case PNG_COLOR_TYPE_PALETTE:
    for (x = 0; x < w; x++) {
      int i = in[x];
      if (i < palette_size) {
        out[3 * x] = palette[i].red;
        out[3 * x + 1] = palette[i].green;
        out[3 * x + 2] = palette[i].blue;
      } else {
        out[3 * x] = out[3 * x + 1] = out[3 * x + 2] = 0;
      }
    }
    break;
  }
}

static void png_job_free(png_job *job) {
  vz_image_free(job->img);
  free(job->raw);
  free(job->rows);
  free(job);
}

static vz_status decode_png(const uint8_t *data, size_t n, const char *name, vz_image **out) {
  png_job *job = calloc(1, sizeof *job);
  if (!job)
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "%s: out of memory", name);
  job->data = data;
  job->size = n;
  png_structp png =
      png_create_read_struct(PNG_LIBPNG_VER_STRING, job, png_on_error, png_on_warning);
  png_infop info = png ? png_create_info_struct(png) : NULL;
  if (!info) {
    png_destroy_read_struct(png ? &png : NULL, NULL, NULL);
    free(job);
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "%s: cannot create a PNG reader", name);
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, NULL);
    vz_status st =
        vz_fail(VZ_ERR_FORMAT, "%s: %s%s", name,
                strncmp(job->message, "truncated", 9) ? "corrupt PNG data: " : "", job->message);
    png_job_free(job);
    return st;
  }
  png_set_read_fn(png, job, png_read_bytes);
  /* Pillow refuses a bad CRC in any chunk before the image data. */
  png_set_crc_action(png, PNG_CRC_ERROR_QUIT, PNG_CRC_ERROR_QUIT);
  /* The pixel limit below replaces libpng's 1,000,000 per side. */
  png_set_user_limits(png, PNG_UINT_31_MAX, PNG_UINT_31_MAX);
  png_read_info(png, info);

  png_uint_32 w32, h32;
  int depth, color_type, interlace;
  png_get_IHDR(png, info, &w32, &h32, &depth, &color_type, &interlace, NULL, NULL);
  vz_status st = check_size(name, w32, h32);
  png_colorp palette = NULL;
  int palette_size = 0;
  if (st == VZ_OK && color_type == PNG_COLOR_TYPE_PALETTE &&
      !png_get_PLTE(png, info, &palette, &palette_size))
    st = vz_fail(VZ_ERR_FORMAT, "%s: corrupt PNG data: palette image without a PLTE chunk", name);
  if (st != VZ_OK) {
    png_destroy_read_struct(&png, &info, NULL);
    free(job);
    return st;
  }
  int w = (int)w32, h = (int)h32;
  if (depth < 8)
    png_set_packing(png); /* one byte per sample, values unscaled */
  int passes = png_set_interlace_handling(png);
  png_read_update_info(png, info);
  size_t rowbytes = png_get_rowbytes(png, info);

  st = vz_image_new(w, h, &job->img);
  if (st == VZ_OK) {
    size_t rows = passes > 1 ? (size_t)h : 1;
    if (rowbytes > SIZE_MAX / rows) {
      st = vz_fail(VZ_ERR_FORMAT, "%s: PNG rows too large", name);
    } else {
      job->raw = malloc(rowbytes * rows);
      job->rows = passes > 1 ? malloc((size_t)h * sizeof *job->rows) : NULL;
      if (!job->raw || (passes > 1 && !job->rows))
        st = vz_fail(VZ_ERR_OUT_OF_MEMORY, "%s: cannot allocate %zu bytes for PNG rows", name,
                     rowbytes * rows);
    }
  }
  if (st != VZ_OK) {
    png_destroy_read_struct(&png, &info, NULL);
    png_job_free(job);
    return st;
  }
  if (passes > 1) {
    for (int y = 0; y < h; y++)
      job->rows[y] = job->raw + (size_t)y * rowbytes;
    png_read_image(png, job->rows);
    for (int y = 0; y < h; y++)
      png_row_to_rgb(job->rows[y], job->img->pixels + (size_t)y * (size_t)w * 3, w, color_type,
                     depth, palette, palette_size);
  } else {
    for (int y = 0; y < h; y++) {
      png_read_row(png, job->raw, NULL);
      png_row_to_rgb(job->raw, job->img->pixels + (size_t)y * (size_t)w * 3, w, color_type, depth,
                     palette, palette_size);
    }
  }
  /* Like Pillow, stop once the pixels are in: what follows the image data
   * (text chunks, IEND) is not read. */
  png_destroy_read_struct(&png, &info, NULL);
  *out = job->img;
  job->img = NULL;
  png_job_free(job);
  return VZ_OK;
}

/* ---- entry points ---- */

static vz_status decode_named(const uint8_t *data, size_t n, const char *name, vz_image **out) {
  static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (n == 0)
    return vz_fail(VZ_ERR_FORMAT, "%s: empty file", name);
  if (n >= 3 && data[0] == 0xff && data[1] == 0xd8 && data[2] == 0xff)
    return decode_jpeg(data, n, name, out);
  if (n >= 8 && memcmp(data, png_sig, 8) == 0)
    return decode_png(data, n, name, out);
  if (n < 8 && memcmp(data, png_sig, n) == 0)
    return vz_fail(VZ_ERR_FORMAT, "%s: truncated PNG data (%zu bytes)", name, n);
  const char *other = NULL;
  if (n >= 6 && (memcmp(data, "GIF87a", 6) == 0 || memcmp(data, "GIF89a", 6) == 0))
    other = "GIF";
  else if (n >= 2 && data[0] == 'B' && data[1] == 'M')
    other = "BMP";
  else if (n >= 12 && memcmp(data, "RIFF", 4) == 0 && memcmp(data + 8, "WEBP", 4) == 0)
    other = "WebP";
  else if (n >= 4 && (memcmp(data, "II*\0", 4) == 0 || memcmp(data, "MM\0*", 4) == 0))
    other = "TIFF";
  if (other)
    return vz_fail(VZ_ERR_UNSUPPORTED, "%s: %s images are not supported (only JPEG and PNG)", name,
                   other);
  return vz_fail(VZ_ERR_FORMAT, "%s: not a JPEG or PNG image (first bytes %02x %02x %02x %02x)",
                 name, data[0], n > 1 ? data[1] : 0, n > 2 ? data[2] : 0, n > 3 ? data[3] : 0);
}

vz_status vz_image_decode(const void *bytes, size_t n, vz_image **out) {
  if (!out)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "image_decode: NULL output");
  *out = NULL;
  if (!bytes && n)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "image_decode: NULL data");
  return decode_named(bytes, n, "image data", out);
}

vz_status vz_image_load(const char *path, vz_image **out) {
  if (!out)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "image_load: NULL output");
  *out = NULL;
  if (!path)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "image_load: NULL path");
  size_t name_len = strlen(path) + 3;
  char *name = malloc(name_len);
  if (!name)
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "image_load: out of memory");
  snprintf(name, name_len, "'%s'", path);

  vz_status st = VZ_OK;
  uint8_t *data = NULL;
  size_t size = 0;
  FILE *f = fopen(path, "rb");
  if (!f) {
    st = vz_fail(errno == ENOENT ? VZ_ERR_NOT_FOUND : VZ_ERR_IO, "cannot open %s: %s", name,
                 strerror(errno));
    goto done;
  }
  /* Read to the end in growing blocks: works for pipes too. */
  size_t cap = 0;
  for (;;) {
    if (size == cap) {
      size_t grow = cap ? cap : 1 << 16;
      if (cap > SIZE_MAX / 2) {
        st = vz_fail(VZ_ERR_OUT_OF_MEMORY, "%s: file too large", name);
        goto done;
      }
      uint8_t *bigger = realloc(data, cap + grow);
      if (!bigger) {
        st = vz_fail(VZ_ERR_OUT_OF_MEMORY, "%s: cannot allocate %zu bytes", name, cap + grow);
        goto done;
      }
      data = bigger;
      cap += grow;
    }
    size_t got = fread(data + size, 1, cap - size, f);
    size += got;
    if (got == 0)
      break;
  }
  if (ferror(f)) {
    st = vz_fail(VZ_ERR_IO, "cannot read %s: %s", name, strerror(errno));
    goto done;
  }
  st = decode_named(data, size, name, out);
done:
  if (f)
    fclose(f);
  free(data);
  free(name);
  return st;
}

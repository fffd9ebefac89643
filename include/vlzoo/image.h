/* Images: decoding JPEG and PNG files to 8-bit RGB exactly as Pillow's
 * Image.open(path).convert("RGB") does, Pillow's bicubic resize, and the
 * BLIP-2 image processor (resize to S x S, /255, CLIP mean/std) that turns an
 * image into the f32 tensor a vision encoder takes. */
#ifndef VLZOO_IMAGE_H
#define VLZOO_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "vlzoo/status.h"
#include "vlzoo/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* An 8-bit RGB image: `height` rows of `width` pixels, each three bytes
 * R, G, B, rows packed without padding (row y starts at pixels + y*width*3).
 * The image owns its pixels; free it with vz_image_free. */
typedef struct vz_image {
  int width;
  int height;
  uint8_t *pixels;
} vz_image;

/* Images larger than this many pixels are refused before any allocation,
 * as Pillow refuses them (its DecompressionBombError: 2 * MAX_IMAGE_PIXELS). */
#define VZ_IMAGE_MAX_PIXELS 178956970LL

/* A new image with undefined pixels. */
vz_status vz_image_new(int width, int height, vz_image **out);

/* Decodes a JPEG or PNG file (the format is taken from the leading bytes,
 * not the name). Grayscale, palette, CMYK (Adobe inverted, as Pillow reads
 * it), gray+alpha, RGBA, 1/2/4/16-bit, interlaced and progressive files all
 * give RGB; alpha is dropped, not composited, as Pillow's convert("RGB")
 * does. A truncated or corrupt file is VZ_ERR_FORMAT with a message that
 * names the file and the problem; an unreadable one VZ_ERR_IO. */
vz_status vz_image_load(const char *path, vz_image **out);

/* As vz_image_load, from `n` bytes in memory. */
vz_status vz_image_decode(const void *bytes, size_t n, vz_image **out);

/* Releases the image and its pixels. NULL is ignored. */
void vz_image_free(vz_image *img);

/* Pillow's Image.resize((out_w, out_h), Image.BICUBIC) on an RGB image, bit
 * for bit: separable (horizontal pass, then vertical), Keys kernel with
 * a = -0.5 widened by the scale when reducing (antialiasing), per-pixel
 * normalized weights in 22-bit fixed point, rounding and clamping to 8 bits
 * after each pass; a pass whose dimension is unchanged is skipped. */
vz_status vz_image_resize_bicubic(const vz_image *in, int out_w, int out_h, vz_image **out);

/* The normalization constants of OpenAI CLIP that BLIP-2 uses. */
extern const float VZ_CLIP_MEAN[3]; /* 0.48145466, 0.4578275, 0.40821073 */
extern const float VZ_CLIP_STD[3];  /* 0.26862954, 0.26130258, 0.27577711 */

/* BLIP-2's eval image processor (LAVIS blip_image_eval, Hugging Face
 * BlipImageProcessor): bicubic resize to size x size (aspect not kept), then
 * per channel ((float)v / 255 - mean[c]) / std[c] in f32. *out is a new
 * contiguous f32 tensor [1, 3, size, size] on `be`. */
vz_status vz_image_to_tensor(const vz_image *img, int size, const float mean[3], const float std[3],
                             vz_backend *be, vz_tensor **out);

/* The same for n images stacked into [n, 3, size, size]. */
vz_status vz_image_batch_to_tensor(const vz_image *const *imgs, int n, int size,
                                   const float mean[3], const float std[3], vz_backend *be,
                                   vz_tensor **out);

#ifdef __cplusplus
}
#endif
#endif

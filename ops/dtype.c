/* Element type facts and scalar 16-bit float conversions. */
#include <string.h>

#include "ops/internal.h"
#include "vlzoo/dtype.h"

static const struct {
  const char *name;
  size_t size;
} dtype_info[VZ_DTYPE_COUNT] = {
    [VZ_F32] = {"f32", 4}, [VZ_F16] = {"f16", 2},   [VZ_BF16] = {"bf16", 2}, [VZ_F64] = {"f64", 8},
    [VZ_I64] = {"i64", 8}, [VZ_I32] = {"i32", 4},   [VZ_I16] = {"i16", 2},   [VZ_I8] = {"i8", 1},
    [VZ_U8] = {"u8", 1},   [VZ_BOOL] = {"bool", 1},
};

static bool dtype_valid(vz_dtype d) { return (unsigned)d < VZ_DTYPE_COUNT; }

size_t vz_dtype_size(vz_dtype d) { return dtype_valid(d) ? dtype_info[d].size : 0; }

const char *vz_dtype_name(vz_dtype d) { return dtype_valid(d) ? dtype_info[d].name : "?"; }

vz_status vz_dtype_from_name(const char *name, vz_dtype *out) {
  if (!name || !out)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "dtype name: NULL argument");
  for (int d = 0; d < VZ_DTYPE_COUNT; d++) {
    if (strcmp(name, dtype_info[d].name) == 0) {
      *out = (vz_dtype)d;
      return VZ_OK;
    }
  }
  return vz_fail(VZ_ERR_DTYPE,
                 "unknown dtype '%s' (expected one of f32 f16 bf16 f64 i64 i32 i16 i8 u8 bool)",
                 name);
}

bool vz_dtype_is_float(vz_dtype d) {
  return d == VZ_F32 || d == VZ_F16 || d == VZ_BF16 || d == VZ_F64;
}

bool vz_dtype_is_integer(vz_dtype d) {
  return d == VZ_I64 || d == VZ_I32 || d == VZ_I16 || d == VZ_I8 || d == VZ_U8;
}

static uint32_t float_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}

static float bits_float(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}

float vz_bf16_to_f32(uint16_t b) { return bits_float((uint32_t)b << 16); }

uint16_t vz_f32_to_bf16(float f) {
  uint32_t u = float_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) /* NaN stays a quiet NaN */
    return (uint16_t)((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return (uint16_t)(u >> 16);
}

float vz_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  uint32_t exponent = (h >> 10) & 0x1fu;
  uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0x1f) /* infinity or NaN */
    return bits_float(sign | 0x7f800000u | (mantissa << 13));
  if (exponent == 0) { /* zero or subnormal: mantissa * 2^-24 */
    float value = (float)mantissa * 0x1p-24f;
    return sign ? -value : value;
  }
  return bits_float(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

uint16_t vz_f32_to_f16(float f) {
  uint32_t u = float_bits(f);
  uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
  uint32_t magnitude = u & 0x7fffffffu;
  if (magnitude > 0x7f800000u) /* NaN */
    return sign | 0x7e00u;
  if (magnitude >= 0x477ff000u) /* rounds to infinity (>= 65520) */
    return sign | 0x7c00u;
  if (magnitude < 0x38800000u) { /* below 2^-14: subnormal or zero */
    /* Adding 0.5 shifts the value so that the FPU's own round-to-nearest-even
     * lands the mantissa on the f16 subnormal grid (2^-24 steps). */
    float shifted = bits_float(magnitude) + 0.5f;
    return sign | (uint16_t)(float_bits(shifted) - float_bits(0.5f));
  }
  uint32_t rounded = magnitude + 0xfffu + ((magnitude >> 13) & 1u);
  return sign | (uint16_t)((rounded - (112u << 23)) >> 13);
}

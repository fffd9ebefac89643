/* Element types and the scalar conversions between them. */
#ifndef VLZOO_DTYPE_H
#define VLZOO_DTYPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vlzoo/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Values are stable: they appear in files vlzoo writes. Append only. */
typedef enum vz_dtype {
  VZ_F32 = 0,
  VZ_F16 = 1,
  VZ_BF16 = 2,
  VZ_F64 = 3,
  VZ_I64 = 4,
  VZ_I32 = 5,
  VZ_I16 = 6,
  VZ_I8 = 7,
  VZ_U8 = 8,
  VZ_BOOL = 9, /* one byte, 0 or 1 */
  VZ_DTYPE_COUNT
} vz_dtype;

/* Bytes per element; 0 for a value outside the enum. */
size_t vz_dtype_size(vz_dtype dtype);

/* Short name: f32 f16 bf16 f64 i64 i32 i16 i8 u8 bool; "?" when unknown. */
const char *vz_dtype_name(vz_dtype dtype);

/* Parses a short name as printed by vz_dtype_name. */
vz_status vz_dtype_from_name(const char *name, vz_dtype *out);

bool vz_dtype_is_float(vz_dtype dtype);
bool vz_dtype_is_integer(vz_dtype dtype); /* signed or unsigned, not bool */

/* IEEE binary16 and bfloat16, both rounded to nearest even on the way in. */
float vz_f16_to_f32(uint16_t h);
uint16_t vz_f32_to_f16(float f);
float vz_bf16_to_f32(uint16_t b);
uint16_t vz_f32_to_bf16(float f);

#ifdef __cplusplus
}
#endif
#endif

/* Shared by every kernel family (prepended to each family's source when its
 * program is built): OpenCL C 1.2, no extension required; f64 kernels only
 * when the host passes -DVZ_FP64 (cl_khr_fp64).
 *
 * Conventions: a tensor arrives as a pointer and an offset in elements;
 * sizes, strides and offsets are longs; global sizes are rounded up to the
 * work-group size, so every kernel guards its range. Contraction of a * b + c
 * into one rounding is off, so that results do not depend on the compiler:
 * kernels that want an FMA call fma(). */
#pragma OPENCL FP_CONTRACT OFF
#ifdef VZ_FP64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#endif

/* ---- The deferred error word (backends/opencl/opencl.h) ---- */

#define VZ_STATUS_CODE 0
#define VZ_STATUS_DETAIL 1
#define VZ_STATUS_POSITION 2
#define VZ_STATUS_VALUE 4
#define VZ_STATUS_LIMIT 6

#define VZ_FAIL_EMBEDDING_ID 1
#define VZ_FAIL_INDEX_SELECT_ID 2
#define VZ_FAIL_GATHER_INDEX 3
#define VZ_FAIL_DIVISION_BY_ZERO 4

/* Records a failure unless one is recorded already (the first to swap the
 * code in writes the details). */
void vz_report(__global int *status, int code, int detail, long position, long value, long limit) {
  if (atomic_cmpxchg(status + VZ_STATUS_CODE, 0, code) != 0)
    return;
  status[VZ_STATUS_DETAIL] = detail;
  status[VZ_STATUS_POSITION] = (int)position;
  status[VZ_STATUS_POSITION + 1] = (int)(position >> 32);
  status[VZ_STATUS_VALUE] = (int)value;
  status[VZ_STATUS_VALUE + 1] = (int)(value >> 32);
  status[VZ_STATUS_LIMIT] = (int)limit;
  status[VZ_STATUS_LIMIT + 1] = (int)(limit >> 32);
}

/* ---- 16-bit floats, bit for bit as ops/dtype.c converts them ---- */

float vz_f16_to_f32(ushort h) {
  uint sign = (uint)(h & 0x8000u) << 16;
  uint exponent = (h >> 10) & 0x1fu;
  uint mantissa = h & 0x3ffu;
  if (exponent == 0x1fu) /* infinity or NaN */
    return as_float(sign | 0x7f800000u | (mantissa << 13));
  if (exponent == 0) { /* zero or subnormal: mantissa * 2^-24 */
    float value = (float)mantissa * 0x1p-24f;
    return sign ? -value : value;
  }
  return as_float(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

ushort vz_f32_to_f16(float f) {
  uint u = as_uint(f);
  ushort sign = (ushort)((u >> 16) & 0x8000u);
  uint magnitude = u & 0x7fffffffu;
  if (magnitude > 0x7f800000u) /* NaN */
    return sign | 0x7e00u;
  if (magnitude >= 0x477ff000u) /* rounds to infinity */
    return sign | 0x7c00u;
  if (magnitude < 0x38800000u) { /* subnormal or zero: the FPU rounds onto the grid */
    float shifted = as_float(magnitude) + 0.5f;
    return sign | (ushort)(as_uint(shifted) - as_uint(0.5f));
  }
  uint rounded = magnitude + 0xfffu + ((magnitude >> 13) & 1u);
  return sign | (ushort)((rounded - (112u << 23)) >> 13);
}

float vz_bf16_to_f32(ushort b) { return as_float((uint)b << 16); }

ushort vz_f32_to_bf16(float f) {
  uint u = as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) /* NaN stays a quiet NaN */
    return (ushort)((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return (ushort)(u >> 16);
}

/* f32 rounded to bf16 precision, kept as f32 (matmul's bf16 rule). */
float vz_round_bf16(float f) { return vz_bf16_to_f32(vz_f32_to_bf16(f)); }

/* ---- Coordinates ---- */

/* Offset of row r of a layout (vz_cl_layout): r runs over dimensions 0..2
 * of `shape`, and `stride` gives one operand's steps. */
long vz_row_offset(long r, long4 shape, long4 stride) {
  long o = (r % shape.s2) * stride.s2;
  r /= shape.s2;
  o += (r % shape.s1) * stride.s1;
  r /= shape.s1;
  return o + r * stride.s0;
}

/* The element of a layout kernel's work-item (NDRange dimensions: the
 * layout's dimension 3, its dimension 2, then 0 and 1 together): declares
 * its coordinates c0, c1, c2, j and r, its row among the output's rows
 * (output element r * shape.s3 + j), and returns for work-items of the
 * padding. Dimension 1 is merged away in most layouts, so the division it
 * needs is rarely made; 64-bit divisions per element made element-wise
 * kernels ten times slower on PoCL. */
#define VZ_LAYOUT_ITEM(shape)                                                                      \
  long j = get_global_id(0), c2 = get_global_id(1), c01 = get_global_id(2);                        \
  if (j >= (shape).s3 || c2 >= (shape).s2 || c01 >= (shape).s0 * (shape).s1)                       \
    return;                                                                                        \
  long c1 = (shape).s1 == 1 ? 0 : c01 % (shape).s1;                                                \
  long c0 = (shape).s1 == 1 ? c01 : c01 / (shape).s1;                                              \
  long r = c01 * (shape).s2 + c2;                                                                  \
  (void)r;

/* One operand's element at a layout item's coordinates. */
#define VZ_AT(stride) (c0 * (stride).s0 + c1 * (stride).s1 + c2 * (stride).s2 + j * (stride).s3)

/* An i32 or i64 index (ids64 says which) at element i. */
long vz_read_id(__global const int *ids, int ids64, long i) {
  return ids64 ? ((__global const long *)ids)[i] : (long)ids[i];
}

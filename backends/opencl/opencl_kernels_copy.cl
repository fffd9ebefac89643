/* Copies and conversions from a source with any strides (zero and
 * negative included) into a contiguous output, over a vz_cl_layout
 * (VZ_LAYOUT_ITEM). */

#define COPY(BYTES, T)                                                                             \
  __kernel void copy_##BYTES(__global T *out, long out_off, __global const T *x, long x_off,       \
                             long4 shape, long4 sx) {                                              \
    VZ_LAYOUT_ITEM(shape)                                                                          \
    out[out_off + r * shape.s3 + j] = x[x_off + VZ_AT(sx)];                                        \
  }
COPY(1, uchar)
COPY(2, ushort)
COPY(4, uint)
COPY(8, ulong)

/* ---- cast: vz_dtype codes (include/vlzoo/dtype.h) ---- */

#define DT_F32 0
#define DT_F16 1
#define DT_BF16 2
#define DT_F64 3
#define DT_I64 4
#define DT_I32 5
#define DT_I16 6
#define DT_I8 7
#define DT_U8 8
#define DT_BOOL 9

/* As the CPU's cast (backends/cpu/cpu_index.c): every source element is
 * read exactly, floats into a double (a float without fp64) and integers
 * into a long, and written with one rounding; to f16 / bf16 through an f32
 * rounded to odd when the value is not already one; float to integer
 * truncates, saturating, NaN giving 0; integer to integer keeps the low
 * bits; to bool is x != 0. */
#ifdef VZ_FP64
typedef double wide_t;
#else
typedef float wide_t;
#endif

/* An f32 of d rounded toward zero, its last bit set when that dropped
 * anything (round to odd). */
float f32_odd(wide_t d) {
  float f = (float)d;
  if ((wide_t)f == d || d != d)
    return f;
  uint bits = as_uint(f);
  if (fabs((wide_t)f) > fabs(d))
    bits--; /* rounded away from zero: step back */
  return as_float(bits | 1u);
}

float i64_f32_odd(long v) {
  ulong m = v < 0 ? (ulong)0 - (ulong)v : (ulong)v;
  int shift = 0;
  while ((m >> shift) >= (1ul << 24))
    shift++;
  ulong keep = m >> shift;
  if (shift && (m & ((1ul << shift) - 1)))
    keep |= 1u;
  float f = ldexp((float)keep, shift);
  return v < 0 ? -f : f;
}

bool is_float_dtype(int dt) { return dt <= DT_F64; }

wide_t load_float(__global const uchar *p, int dt, long i) {
  switch (dt) {
  case DT_F32: return ((__global const float *)p)[i];
  case DT_F16: return vz_f16_to_f32(((__global const ushort *)p)[i]);
  case DT_BF16: return vz_bf16_to_f32(((__global const ushort *)p)[i]);
#ifdef VZ_FP64
  default: return ((__global const double *)p)[i];
#else
  default: return 0;
#endif
  }
}

long load_int(__global const uchar *p, int dt, long i) {
  switch (dt) {
  case DT_I64: return ((__global const long *)p)[i];
  case DT_I32: return ((__global const int *)p)[i];
  case DT_I16: return ((__global const short *)p)[i];
  case DT_I8: return ((__global const char *)p)[i];
  case DT_U8: return ((__global const uchar *)p)[i];
  default: return p[i] != 0;
  }
}

/* Saturating truncation: (double)MAX + 1 is the first value past the range. */
#define SATURATE(T, LO, HI)                                                                        \
  (d != d ? (T)0 : d >= (wide_t)(HI) + (wide_t)1 ? (T)(HI) : d <= (wide_t)(LO) ? (T)(LO) : (T)d)

void store_float(__global uchar *p, int dt, long i, wide_t d) {
  switch (dt) {
  case DT_F32: ((__global float *)p)[i] = (float)d; break;
  case DT_F16: ((__global ushort *)p)[i] = vz_f32_to_f16(f32_odd(d)); break;
  case DT_BF16: ((__global ushort *)p)[i] = vz_f32_to_bf16(f32_odd(d)); break;
#ifdef VZ_FP64
  case DT_F64: ((__global double *)p)[i] = d; break;
#endif
  case DT_I64: ((__global long *)p)[i] = SATURATE(long, LONG_MIN, LONG_MAX); break;
  case DT_I32: ((__global int *)p)[i] = SATURATE(int, INT_MIN, INT_MAX); break;
  case DT_I16: ((__global short *)p)[i] = SATURATE(short, SHRT_MIN, SHRT_MAX); break;
  case DT_I8: ((__global char *)p)[i] = SATURATE(char, CHAR_MIN, CHAR_MAX); break;
  case DT_U8: ((__global uchar *)p)[i] = SATURATE(uchar, 0, UCHAR_MAX); break;
  default: p[i] = d != 0; break;
  }
}

void store_int(__global uchar *p, int dt, long i, long v) {
  switch (dt) {
#ifdef VZ_FP64
  case DT_F32: ((__global float *)p)[i] = (float)v; break;
  case DT_F64: ((__global double *)p)[i] = (double)v; break;
#else
  case DT_F32: ((__global float *)p)[i] = (float)v; break;
#endif
  case DT_F16: ((__global ushort *)p)[i] = vz_f32_to_f16(i64_f32_odd(v)); break;
  case DT_BF16: ((__global ushort *)p)[i] = vz_f32_to_bf16(i64_f32_odd(v)); break;
  case DT_I64: ((__global long *)p)[i] = v; break;
  case DT_I32: ((__global uint *)p)[i] = (uint)(ulong)v; break;
  case DT_I16: ((__global ushort *)p)[i] = (ushort)(ulong)v; break;
  case DT_I8: ((__global uchar *)p)[i] = (uchar)(ulong)v; break;
  case DT_U8: ((__global uchar *)p)[i] = (uchar)(ulong)v; break;
  default: p[i] = v != 0; break;
  }
}

/* Buffers are bytes here; the offsets count elements of each side's dtype. */
__kernel void cast(__global uchar *out, long out_off, int out_dt, __global const uchar *x,
                   long x_off, int x_dt, long4 shape, long4 sx) {
  VZ_LAYOUT_ITEM(shape)
  long src = x_off + VZ_AT(sx), dst = out_off + r * shape.s3 + j;
  if (is_float_dtype(x_dt))
    store_float(out, out_dt, dst, load_float(x, x_dt, src));
  else
    store_int(out, out_dt, dst, load_int(x, x_dt, src));
}

/* f32, f16 or bf16 to contiguous f32, rounded to bf16 precision when
 * round_bf16 (matmul takes both operands at bf16 precision when one is). */
__kernel void widen_f32(__global float *out, long out_off, __global const uchar *x, long x_off,
                        int x_dt, int round_bf16, long4 shape, long4 sx) {
  VZ_LAYOUT_ITEM(shape)
  long src = x_off + VZ_AT(sx);
  float v = x_dt == DT_F32   ? ((__global const float *)x)[src]
            : x_dt == DT_F16 ? vz_f16_to_f32(((__global const ushort *)x)[src])
                             : vz_bf16_to_f32(((__global const ushort *)x)[src]);
  out[out_off + r * shape.s3 + j] = round_bf16 ? vz_round_bf16(v) : v;
}

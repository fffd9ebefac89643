/* dtype facts and the scalar 16-bit conversions, checked against the
 * processor's own F16C conversion instructions and against bfloat16 rounding
 * done a second way, in double precision. */
#include <math.h>
#include <string.h>

#include "tests/test_util.h"

#if defined(__x86_64__)
#include <immintrin.h>
__attribute__((target("f16c"))) static uint16_t hw_f32_to_f16(float f) {
  return (uint16_t)_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT);
}
__attribute__((target("f16c"))) static float hw_f16_to_f32(uint16_t h) { return _cvtsh_ss(h); }
static bool have_f16c(void) { return __builtin_cpu_supports("f16c"); }
#else
static bool have_f16c(void) { return false; }
static uint16_t hw_f32_to_f16(float f) { return (uint16_t)f; }
static float hw_f16_to_f32(uint16_t h) { return h; }
#endif

/* bfloat16 rounding by value: the nearer of the two bf16 neighbours by
 * magnitude, the even one on a tie. Past the largest finite bf16 the next
 * value is taken as 2^128, as IEEE rounding does. */
static uint16_t reference_bf16(float f) {
  uint32_t down = test_float_bits(f) & 0xffff0000u, up = down + 0x10000u;
  double lo = test_bits_float(down);
  double hi = isinf(test_bits_float(up)) ? copysign(ldexp(1.0, 128), f) : test_bits_float(up);
  double to_lo = fabs(lo - f), to_hi = fabs(hi - f);
  if (to_hi < to_lo || (to_hi == to_lo && (down & 0x10000u)))
    return (uint16_t)(up >> 16);
  return (uint16_t)(down >> 16);
}

static void test_facts(void) {
  CHECK(vz_dtype_size(VZ_F32) == 4 && vz_dtype_size(VZ_BF16) == 2 && vz_dtype_size(VZ_I64) == 8);
  CHECK(vz_dtype_size(VZ_BOOL) == 1 && vz_dtype_size(VZ_DTYPE_COUNT) == 0);
  for (int d = 0; d < VZ_DTYPE_COUNT; d++) {
    vz_dtype back;
    CHECK_OK(vz_dtype_from_name(vz_dtype_name((vz_dtype)d), &back));
    CHECK(back == (vz_dtype)d);
  }
  vz_dtype ignored;
  CHECK_FAILS(vz_dtype_from_name("float33", &ignored), VZ_ERR_DTYPE);
  CHECK(vz_dtype_is_float(VZ_BF16) && !vz_dtype_is_float(VZ_I8) && vz_dtype_is_integer(VZ_U8));
  CHECK(!vz_dtype_is_integer(VZ_BOOL));
}

static void test_f16(void) {
  if (!have_f16c()) {
    printf("note: no F16C on this processor; f16 checked on fixed values only\n");
    CHECK(vz_f32_to_f16(1.0f) == 0x3c00 && vz_f16_to_f32(0x7bff) == 65504.0f);
    return;
  }
  int bad = 0;
  for (uint32_t h = 0; h < 65536; h++) {
    float want = hw_f16_to_f32((uint16_t)h), got = vz_f16_to_f32((uint16_t)h);
    if (test_float_bits(want) != test_float_bits(got) && !(isnan(want) && isnan(got)) && bad++ < 5)
      fprintf(stderr, "f16 %04x -> %a, expected %a\n", h, got, want);
  }
  test_seed(1);
  for (int i = 0; i < 4000000; i++) {
    /* Mostly the f16 range, and every exponent now and then. */
    uint32_t u = (uint32_t)test_next();
    if (i % 4)
      u = (u & 0x80000000u) | (0x33000000u + (u % 0x14800000u));
    float f = test_bits_float(u);
    uint16_t want = hw_f32_to_f16(f), got = vz_f32_to_f16(f);
    bool nan_ok = isnan(f) && (got & 0x7c00) == 0x7c00 && (got & 0x3ff);
    if (want != got && !nan_ok && bad++ < 10)
      fprintf(stderr, "f32 %a -> f16 %04x, expected %04x\n", f, got, want);
  }
  CHECK(bad == 0);
}

static void test_bf16(void) {
  int bad = 0;
  for (uint32_t h = 0; h < 65536; h++) {
    float f = vz_bf16_to_f32((uint16_t)h);
    if (test_float_bits(f) != h << 16 && bad++ < 5)
      fprintf(stderr, "bf16 %04x -> %08x\n", h, test_float_bits(f));
  }
  test_seed(2);
  for (int i = 0; i < 4000000; i++) {
    uint32_t u = (uint32_t)test_next();
    if (i % 3 == 0)
      u = (u & 0xffff0000u) | 0x8000u; /* exact ties */
    float f = test_bits_float(u);
    uint16_t got = vz_f32_to_bf16(f);
    if (isnan(f)) {
      if (!((got & 0x7f80) == 0x7f80 && (got & 0x7f)) && bad++ < 10)
        fprintf(stderr, "NaN %08x -> bf16 %04x is not a NaN\n", u, got);
      continue;
    }
    uint16_t want = reference_bf16(f);
    if (want != got && bad++ < 10)
      fprintf(stderr, "f32 %a -> bf16 %04x, expected %04x\n", f, got, want);
  }
  CHECK(bad == 0);
}

int main(void) {
  test_facts();
  test_f16();
  test_bf16();
  return test_finish("test_dtype");
}

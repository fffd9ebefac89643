/* Peak multiply-add rates of one core: vfmadd231ps (f32, AVX-512),
 * vdpbf16ps (bf16 pairs into f32, AVX512_BF16) and vfmadd231ph (f16,
 * AVX512-FP16), each as 12 independent accumulator chains in registers, so
 * that only the instruction's throughput limits it. Prints one JSON line:
 * instructions per nanosecond and GFLOP/s of each (an instruction the
 * processor lacks is reported as null). This is what decides which 16-bit
 * format vlzoo's CPU GEMM computes in (docs/performance.md).
 *
 *   bench_fma_rates [--giga-instructions G]   (default 0.6 per instruction) */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include <cpuid.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* CPUID leaf 7: subleaf 0 EBX/EDX, subleaf 1 EAX; and XGETBV's ZMM state. */
static bool has_avx512f, has_bf16, has_fp16;

static void probe(void) {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_OSXSAVE))
    return;
  unsigned lo, hi;
  __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  if ((lo & 0xe6) != 0xe6 || !__get_cpuid_count(7, 0, &a, &b, &c, &d))
    return;
  has_avx512f = b & bit_AVX512F;
  has_fp16 = has_avx512f && (d & (1u << 23));
  if (__get_cpuid_count(7, 1, &a, &b, &c, &d))
    has_bf16 = has_avx512f && (a & (1u << 5));
}

#define CHAINS(op)                                                                                 \
  op " %%zmm31, %%zmm30, %%zmm0\n\t" op " %%zmm31, %%zmm30, %%zmm1\n\t" op                         \
     " %%zmm31, %%zmm30, %%zmm2\n\t" op " %%zmm31, %%zmm30, %%zmm3\n\t" op                         \
     " %%zmm31, %%zmm30, %%zmm4\n\t" op " %%zmm31, %%zmm30, %%zmm5\n\t" op                         \
     " %%zmm31, %%zmm30, %%zmm6\n\t" op " %%zmm31, %%zmm30, %%zmm7\n\t" op                         \
     " %%zmm31, %%zmm30, %%zmm8\n\t" op " %%zmm31, %%zmm30, %%zmm9\n\t" op                         \
     " %%zmm31, %%zmm30, %%zmm10\n\t" op " %%zmm31, %%zmm30, %%zmm11\n\t"

#define TIMED_LOOP(op, iterations)                                                                 \
  do {                                                                                             \
    long n_ = (iterations);                                                                        \
    __asm__ volatile("vpxord %%zmm30, %%zmm30, %%zmm30\n\t"                                        \
                     "vpxord %%zmm31, %%zmm31, %%zmm31\n\t"                                        \
                     "1:\n\t" CHAINS(op) "dec %0\n\t"                                              \
                                         "jnz 1b\n\t"                                              \
                     : "+r"(n_)                                                                    \
                     :                                                                             \
                     : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8",     \
                       "xmm9", "xmm10", "xmm11", "xmm30", "xmm31", "cc");                          \
  } while (0)

typedef enum { F32_FMA, BF16_DOT, F16_FMA } which;

/* Seconds for `iterations` x 12 instructions (this function alone is
 * compiled for AVX-512, for its registers; main checks the processor). */
__attribute__((target("avx512f"))) static double run(which w, long iterations) {
  double t = now_s();
  switch (w) {
  case F32_FMA: TIMED_LOOP("vfmadd231ps", iterations); break;
  case BF16_DOT: TIMED_LOOP("vdpbf16ps", iterations); break;
  case F16_FMA: TIMED_LOOP("vfmadd231ph", iterations); break;
  }
  return now_s() - t;
}

static void report(const char *name, bool available, which w, long iterations, int flops,
                   bool last) {
  if (!available) {
    printf("\"%s_ginstr_per_s\":null,\"%s_gflops\":null%s", name, name, last ? "" : ",");
    return;
  }
  run(w, iterations / 10); /* warm up the clock and the vector unit */
  double best = 1e30;
  for (int r = 0; r < 3; r++) {
    double s = run(w, iterations);
    best = s < best ? s : best;
  }
  double rate = (double)iterations * 12 / best * 1e-9;
  printf("\"%s_ginstr_per_s\":%.3f,\"%s_gflops\":%.1f%s", name, rate, name, rate * flops,
         last ? "" : ",");
}

int main(int argc, char **argv) {
  double giga = 0.6;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--giga-instructions") && i + 1 < argc) {
      char *end;
      giga = strtod(argv[++i], &end);
      if (*end || !(giga > 0 && giga <= 100)) {
        fprintf(stderr, "bench_fma_rates: --giga-instructions takes a count in (0, 100]\n");
        return 2;
      }
    } else {
      fprintf(stderr, "usage: bench_fma_rates [--giga-instructions G]\n");
      return 2;
    }
  }
  probe();
  if (!has_avx512f) {
    fprintf(stderr, "bench_fma_rates: this processor (or OS) has no AVX-512\n");
    return 77;
  }
  long iterations = (long)(giga * 1e9 / 12);
  printf("{\"bench\":\"fma_rates\",\"chains\":12,");
  report("f32_fma", true, F32_FMA, iterations, 32, false);
  report("bf16_dot", has_bf16, BF16_DOT, iterations, 64, false);
  report("f16_fma", has_fp16, F16_FMA, iterations, 64, true);
  printf("}\n");
  return 0;
}

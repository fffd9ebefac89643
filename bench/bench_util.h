/* Helpers shared by the benchmark programs: bench/bench_gemm.c and the
 * `vlzoo bench` command (tools/cmd_bench.c), which both compile
 * bench/bench_util.c. */
#ifndef VLZOO_BENCH_UTIL_H
#define VLZOO_BENCH_UTIL_H

#include <stdbool.h>
#include <stdint.h>

/* A monotonic clock in milliseconds. */
double bench_now_ms(void);

/* Sorts v[0..n) ascending (so v[0] is then the minimum) and returns the
 * median. */
double bench_median(double *v, long n);

/* Parses a whole decimal number in [lo, hi] into *out; false for NULL, an
 * empty string, trailing characters or a value out of range. */
bool bench_parse_count(const char *s, long lo, long hi, long *out);

/* Exports a thread count as VLZOO_THREADS, which the CPU backend reads when
 * it is made. */
void bench_export_threads(long threads);

/* One step of a xorshift64 generator: advances *state and returns it. */
uint64_t bench_xorshift(uint64_t *state);

#endif

/* The vector kernels compiled for the avx512 path. */
#define VZ_SIMD_PATH_AVX512
#include "backends/cpu/simd_kernels.inc"

/* The vector kernels compiled for the avx2 path. */
#define VZ_SIMD_PATH_AVX2
#include "backends/cpu/simd_kernels.inc"

/* The vector kernels compiled for the scalar path. */
#define VZ_SIMD_PATH_SCALAR
#include "backends/cpu/simd_kernels.inc"

/* The CPU backend: host memory buffers, OpenMP threads shared with oneDNN,
 * and an instruction-set path chosen at run time. */
#include <omp.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/cpu/cpu.h"

enum { BUFFER_ALIGNMENT = 64 };

const char *vz_cpu_isa_name(vz_cpu_isa isa) {
  switch (isa) {
  case VZ_ISA_SCALAR: return "scalar";
  case VZ_ISA_AVX2: return "avx2";
  case VZ_ISA_AVX512: return "avx512";
  case VZ_ISA_AVX512_FP16: return "avx512fp16";
  }
  return "?";
}

/* Feature bits straight from CPUID, plus XGETBV to confirm that the OS saves
 * the wider registers (a processor may have AVX-512 that the OS leaves off). */
static bool isa_available(vz_cpu_isa isa) {
  if (isa == VZ_ISA_SCALAR)
    return true;
#if defined(__x86_64__) || defined(__i386__)
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d))
    return false;
  bool fma = c & bit_FMA, f16c = c & bit_F16C, osxsave = c & bit_OSXSAVE;
  if (!osxsave || !__get_cpuid_count(7, 0, &a, &b, &c, &d))
    return false;
  unsigned lo, hi;
  __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  (void)hi;
  bool os_avx = (lo & 0x6) == 0x6;                /* SSE and AVX state */
  bool os_avx512 = os_avx && (lo & 0xe0) == 0xe0; /* opmask and upper ZMM state */
  bool avx2 = os_avx && (b & bit_AVX2) && fma && f16c;
  if (isa == VZ_ISA_AVX2)
    return avx2;
  bool avx512 = avx2 && os_avx512 && (b & bit_AVX512F) && (b & bit_AVX512BW) &&
                (b & bit_AVX512VL) && (b & bit_AVX512DQ);
  if (isa == VZ_ISA_AVX512)
    return avx512;
  return avx512 && (d & (1u << 23)); /* AVX512-FP16: CPUID.(7,0):EDX[23] */
#else
  return false;
#endif
}

vz_status vz_cpu_select_isa(vz_cpu_isa *out) {
  const char *forced = getenv("VLZOO_CPU_ISA");
  if (!forced || !*forced) {
    *out = isa_available(VZ_ISA_AVX512_FP16) ? VZ_ISA_AVX512_FP16
           : isa_available(VZ_ISA_AVX512)    ? VZ_ISA_AVX512
           : isa_available(VZ_ISA_AVX2)      ? VZ_ISA_AVX2
                                             : VZ_ISA_SCALAR;
    return VZ_OK;
  }
  for (int isa = VZ_ISA_SCALAR; isa <= VZ_ISA_AVX512_FP16; isa++) {
    if (strcmp(forced, vz_cpu_isa_name((vz_cpu_isa)isa)) != 0)
      continue;
    if (!isa_available((vz_cpu_isa)isa))
      return vz_fail(VZ_ERR_UNSUPPORTED, "VLZOO_CPU_ISA=%s, but this processor lacks %s", forced,
                     forced);
    *out = (vz_cpu_isa)isa;
    return VZ_OK;
  }
  return vz_fail(VZ_ERR_INVALID_ARGUMENT,
                 "VLZOO_CPU_ISA=%s is not one of scalar, avx2, avx512, avx512fp16", forced);
}

const vz_cpu_simd *vz_cpu_simd_of(vz_cpu_isa isa) {
  return isa >= VZ_ISA_AVX512 ? &vz_cpu_simd_avx512
         : isa == VZ_ISA_AVX2 ? &vz_cpu_simd_avx2
                              : &vz_cpu_simd_scalar;
}

static vz_status thread_count(int *out) {
  const char *env = getenv("VLZOO_THREADS");
  if (!env || !*env) {
    *out = omp_get_num_procs();
    return VZ_OK;
  }
  char *end;
  long n = strtol(env, &end, 10);
  if (*end || n < 1 || n > 1024)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "VLZOO_THREADS=%s is not a count from 1 to 1024", env);
  *out = (int)n;
  return VZ_OK;
}

int vz_cpu_threads_for(const vz_cpu *cpu, int64_t work) {
  /* About 32k simple steps per thread pays for the wake-up. */
  int64_t useful = work / 32768 + 1;
  return useful < cpu->threads ? (int)useful : cpu->threads;
}

vz_status vz_cpu_split_axis(const vz_tensor *x, int axis, int64_t *outer, int64_t *n,
                            int64_t *inner) {
  int ax = vz_axis(axis, x->ndim);
  if (ax < 0)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "axis %d is out of range", axis);
  *outer = *inner = 1;
  for (int d = 0; d < ax; d++)
    *outer *= x->shape[d];
  *n = x->shape[ax];
  for (int d = ax + 1; d < x->ndim; d++)
    *inner *= x->shape[d];
  return VZ_OK;
}

static vz_status cpu_create(const char *device, void **self) {
  if (device)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT,
                   "the CPU backend has one device; 'cpu:%s' names another (use 'cpu')", device);
  vz_cpu *cpu = calloc(1, sizeof *cpu);
  if (!cpu)
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory for the CPU backend");
  vz_status st = vz_cpu_select_isa(&cpu->isa);
  if (st == VZ_OK)
    st = thread_count(&cpu->threads);
  if (st != VZ_OK) {
    free(cpu);
    return st;
  }
  cpu->simd = vz_cpu_simd_of(cpu->isa);
  snprintf(cpu->description, sizeof cpu->description, "cpu: %d threads, %s kernels, oneDNN GEMM",
           cpu->threads, vz_cpu_isa_name(cpu->isa));
  *self = cpu;
  return VZ_OK;
}

static void cpu_destroy(void *self) { free(self); }

static const char *cpu_describe(void *self) { return ((vz_cpu *)self)->description; }

static vz_status cpu_buffer_alloc(void *self, size_t bytes, void **handle, void **host) {
  (void)self;
  size_t rounded = (bytes + BUFFER_ALIGNMENT - 1) / BUFFER_ALIGNMENT * BUFFER_ALIGNMENT;
  if (rounded < bytes)
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "buffer of %zu bytes is too large", bytes);
  void *p = aligned_alloc(BUFFER_ALIGNMENT, rounded ? rounded : BUFFER_ALIGNMENT);
  if (!p)
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "cannot allocate %zu bytes", bytes);
  *handle = *host = p;
  return VZ_OK;
}

static void cpu_buffer_free(void *self, void *handle) {
  (void)self;
  free(handle);
}

static vz_status cpu_buffer_wrap(void *self, const void *host, size_t bytes, void **handle) {
  (void)self;
  (void)bytes;
  *handle = (void *)host;
  return VZ_OK;
}

static void cpu_buffer_unwrap(void *self, void *handle) {
  (void)self;
  (void)handle;
}

/* Copies in pieces on the backend's threads: for a weight being loaded,
 * most of the time goes to the kernel zeroing the fresh pages it touches
 * first, which two threads do at about twice the rate of one. */
static void copy_bytes(const vz_cpu *cpu, void *dst, const void *src, size_t bytes) {
  enum { PIECE = 1 << 20 };
  const int64_t pieces = (int64_t)((bytes + PIECE - 1) / PIECE);
#pragma omp parallel for num_threads(vz_cpu_threads_for(cpu, (int64_t)bytes / 256)) schedule(static)
  for (int64_t p = 0; p < pieces; p++) {
    size_t at = (size_t)p * PIECE, left = bytes - at;
    memcpy((char *)dst + at, (const char *)src + at, left < PIECE ? left : PIECE);
  }
}

static vz_status cpu_buffer_write(void *self, void *handle, size_t offset, const void *src,
                                  size_t bytes) {
  copy_bytes(self, (char *)handle + offset, src, bytes);
  return VZ_OK;
}

static vz_status cpu_buffer_read(void *self, void *handle, size_t offset, void *dst, size_t bytes) {
  copy_bytes(self, dst, (const char *)handle + offset, bytes);
  return VZ_OK;
}

static vz_status cpu_buffer_clear(void *self, void *handle, size_t offset, size_t bytes) {
  (void)self;
  memset((char *)handle + offset, 0, bytes);
  return VZ_OK;
}

static bool cpu_supports(void *self, const vz_op_call *call) {
  (void)self;
  const vz_cpu_kernel *k = vz_cpu_kernel_for(call->op);
  return k->run && k->supports(call);
}

static vz_status cpu_run(void *self, const vz_op_call *call) {
  return vz_cpu_kernel_for(call->op)->run(self, call);
}

static vz_status cpu_synchronize(void *self) {
  (void)self;
  return VZ_OK;
}

const vz_backend_iface vz_cpu_backend = {
    .name = "cpu",
    .create = cpu_create,
    .destroy = cpu_destroy,
    .describe = cpu_describe,
    .buffer_alloc = cpu_buffer_alloc,
    .buffer_wrap = cpu_buffer_wrap,
    .buffer_unwrap = cpu_buffer_unwrap,
    .buffer_free = cpu_buffer_free,
    .buffer_write = cpu_buffer_write,
    .buffer_read = cpu_buffer_read,
    .buffer_clear = cpu_buffer_clear,
    .supports = cpu_supports,
    .run = cpu_run,
    .synchronize = cpu_synchronize,
};

/* tune_clblast: a small random search of CLBlast's GEMM parameters on one
 * OpenCL device (CLBlast's own tuners are not packaged here and crash on
 * PoCL), for the tables shipped in backends/opencl/opencl_clblast.c. Each
 * candidate is installed with CLBlastOverrideParameters and timed on a
 * row-major A [M, K] times B [N, K]^T, the layout of vz_matmul on a Linear
 * weight. Prints one JSON line per candidate and the best last. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include <CL/cl.h>
#include <clblast_c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/bench_util.h"

static void usage(FILE *to) {
  fprintf(to,
          "usage: tune_clblast [--m M --n N --k K] [--tries T] [--runs R] [--kernel xgemm|direct]\n"
          "                    [--device D] [--seed S]\n\n"
          "Times T random valid parameter sets (default 40) of CLBlast's Xgemm (indirect GEMM)\n"
          "or XgemmDirect kernel, R runs each after a warm-up (default 3, the minimum counts),\n"
          "on the shape M x N x K (default 257 x 1408 x 1408), device index D over all\n"
          "platforms (default 0). The first line is CLBlast's own choice.\n");
}

typedef struct param_set {
  const char *kernel;
  int count;
  const char *names[16];
  size_t values[16];
} param_set;

static size_t pick(uint64_t *x, const size_t *options, int n) {
  return options[bench_xorshift(x) % (uint64_t)n];
}

#define PICK(...)                                                                                  \
  pick(x, (const size_t[]){__VA_ARGS__}, sizeof((size_t[]){__VA_ARGS__}) / sizeof(size_t))

/* A random Xgemm set (GEMMK 0) meeting the kernel's divisibility rules. */
static void random_xgemm(uint64_t *x, param_set *p) {
  for (;;) {
    size_t mwg = PICK(16, 32, 64, 128), nwg = PICK(16, 32, 64, 128), kwg = PICK(16, 32);
    size_t mdimc = PICK(8, 16, 32), ndimc = PICK(8, 16, 32), mdima = PICK(8, 16, 32),
           ndimb = PICK(8, 16, 32);
    size_t kwi = PICK(2, 8), vwm = PICK(1, 2, 4, 8), vwn = PICK(1, 2, 4, 8);
    size_t strm = PICK(0, 1), strn = PICK(0, 1), sa = PICK(0, 1), sb = PICK(0, 1);
    if (mwg % (mdimc * vwm) || nwg % (ndimc * vwn) || mwg % (mdima * vwm) || nwg % (ndimb * vwn) ||
        kwg % ((mdimc * ndimc) / mdima) || kwg % ((mdimc * ndimc) / ndimb) || kwg % kwi ||
        mdimc * ndimc > 1024)
      continue;
    const char *names[16] = {"GEMMK", "KREG", "KWG", "KWI", "MDIMA", "MDIMC", "MWG", "NDIMB",
                             "NDIMC", "NWG",  "SA",  "SB",  "STRM",  "STRN",  "VWM", "VWN"};
    size_t values[16] = {0,     1,   kwg, kwi, mdima, mdimc, mwg, ndimb,
                         ndimc, nwg, sa,  sb,  strm,  strn,  vwm, vwn};
    p->kernel = "Xgemm";
    p->count = 16;
    memcpy(p->names, names, sizeof names);
    memcpy(p->values, values, sizeof values);
    return;
  }
}

/* A random XgemmDirect set meeting its rules. */
static void random_direct(uint64_t *x, param_set *p) {
  for (;;) {
    size_t wgd = PICK(8, 16, 32, 64), mdimcd = PICK(8, 16, 32), ndimcd = PICK(8, 16, 32),
           mdimad = PICK(8, 16, 32), ndimbd = PICK(8, 16, 32), kwid = PICK(2, 8, 16),
           vwmd = PICK(1, 2, 4, 8), vwnd = PICK(1, 2, 4, 8), pada = PICK(0, 1), padb = PICK(0, 1);
    if (wgd % (mdimcd * vwmd) || wgd % (ndimcd * vwnd) || wgd % (mdimad * vwmd) ||
        wgd % (ndimbd * vwnd) || wgd % ((mdimcd * ndimcd) / mdimad) ||
        wgd % ((mdimcd * ndimcd) / ndimbd) || wgd % kwid)
      continue;
    const char *names[10] = {"KWID", "MDIMAD", "MDIMCD", "NDIMBD", "NDIMCD",
                             "PADA", "PADB",   "VWMD",   "VWND",   "WGD"};
    size_t values[10] = {kwid, mdimad, mdimcd, ndimbd, ndimcd, pada, padb, vwmd, vwnd, wgd};
    p->kernel = "XgemmDirect";
    p->count = 10;
    memcpy(p->names, names, sizeof names);
    memcpy(p->values, values, sizeof values);
    return;
  }
}

static void print_set(const param_set *p, double best_ms, double gflops, CLBlastStatusCode s) {
  printf("{\"kernel\":\"%s\",\"status\":%d,\"min_ms\":%.3f,\"gflops\":%.2f,\"params\":{",
         p->kernel ? p->kernel : "default", (int)s, best_ms, gflops);
  for (int i = 0; i < p->count; i++)
    printf("%s\"%s\":%zu", i ? "," : "", p->names[i], p->values[i]);
  printf("}}\n");
  fflush(stdout);
}

int main(int argc, char **argv) {
  long m = 257, n = 1408, k = 1408, tries = 40, runs = 3, device = 0, seed = 1;
  bool direct = false;
  for (int i = 1; i < argc; i++) {
    const char *opt = argv[i];
    if (strcmp(opt, "--help") == 0 || strcmp(opt, "-h") == 0) {
      usage(stdout);
      return 0;
    }
    if (strcmp(opt, "--kernel") == 0 && i + 1 < argc) {
      direct = strcmp(argv[++i], "direct") == 0;
      continue;
    }
    long *target = strcmp(opt, "--m") == 0        ? &m
                   : strcmp(opt, "--n") == 0      ? &n
                   : strcmp(opt, "--k") == 0      ? &k
                   : strcmp(opt, "--tries") == 0  ? &tries
                   : strcmp(opt, "--runs") == 0   ? &runs
                   : strcmp(opt, "--device") == 0 ? &device
                   : strcmp(opt, "--seed") == 0   ? &seed
                                                  : NULL;
    if (!target || !bench_parse_count(i + 1 < argc ? argv[i + 1] : NULL, 0, 1L << 20, target)) {
      fprintf(stderr, "tune_clblast: bad option '%s'\n", opt);
      usage(stderr);
      return 2;
    }
    i++;
  }
  cl_platform_id platforms[8];
  cl_uint np = 0;
  cl_device_id dev = NULL;
  long index = 0;
  clGetPlatformIDs(8, platforms, &np);
  for (cl_uint p = 0; p < np && !dev; p++) {
    cl_device_id devices[16];
    cl_uint nd = 0;
    if (clGetDeviceIDs(platforms[p], CL_DEVICE_TYPE_ALL, 16, devices, &nd) != CL_SUCCESS)
      continue;
    for (cl_uint d = 0; d < nd && !dev; d++, index++)
      if (index == device)
        dev = devices[d];
  }
  if (!dev) {
    fprintf(stderr, "tune_clblast: no OpenCL device %ld\n", device);
    return 1;
  }
  char name[256] = "";
  clGetDeviceInfo(dev, CL_DEVICE_NAME, sizeof name, name, NULL);
  cl_int err;
  cl_context ctx = clCreateContext(NULL, 1, &dev, NULL, NULL, &err);
  cl_command_queue q = clCreateCommandQueue(ctx, dev, 0, &err);
  size_t na = (size_t)(m * k), nb = (size_t)(n * k), nc = (size_t)(m * n);
  float *host = malloc((na > nb ? na : nb) * sizeof *host);
  uint64_t x = (uint64_t)seed * 0x9e3779b97f4a7c15ull + 1;
  for (size_t i = 0; i < (na > nb ? na : nb); i++)
    host[i] = (float)((double)(bench_xorshift(&x) >> 40) / 16777216.0 - 0.5);
  cl_mem a = clCreateBuffer(ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, na * 4, host, &err);
  cl_mem b = clCreateBuffer(ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, nb * 4, host, &err);
  cl_mem c = clCreateBuffer(ctx, CL_MEM_READ_WRITE, nc * 4, NULL, &err);
  free(host);
  fprintf(stderr, "tune_clblast: %s, %ldx%ldx%ld, %s\n", name, m, n, k,
          direct ? "XgemmDirect" : "Xgemm");
  /* Force the kernel family under test: direct below this size cubed. */
  const char *routine_names[1] = {"XGEMM_MIN_INDIRECT_SIZE"};
  size_t routine_value[1] = {direct ? 100000 : 1};
  CLBlastOverrideParameters(dev, "GemmRoutine", CLBlastPrecisionSingle, 1, routine_names,
                            routine_value);
  param_set best = {0};
  double best_gflops = 0;
  for (long t = 0; t <= tries; t++) {
    param_set p = {0};
    if (t > 0) { /* t == 0: CLBlast's choice for this device */
      if (direct)
        random_direct(&x, &p);
      else
        random_xgemm(&x, &p);
      CLBlastStatusCode s = CLBlastOverrideParameters(dev, p.kernel, CLBlastPrecisionSingle,
                                                      (size_t)p.count, p.names, p.values);
      if (s != CLBlastSuccess) {
        print_set(&p, 0, 0, s);
        continue;
      }
    }
    double best_ms = 1e30;
    CLBlastStatusCode s = CLBlastSuccess;
    for (long r = 0; r <= runs && s == CLBlastSuccess; r++) {
      double t0 = bench_now_ms();
      s = CLBlastSgemm(CLBlastLayoutRowMajor, CLBlastTransposeNo, CLBlastTransposeYes, (size_t)m,
                       (size_t)n, (size_t)k, 1.0f, a, 0, (size_t)k, b, 0, (size_t)k, 0.0f, c, 0,
                       (size_t)n, &q, NULL);
      clFinish(q);
      double ms = bench_now_ms() - t0;
      if (r > 0 && ms < best_ms) /* run 0 builds the kernel */
        best_ms = ms;
    }
    double gflops = s == CLBlastSuccess ? 2.0 * m * n * k / (best_ms * 1e6) : 0;
    print_set(&p, best_ms, gflops, s);
    if (gflops > best_gflops) {
      best_gflops = gflops;
      best = p;
    }
  }
  printf("best: ");
  print_set(&best, 2.0 * m * n * k / (best_gflops * 1e6), best_gflops, CLBlastSuccess);
  clReleaseMemObject(a);
  clReleaseMemObject(b);
  clReleaseMemObject(c);
  clReleaseCommandQueue(q);
  clReleaseContext(ctx);
  return 0;
}

/* vlzoo bench gemm: times vz_matmul on one shape as models use it, f32
 * activations [M, K] times a weight [N, K] stored in a given dtype. */
#include <json-c/json.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/cpu/cpu_matmul.h"
#include "bench/bench_util.h"
#include "tools/commands.h"
#include "vlzoo/vlzoo.h"

static void usage(FILE *to) {
  fprintf(to, "usage: vlzoo bench gemm [--m M] [--n N] [--k K] [--dtype f32|bf16|f16]\n"
              "                        [--device NAME] [--threads T] [--repeat R] [--json]\n\n"
              "Times vz_matmul on a backend through the public API (dispatch, copies and\n"
              "conversions included): a = f32 [M, K] activations times b = a weight [N, K] in\n"
              "the given dtype, used transposed (trans_b), as models store their weights. One\n"
              "warm-up call (on OpenCL it builds the kernels), then R timed calls writing into\n"
              "the same output, each waited for.\n\n"
              "  --m, --n, --k   the GEMM's shape (default 257, 1408, 1408: a ViT-g layer)\n"
              "  --dtype         the weight's dtype (default f32); with bf16 both operands are\n"
              "                  taken at bf16 precision; f16 is widened exactly, except on\n"
              "                  the avx512fp16 path, which rounds a to f16 and sums f16\n"
              "                  products, for bf16 weights too (converted to f16) unless\n"
              "                  oneDNN runs bf16 on AMX\n"
              "  --device NAME   the backend (default cpu; opencl, opencl:1 ...)\n"
              "  --threads T     CPU threads (default: VLZOO_THREADS, else every processor)\n"
              "  --repeat R      timed calls (default 10)\n"
              "  --json          print one JSON line: m, n, k, dtype, device, threads, kernel,\n"
              "                  repeat, median_ms, min_ms, gflops (2 M N K / median)\n");
}

static int bad_usage(const char *fmt, const char *arg) {
  fprintf(stderr, "vlzoo bench gemm: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n(see 'vlzoo bench gemm --help')\n");
  return 2;
}

/* Host values of a tensor's elements in dtype, uniform in [-1, 1). */
static void *random_data(vz_dtype dtype, int64_t n, uint64_t seed) {
  void *p = malloc((size_t)n * vz_dtype_size(dtype));
  if (!p)
    return NULL;
  uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
  for (int64_t i = 0; i < n; i++) {
    float f = (float)((bench_xorshift(&x) >> 40) * (2.0 / 16777216.0) - 1.0);
    if (dtype == VZ_F32)
      ((float *)p)[i] = f;
    else
      ((uint16_t *)p)[i] = dtype == VZ_BF16 ? vz_f32_to_bf16(f) : vz_f32_to_f16(f);
  }
  return p;
}

static vz_tensor *host_tensor(vz_backend *be, vz_dtype dtype, int64_t rows, int64_t cols,
                              uint64_t seed) {
  int64_t shape[2] = {rows, cols};
  void *data = random_data(dtype, rows * cols, seed);
  vz_tensor *t = NULL;
  if (data && vz_tensor_from_host(be, dtype, 2, shape, data,
                                  (size_t)(rows * cols) * vz_dtype_size(dtype), &t) != VZ_OK)
    t = NULL;
  free(data);
  return t;
}

static int bench_gemm(int argc, char **argv) {
  long m = 257, n = 1408, k = 1408, threads = 0, repeat = 10;
  vz_dtype dtype = VZ_F32;
  const char *device = "cpu";
  bool json = false;
  for (int i = 1; i < argc; i++) {
    const char *opt = argv[i];
    if (strcmp(opt, "--help") == 0 || strcmp(opt, "-h") == 0) {
      usage(stdout);
      return 0;
    }
    if (strcmp(opt, "--json") == 0) {
      json = true;
      continue;
    }
    const char *value = i + 1 < argc ? argv[i + 1] : NULL;
    long *target = strcmp(opt, "--m") == 0         ? &m
                   : strcmp(opt, "--n") == 0       ? &n
                   : strcmp(opt, "--k") == 0       ? &k
                   : strcmp(opt, "--threads") == 0 ? &threads
                   : strcmp(opt, "--repeat") == 0  ? &repeat
                                                   : NULL;
    if (target) {
      long hi = target == &threads ? 1024 : target == &repeat ? 100000 : 1L << 20;
      if (!bench_parse_count(value, 1, hi, target))
        return bad_usage("%s needs a whole number in range", opt);
      i++;
    } else if (strcmp(opt, "--device") == 0) {
      if (!value || !*value)
        return bad_usage("--device needs a backend name%s", "");
      device = value;
      i++;
    } else if (strcmp(opt, "--dtype") == 0) {
      if (!value || vz_dtype_from_name(value, &dtype) != VZ_OK ||
          (dtype != VZ_F32 && dtype != VZ_BF16 && dtype != VZ_F16))
        return bad_usage("--dtype is f32, bf16 or f16, not '%s'", value ? value : "");
      i++;
    } else {
      return bad_usage("unknown option '%s'", opt);
    }
  }
  if (threads > 0) {
    bench_export_threads(threads);
  } else {
    const char *env = getenv("VLZOO_THREADS");
    if (env && *env && !bench_parse_count(env, 1, 1024, &threads))
      return bad_usage("VLZOO_THREADS=%s is not a thread count", env);
    if (threads <= 0)
      threads = omp_get_num_procs();
  }

  vz_backend *be = NULL;
  if (vz_backend_create(device, &be) != VZ_OK) {
    fprintf(stderr, "vlzoo bench gemm: %s\n", vz_last_error());
    return 1;
  }
  vz_tensor *a = host_tensor(be, VZ_F32, m, k, 1), *b = host_tensor(be, dtype, n, k, 2);
  vz_tensor *out = NULL;
  double *ms = malloc((size_t)repeat * sizeof *ms);
  int rc = 1;
  if (!a || !b || !ms) {
    fprintf(stderr, "vlzoo bench gemm: cannot make the operands: %s\n", vz_last_error());
    goto done;
  }
  const char *kernel = vz_cpu_linear_kernel_name(a, b);
  if (!kernel)
    kernel = vz_backend_name(be);
  if (vz_matmul(a, b, false, true, &out) != VZ_OK ||
      vz_backend_synchronize(be) != VZ_OK) { /* warm-up; allocates out */
    fprintf(stderr, "vlzoo bench gemm: %s\n", vz_last_error());
    goto done;
  }
  for (long r = 0; r < repeat; r++) {
    double t0 = bench_now_ms();
    vz_status st = vz_matmul(a, b, false, true, &out);
    if (st == VZ_OK)
      st = vz_backend_synchronize(be);
    ms[r] = bench_now_ms() - t0;
    if (st != VZ_OK) {
      fprintf(stderr, "vlzoo bench gemm: %s\n", vz_last_error());
      goto done;
    }
  }
  double median = bench_median(ms, repeat); /* sorts: ms[0] is the fastest */
  double gflops = 2.0 * (double)m * (double)n * (double)k / (median * 1e6);
  if (json) {
    json_object *o = json_object_new_object();
    json_object_object_add(o, "m", json_object_new_int64(m));
    json_object_object_add(o, "n", json_object_new_int64(n));
    json_object_object_add(o, "k", json_object_new_int64(k));
    json_object_object_add(o, "dtype", json_object_new_string(vz_dtype_name(dtype)));
    json_object_object_add(o, "device", json_object_new_string(vz_backend_name(be)));
    json_object_object_add(o, "threads", json_object_new_int64(threads));
    json_object_object_add(o, "kernel", kernel ? json_object_new_string(kernel) : NULL);
    json_object_object_add(o, "repeat", json_object_new_int64(repeat));
    json_object_object_add(o, "median_ms", json_object_new_double(median));
    json_object_object_add(o, "min_ms", json_object_new_double(ms[0]));
    json_object_object_add(o, "gflops", json_object_new_double(gflops));
    printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
  } else {
    printf("gemm %ldx%ldx%ld %s on %s, %ld threads, kernel %s: median %.3f ms, min %.3f ms, "
           "%.1f GFLOP/s (%ld runs)\n",
           m, n, k, vz_dtype_name(dtype), vz_backend_name(be), threads, kernel, median, ms[0],
           gflops, repeat);
  }
  rc = 0;
done:
  free(ms);
  vz_tensor_free(out);
  vz_tensor_free(a);
  vz_tensor_free(b);
  vz_backend_free(be);
  return rc;
}

int vz_cmd_bench(int argc, char **argv) {
  if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
    FILE *to = argc < 2 ? stderr : stdout;
    fprintf(to, "usage: vlzoo bench BENCHMARK [OPTIONS]\n\nbenchmarks:\n"
                "  gemm   vz_matmul on one shape (see 'vlzoo bench gemm --help')\n");
    return argc < 2 ? 2 : 0;
  }
  if (strcmp(argv[1], "gemm") == 0)
    return bench_gemm(argc - 1, argv + 1);
  fprintf(stderr, "vlzoo bench: unknown benchmark '%s' (try 'vlzoo bench --help')\n", argv[1]);
  return 2;
}

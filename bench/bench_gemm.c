/* bench_gemm: vlzoo's matmul against oneDNN's own f32 matmul primitive and
 * OpenBLAS on the ViT-g layer shapes, and on the OpenCL backend (our GEMM
 * kernels and CLBlast's) when it runs here, interleaved round-robin in one
 * process so that all variants see the same machine state. Prints one JSON
 * line per shape. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, nanosleep, setenv */
#include <dnnl.h>
#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef VLZOO_BENCH_OPENBLAS
#include <cblas.h>
#endif

#include "backends/cpu/cpu_matmul.h"
#include "bench/bench_util.h"
#include "vlzoo/vlzoo.h"

enum { VARIANTS = 6, MAX_RETRIES = 8 };
#define MIN_CPU_SHARE 0.85
enum { V_F32, V_BF16, V_ONEDNN, V_OPENBLAS, V_OPENCL, V_CLBLAST };
static const char *const variant_names[VARIANTS] = {"vlzoo_f32", "vlzoo_bf16", "onednn",
                                                    "openblas",  "opencl",     "clblast"};

/* The OpenCL backend twice, with our GEMM kernels and with CLBlast's
 * (VLZOO_OPENCL_GEMM is read when a backend is made); NULL where OpenCL
 * does not run. */
static vz_backend *opencl_with(const char *gemm) {
  setenv("VLZOO_OPENCL_GEMM", gemm, 1);
  vz_backend *be = NULL;
  if (vz_backend_create("opencl", &be) != VZ_OK)
    be = NULL;
  unsetenv("VLZOO_OPENCL_GEMM");
  return be;
}

static void usage(FILE *to) {
  fprintf(to, "usage: bench_gemm [--m M --n N --k K [--only]] [--rounds R] [--threads T]\n"
              "                  [--weight-copies C]\n\n"
              "For the ViT-g shapes 257x1408x1408, 257x6144x1408 and 257x1408x6144 (MxNxK; and\n"
              "M x N x K when given; with --only, that one alone) times, interleaved round-robin\n"
              "over R rounds (default 15):\n"
              "  vlzoo_f32   vz_matmul, f32 [M,K] x f32 weight [N,K] transposed\n"
              "  vlzoo_bf16  the same with the weight in bf16\n"
              "  onednn      oneDNN's f32 matmul primitive (src ab, weights [N,K] as ba),\n"
              "              created once outside the timing\n"
              "  openblas    cblas_sgemm(RowMajor, NoTrans, Trans) when built with OpenBLAS\n"
              "  opencl      vz_matmul on the OpenCL backend with our GEMM kernels (operands\n"
              "              on the device; each call waited for), when OpenCL runs here\n"
              "  clblast     the same with CLBlast's GEMM (VLZOO_OPENCL_GEMM=clblast)\n"
              "all with T threads (default: VLZOO_THREADS, else every processor). Prints one\n"
              "JSON line per shape: median GFLOP/s of each, the ratios vlzoo_f32/onednn,\n"
              "vlzoo_f32/openblas, vlzoo_bf16/vlzoo_f32, opencl/vlzoo_f32 and\n"
              "clblast/vlzoo_f32, the OpenCL results' largest relative difference from the\n"
              "CPU's, and the bf16 result's error\n"
              "against the f32 one on N(0,1) data: bf16_max_rel_err = max |err| / rms(f32\n"
              "result), bf16_rms_rel_err = ||err|| / ||f32 result||. A sample during which the\n"
              "process got less than 85%% of T cores' time (another process ran) is taken again,\n"
              "up to 8 times; rejected_samples counts those.\n"
              "  --weight-copies C  vlzoo_f32 and vlzoo_bf16 take their weight from C copies in\n"
              "                     turn (round r uses copy r %% C): with C copies more than\n"
              "                     the last-level cache holds, the weights come from memory,\n"
              "                     as in a model that streams its layers (default 1: the\n"
              "                     weight stays in cache; the other variants always use one)\n");
}

static double cpu_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

static void pause_ms(long ms) {
  struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&t, &t) != 0 && errno == EINTR) {
  }
}

static uint64_t rng = 0x2545f4914f6cdd1dull;

static float normal(void) {
  double u[2];
  for (int i = 0; i < 2; i++)
    u[i] = ((bench_xorshift(&rng) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
  return (float)(sqrt(-2.0 * log(u[0])) * cos(6.283185307179586 * u[1]));
}

/* oneDNN's f32 matmul primitive for one shape, made once. */
typedef struct onednn_mm {
  dnnl_engine_t engine;
  dnnl_stream_t stream;
  dnnl_primitive_t prim;
  dnnl_memory_t mem[3];
} onednn_mm;

static bool onednn_init(onednn_mm *o, long m, long n, long k, float *a, float *w, float *c) {
  memset(o, 0, sizeof *o);
  dnnl_memory_desc_t src, wei, dst;
  dnnl_dims_t sd = {m, k}, wd = {k, n}, dd = {m, n};
  dnnl_memory_desc_init_by_tag(&src, 2, sd, dnnl_f32, dnnl_ab);
  dnnl_memory_desc_init_by_tag(&wei, 2, wd, dnnl_f32, dnnl_ba); /* [N, K] storage */
  dnnl_memory_desc_init_by_tag(&dst, 2, dd, dnnl_f32, dnnl_ab);
  dnnl_matmul_desc_t desc;
  dnnl_primitive_desc_t pd = NULL;
  bool ok = dnnl_engine_create(&o->engine, dnnl_cpu, 0) == dnnl_success &&
            dnnl_stream_create(&o->stream, o->engine, dnnl_stream_default_flags) == dnnl_success &&
            dnnl_matmul_desc_init(&desc, &src, &wei, NULL, &dst) == dnnl_success &&
            dnnl_primitive_desc_create(&pd, &desc, NULL, o->engine, NULL) == dnnl_success &&
            dnnl_primitive_create(&o->prim, pd) == dnnl_success &&
            dnnl_memory_create(&o->mem[0], &src, o->engine, a) == dnnl_success &&
            dnnl_memory_create(&o->mem[1], &wei, o->engine, w) == dnnl_success &&
            dnnl_memory_create(&o->mem[2], &dst, o->engine, c) == dnnl_success;
  dnnl_primitive_desc_destroy(pd);
  return ok;
}

static bool onednn_run(onednn_mm *o) {
  dnnl_exec_arg_t args[3] = {
      {DNNL_ARG_SRC, o->mem[0]}, {DNNL_ARG_WEIGHTS, o->mem[1]}, {DNNL_ARG_DST, o->mem[2]}};
  return dnnl_primitive_execute(o->prim, o->stream, 3, args) == dnnl_success &&
         dnnl_stream_wait(o->stream) == dnnl_success;
}

static void onednn_free(onednn_mm *o) {
  for (int i = 0; i < 3; i++)
    dnnl_memory_destroy(o->mem[i]);
  dnnl_primitive_destroy(o->prim);
  dnnl_stream_destroy(o->stream);
  dnnl_engine_destroy(o->engine);
}

static const char *kernel_of(const vz_tensor *a, const vz_tensor *w) {
  const char *name = vz_cpu_linear_kernel_name(a, w);
  return name ? name : "?";
}

static json_object *maybe_double(bool have, double v) {
  return have ? json_object_new_double(v) : NULL;
}

/* Times every variant on one shape; prints its JSON line. */
/* The f32 matmul on an OpenCL backend: operands uploaded once, the output
 * made by a first (warm-up, kernel-building) call. */
typedef struct device_mm {
  vz_backend *be;
  vz_tensor *a, *w, *out;
} device_mm;

static bool device_init(device_mm *d, vz_backend *be, long m, long n, long k, const float *a,
                        const float *w) {
  memset(d, 0, sizeof *d);
  if (!be)
    return true;
  d->be = be;
  int64_t as[2] = {m, k}, ws[2] = {n, k};
  return vz_tensor_from_host(be, VZ_F32, 2, as, a, (size_t)(m * k) * 4, &d->a) == VZ_OK &&
         vz_tensor_from_host(be, VZ_F32, 2, ws, w, (size_t)(n * k) * 4, &d->w) == VZ_OK &&
         vz_matmul(d->a, d->w, false, true, &d->out) == VZ_OK &&
         vz_backend_synchronize(be) == VZ_OK;
}

static bool device_run(device_mm *d) {
  return vz_matmul(d->a, d->w, false, true, &d->out) == VZ_OK &&
         vz_backend_synchronize(d->be) == VZ_OK;
}

static void device_free(device_mm *d) {
  vz_tensor_free(d->a);
  vz_tensor_free(d->w);
  vz_tensor_free(d->out);
}

/* max |device - cpu| / max |cpu| over the result */
static double device_difference(const device_mm *d, const float *ref, size_t nc) {
  float *got = malloc(nc * sizeof *got);
  double err = -1, scale = 0;
  if (got && vz_tensor_to_host(d->out, got, nc * 4) == VZ_OK) {
    err = 0;
    for (size_t i = 0; i < nc; i++) {
      err = fmax(err, fabs((double)got[i] - ref[i]));
      scale = fmax(scale, fabs(ref[i]));
    }
    err = scale > 0 ? err / scale : err;
  }
  free(got);
  return err;
}

static int run_shape(vz_backend *be, vz_backend *const ocl[2], long m, long n, long k, int rounds,
                     int threads, int copies) {
  size_t na = (size_t)(m * k), nw = (size_t)(n * k), nc = (size_t)(m * n);
  float *a = malloc(na * sizeof *a), *w = malloc(nw * sizeof *w), *c = malloc(nc * sizeof *c);
  uint16_t *wh = malloc(nw * sizeof *wh);
  double *times[VARIANTS];
  for (int v = 0; v < VARIANTS; v++)
    times[v] = calloc((size_t)rounds, sizeof(double));
  if (!a || !w || !c || !wh || !times[VARIANTS - 1]) {
    fprintf(stderr, "bench_gemm: out of memory\n");
    return 1;
  }
  for (size_t i = 0; i < na; i++)
    a[i] = normal();
  for (size_t i = 0; i < nw; i++) {
    w[i] = normal();
    wh[i] = vz_f32_to_bf16(w[i]);
  }
  int64_t as[2] = {m, k}, ws[2] = {n, k};
  vz_tensor *ta = NULL, *out32 = NULL, *out16 = NULL;
  vz_tensor **tw = calloc((size_t)copies, sizeof *tw), **twh = calloc((size_t)copies, sizeof *twh);
  onednn_mm dn;
  device_mm dev[2];
  memset(dev, 0, sizeof dev);
  int rc = 1;
  if (!tw || !twh) {
    fprintf(stderr, "bench_gemm: out of memory\n");
    goto done;
  }
  bool made = vz_tensor_from_host(be, VZ_F32, 2, as, a, na * 4, &ta) == VZ_OK;
  for (int i = 0; i < copies && made; i++)
    made = vz_tensor_from_host(be, VZ_F32, 2, ws, w, nw * 4, &tw[i]) == VZ_OK &&
           vz_tensor_from_host(be, VZ_BF16, 2, ws, wh, nw * 2, &twh[i]) == VZ_OK;
  if (!made || vz_matmul(ta, tw[0], false, true, &out32) != VZ_OK ||
      vz_matmul(ta, twh[0], false, true, &out16) != VZ_OK) {
    fprintf(stderr, "bench_gemm: %s\n", vz_last_error());
    goto done;
  }
  if (!onednn_init(&dn, m, n, k, a, w, c)) {
    fprintf(stderr, "bench_gemm: cannot make oneDNN's f32 matmul primitive\n");
    goto done;
  }
  for (int i = 0; i < 2; i++) {
    if (!device_init(&dev[i], ocl[i], m, n, k, a, w)) {
      fprintf(stderr, "bench_gemm: OpenCL (%s): %s\n", variant_names[V_OPENCL + i],
              vz_last_error());
      goto done_dev;
    }
  }
  omp_set_num_threads(threads); /* oneDNN's primitive runs on this OpenMP runtime */
#ifdef VLZOO_BENCH_OPENBLAS
  const bool have_openblas = true;
  openblas_set_num_threads(threads);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)n, (int)k, 1.0f, a, (int)k, w,
              (int)k, 0.0f, c, (int)n);
  /* OpenBLAS's pthread workers spin for a while after a call; let them sleep
   * before an OpenMP variant runs, so the two never compete for cores. */
  const long openblas_settle_ms = openblas_get_parallel() == 1 ? 150 : 5;
#else
  const bool have_openblas = false;
#endif
  onednn_run(&dn); /* warm-up */
  int rejected = 0;
  for (int r = 0; r < rounds; r++) {
    for (int v = 0; v < VARIANTS; v++) {
      if ((v == V_OPENBLAS && !have_openblas) || (v >= V_OPENCL && !dev[v - V_OPENCL].be))
        continue;
      /* A sample counts when this process had its threads' worth of CPU
       * time while it ran: on a shared machine, one that another process
       * took cores from is taken again (up to MAX_RETRIES times). */
      for (int attempt = 0;; attempt++) {
        if (v == V_OPENBLAS)
          pause_ms(5); /* OpenMP's threads stop spinning */
        double t0 = bench_now_ms(), c0 = cpu_ms();
        bool ok = true;
        switch (v) {
        case V_F32: ok = vz_matmul(ta, tw[r % copies], false, true, &out32) == VZ_OK; break;
        case V_BF16: ok = vz_matmul(ta, twh[r % copies], false, true, &out16) == VZ_OK; break;
        case V_ONEDNN: ok = onednn_run(&dn); break;
        case V_OPENCL:
        case V_CLBLAST: ok = device_run(&dev[v - V_OPENCL]); break;
        case V_OPENBLAS:
#ifdef VLZOO_BENCH_OPENBLAS
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)n, (int)k, 1.0f, a,
                      (int)k, w, (int)k, 0.0f, c, (int)n);
#endif
          break;
        }
        times[v][r] = bench_now_ms() - t0;
        double used = cpu_ms() - c0;
        if (!ok) {
          fprintf(stderr, "bench_gemm: %s failed: %s\n", variant_names[v], vz_last_error());
          goto done_dev;
        }
        if (used >= MIN_CPU_SHARE * times[v][r] * threads || attempt == MAX_RETRIES)
          break;
        rejected++;
      }
    }
#ifdef VLZOO_BENCH_OPENBLAS
    pause_ms(openblas_settle_ms);
#endif
  }
  double flop = 2.0 * (double)m * (double)n * (double)k, gf[VARIANTS];
  for (int v = 0; v < VARIANTS; v++)
    gf[v] = flop / (bench_median(times[v], rounds) * 1e6);

  /* bf16 against f32 on the same N(0,1) data; OpenCL against the CPU */
  float *r32 = malloc(nc * sizeof *r32), *r16 = malloc(nc * sizeof *r16);
  double err2 = 0, ref2 = 0, maxerr = 0, dev_diff[2] = {-1, -1};
  if (r32 && r16 && vz_tensor_to_host(out32, r32, nc * 4) == VZ_OK &&
      vz_tensor_to_host(out16, r16, nc * 4) == VZ_OK) {
    for (size_t i = 0; i < nc; i++) {
      double e = fabs((double)r16[i] - r32[i]);
      err2 += e * e;
      ref2 += (double)r32[i] * r32[i];
      maxerr = e > maxerr ? e : maxerr;
    }
    for (int i = 0; i < 2; i++)
      if (dev[i].be)
        dev_diff[i] = device_difference(&dev[i], r32, nc);
  }
  free(r32);
  free(r16);
  bool have_ocl[2] = {dev[0].be != NULL, dev[1].be != NULL};

  json_object *o = json_object_new_object();
  json_object_object_add(o, "m", json_object_new_int64(m));
  json_object_object_add(o, "n", json_object_new_int64(n));
  json_object_object_add(o, "k", json_object_new_int64(k));
  json_object_object_add(o, "threads", json_object_new_int(threads));
  json_object_object_add(o, "rounds", json_object_new_int(rounds));
  json_object_object_add(o, "rejected_samples", json_object_new_int(rejected));
  json_object_object_add(o, "weight_copies", json_object_new_int(copies));
  json_object_object_add(o, "vlzoo_f32_kernel", json_object_new_string(kernel_of(ta, tw[0])));
  json_object_object_add(o, "vlzoo_bf16_kernel", json_object_new_string(kernel_of(ta, twh[0])));
  json_object_object_add(o, "vlzoo_f32_gflops", json_object_new_double(gf[V_F32]));
  json_object_object_add(o, "vlzoo_bf16_gflops", json_object_new_double(gf[V_BF16]));
  json_object_object_add(o, "onednn_gflops", json_object_new_double(gf[V_ONEDNN]));
  json_object_object_add(o, "openblas_gflops", maybe_double(have_openblas, gf[V_OPENBLAS]));
#ifdef VLZOO_BENCH_OPENBLAS
  static const char *const flavours[] = {"sequential", "pthread", "openmp"};
  int par = openblas_get_parallel();
  json_object_object_add(o, "openblas_threading",
                         json_object_new_string(par >= 0 && par <= 2 ? flavours[par] : "?"));
#else
  json_object_object_add(o, "openblas_threading", NULL);
#endif
  json_object_object_add(o, "vlzoo_f32_vs_onednn",
                         json_object_new_double(gf[V_F32] / gf[V_ONEDNN]));
  json_object_object_add(o, "vlzoo_f32_vs_openblas",
                         maybe_double(have_openblas, gf[V_F32] / gf[V_OPENBLAS]));
  json_object_object_add(o, "vlzoo_bf16_vs_f32", json_object_new_double(gf[V_BF16] / gf[V_F32]));
  json_object_object_add(o, "opencl_gflops", maybe_double(have_ocl[0], gf[V_OPENCL]));
  json_object_object_add(o, "clblast_gflops", maybe_double(have_ocl[1], gf[V_CLBLAST]));
  json_object_object_add(o, "opencl_vs_vlzoo_f32",
                         maybe_double(have_ocl[0], gf[V_OPENCL] / gf[V_F32]));
  json_object_object_add(o, "clblast_vs_vlzoo_f32",
                         maybe_double(have_ocl[1], gf[V_CLBLAST] / gf[V_F32]));
  json_object_object_add(o, "opencl_max_rel_diff", maybe_double(have_ocl[0], dev_diff[0]));
  json_object_object_add(o, "clblast_max_rel_diff", maybe_double(have_ocl[1], dev_diff[1]));
  json_object_object_add(o, "opencl_device",
                         have_ocl[0] ? json_object_new_string(vz_backend_description(dev[0].be))
                                     : NULL);
  json_object_object_add(o, "bf16_max_rel_err",
                         json_object_new_double(maxerr / sqrt(ref2 / (double)nc)));
  json_object_object_add(o, "bf16_rms_rel_err", json_object_new_double(sqrt(err2 / ref2)));
  printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
  fflush(stdout);
  json_object_put(o);
  rc = 0;
done_dev:
  for (int i = 0; i < 2; i++)
    device_free(&dev[i]);
  onednn_free(&dn);
done:
  vz_tensor_free(ta);
  for (int i = 0; i < copies; i++) {
    vz_tensor_free(tw ? tw[i] : NULL);
    vz_tensor_free(twh ? twh[i] : NULL);
  }
  free(tw);
  free(twh);
  vz_tensor_free(out32);
  vz_tensor_free(out16);
  for (int v = 0; v < VARIANTS; v++)
    free(times[v]);
  free(a);
  free(w);
  free(c);
  free(wh);
  return rc;
}

int main(int argc, char **argv) {
  long m = 0, n = 0, k = 0, rounds = 15, threads = 0, copies = 1;
  bool only = false;
  for (int i = 1; i < argc; i++) {
    const char *opt = argv[i];
    if (strcmp(opt, "--help") == 0 || strcmp(opt, "-h") == 0) {
      usage(stdout);
      return 0;
    }
    if (strcmp(opt, "--only") == 0) {
      only = true;
      continue;
    }
    long *target = strcmp(opt, "--m") == 0               ? &m
                   : strcmp(opt, "--n") == 0             ? &n
                   : strcmp(opt, "--k") == 0             ? &k
                   : strcmp(opt, "--rounds") == 0        ? &rounds
                   : strcmp(opt, "--threads") == 0       ? &threads
                   : strcmp(opt, "--weight-copies") == 0 ? &copies
                                                         : NULL;
    long most = target == &copies ? 256 : 1L << 20;
    if (!target || !bench_parse_count(i + 1 < argc ? argv[i + 1] : NULL, 1, most, target)) {
      fprintf(stderr, "bench_gemm: bad option '%s'\n", opt);
      usage(stderr);
      return 2;
    }
    i++;
  }
  if ((m || n || k) && !(m && n && k)) {
    fprintf(stderr, "bench_gemm: --m, --n and --k go together\n");
    return 2;
  }
  if (threads > 0) {
    bench_export_threads(threads);
  } else {
    const char *env = getenv("VLZOO_THREADS");
    threads = env && *env ? strtol(env, NULL, 10) : 0;
    if (threads < 1)
      threads = omp_get_num_procs();
  }
  vz_backend *be = NULL;
  if (vz_backend_create("cpu", &be) != VZ_OK) {
    fprintf(stderr, "bench_gemm: %s\n", vz_last_error());
    return 1;
  }
  vz_backend *ocl[2] = {opencl_with("own"), opencl_with("clblast")};
  long shapes[4][3] = {{257, 1408, 1408}, {257, 6144, 1408}, {257, 1408, 6144}, {m, n, k}};
  int first = m && only ? 3 : 0, count = m ? 4 : 3, rc = 0;
  for (int s = first; s < count && rc == 0; s++)
    rc = run_shape(be, ocl, shapes[s][0], shapes[s][1], shapes[s][2], (int)rounds, (int)threads,
                   (int)copies);
  vz_backend_free(ocl[0]);
  vz_backend_free(ocl[1]);
  vz_backend_free(be);
  return rc;
}

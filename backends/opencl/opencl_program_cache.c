/* Building the kernel programs, with an on-disk cache of program binaries.
 *
 * Each family's program is the common source (opencl_kernels_common.cl)
 * followed by the family's own, compiled as OpenCL C 1.2 on first use. PoCL
 * takes seconds for that on these machines, so the binary is kept under
 * vz_cl_cache_dir(), named by the SHA-256 of everything that shapes it:
 * a format version, the build options, the platform, device and driver
 * names and versions, and the source text. A stale or corrupt file (a
 * driver update the key missed, a truncated write) fails to load and is
 * rebuilt and replaced; files are written to a temporary name and renamed,
 * so concurrent processes never see half a file. */
#define _POSIX_C_SOURCE 200809L /* mkdir, getpid */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backends/opencl/opencl.h"
#include "backends/opencl/opencl_sources.h"
#include "convert/sha256.h"
#include "ops/log.h"

/* Bump when the cache file's meaning changes. */
#define CACHE_FORMAT "vlzoo-opencl-program-cache-1"

static const char *const family_names[VZ_CL_FAMILY_COUNT] = {
#define VZ_CL_FAMILY_NAME(id, name) name,
    VZ_CL_FAMILIES(VZ_CL_FAMILY_NAME)
#undef VZ_CL_FAMILY_NAME
};

static double seconds(void) {
  struct timespec ts;
  timespec_get(&ts, TIME_UTC);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static const vz_cl_source *find_source(const char *family) {
  for (size_t i = 0; i < vz_cl_source_count; i++)
    if (strcmp(vz_cl_sources[i].family, family) == 0)
      return &vz_cl_sources[i];
  return NULL;
}

void vz_cl_cache_dir(char *out, size_t size) {
  const char *dir = getenv("VLZOO_OPENCL_CACHE");
  out[0] = '\0';
  if (dir && (strcmp(dir, "off") == 0 || strcmp(dir, "0") == 0))
    return;
  if (dir && *dir) {
    snprintf(out, size, "%s", dir);
    return;
  }
  const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
  if (xdg && *xdg)
    snprintf(out, size, "%s/vlzoo/opencl", xdg);
  else if (home && *home)
    snprintf(out, size, "%s/.cache/vlzoo/opencl", home);
}

/* mkdir -p; false when the folder cannot be made. */
static bool make_dirs(const char *path) {
  char buf[1024];
  size_t n = strlen(path);
  if (n == 0 || n >= sizeof buf)
    return false;
  memcpy(buf, path, n + 1);
  for (size_t i = 1; i <= n; i++) {
    if (buf[i] != '/' && buf[i] != '\0')
      continue;
    char saved = buf[i];
    buf[i] = '\0';
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
      return false;
    buf[i] = saved;
  }
  return true;
}

static void hash_field(vz_sha256 *h, const char *text) {
  vz_sha256_update(h, text, strlen(text) + 1); /* the NUL separates fields */
}

static void cache_path(const vz_cl *cl, const char *family, const char *source, size_t size,
                       char *out, size_t out_size) {
  vz_sha256 h;
  vz_sha256_init(&h);
  hash_field(&h, CACHE_FORMAT);
  hash_field(&h, cl->build_options);
  hash_field(&h, cl->platform_name);
  hash_field(&h, cl->platform_version);
  hash_field(&h, cl->device_name);
  hash_field(&h, cl->device_version);
  hash_field(&h, cl->driver_version);
  vz_sha256_update(&h, source, size);
  uint8_t digest[32];
  vz_sha256_final(&h, digest);
  char hex[65];
  for (int i = 0; i < 32; i++)
    snprintf(hex + 2 * i, 3, "%02x", digest[i]);
  snprintf(out, out_size, "%s/%s-%s.bin", cl->cache_dir, family, hex);
}

/* The file's bytes, or NULL when it cannot be read. */
static unsigned char *read_file(const char *path, size_t *size) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  unsigned char *data = NULL;
  long n = -1;
  if (fseek(f, 0, SEEK_END) == 0)
    n = ftell(f);
  if (n > 0 && fseek(f, 0, SEEK_SET) == 0 && (data = malloc((size_t)n)) != NULL &&
      fread(data, 1, (size_t)n, f) != (size_t)n) {
    free(data);
    data = NULL;
  }
  fclose(f);
  *size = n > 0 ? (size_t)n : 0;
  return data;
}

static cl_program load_cached(vz_cl *cl, const char *path) {
  size_t size = 0;
  unsigned char *binary = read_file(path, &size);
  if (!binary)
    return NULL;
  const unsigned char *binaries[1] = {binary};
  cl_int status = CL_SUCCESS, err;
  cl_program p =
      clCreateProgramWithBinary(cl->context, 1, &cl->device, &size, binaries, &status, &err);
  free(binary);
  if (err != CL_SUCCESS || status != CL_SUCCESS)
    return NULL;
  if (clBuildProgram(p, 1, &cl->device, cl->build_options, NULL, NULL) != CL_SUCCESS) {
    clReleaseProgram(p);
    return NULL;
  }
  return p;
}

/* Writes the program's binary to `path` through a temporary file; a cache
 * that cannot be written only costs the next process a compile. */
static void store_cached(vz_cl *cl, cl_program p, const char *path) {
  size_t size = 0;
  if (clGetProgramInfo(p, CL_PROGRAM_BINARY_SIZES, sizeof size, &size, NULL) != CL_SUCCESS ||
      size == 0)
    return;
  unsigned char *binary = malloc(size);
  unsigned char *binaries[1] = {binary};
  if (!binary ||
      clGetProgramInfo(p, CL_PROGRAM_BINARIES, sizeof binaries, binaries, NULL) != CL_SUCCESS) {
    free(binary);
    return;
  }
  char tmp[1200];
  snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
  bool ok = make_dirs(cl->cache_dir);
  FILE *f = ok ? fopen(tmp, "wb") : NULL;
  ok = f && fwrite(binary, 1, size, f) == size;
  if (f)
    ok = fclose(f) == 0 && ok;
  if (ok)
    ok = rename(tmp, path) == 0;
  if (!ok) {
    remove(tmp);
    vz_log(VZ_LOG_INFO, "cannot write the OpenCL program cache file %s", path);
  }
  free(binary);
}

static vz_status build_from_source(vz_cl *cl, const char *family, const char *source, size_t size,
                                   cl_program *out) {
  cl_int err;
  const char *texts[1] = {source};
  cl_program p = clCreateProgramWithSource(cl->context, 1, texts, &size, &err);
  if (err != CL_SUCCESS)
    return vz_cl_fail(err, "clCreateProgramWithSource");
  err = clBuildProgram(p, 1, &cl->device, cl->build_options, NULL, NULL);
  if (err != CL_SUCCESS) {
    char log[4096] = "";
    clGetProgramBuildInfo(p, cl->device, CL_PROGRAM_BUILD_LOG, sizeof log - 1, log, NULL);
    log[sizeof log - 1] = '\0';
    clReleaseProgram(p);
    return vz_fail(VZ_ERR_BACKEND, "building the OpenCL kernels '%s' failed (%s): %s", family,
                   vz_cl_error_name(err), log);
  }
  *out = p;
  return VZ_OK;
}

vz_status vz_cl_program(vz_cl *cl, vz_cl_family family, cl_program *out) {
  if (cl->programs[family]) {
    *out = cl->programs[family];
    return VZ_OK;
  }
  const char *name = family_names[family];
  const vz_cl_source *common = find_source("common"), *own = find_source(name);
  if (!common || !own)
    return vz_fail(VZ_ERR_BACKEND, "no embedded OpenCL source for kernels '%s'", name);
  size_t size = common->size + 1 + own->size;
  char *source = malloc(size + 1);
  if (!source)
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory for OpenCL sources");
  memcpy(source, common->text, common->size);
  source[common->size] = '\n';
  memcpy(source + common->size + 1, own->text, own->size + 1);

  char path[1200] = "";
  cl_program p = NULL;
  double t0 = seconds();
  if (cl->cache_dir[0]) {
    cache_path(cl, name, source, size, path, sizeof path);
    p = load_cached(cl, path);
    if (p)
      vz_log(VZ_LOG_INFO, "OpenCL kernels '%s' loaded from %s in %.2f s", name, path,
             seconds() - t0);
  }
  vz_status st = VZ_OK;
  if (!p) {
    st = build_from_source(cl, name, source, size, &p);
    if (st == VZ_OK)
      vz_log(VZ_LOG_INFO, "OpenCL kernels '%s' built in %.2f s%s%s", name, seconds() - t0,
             path[0] ? ", cached as " : " (no program cache)", path);
    if (st == VZ_OK && path[0])
      store_cached(cl, p, path);
  }
  free(source);
  if (st != VZ_OK)
    return st;
  cl->programs[family] = p;
  *out = p;
  return VZ_OK;
}

/* Platform and device selection: vz_backend_create("opencl:SPEC"), else
 * VLZOO_OPENCL_DEVICE, else the first GPU, else the first device. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CL/cl_ext.h>

#include "backends/opencl/opencl.h"

enum { MAX_PLATFORMS = 16, MAX_DEVICES = 64 };

typedef struct device_entry {
  cl_platform_id platform;
  cl_device_id device;
  int platform_index, device_index; /* within the platform */
  cl_device_type type;
  char platform_name[256], device_name[256];
  char platform_words[512]; /* vendor and version: "The pocl project", "OpenCL 3.0 PoCL 3.1" */
} device_entry;

/* Every device of every platform, in platform order. */
static vz_status list_devices(device_entry *out, int *count) {
  cl_platform_id platforms[MAX_PLATFORMS];
  cl_uint n_platforms = 0;
  cl_int err = clGetPlatformIDs(MAX_PLATFORMS, platforms, &n_platforms);
  if (err == CL_PLATFORM_NOT_FOUND_KHR || (err == CL_SUCCESS && n_platforms == 0))
    return vz_fail(VZ_ERR_UNSUPPORTED, "no OpenCL platform is installed (an ICD such as "
                                       "pocl-opencl-icd provides one)");
  if (err != CL_SUCCESS)
    return vz_cl_fail(err, "clGetPlatformIDs");
  if (n_platforms > MAX_PLATFORMS)
    n_platforms = MAX_PLATFORMS;
  int n = 0;
  for (cl_uint p = 0; p < n_platforms && n < MAX_DEVICES; p++) {
    cl_device_id devices[MAX_DEVICES];
    cl_uint n_devices = 0;
    if (clGetDeviceIDs(platforms[p], CL_DEVICE_TYPE_ALL, MAX_DEVICES, devices, &n_devices) !=
        CL_SUCCESS)
      continue; /* a platform without devices */
    if (n_devices > MAX_DEVICES)
      n_devices = MAX_DEVICES;
    for (cl_uint d = 0; d < n_devices && n < MAX_DEVICES; d++) {
      device_entry *e = &out[n++];
      memset(e, 0, sizeof *e);
      e->platform = platforms[p];
      e->device = devices[d];
      e->platform_index = (int)p;
      e->device_index = (int)d;
      clGetPlatformInfo(platforms[p], CL_PLATFORM_NAME, sizeof e->platform_name, e->platform_name,
                        NULL);
      clGetDeviceInfo(devices[d], CL_DEVICE_NAME, sizeof e->device_name, e->device_name, NULL);
      char vendor[200] = "", version[200] = "";
      clGetPlatformInfo(platforms[p], CL_PLATFORM_VENDOR, sizeof vendor, vendor, NULL);
      clGetPlatformInfo(platforms[p], CL_PLATFORM_VERSION, sizeof version, version, NULL);
      snprintf(e->platform_words, sizeof e->platform_words, "%s %s", vendor, version);
      clGetDeviceInfo(devices[d], CL_DEVICE_TYPE, sizeof e->type, &e->type, NULL);
    }
  }
  *count = n;
  if (n == 0)
    return vz_fail(VZ_ERR_UNSUPPORTED, "the OpenCL platforms here have no device");
  return VZ_OK;
}

static bool contains_nocase(const char *haystack, const char *needle) {
  size_t n = strlen(needle);
  for (const char *h = haystack; *h; h++) {
    size_t i = 0;
    while (i < n && h[i] && tolower((unsigned char)h[i]) == tolower((unsigned char)needle[i]))
      i++;
    if (i == n)
      return true;
  }
  return n == 0;
}

/* A whole decimal number, or -1. */
static long parse_index(const char *s, const char *end) {
  if (s == end)
    return -1;
  long v = 0;
  for (const char *p = s; p < end; p++) {
    if (!isdigit((unsigned char)*p) || v > 100000)
      return -1;
    v = v * 10 + (*p - '0');
  }
  return v;
}

/* The index into list[] of the device spec names, or -1. */
static int match_spec(const device_entry *list, int count, const char *spec) {
  const char *end = spec + strlen(spec), *colon = strchr(spec, ':');
  long index = parse_index(spec, end);
  if (index >= 0)
    return index < count ? (int)index : -1;
  if (colon) {
    long p = parse_index(spec, colon), d = parse_index(colon + 1, end);
    for (int i = 0; p >= 0 && d >= 0 && i < count; i++)
      if (list[i].platform_index == p && list[i].device_index == d)
        return i;
    return -1;
  }
  static const struct {
    const char *word;
    cl_device_type type;
  } types[] = {{"gpu", CL_DEVICE_TYPE_GPU},
               {"cpu", CL_DEVICE_TYPE_CPU},
               {"accelerator", CL_DEVICE_TYPE_ACCELERATOR}};
  for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
    if (strcmp(spec, types[t].word) != 0)
      continue;
    for (int i = 0; i < count; i++)
      if (list[i].type & types[t].type)
        return i;
    return -1;
  }
  for (int i = 0; i < count; i++)
    if (contains_nocase(list[i].device_name, spec) ||
        contains_nocase(list[i].platform_name, spec) ||
        contains_nocase(list[i].platform_words, spec))
      return i;
  return -1;
}

static void describe_choices(const device_entry *list, int count, char *buf, size_t size) {
  size_t used = 0;
  buf[0] = '\0';
  for (int i = 0; i < count && used < size; i++)
    used += (size_t)snprintf(buf + used, size - used, "%s%d (%d:%d) %s / %s", i ? "; " : "", i,
                             list[i].platform_index, list[i].device_index, list[i].platform_name,
                             list[i].device_name);
}

vz_status vz_cl_select_device(vz_cl *cl, const char *spec) {
  device_entry list[MAX_DEVICES];
  int count = 0;
  vz_status st = list_devices(list, &count);
  if (st != VZ_OK)
    return st;
  const char *from = "opencl:";
  if (!spec || !*spec) {
    spec = getenv("VLZOO_OPENCL_DEVICE");
    from = "VLZOO_OPENCL_DEVICE=";
  }
  int chosen = 0;
  if (spec && *spec) {
    chosen = match_spec(list, count, spec);
    if (chosen < 0) {
      char choices[1024];
      describe_choices(list, count, choices, sizeof choices);
      return vz_fail(VZ_ERR_NOT_FOUND,
                     "%s%s names no OpenCL device; give an index, PLATFORM:DEVICE, gpu, cpu, "
                     "accelerator or part of a name (devices: %s)",
                     from, spec, choices);
    }
  } else {
    for (int i = count - 1; i >= 0; i--)
      if (list[i].type & CL_DEVICE_TYPE_GPU)
        chosen = i; /* the first GPU */
  }
  const device_entry *e = &list[chosen];
  cl->platform = e->platform;
  cl->device = e->device;
  cl->is_cpu = (e->type & CL_DEVICE_TYPE_CPU) != 0;
  snprintf(cl->device_name, sizeof cl->device_name, "%s", e->device_name);
  snprintf(cl->platform_name, sizeof cl->platform_name, "%s", e->platform_name);
  clGetDeviceInfo(e->device, CL_DEVICE_VERSION, sizeof cl->device_version, cl->device_version,
                  NULL);
  clGetDeviceInfo(e->device, CL_DRIVER_VERSION, sizeof cl->driver_version, cl->driver_version,
                  NULL);
  clGetPlatformInfo(e->platform, CL_PLATFORM_VERSION, sizeof cl->platform_version,
                    cl->platform_version, NULL);
  clGetDeviceInfo(e->device, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof cl->max_alloc, &cl->max_alloc,
                  NULL);
  clGetDeviceInfo(e->device, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof cl->max_work_group,
                  &cl->max_work_group, NULL);
  size_t ext_size = 0;
  clGetDeviceInfo(e->device, CL_DEVICE_EXTENSIONS, 0, NULL, &ext_size);
  char *ext = malloc(ext_size + 1);
  if (!ext)
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory for the device's extension list");
  ext[0] = '\0';
  clGetDeviceInfo(e->device, CL_DEVICE_EXTENSIONS, ext_size, ext, NULL);
  ext[ext_size] = '\0';
  cl->has_fp64 = strstr(ext, "cl_khr_fp64") != NULL;
  cl->has_fp16 = strstr(ext, "cl_khr_fp16") != NULL;
  free(ext);
  return VZ_OK;
}

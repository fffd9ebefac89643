/* The backends compiled into the library. Adding a backend means adding its
 * interface here, one line, and its folder under backends/. */
#include <string.h>
#include <threads.h>

#include "ops/internal.h"

extern const vz_backend_iface vz_cpu_backend;
#ifdef VLZOO_HAVE_OPENCL
extern const vz_backend_iface vz_opencl_backend;
#endif

static const vz_backend_iface *const registry[] = {
    &vz_cpu_backend,
#ifdef VLZOO_HAVE_OPENCL
    &vz_opencl_backend,
#endif
};

enum { REGISTRY_SIZE = sizeof registry / sizeof registry[0] };

static const char *registry_names[REGISTRY_SIZE + 1];
static once_flag registry_names_once = ONCE_FLAG_INIT;

static void fill_registry_names(void) {
  for (int i = 0; i < REGISTRY_SIZE; i++)
    registry_names[i] = registry[i]->name;
}

const vz_backend_iface *vz_backend_find(const char *name) {
  for (int i = 0; i < REGISTRY_SIZE; i++)
    if (strcmp(registry[i]->name, name) == 0)
      return registry[i];
  return NULL;
}

const char *const *vz_backend_names(void) {
  call_once(&registry_names_once, fill_registry_names);
  return registry_names;
}

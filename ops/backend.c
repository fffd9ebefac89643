/* Backend instances: creation by name, and the calls users make on them. */
#include <stdlib.h>
#include <string.h>

#include "ops/internal.h"

vz_status vz_backend_create(const char *name, vz_backend **out) {
  if (!out)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "backend_create: NULL output");
  *out = NULL;
  if (!name || !*name)
    name = getenv("VLZOO_DEVICE");
  if (!name || !*name)
    name = "cpu";
  const vz_backend_iface *iface = vz_backend_find(name);
  if (!iface) {
    char known[256] = "";
    for (const char *const *n = vz_backend_names(); *n; n++) {
      strncat(known, " ", sizeof known - strlen(known) - 1);
      strncat(known, *n, sizeof known - strlen(known) - 1);
    }
    return vz_fail(VZ_ERR_NOT_FOUND, "no backend named '%s' in this build (available:%s)", name,
                   known);
  }
  vz_backend *be = calloc(1, sizeof *be);
  if (!be)
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory for a backend");
  be->iface = iface;
  vz_status st = iface->create(&be->self);
  if (st != VZ_OK) {
    free(be);
    return vz_fail_context(st, "backend '%s': ", name);
  }
  *out = be;
  return VZ_OK;
}

void vz_backend_free(vz_backend *be) {
  if (!be)
    return;
  be->iface->synchronize(be->self);
  be->iface->destroy(be->self);
  vz_backend_free(be->fallback);
  free(be);
}

const char *vz_backend_name(const vz_backend *be) { return be ? be->iface->name : "(none)"; }

const char *vz_backend_description(const vz_backend *be) {
  return be ? be->iface->describe(be->self) : "(none)";
}

vz_status vz_backend_synchronize(vz_backend *be) {
  if (!be)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "synchronize: NULL backend");
  return be->iface->synchronize(be->self);
}

bool vz_backend_supports(const vz_backend *be, const vz_op_call *call) {
  return be && call && (unsigned)call->op < VZ_OP_COUNT && be->iface->supports(be->self, call);
}

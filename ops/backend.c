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
  /* "name:device" picks one of the backend's devices. */
  char base[64];
  const char *colon = strchr(name, ':'), *device = NULL;
  size_t base_len = colon ? (size_t)(colon - name) : strlen(name);
  if (base_len >= sizeof base)
    return vz_fail(VZ_ERR_NOT_FOUND, "no backend named '%s' in this build", name);
  memcpy(base, name, base_len);
  base[base_len] = '\0';
  if (colon && colon[1])
    device = colon + 1;
  const vz_backend_iface *iface = vz_backend_find(base);
  if (!iface) {
    char known[256] = "";
    for (const char *const *n = vz_backend_names(); *n; n++) {
      strncat(known, " ", sizeof known - strlen(known) - 1);
      strncat(known, *n, sizeof known - strlen(known) - 1);
    }
    return vz_fail(VZ_ERR_NOT_FOUND, "no backend named '%s' in this build (available:%s)", base,
                   known);
  }
  vz_backend *be = calloc(1, sizeof *be);
  if (!be)
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory for a backend");
  be->iface = iface;
  vz_status st = iface->create(device, &be->self);
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

bool vz_backend_wraps_host_memory(const vz_backend *be) {
  return be && be->iface->buffer_wrap && be->iface->buffer_unwrap;
}

vz_status vz_backend_upload(vz_backend *be, void *handle, size_t offset, const void *src,
                            size_t bytes) {
  be->transfers.uploads++;
  be->transfers.upload_bytes += bytes;
  return be->iface->buffer_write(be->self, handle, offset, src, bytes);
}

vz_status vz_backend_download(vz_backend *be, void *handle, size_t offset, void *dst,
                              size_t bytes) {
  be->transfers.downloads++;
  be->transfers.download_bytes += bytes;
  return be->iface->buffer_read(be->self, handle, offset, dst, bytes);
}

vz_transfer_counts vz_backend_transfers(const vz_backend *be) {
  return be ? be->transfers : (vz_transfer_counts){0};
}

void vz_backend_reset_transfers(vz_backend *be) {
  if (be)
    be->transfers = (vz_transfer_counts){0};
}

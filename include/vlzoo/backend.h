/* Backends: where tensors live and ops run. Users create one by name; a new
 * device is added by implementing vz_backend_iface below in a folder under
 * backends/ and adding one line to the registry (backends/registry.c). See
 * docs/backends.md. */
#ifndef VLZOO_BACKEND_H
#define VLZOO_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vlzoo/ops.h"
#include "vlzoo/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vz_backend vz_backend;

/* Creates a backend instance. `name` is a registered backend ("cpu",
 * "opencl"), optionally followed by ":DEVICE" to pick one of its devices
 * ("opencl:1", "opencl:pocl"; see the backend's documentation for what
 * DEVICE may be), or NULL for the VLZOO_DEVICE environment variable, itself
 * defaulting to "cpu". Without ":DEVICE" a backend may read its own
 * variable (the OpenCL backend: VLZOO_OPENCL_DEVICE). An instance is used
 * by one thread at a time; two instances are independent. */
vz_status vz_backend_create(const char *name, vz_backend **out);

/* Waits for queued work and frees the instance. Tensors on it must be freed
 * first. NULL is ignored. */
void vz_backend_free(vz_backend *backend);

const char *vz_backend_name(const vz_backend *backend);

/* A one-line description of the device and its settings, e.g. the CPU's
 * thread count and instruction set. */
const char *vz_backend_description(const vz_backend *backend);

/* Waits until every queued op of the backend has finished. */
vz_status vz_backend_synchronize(vz_backend *backend);

/* Whether the backend runs the call natively; when it does not, the
 * dispatcher runs it on the CPU and copies the results back. */
bool vz_backend_supports(const vz_backend *backend, const vz_op_call *call);

/* Whether vz_tensor_wrap_host uses host memory in place on this backend
 * (the CPU) rather than copying it. */
bool vz_backend_wraps_host_memory(const vz_backend *backend);

/* Names of the backends compiled into this library, NULL-terminated. */
const char *const *vz_backend_names(void);

/* Copies between host memory and a backend's buffers, counted since the
 * backend was made or last reset: tensor uploads (vz_tensor_from_host,
 * vz_tensor_write, zeros written from the host) and downloads
 * (vz_tensor_to_host), including those the dispatcher makes when it runs
 * an op on the CPU for a backend that lacks it. Ops a device runs natively
 * move nothing, so a model whose every op runs on the device shows only
 * its inputs going up and its outputs coming back. On the CPU backend the
 * counts are of memory copies. */
typedef struct vz_transfer_counts {
  uint64_t uploads, upload_bytes;     /* host -> backend */
  uint64_t downloads, download_bytes; /* backend -> host */
} vz_transfer_counts;

vz_transfer_counts vz_backend_transfers(const vz_backend *backend);
void vz_backend_reset_transfers(vz_backend *backend);

/* ---- For backend implementers ---- */

/* The table a backend fills. Every member is required unless marked
 * optional. `self` is the state returned by create. */
typedef struct vz_backend_iface {
  const char *name;

  /* Makes the backend's state; fails cleanly (VZ_ERR_UNSUPPORTED or
   * VZ_ERR_BACKEND) when the device is absent. `device` is the text after
   * "name:" in vz_backend_create, or NULL when none was given. */
  vz_status (*create)(const char *device, void **self);
  /* Frees the state after all its buffers are gone. */
  void (*destroy)(void *self);
  /* Text for vz_backend_description; owned by the state. */
  const char *(*describe)(void *self);

  /* Device memory of `bytes` bytes. *host_ptr receives a host address for
   * the memory when the device shares host memory, else NULL. */
  vz_status (*buffer_alloc)(void *self, size_t bytes, void **handle, void **host_ptr);
  void (*buffer_free)(void *self, void *handle);
  vz_status (*buffer_write)(void *self, void *handle, size_t offset, const void *src, size_t bytes);
  vz_status (*buffer_read)(void *self, void *handle, size_t offset, void *dst, size_t bytes);
  /* (optional, both or neither) Uses `bytes` of host memory at `host` as a
   * buffer without copying: for backends that read host memory in place
   * (the CPU). The memory stays valid and unchanged until buffer_unwrap;
   * ops only read it (vz_tensor_wrap_host's tensors are read-only). When
   * absent, wrapped memory is copied into a buffer_alloc'd one. */
  vz_status (*buffer_wrap)(void *self, const void *host, size_t bytes, void **handle);
  void (*buffer_unwrap)(void *self, void *handle);
  /* (optional) Fills bytes with zero; the dispatcher writes zeros from the
   * host when absent. */
  vz_status (*buffer_clear)(void *self, void *handle, size_t offset, size_t bytes);

  /* Whether `run` handles this call (op, dtypes, strides of the inputs). */
  bool (*supports)(void *self, const vz_op_call *call);
  /* Runs (or queues) a validated call whose outputs are allocated. */
  vz_status (*run)(void *self, const vz_op_call *call);
  /* Waits for everything queued. */
  vz_status (*synchronize)(void *self);
} vz_backend_iface;

#ifdef __cplusplus
}
#endif
#endif

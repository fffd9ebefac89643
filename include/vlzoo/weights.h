/* Weight sources: one interface over every checkpoint format vlzoo reads
 * (safetensors and sharded safetensors, PyTorch zip and legacy files, sharded
 * pytorch_model*.bin, MindSpore .ckpt), and writers for .ckpt and
 * safetensors. Opening a file never executes anything from it. */
#ifndef VLZOO_WEIGHTS_H
#define VLZOO_WEIGHTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vlzoo/dtype.h"
#include "vlzoo/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VZ_WEIGHT_MAX_DIMS 8

typedef struct vz_weights vz_weights;

typedef struct vz_weight_info {
  const char *name; /* owned by the source */
  vz_dtype dtype;
  int ndim;
  int64_t shape[VZ_WEIGHT_MAX_DIMS];
  size_t nbytes; /* numel * element size */
} vz_weight_info;

/* Opens a checkpoint: a file in any supported format (detected from its
 * bytes, not its name), a *.index.json of shards, or a directory holding
 * model.safetensors[.index.json] or pytorch_model.bin[.index.json]. Files
 * are memory-mapped; *out is closed with vz_weights_close. */
vz_status vz_weights_open(const char *path, vz_weights **out);

/* Adds an owner to w and returns it: each owner closes it once, and the
 * last close unmaps the files and frees w. A model whose tensors use the
 * weights' bytes in place (vz_tensor_wrap_host) holds one per tensor, so
 * the caller may close its own reference as soon as the model is loaded.
 * Owners may close from different threads. */
vz_weights *vz_weights_retain(vz_weights *w);
void vz_weights_close(vz_weights *w);

/* "safetensors", "torch-zip", "torch-legacy", "mindspore-ckpt" (the first
 * file's format for a sharded source). */
const char *vz_weights_format(const vz_weights *w);
/* A value of the file's metadata (safetensors' "__metadata__" string map;
 * other formats have none), or NULL when the key is absent. Valid until
 * vz_weights_close. */
const char *vz_weights_metadata(const vz_weights *w, const char *key);

size_t vz_weights_count(const vz_weights *w);
/* The i-th tensor, in file order; NULL when i is out of range. */
const vz_weight_info *vz_weights_info(const vz_weights *w, size_t i);
/* Index of the tensor named `name`; VZ_ERR_NOT_FOUND when absent. */
vz_status vz_weights_find(const vz_weights *w, const char *name, size_t *index);

/* The tensor's elements, contiguous, row-major, little-endian. Points into
 * the mapped file when its layout already is that (zero-copy); otherwise
 * the bytes are assembled once (strided views, sliced .ckpt tensors, other
 * byte orders) and kept until close. Valid, read-only, until
 * vz_weights_release(w, i) or the last close. */
vz_status vz_weights_data(vz_weights *w, size_t i, const void **data, size_t *nbytes);

/* Whether vz_weights_data gives tensor i's bytes where they lie in the
 * mapped file (true), rather than as an assembled copy or not at all. Such
 * bytes may be lent to tensors (vz_tensor_wrap_host) for as long as the
 * borrower holds an owner of w (vz_weights_retain); an assembled copy is
 * freed by vz_weights_release. */
bool vz_weights_mapped(const vz_weights *w, size_t i);

/* Says that tensor i's bytes are no longer needed (a model copied them):
 * an assembled copy is freed, and mapped pages are dropped from this
 * process's memory (they stay in the page cache, so reading the tensor
 * again still works, only slower). Keeps a model's peak memory near its
 * weights' size while it loads. */
void vz_weights_release(vz_weights *w, size_t i);

/* ---- Writers ---- */

typedef struct vz_weights_writer vz_weights_writer;

typedef enum vz_weights_file_format {
  VZ_FORMAT_MINDSPORE_CKPT,
  VZ_FORMAT_SAFETENSORS,
} vz_weights_file_format;

/* Starts a file at `path`. Nothing appears at `path` until commit succeeds:
 * the data goes to a temporary name in the same directory first. */
vz_status vz_weights_writer_open(const char *path, vz_weights_file_format format,
                                 vz_weights_writer **out);
/* Adds one tensor. `data` (contiguous, little-endian) must stay valid until
 * commit or abort; names must be unique. */
vz_status vz_weights_writer_add(vz_weights_writer *wr, const char *name, vz_dtype dtype, int ndim,
                                const int64_t *shape, const void *data, size_t nbytes);
/* Sets one metadata string (safetensors' "__metadata__"; a key set twice
 * keeps the last value). A MindSpore .ckpt has no place for metadata:
 * VZ_ERR_UNSUPPORTED. */
vz_status vz_weights_writer_set_metadata(vz_weights_writer *wr, const char *key, const char *value);
/* Writes everything, flushes and renames into place, then frees the writer
 * (also on failure, which removes the temporary file). */
vz_status vz_weights_writer_commit(vz_weights_writer *wr);
/* Discards everything written and frees the writer. NULL is ignored. */
void vz_weights_writer_abort(vz_weights_writer *wr);

#ifdef __cplusplus
}
#endif
#endif

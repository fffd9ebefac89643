/* What a format reader produces: a list of tensors, each described by where
 * its bytes lie in a mapped file. convert/weights.c owns mapping, lookup and
 * assembling; readers only parse and validate. */
#ifndef VLZOO_CONVERT_SOURCE_H
#define VLZOO_CONVERT_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ops/internal.h"
#include "vlzoo/weights.h"

/* One contiguous run of bytes inside a mapped file. */
typedef struct vz_source_piece {
  const uint8_t *bytes;
  size_t nbytes;
} vz_source_piece;

typedef struct vz_source_tensor {
  vz_weight_info info; /* info.name is malloc'd, freed by the source */
  /* Either a strided view of one storage ... */
  const uint8_t *storage;             /* element 0 of the storage */
  size_t storage_bytes;               /* the storage's size, for bounds checks */
  int64_t offset;                     /* in elements */
  int64_t stride[VZ_WEIGHT_MAX_DIMS]; /* in elements */
  /* ... or, when n_pieces > 0, the concatenation of pieces (.ckpt slices). */
  vz_source_piece *pieces; /* malloc'd */
  size_t n_pieces;
  bool big_endian;
  void *assembled; /* filled on first vz_weights_data when needed */
} vz_source_tensor;

/* A read-only file mapping. */
typedef struct vz_mapped_file {
  char *path;
  const uint8_t *bytes;
  size_t size;
} vz_mapped_file;

/* A string pair from a file's metadata (safetensors' "__metadata__"). */
typedef struct vz_metadata_entry {
  char *key, *value;
} vz_metadata_entry;

typedef struct vz_source_list {
  vz_source_tensor *items;
  size_t count, capacity;
  /* The first file's metadata; later files' (other shards) is ignored. */
  vz_metadata_entry *metadata;
  size_t n_metadata;
} vz_source_list;

/* Appends a tensor (copies *t, takes ownership of its name and pieces). */
vz_status vz_source_list_push(vz_source_list *list, const vz_source_tensor *t);

/* Sets info.nbytes from dtype and shape, failing on overflow, negative
 * sizes or too many dimensions; `where` names the tensor in messages. */
vz_status vz_source_tensor_size(vz_source_tensor *t);

/* Checks that a strided view stays inside its storage (overflow-safe). */
vz_status vz_source_tensor_check_bounds(const vz_source_tensor *t);

/* Format readers: parse a whole mapped file and append its tensors. Each
 * validates every count, length and offset against the file's size before
 * use and fails with VZ_ERR_FORMAT naming the problem; on failure the list
 * is left as it was. */
vz_status vz_read_safetensors(const vz_mapped_file *f, vz_source_list *out);
vz_status vz_read_torch_zip(const vz_mapped_file *f, vz_source_list *out);
vz_status vz_read_torch_legacy(const vz_mapped_file *f, vz_source_list *out);
vz_status vz_read_mindspore_ckpt(const vz_mapped_file *f, vz_source_list *out);

/* Writers: serialize entries to an open stdio stream. */
typedef struct vz_writer_entry {
  char *name;
  vz_dtype dtype;
  int ndim;
  int64_t shape[VZ_WEIGHT_MAX_DIMS];
  const void *data;
  size_t nbytes;
} vz_writer_entry;

#include <stdio.h>

/* Where the format allows, the writers start tensor data on a boundary of
 * this many bytes of the file (so of the mapping), for models that use it
 * in place: safetensors' data section, each .ckpt tensor_content. */
#define VZ_WEIGHTS_ALIGNMENT 64

vz_status vz_write_safetensors(FILE *f, const vz_writer_entry *entries, size_t n,
                               const vz_metadata_entry *metadata, size_t n_metadata);
vz_status vz_write_mindspore_ckpt(FILE *f, const vz_writer_entry *entries, size_t n);

/* ---- Helpers shared by the readers, the writers and the tests ---- */

/* Frees every tensor's name, pieces and assembled copy, then the array, and
 * the metadata; leaves an empty list. */
void vz_source_list_free(vz_source_list *list);
/* Frees the tensors from index `count` on and shortens the list to it; a
 * reader that fails calls this so the list is left as it was. */
void vz_source_list_truncate(vz_source_list *list, size_t count);
/* Frees the list's metadata. */
void vz_source_list_clear_metadata(vz_source_list *list);

/* Wraps tensors already listed (no files behind them) as a vz_weights, for
 * tests and fuzzers; takes the list's contents, leaving it empty, also on
 * failure. vz_weights_format says "memory". */
vz_status vz_weights_from_list(vz_source_list *list, vz_weights **out);

/* Sets t->stride to the row-major strides of t->info.shape. */
void vz_source_contiguous_strides(vz_source_tensor *t);

/* zlib's CRC-32 (as Python's binascii.crc32); start with crc = 0. */
uint32_t vz_crc32(uint32_t crc, const void *data, size_t n);

/* Largest tensor_content the .ckpt writer puts in one Value before it
 * splits a tensor into slices under the same tag: 512 MiB, as MindSpore's
 * _write_parameter_bytes_data. Tests lower it to exercise slicing. */
extern size_t vz_ckpt_slice_bytes;

#endif

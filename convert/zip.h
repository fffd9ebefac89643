/* A read-only ZIP reader over a buffer already in memory (a mapped file):
 * the central directory, ZIP64 records and extra fields, and the position of
 * each entry's data. Only stored (uncompressed) entries can be read, which
 * is all torch.save writes. Every size and offset is checked against the
 * buffer with overflow-safe arithmetic when the archive is opened. */
#ifndef VLZOO_CONVERT_ZIP_H
#define VLZOO_CONVERT_ZIP_H

#include <stddef.h>
#include <stdint.h>

#include "vlzoo/status.h"

typedef struct vz_zip_entry {
  const char *name; /* NUL-terminated copy owned by the vz_zip */
  size_t name_len;
  uint16_t method; /* 0 = stored, 8 = deflate, ... */
  uint16_t flags;
  uint32_t crc32;
  uint64_t compressed_size, size;
  uint64_t local_offset; /* of the local header */
  uint64_t data_offset;  /* of the data: local header + 30 + name + extra */
} vz_zip_entry;

typedef struct vz_zip {
  const uint8_t *bytes;
  size_t size;
  vz_zip_entry *entries; /* in central-directory order */
  size_t count;
  const vz_zip_entry **sorted; /* the entries sorted by name, for lookup */
  char *names;                 /* storage for the names */
} vz_zip;

/* Reads the central directory of bytes[0..size). *z is closed with
 * vz_zip_close (also safe after a failed open). Errors are VZ_ERR_FORMAT
 * naming the problem, or VZ_ERR_OUT_OF_MEMORY. */
vz_status vz_zip_open(const uint8_t *bytes, size_t size, vz_zip *z);
void vz_zip_close(vz_zip *z);

/* The entry called `name` (exact bytes), or NULL. */
const vz_zip_entry *vz_zip_find(const vz_zip *z, const char *name);

/* The data of a stored entry; VZ_ERR_UNSUPPORTED naming the entry when it
 * is compressed or encrypted. */
vz_status vz_zip_entry_data(const vz_zip *z, const vz_zip_entry *e, const uint8_t **data,
                            size_t *size);

#endif

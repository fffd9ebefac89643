/* SHA-256 (FIPS 180-4), for checksums of tensor bytes in tests and in
 * `vlzoo inspect --json`. */
#ifndef VLZOO_CONVERT_SHA256_H
#define VLZOO_CONVERT_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct vz_sha256 {
  uint32_t state[8];
  uint64_t length; /* bytes hashed so far */
  uint8_t block[64];
  size_t used; /* bytes waiting in block */
} vz_sha256;

void vz_sha256_init(vz_sha256 *h);
void vz_sha256_update(vz_sha256 *h, const void *data, size_t n);
void vz_sha256_final(vz_sha256 *h, uint8_t digest[32]);

/* One call: the digest of data[0..n) as 64 lowercase hex digits + NUL. */
void vz_sha256_hex(const void *data, size_t n, char hex[65]);

#endif

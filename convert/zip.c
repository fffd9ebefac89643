/* ZIP central-directory reader: see convert/zip.h. Layouts follow PKWARE's
 * APPNOTE (sections 4.3.7 local header, 4.3.12 central header, 4.3.14-16
 * ZIP64 end records, 4.5.3 ZIP64 extra field). */
#include "convert/zip.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/internal.h"

enum {
  LOCAL_SIG = 0x04034b50,
  CENTRAL_SIG = 0x02014b50,
  EOCD_SIG = 0x06054b50,
  ZIP64_EOCD_SIG = 0x06064b50,
  ZIP64_LOCATOR_SIG = 0x07064b50,
  LOCAL_SIZE = 30,
  CENTRAL_SIZE = 46,
  EOCD_SIZE = 22,
  ZIP64_EOCD_SIZE = 56,
  ZIP64_LOCATOR_SIZE = 20,
  MAX_COMMENT = 0xffff,
};

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t rd32(const uint8_t *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static uint64_t rd64(const uint8_t *p) { return rd32(p) | ((uint64_t)rd32(p + 4) << 32); }

/* Whether [off, off + len) lies inside [0, limit), without overflow. */
static bool inside(uint64_t off, uint64_t len, uint64_t limit) {
  return off <= limit && len <= limit - off;
}

/* An entry name for messages: printable ASCII, the rest as '?'. */
static const char *printable(const char *s, size_t n, char *buf, size_t cap) {
  size_t o = 0;
  for (size_t i = 0; i < n && o + 4 < cap; i++) {
    unsigned char c = (unsigned char)s[i];
    buf[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
  }
  if (o + 4 >= cap && o < n) {
    memcpy(buf + o, "...", 3);
    o += 3;
  }
  buf[o] = '\0';
  return buf;
}

void vz_zip_close(vz_zip *z) {
  if (!z) {
    return;
  }
  free(z->entries);
  free(z->sorted);
  free(z->names);
  memset(z, 0, sizeof *z);
}

static int compare_names(const void *a, const void *b) {
  const vz_zip_entry *x = *(const vz_zip_entry *const *)a;
  const vz_zip_entry *y = *(const vz_zip_entry *const *)b;
  size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
  int c = memcmp(x->name, y->name, n);
  if (c) {
    return c;
  }
  return x->name_len < y->name_len ? -1 : x->name_len > y->name_len;
}

/* Finds the end-of-central-directory record: the last signature in the
 * final 64 KiB + 22 bytes whose comment ends inside the file. */
static vz_status find_eocd(const uint8_t *b, size_t size, size_t *pos) {
  if (size < EOCD_SIZE) {
    return vz_fail(VZ_ERR_FORMAT, "zip: %zu bytes is too short for a zip archive", size);
  }
  size_t last = size - EOCD_SIZE;
  size_t first = last > MAX_COMMENT ? last - MAX_COMMENT : 0;
  for (size_t p = last + 1; p-- > first;) {
    if (rd32(b + p) == EOCD_SIG && rd16(b + p + 20) <= size - p - EOCD_SIZE) {
      *pos = p;
      return VZ_OK;
    }
  }
  return vz_fail(VZ_ERR_FORMAT,
                 "zip: no end of central directory record (the file is truncated or not a "
                 "zip archive)");
}

typedef struct directory {
  uint64_t count, cd_size, cd_offset;
  uint64_t end; /* where the directory must end: the first end record */
} directory;

static vz_status read_end_records(const uint8_t *b, size_t size, directory *d) {
  size_t eocd = 0;
  vz_status st = find_eocd(b, size, &eocd);
  if (st) {
    return st;
  }
  const uint8_t *e = b + eocd;
  uint16_t disk = rd16(e + 4), cd_disk = rd16(e + 6);
  uint16_t disk_count = rd16(e + 8), count = rd16(e + 10);
  d->cd_size = rd32(e + 12);
  d->cd_offset = rd32(e + 16);
  d->count = count;
  d->end = eocd;
  bool has_locator =
      eocd >= ZIP64_LOCATOR_SIZE && rd32(b + eocd - ZIP64_LOCATOR_SIZE) == ZIP64_LOCATOR_SIG;
  if (!has_locator) {
    if (disk != 0 || cd_disk != 0 || disk_count != count) {
      return vz_fail(VZ_ERR_FORMAT, "zip: multi-disk archives are not supported");
    }
    if (count == 0xffff || d->cd_size == 0xffffffffu || d->cd_offset == 0xffffffffu) {
      return vz_fail(VZ_ERR_FORMAT,
                     "zip: the end record needs ZIP64 values but there is no ZIP64 locator");
    }
  } else {
    const uint8_t *loc = b + eocd - ZIP64_LOCATOR_SIZE;
    uint64_t rec = rd64(loc + 8);
    uint64_t limit = eocd - ZIP64_LOCATOR_SIZE;
    if (rd32(loc + 4) != 0 || rd32(loc + 16) > 1) {
      return vz_fail(VZ_ERR_FORMAT, "zip: multi-disk archives are not supported");
    }
    if (!inside(rec, ZIP64_EOCD_SIZE, limit)) {
      return vz_fail(VZ_ERR_FORMAT,
                     "zip: ZIP64 end record offset %llu is outside the file (%zu bytes)",
                     (unsigned long long)rec, size);
    }
    const uint8_t *r = b + rec;
    if (rd32(r) != ZIP64_EOCD_SIG) {
      return vz_fail(VZ_ERR_FORMAT, "zip: no ZIP64 end record at offset %llu",
                     (unsigned long long)rec);
    }
    if (rd32(r + 16) != 0 || rd32(r + 20) != 0 || rd64(r + 24) != rd64(r + 32)) {
      return vz_fail(VZ_ERR_FORMAT, "zip: multi-disk archives are not supported");
    }
    d->count = rd64(r + 32);
    d->cd_size = rd64(r + 40);
    d->cd_offset = rd64(r + 48);
    d->end = rec;
  }
  if (d->cd_offset > d->end) {
    return vz_fail(VZ_ERR_FORMAT,
                   "zip: central directory offset %llu is past the end of the file (its end "
                   "record is at %llu)",
                   (unsigned long long)d->cd_offset, (unsigned long long)d->end);
  }
  if (!inside(d->cd_offset, d->cd_size, d->end)) {
    return vz_fail(VZ_ERR_FORMAT,
                   "zip: central directory of %llu bytes at offset %llu runs past its end "
                   "record at %llu",
                   (unsigned long long)d->cd_size, (unsigned long long)d->cd_offset,
                   (unsigned long long)d->end);
  }
  if (d->count > d->cd_size / CENTRAL_SIZE) {
    return vz_fail(VZ_ERR_FORMAT,
                   "zip: %llu entries cannot fit in a central directory of %llu bytes",
                   (unsigned long long)d->count, (unsigned long long)d->cd_size);
  }
  return VZ_OK;
}

/* Applies a ZIP64 extra field (id 1) to the fields saturated in the
 * central header. */
static vz_status read_zip64_extra(const uint8_t *x, size_t len, vz_zip_entry *e, bool *disk_big,
                                  uint32_t *disk, const char *name) {
  size_t p = 0;
  while (len - p >= 4) {
    uint16_t id = rd16(x + p), sz = rd16(x + p + 2);
    p += 4;
    if (sz > len - p) {
      return vz_fail(VZ_ERR_FORMAT, "zip: entry '%s': extra field runs past its header", name);
    }
    if (id == 1) {
      const uint8_t *f = x + p;
      size_t left = sz;
      uint64_t *fields[3] = {&e->size, &e->compressed_size, &e->local_offset};
      for (int i = 0; i < 3; i++) {
        if (*fields[i] == 0xffffffffu) {
          if (left < 8) {
            return vz_fail(VZ_ERR_FORMAT, "zip: entry '%s': ZIP64 extra field too short", name);
          }
          *fields[i] = rd64(f);
          f += 8;
          left -= 8;
        }
      }
      if (*disk_big) {
        if (left < 4) {
          return vz_fail(VZ_ERR_FORMAT, "zip: entry '%s': ZIP64 extra field too short", name);
        }
        *disk = rd32(f);
        *disk_big = false;
      }
    }
    p += sz;
  }
  return VZ_OK;
}

vz_status vz_zip_open(const uint8_t *bytes, size_t size, vz_zip *z) {
  if (!z || (!bytes && size)) {
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "vz_zip_open: NULL argument");
  }
  memset(z, 0, sizeof *z);
  z->bytes = bytes;
  z->size = size;
  directory d;
  vz_status st = read_end_records(bytes, size, &d);
  if (st) {
    return st;
  }
  /* Both bounded by the directory size, which lies inside the file. */
  size_t count = (size_t)d.count;
  z->entries = calloc(count ? count : 1, sizeof *z->entries);
  z->sorted = calloc(count ? count : 1, sizeof *z->sorted);
  z->names = malloc((size_t)d.cd_size + count + 1);
  if (!z->entries || !z->sorted || !z->names) {
    vz_zip_close(z);
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "zip: out of memory for %zu entries", count);
  }
  const uint8_t *cd = bytes + d.cd_offset;
  size_t cd_size = (size_t)d.cd_size, p = 0, names_used = 0;
  char shown[128];
  for (size_t i = 0; i < count; i++) {
    if (cd_size - p < CENTRAL_SIZE || rd32(cd + p) != CENTRAL_SIG) {
      st = vz_fail(VZ_ERR_FORMAT, "zip: central directory entry %zu of %zu is malformed", i, count);
      break;
    }
    const uint8_t *h = cd + p;
    size_t name_len = rd16(h + 28), extra_len = rd16(h + 30), comment_len = rd16(h + 32);
    if (name_len + extra_len + comment_len > cd_size - p - CENTRAL_SIZE) {
      st = vz_fail(VZ_ERR_FORMAT, "zip: central directory entry %zu runs past the directory", i);
      break;
    }
    vz_zip_entry *e = &z->entries[i];
    char *name = z->names + names_used;
    memcpy(name, h + CENTRAL_SIZE, name_len);
    name[name_len] = '\0';
    names_used += name_len + 1;
    e->name = name;
    e->name_len = name_len;
    printable(name, name_len, shown, sizeof shown);
    e->flags = rd16(h + 8);
    e->method = rd16(h + 10);
    e->crc32 = rd32(h + 16);
    e->compressed_size = rd32(h + 20);
    e->size = rd32(h + 24);
    e->local_offset = rd32(h + 42);
    uint32_t disk = rd16(h + 34);
    bool disk_big = disk == 0xffff;
    st = read_zip64_extra(h + CENTRAL_SIZE + name_len, extra_len, e, &disk_big, &disk, shown);
    if (st) {
      break;
    }
    if (disk != 0 && !disk_big) {
      st = vz_fail(VZ_ERR_FORMAT, "zip: entry '%s' is on disk %u (multi-disk archive)", shown,
                   (unsigned)disk);
      break;
    }
    /* The local header, whose own name and extra lengths place the data. */
    if (!inside(e->local_offset, LOCAL_SIZE, d.cd_offset)) {
      st = vz_fail(VZ_ERR_FORMAT,
                   "zip: entry '%s': local header offset %llu is outside the data area "
                   "(%llu bytes)",
                   shown, (unsigned long long)e->local_offset, (unsigned long long)d.cd_offset);
      break;
    }
    const uint8_t *l = bytes + e->local_offset;
    if (rd32(l) != LOCAL_SIG) {
      st = vz_fail(VZ_ERR_FORMAT, "zip: entry '%s': no local header at offset %llu", shown,
                   (unsigned long long)e->local_offset);
      break;
    }
    uint64_t lname = rd16(l + 26), lextra = rd16(l + 28);
    e->data_offset = e->local_offset + LOCAL_SIZE + lname + lextra;
    if (!inside(e->local_offset + LOCAL_SIZE, lname + lextra, d.cd_offset) ||
        !inside(e->data_offset, e->compressed_size, d.cd_offset)) {
      st = vz_fail(VZ_ERR_FORMAT,
                   "zip: entry '%s': %llu bytes of data at offset %llu run past the data area "
                   "(%llu bytes; the archive may be truncated)",
                   shown, (unsigned long long)e->compressed_size,
                   (unsigned long long)e->data_offset, (unsigned long long)d.cd_offset);
      break;
    }
    if (lname != name_len || memcmp(l + LOCAL_SIZE, name, name_len) != 0) {
      st =
          vz_fail(VZ_ERR_FORMAT, "zip: entry '%s': the local header names a different file", shown);
      break;
    }
    if (e->method == 0 && e->size != e->compressed_size) {
      st = vz_fail(VZ_ERR_FORMAT,
                   "zip: stored entry '%s' has %llu bytes but claims %llu uncompressed", shown,
                   (unsigned long long)e->compressed_size, (unsigned long long)e->size);
      break;
    }
    z->sorted[i] = e;
    p += CENTRAL_SIZE + name_len + extra_len + comment_len;
  }
  if (st) {
    vz_zip_close(z);
    return st;
  }
  z->count = count;
  qsort(z->sorted, count, sizeof *z->sorted, compare_names);
  for (size_t i = 1; i < count; i++) {
    if (compare_names(&z->sorted[i - 1], &z->sorted[i]) == 0) {
      printable(z->sorted[i]->name, z->sorted[i]->name_len, shown, sizeof shown);
      vz_zip_close(z);
      return vz_fail(VZ_ERR_FORMAT, "zip: two entries are named '%s'", shown);
    }
  }
  return VZ_OK;
}

const vz_zip_entry *vz_zip_find(const vz_zip *z, const char *name) {
  if (!z || !name) {
    return NULL;
  }
  vz_zip_entry key;
  memset(&key, 0, sizeof key);
  key.name = name;
  key.name_len = strlen(name);
  const vz_zip_entry *kp = &key;
  const vz_zip_entry **hit = bsearch(&kp, z->sorted, z->count, sizeof *z->sorted, compare_names);
  return hit ? *hit : NULL;
}

vz_status vz_zip_entry_data(const vz_zip *z, const vz_zip_entry *e, const uint8_t **data,
                            size_t *size) {
  char shown[128];
  printable(e->name, e->name_len, shown, sizeof shown);
  if (e->flags & 1) {
    return vz_fail(VZ_ERR_UNSUPPORTED, "zip: entry '%s' is encrypted", shown);
  }
  if (e->method != 0) {
    return vz_fail(VZ_ERR_UNSUPPORTED,
                   "zip: entry '%s' is compressed (method %u); only stored entries are supported",
                   shown, (unsigned)e->method);
  }
  /* Checked at open: data_offset + size lies inside the buffer. */
  *data = z->bytes + e->data_offset;
  *size = (size_t)e->compressed_size;
  return VZ_OK;
}

/* Status codes and the per-thread last error message. */
#ifndef VLZOO_STATUS_H
#define VLZOO_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum vz_status {
  VZ_OK = 0,
  VZ_ERR_INVALID_ARGUMENT, /* a NULL, an out-of-range attribute, a bad option */
  VZ_ERR_SHAPE,            /* shapes that do not fit the operation */
  VZ_ERR_DTYPE,            /* a dtype the operation does not take */
  VZ_ERR_OUT_OF_MEMORY,
  VZ_ERR_UNSUPPORTED, /* valid, but not implemented on this backend or CPU */
  VZ_ERR_IO,
  VZ_ERR_FORMAT,  /* a file or string that does not parse */
  VZ_ERR_BACKEND, /* a device or library reported a failure */
  VZ_ERR_NOT_FOUND,
} vz_status;

/* A fixed name for the code, e.g. "shape error". Never NULL. */
const char *vz_status_string(vz_status status);

/* The message of the last failure on the calling thread ("" when none). The
 * text stays valid until the next failing vlzoo call on the same thread. */
const char *vz_last_error(void);

/* Forget the calling thread's last error message. */
void vz_clear_error(void);

#ifdef __cplusplus
}
#endif
#endif

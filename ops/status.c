/* Status names and the per-thread last error message. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ops/internal.h"

enum { MESSAGE_CAPACITY = 1024 };

/* Thread-local, like errno: two threads never see each other's failures. */
static _Thread_local char last_message[MESSAGE_CAPACITY];

const char *vz_status_string(vz_status status) {
  switch (status) {
  case VZ_OK: return "ok";
  case VZ_ERR_INVALID_ARGUMENT: return "invalid argument";
  case VZ_ERR_SHAPE: return "shape error";
  case VZ_ERR_DTYPE: return "dtype error";
  case VZ_ERR_OUT_OF_MEMORY: return "out of memory";
  case VZ_ERR_UNSUPPORTED: return "unsupported";
  case VZ_ERR_IO: return "I/O error";
  case VZ_ERR_FORMAT: return "format error";
  case VZ_ERR_BACKEND: return "backend error";
  case VZ_ERR_NOT_FOUND: return "not found";
  }
  return "unknown status";
}

const char *vz_last_error(void) { return last_message; }

void vz_clear_error(void) { last_message[0] = '\0'; }

vz_status vz_fail(vz_status status, const char *fmt, ...) {
  va_list args;
  va_start(args, fmt);
  vsnprintf(last_message, sizeof last_message, fmt, args);
  va_end(args);
  return status;
}

vz_status vz_fail_context(vz_status status, const char *fmt, ...) {
  char prefix[256];
  char previous[MESSAGE_CAPACITY];
  va_list args;
  va_start(args, fmt);
  vsnprintf(prefix, sizeof prefix, fmt, args);
  va_end(args);
  memcpy(previous, last_message, sizeof previous);
  size_t used = strlen(prefix);
  if (used >= sizeof last_message)
    used = sizeof last_message - 1;
  memcpy(last_message, prefix, used);
  size_t room = sizeof last_message - 1 - used;
  const char *end = memchr(previous, '\0', room);
  size_t tail = end ? (size_t)(end - previous) : room;
  memcpy(last_message + used, previous, tail);
  last_message[used + tail] = '\0';
  return status;
}

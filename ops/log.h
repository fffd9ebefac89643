/* Diagnostics to stderr, filtered by VLZOO_LOG (debug, info, warn, error,
 * off; default warn). The library's only output channel besides return
 * values: it never writes to stdout. */
#ifndef VLZOO_OPS_LOG_H
#define VLZOO_OPS_LOG_H

#include "ops/internal.h"

typedef enum vz_log_level {
  VZ_LOG_DEBUG,
  VZ_LOG_INFO,
  VZ_LOG_WARN,
  VZ_LOG_ERROR,
  VZ_LOG_OFF
} vz_log_level;

bool vz_log_enabled(vz_log_level level);
void vz_log(vz_log_level level, const char *fmt, ...) VZ_PRINTF(2, 3);

#endif

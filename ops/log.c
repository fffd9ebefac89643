/* Level-filtered diagnostics on stderr. */
#include "ops/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static vz_log_level threshold(void) {
  const char *v = getenv("VLZOO_LOG");
  if (!v || !*v)
    return VZ_LOG_WARN;
  static const char *const names[] = {"debug", "info", "warn", "error", "off"};
  for (int i = 0; i <= VZ_LOG_OFF; i++)
    if (strcmp(v, names[i]) == 0)
      return (vz_log_level)i;
  return VZ_LOG_WARN;
}

bool vz_log_enabled(vz_log_level level) { return level >= threshold(); }

void vz_log(vz_log_level level, const char *fmt, ...) {
  if (!vz_log_enabled(level))
    return;
  static const char *const tags[] = {"debug", "info", "warning", "error", ""};
  va_list args;
  va_start(args, fmt);
  fprintf(stderr, "vlzoo %s: ", tags[level]);
  vfprintf(stderr, fmt, args);
  fputc('\n', stderr);
  va_end(args);
}

/* Close-name suggestions for unknown model names, config keys and such. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "ops/internal.h"

enum { MAX_NAME = 128, MAX_CANDIDATES = 1024 };

/* Case-insensitive Levenshtein distance; SIZE_MAX for very long names. */
static size_t edit_distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  if (la > MAX_NAME || lb > MAX_NAME)
    return (size_t)-1;
  size_t row[MAX_NAME + 1];
  for (size_t j = 0; j <= lb; j++)
    row[j] = j;
  for (size_t i = 1; i <= la; i++) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= lb; j++) {
      size_t up = row[j];
      size_t best = diag + (tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]));
      if (up + 1 < best)
        best = up + 1;
      if (row[j - 1] + 1 < best)
        best = row[j - 1] + 1;
      row[j] = best;
      diag = up;
    }
  }
  return row[lb];
}

const char *vz_closest_names(const char *name, const char *const *candidates, size_t n,
                             int max_shown, char *buf, size_t size) {
  if (!buf || size == 0)
    return buf;
  buf[0] = '\0';
  if (!name || !candidates)
    return buf;
  if (n > MAX_CANDIDATES)
    n = MAX_CANDIDATES;
  bool shown_flag[MAX_CANDIDATES] = {false};
  size_t limit = strlen(name) / 3 + 2, used = 0;
  int shown = 0;
  /* Pass 0 takes the names that contain `name` or differ only in case,
   * pass d those at distance d. */
  for (size_t pass = 0; pass <= limit && shown < max_shown; pass++)
    for (size_t i = 0; i < n && shown < max_shown; i++) {
      if (shown_flag[i] || !candidates[i] || strcmp(candidates[i], name) == 0)
        continue;
      size_t d = edit_distance(name, candidates[i]);
      bool contains = strlen(name) >= 4 && strstr(candidates[i], name) != NULL;
      if (!(d == pass || (pass == 0 && contains)))
        continue;
      int w = snprintf(buf + used, size - used, "%s%s", shown ? ", " : "", candidates[i]);
      if (w < 0 || (size_t)w >= size - used)
        return buf;
      used += (size_t)w;
      shown_flag[i] = true;
      shown++;
    }
  return buf;
}

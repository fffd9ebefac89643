/* The progress bar: "images  [#######.......]  412/1000  12.3/s  ETA 48s". */
#define _POSIX_C_SOURCE 200809L

#include "tools/progress.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { BAR_WIDTH = 30 };

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void vz_progress_bar_init(vz_progress_bar *bar) {
  *bar = (vz_progress_bar){.enabled = isatty(STDERR_FILENO) == 1, .start = now()};
}

void vz_progress_bar_update(void *user, const char *what, int64_t done, int64_t total) {
  vz_progress_bar *bar = user;
  if (!bar->enabled || total <= 0)
    return;
  if (strncmp(bar->what, what, sizeof bar->what - 1) != 0) {
    snprintf(bar->what, sizeof bar->what, "%s", what);
    bar->start = now();
  }
  const double elapsed = now() - bar->start;
  /* Short jobs finish before a bar would help. */
  if (elapsed < 1.0 && !bar->drawn)
    return;
  char cells[BAR_WIDTH + 1];
  const int filled = (int)(BAR_WIDTH * done / total);
  for (int i = 0; i < BAR_WIDTH; i++)
    cells[i] = i < filled ? '#' : '.';
  cells[BAR_WIDTH] = '\0';
  const double rate = elapsed > 0 ? (double)done / elapsed : 0;
  const double eta = rate > 0 ? (double)(total - done) / rate : 0;
  fprintf(stderr, "\r%-7s [%s] %lld/%lld  %.1f/s  ETA %.0fs \033[K", what, cells, (long long)done,
          (long long)total, rate, eta);
  fflush(stderr);
  bar->drawn = true;
}

void vz_progress_bar_finish(vz_progress_bar *bar) {
  if (bar->drawn) {
    fputs("\r\033[K", stderr);
    fflush(stderr);
  }
  bar->drawn = false;
}

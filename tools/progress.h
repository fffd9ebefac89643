/* A progress bar on stderr for jobs that take more than a second, drawn
 * only when stderr is a terminal. */
#ifndef VLZOO_TOOLS_PROGRESS_H
#define VLZOO_TOOLS_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

typedef struct vz_progress_bar {
  bool enabled;  /* stderr is a terminal */
  bool drawn;    /* a line is on screen */
  double start;  /* when the current job began (seconds) */
  char what[32]; /* the current job */
} vz_progress_bar;

void vz_progress_bar_init(vz_progress_bar *bar);
/* A vz_progress_fn: user is the bar. */
void vz_progress_bar_update(void *user, const char *what, int64_t done, int64_t total);
/* Clears the line, if one was drawn. */
void vz_progress_bar_finish(vz_progress_bar *bar);

#endif

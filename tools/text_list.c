/* String lists for the command line. */
#define _POSIX_C_SOURCE 200809L

#include "tools/text_list.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int add_span(vz_text_list *list, const char *s, size_t n) {
  if (list->n == list->cap) {
    int cap = list->cap ? 2 * list->cap : 8;
    char **grown = realloc(list->items, (size_t)cap * sizeof *grown);
    if (!grown)
      return -1;
    list->items = grown;
    list->cap = cap;
  }
  char *copy = strndup(s, n);
  if (!copy)
    return -1;
  list->items[list->n++] = copy;
  return 0;
}

int vz_text_list_add(vz_text_list *list, const char *text) {
  return add_span(list, text, strlen(text));
}

/* [s, e) without surrounding whitespace */
static void trim(const char **s, const char **e) {
  while (*s < *e && isspace((unsigned char)**s))
    (*s)++;
  while (*e > *s && isspace((unsigned char)(*e)[-1]))
    (*e)--;
}

int vz_text_list_split(vz_text_list *list, const char *text, char sep) {
  for (const char *s = text;;) {
    const char *end = strchr(s, sep);
    const char *e = end ? end : s + strlen(s);
    const char *a = s, *b = e;
    trim(&a, &b);
    if (a == b || add_span(list, a, (size_t)(b - a)) != 0)
      return -1;
    if (!end)
      return 0;
    s = end + 1;
  }
}

int vz_text_list_read_lines(vz_text_list *list, const char *path) {
  FILE *f = fopen(path, "r");
  if (!f)
    return -1;
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  int rc = 0;
  while (rc == 0 && (len = getline(&line, &cap, f)) >= 0) {
    const char *a = line, *b = line + len;
    trim(&a, &b);
    if (a < b)
      rc = add_span(list, a, (size_t)(b - a));
  }
  if (ferror(f))
    rc = -1;
  free(line);
  fclose(f);
  return rc;
}

void vz_text_list_free(vz_text_list *list) {
  for (int i = 0; i < list->n; i++)
    free(list->items[i]);
  free(list->items);
  *list = (vz_text_list){0};
}

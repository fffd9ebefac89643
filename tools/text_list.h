/* A growable list of strings for options given several times or as one
 * comma-separated value. */
#ifndef VLZOO_TOOLS_TEXT_LIST_H
#define VLZOO_TOOLS_TEXT_LIST_H

typedef struct vz_text_list {
  char **items;
  int n, cap;
} vz_text_list;

/* Appends a copy; 0 on success, -1 when out of memory. */
int vz_text_list_add(vz_text_list *list, const char *text);
/* Appends each `sep`-separated part, spaces around it trimmed; -1 when a
 * part is empty or memory runs out. */
int vz_text_list_split(vz_text_list *list, const char *text, char sep);
/* Appends the lines of a file (blank lines skipped); -1 when it cannot be
 * read. */
int vz_text_list_read_lines(vz_text_list *list, const char *path);
void vz_text_list_free(vz_text_list *list);

#endif

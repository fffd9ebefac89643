/* vlzoo info: what this build is and which devices it can use. */
#include <stdio.h>
#include <string.h>

#include "tools/commands.h"
#include "vlzoo/vlzoo.h"

int vz_cmd_info(int argc, char **argv) {
  if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
    printf("usage: vlzoo info\n\nPrints the library version and, for each backend in this build, "
           "whether it starts here and how it is set up.\n");
    return 0;
  }
  if (argc > 1) {
    fprintf(stderr, "vlzoo info: unexpected argument '%s'\n", argv[1]);
    return 2;
  }
  printf("vlzoo %s\n", vz_version());
  int failures = 0;
  for (const char *const *name = vz_backend_names(); *name; name++) {
    vz_backend *be = NULL;
    if (vz_backend_create(*name, &be) == VZ_OK) {
      printf("backend %-7s %s\n", *name, vz_backend_description(be));
      vz_backend_free(be);
    } else {
      printf("backend %-7s unavailable: %s\n", *name, vz_last_error());
      failures += strcmp(*name, "cpu") == 0;
    }
  }
  return failures ? 1 : 0;
}

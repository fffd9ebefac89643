/* The linked library's version. */
#include "vlzoo/version.h"

#define VZ_STR2(x) #x
#define VZ_STR(x) VZ_STR2(x)

const char *vz_version(void) {
  return VZ_STR(VLZOO_VERSION_MAJOR) "." VZ_STR(VLZOO_VERSION_MINOR) "." VZ_STR(
      VLZOO_VERSION_PATCH);
}

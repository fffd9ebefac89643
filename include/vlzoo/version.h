/* Library version. */
#ifndef VLZOO_VERSION_H
#define VLZOO_VERSION_H

#ifdef __cplusplus
extern "C" {
#endif

#define VLZOO_VERSION_MAJOR 0
#define VLZOO_VERSION_MINOR 1
#define VLZOO_VERSION_PATCH 0

/* "0.1.0" and so on: the version of the library actually linked. */
const char *vz_version(void);

#ifdef __cplusplus
}
#endif
#endif

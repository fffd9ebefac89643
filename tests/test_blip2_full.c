/* The full-size BLIP-2 stage-1 parity run and its timings: the checks of
 * test_blip2_parity.c on the directory VLZOO_BLIP2_FULL_DIR names (written
 * by tests/fixtures/make_blip2_parity.py --full DIR, about 4.7 GB, not
 * committed). Skipped (exit 77) when the variable is not set. */
#define VZ_BLIP2_FULL_ONLY 1
#include "tests/test_blip2_parity.c"

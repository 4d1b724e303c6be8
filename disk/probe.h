/* Checks a finished image the way a node will see it: libblkid must identify
 * it as ext4 with the expected size. */
#ifndef SBD_PROBE_H
#define SBD_PROBE_H

#include <stdint.h>

#include "lib/error.h"

int sbd_probe_ext4(const char *path, uint64_t expect_size, sbd_error_t *err);

#endif

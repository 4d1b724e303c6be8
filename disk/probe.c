#include "probe.h"

#include <blkid.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/util.h"

static void probe_cleanup(blkid_probe *pr)
{
  if (*pr)
    blkid_free_probe(*pr);
}

int sbd_probe_ext4(const char *path, uint64_t expect_size, sbd_error_t *err)
{
  cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return sbd_error_set(err, SBD_EXIT_FAILURE, errno, "cannot open %s", path);
  __attribute__((cleanup(probe_cleanup))) blkid_probe pr = blkid_new_probe();
  if (pr == NULL || blkid_probe_set_device(pr, fd, 0, 0) != 0)
    return sbd_error_set(err, SBD_EXIT_FAILURE, 0, "libblkid cannot probe %s", path);
  blkid_probe_enable_superblocks(pr, 1);
  blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_TYPE | BLKID_SUBLKS_VERSION);
  if (blkid_do_safeprobe(pr) != 0)
    return sbd_error_set(err, SBD_EXIT_FAILURE, 0, "libblkid finds no filesystem in %s", path);
  const char *type = NULL;
  if (blkid_probe_lookup_value(pr, "TYPE", &type, NULL) != 0 || strcmp(type, "ext4") != 0)
    return sbd_error_set(err, SBD_EXIT_FAILURE, 0, "libblkid identifies %s as %s, not ext4", path,
                         type ? type : "nothing");
  off_t end = lseek(fd, 0, SEEK_END);
  if (end < 0 || (uint64_t)end != expect_size)
    return sbd_error_set(err, SBD_EXIT_FAILURE, 0, "%s is %lld bytes, expected %llu", path,
                         (long long)end, (unsigned long long)expect_size);
  return 0;
}

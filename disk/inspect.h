/* Reading a finished disk back, read-only, through libext2fs (no mount, no
 * root): the superblock's figures, the two metadata files, and each
 * snapshot's tree (counts, and with `verify` the official checksum
 * recomputed from the bytes on the disk).
 *
 * What does not match what the disk claims -- a missing feature, a line that
 * does not parse, a snapshot directory that is missing or unlisted, a
 * checksum that differs -- is not an error but a problem: one sentence each,
 * naming the thing, collected in order.  Errors are for a disk that cannot be
 * read at all. */
#ifndef SBD_INSPECT_H
#define SBD_INSPECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "disk/checksum.h"
#include "disk/metadata.h"
#include "lib/error.h"

struct sbd_inspect_fs {
  uint64_t size_bytes; /* blocks * block size */
  uint32_t block_size;
  uint64_t blocks, free_blocks;
  uint64_t inodes, free_inodes;
  char uuid[37];
};

struct sbd_inspect_snapshot {
  struct sbd_snapshot_entry entry; /* the snapshots.metadata line */
  char *used_by;                   /* REF names, one per line; NULL: not recorded */
  bool found;                      /* entry.path is a directory on the disk */
  bool walked;                     /* its whole tree was read */
  char computed[SBD_CHECKSUM_HEX_LEN]; /* with verify, once walked */
  uint64_t files;       /* regular files, once per name (find -type f) */
  uint64_t directories; /* below fs/ */
  uint64_t others;      /* symlinks, devices (whiteouts), fifos, sockets */
  uint64_t bytes;       /* the regular files' sizes */
};

struct sbd_inspect {
  struct sbd_inspect_fs fs;
  struct sbd_image_entry *images;
  size_t n_images;
  struct sbd_inspect_snapshot *snapshots;
  size_t n_snapshots;
  char **problems;
  size_t n_problems;
};

struct sbd_inspect_options {
  /* Also load the bitmaps and read every file's bytes to recompute the
   * checksums (inspect alone reads inodes and directories only). */
  bool verify;
};

/* Fails with SBD_EXIT_USAGE when path cannot be opened, SBD_EXIT_IMAGE when
 * it holds no ext4 filesystem libext2fs can open. */
int sbd_inspect_disk(const char *path, const struct sbd_inspect_options *o, struct sbd_inspect *out,
                     sbd_error_t *err);
void sbd_inspect_free(struct sbd_inspect *r);

#endif

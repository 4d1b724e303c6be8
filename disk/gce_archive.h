/* The GCE import archive, and the raw disk's digest, in one read of the disk.
 *
 * GCE imports a disk only as a gzip'd GNU tar holding one member, disk.raw
 * (`gcloud compute images create --source-uri gs://…/x.tar.gz`).  This module
 * reads a finished raw image once, front to back, skipping the holes the
 * filesystem reports, and yields the sha256 of its whole logical content
 * and, when asked, that archive:
 *
 *   - an oldgnu tar (what `tar --format=oldgnu -Sczf` writes): one member
 *     "disk.raw", type 'S' with the old GNU sparse map, mode 0644, uid/gid 0,
 *     uname/gname "root" (what GNU tar writes when root archives its own
 *     file), the mtime given;
 *   - the sparse map comes from the content, not from the filesystem: every
 *     4096-byte block that is all zeros is a hole, so the same bytes give the
 *     same archive whatever holes the raw file happens to have;
 *   - compressed on every core as ONE gzip member (as pigz makes it), with a
 *     fixed chunking and level, so the thread count never changes the bytes.
 *
 * The archive is written beside its path under a temporary name and renamed
 * into place only once complete and synced: the path holds either the whole
 * new archive or whatever it held before. */
#ifndef SBD_GCE_ARCHIVE_H
#define SBD_GCE_ARCHIVE_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/digest.h"
#include "lib/error.h"
#include "lib/tmpfiles.h"

/* The zlib level the archive is made with: level 6 was 3.5% smaller for 1.7x
 * the CPU on a real disk (figures in gce_deflate.c). */
#define SBD_GCE_ARCHIVE_LEVEL 1

struct sbd_gce_archive_params {
  const char *raw_path;     /* the finished raw disk image */
  const char *archive_path; /* NULL: only the raw file's digest */
  int64_t mtime;            /* the member's mtime (SOURCE_DATE_EPOCH, say); ≥ 0 */
  unsigned threads;         /* compression threads; 0: the online CPUs */
  int level;                /* 0: SBD_GCE_ARCHIVE_LEVEL; others only to measure */
  /* Leave raw_digest empty: hashing covers every byte, holes included, at
   * about 1 s per GiB of the disk's size on one core, where the archive alone
   * reads only what is not a hole. */
  bool no_raw_digest;
  struct sbd_tmpfiles *tmpfiles; /* the temporary archive is recorded here (may be NULL) */
};

struct sbd_gce_archive_result {
  char raw_digest[SBD_DIGEST_STR_LEN]; /* "sha256:<hex>" of every byte, holes as zeros
                                          ("" with no_raw_digest) */
  uint64_t raw_size;
  /* Only when an archive was asked for ("" and 0 otherwise): */
  char archive_digest[SBD_DIGEST_STR_LEN];
  uint64_t archive_size; /* the .tar.gz */
  uint64_t tar_size;     /* the tar inside it */
  uint64_t data_bytes;   /* the bytes of disk.raw the tar stores (not holes) */
};

int sbd_gce_archive_write(const struct sbd_gce_archive_params *p, struct sbd_gce_archive_result *res,
                          sbd_error_t *err);

#endif

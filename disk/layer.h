/* Applying one layer (a tar stream) into its own snapshot directory, with
 * exactly the result containerd's overlayfs snapshotter gets in
 * snapshots/<id>/fs (archive.Apply in containerd 1.6):
 *
 *  - the first layer of a chain (no parent) is applied plainly: whiteouts
 *    delete within the layer and leave nothing behind;
 *  - later layers are applied as an overlay upper directory: `.wh.X` becomes
 *    a character device 0:0 named X, `.wh..wh..opq` the xattr
 *    trusted.overlay.opaque=y on its directory, and a missing parent
 *    directory is copied up (mode, owner, xattrs) from the nearest lower
 *    layer that has it;
 *  - names are cleaned and resolved inside the layer (symlinks, "..",
 *    absolute paths never leave it); existing non-directories are replaced,
 *    directories merge; ownership is numeric; chmod follows chown so setuid
 *    bits survive; times keep nanoseconds, atime = max(atime, mtime), and
 *    directory times are set after all entries;
 *  - xattrs come from PAX SCHILY.xattr records, except trusted.* (refused by
 *    containerd) and user.* on anything but files and directories (refused by
 *    the kernel). */
#ifndef SBD_LAYER_H
#define SBD_LAYER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ext4.h"
#include "lib/digest.h"
#include "stream.h"

struct sbd_layer_params {
  struct sbd_ext4 *fs;
  uint32_t root_ino;   /* the snapshot's fs directory (allocated by the caller) */
  uint32_t parent_ino; /* the directory that holds it (its "..") */
  /* Root inodes of the lower snapshots, nearest first; none for the first layer. */
  const uint32_t *lowers;
  size_t n_lowers;
  const char *blob_path;
  const struct sbd_blob_reader *reader; /* instead of blob_path when set */
  enum sbd_stream_compression compression;
  const char *expect_blob_digest; /* verified when not NULL */
  const char *expect_diff_id;     /* verified when not NULL */
  /* Called now and then with the compressed bytes consumed so far. */
  void (*progress)(void *opaque, uint64_t in_bytes);
  void *progress_opaque;
};

struct sbd_layer_result {
  char blob_digest[SBD_DIGEST_STR_LEN];
  char diff_id[SBD_DIGEST_STR_LEN];
  char checksum[2 * 16 + 1]; /* the official verifier's md5 of the directory */
  uint64_t entries;          /* tar entries read */
  uint64_t files;            /* regular files in the result */
  uint64_t file_bytes;       /* their total size */
};

/* Applies the layer and writes its directories.  On error the message names
 * the tar entry where it applies; the caller adds the image and layer. */
int sbd_layer_apply(const struct sbd_layer_params *p, struct sbd_layer_result *r,
                    sbd_error_t *err);

#endif

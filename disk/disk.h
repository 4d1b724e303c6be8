/* The disk module's interface: a list of snapshots (unique layers in apply
 * order, each with its blob on local disk) and the image rows in, one raw
 * ext4 disk image out, written beside the output path under a temporary
 * name and renamed into place only when it is complete. */
#ifndef SBD_DISK_H
#define SBD_DISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "disk/metadata.h"
#include "disk/stream.h"
#include "lib/error.h"
#include "lib/tmpfiles.h"

#define SBD_DISK_NO_PARENT ((size_t)-1)
#define SBD_GIB (1024ull * 1024 * 1024)
/* The smallest persistent disk GCE makes, and the default floor. */
#define SBD_DISK_MIN_SIZE (10 * SBD_GIB)
/* ext4's 2^32 inodes at one per 16 KiB */
#define SBD_DISK_MAX_SIZE (16 * 1024 * SBD_GIB)
/* The largest room content is first written in (a sparse file of that
 * size): ext4, where the image file most often lives, refuses a file of
 * 16 TiB (its largest is 16 TiB - 4 KiB), and 32 x the compressed size of
 * an image of 512 GiB or more reached it. */
#define SBD_DISK_MAX_ROOM (SBD_DISK_MAX_SIZE - SBD_GIB)

struct sbd_disk_layer {
  const char *blob_path;        /* a whole local file, or: */
  struct sbd_blob_reader reader; /* bytes as they arrive (reader.read set) */
  uint64_t blob_size;
  bool compressed;         /* the media type is tar+gzip/zstd (sniffed) rather than tar */
  const char *blob_digest; /* expected */
  const char *diff_id;     /* expected */
  const char *chain_id;
  size_t parent; /* index of the parent snapshot, SBD_DISK_NO_PARENT for a first layer */
  const char *what; /* for messages: "image X layer 2/5 sha256:…" */
  /* The REF names (images.metadata) of the images using this snapshot, one
   * per line; recorded as the xattr SBD_DISK_XATTR_IMAGES on snapshots/N
   * (GKE reads neither it nor that directory's attributes).  May be NULL. */
  const char *used_by;
};

#define SBD_DISK_XATTR_IMAGES "user.sbdisk.images"

struct sbd_disk_events {
  void *opaque;
  void (*layer_start)(void *opaque, size_t layer);
  void (*layer_progress)(void *opaque, size_t layer, uint64_t in_bytes);
  void (*layer_done)(void *opaque, size_t layer, uint64_t files, uint64_t bytes);
};

struct sbd_disk_spec {
  const char *output;
  uint64_t size_bytes; /* 0: the smallest whole GiB (≥ 10 GiB) with 10% free */
  int64_t now;         /* times we must choose (whiteouts, new directories, superblock) */
  const struct sbd_disk_layer *layers;
  size_t n_layers;
  const struct sbd_image_row *images;
  size_t n_images;
  const struct sbd_disk_events *events; /* may be NULL */
  /* After the filesystem is complete and before it is renamed into place:
   * one read of it for its sha256 and, when gce_tar is set, the archive GCE
   * imports, written atomically beside gce_tar. */
  bool want_sha256;
  const char *gce_tar;
  /* Temporary files are recorded here until renamed or removed (may be NULL). */
  struct sbd_tmpfiles *tmpfiles;
  /* With size_bytes 0, the room content is first written in (whole GiB, at
   * least SBD_DISK_MIN_SIZE); 0 chooses it from the compressed sizes.  Tests
   * give a small one to reach a disk that ends larger than its room and a
   * build that outgrows it. */
  uint64_t room_bytes;
};

struct sbd_disk_result {
  uint64_t size_bytes;
  uint64_t used_bytes; /* by content: files, directories, xattrs */
  uint64_t inodes_used;
  uint64_t files;
  uint64_t file_bytes;
  char sha256[2 * 32 + 1]; /* hex, when want_sha256 or gce_tar */
  char gce_tar_sha256[2 * 32 + 1];
  uint64_t gce_tar_bytes;
};

int sbd_disk_build(const struct sbd_disk_spec *spec, struct sbd_disk_result *res, sbd_error_t *err);

#endif

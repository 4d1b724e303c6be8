/* The two metadata files GKE's image cache reads at the disk's root, byte for
 * byte as the official builder writes them. */
#ifndef SBD_METADATA_H
#define SBD_METADATA_H

#include <stddef.h>
#include <stdint.h>

/* One line per snapshot: "<chainID> snapshots/<N>/fs <md5>\n". */
struct sbd_snapshot_line {
  const char *chain_id;
  size_t number;
  const char *checksum;
};
char *sbd_metadata_snapshots(const struct sbd_snapshot_line *lines, size_t n);

/* One row of `ctr -n k8s.io images ls`. */
struct sbd_image_row {
  const char *name;
  const char *media_type;
  const char *digest;
  uint64_t size;
  const char *platforms; /* "linux/amd64,linux/arm64" or "-" */
  const char *labels;    /* "k=v,k2=v2" or "-" */
};
/* The table as ctr prints it: header REF TYPE DIGEST SIZE PLATFORMS LABELS,
 * rows sorted by name (the order of containerd's image store), cells padded
 * by Go's text/tabwriter (minwidth 1, tabwidth 8, padding 1, ' '), every
 * cell tab-terminated so the last column is padded too. */
char *sbd_metadata_images(const struct sbd_image_row *rows, size_t n);

/* containerd's progress.Bytes: "%02.1f %s" with B, KiB, MiB... (base 1024). */
char *sbd_metadata_human_size(uint64_t bytes);

#endif

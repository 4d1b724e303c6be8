/* The two metadata files GKE's image cache reads at the disk's root, byte for
 * byte as the official builder writes them. */
#ifndef SBD_METADATA_H
#define SBD_METADATA_H

#include <stddef.h>
#include <stdint.h>

#include "lib/error.h"

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

/* --- reading them back (sbdisk inspect, verify) --- */

/* One snapshots.metadata line, as found. */
struct sbd_snapshot_entry {
  char *chain_id;
  char *path; /* "snapshots/N/fs" */
  size_t number;
  char *checksum;
};
/* Parses one line (without its newline): a sha256 chainID, snapshots/N/fs
 * with N from 1, 32 lower-case hex digits, one space apart.  Fails with
 * SBD_EXIT_IMAGE and a message saying what is wrong. */
int sbd_metadata_parse_snapshot_line(const char *line, struct sbd_snapshot_entry *out,
                                     sbd_error_t *err);
void sbd_snapshot_entry_free(struct sbd_snapshot_entry *e);

/* One images.metadata row, its cells without their padding. */
enum { SBD_IMAGE_REF, SBD_IMAGE_TYPE, SBD_IMAGE_DIGEST, SBD_IMAGE_SIZE, SBD_IMAGE_PLATFORMS,
       SBD_IMAGE_LABELS, SBD_IMAGE_COLUMNS };
struct sbd_image_entry {
  char *cells[SBD_IMAGE_COLUMNS];
};
/* Parses the table: the header's words give where each column starts (the
 * tabwriter pads every cell to its column's width, and SIZE holds a space, so
 * splitting on spaces would not do).  Fails with SBD_EXIT_IMAGE naming the
 * line. */
int sbd_metadata_parse_images(const char *text, struct sbd_image_entry **out, size_t *n,
                              sbd_error_t *err);
void sbd_image_entries_free(struct sbd_image_entry *e, size_t n);

/* containerd's progress.Bytes: "%02.1f %s" with B, KiB, MiB... (base 1024). */
char *sbd_metadata_human_size(uint64_t bytes);

#endif

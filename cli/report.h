/* What `sbdisk build` tells when it is done: the JSON object for pipelines
 * (--json, --json=flat) and the gcloud commands that take the disk to GKE
 * (--name). */
#ifndef SBD_REPORT_H
#define SBD_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "lib/error.h"
#include "lib/image.h"
#include "lib/plan.h"

enum sbd_json_mode { SBD_JSON_NONE = 0, SBD_JSON_FULL, SBD_JSON_FLAT };

/* What one snapshot holds once written. */
struct sbd_report_snapshot {
  uint64_t files;
  uint64_t file_bytes;
};

struct sbd_build_report {
  const char *output; /* absolute path of the raw disk */
  uint64_t size_bytes;
  const char *sha256; /* hex, of the raw file */
  const char *gce_tar; /* absolute path, or NULL when not asked for */
  const char *gce_tar_sha256;
  uint64_t gce_tar_bytes;
  const struct sbd_image *images;
  size_t n_images;
  const struct sbd_plan *plan;
  const struct sbd_report_snapshot *snapshots; /* plan->n_snapshots of them */
  const char *name;                           /* --name, or NULL */
  double seconds;
};

/* "--json" or "--json=full" / "--json=flat". */
int sbd_json_mode_parse(const char *arg, enum sbd_json_mode *mode, sbd_error_t *err);

/* Prints the object for `mode` on out, followed by a newline. */
int sbd_report_print_json(const struct sbd_build_report *r, enum sbd_json_mode mode, FILE *out,
                          sbd_error_t *err);

/* A name GKE accepts for a secondary boot disk's image: a GCE image name
 * ([a-z]([-a-z0-9]*[a-z0-9])?) of at most 39 characters, because GKE labels
 * nodes "gke-secondary-boot-disk-NAME" and a label name stops at 63. */
int sbd_gke_image_name_check(const char *name, sbd_error_t *err);

/* The shell commands that upload the archive, create the image and a node
 * pool that mounts it (NULL-terminated, malloc'd). */
char **sbd_report_gcloud_commands(const struct sbd_build_report *r);
void sbd_report_free_commands(char **cmds);

#endif

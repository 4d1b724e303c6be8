/* The build plan: images -> their layers -> the unique snapshots (by
 * chainID) in the order they are applied, each knowing its parent. */
#ifndef SBD_PLAN_H
#define SBD_PLAN_H

#include <stddef.h>

#include "error.h"
#include "image.h"

#define SBD_PLAN_NO_PARENT ((size_t)-1)

struct sbd_plan_snapshot {
  const struct sbd_layer_desc *layer; /* from the first image that uses it */
  size_t image;                       /* that image's index */
  size_t layer_index;                 /* position in that image, from 0 */
  size_t parent;                      /* index into snapshots, or SBD_PLAN_NO_PARENT */
};

struct sbd_plan {
  struct sbd_plan_snapshot *snapshots;
  size_t n_snapshots;
  uint64_t unique_bytes; /* compressed size of the unique layers */
};

/* Snapshots are numbered in order of first use: image by image, each from its
 * bottom layer up, so a parent always comes before its children. */
int sbd_plan_build(const struct sbd_image *images, size_t n, struct sbd_plan *plan, sbd_error_t *err);
void sbd_plan_free(struct sbd_plan *plan);

#endif

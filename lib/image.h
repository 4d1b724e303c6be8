/* Resolving an image reference to what a disk needs: the platform's
 * manifest, its config, the layers with their diffIDs and chainIDs, and the
 * row `ctr images ls` would print for it.  Works the same for registry
 * references and local OCI layouts (oci:DIR[:TAG]). */
#ifndef SBD_IMAGE_H
#define SBD_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "cache.h"
#include "digest.h"
#include "error.h"
#include "manifest.h"
#include "ref.h"
#include "registry.h"

struct sbd_layer_desc {
  char *media_type;
  char digest[SBD_DIGEST_STR_LEN]; /* the blob (compressed) */
  int64_t size;
  enum sbd_compression compression;
  char diff_id[SBD_DIGEST_STR_LEN];
  char chain_id[SBD_DIGEST_STR_LEN];
  /* Non-distributable ("foreign"): a nondistributable or foreign media type,
   * or URLs to fetch it from; url is the first of those, or NULL. */
  bool foreign;
  char *url;
};

struct sbd_image {
  char *given; /* as the user wrote it */
  struct sbd_ref ref;
  char *name; /* the REF column of images.metadata */
  /* What the reference points at: an index or a manifest. */
  char *target_media_type;
  char target_digest[SBD_DIGEST_STR_LEN];
  /* The manifest for the platform, and its config. */
  char manifest_digest[SBD_DIGEST_STR_LEN];
  char *platform;       /* "linux/amd64" as selected */
  char *platforms;      /* the PLATFORMS column: sorted, comma-joined, or "-" */
  uint64_t listed_size; /* the SIZE column: index + manifest + config + layers */
  char config_digest[SBD_DIGEST_STR_LEN];
  int64_t created; /* the config's creation time, -1 when it has none */
  struct sbd_layer_desc *layers;
  size_t n_layers;
};

struct sbd_source {
  const struct sbd_platform *platform;
  struct sbd_registry *registry; /* may be NULL when only OCI layouts are used */
  struct sbd_cache *cache;
};

/* On failure the message starts with the image as given. */
int sbd_image_resolve(const struct sbd_source *src, const char *given, struct sbd_image *img,
                      sbd_error_t *err);

/* Progress while a blob downloads: bytes so far of total. */
typedef void (*sbd_fetch_progress)(void *opaque, uint64_t done, uint64_t total);

/* Makes layer i's blob available as a local file (*path, malloc'd): fetched
 * into the cache (verified) unless already there, or found in the OCI
 * layout.  *cached tells whether no download was needed.  The message names
 * neither the image nor the layer: the reader of the blob does. */
int sbd_image_fetch_layer(const struct sbd_source *src, const struct sbd_image *img, size_t i,
                          sbd_fetch_progress progress, void *opaque, char **path, bool *cached,
                          sbd_error_t *err);

void sbd_image_free(struct sbd_image *img);

#endif

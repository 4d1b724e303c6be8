/* Fetching layer blobs in parallel while the disk is being written.
 *
 * Worker threads (each with its own registry client) download the blobs in
 * plan order into the cache; a reader for blob i yields its bytes as they
 * arrive — from the cache entry when it was already there, from the growing
 * temporary file while it downloads — so that decoding and writing layer 1
 * overlap with downloading layers 2, 3, ...  Every blob is still verified
 * against its digest before it enters the cache. */
#ifndef SBD_FETCH_H
#define SBD_FETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "error.h"
#include "image.h"
#include "registry.h"

struct sbd_fetch_item {
  const struct sbd_image *image;
  size_t layer;
};

struct sbd_fetcher;

/* Starts `jobs` workers over the items.  src->registry is not used (each
 * worker makes its own client from ropts); src->cache must outlive the
 * fetcher. */
int sbd_fetcher_start(const struct sbd_source *src, const struct sbd_registry_options *ropts,
                      const struct sbd_fetch_item *items, size_t n, unsigned jobs,
                      struct sbd_fetcher **out, sbd_error_t *err);

/* Reads item i's blob from the start: up to len bytes, blocking until they
 * have arrived; 0 at its end; -1 when its download failed (the registry's
 * error).  One reader per item. */
ssize_t sbd_fetcher_read(struct sbd_fetcher *f, size_t i, void *buf, size_t len, sbd_error_t *err);

/* Whether item i's reads are verified against its digest: a blob from a
 * registry (downloaded now or found in the cache) is checked before its
 * last read succeeds; a blob of a local layout is read as it is, for the
 * caller to hash while it decodes. */
bool sbd_fetcher_verifies(const struct sbd_fetcher *f, size_t i);

/* Starts reading item i from its first byte again. */
void sbd_fetcher_rewind(struct sbd_fetcher *f, size_t i);

/* Whether item i needed no download (in the cache, or a local layout). */
bool sbd_fetcher_was_cached(struct sbd_fetcher *f, size_t i);

/* Where item i stands, for progress displays. */
enum sbd_fetch_phase { SBD_FETCH_WAITING, SBD_FETCH_RUNNING, SBD_FETCH_DONE, SBD_FETCH_FAILED };
struct sbd_fetch_status {
  enum sbd_fetch_phase phase;
  bool cached;         /* done without a download */
  uint64_t downloaded; /* bytes of the blob received so far */
};
void sbd_fetcher_status(struct sbd_fetcher *f, size_t i, struct sbd_fetch_status *st);

/* Stops the downloads still running (their partial files are removed),
 * waits for the workers and frees everything. */
void sbd_fetcher_free(struct sbd_fetcher *f);

#endif

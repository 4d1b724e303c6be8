/* The content-addressed blob cache: DIR/blobs/sha256/<hex>, written under a
 * temporary name, verified, then renamed into place, so an entry is either
 * whole and correct or absent, and two builds can share one cache.  Entries
 * are not synced to the device: a crash may leave one torn, and since every
 * use hashes the entry again, a torn one is removed and downloaded again. */
#ifndef SBD_CACHE_H
#define SBD_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "tmpfiles.h"

struct sbd_cache;
struct sbd_cache_writer;

/* $XDG_CACHE_HOME/sbdisk, else $HOME/.cache/sbdisk. */
char *sbd_cache_default_dir(void);

/* Opens (creating it if needed) the cache at dir, or the default when NULL. */
int sbd_cache_open(const char *dir, struct sbd_cache **out, sbd_error_t *err);
void sbd_cache_free(struct sbd_cache *c);
/* Record the writers' temporary files in t, for an interrupted run to remove. */
void sbd_cache_set_tmpfiles(struct sbd_cache *c, struct sbd_tmpfiles *t);
const char *sbd_cache_dir(const struct sbd_cache *c);

/* Where the blob with this digest lives (whether or not it is there). */
char *sbd_cache_path(const struct sbd_cache *c, const char *digest);

/* True if an entry exists with the expected size (size < 0: any size).  The
 * content is verified by whoever reads it. */
bool sbd_cache_contains(const struct sbd_cache *c, const char *digest, int64_t size);

/* Re-hashes an entry; a corrupt one is removed and *ok set to false. */
int sbd_cache_verify(const struct sbd_cache *c, const char *digest, bool *ok, sbd_error_t *err);

/* Removes an entry (e.g. one found corrupt while reading it). */
void sbd_cache_remove(const struct sbd_cache *c, const char *digest);

int sbd_cache_writer_begin(const struct sbd_cache *c, const char *digest,
                           struct sbd_cache_writer **out, sbd_error_t *err);
int sbd_cache_writer_write(struct sbd_cache_writer *w, const void *data, size_t len, sbd_error_t *err);
/* Bytes written so far. */
int64_t sbd_cache_writer_size(const struct sbd_cache_writer *w);
/* The temporary file being written (readers may follow it as it grows). */
const char *sbd_cache_writer_path(const struct sbd_cache_writer *w);
/* Verifies the sha256 against the digest (SBD_EXIT_IMAGE error naming both on
 * mismatch), then renames into place.  Frees w in every case. */
int sbd_cache_writer_commit(struct sbd_cache_writer *w, sbd_error_t *err);
/* Discards the temporary file.  Frees w. */
void sbd_cache_writer_abort(struct sbd_cache_writer *w);

#endif

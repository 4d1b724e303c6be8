/* A layer blob read as a stream: the compressed bytes are hashed (the blob
 * digest), decompressed (gzip, possibly in several members, or zstd, or
 * none), and the uncompressed bytes hashed too (the diffID), all in one pass
 * on a decoding thread, over a ring of a few 1 MiB buffers. */
#ifndef SBD_STREAM_H
#define SBD_STREAM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/digest.h"
#include "lib/error.h"

enum sbd_stream_compression {
  SBD_STREAM_NONE,   /* an uncompressed layer media type: the blob is the tar */
  SBD_STREAM_DETECT, /* a compressed media type: gzip, zstd or none, sniffed
                        from the first bytes as containerd does */
};

struct sbd_stream;

int sbd_stream_open(const char *path, enum sbd_stream_compression c, struct sbd_stream **out,
                    sbd_error_t *err);
/* Points *data at the next uncompressed bytes; returns their count, 0 at the
 * end, -1 on error (corrupt or truncated data). */
ssize_t sbd_stream_read(struct sbd_stream *s, const void **data, sbd_error_t *err);
/* Reads what is left (a tar's trailing padding counts in the diffID too) and
 * gives both digests. */
int sbd_stream_finish(struct sbd_stream *s, char blob_digest[SBD_DIGEST_STR_LEN],
                      char diff_id[SBD_DIGEST_STR_LEN], sbd_error_t *err);
/* Bytes of compressed input decoded as of the last read. */
off_t sbd_stream_in_bytes(const struct sbd_stream *s);
void sbd_stream_free(struct sbd_stream *s);

/* Called with the compressed bytes consumed so far, as the stream advances. */
void sbd_stream_set_progress(struct sbd_stream *s, void (*fn)(void *, uint64_t), void *opaque);

/* A libarchive reader over the uncompressed bytes: a tar (or an empty
 * layer), nothing else, no filters: the stream does the decompression. */
struct archive;
int sbd_stream_archive_open(struct sbd_stream *s, struct archive **out, sbd_error_t *err);
/* After an archive call failed: the stream's own error when it caused the
 * failure (corrupt or truncated compressed data), else libarchive's. */
int sbd_stream_archive_error(struct sbd_stream *s, struct archive *ar, sbd_error_t *err);
void sbd_archive_free(struct archive **ar);
#define cleanup_archive __attribute__((cleanup(sbd_archive_free)))

#endif

/* A layer blob read as a stream: the compressed bytes are hashed (the blob
 * digest), decompressed (gzip, possibly in several members, or zstd, or
 * none), and the uncompressed bytes hashed too (the diffID), all in one pass
 * on a decoding thread, over a ring of a few 1 MiB buffers. */
#ifndef SBD_STREAM_H
#define SBD_STREAM_H

#include <stdbool.h>
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

/* Where compressed bytes come from when they are not (yet) a whole file: a
 * blob still downloading, say. */
struct sbd_blob_reader {
  /* Up to len bytes; 0 at the end; -1 on error.  May block until bytes arrive. */
  ssize_t (*read)(void *opaque, void *buf, size_t len, sbd_error_t *err);
  /* Back to the first byte (a layer may be read again when a build restarts). */
  void (*rewind)(void *opaque);
  void *opaque;
  /* The reader checks the bytes against the blob's digest itself and fails
   * its last read when they differ (a download verified before it ends):
   * the stream need not hash them a second time. */
  bool verified;
};

struct sbd_stream;

/* Reads the blob from reader when reader->read is set, else from path. */
int sbd_stream_open(const char *path, const struct sbd_blob_reader *reader,
                    enum sbd_stream_compression c, struct sbd_stream **out, sbd_error_t *err);
/* Points *data at the next uncompressed bytes; returns their count, 0 at the
 * end, -1 on error (corrupt or truncated data). */
ssize_t sbd_stream_read(struct sbd_stream *s, const void **data, sbd_error_t *err);
/* Reads what is left (a tar's trailing padding counts in the diffID too) and
 * gives both digests; blob_digest is "" when the reader verified the blob. */
int sbd_stream_finish(struct sbd_stream *s, char blob_digest[SBD_DIGEST_STR_LEN],
                      char diff_id[SBD_DIGEST_STR_LEN], sbd_error_t *err);
/* After reading failed (corrupt data, a bad tar): reads the rest of the blob
 * to tell whether its bytes are the ones named by `expect`, the first cause
 * to report.  -1 with the digest mismatch in *err when they are not; 0 when
 * they are, or when the rest cannot be read.  Stops the stream. */
int sbd_stream_check_blob(struct sbd_stream *s, const char *expect, sbd_error_t *err);
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

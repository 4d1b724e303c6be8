/* Shared between the GCE archive's files (gce_*.c); not part of its interface
 * (the unit tests use it to check the encodings field by field). */
#ifndef SBD_GCE_ARCHIVE_PRIVATE_H
#define SBD_GCE_ARCHIVE_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/error.h"
#include "lib/util.h"

#define SBD_TAR_BLOCK 512
#define SBD_TAR_RECORD 10240 /* GNU tar's default: 20 blocks */
/* The sparse map's granularity: an all-zero block of this size is a hole. */
#define SBD_GCE_HOLE_BLOCK 4096
/* The gzip chunk: each is deflated on its own, so it is fixed, whatever the
 * thread count, or the archive's bytes would depend on the machine. */
#define SBD_GCE_CHUNK (1u << 20)

/* --- the sparse map (gce_tar.c) --- */

struct sbd_sparse_entry {
  uint64_t offset;
  uint64_t numbytes;
};

struct sbd_sparse_map {
  struct sbd_sparse_entry *entries;
  size_t n, cap;
  uint64_t realsize;   /* set by sbd_sparse_map_end */
  uint64_t data_bytes; /* the sum of numbytes: the member's stored size */
};

/* Adds data [offset, offset+len); offsets only grow.  Data that starts where
 * the last entry ends extends it. */
void sbd_sparse_map_add(struct sbd_sparse_map *m, uint64_t offset, uint64_t len);
/* Closes the map at the file's size: like GNU tar, a file that ends in a hole
 * (or is all hole) gets a last, empty entry at its size, so that extraction
 * restores the size. */
void sbd_sparse_map_end(struct sbd_sparse_map *m, uint64_t realsize);
void sbd_sparse_map_free(struct sbd_sparse_map *m);

/* --- the tar encoding (gce_tar.c) --- */

/* A numeric field as GNU tar writes it: size-1 octal digits and a NUL when the
 * value fits, else GNU's base-256 (0x80, then size-1 bytes big-endian). */
void sbd_tar_number(char *field, size_t size, uint64_t value);
/* The header and its sparse extension blocks, in bytes (a multiple of 512). */
size_t sbd_tar_header_len(const struct sbd_sparse_map *m);
/* Writes sbd_tar_header_len(m) bytes: the 'S' header of disk.raw and its
 * extension blocks. */
void sbd_tar_header_write(const struct sbd_sparse_map *m, uint64_t mtime, uint8_t *out);
/* The bytes after the member's data: zeros to the next block, the two zero
 * blocks that end the archive, and zeros to the end of the record. */
uint64_t sbd_tar_trailer_len(uint64_t header_len, uint64_t data_len);

/* --- parallel deflate (gce_deflate.c) --- */

/* Raw deflate of one piece on the calling thread: ends with a sync flush (so
 * that what follows can be appended) or, when last, ends the stream. */
int sbd_deflate_piece(int level, const void *in, size_t len, bool last, struct sbd_buf *out,
                      sbd_error_t *err);

/* A stream cut into SBD_GCE_CHUNK pieces, each deflated on a worker thread and
 * sync-flushed, written to out_fd in order by the caller's thread.  A fixed
 * number of chunks is in flight, whatever the stream's length. */
/* Whether a chunk is stored rather than deflated: every byte value occurs
 * within a quarter of its even share (random-looking data); never below
 * 64 KiB. */
bool sbd_deflate_looks_incompressible(const uint8_t *in, size_t len);

struct sbd_deflate_pool;

/* out_name names out_fd in messages. */
struct sbd_deflate_pool *sbd_deflate_pool_new(unsigned threads, int level, int out_fd,
                                              const char *out_name);
int sbd_deflate_pool_write(struct sbd_deflate_pool *p, const void *data, size_t len, sbd_error_t *err);
/* Deflates what is left and writes everything out: the stream's CRC32 and
 * length in, the deflate bytes out. */
int sbd_deflate_pool_finish(struct sbd_deflate_pool *p, uint32_t *crc, uint64_t *in_len,
                            uint64_t *out_len, sbd_error_t *err);
/* Stops the threads (NULL is fine). */
void sbd_deflate_pool_free(struct sbd_deflate_pool *p);

#endif

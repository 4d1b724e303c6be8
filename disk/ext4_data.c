/* The data path: every block of content we write (file data, directory
 * blocks, extent tree blocks) goes through one write-combining buffer.
 * Allocation is ascending, so consecutive small files are consecutive
 * blocks and leave as one large write; large writes go with O_DIRECT where
 * the filesystem under the image allows it, which spares the CPU the copy
 * into the page cache (the single largest cost once decompression is fast),
 * on a thread of their own (writeback.c) so that waiting for the device
 * does not stop the writer.
 *
 * Coherence with libext2fs's own I/O channel (its cache holds metadata):
 * content blocks are never reallocated while writing (the allocator only
 * moves forward; if it ever wraps around, the buffer is flushed and data goes
 * through libext2fs from then on), and the buffer is flushed before anything
 * reads content back (sbd_ext4_flush at the end of each layer). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ext4_private.h"
#include "lib/util.h"
#include "writeback.h"

#define PEND_BYTES (4u << 20)
#define PEND_BLOCKS (PEND_BYTES / SBD_EXT4_BLOCK_SIZE)
/* Buffers in flight to the device: 16 MiB, enough to ride out its latency. */
#define WRITEBACK_BUFS 4

static unsigned char *own_buffer(void)
{
  unsigned char *p;
  if (posix_memalign((void **)&p, SBD_EXT4_BLOCK_SIZE, PEND_BYTES) != 0) {
    fputs("sbdisk: out of memory\n", stderr);
    abort();
  }
  return p;
}

void sbd_ext4_data_init(struct sbd_ext4 *fs)
{
  fs->data_fd = open(fs->path, O_WRONLY | O_DIRECT | O_CLOEXEC);
  if (fs->data_fd >= 0) {
    fs->wb = sbd_writeback_new(fs->data_fd, PEND_BYTES, WRITEBACK_BUFS);
    fs->pend = sbd_writeback_buffer(fs->wb);
  } else {
    fs->pend = own_buffer();
  }
}

/* Stops writing through data_fd (its buffers go with it). */
static void data_stop_writeback(struct sbd_ext4 *fs)
{
  if (fs->wb) {
    sbd_writeback_free(fs->wb);
    fs->wb = NULL;
    fs->pend = NULL;
  }
  if (fs->data_fd >= 0)
    close(fs->data_fd);
  fs->data_fd = -1;
}

void sbd_ext4_data_free(struct sbd_ext4 *fs)
{
  data_stop_writeback(fs);
  free(fs->pend);
  fs->pend = NULL;
  free(fs->file_buf);
  fs->file_buf = NULL;
}

/* Hands the pending blocks over: to the writing thread, or (no O_DIRECT)
 * through libext2fs. */
static int submit_pending(struct sbd_ext4 *fs, sbd_error_t *err)
{
  size_t n = fs->pend_blocks;
  if (n == 0)
    return 0;
  fs->pend_blocks = 0;
  if (fs->wb) {
    if (sbd_writeback_submit(fs->wb, n * SBD_EXT4_BLOCK_SIZE,
                             (off_t)(fs->pend_start * SBD_EXT4_BLOCK_SIZE)) < 0)
      return sbd_error_set(err, SBD_EXIT_FAILURE, errno, "writing %s", fs->path);
    fs->pend = sbd_writeback_buffer(fs->wb);
    return 0;
  }
  errcode_t e = io_channel_write_blk64(fs->fs->io, fs->pend_start, (int)n, fs->pend);
  if (e)
    return sbd_ext4_error(err, e, "writing %zu blocks", n);
  return 0;
}

int sbd_ext4_flush(struct sbd_ext4 *fs, sbd_error_t *err)
{
  if (submit_pending(fs, err) < 0)
    return -1;
  if (fs->wb && sbd_writeback_drain(fs->wb) < 0)
    return sbd_error_set(err, SBD_EXIT_FAILURE, errno, "writing %s", fs->path);
  return 0;
}

void sbd_ext4_data_wrapped(struct sbd_ext4 *fs)
{
  /* Freed blocks may come back now, possibly still in libext2fs's cache:
   * from here on, content goes through libext2fs's I/O channel too (the
   * caller flushed: nothing is pending or in flight). */
  if (fs->wb) {
    data_stop_writeback(fs);
    fs->pend = own_buffer();
  }
}

/* Makes blk the next block of the pending run: what is pending goes first
 * when blk does not continue it, or when it is full. */
static int pend_next(struct sbd_ext4 *fs, blk64_t blk, sbd_error_t *err)
{
  bool contiguous = fs->pend_blocks > 0 && blk == fs->pend_start + fs->pend_blocks;
  if ((!contiguous && fs->pend_blocks > 0) || fs->pend_blocks == PEND_BLOCKS) {
    if (submit_pending(fs, err) < 0)
      return -1;
  }
  if (fs->pend_blocks == 0)
    fs->pend_start = blk;
  return 0;
}

int sbd_ext4_data_put(struct sbd_ext4 *fs, blk64_t blk, const void *data, size_t nblocks,
                      sbd_error_t *err)
{
  const char *p = data;
  while (nblocks > 0) {
    if (pend_next(fs, blk, err) < 0)
      return -1;
    size_t take = PEND_BLOCKS - fs->pend_blocks;
    if (take > nblocks)
      take = nblocks;
    memcpy(fs->pend + fs->pend_blocks * SBD_EXT4_BLOCK_SIZE, p, take * SBD_EXT4_BLOCK_SIZE);
    fs->pend_blocks += take;
    blk += take;
    p += take * SBD_EXT4_BLOCK_SIZE;
    nblocks -= take;
  }
  return 0;
}

int sbd_ext4_data_put_partial(struct sbd_ext4 *fs, blk64_t blk, const void *data, size_t len,
                              sbd_error_t *err)
{
  if (pend_next(fs, blk, err) < 0)
    return -1;
  unsigned char *dst = fs->pend + fs->pend_blocks * SBD_EXT4_BLOCK_SIZE;
  memcpy(dst, data, len);
  memset(dst + len, 0, SBD_EXT4_BLOCK_SIZE - len);
  fs->pend_blocks++;
  return 0;
}

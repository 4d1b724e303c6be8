/* The data path: every block of content we write (file data, directory
 * blocks, extent tree blocks) goes through one write-combining buffer.
 * Allocation is ascending, so consecutive small files are consecutive
 * blocks and leave as one large write; large writes go with O_DIRECT where
 * the filesystem under the image allows it, which spares the CPU the copy
 * into the page cache (the single largest cost once decompression is fast).
 *
 * Coherence with libext2fs's own I/O channel (its cache holds metadata):
 * content blocks are never reallocated while writing (the allocator only
 * moves forward; if it ever wraps around, the buffer is flushed and data goes
 * through libext2fs from then on), and the buffer is flushed before anything
 * reads content back (sbd_ext4_flush at the end of each layer). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ext4_private.h"
#include "lib/util.h"

#define PEND_BYTES (4u << 20)
#define PEND_BLOCKS (PEND_BYTES / SBD_EXT4_BLOCK_SIZE)

void sbd_ext4_data_init(struct sbd_ext4 *fs)
{
  fs->data_fd = open(fs->path, O_WRONLY | O_DIRECT | O_CLOEXEC);
  if (posix_memalign((void **)&fs->pend, SBD_EXT4_BLOCK_SIZE, PEND_BYTES) != 0) {
    fputs("sbdisk: out of memory\n", stderr);
    abort();
  }
}

void sbd_ext4_data_free(struct sbd_ext4 *fs)
{
  if (fs->data_fd >= 0)
    close(fs->data_fd);
  fs->data_fd = -1;
  free(fs->pend);
  fs->pend = NULL;
  free(fs->file_buf);
  fs->file_buf = NULL;
}

static int write_out(struct sbd_ext4 *fs, blk64_t blk, const void *data, size_t nblocks,
                     sbd_error_t *err)
{
  size_t len = nblocks * SBD_EXT4_BLOCK_SIZE;
  if (fs->data_fd >= 0) {
    if (sbd_pwrite_all(fs->data_fd, data, len, (off_t)(blk * SBD_EXT4_BLOCK_SIZE)) == 0)
      return 0;
    if (errno != EINVAL)
      return sbd_error_set(err, SBD_EXIT_FAILURE, errno, "writing %s", fs->path);
    /* this filesystem does not do O_DIRECT after all: go through libext2fs */
    close(fs->data_fd);
    fs->data_fd = -1;
  }
  errcode_t e = io_channel_write_blk64(fs->fs->io, blk, (int)nblocks, data);
  if (e)
    return sbd_ext4_error(err, e, "writing %zu blocks", nblocks);
  return 0;
}

int sbd_ext4_flush(struct sbd_ext4 *fs, sbd_error_t *err)
{
  if (fs->pend_blocks == 0)
    return 0;
  int r = write_out(fs, fs->pend_start, fs->pend, fs->pend_blocks, err);
  fs->pend_blocks = 0;
  return r;
}

void sbd_ext4_data_wrapped(struct sbd_ext4 *fs)
{
  /* Freed blocks may come back now, possibly still in libext2fs's cache:
   * from here on, content goes through libext2fs's I/O channel too. */
  if (fs->data_fd >= 0) {
    close(fs->data_fd);
    fs->data_fd = -1;
  }
}

int sbd_ext4_data_put(struct sbd_ext4 *fs, blk64_t blk, const void *data, size_t nblocks,
                      sbd_error_t *err)
{
  const char *p = data;
  while (nblocks > 0) {
    bool contiguous = fs->pend_blocks > 0 && blk == fs->pend_start + fs->pend_blocks;
    if ((!contiguous && fs->pend_blocks > 0) || fs->pend_blocks == PEND_BLOCKS) {
      if (sbd_ext4_flush(fs, err) < 0)
        return -1;
    }
    if (fs->pend_blocks == 0)
      fs->pend_start = blk;
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

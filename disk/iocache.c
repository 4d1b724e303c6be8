#include "iocache.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Held blocks: the inode tables of ~32,000 inodes.  Written out when full. */
#define HELD_BYTES (8u << 20)
/* Longest run handed to the Unix manager in one write. */
#define RUN_BLOCKS 256u

struct iocache {
  io_channel inner;
  int sync_fd;         /* the same file, to start writeback on; -1 if none */
  size_t cap;          /* blocks that fit in HELD_BYTES; 0 until the first write */
  size_t n;            /* blocks held: slots [0, n) */
  unsigned char *mem;  /* cap blocks */
  blk64_t *blk;        /* blk[i]: the block held in slot i */
  uint32_t *table;     /* open addressing over blk: slot + 1, or 0 (free) */
  size_t mask;         /* table size - 1 */
  unsigned char *run;  /* one coalesced run on its way out */
  struct held_order { blk64_t blk; uint32_t slot; } *order;
};

static size_t hash_of(blk64_t blk, size_t mask)
{
  return (size_t)((blk * 0x9E3779B97F4A7C15ull) >> 32) & mask;
}

/* The table cell for blk: holding it, or the free cell where it would go. */
static uint32_t *cell_of(struct iocache *c, blk64_t blk)
{
  size_t i = hash_of(blk, c->mask);
  while (c->table[i] != 0 && c->blk[c->table[i] - 1] != blk)
    i = (i + 1) & c->mask;
  return &c->table[i];
}

static unsigned char *held(struct iocache *c, int bs, blk64_t blk)
{
  if (c->n == 0)
    return NULL;
  uint32_t slot = *cell_of(c, blk);
  return slot ? c->mem + (size_t)(slot - 1) * (size_t)bs : NULL;
}

static void release(struct iocache *c)
{
  free(c->mem);
  free(c->blk);
  free(c->table);
  free(c->run);
  free(c->order);
  c->mem = c->run = NULL;
  c->blk = NULL;
  c->table = NULL;
  c->order = NULL;
  c->cap = c->n = 0;
}

static errcode_t reserve(struct iocache *c, int bs)
{
  if (c->cap)
    return 0;
  size_t cap = HELD_BYTES / (size_t)bs;
  size_t tsize = 1;
  while (tsize < 2 * cap)
    tsize <<= 1;
  c->mem = malloc(cap * (size_t)bs);
  c->blk = malloc(cap * sizeof(*c->blk));
  c->table = calloc(tsize, sizeof(*c->table));
  c->run = malloc((size_t)RUN_BLOCKS * (size_t)bs);
  c->order = malloc(cap * sizeof(*c->order));
  if (!c->mem || !c->blk || !c->table || !c->run || !c->order) {
    release(c);
    return EXT2_ET_NO_MEMORY;
  }
  c->cap = cap;
  c->mask = tsize - 1;
  return 0;
}

static int by_block(const void *a, const void *b)
{
  blk64_t x = ((const struct held_order *)a)->blk, y = ((const struct held_order *)b)->blk;
  return (x > y) - (x < y);
}

/* Writes every held block, in block order, contiguous ones together, and
 * forgets them.  On failure they stay held and the error is returned. */
static errcode_t write_held(io_channel ch)
{
  struct iocache *c = ch->private_data;
  if (c->n == 0)
    return 0;
  size_t bs = (size_t)ch->block_size;
  for (size_t i = 0; i < c->n; i++)
    c->order[i] = (struct held_order){c->blk[i], (uint32_t)i};
  qsort(c->order, c->n, sizeof(*c->order), by_block);
  for (size_t i = 0; i < c->n;) {
    size_t len = 0;
    do {
      memcpy(c->run + len * bs, c->mem + (size_t)c->order[i + len].slot * bs, bs);
      len++;
    } while (i + len < c->n && len < RUN_BLOCKS &&
             c->order[i + len].blk == c->order[i].blk + len);
    errcode_t e = io_channel_write_blk64(c->inner, c->order[i].blk, (int)len, c->run);
    if (e)
      return e;
    /* Only starts the writeback (errors surface at the fsync that ends the
     * build): the device writes these while the build goes on, instead of
     * all of them, ~50 MB of inode tables for 200,000 files, at that fsync
     * after the last layer, when nothing else is left to overlap. */
    if (c->sync_fd >= 0)
      sync_file_range(c->sync_fd, (off64_t)(c->order[i].blk * bs), (off64_t)(len * bs),
                      SYNC_FILE_RANGE_WRITE);
    i += len;
  }
  memset(c->table, 0, (c->mask + 1) * sizeof(*c->table));
  c->n = 0;
  return 0;
}

static errcode_t cache_open(const char *name, int flags, io_channel *out)
{
  if (name == NULL)
    return EXT2_ET_BAD_DEVICE_NAME;
  /* The Unix manager underneath caches nothing: its cache of Debian 12's
   * libext2fs keeps a clean copy of a block across a multi-block write of
   * it, and would hand that stale copy back. */
  io_channel inner = NULL;
  errcode_t e = unix_io_manager->open(name, flags | IO_FLAG_NOCACHE, &inner);
  if (e)
    return e;
  io_channel ch = calloc(1, sizeof(*ch));
  struct iocache *c = calloc(1, sizeof(*c));
  char *copy = strdup(name);
  if (!ch || !c || !copy) {
    free(ch);
    free(c);
    free(copy);
    io_channel_close(inner);
    return EXT2_ET_NO_MEMORY;
  }
  c->inner = inner;
  c->sync_fd = open(name, O_RDONLY | O_CLOEXEC);
  ch->magic = EXT2_ET_MAGIC_IO_CHANNEL;
  ch->manager = sbd_iocache_manager;
  ch->name = copy;
  ch->block_size = inner->block_size;
  ch->refcount = 1;
  ch->flags = inner->flags;
  ch->align = inner->align;
  ch->private_data = c;
  *out = ch;
  return 0;
}

static errcode_t cache_close(io_channel ch)
{
  if (--ch->refcount > 0)
    return 0;
  struct iocache *c = ch->private_data;
  errcode_t e = write_held(ch);
  errcode_t e2 = io_channel_close(c->inner);
  if (c->sync_fd >= 0)
    close(c->sync_fd);
  release(c);
  free(c);
  free(ch->name);
  free(ch);
  return e ? e : e2;
}

static errcode_t cache_set_blksize(io_channel ch, int blksize)
{
  struct iocache *c = ch->private_data;
  if (blksize == ch->block_size)
    return 0;
  errcode_t e = write_held(ch);
  if (e)
    return e;
  release(c);
  if ((e = io_channel_set_blksize(c->inner, blksize)))
    return e;
  ch->block_size = blksize;
  return 0;
}

static errcode_t cache_read_blk64(io_channel ch, unsigned long long block, int count, void *data)
{
  struct iocache *c = ch->private_data;
  if (c->n == 0)
    return io_channel_read_blk64(c->inner, block, count, data);
  if (count < 0) { /* bytes: may cover part of a held block */
    errcode_t e = write_held(ch);
    return e ? e : io_channel_read_blk64(c->inner, block, count, data);
  }
  size_t bs = (size_t)ch->block_size;
  unsigned char *p = data;
  for (int i = 0; i < count;) {
    const unsigned char *h = held(c, ch->block_size, block + (unsigned)i);
    if (h) {
      memcpy(p + (size_t)i * bs, h, bs);
      i++;
      continue;
    }
    int j = i + 1;
    while (j < count && !held(c, ch->block_size, block + (unsigned)j))
      j++;
    errcode_t e = io_channel_read_blk64(c->inner, block + (unsigned)i, j - i, p + (size_t)i * bs);
    if (e)
      return e;
    i = j;
  }
  return 0;
}

static errcode_t cache_write_blk64(io_channel ch, unsigned long long block, int count,
                                   const void *data)
{
  struct iocache *c = ch->private_data;
  errcode_t e;
  /* Bytes, or a run too long to be worth holding: everything held goes
   * first, so that no older copy of these blocks can be written after. */
  if (count < 0 || (c->cap && (size_t)count > c->cap / 4)) {
    if ((e = write_held(ch)))
      return e;
    return io_channel_write_blk64(c->inner, block, count, data);
  }
  if ((e = reserve(c, ch->block_size)))
    return e;
  size_t bs = (size_t)ch->block_size;
  const unsigned char *p = data;
  for (int i = 0; i < count; i++) {
    uint32_t *cell = cell_of(c, block + (unsigned)i);
    if (*cell == 0) {
      if (c->n == c->cap) {
        if ((e = write_held(ch)))
          return e;
        cell = cell_of(c, block + (unsigned)i);
      }
      c->blk[c->n] = block + (unsigned)i;
      *cell = (uint32_t)++c->n;
    }
    memcpy(c->mem + (size_t)(*cell - 1) * bs, p + (size_t)i * bs, bs);
  }
  return 0;
}

static errcode_t cache_read_blk(io_channel ch, unsigned long block, int count, void *data)
{
  return cache_read_blk64(ch, block, count, data);
}

static errcode_t cache_write_blk(io_channel ch, unsigned long block, int count, const void *data)
{
  return cache_write_blk64(ch, block, count, data);
}

static errcode_t cache_flush(io_channel ch)
{
  struct iocache *c = ch->private_data;
  errcode_t e = write_held(ch);
  return e ? e : io_channel_flush(c->inner);
}

static errcode_t cache_write_byte(io_channel ch, unsigned long offset, int count, const void *data)
{
  struct iocache *c = ch->private_data;
  errcode_t e = write_held(ch);
  return e ? e : io_channel_write_byte(c->inner, offset, count, data);
}

static errcode_t cache_set_option(io_channel ch, const char *option, const char *arg)
{
  struct iocache *c = ch->private_data;
  if (!c->inner->manager->set_option)
    return EXT2_ET_INVALID_ARGUMENT;
  return c->inner->manager->set_option(c->inner, option, arg);
}

static errcode_t cache_get_stats(io_channel ch, io_stats *stats)
{
  struct iocache *c = ch->private_data;
  if (!c->inner->manager->get_stats)
    return EXT2_ET_UNIMPLEMENTED;
  return c->inner->manager->get_stats(c->inner, stats);
}

static errcode_t cache_discard(io_channel ch, unsigned long long block, unsigned long long count)
{
  struct iocache *c = ch->private_data;
  errcode_t e = write_held(ch);
  return e ? e : io_channel_discard(c->inner, block, count);
}

static errcode_t cache_zeroout(io_channel ch, unsigned long long block, unsigned long long count)
{
  struct iocache *c = ch->private_data;
  errcode_t e = write_held(ch);
  return e ? e : io_channel_zeroout(c->inner, block, count);
}

static errcode_t cache_readahead(io_channel ch, unsigned long long block, unsigned long long count)
{
  struct iocache *c = ch->private_data;
  return io_channel_cache_readahead(c->inner, block, count);
}

static struct struct_io_manager iocache_manager = {
    .magic = EXT2_ET_MAGIC_IO_MANAGER,
    .name = "sbdisk write-back I/O manager",
    .open = cache_open,
    .close = cache_close,
    .set_blksize = cache_set_blksize,
    .read_blk = cache_read_blk,
    .write_blk = cache_write_blk,
    .flush = cache_flush,
    .write_byte = cache_write_byte,
    .set_option = cache_set_option,
    .get_stats = cache_get_stats,
    .read_blk64 = cache_read_blk64,
    .write_blk64 = cache_write_blk64,
    .discard = cache_discard,
    .cache_readahead = cache_readahead,
    .zeroout = cache_zeroout,
};

io_manager const sbd_iocache_manager = &iocache_manager;

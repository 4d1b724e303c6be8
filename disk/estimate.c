/* Auto-sizing: what the layers will take on ext4, from their tar headers
 * alone, and the smallest whole-GiB disk that holds it with 10% free. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <string.h>

#include "disk/disk.h"
#include "disk/ext4.h"
#include "disk/stream.h"
#include "lib/util.h"

struct usage {
  uint64_t blocks; /* data, symlink, xattr and extent blocks, a block per directory */
  uint64_t dirent_bytes;
  uint64_t inodes;
};

static uint64_t div_up(uint64_t x, uint64_t y)
{
  return (x + y - 1) / y;
}

/* Upper bounds: deletions inside a layer are not subtracted. */
static void account(struct usage *u, struct archive_entry *e)
{
  const char *name = archive_entry_pathname(e);
  const char *base = name ? strrchr(name, '/') : NULL;
  size_t name_len = base ? strlen(base + 1) : name ? strlen(name) : 0;
  static const uint64_t bs = SBD_EXT4_BLOCK_SIZE;
  u->inodes++;
  /* its directory entry: 8 bytes + the name, 4-aligned */
  u->dirent_bytes += (8 + name_len + 3) & ~3ull;
  switch (archive_entry_filetype(e)) {
  case AE_IFREG: {
    uint64_t blocks = div_up((uint64_t)archive_entry_size(e), bs);
    /* extent tree blocks: one per 340 extents of up to 128 MiB */
    u->blocks += blocks + div_up(blocks, 340ull * 32768);
    break;
  }
  case AE_IFDIR:
    u->blocks += 1;
    break;
  case AE_IFLNK: {
    const char *t = archive_entry_symlink(e);
    if (t && strlen(t) >= 60)
      u->blocks += 1;
    break;
  }
  default:
    break;
  }
  /* xattrs beyond what fits in the inode go to one xattr block */
  const char *key;
  const void *value;
  size_t len, total = 0;
  archive_entry_xattr_reset(e);
  while (archive_entry_xattr_next(e, &key, &value, &len) == ARCHIVE_OK)
    total += 16 + strlen(key) + len;
  if (total > 64)
    u->blocks += 1;
}

static int scan_layer(const struct sbd_disk_layer *l, struct usage *u, sbd_error_t *err)
{
  struct sbd_stream *stream = NULL;
  if (sbd_stream_open(l->blob_path, l->compressed ? SBD_STREAM_DETECT : SBD_STREAM_NONE, &stream,
                      err) < 0)
    return sbd_error_prefix(err, "%s: ", l->what);
  int ret = 0;
  {
    cleanup_archive struct archive *ar = NULL;
    if (sbd_stream_archive_open(stream, &ar, err) < 0) {
      ret = -1;
    } else {
      for (;;) {
        struct archive_entry *e;
        int r = archive_read_next_header(ar, &e);
        if (r == ARCHIVE_EOF)
          break;
        if (r < ARCHIVE_WARN) {
          ret = sbd_stream_archive_error(stream, ar, err);
          break;
        }
        account(u, e);
      }
    }
  }
  sbd_stream_free(stream);
  return ret < 0 ? sbd_error_prefix(err, "%s: ", l->what) : 0;
}

static bool has_backup(uint64_t g)
{
  if (g <= 1)
    return true;
  for (uint64_t base = 3; base <= 7; base += 2) {
    uint64_t p = base;
    while (p < g)
      p *= base;
    if (p == g)
      return true;
  }
  return false;
}

/* Blocks the format itself takes on a disk of `blocks` with `inodes`:
 * inode tables, bitmaps, superblock and descriptor copies (with the 1024
 * reserved for growth), the journal, and the root directories. */
static uint64_t overhead(uint64_t blocks, uint64_t inodes)
{
  uint64_t groups = div_up(blocks, 32768);
  uint64_t desc = div_up(groups, SBD_EXT4_BLOCK_SIZE / 64);
  uint64_t backups = 0;
  for (uint64_t g = 0; g < groups; g++)
    if (has_backup(g))
      backups++;
  int journal = ext2fs_default_journal_size(blocks);
  return div_up(inodes * 256, SBD_EXT4_BLOCK_SIZE) + 2 * groups + backups * (1 + desc + 1024) +
         (journal > 0 ? (uint64_t)journal : 0) + 64;
}

int sbd_disk_pick_size(uint64_t blocks_needed, uint64_t inodes_needed, uint64_t *size,
                       uint64_t *inodes, sbd_error_t *err)
{
  for (uint64_t gib = SBD_DISK_MIN_SIZE / SBD_GIB; gib <= 64 * 1024; gib++) {
    uint64_t blocks = gib * SBD_GIB / SBD_EXT4_BLOCK_SIZE;
    uint64_t default_inodes = gib * SBD_GIB / SBD_EXT4_INODE_RATIO;
    /* keep 10% of the inodes free as well: more inodes when files are many */
    uint64_t want_inodes = inodes_needed + inodes_needed / 9;
    uint64_t n = want_inodes > default_inodes ? want_inodes : default_inodes;
    if (n > 0xffffffffull)
      return sbd_error_set(err, SBD_EXIT_NOSPACE, 0, "the images hold more files than ext4 allows");
    if (overhead(blocks, n) + blocks_needed <= blocks - blocks / 10) {
      *size = gib * SBD_GIB;
      *inodes = n == default_inodes ? 0 : n;
      return 0;
    }
  }
  return sbd_error_set(err, SBD_EXIT_NOSPACE, 0, "the images need more than 64 TiB");
}

int sbd_disk_auto_size(const struct sbd_disk_spec *spec, uint64_t *size, uint64_t *inodes,
                       sbd_error_t *err)
{
  struct usage u = {0};
  for (size_t i = 0; i < spec->n_layers; i++) {
    if (spec->events && spec->events->sizing)
      spec->events->sizing(spec->events->opaque, i);
    if (scan_layer(&spec->layers[i], &u, err) < 0)
      return -1;
  }
  /* Per snapshot: snapshots/N, its fs root, and a few parents tars omit. */
  u.inodes += 16 + 8 * spec->n_layers;
  u.blocks += 16 + 8 * spec->n_layers + div_up(u.dirent_bytes, SBD_EXT4_BLOCK_SIZE - 12);
  return sbd_disk_pick_size(u.blocks, u.inodes, size, inodes, err);
}

/* Whole directories written in one pass from an in-memory list of entries,
 * instead of one ext2fs_link() per name (which scans the directory each
 * time: quadratic in its size). */
#include <string.h>
#include <sys/stat.h>

#include "ext4_private.h"
#include "lib/util.h"

#define TAIL_SIZE sizeof(struct ext2_dir_entry_tail)
#define BLOCK_LIMIT (SBD_EXT4_BLOCK_SIZE - TAIL_SIZE)

struct dir_builder {
  struct sbd_buf blocks; /* whole blocks, appended as they fill */
  size_t off;            /* offset of the next entry in the current block */
  size_t last;           /* offset of the last entry in the current block */
  bool open;             /* a current block exists */
};

static size_t rec_len_for(size_t name_len)
{
  return (8 + name_len + 3) & ~(size_t)3;
}

static char *current_block(struct dir_builder *b)
{
  return b->blocks.data + b->blocks.len - SBD_EXT4_BLOCK_SIZE;
}

/* Stretches the last entry to the tail and writes the tail marker. */
static void close_block(struct dir_builder *b)
{
  char *blk = current_block(b);
  struct ext2_dir_entry_2 *last = (struct ext2_dir_entry_2 *)(blk + b->last);
  last->rec_len = ext2fs_cpu_to_le16((__u16)(BLOCK_LIMIT - b->last));
  struct ext2_dir_entry_tail *t = (struct ext2_dir_entry_tail *)(blk + BLOCK_LIMIT);
  memset(t, 0, sizeof(*t));
  t->det_rec_len = ext2fs_cpu_to_le16(TAIL_SIZE);
  t->det_reserved_name_len = EXT2_DIR_NAME_LEN_CSUM;
  b->open = false;
}

static void add_entry(struct dir_builder *b, const char *name, size_t len, ext2_ino_t ino,
                      uint8_t ft)
{
  size_t rec = rec_len_for(len);
  if (b->open && b->off + rec > BLOCK_LIMIT)
    close_block(b);
  if (!b->open) {
    static const char zero[SBD_EXT4_BLOCK_SIZE];
    sbd_buf_append(&b->blocks, zero, sizeof(zero));
    b->off = 0;
    b->open = true;
  }
  struct ext2_dir_entry_2 *d = (struct ext2_dir_entry_2 *)(current_block(b) + b->off);
  d->inode = ext2fs_cpu_to_le32(ino);
  d->rec_len = ext2fs_cpu_to_le16((__u16)rec);
  d->name_len = (__u8)len;
  d->file_type = ft;
  memcpy(d->name, name, len);
  b->last = b->off;
  b->off += rec;
}

int sbd_ext4_write_dir(struct sbd_ext4 *fs, ext2_ino_t ino, ext2_ino_t parent,
                       const struct sbd_dirent *ents, size_t n, size_t nsubdirs,
                       const struct sbd_attrs *a, sbd_error_t *err)
{
  struct dir_builder b = {0};
  add_entry(&b, ".", 1, ino, EXT2_FT_DIR);
  add_entry(&b, "..", 2, parent, EXT2_FT_DIR);
  for (size_t i = 0; i < n; i++) {
    if (ents[i].name_len == 0 || ents[i].name_len > EXT2_NAME_LEN) {
      sbd_buf_free(&b.blocks);
      return sbd_error_set(err, SBD_EXIT_IMAGE, 0, "file name of %zu bytes does not fit ext4",
                           ents[i].name_len);
    }
    add_entry(&b, ents[i].name, ents[i].name_len, ents[i].ino, ents[i].file_type);
  }
  close_block(&b);

  size_t nblocks = b.blocks.len / SBD_EXT4_BLOCK_SIZE;
  for (size_t i = 0; i < nblocks; i++) {
    char *blk = b.blocks.data + i * SBD_EXT4_BLOCK_SIZE;
    struct ext2_dir_entry_tail *t = (struct ext2_dir_entry_tail *)(blk + BLOCK_LIMIT);
    t->det_checksum = ext2fs_cpu_to_le32(sbd_ext4_csum_ino(fs, ino, blk, BLOCK_LIMIT));
  }

  struct sbd_extent_list l = {0};
  struct sbd_inode_buf ib;
  sbd_ext4_inode_init(fs, &ib, a);
  size_t links = 2 + nsubdirs;
  /* dir_nlink: past the limit a directory's count is 1, meaning "many". */
  ib.large.i_links_count = links > EXT2_LINK_MAX ? 1 : (__u16)links;
  uint64_t size = (uint64_t)nblocks * SBD_EXT4_BLOCK_SIZE;
  ib.large.i_size = (__u32)size;
  ib.large.i_size_high = (__u32)(size >> 32);
  int ret = sbd_ext4_write_blocks(fs, &l, 0, b.blocks.data, nblocks, err);
  if (ret == 0)
    ret = sbd_ext4_write_extent_tree(fs, ino, &ib.large, &l, err);
  if (ret == 0)
    ret = sbd_ext4_inode_write(fs, ino, &ib, err);
  sbd_extent_list_free(&l);
  sbd_buf_free(&b.blocks);
  return ret;
}

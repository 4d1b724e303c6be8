/* Whole directories written in one pass from an in-memory list of entries,
 * instead of one ext2fs_link() per name (which scans the directory each
 * time: quadratic in its size).  A directory that needs more than one block
 * is hash-indexed (htree), as the kernel makes it when a directory grows
 * past one block, so lookups on the node stay logarithmic. */
#include <stdlib.h>
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

static void seal_leaves(struct sbd_ext4 *fs, ext2_ino_t ino, char *blocks, size_t from, size_t to)
{
  for (size_t i = from; i < to; i++) {
    char *blk = blocks + i * SBD_EXT4_BLOCK_SIZE;
    struct ext2_dir_entry_tail *t = (struct ext2_dir_entry_tail *)(blk + BLOCK_LIMIT);
    t->det_checksum = ext2fs_cpu_to_le32(sbd_ext4_csum_ino(fs, ino, 0, blk, BLOCK_LIMIT));
  }
}

/* Writes the blocks and the inode of a directory. */
static int write_dir_inode(struct sbd_ext4 *fs, ext2_ino_t ino, const char *blocks, size_t nblocks,
                           bool indexed, size_t nsubdirs, const struct sbd_attrs *a,
                           sbd_error_t *err)
{
  struct sbd_extent_list l = {0};
  struct sbd_inode_buf ib;
  sbd_ext4_inode_init(fs, &ib, a);
  size_t links = 2 + nsubdirs;
  /* dir_nlink: past the limit a directory's count is 1, meaning "many". */
  ib.large.i_links_count = links > EXT2_LINK_MAX ? 1 : (__u16)links;
  uint64_t size = (uint64_t)nblocks * SBD_EXT4_BLOCK_SIZE;
  ib.large.i_size = (__u32)size;
  ib.large.i_size_high = (__u32)(size >> 32);
  if (indexed)
    ib.large.i_flags |= EXT2_INDEX_FL;
  int ret = sbd_ext4_write_blocks(fs, &l, 0, blocks, nblocks, err);
  if (ret == 0)
    ret = sbd_ext4_write_extent_tree(fs, ino, &ib.large, &l, err);
  if (ret == 0)
    ret = sbd_ext4_inode_write(fs, ino, &ib, err);
  sbd_extent_list_free(&l);
  return ret;
}

/* --- htree --------------------------------------------------------------------- */

struct hashed {
  const struct sbd_dirent *d;
  ext2_dirhash_t hash;
  ext2_dirhash_t minor;
};

static int hashed_cmp(const void *x, const void *y)
{
  const struct hashed *a = x, *b = y;
  if (a->hash != b->hash)
    return a->hash < b->hash ? -1 : 1;
  if (a->minor != b->minor)
    return a->minor < b->minor ? -1 : 1;
  size_t n = a->d->name_len < b->d->name_len ? a->d->name_len : b->d->name_len;
  int c = memcmp(a->d->name, b->d->name, n);
  return c ? c : (a->d->name_len < b->d->name_len ? -1 : a->d->name_len > b->d->name_len);
}

static uint16_t hashed_top16(const void *x)
{
  return (uint16_t)(((const struct hashed *)x)->hash >> 16);
}

/* Sorts by (hash, minor), then name: a radix sort on the two hashes, 8 bits
 * at a time from the lowest (passes where every entry has the same byte are
 * skipped), then entries whose hashes are both equal by name.  Linear in the
 * entries: it runs after the last layer's last byte, when nothing else is
 * left to overlap it (a comparison sort of the 100,000 names of one
 * directory and the 300-odd of each of 300 more took ~40 ms there).  Crafted
 * collisions go to sbd_sort_spread, which keeps them from turning quadratic. */
static uint8_t hashed_byte(const struct hashed *e, unsigned pass)
{
  uint64_t key = (uint64_t)e->hash << 32 | e->minor;
  return (uint8_t)(key >> (8 * pass));
}

static void sort_hashed(struct hashed *h, size_t n)
{
  if (n < 2)
    return;
  cleanup_free struct hashed *spare = xmalloc(n * sizeof(*spare));
  struct hashed *src = h, *dst = spare;
  for (unsigned pass = 0; pass < 8; pass++) {
    size_t at[256 + 1] = {0};
    for (size_t i = 0; i < n; i++)
      at[hashed_byte(&src[i], pass) + 1]++;
    if (at[hashed_byte(&src[0], pass) + 1] == n)
      continue;
    for (size_t d = 0; d < 256; d++)
      at[d + 1] += at[d];
    for (size_t i = 0; i < n; i++)
      dst[at[hashed_byte(&src[i], pass)]++] = src[i];
    struct hashed *t = src;
    src = dst;
    dst = t;
  }
  if (src != h)
    memcpy(h, src, n * sizeof(*h));
  for (size_t i = 0, j; i < n; i = j) {
    for (j = i + 1; j < n && h[j].hash == h[i].hash && h[j].minor == h[i].minor; j++)
      ;
    if (j - i > 1)
      sbd_sort_spread(h + i, j - i, sizeof(*h), hashed_top16, hashed_cmp);
  }
}

#define DX_TAIL sizeof(struct ext2_dx_tail)
/* dx entries in the root block (after "." and ".." and the root info) and
 * in an interior node (after an empty dirent), leaving room for the tail */
#define ROOT_LIMIT ((SBD_EXT4_BLOCK_SIZE - 32 - DX_TAIL) / sizeof(struct ext2_dx_entry))
#define NODE_LIMIT ((SBD_EXT4_BLOCK_SIZE - 8 - DX_TAIL) / sizeof(struct ext2_dx_entry))

/* A dx block's entries: count/limit in the first entry's hash slot. */
static void dx_fill(char *entries, size_t limit, const uint32_t *hashes, const uint32_t *blocks,
                    size_t count)
{
  struct ext2_dx_entry *e = (struct ext2_dx_entry *)entries;
  struct ext2_dx_countlimit *cl = (struct ext2_dx_countlimit *)entries;
  for (size_t i = 0; i < count; i++) {
    if (i > 0)
      e[i].hash = ext2fs_cpu_to_le32(hashes[i]);
    e[i].block = ext2fs_cpu_to_le32(blocks[i]);
  }
  cl->limit = ext2fs_cpu_to_le16((__u16)limit);
  cl->count = ext2fs_cpu_to_le16((__u16)count);
}

static int dx_seal(struct sbd_ext4 *fs, ext2_ino_t ino, char *blk, sbd_error_t *err)
{
  errcode_t e = ext2fs_dir_block_csum_set(fs->fs, ino, (struct ext2_dir_entry *)blk);
  if (e)
    return sbd_ext4_error(err, e, "checksumming an index block of directory inode %u", ino);
  return 0;
}

static int write_htree(struct sbd_ext4 *fs, ext2_ino_t ino, ext2_ino_t parent,
                       const struct sbd_dirent *ents, size_t n, size_t nsubdirs,
                       const struct sbd_attrs *a, sbd_error_t *err)
{
  ext2_filsys efs = fs->fs;
  int version = efs->super->s_def_hash_version;
  /* what libext2fs and the kernel use for the "unsigned char" flavour */
  if (version <= EXT2_HASH_TEA && (efs->super->s_flags & EXT2_FLAGS_UNSIGNED_HASH))
    version += 3;
  cleanup_free struct hashed *h = xcalloc(n, sizeof(*h));
  for (size_t i = 0; i < n; i++) {
    h[i].d = &ents[i];
    errcode_t e = ext2fs_dirhash2(version, ents[i].name, (int)ents[i].name_len, NULL, 0,
                                  efs->super->s_hash_seed, &h[i].hash, &h[i].minor);
    if (e)
      return sbd_ext4_error(err, e, "hashing a name in directory inode %u", ino);
  }
  sort_hashed(h, n);

  /* Leaves, in hash order; where a hash continues from the previous leaf,
   * the leaf's index hash carries the collision bit. */
  struct dir_builder b = {0};
  cleanup_free uint32_t *leaf_hash = xcalloc(n + 1, sizeof(*leaf_hash));
  size_t leaves = 0;
  for (size_t i = 0; i < n; i++) {
    size_t before = b.blocks.len;
    add_entry(&b, h[i].d->name, h[i].d->name_len, h[i].d->ino, h[i].d->file_type);
    if (b.blocks.len != before) {
      bool continues = i > 0 && h[i].hash == h[i - 1].hash;
      leaf_hash[leaves++] = h[i].hash | (continues ? 1 : 0);
    }
  }
  close_block(&b);
  size_t nodes = leaves <= ROOT_LIMIT ? 0 : (leaves + NODE_LIMIT - 1) / NODE_LIMIT;
  if (nodes > ROOT_LIMIT) {
    sbd_buf_free(&b.blocks);
    return sbd_error_set(err, SBD_EXIT_IMAGE, 0, "directory too large for a two-level htree");
  }

  /* Block 0: the root; then interior nodes; then the leaves. */
  size_t total = 1 + nodes + leaves;
  cleanup_free char *blocks = xcalloc(total, SBD_EXT4_BLOCK_SIZE);
  memcpy(blocks + (1 + nodes) * SBD_EXT4_BLOCK_SIZE, b.blocks.data, leaves * SBD_EXT4_BLOCK_SIZE);
  sbd_buf_free(&b.blocks);
  seal_leaves(fs, ino, blocks, 1 + nodes, total);

  char *root = blocks;
  struct ext2_dir_entry_2 *dot = (struct ext2_dir_entry_2 *)root;
  dot->inode = ext2fs_cpu_to_le32(ino);
  dot->rec_len = ext2fs_cpu_to_le16(12);
  dot->name_len = 1;
  dot->file_type = EXT2_FT_DIR;
  dot->name[0] = '.';
  struct ext2_dir_entry_2 *dotdot = (struct ext2_dir_entry_2 *)(root + 12);
  dotdot->inode = ext2fs_cpu_to_le32(parent);
  dotdot->rec_len = ext2fs_cpu_to_le16(SBD_EXT4_BLOCK_SIZE - 12);
  dotdot->name_len = 2;
  dotdot->file_type = EXT2_FT_DIR;
  dotdot->name[0] = dotdot->name[1] = '.';
  struct ext2_dx_root_info *info = (struct ext2_dx_root_info *)(root + 24);
  info->hash_version = (__u8)efs->super->s_def_hash_version;
  info->info_length = 8;
  info->indirect_levels = nodes ? 1 : 0;

  cleanup_free uint32_t *blk_of = xcalloc(leaves + 1, sizeof(*blk_of));
  for (size_t i = 0; i < leaves; i++)
    blk_of[i] = (uint32_t)(1 + nodes + i);
  if (nodes == 0) {
    dx_fill(root + 32, ROOT_LIMIT, leaf_hash, blk_of, leaves);
  } else {
    cleanup_free uint32_t *node_hash = xcalloc(nodes, sizeof(*node_hash));
    cleanup_free uint32_t *node_blk = xcalloc(nodes, sizeof(*node_blk));
    for (size_t j = 0; j < nodes; j++) {
      size_t first = j * NODE_LIMIT;
      size_t count = leaves - first < NODE_LIMIT ? leaves - first : NODE_LIMIT;
      char *node = blocks + (1 + j) * SBD_EXT4_BLOCK_SIZE;
      struct ext2_dir_entry_2 *empty = (struct ext2_dir_entry_2 *)node;
      empty->rec_len = ext2fs_cpu_to_le16(SBD_EXT4_BLOCK_SIZE);
      dx_fill(node + 8, NODE_LIMIT, leaf_hash + first, blk_of + first, count);
      node_hash[j] = leaf_hash[first];
      node_blk[j] = (uint32_t)(1 + j);
      if (dx_seal(fs, ino, node, err) < 0)
        return -1;
    }
    dx_fill(root + 32, ROOT_LIMIT, node_hash, node_blk, nodes);
  }
  if (dx_seal(fs, ino, root, err) < 0)
    return -1;
  return write_dir_inode(fs, ino, blocks, total, true, nsubdirs, a, err);
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
  if (nblocks > 1 && ext2fs_has_feature_dir_index(fs->fs->super)) {
    sbd_buf_free(&b.blocks);
    return write_htree(fs, ino, parent, ents, n, nsubdirs, a, err);
  }
  seal_leaves(fs, ino, b.blocks.data, 0, nblocks);
  int ret = write_dir_inode(fs, ino, b.blocks.data, nblocks, false, nsubdirs, a, err);
  sbd_buf_free(&b.blocks);
  return ret;
}

/* Regular files and symlinks: data streamed into contiguous runs, all-zero
 * blocks left as holes, and the extent tree built once at the end. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ext4_private.h"
#include "lib/util.h"

/* Data is collected and written in chunks this large: few, big writes. */
#define FILE_CHUNK (1024u * 1024u)

struct sbd_ext4_file {
  struct sbd_ext4 *fs;
  ext2_ino_t ino;
  uint64_t size;      /* bytes received */
  uint32_t next_lblk; /* logical block of buf[0] */
  char *buf;
  size_t buf_len;
  bool sealed; /* its last block written unpadded by sbd_ext4_file_write_last */
  struct sbd_extent_list extents;
};

void sbd_extent_list_add(struct sbd_extent_list *l, uint32_t lblk, blk64_t pblk, uint32_t len)
{
  while (len > 0) {
    if (l->n > 0) {
      struct sbd_extent *last = &l->v[l->n - 1];
      if (last->lblk + last->len == lblk && last->pblk + last->len == pblk &&
          last->len < SBD_EXT4_MAX_EXTENT_LEN) {
        uint32_t take = SBD_EXT4_MAX_EXTENT_LEN - last->len;
        if (take > len)
          take = len;
        last->len += take;
        lblk += take;
        pblk += take;
        len -= take;
        continue;
      }
    }
    if (l->n == l->cap) {
      l->cap = l->cap ? 2 * l->cap : 4;
      l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
    }
    uint32_t take = len < SBD_EXT4_MAX_EXTENT_LEN ? len : SBD_EXT4_MAX_EXTENT_LEN;
    l->v[l->n++] = (struct sbd_extent){.lblk = lblk, .len = take, .pblk = pblk};
    lblk += take;
    pblk += take;
    len -= take;
  }
}

void sbd_extent_list_free(struct sbd_extent_list *l)
{
  free(l->v);
  memset(l, 0, sizeof(*l));
}

/* One node of the tree under construction: where it starts and lives. */
struct tree_node {
  uint32_t first_lblk;
  blk64_t pblk;
};

#define ENTRIES_PER_BLOCK ((SBD_EXT4_BLOCK_SIZE - sizeof(struct ext3_extent_header)) / 12)
#define ENTRIES_IN_INODE 4

static void header_init(struct ext3_extent_header *eh, size_t entries, size_t max, int depth)
{
  eh->eh_magic = ext2fs_cpu_to_le16(EXT3_EXT_MAGIC);
  eh->eh_entries = ext2fs_cpu_to_le16((__u16)entries);
  eh->eh_max = ext2fs_cpu_to_le16((__u16)max);
  eh->eh_depth = ext2fs_cpu_to_le16((__u16)depth);
  eh->eh_generation = 0;
}

static void leaf_entry(struct ext3_extent *e, const struct sbd_extent *x)
{
  e->ee_block = ext2fs_cpu_to_le32(x->lblk);
  e->ee_len = ext2fs_cpu_to_le16((__u16)x->len);
  e->ee_start_hi = ext2fs_cpu_to_le16((__u16)(x->pblk >> 32));
  e->ee_start = ext2fs_cpu_to_le32((__u32)x->pblk);
}

static void index_entry(struct ext3_extent_idx *e, const struct tree_node *n)
{
  e->ei_block = ext2fs_cpu_to_le32(n->first_lblk);
  e->ei_leaf = ext2fs_cpu_to_le32((__u32)n->pblk);
  e->ei_leaf_hi = ext2fs_cpu_to_le16((__u16)(n->pblk >> 32));
  e->ei_unused = 0;
}

/* Writes one tree block holding `count` entries (leaf extents at depth 0,
 * index entries above) and returns where it went. */
static int write_tree_block(struct sbd_ext4 *fs, ext2_ino_t ino, int depth,
                            const struct sbd_extent *leaves, const struct tree_node *kids,
                            size_t count, struct tree_node *out, blk64_t *tree_blocks,
                            sbd_error_t *err)
{
  char block[SBD_EXT4_BLOCK_SIZE];
  memset(block, 0, sizeof(block));
  struct ext3_extent_header *eh = (struct ext3_extent_header *)block;
  header_init(eh, count, ENTRIES_PER_BLOCK, depth);
  for (size_t i = 0; i < count; i++) {
    if (depth == 0)
      leaf_entry((struct ext3_extent *)(eh + 1) + i, &leaves[i]);
    else
      index_entry((struct ext3_extent_idx *)(eh + 1) + i, &kids[i]);
  }
  size_t tail = sizeof(*eh) + ENTRIES_PER_BLOCK * 12;
  __u32 crc = ext2fs_cpu_to_le32(sbd_ext4_csum_ino(fs, ino, 0, block, tail));
  memcpy(block + tail, &crc, sizeof(crc));

  blk64_t pblk, plen;
  if (sbd_ext4_alloc_blocks(fs, 1, &pblk, &plen, err) < 0)
    return -1;
  if (sbd_ext4_data_put(fs, pblk, block, 1, err) < 0)
    return -1;
  out->first_lblk = depth == 0 ? leaves[0].lblk : kids[0].first_lblk;
  out->pblk = pblk;
  (*tree_blocks)++;
  return 0;
}

int sbd_ext4_write_extent_tree(struct sbd_ext4 *fs, ext2_ino_t ino, struct ext2_inode_large *in,
                               const struct sbd_extent_list *l, sbd_error_t *err)
{
  struct ext3_extent_header *root = (struct ext3_extent_header *)in->i_block;
  memset(in->i_block, 0, sizeof(in->i_block));
  in->i_flags |= EXT4_EXTENTS_FL;
  blk64_t data_blocks = 0, tree_blocks = 0;
  for (size_t i = 0; i < l->n; i++)
    data_blocks += l->v[i].len;

  if (l->n <= ENTRIES_IN_INODE) {
    header_init(root, l->n, ENTRIES_IN_INODE, 0);
    for (size_t i = 0; i < l->n; i++)
      leaf_entry((struct ext3_extent *)(root + 1) + i, &l->v[i]);
  } else {
    /* Leaves first, then index levels until the top fits in the inode. */
    size_t n = (l->n + ENTRIES_PER_BLOCK - 1) / ENTRIES_PER_BLOCK;
    cleanup_free struct tree_node *level = xcalloc(n, sizeof(*level));
    for (size_t i = 0; i < n; i++) {
      size_t first = i * ENTRIES_PER_BLOCK;
      size_t count = l->n - first < ENTRIES_PER_BLOCK ? l->n - first : ENTRIES_PER_BLOCK;
      if (write_tree_block(fs, ino, 0, l->v + first, NULL, count, &level[i], &tree_blocks, err) < 0)
        return -1;
    }
    int depth = 1;
    while (n > ENTRIES_IN_INODE) {
      size_t up = (n + ENTRIES_PER_BLOCK - 1) / ENTRIES_PER_BLOCK;
      cleanup_free struct tree_node *next = xcalloc(up, sizeof(*next));
      for (size_t i = 0; i < up; i++) {
        size_t first = i * ENTRIES_PER_BLOCK;
        size_t count = n - first < ENTRIES_PER_BLOCK ? n - first : ENTRIES_PER_BLOCK;
        if (write_tree_block(fs, ino, depth, NULL, level + first, count, &next[i], &tree_blocks,
                             err) < 0)
          return -1;
      }
      free(level);
      level = steal_pointer(&next);
      n = up;
      depth++;
    }
    header_init(root, n, ENTRIES_IN_INODE, depth);
    for (size_t i = 0; i < n; i++)
      index_entry((struct ext3_extent_idx *)(root + 1) + i, &level[i]);
  }
  errcode_t e = ext2fs_iblk_set(fs->fs, (struct ext2_inode *)in, data_blocks + tree_blocks);
  if (e)
    return sbd_ext4_error(err, e, "setting the block count of inode %u", ino);
  return 0;
}

int sbd_ext4_write_blocks(struct sbd_ext4 *fs, struct sbd_extent_list *l, uint32_t lblk,
                          const void *data, blk64_t nblocks, sbd_error_t *err)
{
  const char *p = data;
  while (nblocks > 0) {
    blk64_t pblk, plen;
    if (sbd_ext4_alloc_blocks(fs, nblocks, &pblk, &plen, err) < 0)
      return -1;
    if (sbd_ext4_data_put(fs, pblk, p, plen, err) < 0)
      return -1;
    sbd_extent_list_add(l, lblk, pblk, (uint32_t)plen);
    lblk += (uint32_t)plen;
    p += plen * SBD_EXT4_BLOCK_SIZE;
    nblocks -= plen;
  }
  return 0;
}

/* p need not be aligned: it may point into the caller's buffer. */
static bool bytes_are_zero(const char *p, size_t len)
{
  size_t i = 0;
  for (; i + sizeof(uint64_t) <= len; i += sizeof(uint64_t)) {
    uint64_t w;
    memcpy(&w, p + i, sizeof(w));
    if (w)
      return false;
  }
  for (; i < len; i++)
    if (p[i])
      return false;
  return true;
}

static bool block_is_zero(const char *p)
{
  return bytes_are_zero(p, SBD_EXT4_BLOCK_SIZE);
}

/* ext4 with 4 KiB blocks addresses 2^32 blocks: 16 TiB per file. */
static bool too_large(const struct sbd_ext4_file *f, size_t len)
{
  return f->size + len > (1ull << 32) * SBD_EXT4_BLOCK_SIZE;
}

/* Writes the next nblocks blocks of the file from p, skipping all-zero
 * blocks so they stay holes. */
static int file_write_blocks(struct sbd_ext4_file *f, const char *p, size_t nblocks,
                             sbd_error_t *err)
{
  size_t i = 0;
  while (i < nblocks) {
    if (block_is_zero(p + i * SBD_EXT4_BLOCK_SIZE)) {
      i++;
      continue;
    }
    size_t j = i + 1;
    while (j < nblocks && !block_is_zero(p + j * SBD_EXT4_BLOCK_SIZE))
      j++;
    if (sbd_ext4_write_blocks(f->fs, &f->extents, f->next_lblk + (uint32_t)i,
                              p + i * SBD_EXT4_BLOCK_SIZE, j - i, err) < 0)
      return -1;
    i = j;
  }
  f->next_lblk += (uint32_t)nblocks;
  return 0;
}

/* Writes buf (buf_len bytes, the tail zero-padded to a whole block). */
static int file_flush(struct sbd_ext4_file *f, sbd_error_t *err)
{
  size_t nblocks = (f->buf_len + SBD_EXT4_BLOCK_SIZE - 1) / SBD_EXT4_BLOCK_SIZE;
  memset(f->buf + f->buf_len, 0, nblocks * SBD_EXT4_BLOCK_SIZE - f->buf_len);
  if (file_write_blocks(f, f->buf, nblocks, err) < 0)
    return -1;
  f->buf_len = 0;
  return 0;
}

int sbd_ext4_file_open(struct sbd_ext4 *fs, ext2_ino_t ino, struct sbd_ext4_file **out,
                       sbd_error_t *err)
{
  (void)err;
  struct sbd_ext4_file *f = xcalloc(1, sizeof(*f));
  f->fs = fs;
  f->ino = ino;
  /* One file is written at a time: its chunk buffer is the filesystem's. */
  if (fs->file_buf == NULL &&
      posix_memalign((void **)&fs->file_buf, SBD_EXT4_BLOCK_SIZE, FILE_CHUNK) != 0) {
    fputs("sbdisk: out of memory\n", stderr);
    abort();
  }
  f->buf = fs->file_buf;
  *out = f;
  return 0;
}

int sbd_ext4_file_write(struct sbd_ext4_file *f, const void *data, size_t len, sbd_error_t *err)
{
  const char *p = data;
  if (f->sealed && len > 0)
    return sbd_error_set(err, SBD_EXIT_IMAGE, 0, "data beyond the file's size");
  if (too_large(f, len))
    return sbd_error_set(err, SBD_EXIT_IMAGE, 0, "file larger than ext4 allows (16 TiB)");
  while (len > 0) {
    /* Whole blocks go from the caller's buffer, once buf holds none but
     * whole blocks: a large file's bytes are not copied an extra time (2.5 GB
     * of copying for the bench's big image).  The rest is collected in buf. */
    size_t fill = (SBD_EXT4_BLOCK_SIZE - f->buf_len % SBD_EXT4_BLOCK_SIZE) % SBD_EXT4_BLOCK_SIZE;
    if (len >= fill + SBD_EXT4_BLOCK_SIZE) {
      memcpy(f->buf + f->buf_len, p, fill);
      f->buf_len += fill;
      f->size += fill;
      p += fill;
      len -= fill;
      if (f->buf_len > 0 && file_flush(f, err) < 0)
        return -1;
      size_t nblocks = len / SBD_EXT4_BLOCK_SIZE;
      if (file_write_blocks(f, p, nblocks, err) < 0)
        return -1;
      f->size += nblocks * SBD_EXT4_BLOCK_SIZE;
      p += nblocks * SBD_EXT4_BLOCK_SIZE;
      len -= nblocks * SBD_EXT4_BLOCK_SIZE;
      continue;
    }
    size_t take = FILE_CHUNK - f->buf_len;
    if (take > len)
      take = len;
    memcpy(f->buf + f->buf_len, p, take);
    f->buf_len += take;
    f->size += take;
    p += take;
    len -= take;
    if (f->buf_len == FILE_CHUNK && file_flush(f, err) < 0)
      return -1;
  }
  return 0;
}

int sbd_ext4_file_write_last(struct sbd_ext4_file *f, const void *data, size_t len,
                             sbd_error_t *err)
{
  size_t tail = len % SBD_EXT4_BLOCK_SIZE;
  /* Bytes already waiting in the chunk, nothing partial, or a last piece
   * already written (refused there): as any write. */
  if (f->sealed || f->buf_len > 0 || tail == 0 || too_large(f, len))
    return sbd_ext4_file_write(f, data, len, err);
  const char *p = data;
  size_t nblocks = len / SBD_EXT4_BLOCK_SIZE;
  if (nblocks > 0 && file_write_blocks(f, p, nblocks, err) < 0)
    return -1;
  p += nblocks * SBD_EXT4_BLOCK_SIZE;
  /* The last block, as file_flush would pad and write it; all zeros stay a
   * hole. */
  if (!bytes_are_zero(p, tail)) {
    blk64_t pblk, plen;
    if (sbd_ext4_alloc_blocks(f->fs, 1, &pblk, &plen, err) < 0 ||
        sbd_ext4_data_put_partial(f->fs, pblk, p, tail, err) < 0)
      return -1;
    sbd_extent_list_add(&f->extents, f->next_lblk, pblk, 1);
  }
  f->next_lblk++;
  f->size += len;
  f->sealed = true;
  return 0;
}

static void file_free(struct sbd_ext4_file *f)
{
  sbd_extent_list_free(&f->extents);
  free(f);
}

int sbd_ext4_file_close(struct sbd_ext4_file *f, const struct sbd_attrs *a, sbd_error_t *err)
{
  int ret = -1;
  if (f->buf_len > 0 && file_flush(f, err) < 0)
    goto out;
  struct sbd_inode_buf ib;
  sbd_ext4_inode_init(f->fs, &ib, a);
  ib.large.i_size = (__u32)f->size;
  ib.large.i_size_high = (__u32)(f->size >> 32);
  if (sbd_ext4_write_extent_tree(f->fs, f->ino, &ib.large, &f->extents, err) < 0)
    goto out;
  ret = sbd_ext4_inode_write(f->fs, f->ino, &ib, err);
out:
  if (ret < 0) {
    sbd_ext4_file_abort(f);
    return -1;
  }
  file_free(f);
  return 0;
}

void sbd_ext4_file_abort(struct sbd_ext4_file *f)
{
  if (f == NULL)
    return;
  for (size_t i = 0; i < f->extents.n; i++)
    sbd_ext4_free_blocks(f->fs, f->extents.v[i].pblk, f->extents.v[i].len);
  file_free(f);
}

int sbd_ext4_write_symlink(struct sbd_ext4 *fs, ext2_ino_t ino, const char *target, size_t len,
                           const struct sbd_attrs *a, sbd_error_t *err)
{
  if (len == 0 || len >= SBD_EXT4_BLOCK_SIZE)
    return sbd_error_set(err, SBD_EXIT_IMAGE, 0, "symlink target of %zu bytes is not allowed",
                         len);
  struct sbd_inode_buf ib;
  sbd_ext4_inode_init(fs, &ib, a);
  ib.large.i_size = (__u32)len;
  /* Targets that fit in i_block with their NUL are "fast" symlinks, stored in
   * the inode itself; the kernel and e2fsck draw the line at 60 bytes. */
  if (len < sizeof(ib.large.i_block)) {
    memcpy(ib.large.i_block, target, len);
    return sbd_ext4_inode_write(fs, ino, &ib, err);
  }
  char block[SBD_EXT4_BLOCK_SIZE];
  memset(block, 0, sizeof(block));
  memcpy(block, target, len);
  struct sbd_extent_list l = {0};
  int ret = sbd_ext4_write_blocks(fs, &l, 0, block, 1, err);
  if (ret == 0)
    ret = sbd_ext4_write_extent_tree(fs, ino, &ib.large, &l, err);
  if (ret == 0)
    ret = sbd_ext4_inode_write(fs, ino, &ib, err);
  sbd_extent_list_free(&l);
  return ret;
}

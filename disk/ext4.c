/* The ext4 writer: formatting, allocation, inodes.  Files, directories and
 * xattrs are in ext4_file.c, ext4_dir.c and ext4_xattr.c. */
#include "ext4_private.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/util.h"

int sbd_ext4_error(sbd_error_t *err, errcode_t code, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  cleanup_free char *what = xvasprintf(fmt, ap);
  va_end(ap);
  int exit_code = SBD_EXIT_FAILURE;
  /* Without libext2fs's table, error_message() says "Unknown code ext2 N";
   * registering it again is a no-op. */
  initialize_ext2_error_table();
  const char *why = error_message(code);
  switch (code) {
  case EXT2_ET_BLOCK_ALLOC_FAIL:
  case ENOSPC:
    exit_code = SBD_EXIT_NOSPACE;
    why = "no free blocks left on the disk";
    break;
  case EXT2_ET_INODE_ALLOC_FAIL:
    exit_code = SBD_EXIT_NOSPACE;
    why = "no free inodes left on the disk";
    break;
  case EXT2_ET_EA_NO_SPACE:
    exit_code = SBD_EXIT_IMAGE;
    why = "extended attributes too large for one ext4 inode";
    break;
  default:
    break;
  }
  return sbd_error_set(err, exit_code, 0, "%s: %s", what, why);
}

uint8_t sbd_ext4_file_type(uint32_t mode)
{
  switch (mode & S_IFMT) {
  case S_IFREG:
    return EXT2_FT_REG_FILE;
  case S_IFDIR:
    return EXT2_FT_DIR;
  case S_IFLNK:
    return EXT2_FT_SYMLINK;
  case S_IFCHR:
    return EXT2_FT_CHRDEV;
  case S_IFBLK:
    return EXT2_FT_BLKDEV;
  case S_IFIFO:
    return EXT2_FT_FIFO;
  case S_IFSOCK:
    return EXT2_FT_SOCK;
  default:
    return EXT2_FT_UNKNOWN;
  }
}

/* What the writer allocates goes into the provisional filesystem, whose
 * group descriptors are never written: the final one is counted again from
 * its bitmaps (ext4_format.c).  So an allocation marks the bitmap and the
 * superblock's free count only, where libext2fs's alloc_stats would also
 * update the group's descriptor and compute its checksum, at every inode
 * and every run of blocks (2% of the CPU of a layer of small files). */
static void provisional_blocks_use(struct sbd_ext4 *fs, blk64_t pblk, blk64_t len, int inuse)
{
  struct ext2_super_block *sb = fs->fs->super;
  if (inuse > 0) {
    ext2fs_mark_block_bitmap_range2(fs->fs->block_map, pblk, (unsigned)len);
    ext2fs_free_blocks_count_set(sb, ext2fs_free_blocks_count(sb) - len);
  } else {
    ext2fs_unmark_block_bitmap_range2(fs->fs->block_map, pblk, (unsigned)len);
    ext2fs_free_blocks_count_set(sb, ext2fs_free_blocks_count(sb) + len);
  }
}

static void provisional_inode_use(struct sbd_ext4 *fs, ext2_ino_t ino, int inuse)
{
  if (inuse > 0) {
    ext2fs_mark_inode_bitmap2(fs->fs->inode_map, ino);
    fs->fs->super->s_free_inodes_count--;
  } else {
    ext2fs_unmark_inode_bitmap2(fs->fs->inode_map, ino);
    fs->fs->super->s_free_inodes_count++;
  }
}

int sbd_ext4_alloc_blocks(struct sbd_ext4 *fs, blk64_t want, blk64_t *pblk, blk64_t *plen,
                          sbd_error_t *err)
{
  errcode_t e = ext2fs_new_range(fs->fs, 0, fs->blk_goal, want, NULL, pblk, plen);
  if (e)
    return sbd_ext4_error(err, e, "allocating %llu blocks", (unsigned long long)want);
  if (*pblk < fs->blk_goal) {
    if (sbd_ext4_flush(fs, err) < 0)
      return -1;
    sbd_ext4_data_wrapped(fs);
  }
  provisional_blocks_use(fs, *pblk, *plen, +1);
  fs->blk_goal = *pblk + *plen;
  return 0;
}

void sbd_ext4_free_blocks(struct sbd_ext4 *fs, blk64_t pblk, blk64_t len)
{
  provisional_blocks_use(fs, pblk, len, -1);
}

/* An inode-table block entered at its first inode holds no inode written
 * yet: inodes are allocated upwards only, and the image file is new and
 * sparse, so the block is zeros.  Handing libext2fs those zeros spares the
 * read it makes to write the block's first inode: a read of a hole in the
 * file, one every 16 inodes, ~1.7% of the CPU of a build of small files. */
static errcode_t enter_inode_block(struct sbd_ext4 *fs, ext2_ino_t ino)
{
  static const char zeros[SBD_EXT4_BLOCK_SIZE];
  ext2_filsys efs = fs->fs;
  unsigned per_block = SBD_EXT4_BLOCK_SIZE / EXT2_INODE_SIZE(efs->super);
  ext2_ino_t index = (ino - 1) % efs->super->s_inodes_per_group;
  if (index % per_block != 0)
    return 0;
  dgrp_t g = (dgrp_t)((ino - 1) / efs->super->s_inodes_per_group);
  blk64_t blk = ext2fs_inode_table_loc(efs, g) + index / per_block;
  return io_channel_write_blk64(efs->io, blk, 1, zeros);
}

int sbd_ext4_alloc_inode(struct sbd_ext4 *fs, bool is_dir, ext2_ino_t *ino, sbd_error_t *err)
{
  ext2_ino_t found;
  ext2_ino_t last = fs->fs->super->s_inodes_count;
  if (fs->ino_cursor > last ||
      ext2fs_find_first_zero_inode_bitmap2(fs->fs->inode_map, fs->ino_cursor, last, &found))
    return sbd_ext4_error(err, EXT2_ET_INODE_ALLOC_FAIL, "allocating an inode");
  errcode_t e = enter_inode_block(fs, found);
  if (e)
    return sbd_ext4_error(err, e, "writing the inode table block of inode %u", found);
  provisional_inode_use(fs, found, +1);
  if (is_dir)
    ext2fs_mark_inode_bitmap2(fs->dirs, found);
  fs->ino_cursor = found + 1;
  *ino = found;
  return 0;
}

void sbd_ext4_release_dir_inode(struct sbd_ext4 *fs, ext2_ino_t ino)
{
  provisional_inode_use(fs, ino, -1);
  ext2fs_unmark_inode_bitmap2(fs->dirs, ino);
}

static void time_encode(__u32 *lo, __u32 *extra, struct sbd_time t)
{
  /* Seconds beyond 2038 go to the two epoch bits, as the kernel encodes them. */
  *lo = (__u32)t.sec;
  int64_t hi = (t.sec - (int32_t)*lo) >> 32;
  *extra = ((__u32)hi & EXT4_EPOCH_MASK) | (t.nsec << EXT4_EPOCH_BITS);
}

static struct sbd_time time_decode(__u32 lo, __u32 extra)
{
  struct sbd_time t;
  t.sec = (int64_t)(int32_t)lo + ((int64_t)(extra & EXT4_EPOCH_MASK) << 32);
  t.nsec = extra >> EXT4_EPOCH_BITS;
  return t;
}

void sbd_ext4_inode_init(struct sbd_ext4 *fs, struct sbd_inode_buf *ib, const struct sbd_attrs *a)
{
  memset(ib, 0, sizeof(*ib));
  struct ext2_inode_large *in = &ib->large;
  in->i_extra_isize = sizeof(struct ext2_inode_large) - EXT2_GOOD_OLD_INODE_SIZE;
  struct sbd_time now = {.sec = fs->now, .nsec = 0};
  time_encode(&in->i_ctime, &in->i_ctime_extra, now);
  time_encode(&in->i_crtime, &in->i_crtime_extra, now);
  sbd_ext4_inode_set_attrs(in, a);
  in->i_links_count = 1;
}

void sbd_ext4_inode_set_attrs(struct ext2_inode_large *in, const struct sbd_attrs *a)
{
  in->i_mode = (__u16)a->mode;
  in->i_uid = (__u16)a->uid;
  in->osd2.linux2.l_i_uid_high = (__u16)(a->uid >> 16);
  in->i_gid = (__u16)a->gid;
  in->osd2.linux2.l_i_gid_high = (__u16)(a->gid >> 16);
  time_encode(&in->i_atime, &in->i_atime_extra, a->atime);
  time_encode(&in->i_mtime, &in->i_mtime_extra, a->mtime);
}

int sbd_ext4_inode_read(struct sbd_ext4 *fs, ext2_ino_t ino, struct sbd_inode_buf *ib,
                        sbd_error_t *err)
{
  errcode_t e = ext2fs_read_inode_full(fs->fs, ino, (struct ext2_inode *)ib, sizeof(*ib));
  if (e)
    return sbd_ext4_error(err, e, "reading inode %u", ino);
  return 0;
}

int sbd_ext4_inode_write(struct sbd_ext4 *fs, ext2_ino_t ino, struct sbd_inode_buf *ib,
                         sbd_error_t *err)
{
  /* The checksum computed here is libext2fs's, in hardware (ext4_csum.c). */
  int flags = 0;
  if (ext2fs_has_feature_metadata_csum(fs->fs->super) &&
      EXT2_INODE_SIZE(fs->fs->super) == sizeof(*ib)) {
    sbd_ext4_inode_csum_set(fs, ino, ib);
    flags = WRITE_INODE_NOCSUM;
  }
  errcode_t e = ext2fs_write_inode2(fs->fs, ino, (struct ext2_inode *)ib, sizeof(*ib), flags);
  if (e)
    return sbd_ext4_error(err, e, "writing inode %u", ino);
  return 0;
}

int sbd_ext4_set_attrs(struct sbd_ext4 *fs, ext2_ino_t ino, const struct sbd_attrs *a,
                       sbd_error_t *err)
{
  struct sbd_inode_buf ib;
  if (sbd_ext4_inode_read(fs, ino, &ib, err) < 0)
    return -1;
  struct sbd_attrs keep = *a;
  keep.mode = (ib.large.i_mode & S_IFMT) | (a->mode & 07777);
  sbd_ext4_inode_set_attrs(&ib.large, &keep);
  return sbd_ext4_inode_write(fs, ino, &ib, err);
}

int sbd_ext4_stat(struct sbd_ext4 *fs, ext2_ino_t ino, struct sbd_attrs *a, sbd_error_t *err)
{
  struct sbd_inode_buf ib;
  if (sbd_ext4_inode_read(fs, ino, &ib, err) < 0)
    return -1;
  struct ext2_inode_large *in = &ib.large;
  a->mode = in->i_mode;
  a->uid = in->i_uid | ((uint32_t)in->osd2.linux2.l_i_uid_high << 16);
  a->gid = in->i_gid | ((uint32_t)in->osd2.linux2.l_i_gid_high << 16);
  a->atime = time_decode(in->i_atime, in->i_atime_extra);
  a->mtime = time_decode(in->i_mtime, in->i_mtime_extra);
  return 0;
}

int sbd_ext4_write_special(struct sbd_ext4 *fs, ext2_ino_t ino, const struct sbd_attrs *a,
                           uint32_t major, uint32_t minor, sbd_error_t *err)
{
  struct sbd_inode_buf ib;
  sbd_ext4_inode_init(fs, &ib, a);
  uint32_t type = a->mode & S_IFMT;
  if (type == S_IFCHR || type == S_IFBLK) {
    /* The kernel's old 16-bit encoding when it fits, the new one otherwise. */
    if (major < 256 && minor < 256) {
      ib.large.i_block[0] = major * 256 + minor;
    } else {
      ib.large.i_block[1] = (minor & 0xff) | (major << 8) | ((minor & ~0xffu) << 12);
    }
  }
  return sbd_ext4_inode_write(fs, ino, &ib, err);
}

int sbd_ext4_adjust_links(struct sbd_ext4 *fs, ext2_ino_t ino, int delta, sbd_error_t *err)
{
  struct sbd_inode_buf ib;
  if (sbd_ext4_inode_read(fs, ino, &ib, err) < 0)
    return -1;
  int links = (int)ib.large.i_links_count + delta;
  if (links > 0) {
    if (links > EXT2_LINK_MAX)
      return sbd_error_set(err, SBD_EXIT_IMAGE, 0, "too many hard links to one file (%d)", links);
    ib.large.i_links_count = (__u16)links;
    return sbd_ext4_inode_write(fs, ino, &ib, err);
  }
  /* The last name is gone: give back data, extent tree, xattr block and inode.
   * Punching reads the extent tree, which may still wait in the buffer. */
  if (sbd_ext4_flush(fs, err) < 0)
    return -1;
  errcode_t e;
  if (ext2fs_inode_has_valid_blocks2(fs->fs, (struct ext2_inode *)&ib.large)) {
    e = ext2fs_punch(fs->fs, ino, (struct ext2_inode *)&ib.large, NULL, 0, ~0ULL);
    if (e)
      return sbd_ext4_error(err, e, "releasing the blocks of inode %u", ino);
  }
  blk64_t ea = ext2fs_file_acl_block(fs->fs, (struct ext2_inode *)&ib.large);
  if (ea) {
    __u32 count = 0;
    e = ext2fs_adjust_ea_refcount3(fs->fs, ea, NULL, -1, &count, ino);
    if (e)
      return sbd_ext4_error(err, e, "releasing the xattr block of inode %u", ino);
    if (count == 0)
      ext2fs_block_alloc_stats2(fs->fs, ea, -1);
  }
  memset(&ib, 0, sizeof(ib));
  if (sbd_ext4_inode_write(fs, ino, &ib, err) < 0)
    return -1;
  provisional_inode_use(fs, ino, -1);
  return 0;
}

int sbd_ext4_link_root(struct sbd_ext4 *fs, const char *name, ext2_ino_t ino, uint8_t file_type,
                       sbd_error_t *err)
{
  errcode_t e = ext2fs_link(fs->fs, EXT2_ROOT_INO, name, ino, file_type);
  if (e == EXT2_ET_DIR_NO_SPACE) {
    e = ext2fs_expand_dir(fs->fs, EXT2_ROOT_INO);
    if (!e)
      e = ext2fs_link(fs->fs, EXT2_ROOT_INO, name, ino, file_type);
  }
  if (e)
    return sbd_ext4_error(err, e, "adding /%s", name);
  if (file_type == EXT2_FT_DIR) {
    struct sbd_inode_buf ib;
    if (sbd_ext4_inode_read(fs, EXT2_ROOT_INO, &ib, err) < 0)
      return -1;
    ib.large.i_links_count++;
    return sbd_ext4_inode_write(fs, EXT2_ROOT_INO, &ib, err);
  }
  return 0;
}

int sbd_ext4_lookup(struct sbd_ext4 *fs, ext2_ino_t dir, const char *name, size_t len,
                    ext2_ino_t *ino, sbd_error_t *err)
{
  errcode_t e = ext2fs_lookup(fs->fs, dir, name, (int)len, NULL, ino);
  if (e == EXT2_ET_FILE_NOT_FOUND) {
    *ino = 0;
    return 0;
  }
  if (e)
    return sbd_ext4_error(err, e, "looking up %.*s", (int)len, name);
  return 0;
}

int sbd_ext4_readlink(struct sbd_ext4 *fs, ext2_ino_t ino, char **target, sbd_error_t *err)
{
  struct sbd_inode_buf ib;
  if (sbd_ext4_inode_read(fs, ino, &ib, err) < 0)
    return -1;
  size_t len = EXT2_I_SIZE(&ib.large);
  if (len >= SBD_EXT4_BLOCK_SIZE)
    return sbd_error_set(err, SBD_EXIT_FAILURE, 0, "symlink inode %u is too long", ino);
  if (!ext2fs_inode_has_valid_blocks2(fs->fs, (struct ext2_inode *)&ib.large)) {
    *target = xstrndup((const char *)ib.large.i_block, len);
    return 0;
  }
  blk64_t pblk = 0;
  errcode_t e = ext2fs_bmap2(fs->fs, ino, (struct ext2_inode *)&ib.large, NULL, 0, 0, NULL, &pblk);
  if (e)
    return sbd_ext4_error(err, e, "mapping symlink inode %u", ino);
  cleanup_free char *block = xmalloc(SBD_EXT4_BLOCK_SIZE);
  e = io_channel_read_blk64(fs->fs->io, pblk, 1, block);
  if (e)
    return sbd_ext4_error(err, e, "reading symlink inode %u", ino);
  *target = xstrndup(block, len);
  return 0;
}


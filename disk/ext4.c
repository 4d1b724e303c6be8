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

/* Every block the library itself allocates (xattr blocks, the journal, the
 * resize inode) comes from our cursor too, so allocation stays in one
 * ascending sequence. */
static errcode_t alloc_block_hook(ext2_filsys efs, blk64_t goal, blk64_t *ret)
{
  struct sbd_ext4 *fs = efs->priv_data;
  blk64_t len;
  (void)goal;
  return ext2fs_new_range(efs, 0, fs->blk_goal, 1, NULL, ret, &len);
}

int sbd_ext4_alloc_blocks(struct sbd_ext4 *fs, blk64_t want, blk64_t *pblk, blk64_t *plen,
                          sbd_error_t *err)
{
  errcode_t e = ext2fs_new_range(fs->fs, 0, fs->blk_goal, want, NULL, pblk, plen);
  if (e)
    return sbd_ext4_error(err, e, "allocating %llu blocks", (unsigned long long)want);
  ext2fs_block_alloc_stats_range(fs->fs, *pblk, *plen, +1);
  fs->blk_goal = *pblk + *plen;
  return 0;
}

void sbd_ext4_free_blocks(struct sbd_ext4 *fs, blk64_t pblk, blk64_t len)
{
  ext2fs_block_alloc_stats_range(fs->fs, pblk, len, -1);
}

int sbd_ext4_alloc_inode(struct sbd_ext4 *fs, bool is_dir, ext2_ino_t *ino, sbd_error_t *err)
{
  ext2_ino_t found;
  ext2_ino_t last = fs->fs->super->s_inodes_count;
  if (fs->ino_cursor > last ||
      ext2fs_find_first_zero_inode_bitmap2(fs->fs->inode_map, fs->ino_cursor, last, &found))
    return sbd_ext4_error(err, EXT2_ET_INODE_ALLOC_FAIL, "allocating an inode");
  ext2fs_inode_alloc_stats2(fs->fs, found, +1, is_dir);
  fs->ino_cursor = found + 1;
  *ino = found;
  return 0;
}

void sbd_ext4_release_dir_inode(struct sbd_ext4 *fs, ext2_ino_t ino)
{
  ext2fs_inode_alloc_stats2(fs->fs, ino, -1, 1);
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
  errcode_t e = ext2fs_write_inode_full(fs->fs, ino, (struct ext2_inode *)ib, sizeof(*ib));
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
  /* The last name is gone: give back data, extent tree, xattr block and inode. */
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
  ext2fs_inode_alloc_stats2(fs->fs, ino, -1, 0);
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

/* --- formatting ------------------------------------------------------- */

static int create_image_file(const char *path, uint64_t size, sbd_error_t *err)
{
  cleanup_close int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return sbd_error_set(err, SBD_EXIT_FAILURE, errno, "cannot create %s", path);
  if (ftruncate(fd, (off_t)size) < 0)
    return sbd_error_set(err, SBD_EXIT_FAILURE, errno, "cannot size %s to %llu bytes", path,
                         (unsigned long long)size);
  return 0;
}

static void params_to_super(const struct sbd_ext4_params *p, struct ext2_super_block *sb)
{
  memset(sb, 0, sizeof(*sb));
  uint64_t blocks = p->size_bytes / SBD_EXT4_BLOCK_SIZE;
  ext2fs_blocks_count_set(sb, blocks);
  sb->s_log_block_size = 2; /* 1024 << 2 */
  sb->s_log_cluster_size = 2;
  sb->s_rev_level = EXT2_DYNAMIC_REV;
  sb->s_first_ino = EXT2_GOOD_OLD_FIRST_INO;
  sb->s_inode_size = 256;
  sb->s_log_groups_per_flex = 4;
  sb->s_desc_size = EXT2_MIN_DESC_SIZE_64BIT;
  sb->s_min_extra_isize = sb->s_want_extra_isize =
      sizeof(struct ext2_inode_large) - EXT2_GOOD_OLD_INODE_SIZE;
  uint64_t inodes = p->inodes ? p->inodes : p->size_bytes / SBD_EXT4_INODE_RATIO;
  sb->s_inodes_count = inodes > 0xffffffffull ? 0xffffffffu : (__u32)inodes;
  sb->s_r_blocks_count = 0; /* mke2fs -m 0: a cache disk needs no root reserve */
  sb->s_default_mount_opts = EXT2_DEFM_XATTR_USER | EXT2_DEFM_ACL;
  sb->s_errors = EXT2_ERRORS_CONTINUE;
  /* What mke2fs 1.46 enables for ext4 (its mke2fs.conf), nothing newer. */
  sb->s_feature_compat = EXT3_FEATURE_COMPAT_HAS_JOURNAL | EXT2_FEATURE_COMPAT_EXT_ATTR |
                         EXT2_FEATURE_COMPAT_RESIZE_INODE | EXT2_FEATURE_COMPAT_DIR_INDEX;
  sb->s_feature_incompat = EXT2_FEATURE_INCOMPAT_FILETYPE | EXT3_FEATURE_INCOMPAT_EXTENTS |
                           EXT4_FEATURE_INCOMPAT_64BIT | EXT4_FEATURE_INCOMPAT_FLEX_BG;
  sb->s_feature_ro_compat = EXT2_FEATURE_RO_COMPAT_SPARSE_SUPER |
                            EXT2_FEATURE_RO_COMPAT_LARGE_FILE | EXT4_FEATURE_RO_COMPAT_HUGE_FILE |
                            EXT4_FEATURE_RO_COMPAT_DIR_NLINK | EXT4_FEATURE_RO_COMPAT_EXTRA_ISIZE |
                            EXT4_FEATURE_RO_COMPAT_METADATA_CSUM;
}

static errcode_t write_reserved_inodes(ext2_filsys efs)
{
  /* With metadata_csum, reserved inodes must carry valid checksums. */
  struct sbd_inode_buf zero;
  memset(&zero, 0, sizeof(zero));
  for (ext2_ino_t ino = 1; ino < EXT2_FIRST_INO(efs->super); ino++) {
    errcode_t e = ext2fs_write_inode_full(efs, ino, (struct ext2_inode *)&zero, sizeof(zero));
    if (e)
      return e;
  }
  return 0;
}

static errcode_t make_lost_and_found(ext2_filsys efs)
{
  static const char name[] = "lost+found";
  ext2_ino_t ino;
  efs->umask = 077;
  errcode_t e = ext2fs_mkdir(efs, EXT2_ROOT_INO, 0, name);
  efs->umask = 022;
  if (!e)
    e = ext2fs_lookup(efs, EXT2_ROOT_INO, name, sizeof(name) - 1, NULL, &ino);
  /* Like mke2fs: at least 16 KiB, so e2fsck has room to reconnect files. */
  for (unsigned size = SBD_EXT4_BLOCK_SIZE; !e && size < 16384; size += SBD_EXT4_BLOCK_SIZE)
    e = ext2fs_expand_dir(efs, ino);
  return e;
}

static errcode_t format(ext2_filsys efs, const struct sbd_ext4_params *p)
{
  errcode_t e;
  struct ext2_super_block *sb = efs->super;
  memcpy(sb->s_uuid, p->uuid, sizeof(sb->s_uuid));
  ext2fs_init_csum_seed(efs);
  sb->s_checksum_type = EXT2_CRC32C_CHKSUM;
  sb->s_def_hash_version = EXT2_HASH_HALF_MD4;
  memcpy(sb->s_hash_seed, p->hash_seed, sizeof(sb->s_hash_seed));
  sb->s_max_mnt_count = -1;
  sb->s_kbytes_written = 1;
  sb->s_mkfs_time = sb->s_lastcheck = (__u32)p->now;

  if ((e = ext2fs_allocate_tables(efs)))
    return e;
  if ((e = ext2fs_convert_subcluster_bitmap(efs, &efs->block_map)))
    return e;
  /* The image file is new and sparse: its inode tables already read as
   * zeros, so the kernel need not zero them (mke2fs lazy_itable_init=0). */
  for (dgrp_t g = 0; g < efs->group_desc_count; g++) {
    ext2fs_bg_flags_set(efs, g, EXT2_BG_INODE_ZEROED);
    ext2fs_group_desc_csum_set(efs, g);
  }
  /* Recorded like mke2fs does, so df on the node agrees with mke2fs disks. */
  blk64_t overhead = 0;
  if ((e = ext2fs_count_used_clusters(efs, sb->s_first_data_block, ext2fs_blocks_count(sb) - 1,
                                      &overhead)))
    return e;
  if ((e = write_reserved_inodes(efs)))
    return e;
  if ((e = ext2fs_mkdir(efs, EXT2_ROOT_INO, EXT2_ROOT_INO, 0)))
    return e;
  if ((e = make_lost_and_found(efs)))
    return e;
  for (ext2_ino_t ino = EXT2_ROOT_INO + 1; ino < EXT2_FIRST_INO(sb); ino++)
    ext2fs_inode_alloc_stats2(efs, ino, +1, 0);
  ext2fs_mark_ib_dirty(efs);
  ext2fs_mark_inode_bitmap2(efs->inode_map, EXT2_BAD_INO);
  ext2fs_inode_alloc_stats2(efs, EXT2_BAD_INO, +1, 0);
  if ((e = ext2fs_update_bb_inode(efs, NULL)))
    return e;
  if ((e = ext2fs_create_resize_inode(efs)))
    return e;
  struct ext2fs_journal_params jp;
  if ((e = ext2fs_get_journal_params(&jp, efs)))
    return e;
  /* The journal blocks of a new sparse file are zeros already. */
  if ((e = ext2fs_add_journal_inode3(efs, &jp, ~0ULL, EXT2_MKJOURNAL_LAZYINIT)))
    return e;
  sb->s_overhead_clusters = (__u32)(overhead + jp.num_journal_blocks + jp.num_fc_blocks +
                                    sb->s_first_data_block);
  return 0;
}

int sbd_ext4_create(const char *path, const struct sbd_ext4_params *p, struct sbd_ext4 **out,
                    sbd_error_t *err)
{
  if (p->size_bytes % SBD_EXT4_BLOCK_SIZE != 0 || p->size_bytes < 64ull * 1024 * 1024)
    return sbd_error_set(err, SBD_EXIT_USAGE, 0, "invalid disk size %llu bytes",
                         (unsigned long long)p->size_bytes);
  if (create_image_file(path, p->size_bytes, err) < 0)
    return -1;

  struct ext2_super_block param;
  params_to_super(p, &param);
  ext2_filsys efs = NULL;
  errcode_t e = ext2fs_initialize(path, EXT2_FLAG_64BITS, &param, unix_io_manager, &efs);
  if (e)
    return sbd_ext4_error(err, e, "formatting %s", path);

  struct sbd_ext4 *fs = xcalloc(1, sizeof(*fs));
  fs->fs = efs;
  fs->now = p->now;
  efs->now = (time_t)p->now;
  efs->priv_data = fs;
  efs->get_alloc_block = alloc_block_hook;
  fs->blk_goal = efs->super->s_first_data_block;

  e = format(efs, p);
  if (e) {
    sbd_ext4_free(fs);
    return sbd_ext4_error(err, e, "formatting %s", path);
  }
  fs->ino_cursor = EXT2_FIRST_INO(efs->super) + 1; /* after lost+found */
  *out = fs;
  return 0;
}

int sbd_ext4_close(struct sbd_ext4 *fs, sbd_error_t *err)
{
  ext2_filsys efs = fs->fs;
  free(fs);
  errcode_t e = ext2fs_set_gdt_csum(efs);
  if (!e)
    e = ext2fs_close_free(&efs);
  else
    ext2fs_free(efs);
  if (e)
    return sbd_ext4_error(err, e, "writing the filesystem metadata");
  return 0;
}

void sbd_ext4_free(struct sbd_ext4 *fs)
{
  if (fs == NULL)
    return;
  /* Drop dirty state so that nothing more is written to the abandoned file. */
  fs->fs->flags &= ~(EXT2_FLAG_DIRTY | EXT2_FLAG_IB_DIRTY | EXT2_FLAG_BB_DIRTY);
  ext2fs_free(fs->fs);
  free(fs);
}

ext2_filsys sbd_ext4_filsys(struct sbd_ext4 *fs)
{
  return fs->fs;
}

int64_t sbd_ext4_now(const struct sbd_ext4 *fs)
{
  return fs->now;
}

uint64_t sbd_ext4_blocks_total(const struct sbd_ext4 *fs)
{
  return ext2fs_blocks_count(fs->fs->super);
}

uint64_t sbd_ext4_blocks_used(const struct sbd_ext4 *fs)
{
  return ext2fs_blocks_count(fs->fs->super) - ext2fs_free_blocks_count(fs->fs->super);
}

uint64_t sbd_ext4_inodes_total(const struct sbd_ext4 *fs)
{
  return fs->fs->super->s_inodes_count;
}

uint64_t sbd_ext4_inodes_used(const struct sbd_ext4 *fs)
{
  return fs->fs->super->s_inodes_count - fs->fs->super->s_free_inodes_count;
}

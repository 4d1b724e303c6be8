/* Formatting, in two steps, so that the disk's size can be the smallest that
 * holds the content without reading the layers twice.
 *
 * While the layers are written, the filesystem is "provisional": as large as
 * the caller's capacity, with every group's bitmaps and inode table placed
 * where they would be in ANY smaller filesystem of the final kind (flex group
 * k's tables at the start of group 16k, after a fixed-size descriptor region
 * in group 0), and content allocated upwards from the start.  Closing picks
 * the final size from what was used, makes the real superblock, descriptors
 * and bitmaps for that size around the same inode tables and content, adds
 * the resize inode and the journal (whose sizes depend on the final size),
 * and truncates the file.  The provisional superblock is never written.
 *
 * The final size can exceed the capacity: content that nearly fills it
 * still needs its 10% of free blocks and inodes.  A larger disk has more
 * group descriptors, which take room after the superblock and each backup,
 * so the provisional filesystem keeps free room there for the descriptors of
 * the largest size its content could call for (see growth_region).
 *
 * The result has mke2fs's layout (same features, 4 KiB blocks, 8192 inodes
 * per 128 MiB group, 1024 reserved descriptor blocks, flex groups of 16); a
 * --size disk matches `mkfs.ext4 -m 0 -E lazy_itable_init=0` block for block
 * in its metadata, an automatically sized one may leave a few blocks free
 * after its descriptors. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ext4_private.h"
#include "iocache.h"
#include "lib/util.h"

#define BLOCKS_PER_GROUP 32768ull
#define INODES_PER_GROUP 8192u
#define GROUPS_PER_FLEX 16u
#define RESERVED_GDT 1024u
#define DESC_PER_BLOCK (SBD_EXT4_BLOCK_SIZE / EXT2_MIN_DESC_SIZE_64BIT)
#define GIB (1024ull * 1024 * 1024)
#define MIN_SIZE (10 * GIB)
/* 2^32 inodes is ext4's limit: 16 TiB at one inode per 16 KiB. */
#define MAX_SIZE (16ull * 1024 * GIB)

static uint64_t div_up(uint64_t x, uint64_t y)
{
  return (x + y - 1) / y;
}

static uint64_t groups_of(uint64_t size)
{
  return div_up(size / SBD_EXT4_BLOCK_SIZE, BLOCKS_PER_GROUP);
}

static uint64_t desc_blocks_of(uint64_t groups)
{
  return div_up(groups, DESC_PER_BLOCK);
}

/* sparse_super: the superblock and descriptors are copied to groups 0, 1 and
 * the powers of 3, 5 and 7. */
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

/* Where flex group k's bitmaps and inode tables start.  Group 16k (k ≥ 1)
 * never holds a superblock copy (those are in odd groups), so only group 0
 * has the descriptor region in front. */
static blk64_t flex_base(uint64_t k, blk64_t region)
{
  return k == 0 ? 1 + region : k * GROUPS_PER_FLEX * BLOCKS_PER_GROUP;
}

static uint64_t itable_blocks(void)
{
  return INODES_PER_GROUP * 256u / SBD_EXT4_BLOCK_SIZE;
}

/* Places and allocates every group's tables (instead of
 * ext2fs_allocate_tables, whose placement depends on the group count). */
static void place_tables(ext2_filsys efs, blk64_t region)
{
  uint64_t itb = itable_blocks();
  for (dgrp_t g = 0; g < efs->group_desc_count; g++) {
    blk64_t base = flex_base(g / GROUPS_PER_FLEX, region);
    uint64_t slot = g % GROUPS_PER_FLEX;
    blk64_t bb = base + slot, ib = base + GROUPS_PER_FLEX + slot;
    blk64_t it = base + 2 * GROUPS_PER_FLEX + slot * itb;
    ext2fs_block_bitmap_loc_set(efs, g, bb);
    ext2fs_inode_bitmap_loc_set(efs, g, ib);
    ext2fs_inode_table_loc_set(efs, g, it);
    ext2fs_block_alloc_stats_range(efs, bb, 1, +1);
    ext2fs_block_alloc_stats_range(efs, ib, 1, +1);
    ext2fs_block_alloc_stats_range(efs, it, (blk_t)itb, +1);
    /* The image file is new and sparse: its inode tables read as zeros, so
     * the kernel need not zero them (mke2fs lazy_itable_init=0). */
    ext2fs_bg_flags_set(efs, g, EXT2_BG_INODE_ZEROED);
    ext2fs_group_desc_csum_set(efs, g);
  }
}

/* Blocks the final format itself needs on a disk of `size` bytes. */
static uint64_t format_overhead(uint64_t size)
{
  uint64_t blocks = size / SBD_EXT4_BLOCK_SIZE;
  uint64_t groups = groups_of(size);
  uint64_t backups = 0;
  for (uint64_t g = 0; g < groups; g++)
    backups += has_backup(g);
  int journal = ext2fs_default_journal_size(blocks);
  return backups * (1 + desc_blocks_of(groups) + RESERVED_GDT) + groups * (2 + itable_blocks()) +
         (journal > 0 ? (uint64_t)journal : 0) + 1 /* the resize inode's block */;
}

int sbd_ext4_pick_size(const struct sbd_ext4_usage *u, bool headroom, uint64_t *size,
                       sbd_error_t *err)
{
  for (uint64_t s = MIN_SIZE; s <= MAX_SIZE; s += GIB) {
    uint64_t blocks = s / SBD_EXT4_BLOCK_SIZE;
    uint64_t inodes = groups_of(s) * INODES_PER_GROUP;
    if (u->end_block > blocks || u->max_inode > inodes)
      continue;
    if (u->inodes_used > inodes - (headroom ? inodes / 10 : 0))
      continue;
    uint64_t used = format_overhead(s) + u->content_blocks;
    if (used <= blocks && blocks - used >= (headroom ? blocks / 10 : 0)) {
      *size = s;
      return 0;
    }
  }
  return sbd_error_set(err, SBD_EXIT_NOSPACE, 0, "the content needs a disk larger than 16 TiB");
}

/* The descriptor region for content written in `cap` bytes: whatever fits
 * there is held, with 10% free, by a disk of at most cap / 0.9 plus the
 * format's overhead and a GiB of rounding; a quarter more covers that. */
static blk64_t growth_region(uint64_t cap)
{
  uint64_t largest = cap + cap / 4 + GIB;
  if (largest > MAX_SIZE)
    largest = MAX_SIZE;
  return desc_blocks_of(groups_of(largest)) + RESERVED_GDT;
}

/* In the provisional filesystem: the blocks after each copy of the
 * descriptors that a larger final disk's descriptors may take, so that no
 * content lands there. */
static void reserve_region(ext2_filsys efs, blk64_t region)
{
  blk64_t own = desc_blocks_of(efs->group_desc_count) + efs->super->s_reserved_gdt_blocks;
  if (region <= own)
    return;
  for (dgrp_t g = 0; g < efs->group_desc_count; g++)
    if (ext2fs_bg_has_super(efs, g))
      ext2fs_block_alloc_stats_range(efs, ext2fs_group_first_block2(efs, g) + 1 + own,
                                     (blk_t)(region - own), +1);
}

/* --- the provisional filesystem ------------------------------------------------ */

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

static void super_params(uint64_t size, struct ext2_super_block *sb)
{
  memset(sb, 0, sizeof(*sb));
  ext2fs_blocks_count_set(sb, size / SBD_EXT4_BLOCK_SIZE);
  sb->s_log_block_size = 2; /* 1024 << 2 */
  sb->s_log_cluster_size = 2;
  sb->s_rev_level = EXT2_DYNAMIC_REV;
  sb->s_first_ino = EXT2_GOOD_OLD_FIRST_INO;
  sb->s_inode_size = 256;
  sb->s_log_groups_per_flex = 4;
  sb->s_desc_size = EXT2_MIN_DESC_SIZE_64BIT;
  sb->s_min_extra_isize = sb->s_want_extra_isize =
      sizeof(struct ext2_inode_large) - EXT2_GOOD_OLD_INODE_SIZE;
  sb->s_inodes_count = (__u32)(groups_of(size) * INODES_PER_GROUP);
  sb->s_reserved_gdt_blocks = RESERVED_GDT;
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

/* The superblock fields mke2fs sets after ext2fs_initialize. */
static void super_identity(ext2_filsys efs, const struct sbd_ext4 *fs)
{
  struct ext2_super_block *sb = efs->super;
  memcpy(sb->s_uuid, fs->uuid, sizeof(sb->s_uuid));
  ext2fs_init_csum_seed(efs);
  sb->s_checksum_type = EXT2_CRC32C_CHKSUM;
  sb->s_def_hash_version = EXT2_HASH_HALF_MD4;
  memcpy(sb->s_hash_seed, fs->hash_seed, sizeof(sb->s_hash_seed));
  sb->s_max_mnt_count = -1;
  sb->s_kbytes_written = 1;
  sb->s_mkfs_time = sb->s_lastcheck = (__u32)fs->now;
  efs->now = (time_t)fs->now;
}

/* Every block the library itself allocates (xattr blocks, directory blocks of
 * lost+found) comes from our cursor too, so allocation stays ascending. */
static errcode_t alloc_block_hook(ext2_filsys efs, blk64_t goal, blk64_t *ret)
{
  struct sbd_ext4 *fs = efs->priv_data;
  blk64_t len;
  (void)goal;
  errcode_t e = ext2fs_new_range(efs, 0, fs->blk_goal, 1, NULL, ret, &len);
  if (!e && *ret < fs->blk_goal) {
    sbd_error_t err = NULL;
    if (sbd_ext4_flush(fs, &err) < 0) {
      sbd_error_free(&err);
      return EXT2_ET_SHORT_WRITE;
    }
    sbd_ext4_data_wrapped(fs);
  }
  return e;
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

/* Root, lost+found and the reserved inodes: the part of mke2fs that does
 * not depend on the size. */
static errcode_t format_provisional(struct sbd_ext4 *fs)
{
  ext2_filsys efs = fs->fs;
  errcode_t e;
  super_identity(efs, fs);
  reserve_region(efs, fs->region);
  place_tables(efs, fs->region);
  /* What the format itself holds; everything allocated later is content. */
  if ((e = ext2fs_copy_bitmap(efs->block_map, &fs->format_blocks)) ||
      (e = ext2fs_allocate_inode_bitmap(efs, "directories", &fs->dirs)))
    return e;
  efs->get_alloc_block = alloc_block_hook;
  fs->blk_goal = efs->super->s_first_data_block;
  sbd_ext4_data_init(fs);

  if ((e = write_reserved_inodes(efs)))
    return e;
  if ((e = ext2fs_mkdir(efs, EXT2_ROOT_INO, EXT2_ROOT_INO, 0)))
    return e;
  if ((e = make_lost_and_found(efs)))
    return e;
  ext2fs_mark_inode_bitmap2(fs->dirs, EXT2_ROOT_INO);
  ext2fs_mark_inode_bitmap2(fs->dirs, EXT2_FIRST_INO(efs->super));
  for (ext2_ino_t ino = EXT2_ROOT_INO + 1; ino < EXT2_FIRST_INO(efs->super); ino++)
    ext2fs_inode_alloc_stats2(efs, ino, +1, 0);
  ext2fs_mark_inode_bitmap2(efs->inode_map, EXT2_BAD_INO);
  ext2fs_inode_alloc_stats2(efs, EXT2_BAD_INO, +1, 0);
  return ext2fs_update_bb_inode(efs, NULL);
}

int sbd_ext4_create(const char *path, const struct sbd_ext4_params *p, struct sbd_ext4 **out,
                    sbd_error_t *err)
{
  uint64_t cap = p->size_bytes ? p->size_bytes : p->capacity_bytes;
  if (cap % GIB != 0 || cap < MIN_SIZE || cap > MAX_SIZE)
    return sbd_error_set(err, SBD_EXIT_USAGE, 0,
                         "invalid disk size %llu bytes (whole GiB from 10 GiB to 16 TiB)",
                         (unsigned long long)cap);
  if (create_image_file(path, cap, err) < 0)
    return -1;
  struct ext2_super_block param;
  super_params(cap, &param);
  ext2_filsys efs = NULL;
  /* The provisional filesystem holds its metadata writes (iocache.h). */
  errcode_t e = ext2fs_initialize(path, EXT2_FLAG_64BITS, &param, sbd_iocache_manager, &efs);
  if (e)
    return sbd_ext4_error(err, e, "formatting %s", path);

  struct sbd_ext4 *fs = xcalloc(1, sizeof(*fs));
  fs->data_fd = -1;
  fs->fs = efs;
  efs->priv_data = fs;
  fs->path = xstrdup(path);
  fs->now = p->now;
  fs->fixed_size = p->size_bytes;
  /* The descriptor region the largest disk we may end at needs. */
  fs->region = p->size_bytes ? desc_blocks_of(groups_of(cap)) + RESERVED_GDT : growth_region(cap);
  memcpy(fs->uuid, p->uuid, sizeof(fs->uuid));
  memcpy(fs->hash_seed, p->hash_seed, sizeof(fs->hash_seed));
  if ((e = format_provisional(fs))) {
    sbd_ext4_free(fs);
    return sbd_ext4_error(err, e, "formatting %s", path);
  }
  fs->ino_cursor = EXT2_FIRST_INO(efs->super) + 1; /* after lost+found */
  *out = fs;
  return 0;
}

/* Calls fn for each run of content blocks: in use, and not the format's. */
static void for_each_content_run(const struct sbd_ext4 *fs, blk64_t end,
                                 void (*fn)(blk64_t start, blk64_t len, void *opaque), void *opaque)
{
  ext2_filsys efs = fs->fs;
  blk64_t start = efs->super->s_first_data_block, first, stop;
  while (start < end &&
         ext2fs_find_first_set_block_bitmap2(efs->block_map, start, end - 1, &first) == 0) {
    if (ext2fs_find_first_zero_block_bitmap2(efs->block_map, first, end - 1, &stop) != 0)
      stop = end;
    /* within [first, stop): split around the format's blocks */
    blk64_t b = first;
    while (b < stop) {
      blk64_t meta, free_from;
      if (ext2fs_find_first_set_block_bitmap2(fs->format_blocks, b, stop - 1, &meta) != 0)
        meta = stop;
      if (meta > b)
        fn(b, meta - b, opaque);
      if (meta >= stop)
        break;
      if (ext2fs_find_first_zero_block_bitmap2(fs->format_blocks, meta, stop - 1, &free_from) != 0)
        free_from = stop;
      b = free_from;
    }
    start = stop;
  }
}

static void count_run(blk64_t start, blk64_t len, void *opaque)
{
  struct sbd_ext4_usage *u = opaque;
  u->content_blocks += len;
  if (start + len > u->end_block)
    u->end_block = start + len;
}

void sbd_ext4_usage(const struct sbd_ext4 *fs, struct sbd_ext4_usage *u)
{
  ext2_filsys efs = fs->fs;
  memset(u, 0, sizeof(*u));
  for_each_content_run(fs, ext2fs_blocks_count(efs->super), count_run, u);
  u->inodes_used = efs->super->s_inodes_count - efs->super->s_free_inodes_count;
  /* inodes are allocated upwards: the highest in use bounds the groups needed */
  ext2_ino_t ino = 0, found;
  while (ino < efs->super->s_inodes_count &&
         ext2fs_find_first_set_inode_bitmap2(efs->inode_map, ino + 1, efs->super->s_inodes_count,
                                             &found) == 0) {
    ext2_ino_t stop;
    if (ext2fs_find_first_zero_inode_bitmap2(efs->inode_map, found, efs->super->s_inodes_count,
                                             &stop) != 0)
      stop = efs->super->s_inodes_count + 1;
    ino = stop - 1;
  }
  u->max_inode = ino;
}

/* --- the final filesystem -------------------------------------------------------- */

/* Marks in the final filesystem every content block and used inode of the
 * provisional one. */
static void mark_run(blk64_t start, blk64_t len, void *opaque)
{
  ext2fs_block_alloc_stats_range(opaque, start, (blk_t)len, +1);
}

/* Inodes [a, b) of group g in use: what ext2fs_inode_alloc_stats2 does for
 * each, for the run at once (the group's checksum is the caller's).  One
 * call per inode, each summing its group's descriptor again, took 15-40 ms
 * for 200,000 files, after the last layer, with nothing left to overlap. */
static void inodes_in_use(ext2_filsys final, ext2fs_inode_bitmap dirs, dgrp_t g, ext2_ino_t a,
                          ext2_ino_t b)
{
  ext2_ino_t n = b - a, ndirs = 0, d = a;
  while (d < b && ext2fs_find_first_set_inode_bitmap2(dirs, d, b - 1, &d) == 0) {
    ndirs++;
    d++;
  }
  unsigned char ones[1024];
  memset(ones, 0xff, sizeof(ones));
  for (ext2_ino_t at = a; at < b;) {
    ext2_ino_t take = b - at < 8 * sizeof(ones) ? b - at : 8 * sizeof(ones);
    ext2fs_set_inode_bitmap_range2(final->inode_map, at, take, ones);
    at += take;
  }
  ext2fs_bg_free_inodes_count_set(final, g, ext2fs_bg_free_inodes_count(final, g) - n);
  ext2fs_bg_used_dirs_count_set(final, g, ext2fs_bg_used_dirs_count(final, g) + ndirs);
  ext2fs_bg_flags_clear(final, g, EXT2_BG_INODE_UNINIT);
  ext2_ino_t ipg = final->super->s_inodes_per_group;
  ext2_ino_t first_unused = ipg - ext2fs_bg_itable_unused(final, g) + g * ipg + 1;
  if (b - 1 >= first_unused)
    ext2fs_bg_itable_unused_set(final, g, g * ipg + ipg - (b - 1));
  final->super->s_free_inodes_count -= n;
}

static errcode_t carry_over(struct sbd_ext4 *fs, ext2_filsys final)
{
  /* The final disk may be the larger one: nothing is beyond the provisional
   * filesystem's end (and its bitmaps refuse to be searched past it). */
  blk64_t blk_end = ext2fs_blocks_count(final->super);
  if (blk_end > ext2fs_blocks_count(fs->fs->super))
    blk_end = ext2fs_blocks_count(fs->fs->super);
  for_each_content_run(fs, blk_end, mark_run, final);
  ext2_ino_t ino_end = final->super->s_inodes_count;
  if (ino_end > fs->fs->super->s_inodes_count)
    ino_end = fs->fs->super->s_inodes_count;
  ext2_ino_t ino = 1, first, stop;
  while (ino <= ino_end &&
         ext2fs_find_first_set_inode_bitmap2(fs->fs->inode_map, ino, ino_end, &first) == 0) {
    if (ext2fs_find_first_zero_inode_bitmap2(fs->fs->inode_map, first, ino_end, &stop) != 0)
      stop = ino_end + 1;
    /* [first, stop): in use; within one group at a time */
    for (ext2_ino_t a = first, b; a < stop; a = b) {
      dgrp_t g = ext2fs_group_of_ino(final, a);
      b = (g + 1) * final->super->s_inodes_per_group + 1;
      if (b > stop)
        b = stop;
      inodes_in_use(final, fs->dirs, g, a, b);
    }
    ino = stop;
  }
  for (dgrp_t g = 0; g < final->group_desc_count; g++)
    ext2fs_group_desc_csum_set(final, g);
  ext2fs_mark_super_dirty(final);
  ext2fs_mark_ib_dirty(final);
  return 0;
}

static errcode_t finish(struct sbd_ext4 *fs, uint64_t size, ext2_filsys *out)
{
  struct ext2_super_block param;
  super_params(size, &param);
  ext2_filsys final = NULL;
  errcode_t e = ext2fs_initialize(fs->path, EXT2_FLAG_64BITS, &param, unix_io_manager, &final);
  if (e)
    return e;
  *out = final;
  super_identity(final, fs);
  place_tables(final, fs->region);
  /* Recorded like mke2fs does, so df on the node agrees with mke2fs disks. */
  blk64_t overhead = 0;
  if ((e = ext2fs_count_used_clusters(final, final->super->s_first_data_block,
                                      ext2fs_blocks_count(final->super) - 1, &overhead)))
    return e;
  if ((e = carry_over(fs, final)))
    return e;
  if ((e = ext2fs_create_resize_inode(final)))
    return e;
  struct ext2fs_journal_params jp;
  if ((e = ext2fs_get_journal_params(&jp, final)))
    return e;
  /* Lazy: the journal's blocks are never read before the kernel writes them
   * (an empty journal is replayed from nothing). */
  if ((e = ext2fs_add_journal_inode3(final, &jp, ~0ULL, EXT2_MKJOURNAL_LAZYINIT)))
    return e;
  final->super->s_overhead_clusters =
      (__u32)(overhead + jp.num_journal_blocks + jp.num_fc_blocks + final->super->s_first_data_block);
  return ext2fs_set_gdt_csum(final);
}

static int close_inner(struct sbd_ext4 *fs, struct sbd_ext4_summary *sum, sbd_error_t *err)
{
  uint64_t size = fs->fixed_size;
  struct sbd_ext4_usage u;
  sbd_ext4_usage(fs, &u);
  if (size == 0 && sbd_ext4_pick_size(&u, true, &size, err) < 0)
    return -1;
  if (u.end_block > size / SBD_EXT4_BLOCK_SIZE)
    return sbd_error_set(err, SBD_EXIT_NOSPACE, 0, "the content does not fit");
  /* Never expected (growth_region has room to spare), but descriptors over
   * content would be a corrupt disk: written again with more room instead. */
  if (desc_blocks_of(groups_of(size)) + RESERVED_GDT > fs->region)
    return sbd_error_set(err, SBD_EXIT_NOSPACE, 0,
                         "a %llu GiB disk needs more descriptor blocks than were kept free",
                         (unsigned long long)(size / GIB));
  /* Everything written so far must be in the file before the final
   * filesystem opens it again. */
  if (sbd_ext4_flush(fs, err) < 0)
    return -1;
  errcode_t e = io_channel_flush(fs->fs->io);
  if (e)
    return sbd_ext4_error(err, e, "writing %s", fs->path);
  ext2_filsys final = NULL;
  e = finish(fs, size, &final);
  if (!e)
    e = ext2fs_close_free(&final);
  if (e) {
    if (final)
      ext2fs_free(final);
    return sbd_ext4_error(err, e, "writing the filesystem metadata");
  }
  if (truncate(fs->path, (off_t)size) < 0)
    return sbd_error_set(err, SBD_EXIT_FAILURE, errno, "cannot truncate %s", fs->path);
  if (sum) {
    sum->size_bytes = size;
    sum->content_blocks = u.content_blocks;
    sum->inodes_used = u.inodes_used;
  }
  return 0;
}

int sbd_ext4_close(struct sbd_ext4 *fs, struct sbd_ext4_summary *sum, sbd_error_t *err)
{
  int ret = close_inner(fs, sum, err);
  sbd_ext4_free(fs);
  return ret;
}

void sbd_ext4_free(struct sbd_ext4 *fs)
{
  if (fs == NULL)
    return;
  sbd_ext4_data_free(fs);
  if (fs->format_blocks)
    ext2fs_free_block_bitmap(fs->format_blocks);
  if (fs->dirs)
    ext2fs_free_inode_bitmap(fs->dirs);
  /* Nothing of the provisional filesystem's own metadata is ever written. */
  fs->fs->flags &= ~(EXT2_FLAG_DIRTY | EXT2_FLAG_IB_DIRTY | EXT2_FLAG_BB_DIRTY);
  ext2fs_free(fs->fs);
  free(fs->path);
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

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "disk/iocache.h"

#define BS 4096

/* A fresh 64 MiB sparse file, opened through the write-back manager at BS. */
static io_channel open_temp(char *path)
{
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(ftruncate(fd, 64 << 20), 0);
  close(fd);
  io_channel ch = NULL;
  ck_assert_int_eq(sbd_iocache_manager->open(path, IO_FLAG_RW, &ch), 0);
  ck_assert_int_eq(io_channel_set_blksize(ch, BS), 0);
  return ch;
}

/* What the file itself holds at block blk (first byte). */
static int on_disk(const char *path, blk64_t blk)
{
  FILE *f = fopen(path, "rb");
  ck_assert_ptr_nonnull(f);
  ck_assert_int_eq(fseeko(f, (off_t)blk * BS, SEEK_SET), 0);
  int c = fgetc(f);
  fclose(f);
  return c;
}

static void fill(unsigned char *b, int v, int nblocks)
{
  memset(b, v, (size_t)nblocks * BS);
}

/* Written blocks are held: read back from memory at once, in the file only
 * after a flush; a read spanning held and unheld blocks gets each right. */
START_TEST(test_iocache_holds_until_flush)
{
  char path[] = "/tmp/sbdisk-ioc-XXXXXX";
  io_channel ch = open_temp(path);
  unsigned char b[3 * BS];
  fill(b, 'a', 1);
  ck_assert_int_eq(io_channel_write_blk64(ch, 10, 1, b), 0);
  ck_assert_int_eq(on_disk(path, 10), 0);
  memset(b, 0xff, sizeof(b));
  ck_assert_int_eq(io_channel_read_blk64(ch, 9, 3, b), 0);
  ck_assert_int_eq(b[0], 0);
  ck_assert_int_eq(b[BS], 'a');
  ck_assert_int_eq(b[2 * BS + BS - 1], 0);
  ck_assert_int_eq(io_channel_flush(ch), 0);
  ck_assert_int_eq(on_disk(path, 10), 'a');
  ck_assert_int_eq(io_channel_close(ch), 0);
  unlink(path);
}
END_TEST

/* A later write of a held block replaces it; the close writes what is held. */
START_TEST(test_iocache_rewrite_and_close)
{
  char path[] = "/tmp/sbdisk-ioc-XXXXXX";
  io_channel ch = open_temp(path);
  unsigned char b[2 * BS];
  fill(b, 'x', 2);
  ck_assert_int_eq(io_channel_write_blk64(ch, 100, 2, b), 0);
  fill(b, 'y', 1);
  ck_assert_int_eq(io_channel_write_blk64(ch, 101, 1, b), 0);
  ck_assert_int_eq(io_channel_close(ch), 0);
  ck_assert_int_eq(on_disk(path, 100), 'x');
  ck_assert_int_eq(on_disk(path, 101), 'y');
  unlink(path);
}
END_TEST

/* Byte-granular writes (how libext2fs writes superblocks) come after every
 * held block, so an older held copy of the same bytes never overwrites them;
 * byte-granular reads see held blocks. */
START_TEST(test_iocache_bytes_keep_order)
{
  char path[] = "/tmp/sbdisk-ioc-XXXXXX";
  io_channel ch = open_temp(path);
  unsigned char b[BS];
  fill(b, 'h', 1);
  ck_assert_int_eq(io_channel_write_blk64(ch, 0, 1, b), 0);
  ck_assert_int_eq(io_channel_write_blk64(ch, 1, 1, b), 0);
  ck_assert_int_eq(io_channel_write_byte(ch, 1024, 1, "S"), 0);
  unsigned char sb[1024];
  memset(sb, 's', sizeof(sb));
  ck_assert_int_eq(io_channel_write_blk64(ch, 1, -1024, sb), 0); /* bytes 4096.. */
  fill(b, 'q', 1);
  ck_assert_int_eq(io_channel_write_blk64(ch, 2, 1, b), 0);
  memset(sb, 0, sizeof(sb));
  ck_assert_int_eq(io_channel_read_blk64(ch, 2, -1024, sb), 0);
  ck_assert_int_eq(sb[0], 'q');
  ck_assert_int_eq(io_channel_close(ch), 0);
  FILE *f = fopen(path, "rb");
  ck_assert_ptr_nonnull(f);
  unsigned char got[3 * BS];
  ck_assert_int_eq(fread(got, 1, sizeof(got), f), sizeof(got));
  fclose(f);
  ck_assert_int_eq(got[0], 'h');
  ck_assert_int_eq(got[1024], 'S');
  ck_assert_int_eq(got[BS], 's');
  ck_assert_int_eq(got[BS + 1024], 'h');
  ck_assert_int_eq(got[2 * BS], 'q');
  unlink(path);
}
END_TEST

/* More blocks than it holds: the oldest go to the file, nothing is lost,
 * and every block reads back as last written. */
START_TEST(test_iocache_overflow)
{
  char path[] = "/tmp/sbdisk-ioc-XXXXXX";
  io_channel ch = open_temp(path);
  const int n = 6000; /* more than twice the 8 MiB held, in 4 KiB blocks */
  unsigned char b[BS];
  for (int i = 0; i < n; i++) {
    fill(b, 1 + i % 251, 1);
    ck_assert_int_eq(io_channel_write_blk64(ch, (blk64_t)(n - 1 - i) * 2, 1, b), 0);
  }
  /* Written out when the held blocks filled up (twice by now). */
  ck_assert_int_eq(on_disk(path, (blk64_t)(n - 1 - 4000) * 2), 1 + 4000 % 251);
  for (int i = 0; i < n; i += 97) {
    ck_assert_int_eq(io_channel_read_blk64(ch, (blk64_t)(n - 1 - i) * 2, 1, b), 0);
    ck_assert_int_eq(b[BS / 2], 1 + i % 251);
  }
  ck_assert_int_eq(io_channel_close(ch), 0);
  for (int i = 0; i < n; i += 97)
    ck_assert_int_eq(on_disk(path, (blk64_t)(n - 1 - i) * 2), 1 + i % 251);
  unlink(path);
}
END_TEST

/* A long run passes straight through, after what is held. */
START_TEST(test_iocache_long_run)
{
  char path[] = "/tmp/sbdisk-ioc-XXXXXX";
  io_channel ch = open_temp(path);
  unsigned char one[BS];
  fill(one, 'o', 1);
  ck_assert_int_eq(io_channel_write_blk64(ch, 5, 1, one), 0);
  const int run = 2048;
  unsigned char *b = malloc((size_t)run * BS);
  fill(b, 'r', run);
  ck_assert_int_eq(io_channel_write_blk64(ch, 0, run, b), 0);
  ck_assert_int_eq(on_disk(path, 5), 'r');
  ck_assert_int_eq(on_disk(path, run - 1), 'r');
  free(b);
  ck_assert_int_eq(io_channel_close(ch), 0);
  ck_assert_int_eq(on_disk(path, 5), 'r');
  unlink(path);
}
END_TEST

/* A block read before it was written, then written out in a run with its
 * neighbours, reads back as written: Debian 12's Unix manager kept its clean
 * copy of such a block across a multi-block write (e2fsprogs fixed that
 * later), which lost the inodes of the last snapshots of a build. */
START_TEST(test_iocache_no_stale_copy)
{
  char path[] = "/tmp/sbdisk-ioc-XXXXXX";
  io_channel ch = open_temp(path);
  unsigned char b[BS];
  ck_assert_int_eq(io_channel_read_blk64(ch, 42, 1, b), 0); /* zeros, now seen */
  for (blk64_t blk = 40; blk < 48; blk++) {
    fill(b, (int)blk, 1);
    ck_assert_int_eq(io_channel_write_blk64(ch, blk, 1, b), 0);
  }
  ck_assert_int_eq(io_channel_flush(ch), 0); /* 40..47 leave as one run */
  ck_assert_int_eq(io_channel_read_blk64(ch, 42, 1, b), 0);
  ck_assert_int_eq(b[0], 42);
  ck_assert_int_eq(io_channel_close(ch), 0);
  unlink(path);
}
END_TEST

/* A filesystem made through it is the one e2fsck expects. */
START_TEST(test_iocache_ext2fs)
{
  char path[] = "/tmp/sbdisk-ioc-XXXXXX";
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(ftruncate(fd, 64 << 20), 0);
  close(fd);
  struct ext2_super_block param;
  memset(&param, 0, sizeof(param));
  ext2fs_blocks_count_set(&param, (64 << 20) / BS);
  param.s_log_block_size = 2;
  ext2_filsys fs = NULL;
  ck_assert_int_eq(ext2fs_initialize(path, EXT2_FLAG_64BITS, &param, sbd_iocache_manager, &fs), 0);
  ck_assert_int_eq(ext2fs_allocate_tables(fs), 0);
  for (ext2_ino_t ino = 1; ino < EXT2_FIRST_INODE(fs->super); ino++)
    if (ino != EXT2_ROOT_INO)
      ext2fs_inode_alloc_stats2(fs, ino, +1, 0); /* reserved, as mke2fs marks them */
  ck_assert_int_eq(ext2fs_mkdir(fs, EXT2_ROOT_INO, EXT2_ROOT_INO, 0), 0);
  ck_assert_int_eq(ext2fs_mkdir(fs, EXT2_ROOT_INO, 0, "lost+found"), 0);
  ck_assert_int_eq(ext2fs_mkdir(fs, EXT2_ROOT_INO, 0, "d"), 0);
  ck_assert_int_eq(ext2fs_close_free(&fs), 0);
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "e2fsck -fn %s >/dev/null 2>&1", path);
  ck_assert_int_eq(system(cmd), 0);
  unlink(path);
}
END_TEST

Suite *iocache_suite(void)
{
  Suite *s = suite_create("iocache");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, test_iocache_holds_until_flush);
  tcase_add_test(tc, test_iocache_rewrite_and_close);
  tcase_add_test(tc, test_iocache_bytes_keep_order);
  tcase_add_test(tc, test_iocache_overflow);
  tcase_add_test(tc, test_iocache_long_run);
  tcase_add_test(tc, test_iocache_no_stale_copy);
  tcase_add_test(tc, test_iocache_ext2fs);
  suite_add_tcase(s, tc);
  return s;
}

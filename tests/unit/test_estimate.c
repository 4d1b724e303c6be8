/* Auto-sizing, held against real ext4 images: the size picked for some
 * content must leave 10% of the disk free once the content is in, and one
 * GiB less must not. */
#include <check.h>
#include <ext2fs/ext2fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "disk/disk.h"
#include "disk/ext4.h"

#define BLOCK 4096ull
#define GIB (1024ull * 1024 * 1024)

/* An empty disk formatted with p and closed, in a new file at path (a
 * mkstemp template); the caller removes it. */
static void format_empty(char *path, const struct sbd_ext4_params *p, struct sbd_ext4_summary *sum)
{
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  close(fd);
  struct sbd_ext4 *fs = NULL;
  sbd_error_t err = NULL;
  int r = sbd_ext4_create(path, p, &fs, &err);
  ck_assert_msg(r == 0, "formatting %llu GiB (room %llu GiB): %s",
                (unsigned long long)(p->size_bytes / GIB),
                (unsigned long long)(p->capacity_bytes / GIB), err ? err->msg : "?");
  ck_assert_int_eq(sbd_ext4_close(fs, sum, &err), 0);
}

/* Free blocks of an empty disk of `size` bytes, as formatted and read back. */
static uint64_t free_when_empty(uint64_t size)
{
  char path[] = "/tmp/sbdisk-estimate-XXXXXX";
  struct sbd_ext4_params p = {.size_bytes = size, .now = 1700000000};
  format_empty(path, &p, NULL);
  ext2_filsys efs;
  ck_assert_int_eq(ext2fs_open(path, 0, 0, 0, unix_io_manager, &efs), 0);
  uint64_t free_blocks = ext2fs_free_blocks_count(efs->super);
  ext2fs_close_free(&efs);
  unlink(path);
  return free_blocks;
}

static void check_content(uint64_t content_blocks)
{
  /* what an empty disk already uses (root, lost+found) counts as content too */
  struct sbd_ext4_usage u = {.content_blocks = content_blocks, .end_block = content_blocks,
                             .inodes_used = 11, .max_inode = 11};
  uint64_t size = 0;
  sbd_error_t err = NULL;
  ck_assert_int_eq(sbd_ext4_pick_size(&u, true, &size, &err), 0);
  ck_assert_uint_eq(size % GIB, 0);
  ck_assert_uint_ge(size, 10 * GIB);
  uint64_t total = size / BLOCK;
  uint64_t free_blocks = free_when_empty(size);
  ck_assert_msg(free_blocks >= content_blocks && free_blocks - content_blocks >= total / 10,
                "%llu GiB leaves %llu of %llu blocks free", (unsigned long long)(size / GIB),
                (unsigned long long)(free_blocks - content_blocks), (unsigned long long)total);
  if (size > 10 * GIB) {
    uint64_t smaller = size - GIB;
    uint64_t free_smaller = free_when_empty(smaller);
    ck_assert_msg(free_smaller < content_blocks ||
                      free_smaller - content_blocks < (smaller / BLOCK) / 10,
                  "%llu GiB would have been enough", (unsigned long long)(smaller / GIB));
  }
}

START_TEST(test_small_content_gets_the_minimum)
{
  check_content(1000);
}
END_TEST

START_TEST(test_content_just_past_the_minimum)
{
  check_content(8704ull * 1024 * 1024 / BLOCK); /* 8.5 GiB */
}
END_TEST

START_TEST(test_large_content)
{
  check_content(40 * GIB / BLOCK);
}
END_TEST

START_TEST(test_inodes_decide)
{
  /* a million files need more than the 655,360 inodes of 10 GiB, whatever
   * their size: 8192 inodes per 128 MiB group, 10% of them kept free */
  struct sbd_ext4_usage u = {.content_blocks = 1000, .end_block = 1000,
                             .inodes_used = 1000000, .max_inode = 1000000};
  uint64_t size = 0;
  sbd_error_t err = NULL;
  ck_assert_int_eq(sbd_ext4_pick_size(&u, true, &size, &err), 0);
  uint64_t inodes = size / (128ull << 20) * 8192;
  ck_assert_uint_ge(inodes - inodes / 10, 1000000);
  uint64_t fewer = (size - GIB) / (128ull << 20) * 8192;
  ck_assert_uint_lt(fewer - fewer / 10, 1000000);
}
END_TEST

/* Without headroom (what a --size build that ran out of room reports): the
 * content fits, and one GiB less does not. */
START_TEST(test_smallest_that_fits)
{
  uint64_t content = 12 * GIB / BLOCK;
  struct sbd_ext4_usage u = {.content_blocks = content, .end_block = content,
                             .inodes_used = 11, .max_inode = 11};
  uint64_t size = 0, roomy = 0;
  sbd_error_t err = NULL;
  ck_assert_int_eq(sbd_ext4_pick_size(&u, false, &size, &err), 0);
  ck_assert_int_eq(sbd_ext4_pick_size(&u, true, &roomy, &err), 0);
  ck_assert_uint_lt(size, roomy);
  ck_assert_uint_ge(free_when_empty(size), content);
  ck_assert_uint_lt(free_when_empty(size - GIB), content);
}
END_TEST

START_TEST(test_smallest_for_inodes)
{
  /* 700,000 inodes: more than 10 GiB's 655,360, fewer than 11 GiB's 720,896 */
  struct sbd_ext4_usage u = {.content_blocks = 1000, .end_block = 1000,
                             .inodes_used = 700000, .max_inode = 700000};
  uint64_t size = 0;
  sbd_error_t err = NULL;
  ck_assert_int_eq(sbd_ext4_pick_size(&u, false, &size, &err), 0);
  ck_assert_uint_eq(size, 11 * GIB);
}
END_TEST

/* The largest room an automatic size writes in is a file this machine's
 * filesystem makes: ext4 refuses one of 16 TiB (File too large), which the
 * room of an image of 512 GiB or more compressed used to be. */
START_TEST(test_largest_room)
{
  char path[] = "/tmp/sbdisk-room-XXXXXX";
  struct sbd_ext4_params p = {.capacity_bytes = SBD_DISK_MAX_ROOM, .now = 1700000000};
  struct sbd_ext4_summary sum;
  format_empty(path, &p, &sum);
  ck_assert_uint_eq(sum.size_bytes, 10 * GIB);
  unlink(path);
}
END_TEST

Suite *estimate_suite(void)
{
  Suite *s = suite_create("estimate");
  TCase *tc = tcase_create("estimate");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_small_content_gets_the_minimum);
  tcase_add_test(tc, test_smallest_that_fits);
  tcase_add_test(tc, test_smallest_for_inodes);
  tcase_add_test(tc, test_content_just_past_the_minimum);
  tcase_add_test(tc, test_large_content);
  tcase_add_test(tc, test_inodes_decide);
  tcase_add_test(tc, test_largest_room);
  suite_add_tcase(s, tc);
  return s;
}

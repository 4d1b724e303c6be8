/* Auto-sizing, held against real ext4 images: the size picked must leave 10%
 * free once formatted, and one GiB less must not. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "disk/disk.h"
#include "disk/ext4.h"

#define BLOCK 4096ull

/* Free blocks right after formatting a disk of `size` bytes. */
static uint64_t free_after_format(uint64_t size, uint64_t inodes)
{
  char path[] = "/tmp/sbdisk-estimate-XXXXXX";
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  close(fd);
  struct sbd_ext4_params p = {.size_bytes = size, .inodes = inodes, .now = 1700000000};
  struct sbd_ext4 *fs = NULL;
  sbd_error_t err = NULL;
  ck_assert_int_eq(sbd_ext4_create(path, &p, &fs, &err), 0);
  uint64_t free_blocks = sbd_ext4_blocks_total(fs) - sbd_ext4_blocks_used(fs);
  sbd_ext4_free(fs);
  unlink(path);
  return free_blocks;
}

static void check_content(uint64_t blocks, uint64_t inodes_needed)
{
  uint64_t size = 0, inodes = 0;
  sbd_error_t err = NULL;
  ck_assert_int_eq(sbd_disk_pick_size(blocks, inodes_needed, &size, &inodes, &err), 0);
  ck_assert_uint_eq(size % SBD_GIB, 0);
  ck_assert_uint_ge(size, SBD_DISK_MIN_SIZE);
  uint64_t total = size / BLOCK;
  uint64_t left = free_after_format(size, inodes) - blocks;
  ck_assert_msg(left >= total / 10, "%llu GiB leaves %llu of %llu blocks free",
                (unsigned long long)(size / SBD_GIB), (unsigned long long)left,
                (unsigned long long)total);
  if (inodes)
    ck_assert_uint_ge(inodes, inodes_needed + inodes_needed / 10);
  if (size > SBD_DISK_MIN_SIZE) {
    /* one GiB smaller would not have held it with 10% free */
    uint64_t smaller = size - SBD_GIB;
    uint64_t free_smaller = free_after_format(smaller, inodes);
    ck_assert_msg(free_smaller < blocks || free_smaller - blocks < (smaller / BLOCK) / 10,
                  "%llu GiB would have been enough", (unsigned long long)(smaller / SBD_GIB));
  }
}

START_TEST(test_small_content_gets_the_minimum)
{
  check_content(1000, 100);
}
END_TEST

START_TEST(test_content_just_past_the_minimum)
{
  /* 8.5 GiB of data cannot have 10% of a 10 GiB disk free */
  check_content(8704ull * 1024 * 1024 / 4, 1000);
}
END_TEST

START_TEST(test_large_content)
{
  check_content(40ull * 1024 * 1024 * 1024 / BLOCK, 50000);
}
END_TEST

START_TEST(test_many_files_get_more_inodes)
{
  /* a million small files: more than the default 655360 inodes of 10 GiB */
  uint64_t size, inodes;
  sbd_error_t err = NULL;
  ck_assert_int_eq(sbd_disk_pick_size(1000000, 1000000, &size, &inodes, &err), 0);
  ck_assert_uint_ge(inodes, 1100000);
  check_content(1000000, 1000000);
}
END_TEST

Suite *estimate_suite(void)
{
  Suite *s = suite_create("estimate");
  TCase *tc = tcase_create("estimate");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_small_content_gets_the_minimum);
  tcase_add_test(tc, test_content_just_past_the_minimum);
  tcase_add_test(tc, test_large_content);
  tcase_add_test(tc, test_many_files_get_more_inodes);
  suite_add_tcase(s, tc);
  return s;
}

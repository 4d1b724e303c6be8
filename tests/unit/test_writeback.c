#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "disk/writeback.h"

/* Buffers come back filled into the file at their offsets, in any order of
 * submission, once drained. */
START_TEST(test_writeback_writes)
{
  char path[] = "/tmp/sbdisk-wb-XXXXXX";
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  unlink(path);
  struct sbd_writeback *w = sbd_writeback_new(fd, 8192, 2);
  for (int i = 0; i < 6; i++) {
    unsigned char *b = sbd_writeback_buffer(w);
    memset(b, 'a' + i, 8192);
    ck_assert_int_eq(sbd_writeback_submit(w, 8192, (off_t)(5 - i) * 8192), 0);
  }
  ck_assert_int_eq(sbd_writeback_drain(w), 0);
  for (int i = 0; i < 6; i++) {
    char got[8192];
    ck_assert_int_eq(pread(fd, got, sizeof(got), (off_t)(5 - i) * 8192), (ssize_t)sizeof(got));
    ck_assert_int_eq(got[0], 'a' + i);
    ck_assert_int_eq(got[8191], 'a' + i);
  }
  sbd_writeback_free(w);
  close(fd);
}
END_TEST

/* A write that fails is reported by the drain, and by every later submit,
 * with its errno; nothing after it is written. */
START_TEST(test_writeback_failure)
{
  int fd = open("/dev/null", O_RDONLY); /* writes fail with EBADF */
  ck_assert_int_ge(fd, 0);
  struct sbd_writeback *w = sbd_writeback_new(fd, 4096, 2);
  memset(sbd_writeback_buffer(w), 1, 4096);
  ck_assert_int_eq(sbd_writeback_submit(w, 4096, 0), 0);
  errno = 0;
  ck_assert_int_eq(sbd_writeback_drain(w), -1);
  ck_assert_int_eq(errno, EBADF);
  sbd_writeback_buffer(w);
  errno = 0;
  ck_assert_int_eq(sbd_writeback_submit(w, 4096, 4096), -1);
  ck_assert_int_eq(errno, EBADF);
  ck_assert_int_eq(sbd_writeback_drain(w), -1);
  sbd_writeback_free(w);
  close(fd);
}
END_TEST

Suite *writeback_suite(void)
{
  Suite *s = suite_create("writeback");
  TCase *tc = tcase_create("writeback");
  tcase_add_test(tc, test_writeback_writes);
  tcase_add_test(tc, test_writeback_failure);
  suite_add_tcase(s, tc);
  return s;
}

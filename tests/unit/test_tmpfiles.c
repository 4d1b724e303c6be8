#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/tmpfiles.h"
#include "lib/util.h"

static char *make_dir(void)
{
  char *dir = xstrdup("/tmp/sbdisk-tmpfiles.XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(dir));
  return dir;
}

static int create(struct sbd_tmpfiles *t, const char *dir, char **path)
{
  *path = xasprintf("%s/.x.XXXXXX.tmp", dir);
  int fd = sbd_tmpfiles_create(t, *path, 4, O_CLOEXEC);
  ck_assert_int_ge(fd, 0);
  close(fd);
  ck_assert_int_eq(access(*path, F_OK), 0);
  return fd;
}

/* What an interrupted run removes: what was made and neither renamed nor
 * removed since; nothing else. */
START_TEST(test_remove_what_is_still_temporary)
{
  cleanup_free char *dir = make_dir();
  struct sbd_tmpfiles *t = sbd_tmpfiles_new();
  cleanup_free char *kept = NULL, *renamed = NULL, *pending1 = NULL, *pending2 = NULL;
  create(t, dir, &pending1);
  create(t, dir, &renamed);
  create(t, dir, &pending2);
  create(NULL, dir, &kept); /* made without a registry: not ours to remove */
  cleanup_free char *final = xasprintf("%s/final", dir);
  ck_assert_int_eq(rename(renamed, final), 0);
  sbd_tmpfiles_forget(t, renamed);
  sbd_tmpfiles_forget(t, "/not/recorded"); /* harmless */

  ck_assert_uint_eq(sbd_tmpfiles_remove_all(t), 2);
  ck_assert_int_ne(access(pending1, F_OK), 0);
  ck_assert_int_ne(access(pending2, F_OK), 0);
  ck_assert_int_eq(access(final, F_OK), 0);
  ck_assert_int_eq(access(kept, F_OK), 0);
  /* and nothing new appears after it */
  char late[] = "/tmp/sbdisk-late.XXXXXX";
  ck_assert_int_lt(sbd_tmpfiles_create(t, late, 0, 0), 0);
  sbd_tmpfiles_free(t);
  unlink(final);
  unlink(kept);
  rmdir(dir);
}
END_TEST

START_TEST(test_create_failure_records_nothing)
{
  struct sbd_tmpfiles *t = sbd_tmpfiles_new();
  char bad[] = "/nonexistent-dir-for-sbdisk/.x.XXXXXX.tmp";
  ck_assert_int_lt(sbd_tmpfiles_create(t, bad, 4, 0), 0);
  char not_template[] = "/tmp/no-x-here.tmp";
  ck_assert_int_lt(sbd_tmpfiles_create(t, not_template, 4, 0), 0);
  sbd_tmpfiles_free(t);
  sbd_tmpfiles_forget(NULL, "x");
  sbd_tmpfiles_free(NULL);
  ck_assert_uint_eq(sbd_tmpfiles_remove_all(NULL), 0);
}
END_TEST

Suite *tmpfiles_suite(void)
{
  Suite *s = suite_create("tmpfiles");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, test_remove_what_is_still_temporary);
  tcase_add_test(tc, test_create_failure_records_nothing);
  suite_add_tcase(s, tc);
  return s;
}

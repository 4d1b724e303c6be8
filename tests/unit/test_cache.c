/* The blob cache in a scratch directory: an entry is whole and verified or
 * absent, whatever happens to the writer. */
#include <check.h>
#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/cache.h"
#include "lib/digest.h"
#include "lib/util.h"

static char scratch[256];
static struct sbd_cache *cache;

static void setup(void)
{
  snprintf(scratch, sizeof(scratch), "%s/sbdisk-cache-test.XXXXXX",
           getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  ck_assert_ptr_nonnull(mkdtemp(scratch));
  cleanup_free char *dir = xasprintf("%s/a/b/cache", scratch);
  cleanup_error sbd_error_t err = NULL;
  ck_assert_int_eq(sbd_cache_open(dir, &cache, &err), 0);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static void teardown(void)
{
  sbd_cache_free(cache);
  cache = NULL;
  nftw(scratch, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Names in the cache's blob directory, hidden ones included. */
static int blob_dir_count(void)
{
  cleanup_free char *dir = xasprintf("%s/blobs/sha256", sbd_cache_dir(cache));
  DIR *d = opendir(dir);
  ck_assert_ptr_nonnull(d);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
      n++;
  closedir(d);
  return n;
}

/* Writes text in two pieces under digest; returns commit's result. */
static int put(const char *digest, const char *text, sbd_error_t *err)
{
  struct sbd_cache_writer *w;
  if (sbd_cache_writer_begin(cache, digest, &w, err) < 0)
    return -1;
  size_t half = strlen(text) / 2;
  ck_assert_int_eq(sbd_cache_writer_write(w, text, half, err), 0);
  ck_assert_int_eq(sbd_cache_writer_write(w, text + half, strlen(text) - half, err), 0);
  ck_assert_int_eq(sbd_cache_writer_size(w), (int64_t)strlen(text));
  return sbd_cache_writer_commit(w, err);
}

static void digest_of(const char *text, char *out)
{
  sbd_digest_buffer(text, strlen(text), out);
}

START_TEST(test_open_creates_layout)
{
  cleanup_free char *blobs = xasprintf("%s/a/b/cache/blobs/sha256", scratch);
  struct stat st;
  ck_assert_int_eq(stat(blobs, &st), 0);
  ck_assert(S_ISDIR(st.st_mode));
  char d[SBD_DIGEST_STR_LEN];
  digest_of("x", d);
  cleanup_free char *path = sbd_cache_path(cache, d);
  cleanup_free char *want = xasprintf("%s/%s", blobs, d + 7);
  ck_assert_str_eq(path, want);
}
END_TEST

START_TEST(test_commit)
{
  char d[SBD_DIGEST_STR_LEN];
  digest_of("hello, cache", d);
  cleanup_error sbd_error_t err = NULL;
  ck_assert_int_eq(put(d, "hello, cache", &err), 0);
  ck_assert(sbd_cache_contains(cache, d, -1));
  ck_assert(sbd_cache_contains(cache, d, 12));
  ck_assert(!sbd_cache_contains(cache, d, 11));
  ck_assert_int_eq(blob_dir_count(), 1); /* no temporary file left */
  cleanup_free char *path = sbd_cache_path(cache, d);
  cleanup_free char *body = NULL;
  ck_assert_int_eq(sbd_read_file(path, 100, &body, NULL), 0);
  ck_assert_str_eq(body, "hello, cache");
  struct stat st;
  ck_assert_int_eq(stat(path, &st), 0);
  ck_assert_int_eq(st.st_mode & 0777, 0644);
}
END_TEST

START_TEST(test_mismatch_leaves_nothing)
{
  char d[SBD_DIGEST_STR_LEN], actual[SBD_DIGEST_STR_LEN];
  digest_of("what the manifest promised", d);
  digest_of("what the registry sent", actual);
  cleanup_error sbd_error_t err = NULL;
  ck_assert_int_lt(put(d, "what the registry sent", &err), 0);
  ck_assert_int_eq(sbd_error_exit_code(err), SBD_EXIT_IMAGE);
  ck_assert_ptr_nonnull(strstr(err->msg, d));
  ck_assert_ptr_nonnull(strstr(err->msg, actual));
  ck_assert(!sbd_cache_contains(cache, d, -1));
  ck_assert(!sbd_cache_contains(cache, actual, -1));
  ck_assert_int_eq(blob_dir_count(), 0);
}
END_TEST

START_TEST(test_abort_leaves_nothing)
{
  char d[SBD_DIGEST_STR_LEN];
  digest_of("partial", d);
  cleanup_error sbd_error_t err = NULL;
  struct sbd_cache_writer *w;
  ck_assert_int_eq(sbd_cache_writer_begin(cache, d, &w, &err), 0);
  ck_assert_int_eq(sbd_cache_writer_write(w, "part", 4, &err), 0);
  ck_assert_int_eq(blob_dir_count(), 1); /* the temporary file exists while writing */
  sbd_cache_writer_abort(w);
  ck_assert_int_eq(blob_dir_count(), 0);
  ck_assert(!sbd_cache_contains(cache, d, -1));
}
END_TEST

/* Two builds downloading the same blob: both commits succeed, one entry. */
START_TEST(test_commit_race)
{
  char d[SBD_DIGEST_STR_LEN];
  digest_of("shared layer", d);
  cleanup_error sbd_error_t err = NULL;
  struct sbd_cache_writer *a, *b;
  ck_assert_int_eq(sbd_cache_writer_begin(cache, d, &a, &err), 0);
  ck_assert_int_eq(sbd_cache_writer_begin(cache, d, &b, &err), 0);
  ck_assert_int_eq(sbd_cache_writer_write(a, "shared layer", 12, &err), 0);
  ck_assert_int_eq(sbd_cache_writer_write(b, "shared layer", 12, &err), 0);
  ck_assert_int_eq(sbd_cache_writer_commit(a, &err), 0);
  ck_assert_int_eq(sbd_cache_writer_commit(b, &err), 0);
  ck_assert_int_eq(blob_dir_count(), 1);
  ck_assert(sbd_cache_contains(cache, d, 12));
}
END_TEST

START_TEST(test_verify_and_remove)
{
  char d[SBD_DIGEST_STR_LEN];
  digest_of("good bytes", d);
  cleanup_error sbd_error_t err = NULL;
  bool ok = true;
  ck_assert_int_eq(sbd_cache_verify(cache, d, &ok, &err), 0);
  ck_assert(!ok); /* absent */
  ck_assert_int_eq(put(d, "good bytes", &err), 0);
  ck_assert_int_eq(sbd_cache_verify(cache, d, &ok, &err), 0);
  ck_assert(ok);

  /* Same size, other bytes: only re-hashing can tell. */
  cleanup_free char *path = sbd_cache_path(cache, d);
  FILE *f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  fputs("evil bytes", f);
  fclose(f);
  ck_assert(sbd_cache_contains(cache, d, 10));
  ck_assert_int_eq(sbd_cache_verify(cache, d, &ok, &err), 0);
  ck_assert(!ok);
  ck_assert(!sbd_cache_contains(cache, d, -1)); /* removed */

  ck_assert_int_eq(put(d, "good bytes", &err), 0);
  sbd_cache_remove(cache, d);
  ck_assert(!sbd_cache_contains(cache, d, -1));
}
END_TEST

START_TEST(test_invalid_digest)
{
  cleanup_error sbd_error_t err = NULL;
  struct sbd_cache_writer *w = NULL;
  ck_assert_int_lt(sbd_cache_writer_begin(cache, "sha256:../../etc/passwd", &w, &err), 0);
  ck_assert_ptr_null(w);
  ck_assert(!sbd_cache_contains(cache, "sha256:../../etc/passwd", -1));
  bool ok = true;
  sbd_error_free(&err);
  ck_assert_int_lt(sbd_cache_verify(cache, "md5:abc", &ok, &err), 0);
  ck_assert(!ok);
}
END_TEST

START_TEST(test_default_dir)
{
  setenv("HOME", "/home/someone", 1);
  setenv("XDG_CACHE_HOME", "/var/cache/xdg", 1);
  cleanup_free char *a = sbd_cache_default_dir();
  ck_assert_str_eq(a, "/var/cache/xdg/sbdisk");
  /* The XDG spec: relative (and empty) values are ignored. */
  setenv("XDG_CACHE_HOME", "relative/cache", 1);
  cleanup_free char *b = sbd_cache_default_dir();
  ck_assert_str_eq(b, "/home/someone/.cache/sbdisk");
  unsetenv("XDG_CACHE_HOME");
  cleanup_free char *c = sbd_cache_default_dir();
  ck_assert_str_eq(c, "/home/someone/.cache/sbdisk");
  unsetenv("HOME");
  cleanup_free char *d = sbd_cache_default_dir();
  ck_assert_ptr_null(d);
  struct sbd_cache *none = NULL;
  cleanup_error sbd_error_t err = NULL;
  ck_assert_int_lt(sbd_cache_open(NULL, &none, &err), 0);
  ck_assert_ptr_nonnull(strstr(err->msg, "cache"));
}
END_TEST

START_TEST(test_open_default_creates)
{
  cleanup_free char *xdg = xasprintf("%s/xdg", scratch);
  setenv("XDG_CACHE_HOME", xdg, 1);
  struct sbd_cache *c = NULL;
  cleanup_error sbd_error_t err = NULL;
  ck_assert_int_eq(sbd_cache_open(NULL, &c, &err), 0);
  cleanup_free char *want = xasprintf("%s/sbdisk", xdg);
  ck_assert_str_eq(sbd_cache_dir(c), want);
  cleanup_free char *blobs = xasprintf("%s/blobs/sha256", want);
  struct stat st;
  ck_assert_int_eq(stat(blobs, &st), 0);
  sbd_cache_free(c);
}
END_TEST

START_TEST(test_open_not_a_directory)
{
  cleanup_free char *file = xasprintf("%s/file", scratch);
  FILE *f = fopen(file, "w");
  ck_assert_ptr_nonnull(f);
  fclose(f);
  struct sbd_cache *c = NULL;
  cleanup_error sbd_error_t err = NULL;
  ck_assert_int_lt(sbd_cache_open(file, &c, &err), 0);
  ck_assert_ptr_nonnull(strstr(err->msg, file));
}
END_TEST

Suite *cache_suite(void)
{
  Suite *s = suite_create("cache");
  TCase *tc = tcase_create("cache");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_open_creates_layout);
  tcase_add_test(tc, test_commit);
  tcase_add_test(tc, test_mismatch_leaves_nothing);
  tcase_add_test(tc, test_abort_leaves_nothing);
  tcase_add_test(tc, test_commit_race);
  tcase_add_test(tc, test_verify_and_remove);
  tcase_add_test(tc, test_invalid_digest);
  tcase_add_test(tc, test_default_dir);
  tcase_add_test(tc, test_open_default_creates);
  tcase_add_test(tc, test_open_not_a_directory);
  suite_add_tcase(s, tc);
  return s;
}

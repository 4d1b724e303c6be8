/* The md5 thread gives each file the digest OpenSSL gives it, however the
 * files fall into its queue's chunks: many empty and tiny files (more than
 * one chunk may end), files that span chunks, and files fed in pieces. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "disk/hasher.h"
#include "lib/digest.h"

/* 40,000 files: more than twice the files one chunk may end, so that chunks
 * are handed over for their count of files as well as for their bytes. */
#define NFILES 40000

static size_t file_size(size_t i)
{
  if (i == 20000)
    return 9u << 20; /* across two 4 MiB chunks */
  if (i % 1000 == 999)
    return 70000 + i;
  return i % 7 < 4 ? 0 : i % 97;
}

START_TEST(test_hasher_many_files)
{
  size_t total = 0;
  for (size_t i = 0; i < NFILES; i++)
    total += file_size(i);
  unsigned char *data = malloc(total);
  uint32_t x = 7;
  for (size_t i = 0; i < total; i++) {
    x = x * 1664525u + 1013904223u;
    data[i] = (unsigned char)(x >> 24);
  }
  uint8_t(*got)[SBD_MD5_LEN] = calloc(NFILES, SBD_MD5_LEN);
  struct sbd_hasher *h = sbd_hasher_new();
  size_t off = 0;
  for (size_t i = 0; i < NFILES; i++) {
    size_t len = file_size(i), piece = 1 + i % 5000;
    for (size_t done = 0; done < len; done += piece)
      sbd_hasher_update(h, data + off + done, len - done < piece ? len - done : piece);
    sbd_hasher_final(h, got[i]);
    off += len;
  }
  sbd_hasher_wait(h);

  struct sbd_hash *md5 = sbd_hash_new(SBD_HASH_MD5);
  uint8_t want[SBD_MD5_LEN];
  off = 0;
  for (size_t i = 0; i < NFILES; i++) {
    sbd_hash_update(md5, data + off, file_size(i));
    sbd_hash_final(md5, want);
    ck_assert_msg(memcmp(got[i], want, SBD_MD5_LEN) == 0, "file %zu (%zu bytes) differs", i,
                  file_size(i));
    off += file_size(i);
  }
  sbd_hash_free(md5);
  sbd_hasher_free(h);
  free(got);
  free(data);
}
END_TEST

Suite *hasher_suite(void)
{
  Suite *s = suite_create("hasher");
  TCase *tc = tcase_create("hasher");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_hasher_many_files);
  suite_add_tcase(s, tc);
  return s;
}

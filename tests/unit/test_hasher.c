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

/* Hard links: a copy of a digest that may not be written yet, asked right
 * after its file ends, long after, of another copy, and 20,000 in a row (so
 * that copies alone fill a chunk's count). */
START_TEST(test_hasher_copies)
{
  enum { FILES = 3000, RUN = 20000 };
  size_t ncopies = FILES + RUN;
  uint8_t(*got)[SBD_MD5_LEN] = calloc(FILES, SBD_MD5_LEN);
  uint8_t(*copy)[SBD_MD5_LEN] = calloc(ncopies, SBD_MD5_LEN);
  size_t *source = calloc(ncopies, sizeof(*source)); /* the file each copy is of */
  unsigned char data[4096];
  for (size_t i = 0; i < sizeof(data); i++)
    data[i] = (unsigned char)(i * 131 + 7);
  struct sbd_hasher *h = sbd_hasher_new();
  size_t c = 0;
  for (size_t i = 0; i < FILES; i++) {
    sbd_hasher_update(h, data, 1 + i % sizeof(data));
    sbd_hasher_final(h, got[i]);
    if (i % 3 == 0) { /* the file just ended */
      source[c] = i;
      sbd_hasher_copy(h, got[i], copy[c++]);
    } else if (i % 3 == 1) { /* one from long ago */
      source[c] = i / 2;
      sbd_hasher_copy(h, got[i / 2], copy[c++]);
    } else { /* a copy of the last copy */
      source[c] = source[c - 1];
      sbd_hasher_copy(h, copy[c - 1], copy[c]);
      c++;
    }
  }
  for (size_t k = 0; k < RUN; k++) {
    source[c] = FILES - 1 - k % 50;
    sbd_hasher_copy(h, got[source[c]], copy[c]);
    c++;
  }
  sbd_hasher_wait(h);

  struct sbd_hash *md5 = sbd_hash_new(SBD_HASH_MD5);
  uint8_t want[SBD_MD5_LEN];
  for (size_t k = 0; k < c; k++) {
    sbd_hash_update(md5, data, 1 + source[k] % sizeof(data));
    sbd_hash_final(md5, want);
    ck_assert_msg(memcmp(copy[k], want, SBD_MD5_LEN) == 0, "copy %zu (of file %zu) differs", k,
                  source[k]);
  }
  sbd_hash_free(md5);
  sbd_hasher_free(h);
  free(source);
  free(copy);
  free(got);
}
END_TEST

Suite *hasher_suite(void)
{
  Suite *s = suite_create("hasher");
  TCase *tc = tcase_create("hasher");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_hasher_many_files);
  tcase_add_test(tc, test_hasher_copies);
  suite_add_tcase(s, tc);
  return s;
}

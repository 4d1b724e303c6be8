#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "disk/checksum.h"
#include "lib/digest.h"

static void md5_of(const char *s, uint8_t out[16])
{
  struct sbd_hash *h = sbd_hash_new(SBD_HASH_MD5);
  sbd_hash_update(h, s, strlen(s));
  sbd_hash_final(h, out);
  sbd_hash_free(h);
}

/* An empty directory: find lists nothing, md5sum reads nothing. */
START_TEST(test_checksum_empty)
{
  struct sbd_md5_list l = {0};
  char out[SBD_CHECKSUM_HEX_LEN], empty[SBD_CHECKSUM_HEX_LEN];
  uint8_t raw[16];
  sbd_md5_list_checksum(&l, out);
  md5_of("", raw);
  sbd_hex(raw, 16, empty);
  ck_assert_str_eq(out, empty);
  sbd_md5_list_free(&l);
}
END_TEST

/* The md5 of "<hex>\n" lines in byte order, whatever order files came in;
 * a file listed twice (a hardlink) counts twice. */
START_TEST(test_checksum_sorted_lines)
{
  const char *contents[] = {"zebra\n", "apple\n", "", "apple\n"};
  char hex[4][SBD_CHECKSUM_HEX_LEN];
  struct sbd_md5_list l = {0};
  for (size_t i = 0; i < 4; i++) {
    uint8_t raw[16];
    md5_of(contents[i], raw);
    sbd_hex(raw, 16, hex[i]);
    sbd_md5_list_add(&l, raw);
  }
  char out[SBD_CHECKSUM_HEX_LEN];
  sbd_md5_list_checksum(&l, out);
  ck_assert_uint_eq(l.n, 4);

  /* sort the hex strings by hand and hash the lines */
  const char *sorted[4] = {hex[0], hex[1], hex[2], hex[3]};
  for (size_t i = 0; i < 4; i++)
    for (size_t k = i + 1; k < 4; k++)
      if (strcmp(sorted[k], sorted[i]) < 0) {
        const char *t = sorted[i];
        sorted[i] = sorted[k];
        sorted[k] = t;
      }
  char text[4 * 33 + 1] = "";
  for (size_t i = 0; i < 4; i++) {
    strcat(text, sorted[i]);
    strcat(text, "\n");
  }
  uint8_t raw[16];
  char want[SBD_CHECKSUM_HEX_LEN];
  md5_of(text, raw);
  sbd_hex(raw, 16, want);
  ck_assert_str_eq(out, want);
  sbd_md5_list_free(&l);
}
END_TEST

static int str_cmp(const void *x, const void *y)
{
  return strcmp(x, y);
}

/* Many files (more lines than one write of the list holds), sorted as
 * LC_ALL=C sort sorts their hex, with digits and letters in every position. */
START_TEST(test_checksum_many)
{
  enum { N = 6000 }; /* past the size where the bucketed sort starts */
  static char hex[N][SBD_CHECKSUM_HEX_LEN];
  static char text[N * 33 + 1];
  struct sbd_md5_list l = {0};
  for (size_t i = 0; i < N; i++) {
    char content[32];
    snprintf(content, sizeof(content), "file %zu\n", i);
    uint8_t raw[16];
    md5_of(content, raw);
    sbd_hex(raw, 16, hex[i]);
    sbd_md5_list_add(&l, raw);
  }
  qsort(hex, N, sizeof(hex[0]), str_cmp);
  text[0] = '\0';
  for (size_t i = 0; i < N; i++) {
    memcpy(text + 33 * i, hex[i], 32);
    text[33 * i + 32] = '\n';
  }
  text[33 * N] = '\0';
  uint8_t raw[16];
  char want[SBD_CHECKSUM_HEX_LEN], out[SBD_CHECKSUM_HEX_LEN];
  md5_of(text, raw);
  sbd_hex(raw, 16, want);
  sbd_md5_list_checksum(&l, out);
  ck_assert_str_eq(out, want);
  sbd_md5_list_free(&l);
}
END_TEST

/* A list sized up front holds exactly what it was sized for (a million
 * files' list is 16 MB, not the 32 that doubling may reach), keeps what it
 * held when sized again, and gives the same checksum as one grown by adds. */
START_TEST(test_checksum_reserve)
{
  enum { N = 1000 };
  struct sbd_md5_list grown = {0}, sized = {0};
  sbd_md5_list_reserve(&sized, 600);
  ck_assert_uint_eq(sized.cap, 600);
  for (size_t i = 0; i < N; i++) {
    if (i == 600)
      sbd_md5_list_reserve(&sized, N - 600);
    char content[32];
    snprintf(content, sizeof(content), "file %zu\n", i);
    uint8_t raw[16];
    md5_of(content, raw);
    sbd_md5_list_add(&grown, raw);
    sbd_md5_list_add(&sized, raw);
  }
  ck_assert_uint_eq(sized.cap, N);
  sbd_md5_list_reserve(&sized, 0);
  ck_assert_uint_eq(sized.cap, N);
  ck_assert_uint_gt(grown.cap, N);
  char want[SBD_CHECKSUM_HEX_LEN], out[SBD_CHECKSUM_HEX_LEN];
  sbd_md5_list_checksum(&grown, want);
  sbd_md5_list_checksum(&sized, out);
  ck_assert_str_eq(out, want);
  sbd_md5_list_free(&grown);
  sbd_md5_list_free(&sized);
}
END_TEST

Suite *checksum_suite(void)
{
  Suite *s = suite_create("checksum");
  TCase *tc = tcase_create("checksum");
  tcase_add_test(tc, test_checksum_empty);
  tcase_add_test(tc, test_checksum_sorted_lines);
  tcase_add_test(tc, test_checksum_many);
  tcase_add_test(tc, test_checksum_reserve);
  suite_add_tcase(s, tc);
  return s;
}

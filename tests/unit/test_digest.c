#include <check.h>
#include <string.h>

#include "lib/digest.h"

/* Test vectors from FIPS 180-2 and RFC 1321. */
START_TEST(test_sha256_abc)
{
  char out[SBD_DIGEST_STR_LEN];
  sbd_digest_buffer("abc", 3, out);
  ck_assert_str_eq(out, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}
END_TEST

START_TEST(test_md5_streaming)
{
  struct sbd_hash *h = sbd_hash_new(SBD_HASH_MD5);
  uint8_t raw[SBD_MD5_LEN];
  char hex[2 * SBD_MD5_LEN + 1];
  sbd_hash_update(h, "message ", 8);
  sbd_hash_update(h, "digest", 6);
  sbd_hash_final(h, raw);
  sbd_hex(raw, sizeof(raw), hex);
  ck_assert_str_eq(hex, "f96b697d7cb7938d525a2f31aaf161d0");
  /* final resets the context: the empty string next */
  sbd_hash_final(h, raw);
  sbd_hex(raw, sizeof(raw), hex);
  ck_assert_str_eq(hex, "d41d8cd98f00b204e9800998ecf8427e");
  sbd_hash_free(h);
}
END_TEST

START_TEST(test_digest_valid)
{
  ck_assert(sbd_digest_valid("sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
  ck_assert(!sbd_digest_valid("sha256:BA7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
  ck_assert(!sbd_digest_valid("sha256:ba7816bf"));
  ck_assert(!sbd_digest_valid("sha512:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
  ck_assert(!sbd_digest_valid(NULL));
}
END_TEST

/* chainID is defined by the OCI image spec (config.md, "Layer ChainID"): the
 * second step hashes the text "<chainID> <diffID>" with a single space. */
START_TEST(test_chain_id)
{
  const char *d1 = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
  const char *d2 = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
  char c1[SBD_DIGEST_STR_LEN], c2[SBD_DIGEST_STR_LEN], expect[SBD_DIGEST_STR_LEN];
  sbd_chain_id(NULL, d1, c1);
  ck_assert_str_eq(c1, d1);
  sbd_chain_id(c1, d2, c2);
  char text[2 * SBD_DIGEST_STR_LEN];
  strcpy(text, d1);
  strcat(text, " ");
  strcat(text, d2);
  sbd_digest_buffer(text, strlen(text), expect);
  ck_assert_str_eq(c2, expect);
  ck_assert_str_ne(c2, d2);
}
END_TEST

Suite *digest_suite(void)
{
  Suite *s = suite_create("digest");
  TCase *tc = tcase_create("digest");
  tcase_add_test(tc, test_sha256_abc);
  tcase_add_test(tc, test_md5_streaming);
  tcase_add_test(tc, test_digest_valid);
  tcase_add_test(tc, test_chain_id);
  suite_add_tcase(s, tc);
  return s;
}

#include <check.h>
#include <stdio.h>
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

/* Every implementation against OpenSSL's md5, one message at a time: lengths
 * on each side of the padding boundaries (55/56, 63/64, 119/120), many more
 * messages than lanes, in an order that is not by length, and a long one that
 * keeps one lane busy while the others are refilled. */
static void check_md5_many(enum sbd_md5_impl impl)
{
  enum { N = 300 };
  static uint8_t data[N * 5300 + 70000];
  for (size_t i = 0; i < sizeof(data); i++)
    data[i] = (uint8_t)(i * 2654435761u >> 13);
  struct sbd_md5_job jobs[N + 1];
  uint8_t got[N + 1][SBD_MD5_LEN], want[N + 1][SBD_MD5_LEN];
  size_t off = 0;
  for (size_t i = 0; i < N; i++) {
    /* 0..199 (every remainder mod 64), then some of several KiB */
    size_t len = i < N - 20 ? (i * 37) % 200 : 3000 + 7 * i;
    jobs[i] = (struct sbd_md5_job){.data = data + off, .len = len, .out = got[i]};
    off += len + 1; /* unaligned starts */
  }
  jobs[N] = (struct sbd_md5_job){.data = data + off, .len = 69999, .out = got[N]};
  struct sbd_hash *h = sbd_hash_new(SBD_HASH_MD5);
  for (size_t i = 0; i <= N; i++) {
    sbd_hash_update(h, jobs[i].data, jobs[i].len);
    sbd_hash_final(h, want[i]);
  }
  sbd_hash_free(h);
  ck_assert_int_eq(sbd_md5_many(jobs, N + 1, impl), impl);
  for (size_t i = 0; i <= N; i++)
    ck_assert_msg(memcmp(got[i], want[i], SBD_MD5_LEN) == 0, "impl %d: message %zu (%zu bytes) differs",
                  (int)impl, i, jobs[i].len);
}

START_TEST(test_md5_many)
{
  static const enum sbd_md5_impl impls[] = {SBD_MD5_ONE_BY_ONE, SBD_MD5_AVX2, SBD_MD5_AVX512};
  for (size_t i = 0; i < sizeof(impls) / sizeof(impls[0]); i++) {
    if (!sbd_md5_impl_available(impls[i])) {
      fprintf(stderr, "digest: md5 impl %d: this CPU lacks it, not checked\n", (int)impls[i]);
      continue;
    }
    check_md5_many(impls[i]);
  }
  /* RFC 1321's vector through the widest one, and nothing to do at all. */
  uint8_t raw[SBD_MD5_LEN];
  char hex[2 * SBD_MD5_LEN + 1];
  struct sbd_md5_job job = {.data = "message digest", .len = 14, .out = raw};
  sbd_md5_many(&job, 1, SBD_MD5_AUTO);
  sbd_hex(raw, sizeof(raw), hex);
  ck_assert_str_eq(hex, "f96b697d7cb7938d525a2f31aaf161d0");
  sbd_md5_many(NULL, 0, SBD_MD5_AUTO);
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
  tcase_add_test(tc, test_md5_many);
  tcase_add_test(tc, test_digest_valid);
  tcase_add_test(tc, test_chain_id);
  suite_add_tcase(s, tc);
  return s;
}

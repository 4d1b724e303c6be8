#include "digest.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

struct sbd_hash {
  EVP_MD_CTX *ctx;
  EVP_MD *md;
};

/* The algorithm is fetched from the provider once per hash, explicitly:
 * OpenSSL 3 fetches it again, under a lock, on every EVP_DigestInit_ex given
 * the legacy EVP_md5() — which cost more than hashing itself for a layer of
 * 200,000 small files, whose md5s reuse one hash. */
struct sbd_hash *sbd_hash_new(enum sbd_hash_kind kind)
{
  struct sbd_hash *h = xcalloc(1, sizeof(*h));
  h->md = EVP_MD_fetch(NULL, kind == SBD_HASH_MD5 ? "MD5" : "SHA256", NULL);
  h->ctx = EVP_MD_CTX_new();
  if (h->md == NULL || h->ctx == NULL || EVP_DigestInit_ex(h->ctx, h->md, NULL) != 1) {
    fputs("sbdisk: cannot initialise OpenSSL digest\n", stderr);
    abort();
  }
  return h;
}

void sbd_hash_update(struct sbd_hash *h, const void *data, size_t len)
{
  if (len)
    EVP_DigestUpdate(h->ctx, data, len);
}

void sbd_hash_final(struct sbd_hash *h, uint8_t *out)
{
  unsigned int n = 0;
  EVP_DigestFinal_ex(h->ctx, out, &n);
  EVP_DigestInit_ex(h->ctx, h->md, NULL);
}

void sbd_hash_free(struct sbd_hash *h)
{
  if (h == NULL)
    return;
  EVP_MD_CTX_free(h->ctx);
  EVP_MD_free(h->md);
  free(h);
}

void sbd_hash_cleanup(struct sbd_hash **h)
{
  sbd_hash_free(*h);
  *h = NULL;
}

void sbd_hex(const uint8_t *bytes, size_t n, char *out)
{
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = digits[bytes[i] >> 4];
    out[2 * i + 1] = digits[bytes[i] & 15];
  }
  out[2 * n] = '\0';
}

void sbd_digest_format(const uint8_t sha[SBD_SHA256_LEN], char *out)
{
  memcpy(out, "sha256:", 7);
  sbd_hex(sha, SBD_SHA256_LEN, out + 7);
}

bool sbd_digest_valid(const char *s)
{
  if (s == NULL || strncmp(s, "sha256:", 7) != 0 || strlen(s) != 7 + 64)
    return false;
  for (const char *p = s + 7; *p; p++)
    if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
      return false;
  return true;
}

void sbd_digest_buffer(const void *data, size_t len, char *out)
{
  uint8_t sha[SBD_SHA256_LEN];
  cleanup_hash struct sbd_hash *h = sbd_hash_new(SBD_HASH_SHA256);
  sbd_hash_update(h, data, len);
  sbd_hash_final(h, sha);
  sbd_digest_format(sha, out);
}

int sbd_digest_file(const char *path, char *out, sbd_error_t *err)
{
  cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return sbd_error_set(err, SBD_EXIT_FAILURE, errno, "cannot open %s", path);
  cleanup_hash struct sbd_hash *h = sbd_hash_new(SBD_HASH_SHA256);
  static const size_t chunk = 1 << 20;
  cleanup_free char *buf = xmalloc(chunk);
  for (;;) {
    ssize_t n = read(fd, buf, chunk);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return sbd_error_set(err, SBD_EXIT_FAILURE, errno, "cannot read %s", path);
    if (n == 0)
      break;
    sbd_hash_update(h, buf, (size_t)n);
  }
  uint8_t sha[SBD_SHA256_LEN];
  sbd_hash_final(h, sha);
  sbd_digest_format(sha, out);
  return 0;
}

void sbd_chain_id(const char *parent, const char *diff_id, char *out)
{
  if (parent == NULL) {
    snprintf(out, SBD_DIGEST_STR_LEN, "%s", diff_id);
    return;
  }
  cleanup_free char *text = xasprintf("%s %s", parent, diff_id);
  sbd_digest_buffer(text, strlen(text), out);
}

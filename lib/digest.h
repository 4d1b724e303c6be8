/* Content digests: streaming sha256 and md5 (OpenSSL EVP, which uses the CPU's
 * SHA extensions), "sha256:<hex>" strings, and containerd's chainID. */
#ifndef SBD_DIGEST_H
#define SBD_DIGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define SBD_SHA256_LEN 32
#define SBD_MD5_LEN 16
/* "sha256:" + 64 hex digits + NUL */
#define SBD_DIGEST_STR_LEN (7 + 64 + 1)

enum sbd_hash_kind { SBD_HASH_SHA256, SBD_HASH_MD5 };

struct sbd_hash; /* opaque streaming context */

struct sbd_hash *sbd_hash_new(enum sbd_hash_kind kind);
void sbd_hash_update(struct sbd_hash *h, const void *data, size_t len);
/* Writes the raw digest (32 or 16 bytes) and resets the context for reuse. */
void sbd_hash_final(struct sbd_hash *h, uint8_t *out);
void sbd_hash_free(struct sbd_hash *h);
#define cleanup_hash __attribute__((cleanup(sbd_hash_cleanup)))
void sbd_hash_cleanup(struct sbd_hash **h);

/* md5 of many independent messages (each regular file of a snapshot) at once:
 * on CPUs with AVX-512 or AVX2 the lanes of a vector carry different messages,
 * several times faster than one after another for small files. */
struct sbd_md5_job {
  const void *data;
  size_t len;
  uint8_t *out; /* SBD_MD5_LEN bytes */
};
enum sbd_md5_impl { SBD_MD5_AUTO, SBD_MD5_ONE_BY_ONE, SBD_MD5_AVX2, SBD_MD5_AVX512 };
bool sbd_md5_impl_available(enum sbd_md5_impl impl);
/* Fills every job's out; an impl this CPU lacks falls back to one by one.
 * Returns the impl that ran (AUTO picks the widest available). */
enum sbd_md5_impl sbd_md5_many(struct sbd_md5_job *jobs, size_t n, enum sbd_md5_impl impl);

/* Lower-case hex of n bytes into out (2n+1 bytes). */
void sbd_hex(const uint8_t *bytes, size_t n, char *out);

/* "sha256:<hex>" of raw sha256 bytes; out has SBD_DIGEST_STR_LEN bytes. */
void sbd_digest_format(const uint8_t sha[SBD_SHA256_LEN], char *out);

/* True if s is "sha256:" followed by exactly 64 lower-case hex digits.  Other
 * algorithms are refused: every registry and runtime we target uses sha256. */
bool sbd_digest_valid(const char *s);

/* sha256 of a buffer, as "sha256:<hex>". */
void sbd_digest_buffer(const void *data, size_t len, char *out);

/* sha256 of a whole file, as "sha256:<hex>", read 1 MiB at a time. */
int sbd_digest_file(const char *path, char *out, sbd_error_t *err);

/* chainID(L1) = diffID(L1); chainID(Ln) = sha256(chainID(Ln-1) + " " + diffID(Ln)).
 * parent may be NULL for the first layer. */
void sbd_chain_id(const char *parent, const char *diff_id, char *out);

#endif

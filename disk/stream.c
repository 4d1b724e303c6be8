#include "stream.h"

#include <archive.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "lib/util.h"

#define IN_SIZE (1u << 20)
#define OUT_SIZE (1u << 20)

enum codec { CODEC_NONE, CODEC_GZIP, CODEC_ZSTD };

struct sbd_stream {
  int fd;
  enum sbd_stream_compression c;
  enum codec codec;
  bool sniffed;
  struct sbd_hash *blob_hash;
  struct sbd_hash *diff_hash;
  unsigned char *in;
  size_t in_len, in_pos;
  bool in_eof;
  unsigned char *out;
  off_t in_total, out_total;
  /* gzip */
  z_stream z;
  bool z_ready;
  bool z_member_done; /* the last member ended; another may follow */
  /* zstd */
  ZSTD_DStream *zd;
  size_t zstd_last; /* last return of ZSTD_decompressStream: 0 at a frame end */
  /* when read through libarchive */
  sbd_error_t archive_err;
  void (*progress)(void *, uint64_t);
  void *progress_opaque;
};

static int fill(struct sbd_stream *s, sbd_error_t *err)
{
  if (s->in_pos < s->in_len || s->in_eof)
    return 0;
  ssize_t n;
  do
    n = read(s->fd, s->in, IN_SIZE);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return sbd_error_set(err, SBD_EXIT_FAILURE, errno, "reading the layer blob");
  s->in_len = (size_t)n;
  s->in_pos = 0;
  s->in_total += n;
  if (n == 0)
    s->in_eof = true;
  else
    sbd_hash_update(s->blob_hash, s->in, (size_t)n);
  return 0;
}

int sbd_stream_open(const char *path, enum sbd_stream_compression c, struct sbd_stream **out,
                    sbd_error_t *err)
{
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return sbd_error_set(err, SBD_EXIT_FAILURE, errno, "cannot open %s", path);
  struct sbd_stream *s = xcalloc(1, sizeof(*s));
  s->fd = fd;
  s->c = c;
  s->blob_hash = sbd_hash_new(SBD_HASH_SHA256);
  s->diff_hash = sbd_hash_new(SBD_HASH_SHA256);
  s->in = xmalloc(IN_SIZE);
  s->out = xmalloc(OUT_SIZE);
  s->codec = CODEC_NONE;
  s->sniffed = c == SBD_STREAM_NONE;
  *out = s;
  return 0;
}

/* containerd's DecompressStream decides by magic bytes, whatever the media
 * type says: gzip (1f 8b 08), zstd (28 b5 2f fd), else uncompressed. */
static int sniff(struct sbd_stream *s, sbd_error_t *err)
{
  static const unsigned char gzip_magic[] = {0x1f, 0x8b, 0x08};
  static const unsigned char zstd_magic[] = {0x28, 0xb5, 0x2f, 0xfd};
  if (fill(s, err) < 0)
    return -1;
  size_t avail = s->in_len - s->in_pos;
  const unsigned char *p = s->in + s->in_pos;
  if (avail >= sizeof(gzip_magic) && memcmp(p, gzip_magic, sizeof(gzip_magic)) == 0) {
    /* 16 + MAX_WBITS: gzip framing only. */
    if (inflateInit2(&s->z, 16 + MAX_WBITS) != Z_OK)
      return sbd_error_set(err, SBD_EXIT_FAILURE, 0, "cannot initialise zlib");
    s->z_ready = true;
    s->codec = CODEC_GZIP;
  } else if (avail >= sizeof(zstd_magic) && memcmp(p, zstd_magic, sizeof(zstd_magic)) == 0) {
    s->zd = ZSTD_createDStream();
    if (s->zd == NULL || ZSTD_isError(ZSTD_initDStream(s->zd)))
      return sbd_error_set(err, SBD_EXIT_FAILURE, 0, "cannot initialise zstd");
    s->codec = CODEC_ZSTD;
  }
  s->sniffed = true;
  return 0;
}

static ssize_t read_plain(struct sbd_stream *s, const void **data, sbd_error_t *err)
{
  if (fill(s, err) < 0)
    return -1;
  size_t n = s->in_len - s->in_pos;
  *data = s->in + s->in_pos;
  s->in_pos = s->in_len;
  return (ssize_t)n;
}

/* Go's gzip reader (what containerd uses) reads every member of a
 * multi-member stream and refuses anything after the last one that is not
 * another gzip header. */
static ssize_t read_gzip(struct sbd_stream *s, const void **data, sbd_error_t *err)
{
  for (;;) {
    if (fill(s, err) < 0)
      return -1;
    if (s->z_member_done) {
      if (s->in_pos == s->in_len)
        return 0; /* clean end after a whole member */
      if (s->in[s->in_pos] != 0x1f)
        return sbd_error_set(err, SBD_EXIT_IMAGE, 0, "gzip: data after the end of the stream");
      inflateReset(&s->z);
      s->z_member_done = false;
    }
    if (s->in_pos == s->in_len)
      return sbd_error_set(err, SBD_EXIT_IMAGE, 0, "gzip: unexpected end of data (truncated blob)");
    s->z.next_in = s->in + s->in_pos;
    s->z.avail_in = (uInt)(s->in_len - s->in_pos);
    s->z.next_out = s->out;
    s->z.avail_out = OUT_SIZE;
    int r = inflate(&s->z, Z_NO_FLUSH);
    s->in_pos = s->in_len - s->z.avail_in;
    size_t n = OUT_SIZE - s->z.avail_out;
    if (r == Z_STREAM_END)
      s->z_member_done = true;
    else if (r != Z_OK && r != Z_BUF_ERROR)
      return sbd_error_set(err, SBD_EXIT_IMAGE, 0, "gzip: %s", s->z.msg ? s->z.msg : "corrupt data");
    if (n > 0) {
      *data = s->out;
      return (ssize_t)n;
    }
  }
}

static ssize_t read_zstd(struct sbd_stream *s, const void **data, sbd_error_t *err)
{
  for (;;) {
    if (fill(s, err) < 0)
      return -1;
    if (s->in_pos == s->in_len) {
      if (s->zstd_last != 0 && s->in_total > 0)
        return sbd_error_set(err, SBD_EXIT_IMAGE, 0, "zstd: unexpected end of data (truncated blob)");
      if (s->in_total == 0)
        return sbd_error_set(err, SBD_EXIT_IMAGE, 0, "zstd: empty blob");
      return 0;
    }
    ZSTD_inBuffer in = {s->in, s->in_len, s->in_pos};
    ZSTD_outBuffer o = {s->out, OUT_SIZE, 0};
    size_t r = ZSTD_decompressStream(s->zd, &o, &in);
    s->in_pos = in.pos;
    if (ZSTD_isError(r))
      return sbd_error_set(err, SBD_EXIT_IMAGE, 0, "zstd: %s", ZSTD_getErrorName(r));
    s->zstd_last = r;
    if (o.pos > 0) {
      *data = s->out;
      return (ssize_t)o.pos;
    }
  }
}

ssize_t sbd_stream_read(struct sbd_stream *s, const void **data, sbd_error_t *err)
{
  ssize_t n;
  if (!s->sniffed && sniff(s, err) < 0)
    return -1;
  switch (s->codec) {
  case CODEC_GZIP:
    n = read_gzip(s, data, err);
    break;
  case CODEC_ZSTD:
    n = read_zstd(s, data, err);
    break;
  default:
    n = read_plain(s, data, err);
    break;
  }
  if (n > 0) {
    sbd_hash_update(s->diff_hash, *data, (size_t)n);
    s->out_total += n;
  }
  return n;
}

int sbd_stream_finish(struct sbd_stream *s, char blob_digest[SBD_DIGEST_STR_LEN],
                      char diff_id[SBD_DIGEST_STR_LEN], sbd_error_t *err)
{
  const void *data;
  ssize_t n;
  while ((n = sbd_stream_read(s, &data, err)) > 0)
    ;
  if (n < 0)
    return -1;
  uint8_t sha[SBD_SHA256_LEN];
  sbd_hash_final(s->blob_hash, sha);
  sbd_digest_format(sha, blob_digest);
  sbd_hash_final(s->diff_hash, sha);
  sbd_digest_format(sha, diff_id);
  return 0;
}

off_t sbd_stream_in_bytes(const struct sbd_stream *s)
{
  return s->in_total;
}

off_t sbd_stream_out_bytes(const struct sbd_stream *s)
{
  return s->out_total;
}

void sbd_stream_free(struct sbd_stream *s)
{
  if (s == NULL)
    return;
  if (s->z_ready)
    inflateEnd(&s->z);
  if (s->zd)
    ZSTD_freeDStream(s->zd);
  if (s->fd >= 0)
    close(s->fd);
  sbd_error_free(&s->archive_err);
  sbd_hash_free(s->blob_hash);
  sbd_hash_free(s->diff_hash);
  free(s->in);
  free(s->out);
  free(s);
}

void sbd_stream_set_progress(struct sbd_stream *s, void (*fn)(void *, uint64_t), void *opaque)
{
  s->progress = fn;
  s->progress_opaque = opaque;
}

static la_ssize_t archive_read_cb(struct archive *ar, void *opaque, const void **buf)
{
  struct sbd_stream *s = opaque;
  ssize_t n = sbd_stream_read(s, buf, &s->archive_err);
  if (n < 0) {
    archive_set_error(ar, EIO, "%s", s->archive_err->msg);
    return -1;
  }
  if (s->progress)
    s->progress(s->progress_opaque, (uint64_t)s->in_total);
  return n;
}

void sbd_archive_free(struct archive **ar)
{
  if (*ar)
    archive_read_free(*ar);
  *ar = NULL;
}

int sbd_stream_archive_open(struct sbd_stream *s, struct archive **out, sbd_error_t *err)
{
  struct archive *ar = archive_read_new();
  if (ar == NULL)
    return sbd_error_set(err, SBD_EXIT_FAILURE, ENOMEM, "cannot create a tar reader");
  archive_read_support_format_tar(ar);
  archive_read_support_format_empty(ar);
  if (archive_read_open(ar, s, NULL, archive_read_cb, NULL) != ARCHIVE_OK) {
    sbd_stream_archive_error(s, ar, err);
    archive_read_free(ar);
    return -1;
  }
  *out = ar;
  return 0;
}

int sbd_stream_archive_error(struct sbd_stream *s, struct archive *ar, sbd_error_t *err)
{
  if (s->archive_err)
    return sbd_error_set(err, s->archive_err->exit_code, 0, "%s", s->archive_err->msg);
  const char *why = archive_error_string(ar);
  return sbd_error_set(err, SBD_EXIT_IMAGE, 0, "reading the tar: %s", why ? why : "invalid archive");
}

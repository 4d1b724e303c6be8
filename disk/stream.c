/* A layer blob as a stream of uncompressed bytes.
 *
 * The decoding (reading the blob, its sha256, decompression) runs on a thread
 * of its own and fills a small ring of buffers, so that it overlaps with the
 * tar parsing and ext4 writing done by the reader; the sha256 of the output
 * (the diffID) is computed from the same buffers on a third thread.  A buffer
 * is filled again only once both the reader and the diffID thread are done
 * with it.  gzip goes through ISA-L's igzip when it is available (about 2.5x
 * zlib here), else zlib; zstd through libzstd. */
#include "stream.h"

#include <archive.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>
#ifdef SBD_HAVE_ISAL
#include <isa-l/igzip_lib.h>
#else
#include <zlib.h>
#endif

#include "lib/util.h"

#define IN_SIZE (1u << 20)
#define SLOT_SIZE (1u << 20)
#define SLOTS 8

/* --- the decoder: one blob, decoded into caller buffers ------------------------- */

enum codec { CODEC_NONE, CODEC_GZIP, CODEC_ZSTD };

struct decoder {
  int fd;
  struct sbd_blob_reader reader;
  bool sniff; /* compressed media type: decide by magic bytes */
  enum codec codec;
  bool sniffed;
  struct sbd_hash *blob_hash;
  struct sbd_hash *diff_hash;
  unsigned char *in;
  size_t in_len, in_pos;
  bool in_eof;
  uint64_t in_total, out_total;
  bool member_done; /* gzip: a member ended; another may follow */
#ifdef SBD_HAVE_ISAL
  struct inflate_state isal;
#else
  z_stream z;
  bool z_ready;
#endif
  ZSTD_DStream *zd;
  size_t zstd_last; /* last return of ZSTD_decompressStream: 0 at a frame end */
};

static int fill(struct decoder *d, sbd_error_t *err)
{
  if (d->in_pos < d->in_len || d->in_eof)
    return 0;
  ssize_t n;
  if (d->reader.read) {
    n = d->reader.read(d->reader.opaque, d->in, IN_SIZE, err);
    if (n < 0)
      return -1;
  } else {
    do
      n = read(d->fd, d->in, IN_SIZE);
    while (n < 0 && errno == EINTR);
    if (n < 0)
      return sbd_error_set(err, SBD_EXIT_FAILURE, errno, "reading the layer blob");
  }
  d->in_len = (size_t)n;
  d->in_pos = 0;
  d->in_total += (uint64_t)n;
  if (n == 0)
    d->in_eof = true;
  else
    if (d->blob_hash)
      sbd_hash_update(d->blob_hash, d->in, (size_t)n);
  return 0;
}

static int gzip_start_member(struct decoder *d, sbd_error_t *err)
{
#ifdef SBD_HAVE_ISAL
  (void)err;
  isal_inflate_init(&d->isal);
  d->isal.crc_flag = ISAL_GZIP; /* parse the header, check the CRC and size */
  return 0;
#else
  if (d->z_ready)
    return inflateReset(&d->z) == Z_OK ? 0 : sbd_error_set(err, SBD_EXIT_FAILURE, 0, "zlib reset");
  /* 16 + MAX_WBITS: gzip framing only. */
  if (inflateInit2(&d->z, 16 + MAX_WBITS) != Z_OK)
    return sbd_error_set(err, SBD_EXIT_FAILURE, 0, "cannot initialise zlib");
  d->z_ready = true;
  return 0;
#endif
}

/* containerd's DecompressStream decides by magic bytes, whatever the media
 * type says: gzip (1f 8b 08), zstd (28 b5 2f fd), else uncompressed. */
static int sniff(struct decoder *d, sbd_error_t *err)
{
  static const unsigned char gzip_magic[] = {0x1f, 0x8b, 0x08};
  static const unsigned char zstd_magic[] = {0x28, 0xb5, 0x2f, 0xfd};
  d->sniffed = true;
  if (!d->sniff)
    return 0;
  if (fill(d, err) < 0)
    return -1;
  size_t avail = d->in_len - d->in_pos;
  const unsigned char *p = d->in + d->in_pos;
  if (avail >= sizeof(gzip_magic) && memcmp(p, gzip_magic, sizeof(gzip_magic)) == 0) {
    d->codec = CODEC_GZIP;
    return gzip_start_member(d, err);
  }
  if (avail >= sizeof(zstd_magic) && memcmp(p, zstd_magic, sizeof(zstd_magic)) == 0) {
    d->zd = ZSTD_createDStream();
    if (d->zd == NULL || ZSTD_isError(ZSTD_initDStream(d->zd)))
      return sbd_error_set(err, SBD_EXIT_FAILURE, 0, "cannot initialise zstd");
    d->codec = CODEC_ZSTD;
  }
  return 0;
}

static ssize_t decode_plain(struct decoder *d, unsigned char *out, size_t cap, sbd_error_t *err)
{
  if (fill(d, err) < 0)
    return -1;
  size_t n = d->in_len - d->in_pos;
  if (n > cap)
    n = cap;
  memcpy(out, d->in + d->in_pos, n);
  d->in_pos += n;
  return (ssize_t)n;
}

/* One inflate step over the current input: output bytes, and whether the
 * member ended.  Returns -1 on corrupt data. */
static ssize_t inflate_step(struct decoder *d, unsigned char *out, size_t cap, sbd_error_t *err)
{
#ifdef SBD_HAVE_ISAL
  d->isal.next_in = d->in + d->in_pos;
  d->isal.avail_in = (uint32_t)(d->in_len - d->in_pos);
  d->isal.next_out = out;
  d->isal.avail_out = (uint32_t)cap;
  int r = isal_inflate(&d->isal);
  d->in_pos = d->in_len - d->isal.avail_in;
  if (r != ISAL_DECOMP_OK)
    return sbd_error_set(err, SBD_EXIT_IMAGE, 0, "gzip: %s",
                         r == ISAL_INCORRECT_CHECKSUM ? "checksum mismatch (corrupt data)"
                                                      : "corrupt data");
  if (d->isal.block_state == ISAL_BLOCK_FINISH)
    d->member_done = true;
  return (ssize_t)(cap - d->isal.avail_out);
#else
  d->z.next_in = d->in + d->in_pos;
  d->z.avail_in = (uInt)(d->in_len - d->in_pos);
  d->z.next_out = out;
  d->z.avail_out = (uInt)cap;
  int r = inflate(&d->z, Z_NO_FLUSH);
  d->in_pos = d->in_len - d->z.avail_in;
  if (r == Z_STREAM_END)
    d->member_done = true;
  else if (r != Z_OK && r != Z_BUF_ERROR)
    return sbd_error_set(err, SBD_EXIT_IMAGE, 0, "gzip: %s", d->z.msg ? d->z.msg : "corrupt data");
  return (ssize_t)(cap - d->z.avail_out);
#endif
}

/* Go's gzip reader (what containerd uses) reads every member of a
 * multi-member stream and refuses anything after the last one that is not
 * another gzip header. */
static ssize_t decode_gzip(struct decoder *d, unsigned char *out, size_t cap, sbd_error_t *err)
{
  for (;;) {
    if (fill(d, err) < 0)
      return -1;
    if (d->member_done) {
      if (d->in_pos == d->in_len)
        return 0; /* clean end after a whole member */
      if (d->in[d->in_pos] != 0x1f)
        return sbd_error_set(err, SBD_EXIT_IMAGE, 0, "gzip: data after the end of the stream");
      if (gzip_start_member(d, err) < 0)
        return -1;
      d->member_done = false;
    }
    if (d->in_pos == d->in_len)
      return sbd_error_set(err, SBD_EXIT_IMAGE, 0, "gzip: unexpected end of data (truncated blob)");
    ssize_t n = inflate_step(d, out, cap, err);
    if (n != 0)
      return n;
  }
}

static ssize_t decode_zstd(struct decoder *d, unsigned char *out, size_t cap, sbd_error_t *err)
{
  for (;;) {
    if (fill(d, err) < 0)
      return -1;
    if (d->in_pos == d->in_len) {
      if (d->zstd_last != 0)
        return sbd_error_set(err, SBD_EXIT_IMAGE, 0, "zstd: unexpected end of data (truncated blob)");
      return 0;
    }
    ZSTD_inBuffer in = {d->in, d->in_len, d->in_pos};
    ZSTD_outBuffer o = {out, cap, 0};
    size_t r = ZSTD_decompressStream(d->zd, &o, &in);
    d->in_pos = in.pos;
    if (ZSTD_isError(r))
      return sbd_error_set(err, SBD_EXIT_IMAGE, 0, "zstd: %s", ZSTD_getErrorName(r));
    d->zstd_last = r;
    if (o.pos > 0)
      return (ssize_t)o.pos;
  }
}

/* Fills out with up to cap uncompressed bytes (fewer only at the end). */
static ssize_t decoder_fill(struct decoder *d, unsigned char *out, size_t cap, sbd_error_t *err)
{
  if (!d->sniffed && sniff(d, err) < 0)
    return -1;
  size_t got = 0;
  while (got < cap) {
    ssize_t n;
    switch (d->codec) {
    case CODEC_GZIP:
      n = decode_gzip(d, out + got, cap - got, err);
      break;
    case CODEC_ZSTD:
      n = decode_zstd(d, out + got, cap - got, err);
      break;
    default:
      n = decode_plain(d, out + got, cap - got, err);
      break;
    }
    if (n < 0)
      return -1;
    if (n == 0)
      break;
    got += (size_t)n;
  }
  d->out_total += got;
  return (ssize_t)got;
}

static void decoder_free(struct decoder *d)
{
#ifndef SBD_HAVE_ISAL
  if (d->z_ready)
    inflateEnd(&d->z);
#endif
  if (d->zd)
    ZSTD_freeDStream(d->zd);
  if (d->fd >= 0)
    close(d->fd);
  sbd_hash_free(d->blob_hash);
  sbd_hash_free(d->diff_hash);
  free(d->in);
}

/* --- the stream: the decoder on its own thread, a ring of buffers ---------------- */

struct slot {
  unsigned char *data;
  size_t len;
};

struct sbd_stream {
  struct decoder d;
  pthread_t thread;      /* decodes */
  pthread_t diff_thread; /* hashes what was decoded */
  bool started, diff_started;
  pthread_mutex_t lock;
  pthread_cond_t filled; /* the producer made a slot available, or finished */
  pthread_cond_t freed;  /* the consumer or the diffID thread gave a slot back */
  struct slot slots[SLOTS];
  /* Counts of slots, never wrapped (slot i is slots[i % SLOTS]): */
  uint64_t produced; /* filled by the decoder */
  uint64_t taken;    /* handed to the consumer */
  uint64_t released; /* given back by the consumer (taken - released: 0 or 1) */
  uint64_t hashed;   /* hashed by the diffID thread */
  bool done;         /* the producer finished (end, or error) */
  bool diff_done;    /* the diffID thread finished and diff_id is set */
  bool cancel;
  sbd_error_t error;
  uint64_t in_total; /* compressed bytes the producer has read */
  uint64_t in_seen;  /* the same, as of the consumer's last read */
  char blob_digest[SBD_DIGEST_STR_LEN];
  char diff_id[SBD_DIGEST_STR_LEN];
  /* when read through libarchive */
  sbd_error_t archive_err;
  void (*progress)(void *, uint64_t);
  void *progress_opaque;
};

static void *produce(void *arg)
{
  struct sbd_stream *s = arg;
  for (;;) {
    pthread_mutex_lock(&s->lock);
    uint64_t oldest = s->released < s->hashed ? s->released : s->hashed;
    while (!s->cancel && s->produced - oldest >= SLOTS) {
      pthread_cond_wait(&s->freed, &s->lock);
      oldest = s->released < s->hashed ? s->released : s->hashed;
    }
    bool cancel = s->cancel;
    struct slot *slot = &s->slots[s->produced % SLOTS];
    pthread_mutex_unlock(&s->lock);
    if (cancel)
      break;

    sbd_error_t err = NULL;
    ssize_t n = decoder_fill(&s->d, slot->data, SLOT_SIZE, &err);

    pthread_mutex_lock(&s->lock);
    s->in_total = s->d.in_total;
    if (n > 0) {
      slot->len = (size_t)n;
      s->produced++;
    } else {
      if (n < 0)
        s->error = err;
      else if (s->d.blob_hash) {
        uint8_t sha[SBD_SHA256_LEN];
        sbd_hash_final(s->d.blob_hash, sha);
        sbd_digest_format(sha, s->blob_digest);
      }
      s->done = true;
    }
    pthread_cond_broadcast(&s->filled);
    bool finished = s->done;
    pthread_mutex_unlock(&s->lock);
    if (finished)
      break;
  }
  return NULL;
}

/* The diffID: the sha256 of every decoded byte, slot by slot, in order. */
static void *hash_output(void *arg)
{
  struct sbd_stream *s = arg;
  pthread_mutex_lock(&s->lock);
  for (;;) {
    while (!s->cancel && !s->done && s->hashed == s->produced)
      pthread_cond_wait(&s->filled, &s->lock);
    if (s->cancel || s->hashed == s->produced)
      break; /* cancelled, or the end (or an error) and all hashed */
    struct slot *slot = &s->slots[s->hashed % SLOTS];
    pthread_mutex_unlock(&s->lock);
    sbd_hash_update(s->d.diff_hash, slot->data, slot->len);
    pthread_mutex_lock(&s->lock);
    s->hashed++;
    pthread_cond_broadcast(&s->freed);
  }
  if (!s->cancel && s->error == NULL) {
    uint8_t sha[SBD_SHA256_LEN];
    sbd_hash_final(s->d.diff_hash, sha);
    sbd_digest_format(sha, s->diff_id);
  }
  s->diff_done = true;
  pthread_cond_broadcast(&s->freed);
  pthread_mutex_unlock(&s->lock);
  return NULL;
}

int sbd_stream_open(const char *path, const struct sbd_blob_reader *reader,
                    enum sbd_stream_compression c, struct sbd_stream **out, sbd_error_t *err)
{
  int fd = -1;
  if (reader == NULL || reader->read == NULL) {
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      return sbd_error_set(err, SBD_EXIT_FAILURE, errno, "cannot open %s", path);
  }
  struct sbd_stream *s = xcalloc(1, sizeof(*s));
  s->d.fd = fd;
  if (reader && reader->read) {
    s->d.reader = *reader;
    if (reader->rewind)
      reader->rewind(reader->opaque);
  }
  s->d.sniff = c == SBD_STREAM_DETECT;
  if (!(reader && reader->read && reader->verified))
    s->d.blob_hash = sbd_hash_new(SBD_HASH_SHA256);
  s->d.diff_hash = sbd_hash_new(SBD_HASH_SHA256);
  s->d.in = xmalloc(IN_SIZE);
  for (size_t i = 0; i < SLOTS; i++)
    s->slots[i].data = xmalloc(SLOT_SIZE);
  pthread_mutex_init(&s->lock, NULL);
  pthread_cond_init(&s->filled, NULL);
  pthread_cond_init(&s->freed, NULL);
  int e = pthread_create(&s->thread, NULL, produce, s);
  if (e != 0) {
    sbd_stream_free(s);
    return sbd_error_set(err, SBD_EXIT_FAILURE, e, "cannot start a decoding thread");
  }
  s->started = true;
  e = pthread_create(&s->diff_thread, NULL, hash_output, s);
  if (e != 0) {
    sbd_stream_free(s);
    return sbd_error_set(err, SBD_EXIT_FAILURE, e, "cannot start a hashing thread");
  }
  s->diff_started = true;
  *out = s;
  return 0;
}

ssize_t sbd_stream_read(struct sbd_stream *s, const void **data, sbd_error_t *err)
{
  pthread_mutex_lock(&s->lock);
  if (s->released < s->taken) {
    s->released++;
    pthread_cond_signal(&s->freed);
  }
  while (s->taken == s->produced && !s->done)
    pthread_cond_wait(&s->filled, &s->lock);
  s->in_seen = s->in_total;
  ssize_t n;
  if (s->taken < s->produced) {
    struct slot *slot = &s->slots[s->taken % SLOTS];
    *data = slot->data;
    n = (ssize_t)slot->len;
    s->taken++;
  } else if (s->error) {
    n = sbd_error_set(err, s->error->exit_code, 0, "%s", s->error->msg);
  } else {
    n = 0;
  }
  pthread_mutex_unlock(&s->lock);
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
  pthread_mutex_lock(&s->lock);
  while (!s->diff_done)
    pthread_cond_wait(&s->freed, &s->lock);
  pthread_mutex_unlock(&s->lock);
  memcpy(blob_digest, s->blob_digest, SBD_DIGEST_STR_LEN);
  memcpy(diff_id, s->diff_id, SBD_DIGEST_STR_LEN);
  return 0;
}

/* Stops the decoding and hashing threads where they are. */
static void stream_stop(struct sbd_stream *s)
{
  if (s->started || s->diff_started) {
    pthread_mutex_lock(&s->lock);
    s->cancel = true;
    pthread_cond_broadcast(&s->freed);
    pthread_cond_broadcast(&s->filled);
    pthread_mutex_unlock(&s->lock);
  }
  if (s->started)
    pthread_join(s->thread, NULL);
  if (s->diff_started)
    pthread_join(s->diff_thread, NULL);
  s->started = s->diff_started = false;
}

int sbd_stream_check_blob(struct sbd_stream *s, const char *expect, sbd_error_t *err)
{
  stream_stop(s);
  struct decoder *d = &s->d;
  if (d->blob_hash && s->blob_digest[0] == '\0') {
    while (!d->in_eof) {
      d->in_pos = d->in_len;
      cleanup_error sbd_error_t e = NULL;
      if (fill(d, &e) < 0)
        return 0; /* the rest cannot be read: nothing more to say */
    }
    uint8_t sha[SBD_SHA256_LEN];
    sbd_hash_final(d->blob_hash, sha);
    sbd_digest_format(sha, s->blob_digest);
  } else if (d->blob_hash == NULL) {
    /* A verifying reader fails its last read when the digest differs. */
    while (!d->in_eof) {
      d->in_pos = d->in_len;
      cleanup_error sbd_error_t e = NULL;
      if (fill(d, &e) < 0) {
        if (sbd_error_exit_code(e) != SBD_EXIT_IMAGE)
          return 0;
        *err = steal_pointer(&e);
        return -1;
      }
    }
    return 0;
  }
  if (strcmp(s->blob_digest, expect) == 0)
    return 0;
  return sbd_error_set(err, SBD_EXIT_IMAGE, 0, "blob digest mismatch: expected %s, got %s", expect,
                       s->blob_digest);
}

off_t sbd_stream_in_bytes(const struct sbd_stream *s)
{
  return (off_t)s->in_seen;
}

void sbd_stream_free(struct sbd_stream *s)
{
  if (s == NULL)
    return;
  stream_stop(s);
  pthread_mutex_destroy(&s->lock);
  pthread_cond_destroy(&s->filled);
  pthread_cond_destroy(&s->freed);
  for (size_t i = 0; i < SLOTS; i++)
    free(s->slots[i].data);
  decoder_free(&s->d);
  sbd_error_free(&s->error);
  sbd_error_free(&s->archive_err);
  free(s);
}

void sbd_stream_set_progress(struct sbd_stream *s, void (*fn)(void *, uint64_t), void *opaque)
{
  s->progress = fn;
  s->progress_opaque = opaque;
}

/* --- reading the stream as a tar ---------------------------------------------------- */

static la_ssize_t archive_read_cb(struct archive *ar, void *opaque, const void **buf)
{
  struct sbd_stream *s = opaque;
  ssize_t n = sbd_stream_read(s, buf, &s->archive_err);
  if (n < 0) {
    archive_set_error(ar, EIO, "%s", s->archive_err->msg);
    return -1;
  }
  if (s->progress)
    s->progress(s->progress_opaque, s->in_seen);
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

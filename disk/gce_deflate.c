/* Parallel deflate that still makes ONE gzip member, as pigz does.
 *
 * The stream is cut into fixed SBD_GCE_CHUNK pieces; each is deflated on its
 * own (no shared dictionary) and ends with a sync flush, which closes the
 * last block and pads to a byte, so the pieces laid end to end are one valid
 * deflate stream that any gunzip (and Go's reader, which GCE's importer is
 * written in) reads.  Each worker also takes its piece's CRC32; the writer
 * joins them with crc32_combine.
 *
 * The level (SBD_GCE_ARCHIVE_LEVEL) was measured on a disk built from the
 * bench's "big" image (10 GiB, 2.68 GB of it data): level 1 made 1.612 GB
 * (tar/gz 1.66) for ~76 CPU-s of deflate, level 6 made 1.556 GB (1.72) for
 * ~129 CPU-s: 3.5% smaller for 1.7x the work.  pigz -1/-6 on the same tar:
 * 1.611/1.555 GB for 65/112 CPU-s (pigz primes each chunk with the previous
 * 32 KiB, which we do not, to keep chunks independent).
 *
 * A chunk whose bytes are spread evenly over all 256 values (model weights
 * stored as random-looking floats, files that are compressed already) is
 * stored rather than deflated: deflate would spend ~30 s a GiB to save
 * nothing.  The test counts bytes only, so the choice, like everything
 * else here, depends on the content alone.
 *
 * Memory: 2 slots per thread, each an input chunk and its deflate bound
 * (about 4 MiB a thread). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "disk/gce_archive_private.h"

/* Raw deflate (negative window bits), zlib's default memory and strategy. */
#define WINDOW_BITS (-15)
#define MEM_LEVEL 8

struct slot {
  uint8_t *in;
  size_t in_len;
  uint8_t *out;
  size_t out_len;
  uint32_t crc;
  bool done;   /* compressed, waiting to be written */
  bool failed; /* zlib refused: cannot happen with a sound buffer */
};

struct sbd_deflate_pool {
  int level;
  int out_fd;
  const char *out_name;
  size_t out_cap;
  size_t n_slots;
  struct slot *slots;
  unsigned n_threads;
  pthread_t *threads;
  /* Counts, never wrapped: chunk i lives in slots[i % n_slots].  The caller
   * fills chunk `published` (when `filling`), workers take chunks up to it,
   * and the caller writes them out in order, `written` being the next. */
  size_t published;
  size_t taken;
  size_t written;
  bool filling;
  bool stop;
  pthread_mutex_t lock;
  pthread_cond_t work; /* a chunk was published, or stop */
  pthread_cond_t done; /* a chunk was compressed */
  /* the writer's */
  uint32_t crc;
  uint64_t in_total;
  uint64_t out_total;
  bool broken; /* a write failed: the stream is lost */
};

static int deflate_into(z_stream *z, const void *in, size_t len, bool last, uint8_t *out,
                        size_t cap, size_t *out_len)
{
  z->next_in = (Bytef *)in;
  z->avail_in = (uInt)len;
  z->next_out = out;
  z->avail_out = (uInt)cap;
  int ret = deflate(z, last ? Z_FINISH : Z_SYNC_FLUSH);
  /* With room for the whole bound, one call consumes everything. */
  if (z->avail_in != 0 || z->avail_out == 0 || (last ? ret != Z_STREAM_END : ret != Z_OK))
    return -1;
  *out_len = cap - z->avail_out;
  return 0;
}

/* deflateBound, and room for the sync flush's empty stored block and the
 * bits that close the last block. */
static size_t out_bound(z_stream *z, size_t len)
{
  return deflateBound(z, (uLong)len) + 16;
}

/* Random (incompressible) data looks like this; text, code, sparse files and
 * most binaries do not. */
bool sbd_deflate_looks_incompressible(const uint8_t *in, size_t len)
{
  if (len < 64 * 1024)
    return false;
  size_t count[256] = {0};
  for (size_t i = 0; i < len; i++)
    count[in[i]]++;
  size_t even = len / 256, slack = even / 4;
  for (size_t v = 0; v < 256; v++)
    if (count[v] < even - slack || count[v] > even + slack)
      return false;
  return true;
}

static void *worker_run(void *arg)
{
  struct sbd_deflate_pool *p = arg;
  z_stream z = {0}, stored = {0};
  bool ok = deflateInit2(&z, p->level, Z_DEFLATED, WINDOW_BITS, MEM_LEVEL, Z_DEFAULT_STRATEGY) == Z_OK;
  bool ok_stored = deflateInit2(&stored, 0, Z_DEFLATED, WINDOW_BITS, MEM_LEVEL, Z_DEFAULT_STRATEGY) == Z_OK;
  pthread_mutex_lock(&p->lock);
  for (;;) {
    while (p->taken == p->published && !p->stop)
      pthread_cond_wait(&p->work, &p->lock);
    if (p->stop)
      break;
    struct slot *s = &p->slots[p->taken++ % p->n_slots];
    pthread_mutex_unlock(&p->lock);
    /* deflateReset makes each chunk a stream of its own, as a fresh
     * deflateInit would: the bytes do not depend on which worker ran it. */
    z_stream *use = sbd_deflate_looks_incompressible(s->in, s->in_len) ? &stored : &z;
    s->failed = !ok || !ok_stored || deflateReset(use) != Z_OK ||
                deflate_into(use, s->in, s->in_len, false, s->out, p->out_cap, &s->out_len) < 0;
    s->crc = (uint32_t)crc32(0, s->in, (uInt)s->in_len);
    pthread_mutex_lock(&p->lock);
    s->done = true;
    pthread_cond_broadcast(&p->done);
  }
  pthread_mutex_unlock(&p->lock);
  if (ok)
    deflateEnd(&z);
  if (ok_stored)
    deflateEnd(&stored);
  return NULL;
}

struct sbd_deflate_pool *sbd_deflate_pool_new(unsigned threads, int level, int out_fd,
                                              const char *out_name)
{
  struct sbd_deflate_pool *p = xcalloc(1, sizeof(*p));
  p->level = level;
  p->out_fd = out_fd;
  p->out_name = out_name;
  p->n_threads = threads ? threads : 1;
  p->n_slots = 2 * (size_t)p->n_threads;
  z_stream z = {0};
  if (deflateInit2(&z, level, Z_DEFLATED, WINDOW_BITS, MEM_LEVEL, Z_DEFAULT_STRATEGY) != Z_OK) {
    fputs("sbdisk: cannot initialise zlib\n", stderr);
    abort();
  }
  p->out_cap = out_bound(&z, SBD_GCE_CHUNK);
  deflateEnd(&z);
  p->slots = xcalloc(p->n_slots, sizeof(*p->slots));
  for (size_t i = 0; i < p->n_slots; i++) {
    p->slots[i].in = xmalloc(SBD_GCE_CHUNK);
    p->slots[i].out = xmalloc(p->out_cap);
  }
  p->crc = (uint32_t)crc32(0, NULL, 0);
  pthread_mutex_init(&p->lock, NULL);
  pthread_cond_init(&p->work, NULL);
  pthread_cond_init(&p->done, NULL);
  p->threads = xcalloc(p->n_threads, sizeof(*p->threads));
  for (unsigned i = 0; i < p->n_threads; i++)
    if (pthread_create(&p->threads[i], NULL, worker_run, p) != 0) {
      fputs("sbdisk: cannot start a compression thread\n", stderr);
      abort();
    }
  return p;
}

/* Waits for the oldest chunk in flight and writes it out. */
static int pool_write_oldest(struct sbd_deflate_pool *p, sbd_error_t *err)
{
  struct slot *s = &p->slots[p->written % p->n_slots];
  pthread_mutex_lock(&p->lock);
  while (!s->done)
    pthread_cond_wait(&p->done, &p->lock);
  pthread_mutex_unlock(&p->lock);
  s->done = false;
  p->written++;
  if (s->failed) {
    p->broken = true;
    return sbd_error_set(err, SBD_EXIT_FAILURE, 0, "zlib could not compress a chunk of %s", p->out_name);
  }
  if (sbd_write_all(p->out_fd, s->out, s->out_len) < 0) {
    p->broken = true;
    return sbd_error_set(err, SBD_EXIT_FAILURE, errno, "cannot write %s", p->out_name);
  }
  p->crc = (uint32_t)crc32_combine(p->crc, s->crc, (z_off_t)s->in_len);
  p->in_total += s->in_len;
  p->out_total += s->out_len;
  return 0;
}

/* The chunk to fill, once the writer is done with its last use. */
static int pool_current(struct sbd_deflate_pool *p, struct slot **out, sbd_error_t *err)
{
  if (!p->filling) {
    while (p->published - p->written >= p->n_slots)
      if (pool_write_oldest(p, err) < 0)
        return -1;
    p->filling = true;
    p->slots[p->published % p->n_slots].in_len = 0;
  }
  *out = &p->slots[p->published % p->n_slots];
  return 0;
}

static void pool_publish(struct sbd_deflate_pool *p)
{
  pthread_mutex_lock(&p->lock);
  p->published++;
  pthread_cond_signal(&p->work);
  pthread_mutex_unlock(&p->lock);
  p->filling = false;
}

int sbd_deflate_pool_write(struct sbd_deflate_pool *p, const void *data, size_t len, sbd_error_t *err)
{
  const uint8_t *d = data;
  if (p->broken)
    return sbd_error_set(err, SBD_EXIT_FAILURE, 0, "an earlier write to %s failed", p->out_name);
  while (len > 0) {
    struct slot *s;
    if (pool_current(p, &s, err) < 0)
      return -1;
    size_t n = SBD_GCE_CHUNK - s->in_len < len ? SBD_GCE_CHUNK - s->in_len : len;
    memcpy(s->in + s->in_len, d, n);
    s->in_len += n;
    d += n;
    len -= n;
    if (s->in_len == SBD_GCE_CHUNK)
      pool_publish(p);
  }
  return 0;
}

int sbd_deflate_pool_finish(struct sbd_deflate_pool *p, uint32_t *crc, uint64_t *in_len,
                            uint64_t *out_len, sbd_error_t *err)
{
  if (p->broken)
    return sbd_error_set(err, SBD_EXIT_FAILURE, 0, "an earlier write to %s failed", p->out_name);
  if (p->filling && p->slots[p->published % p->n_slots].in_len > 0)
    pool_publish(p);
  p->filling = false;
  while (p->written < p->published)
    if (pool_write_oldest(p, err) < 0)
      return -1;
  *crc = p->crc;
  *in_len = p->in_total;
  *out_len = p->out_total;
  return 0;
}

void sbd_deflate_pool_free(struct sbd_deflate_pool *p)
{
  if (p == NULL)
    return;
  pthread_mutex_lock(&p->lock);
  p->stop = true;
  pthread_cond_broadcast(&p->work);
  pthread_mutex_unlock(&p->lock);
  for (unsigned i = 0; i < p->n_threads; i++)
    pthread_join(p->threads[i], NULL);
  for (size_t i = 0; i < p->n_slots; i++) {
    free(p->slots[i].in);
    free(p->slots[i].out);
  }
  free(p->slots);
  free(p->threads);
  pthread_mutex_destroy(&p->lock);
  pthread_cond_destroy(&p->work);
  pthread_cond_destroy(&p->done);
  free(p);
}

int sbd_deflate_piece(int level, const void *in, size_t len, bool last, struct sbd_buf *out,
                      sbd_error_t *err)
{
  if (len > UINT32_MAX)
    return sbd_error_set(err, SBD_EXIT_FAILURE, 0, "a %zu-byte piece is too big for one zlib call", len);
  z_stream z = {0};
  if (deflateInit2(&z, level, Z_DEFLATED, WINDOW_BITS, MEM_LEVEL, Z_DEFAULT_STRATEGY) != Z_OK)
    return sbd_error_set(err, SBD_EXIT_FAILURE, 0, "cannot initialise zlib at level %d", level);
  size_t cap = out_bound(&z, len);
  size_t n = 0;
  out->len = 0;
  if (out->cap < cap) {
    out->data = xrealloc(out->data, cap);
    out->cap = cap;
  }
  int ret = deflate_into(&z, in, len, last, (uint8_t *)out->data, cap, &n);
  deflateEnd(&z);
  if (ret < 0)
    return sbd_error_set(err, SBD_EXIT_FAILURE, 0, "zlib could not compress %zu bytes", len);
  out->len = n;
  return 0;
}

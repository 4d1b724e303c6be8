#include "hasher.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/digest.h"
#include "lib/util.h"

/* The queue: CHUNKS buffers of CHUNK_SIZE bytes, filled in turn by the
 * writer and hashed in turn by the thread (16 MiB in all, whatever the
 * layer).  4 MiB chunks rather than 1 MiB: a file that starts and ends in
 * one chunk is hashed in a vector lane, and the larger the chunk the more
 * of the 64 KiB - 1 MiB files (385 MB of the big image's userland) do so,
 * sixteen at a time, instead of one by one. */
#define CHUNK_SIZE (4u << 20)
#define CHUNKS 4
/* A chunk also goes when it ends this many files: a layer of a million empty
 * files would otherwise put every one of their marks in one chunk (40 bytes
 * a file of memory, in marks and jobs). */
#define CHUNK_MARKS 16384

/* The file that ends at pos gets its digest written to out. */
struct mark {
  size_t pos;
  uint8_t *out;
};

/* Digests to copy once this chunk's are written, in the order asked. */
struct copy {
  const uint8_t *from;
  uint8_t *to;
};

struct chunk {
  uint8_t *data;
  size_t len;
  struct mark *marks;
  size_t n_marks, cap_marks;
  struct copy *copies;
  size_t n_copies, cap_copies;
};

struct sbd_hasher {
  struct chunk chunks[CHUNKS];
  /* Counts, never wrapped: chunk i lives in chunks[i % CHUNKS].  The writer
   * owns chunk `published` while published - hashed < CHUNKS. */
  size_t published;
  size_t hashed;
  bool filling; /* the writer has waited for chunk `published` to be free */
  bool stop;
  pthread_mutex_t lock;
  pthread_cond_t ready; /* a chunk was published, or stop */
  pthread_cond_t space; /* a chunk was hashed */
  pthread_t thread;
  struct sbd_hash *md5; /* the thread's: files that span chunks */
  struct sbd_md5_job *jobs; /* the thread's: files inside one chunk */
  size_t cap_jobs;
};

/* Every digest a copy may read is written by now: its file ended in this
 * chunk or an earlier one, or it is an earlier copy's. */
static void chunk_copy(struct chunk *c)
{
  for (size_t i = 0; i < c->n_copies; i++)
    memcpy(c->copies[i].to, c->copies[i].from, SBD_MD5_LEN);
  c->n_copies = 0;
}

/* The bytes before the chunk's first mark continue the file the last chunk
 * left open, and those after its last mark open one the next chunk goes on
 * with: those go through the streaming context.  Every file that starts and
 * ends inside the chunk (nearly all small files) is hashed with the others at
 * once, in the lanes of the vector unit. */
static void chunk_hash(struct sbd_hasher *h, struct chunk *c)
{
  if (c->n_marks == 0) {
    sbd_hash_update(h->md5, c->data, c->len);
    c->len = 0;
    chunk_copy(c);
    return;
  }
  sbd_hash_update(h->md5, c->data, c->marks[0].pos);
  sbd_hash_final(h->md5, c->marks[0].out);
  size_t n = c->n_marks - 1;
  if (n > h->cap_jobs) {
    h->cap_jobs = n;
    h->jobs = xrealloc(h->jobs, n * sizeof(*h->jobs));
  }
  for (size_t i = 0; i < n; i++)
    h->jobs[i] = (struct sbd_md5_job){.data = c->data + c->marks[i].pos,
                                      .len = c->marks[i + 1].pos - c->marks[i].pos,
                                      .out = c->marks[i + 1].out};
  sbd_md5_many(h->jobs, n, SBD_MD5_AUTO);
  size_t last = c->marks[n].pos;
  sbd_hash_update(h->md5, c->data + last, c->len - last);
  c->len = 0;
  c->n_marks = 0;
  chunk_copy(c);
}

static void *hasher_run(void *arg)
{
  struct sbd_hasher *h = arg;
  pthread_mutex_lock(&h->lock);
  for (;;) {
    while (h->hashed == h->published && !h->stop)
      pthread_cond_wait(&h->ready, &h->lock);
    if (h->hashed == h->published)
      break; /* stopped, and nothing left */
    struct chunk *c = &h->chunks[h->hashed % CHUNKS];
    pthread_mutex_unlock(&h->lock);
    chunk_hash(h, c);
    pthread_mutex_lock(&h->lock);
    h->hashed++;
    pthread_cond_broadcast(&h->space);
  }
  pthread_mutex_unlock(&h->lock);
  return NULL;
}

struct sbd_hasher *sbd_hasher_new(void)
{
  struct sbd_hasher *h = xcalloc(1, sizeof(*h));
  for (size_t i = 0; i < CHUNKS; i++)
    h->chunks[i].data = xmalloc(CHUNK_SIZE);
  h->md5 = sbd_hash_new(SBD_HASH_MD5);
  pthread_mutex_init(&h->lock, NULL);
  pthread_cond_init(&h->ready, NULL);
  pthread_cond_init(&h->space, NULL);
  if (pthread_create(&h->thread, NULL, hasher_run, h) != 0) {
    fputs("sbdisk: cannot start the md5 thread\n", stderr);
    abort();
  }
  return h;
}

/* The chunk the writer fills, once the thread is done with its last use. */
static struct chunk *hasher_current(struct sbd_hasher *h)
{
  if (!h->filling) {
    pthread_mutex_lock(&h->lock);
    while (h->published - h->hashed >= CHUNKS)
      pthread_cond_wait(&h->space, &h->lock);
    pthread_mutex_unlock(&h->lock);
    h->filling = true;
  }
  return &h->chunks[h->published % CHUNKS];
}

static void hasher_publish(struct sbd_hasher *h)
{
  pthread_mutex_lock(&h->lock);
  h->published++;
  pthread_cond_signal(&h->ready);
  pthread_mutex_unlock(&h->lock);
  h->filling = false;
}

void sbd_hasher_update(struct sbd_hasher *h, const void *data, size_t len)
{
  const uint8_t *p = data;
  while (len > 0) {
    struct chunk *c = hasher_current(h);
    size_t n = CHUNK_SIZE - c->len < len ? CHUNK_SIZE - c->len : len;
    memcpy(c->data + c->len, p, n);
    c->len += n;
    p += n;
    len -= n;
    if (c->len == CHUNK_SIZE)
      hasher_publish(h);
  }
}

void sbd_hasher_final(struct sbd_hasher *h, uint8_t *out)
{
  struct chunk *c = hasher_current(h);
  if (c->n_marks == c->cap_marks) {
    c->cap_marks = c->cap_marks ? 2 * c->cap_marks : 256;
    c->marks = xrealloc(c->marks, c->cap_marks * sizeof(*c->marks));
  }
  c->marks[c->n_marks++] = (struct mark){.pos = c->len, .out = out};
  if (c->n_marks + c->n_copies >= CHUNK_MARKS)
    hasher_publish(h);
}

void sbd_hasher_copy(struct sbd_hasher *h, const uint8_t *from, uint8_t *to)
{
  struct chunk *c = hasher_current(h);
  if (c->n_copies == c->cap_copies) {
    c->cap_copies = c->cap_copies ? 2 * c->cap_copies : 64;
    c->copies = xrealloc(c->copies, c->cap_copies * sizeof(*c->copies));
  }
  c->copies[c->n_copies++] = (struct copy){.from = from, .to = to};
  if (c->n_marks + c->n_copies >= CHUNK_MARKS)
    hasher_publish(h);
}

void sbd_hasher_wait(struct sbd_hasher *h)
{
  if (h->filling) {
    struct chunk *c = &h->chunks[h->published % CHUNKS];
    if (c->len > 0 || c->n_marks > 0 || c->n_copies > 0)
      hasher_publish(h);
  }
  pthread_mutex_lock(&h->lock);
  while (h->hashed != h->published)
    pthread_cond_wait(&h->space, &h->lock);
  pthread_mutex_unlock(&h->lock);
}

void sbd_hasher_free(struct sbd_hasher *h)
{
  if (h == NULL)
    return;
  sbd_hasher_wait(h);
  pthread_mutex_lock(&h->lock);
  h->stop = true;
  pthread_cond_signal(&h->ready);
  pthread_mutex_unlock(&h->lock);
  pthread_join(h->thread, NULL);
  for (size_t i = 0; i < CHUNKS; i++) {
    free(h->chunks[i].data);
    free(h->chunks[i].marks);
    free(h->chunks[i].copies);
  }
  sbd_hash_free(h->md5);
  free(h->jobs);
  pthread_mutex_destroy(&h->lock);
  pthread_cond_destroy(&h->ready);
  pthread_cond_destroy(&h->space);
  free(h);
}

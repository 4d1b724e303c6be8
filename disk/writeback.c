#include "writeback.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "lib/util.h"

#define MAX_BUFS 8

struct job {
  size_t len;
  off_t off;
};

struct sbd_writeback {
  int fd;
  size_t nbufs;
  unsigned char *bufs[MAX_BUFS];
  struct job jobs[MAX_BUFS];
  /* Counts, never wrapped: buffer i is bufs[i % nbufs].  The filler owns
   * buffer `submitted` once it was handed out; the thread writes
   * [written, submitted). */
  size_t submitted, written;
  int error; /* errno of the first failed write */
  bool stop;
  pthread_mutex_t lock;
  pthread_cond_t queued; /* a job was submitted, or stop */
  pthread_cond_t done;   /* a job was written */
  pthread_t thread;
};

/* One job: O_DIRECT first; a filesystem that refuses it for this file gets
 * ordinary writes from then on (the page cache keeps them coherent with the
 * library's own reads). */
static int write_job(struct sbd_writeback *w, const unsigned char *buf, const struct job *j)
{
  if (sbd_pwrite_all(w->fd, buf, j->len, j->off) == 0)
    return 0;
  if (errno != EINVAL)
    return errno;
  int flags = fcntl(w->fd, F_GETFL);
  if (flags < 0 || !(flags & O_DIRECT) || fcntl(w->fd, F_SETFL, flags & ~O_DIRECT) < 0)
    return EINVAL;
  return sbd_pwrite_all(w->fd, buf, j->len, j->off) == 0 ? 0 : errno;
}

static void *writeback_run(void *arg)
{
  struct sbd_writeback *w = arg;
  pthread_mutex_lock(&w->lock);
  for (;;) {
    while (w->written == w->submitted && !w->stop)
      pthread_cond_wait(&w->queued, &w->lock);
    if (w->written == w->submitted)
      break;
    size_t i = w->written % w->nbufs;
    struct job j = w->jobs[i];
    bool skip = w->error != 0; /* after a failure the rest is moot */
    pthread_mutex_unlock(&w->lock);
    int e = skip ? 0 : write_job(w, w->bufs[i], &j);
    pthread_mutex_lock(&w->lock);
    if (e && !w->error)
      w->error = e;
    w->written++;
    pthread_cond_broadcast(&w->done);
  }
  pthread_mutex_unlock(&w->lock);
  return NULL;
}

struct sbd_writeback *sbd_writeback_new(int fd, size_t buf_size, size_t nbufs)
{
  struct sbd_writeback *w = xcalloc(1, sizeof(*w));
  w->fd = fd;
  w->nbufs = nbufs < 2 ? 2 : nbufs > MAX_BUFS ? MAX_BUFS : nbufs;
  for (size_t i = 0; i < w->nbufs; i++)
    if (posix_memalign((void **)&w->bufs[i], 4096, buf_size) != 0) {
      fputs("sbdisk: out of memory\n", stderr);
      abort();
    }
  pthread_mutex_init(&w->lock, NULL);
  pthread_cond_init(&w->queued, NULL);
  pthread_cond_init(&w->done, NULL);
  if (pthread_create(&w->thread, NULL, writeback_run, w) != 0) {
    fputs("sbdisk: cannot start the writing thread\n", stderr);
    abort();
  }
  return w;
}

void *sbd_writeback_buffer(struct sbd_writeback *w)
{
  pthread_mutex_lock(&w->lock);
  while (w->submitted - w->written >= w->nbufs)
    pthread_cond_wait(&w->done, &w->lock);
  pthread_mutex_unlock(&w->lock);
  return w->bufs[w->submitted % w->nbufs];
}

int sbd_writeback_submit(struct sbd_writeback *w, size_t len, off_t off)
{
  pthread_mutex_lock(&w->lock);
  int e = w->error;
  if (!e) {
    w->jobs[w->submitted % w->nbufs] = (struct job){.len = len, .off = off};
    w->submitted++;
    pthread_cond_signal(&w->queued);
  }
  pthread_mutex_unlock(&w->lock);
  if (e) {
    errno = e;
    return -1;
  }
  return 0;
}

int sbd_writeback_drain(struct sbd_writeback *w)
{
  pthread_mutex_lock(&w->lock);
  while (w->written != w->submitted)
    pthread_cond_wait(&w->done, &w->lock);
  int e = w->error;
  pthread_mutex_unlock(&w->lock);
  if (e) {
    errno = e;
    return -1;
  }
  return 0;
}

void sbd_writeback_free(struct sbd_writeback *w)
{
  if (w == NULL)
    return;
  pthread_mutex_lock(&w->lock);
  w->stop = true;
  pthread_cond_signal(&w->queued);
  pthread_mutex_unlock(&w->lock);
  pthread_join(w->thread, NULL);
  for (size_t i = 0; i < w->nbufs; i++)
    free(w->bufs[i]);
  pthread_mutex_destroy(&w->lock);
  pthread_cond_destroy(&w->queued);
  pthread_cond_destroy(&w->done);
  free(w);
}

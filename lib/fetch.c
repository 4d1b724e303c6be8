#include "fetch.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache.h"
#include "util.h"

enum item_state { ITEM_PENDING, ITEM_RUNNING, ITEM_DONE, ITEM_FAILED };

struct item {
  const struct sbd_image *image;
  size_t layer;
  enum item_state state;
  bool cached;
  char *path;          /* the finished file (cache entry or layout blob) */
  char *tmp_path;      /* while downloading */
  uint64_t available;  /* bytes in tmp_path so far */
  sbd_error_t error;
  /* the reader's side */
  int fd;
  uint64_t pos;
};

struct sbd_fetcher {
  const struct sbd_source *src;
  struct sbd_registry_options ropts;
  struct item *items;
  size_t n;
  size_t next; /* the next item a worker takes */
  bool cancel;
  pthread_mutex_t lock;
  pthread_cond_t changed;
  pthread_t *workers;
  size_t n_workers;
};

/* Bytes go to the cache file in pieces of SINK_BYTES: libcurl hands them over
 * 16 KiB at a time, and each piece written is a write, a hash update and a
 * wake-up of the reader following the file. */
#define SINK_BYTES (256u << 10)

struct sink {
  struct sbd_fetcher *f;
  struct item *it;
  struct sbd_cache_writer *w;
  unsigned char *buf;
  size_t len;
};

static int sink_flush(struct sink *s, sbd_error_t *err)
{
  if (s->len > 0 && sbd_cache_writer_write(s->w, s->buf, s->len, err) < 0)
    return -1;
  s->len = 0;
  pthread_mutex_lock(&s->f->lock);
  bool cancel = s->f->cancel;
  s->it->available = (uint64_t)sbd_cache_writer_size(s->w);
  pthread_cond_broadcast(&s->f->changed);
  pthread_mutex_unlock(&s->f->lock);
  if (cancel)
    return sbd_error_set(err, SBD_EXIT_INTERRUPTED, 0, "download cancelled");
  return 0;
}

static int sink_write(void *opaque, const void *data, size_t len, sbd_error_t *err)
{
  struct sink *s = opaque;
  while (len > 0) {
    size_t take = SINK_BYTES - s->len < len ? SINK_BYTES - s->len : len;
    memcpy(s->buf + s->len, data, take);
    s->len += take;
    data = (const unsigned char *)data + take;
    len -= take;
    if (s->len == SINK_BYTES && sink_flush(s, err) < 0)
      return -1;
  }
  return 0;
}

/* Downloads one blob into the cache; the reader follows the temporary file. */
static int download(struct sbd_fetcher *f, struct sbd_registry *reg, struct item *it,
                    sbd_error_t *err)
{
  const struct sbd_layer_desc *l = &it->image->layers[it->layer];
  cleanup_free unsigned char *buf = xmalloc(SINK_BYTES);
  struct sink s = {.f = f, .it = it, .buf = buf};
  if (sbd_cache_writer_begin(f->src->cache, l->digest, &s.w, err) < 0)
    return -1;
  pthread_mutex_lock(&f->lock);
  it->tmp_path = xstrdup(sbd_cache_writer_path(s.w));
  pthread_cond_broadcast(&f->changed);
  pthread_mutex_unlock(&f->lock);
  int r = sbd_registry_get_blob(reg, &it->image->ref, l->digest, sink_write, &s, err);
  if (r == 0)
    r = sink_flush(&s, err);
  /* The temporary name goes away (rename or unlink) below: a reader that has
   * not opened it yet waits for the finished file instead. */
  pthread_mutex_lock(&f->lock);
  free(steal_pointer(&it->tmp_path));
  pthread_mutex_unlock(&f->lock);
  if (r < 0) {
    sbd_cache_writer_abort(s.w);
    return -1;
  }
  if (l->size >= 0 && sbd_cache_writer_size(s.w) != l->size) {
    int64_t got = sbd_cache_writer_size(s.w);
    sbd_cache_writer_abort(s.w);
    return sbd_error_set(err, SBD_EXIT_IMAGE, 0, "blob %s is %lld bytes, the manifest says %lld",
                         l->digest, (long long)got, (long long)l->size);
  }
  return sbd_cache_writer_commit(s.w, err);
}

/* Publishes where item's finished blob is: readers look at it under the lock. */
static void item_set_path(struct sbd_fetcher *f, struct item *it, char *path, bool cached)
{
  pthread_mutex_lock(&f->lock);
  free(it->path);
  it->path = path;
  it->cached = cached;
  pthread_mutex_unlock(&f->lock);
}

/* Finds the blob in the layout or the cache, else downloads it. */
static int fetch_one(struct sbd_fetcher *f, struct sbd_registry **reg, struct item *it,
                     sbd_error_t *err)
{
  const struct sbd_image *img = it->image;
  const struct sbd_layer_desc *l = &img->layers[it->layer];
  if (sbd_ref_is_oci_layout(&img->ref)) {
    bool cached;
    char *path = NULL;
    if (sbd_image_fetch_layer(f->src, img, it->layer, NULL, NULL, &path, &cached, err) < 0)
      return -1;
    item_set_path(f, it, path, true);
    return 0;
  }
  if (sbd_cache_contains(f->src->cache, l->digest, l->size)) {
    bool ok = false;
    if (sbd_cache_verify(f->src->cache, l->digest, &ok, err) < 0)
      return -1;
    if (ok) {
      item_set_path(f, it, sbd_cache_path(f->src->cache, l->digest), true);
      return 0;
    }
  }
  if (*reg == NULL && sbd_registry_new(&f->ropts, reg, err) < 0)
    return -1;
  if (download(f, *reg, it, err) < 0)
    return -1;
  item_set_path(f, it, sbd_cache_path(f->src->cache, l->digest), false);
  return 0;
}

/* containerd fetches a non-distributable layer from its URLs; sbdisk only
 * ever talks to the image's registry (or reads its layout), so a missing
 * foreign blob gets a message that says why. */
static void explain_foreign(const struct sbd_layer_desc *l, sbd_error_t *err)
{
  if (!l->foreign || sbd_error_exit_code(*err) == SBD_EXIT_INTERRUPTED)
    return;
  /* Not there (a registry's 404, a layout's missing file) is the image's
   * doing, not a registry failure to retry: the class is a bad image. */
  if (*err && (*err)->errnum == ENOENT)
    (*err)->exit_code = SBD_EXIT_IMAGE;
  if (l->url)
    sbd_error_prefix(err, "a non-distributable (foreign) layer, which sbdisk takes only from the "
                          "registry or layout, not from its URLs (%s): ", l->url);
  else
    sbd_error_prefix(err, "a non-distributable (foreign) layer the registry or layout must hold: ");
}

static void *work(void *arg)
{
  struct sbd_fetcher *f = arg;
  struct sbd_registry *reg = NULL;
  for (;;) {
    pthread_mutex_lock(&f->lock);
    if (f->cancel || f->next == f->n) {
      pthread_mutex_unlock(&f->lock);
      break;
    }
    struct item *it = &f->items[f->next++];
    it->state = ITEM_RUNNING;
    pthread_mutex_unlock(&f->lock);

    sbd_error_t err = NULL;
    int r = fetch_one(f, &reg, it, &err);
    /* no prefix: whoever reads the blob names the image and layer */
    if (r < 0)
      explain_foreign(&it->image->layers[it->layer], &err);

    pthread_mutex_lock(&f->lock);
    it->state = r < 0 ? ITEM_FAILED : ITEM_DONE;
    it->error = err;
    pthread_cond_broadcast(&f->changed);
    pthread_mutex_unlock(&f->lock);
  }
  sbd_registry_free(reg);
  return NULL;
}

static bool fetcher_cancelled(void *opaque)
{
  struct sbd_fetcher *f = opaque;
  pthread_mutex_lock(&f->lock);
  bool c = f->cancel;
  pthread_mutex_unlock(&f->lock);
  return c;
}

int sbd_fetcher_start(const struct sbd_source *src, const struct sbd_registry_options *ropts,
                      const struct sbd_fetch_item *items, size_t n, unsigned jobs,
                      struct sbd_fetcher **out, sbd_error_t *err)
{
  struct sbd_fetcher *f = xcalloc(1, sizeof(*f));
  f->src = src;
  f->ropts = *ropts;
  /* stopping the fetcher also stops a transfer, or a pause between tries */
  f->ropts.cancelled = fetcher_cancelled;
  f->ropts.cancel_opaque = f;
  f->n = n;
  f->items = xcalloc(n ? n : 1, sizeof(*f->items));
  for (size_t i = 0; i < n; i++) {
    f->items[i].image = items[i].image;
    f->items[i].layer = items[i].layer;
    f->items[i].fd = -1;
  }
  pthread_mutex_init(&f->lock, NULL);
  pthread_cond_init(&f->changed, NULL);
  size_t want = jobs ? jobs : 1;
  if (want > n)
    want = n;
  f->workers = xcalloc(want ? want : 1, sizeof(*f->workers));
  for (size_t i = 0; i < want; i++) {
    int e = pthread_create(&f->workers[i], NULL, work, f);
    if (e != 0) {
      sbd_fetcher_free(f);
      return sbd_error_set(err, SBD_EXIT_FAILURE, e, "cannot start a download thread");
    }
    f->n_workers++;
  }
  *out = f;
  return 0;
}

ssize_t sbd_fetcher_read(struct sbd_fetcher *f, size_t i, void *buf, size_t len, sbd_error_t *err)
{
  struct item *it = &f->items[i];
  pthread_mutex_lock(&f->lock);
  for (;;) {
    if (it->state == ITEM_FAILED) {
      int r = sbd_error_set(err, it->error->exit_code, 0, "%s", it->error->msg);
      pthread_mutex_unlock(&f->lock);
      return r;
    }
    if (it->fd < 0) {
      const char *path = it->state == ITEM_DONE ? it->path : it->tmp_path;
      if (path != NULL) {
        it->fd = open(path, O_RDONLY | O_CLOEXEC);
        if (it->fd < 0) {
          int e = errno;
          pthread_mutex_unlock(&f->lock);
          return sbd_error_set(err, SBD_EXIT_FAILURE, e, "cannot open %s", path);
        }
        continue;
      }
    } else if (it->state == ITEM_DONE || it->pos < it->available) {
      /* A finished file is read to its end; a growing one up to what has
       * arrived.  The open file survives the rename into the cache. */
      size_t want = len;
      if (it->state != ITEM_DONE && it->available - it->pos < want)
        want = (size_t)(it->available - it->pos);
      int fd = it->fd;
      uint64_t pos = it->pos;
      pthread_mutex_unlock(&f->lock);
      ssize_t got;
      do
        got = pread(fd, buf, want, (off_t)pos);
      while (got < 0 && errno == EINTR);
      if (got < 0)
        return sbd_error_set(err, SBD_EXIT_FAILURE, errno, "reading a downloaded blob");
      pthread_mutex_lock(&f->lock);
      it->pos += (uint64_t)got;
      pthread_mutex_unlock(&f->lock);
      return got;
    }
    pthread_cond_wait(&f->changed, &f->lock);
  }
}

void sbd_fetcher_rewind(struct sbd_fetcher *f, size_t i)
{
  pthread_mutex_lock(&f->lock);
  f->items[i].pos = 0;
  pthread_mutex_unlock(&f->lock);
}

bool sbd_fetcher_verifies(const struct sbd_fetcher *f, size_t i)
{
  return !sbd_ref_is_oci_layout(&f->items[i].image->ref);
}

bool sbd_fetcher_was_cached(struct sbd_fetcher *f, size_t i)
{
  pthread_mutex_lock(&f->lock);
  bool c = f->items[i].cached;
  pthread_mutex_unlock(&f->lock);
  return c;
}

void sbd_fetcher_status(struct sbd_fetcher *f, size_t i, struct sbd_fetch_status *st)
{
  static const enum sbd_fetch_phase phases[] = {
      [ITEM_PENDING] = SBD_FETCH_WAITING,
      [ITEM_RUNNING] = SBD_FETCH_RUNNING,
      [ITEM_DONE] = SBD_FETCH_DONE,
      [ITEM_FAILED] = SBD_FETCH_FAILED,
  };
  pthread_mutex_lock(&f->lock);
  const struct item *it = &f->items[i];
  st->phase = phases[it->state];
  st->cached = it->state == ITEM_DONE && it->cached;
  st->downloaded = it->state == ITEM_DONE ? (uint64_t)it->image->layers[it->layer].size : it->available;
  pthread_mutex_unlock(&f->lock);
}

void sbd_fetcher_free(struct sbd_fetcher *f)
{
  if (f == NULL)
    return;
  pthread_mutex_lock(&f->lock);
  f->cancel = true;
  pthread_cond_broadcast(&f->changed);
  pthread_mutex_unlock(&f->lock);
  for (size_t i = 0; i < f->n_workers; i++)
    pthread_join(f->workers[i], NULL);
  for (size_t i = 0; i < f->n; i++) {
    struct item *it = &f->items[i];
    if (it->fd >= 0)
      close(it->fd);
    free(it->path);
    free(it->tmp_path);
    sbd_error_free(&it->error);
  }
  pthread_mutex_destroy(&f->lock);
  pthread_cond_destroy(&f->changed);
  free(f->workers);
  free(f->items);
  free(f);
}

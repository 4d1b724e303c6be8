#include "tmpfiles.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <sys/stat.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

struct sbd_tmpfiles {
  pthread_mutex_t lock;
  char **paths;
  size_t n, cap;
  bool closed; /* after remove_all: no new file may appear */
};

struct sbd_tmpfiles *sbd_tmpfiles_new(void)
{
  struct sbd_tmpfiles *t = xcalloc(1, sizeof(*t));
  pthread_mutex_init(&t->lock, NULL);
  return t;
}

void sbd_tmpfiles_free(struct sbd_tmpfiles *t)
{
  if (t == NULL)
    return;
  for (size_t i = 0; i < t->n; i++)
    free(t->paths[i]);
  free(t->paths);
  pthread_mutex_destroy(&t->lock);
  free(t);
}

int sbd_tmpfiles_create(struct sbd_tmpfiles *t, char *template, int suffixlen, int flags)
{
  if (t == NULL)
    return mkostemps(template, suffixlen, flags);
  pthread_mutex_lock(&t->lock);
  if (t->closed) {
    pthread_mutex_unlock(&t->lock);
    errno = ECANCELED;
    return -1;
  }
  int fd = mkostemps(template, suffixlen, flags);
  if (fd >= 0) {
    if (t->n == t->cap) {
      t->cap = t->cap ? 2 * t->cap : 8;
      t->paths = xrealloc(t->paths, t->cap * sizeof(*t->paths));
    }
    t->paths[t->n++] = xstrdup(template);
  }
  int e = errno;
  pthread_mutex_unlock(&t->lock);
  errno = e;
  return fd;
}

/* The umask, read without changing it: umask(2) can only be read by setting
 * it, which would race with files other threads create meanwhile. */
static mode_t current_umask(void)
{
  FILE *f = fopen("/proc/self/status", "re");
  char line[128];
  unsigned mask;
  while (f && fgets(line, sizeof(line), f))
    if (sscanf(line, "Umask: %o", &mask) == 1) {
      fclose(f);
      return (mode_t)mask;
    }
  if (f)
    fclose(f);
  mode_t m = umask(0); /* no /proc: the old way */
  umask(m);
  return m;
}

int sbd_tmpfiles_create_beside(struct sbd_tmpfiles *t, const char *path, char **tmp_path)
{
  cleanup_free char *copy1 = xstrdup(path);
  cleanup_free char *copy2 = xstrdup(path);
  char *tmp = xasprintf("%s/.%s.XXXXXX.tmp", dirname(copy1), basename(copy2));
  int fd = sbd_tmpfiles_create(t, tmp, 4, O_CLOEXEC);
  if (fd >= 0 && fchmod(fd, 0666 & ~current_umask()) < 0) {
    int e = errno;
    close(fd);
    unlink(tmp);
    sbd_tmpfiles_forget(t, tmp);
    fd = -1;
    errno = e;
  }
  if (fd < 0) {
    int e = errno;
    free(tmp);
    errno = e;
    return -1;
  }
  *tmp_path = tmp;
  return fd;
}

void sbd_tmpfiles_forget(struct sbd_tmpfiles *t, const char *path)
{
  if (t == NULL || path == NULL)
    return;
  pthread_mutex_lock(&t->lock);
  for (size_t i = 0; i < t->n; i++)
    if (strcmp(t->paths[i], path) == 0) {
      free(t->paths[i]);
      t->paths[i] = t->paths[--t->n];
      break;
    }
  pthread_mutex_unlock(&t->lock);
}

size_t sbd_tmpfiles_remove_all(struct sbd_tmpfiles *t)
{
  if (t == NULL)
    return 0;
  pthread_mutex_lock(&t->lock);
  size_t removed = 0;
  for (size_t i = 0; i < t->n; i++) {
    removed += unlink(t->paths[i]) == 0;
    free(t->paths[i]);
  }
  t->n = 0;
  t->closed = true;
  pthread_mutex_unlock(&t->lock);
  return removed;
}

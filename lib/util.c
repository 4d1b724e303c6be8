#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void __attribute__((noreturn)) oom(void)
{
  fputs("sbdisk: out of memory\n", stderr);
  abort();
}

void *xmalloc(size_t size)
{
  void *p = malloc(size ? size : 1);
  if (p == NULL)
    oom();
  return p;
}

void *xcalloc(size_t n, size_t size)
{
  void *p = calloc(n ? n : 1, size ? size : 1);
  if (p == NULL)
    oom();
  return p;
}

void *xrealloc(void *p, size_t size)
{
  p = realloc(p, size ? size : 1);
  if (p == NULL)
    oom();
  return p;
}

char *xstrdup(const char *s)
{
  char *p = strdup(s);
  if (p == NULL)
    oom();
  return p;
}

char *xstrndup(const char *s, size_t n)
{
  char *p = strndup(s, n);
  if (p == NULL)
    oom();
  return p;
}

char *xvasprintf(const char *fmt, va_list ap)
{
  char *s;
  if (vasprintf(&s, fmt, ap) < 0)
    oom();
  return s;
}

char *xasprintf(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  char *s = xvasprintf(fmt, ap);
  va_end(ap);
  return s;
}

void sbd_cleanup_free(void *p)
{
  free(*(void **)p);
}

void sbd_cleanup_close(int *fd)
{
  if (*fd >= 0) {
    int saved = errno;
    close(*fd);
    errno = saved;
  }
}

void sbd_cleanup_fclose(FILE **f)
{
  if (*f != NULL)
    fclose(*f);
}

void sbd_buf_append(struct sbd_buf *b, const void *data, size_t len)
{
  if (b->len + len + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + len + 1)
      cap *= 2;
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
  }
  memcpy(b->data + b->len, data, len);
  b->len += len;
  b->data[b->len] = '\0';
}

void sbd_buf_appendf(struct sbd_buf *b, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  char *s = xvasprintf(fmt, ap);
  va_end(ap);
  sbd_buf_append(b, s, strlen(s));
  free(s);
}

char *sbd_buf_cstr(struct sbd_buf *b)
{
  if (b->data == NULL)
    sbd_buf_append(b, "", 0);
  return b->data;
}

void sbd_buf_free(struct sbd_buf *b)
{
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

int sbd_read_file(const char *path, size_t max, char **out, size_t *out_len)
{
  cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  struct sbd_buf b = {0};
  char chunk[65536];
  for (;;) {
    ssize_t n = read(fd, chunk, sizeof(chunk));
    if (n < 0) {
      if (errno == EINTR)
        continue;
      sbd_buf_free(&b);
      return -1;
    }
    if (n == 0)
      break;
    if (b.len + (size_t)n > max) {
      sbd_buf_free(&b);
      errno = EFBIG;
      return -1;
    }
    sbd_buf_append(&b, chunk, (size_t)n);
  }
  *out = sbd_buf_cstr(&b);
  if (out_len)
    *out_len = b.len;
  return 0;
}

int sbd_write_all(int fd, const void *buf, size_t len)
{
  const char *p = buf;
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

int sbd_pwrite_all(int fd, const void *buf, size_t len, off_t off)
{
  const char *p = buf;
  while (len > 0) {
    ssize_t n = pwrite(fd, p, len, off);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    p += n;
    off += n;
    len -= (size_t)n;
  }
  return 0;
}

char *sbd_path_absolute(const char *path)
{
  cleanup_free char *d = xstrdup(path);
  cleanup_free char *b = xstrdup(path);
  const char *base = basename(b);
  char *dir = realpath(dirname(d), NULL);
  if (dir == NULL)
    return xstrdup(path);
  char *abs = strcmp(base, "/") == 0 ? xstrdup(dir) : xasprintf("%s%s%s", dir, strcmp(dir, "/") ? "/" : "", base);
  free(dir);
  return abs;
}

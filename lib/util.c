#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdbool.h>
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

/* Insertion sort: each bucket holds a handful of elements. */
static void sort_small(unsigned char *base, size_t n, size_t size,
                       int (*cmp)(const void *, const void *), unsigned char *hold)
{
  for (size_t i = 1; i < n; i++) {
    size_t j = i;
    if (cmp(base + (j - 1) * size, base + j * size) <= 0)
      continue;
    memcpy(hold, base + i * size, size);
    while (j > 0 && cmp(base + (j - 1) * size, hold) > 0) {
      memcpy(base + j * size, base + (j - 1) * size, size);
      j--;
    }
    memcpy(base + j * size, hold, size);
  }
}

/* Eight bytes at a time: the elements sorted here are digests and hashes
 * of 16 to 24 bytes, and a byte loop made the swaps most of the sort. */
static void swap_bytes(unsigned char *a, unsigned char *b, size_t size)
{
  for (; size >= 8; a += 8, b += 8, size -= 8) {
    uint64_t x, y;
    memcpy(&x, a, 8);
    memcpy(&y, b, 8);
    memcpy(a, &y, 8);
    memcpy(b, &x, 8);
  }
  while (size-- > 0) {
    unsigned char t = *a;
    *a++ = *b;
    *b++ = t;
  }
}

/* Heapsort: in place, O(n log n) whatever the input (glibc's qsort would
 * allocate a copy of the bucket). */
static void sort_heap(unsigned char *base, size_t n, size_t size,
                      int (*cmp)(const void *, const void *))
{
  for (size_t end = n, i = n / 2; end > 1;) {
    size_t root;
    if (i > 0) {
      root = --i; /* building the heap */
    } else {
      swap_bytes(base, base + --end * size, size); /* the largest goes last */
      root = 0;
    }
    for (;;) {
      size_t child = 2 * root + 1;
      if (child >= end)
        break;
      if (child + 1 < end && cmp(base + child * size, base + (child + 1) * size) < 0)
        child++;
      if (cmp(base + root * size, base + child * size) >= 0)
        break;
      swap_bytes(base + root * size, base + child * size, size);
      root = child;
    }
  }
}

static bool is_sorted(const unsigned char *base, size_t n, size_t size,
                      int (*cmp)(const void *, const void *))
{
  for (size_t i = 1; i < n; i++)
    if (cmp(base + (i - 1) * size, base + i * size) > 0)
      return false;
  return true;
}

/* A handful by insertion; more (keys made to collide must not make this
 * quadratic) by heap, unless they are in order already, as many equal
 * elements are (the md5 of every empty file). */
static void sort_bucket(unsigned char *b, size_t count, size_t size,
                        int (*cmp)(const void *, const void *), unsigned char *hold)
{
  if (count <= 32)
    sort_small(b, count, size, cmp, hold);
  else if (!is_sorted(b, count, size, cmp))
    sort_heap(b, count, size, cmp);
}

/* Moves the elements, in place, into 256 buckets by one byte of their key
 * (American flag sort); bounds[k] .. bounds[k + 1] is bucket k after. */
static void spread_byte(unsigned char *a, size_t n, size_t size, uint16_t (*key16)(const void *),
                        unsigned shift, size_t bounds[257], unsigned char *hold)
{
#define DIGIT(p) ((key16(p) >> shift) & 0xffu)
  memset(bounds, 0, 257 * sizeof(*bounds));
  for (size_t i = 0; i < n; i++)
    bounds[DIGIT(a + i * size) + 1]++;
  for (size_t k = 0; k < 256; k++)
    bounds[k + 1] += bounds[k];
  size_t next[256];
  memcpy(next, bounds, sizeof(next));
  for (size_t k = 0; k < 256; k++) {
    while (next[k] < bounds[k + 1]) {
      unsigned char *slot = a + next[k] * size;
      if (DIGIT(slot) == k) {
        next[k]++;
        continue;
      }
      /* Carry the element to its bucket's next free place, take the one
       * that was there, and so on until one belongs here. */
      memcpy(hold, slot, size);
      do
        swap_bytes(hold, a + next[DIGIT(hold)]++ * size, size);
      while (DIGIT(hold) != k);
      memcpy(slot, hold, size);
      next[k]++;
    }
  }
#undef DIGIT
}

void sbd_sort_spread(void *base, size_t n, size_t size, uint16_t (*key16)(const void *),
                     int (*cmp)(const void *, const void *))
{
  unsigned char *a = base;
  cleanup_free unsigned char *hold = xmalloc(size);
  if (n < 4096) {
    sort_bucket(a, n, size, cmp, hold);
    return;
  }
  /* By the key's high byte, then each bucket by its low byte: 256 places
   * written to at a time stay in the cache, where the 65,536 of one pass
   * on all 16 bits missed it at nearly every move (the md5s of 200,000
   * files took ~25 ms).  No copy of the array, whose size grows with the
   * image (a digest per file). */
  size_t high[257];
  spread_byte(a, n, size, key16, 8, high, hold);
  for (size_t k = 0; k < 256; k++) {
    unsigned char *b = a + high[k] * size;
    size_t count = high[k + 1] - high[k];
    if (count <= 32) {
      sort_bucket(b, count, size, cmp, hold);
      continue;
    }
    size_t low[257];
    spread_byte(b, count, size, key16, 0, low, hold);
    for (size_t j = 0; j < 256; j++)
      sort_bucket(b + low[j] * size, low[j + 1] - low[j], size, cmp, hold);
  }
}

/* Small helpers every module uses: allocation that cannot fail (it aborts with
 * a message: there is nothing sensible to do on OOM in a build tool), string
 * formatting, and __attribute__((cleanup)) helpers in the style of crun. */
#ifndef SBD_UTIL_H
#define SBD_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *xvasprintf(const char *fmt, va_list ap);

void sbd_cleanup_free(void *p);
void sbd_cleanup_close(int *fd);
void sbd_cleanup_fclose(FILE **f);

#define cleanup_free __attribute__((cleanup(sbd_cleanup_free)))
#define cleanup_close __attribute__((cleanup(sbd_cleanup_close)))
#define cleanup_fclose __attribute__((cleanup(sbd_cleanup_fclose)))

/* Returns p and sets the variable it came from to NULL/-1, so that a cleanup
 * attribute does not release what is being handed over. */
#define steal_pointer(pp) ({ __typeof__(*(pp)) _p = *(pp); *(pp) = NULL; _p; })
#define steal_fd(pfd) ({ int _fd = *(pfd); *(pfd) = -1; _fd; })

/* A growable byte buffer. */
struct sbd_buf {
  char *data;
  size_t len;
  size_t cap;
};
void sbd_buf_append(struct sbd_buf *b, const void *data, size_t len);
void sbd_buf_appendf(struct sbd_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* NUL-terminates (not counted in len) and returns data. */
char *sbd_buf_cstr(struct sbd_buf *b);
void sbd_buf_free(struct sbd_buf *b);
#define cleanup_buf __attribute__((cleanup(sbd_buf_free)))

/* Sorts like qsort, faster for keys spread evenly (hashes, digests): the
 * elements are spread by the high byte of the 16 bits key16 gives, then
 * each bucket by the low byte, then each of those by cmp.  In place: it
 * allocates nothing that grows with n.  cmp must order by key16 first. */
void sbd_sort_spread(void *base, size_t n, size_t size, uint16_t (*key16)(const void *),
                     int (*cmp)(const void *, const void *));

/* Whole-file helpers: read up to max bytes (fails with EFBIG beyond). */
int sbd_read_file(const char *path, size_t max, char **out, size_t *out_len);
/* write(2)/pwrite(2) loops that retry on EINTR and short writes; -1 + errno. */
int sbd_write_all(int fd, const void *buf, size_t len);
int sbd_pwrite_all(int fd, const void *buf, size_t len, off_t off);

/* The absolute path of a file that may not exist yet: its directory resolved
 * (symlinks too), then its name; the path unchanged when the directory
 * cannot be resolved. */
char *sbd_path_absolute(const char *path);

#endif

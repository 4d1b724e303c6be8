/* The blob cache: DIR/blobs/sha256/<hex>, the layout of an OCI image layout's
 * blobs directory.  Entries appear only by rename(2) of a verified temporary
 * file in the same directory, so a reader never sees a partial blob and two
 * builds sharing a cache cannot corrupt each other: if both download the same
 * blob, the second rename replaces identical content. */
#include "cache.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "digest.h"
#include "util.h"

#define BLOBS_SUBDIR "blobs/sha256"

struct sbd_cache {
  char *dir;
  char *blobs; /* dir/blobs/sha256 */
  struct sbd_tmpfiles *tmpfiles;
};

struct sbd_cache_writer {
  struct sbd_tmpfiles *tmpfiles;
  char digest[SBD_DIGEST_STR_LEN];
  char *blobs;
  char *tmp_path;
  char *final_path;
  int fd;
  struct sbd_hash *hash;
  int64_t size;
};

char *sbd_cache_default_dir(void)
{
  /* The XDG base directory spec says to ignore relative paths. */
  const char *xdg = getenv("XDG_CACHE_HOME");
  if (xdg && xdg[0] == '/')
    return xasprintf("%s/sbdisk", xdg);
  const char *home = getenv("HOME");
  if (home && home[0] != '\0')
    return xasprintf("%s/.cache/sbdisk", home);
  return NULL;
}

/* mkdir -p: creates each missing component with mode 0755. */
static int cache_mkdir_p(const char *path, sbd_error_t *err)
{
  cleanup_free char *p = xstrdup(path);
  for (char *s = p + 1;; s++) {
    if (*s != '/' && *s != '\0')
      continue;
    char saved = *s;
    *s = '\0';
    if (mkdir(p, 0755) < 0 && errno != EEXIST)
      return sbd_error_set(err, SBD_EXIT_FAILURE, errno, "cannot create cache directory %s", p);
    *s = saved;
    if (saved == '\0')
      break;
  }
  struct stat st;
  if (stat(path, &st) < 0)
    return sbd_error_set(err, SBD_EXIT_FAILURE, errno, "cannot use %s as a cache directory", path);
  if (!S_ISDIR(st.st_mode))
    return sbd_error_set(err, SBD_EXIT_FAILURE, ENOTDIR, "cannot use %s as a cache directory",
                         path);
  return 0;
}

int sbd_cache_open(const char *dir, struct sbd_cache **out, sbd_error_t *err)
{
  cleanup_free char *d = dir ? xstrdup(dir) : sbd_cache_default_dir();
  if (d == NULL)
    return sbd_error_set(err, SBD_EXIT_USAGE, 0,
                         "no cache directory: set HOME or XDG_CACHE_HOME, or pass --cache-dir");
  cleanup_free char *blobs = xasprintf("%s/" BLOBS_SUBDIR, d);
  if (cache_mkdir_p(blobs, err) < 0)
    return -1;
  struct sbd_cache *c = xcalloc(1, sizeof(*c));
  c->dir = steal_pointer(&d);
  c->blobs = steal_pointer(&blobs);
  *out = c;
  return 0;
}

void sbd_cache_free(struct sbd_cache *c)
{
  if (c == NULL)
    return;
  free(c->dir);
  free(c->blobs);
  free(c);
}

void sbd_cache_set_tmpfiles(struct sbd_cache *c, struct sbd_tmpfiles *t)
{
  c->tmpfiles = t;
}

const char *sbd_cache_dir(const struct sbd_cache *c)
{
  return c->dir;
}

/* Only valid digests name files: the hex part can never climb out of blobs/. */
char *sbd_cache_path(const struct sbd_cache *c, const char *digest)
{
  if (!sbd_digest_valid(digest))
    return xasprintf("%s/invalid-digest", c->blobs);
  return xasprintf("%s/%s", c->blobs, digest + 7);
}

bool sbd_cache_contains(const struct sbd_cache *c, const char *digest, int64_t size)
{
  if (!sbd_digest_valid(digest))
    return false;
  cleanup_free char *path = sbd_cache_path(c, digest);
  struct stat st;
  if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
    return false;
  return size < 0 || st.st_size == size;
}

void sbd_cache_remove(const struct sbd_cache *c, const char *digest)
{
  if (!sbd_digest_valid(digest))
    return;
  cleanup_free char *path = sbd_cache_path(c, digest);
  unlink(path);
}

int sbd_cache_verify(const struct sbd_cache *c, const char *digest, bool *ok, sbd_error_t *err)
{
  *ok = false;
  if (!sbd_digest_valid(digest))
    return sbd_error_set(err, SBD_EXIT_IMAGE, 0, "\"%s\" is not a sha256 digest", digest);
  cleanup_free char *path = sbd_cache_path(c, digest);
  if (access(path, F_OK) < 0 && errno == ENOENT)
    return 0;
  char actual[SBD_DIGEST_STR_LEN];
  if (sbd_digest_file(path, actual, err) < 0)
    return sbd_error_prefix(err, "checking the cached blob: ");
  *ok = strcmp(actual, digest) == 0;
  if (!*ok)
    unlink(path); /* corrupt: the next fetch downloads it again */
  return 0;
}

/* --- writer -------------------------------------------------------------------- */

static void cache_writer_free(struct sbd_cache_writer *w)
{
  if (w->fd >= 0)
    close(w->fd);
  if (w->tmp_path) {
    unlink(w->tmp_path);
    sbd_tmpfiles_forget(w->tmpfiles, w->tmp_path);
  }
  sbd_hash_free(w->hash);
  free(w->blobs);
  free(w->tmp_path);
  free(w->final_path);
  free(w);
}

int sbd_cache_writer_begin(const struct sbd_cache *c, const char *digest,
                           struct sbd_cache_writer **out, sbd_error_t *err)
{
  if (!sbd_digest_valid(digest))
    return sbd_error_set(err, SBD_EXIT_IMAGE, 0, "\"%s\" is not a sha256 digest", digest);
  /* In the target's directory, so that rename(2) is atomic; hidden and with
   * a .tmp suffix so nothing mistakes it for a blob. */
  cleanup_free char *tmp = xasprintf("%s/.%s.XXXXXX.tmp", c->blobs, digest + 7);
  int fd = sbd_tmpfiles_create(c->tmpfiles, tmp, 4, O_CLOEXEC);
  if (fd < 0)
    return sbd_error_set(err, SBD_EXIT_FAILURE, errno, "cannot create a file in cache %s",
                         c->blobs);
  /* mkstemp makes 0600; a shared cache's entries are world-readable. */
  fchmod(fd, 0644);
  struct sbd_cache_writer *w = xcalloc(1, sizeof(*w));
  w->tmpfiles = c->tmpfiles;
  memcpy(w->digest, digest, SBD_DIGEST_STR_LEN);
  w->blobs = xstrdup(c->blobs);
  w->tmp_path = steal_pointer(&tmp);
  w->final_path = sbd_cache_path(c, digest);
  w->fd = fd;
  w->hash = sbd_hash_new(SBD_HASH_SHA256);
  *out = w;
  return 0;
}

int sbd_cache_writer_write(struct sbd_cache_writer *w, const void *data, size_t len,
                           sbd_error_t *err)
{
  if (sbd_write_all(w->fd, data, len) < 0)
    return sbd_error_set(err, SBD_EXIT_FAILURE, errno, "cannot write %s to the cache", w->digest);
  sbd_hash_update(w->hash, data, len);
  w->size += (int64_t)len;
  return 0;
}

int64_t sbd_cache_writer_size(const struct sbd_cache_writer *w)
{
  return w->size;
}

const char *sbd_cache_writer_path(const struct sbd_cache_writer *w)
{
  return w->tmp_path;
}

static int cache_writer_finish(struct sbd_cache_writer *w, sbd_error_t *err)
{
  uint8_t sha[SBD_SHA256_LEN];
  char actual[SBD_DIGEST_STR_LEN];
  sbd_hash_final(w->hash, sha);
  sbd_digest_format(sha, actual);
  if (strcmp(actual, w->digest) != 0)
    return sbd_error_set(err, SBD_EXIT_IMAGE, 0,
                         "blob %s does not match its digest: the %lld bytes received hash to %s",
                         w->digest, (long long)w->size, actual);
  /* No fsync: every use of an entry hashes it again (sbd_cache_verify), so
   * an entry a crash leaves torn costs a download, never a wrong disk.  An
   * fsync here made the device write each blob while the disk was being
   * built, and the image's own writes queued behind it: 0.9 s of the big
   * bench image's 8 s went waiting for them. */
  int fd = w->fd;
  w->fd = -1;
  if (close(fd) < 0)
    return sbd_error_set(err, SBD_EXIT_FAILURE, errno, "cannot write %s to the cache", w->digest);
  /* An existing entry means another build committed the same verified bytes. */
  if (rename(w->tmp_path, w->final_path) < 0)
    return sbd_error_set(err, SBD_EXIT_FAILURE, errno, "cannot store %s in the cache",
                         w->final_path);
  sbd_tmpfiles_forget(w->tmpfiles, w->tmp_path);
  free(w->tmp_path);
  w->tmp_path = NULL; /* committed: nothing left to unlink */
  return 0;
}

int sbd_cache_writer_commit(struct sbd_cache_writer *w, sbd_error_t *err)
{
  int ret = cache_writer_finish(w, err);
  cache_writer_free(w);
  return ret;
}

void sbd_cache_writer_abort(struct sbd_cache_writer *w)
{
  if (w)
    cache_writer_free(w);
}

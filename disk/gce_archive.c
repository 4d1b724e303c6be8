/* One pass over a finished raw disk: its sha256 and the GCE import archive.
 *
 * The tar's header holds the whole sparse map, and the map comes from the
 * content, so it is known only once the last byte has been read.  To read the
 * raw file once all the same, the member's data (the non-zero blocks, in
 * order) is deflated as it is read into a spill file beside the archive
 * (unlinked at once); at the end the archive is laid out as gzip header,
 * deflated tar header, the spill, deflated tar trailer, gzip trailer.  The
 * spill holds compressed bytes only, and its blocks are released as they are
 * copied, so the extra room on disk is about one archive at most. */
#include "disk/gce_archive.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "disk/gce_archive_private.h"
#include "lib/util.h"

/* Reads of the raw file: large, and a whole number of hole blocks. */
#define READ_SIZE (4u << 20)
/* Zeros fed to the hash for holes, this much at a time. */
#define ZEROS_SIZE (1u << 20)
/* The spill is copied, and its blocks released, this much at a time. */
#define COPY_SIZE (8u << 20)

struct scan {
  int fd;
  const char *path;
  uint64_t size;
  struct sbd_hash *sha; /* NULL: no digest */
  uint8_t *buf;
  const uint8_t *zeros;
  struct sbd_sparse_map map;
  struct sbd_deflate_pool *pool; /* NULL: only the digest */
};

static bool block_is_zero(const uint8_t *p, size_t n)
{
  return p[0] == 0 && memcmp(p, p + 1, n - 1) == 0;
}

static void hash_zeros(struct scan *s, uint64_t n)
{
  while (s->sha && n > 0) {
    size_t k = n < ZEROS_SIZE ? (size_t)n : ZEROS_SIZE;
    sbd_hash_update(s->sha, s->zeros, k);
    n -= k;
  }
}

static int read_full(struct scan *s, uint8_t *buf, size_t len, uint64_t off, sbd_error_t *err)
{
  while (len > 0) {
    ssize_t n = pread(s->fd, buf, len, (off_t)off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return sbd_error_set(err, SBD_EXIT_FAILURE, errno, "cannot read the raw disk image %s at offset %llu",
                           s->path, (unsigned long long)off);
    if (n == 0)
      return sbd_error_set(err, SBD_EXIT_FAILURE, 0, "the raw disk image %s shrank while being read",
                           s->path);
    buf += n;
    len -= (size_t)n;
    off += (uint64_t)n;
  }
  return 0;
}

/* The blocks of buf (read from off) that are not all zeros go to the map and
 * to the compressor, runs of them in one call. */
static int archive_blocks(struct scan *s, const uint8_t *buf, size_t len, uint64_t off,
                          sbd_error_t *err)
{
  size_t run = 0, run_len = 0;
  for (size_t at = 0; at < len; at += SBD_GCE_HOLE_BLOCK) {
    size_t n = len - at < SBD_GCE_HOLE_BLOCK ? len - at : SBD_GCE_HOLE_BLOCK;
    if (!block_is_zero(buf + at, n)) {
      if (run_len == 0)
        run = at;
      run_len += n;
      continue;
    }
    if (run_len > 0) {
      sbd_sparse_map_add(&s->map, off + run, run_len);
      if (sbd_deflate_pool_write(s->pool, buf + run, run_len, err) < 0)
        return -1;
      run_len = 0;
    }
  }
  if (run_len > 0) {
    sbd_sparse_map_add(&s->map, off + run, run_len);
    return sbd_deflate_pool_write(s->pool, buf + run, run_len, err);
  }
  return 0;
}

static int scan_data(struct scan *s, uint64_t start, uint64_t end, sbd_error_t *err)
{
  for (uint64_t off = start; off < end;) {
    size_t n = end - off < READ_SIZE ? (size_t)(end - off) : READ_SIZE;
    if (read_full(s, s->buf, n, off, err) < 0)
      return -1;
    if (s->sha)
      sbd_hash_update(s->sha, s->buf, n);
    if (s->pool && archive_blocks(s, s->buf, n, off, err) < 0)
      return -1;
    off += n;
  }
  return 0;
}

static uint64_t align_down(uint64_t v)
{
  return v / SBD_GCE_HOLE_BLOCK * SBD_GCE_HOLE_BLOCK;
}

/* The filesystem's holes are only spared reading: they count as zeros, the
 * map is decided block by block on what is read, and the extents are widened
 * to whole hole blocks so that the blocks are the same whatever the
 * filesystem's own block size. */
static int scan_file(struct scan *s, sbd_error_t *err)
{
  uint64_t pos = 0;
  while (pos < s->size) {
    off_t d = lseek(s->fd, (off_t)pos, SEEK_DATA);
    uint64_t data = d < 0 ? (errno == ENXIO ? s->size : pos) : (uint64_t)d;
    data = data > s->size ? s->size : align_down(data);
    if (data < pos)
      data = pos;
    hash_zeros(s, data - pos);
    pos = data;
    if (pos >= s->size)
      break;
    off_t h = lseek(s->fd, (off_t)pos, SEEK_HOLE);
    uint64_t hole = h < 0 ? s->size : align_down((uint64_t)h + SBD_GCE_HOLE_BLOCK - 1);
    if (hole > s->size)
      hole = s->size;
    if (hole <= pos) /* never stall on an odd answer */
      hole = pos + SBD_GCE_HOLE_BLOCK < s->size ? pos + SBD_GCE_HOLE_BLOCK : s->size;
    if (scan_data(s, pos, hole, err) < 0)
      return -1;
    pos = hole;
  }
  sbd_sparse_map_end(&s->map, s->size);
  return 0;
}

/* The archive as written: bytes counted and hashed on the way out. */
struct out {
  int fd;
  const char *path;
  struct sbd_hash *sha;
  uint64_t len;
};

static int out_write(struct out *o, const void *data, size_t len, sbd_error_t *err)
{
  if (sbd_write_all(o->fd, data, len) < 0)
    return sbd_error_set(err, SBD_EXIT_FAILURE, errno, "cannot write the GCE archive %s", o->path);
  sbd_hash_update(o->sha, data, len);
  o->len += len;
  return 0;
}

static void put_le32(uint8_t *p, uint32_t v)
{
  for (int i = 0; i < 4; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}

/* The spill's deflate bytes into the archive; its blocks are given back as
 * they are copied (where the filesystem can punch holes). */
static int copy_spill(struct out *o, int spill, const char *path, uint64_t len, sbd_error_t *err)
{
  cleanup_free uint8_t *buf = xmalloc(COPY_SIZE);
  for (uint64_t off = 0; off < len;) {
    size_t n = len - off < COPY_SIZE ? (size_t)(len - off) : COPY_SIZE;
    for (size_t got = 0; got < n;) {
      ssize_t r = pread(spill, buf + got, n - got, (off_t)(off + got));
      if (r < 0 && errno == EINTR)
        continue;
      if (r <= 0)
        return sbd_error_set(err, SBD_EXIT_FAILURE, r < 0 ? errno : EIO,
                             "cannot read back the compressed data spilled beside %s", path);
      got += (size_t)r;
    }
    if (out_write(o, buf, n, err) < 0)
      return -1;
    (void)fallocate(spill, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)n);
    off += n;
  }
  return 0;
}

struct archive {
  const char *path;
  struct sbd_tmpfiles *tmpfiles;
  char *tmp_path;
  int tmp_fd;
  int spill_fd;
  int level;
  uint64_t mtime;
};

/* gzip header (no name, mtime 0: the tar carries the time), deflated tar
 * header, the spilled data, deflated trailer, gzip trailer (RFC 1952). */
static int archive_assemble(struct archive *a, struct scan *s, struct sbd_gce_archive_result *res,
                            sbd_error_t *err)
{
  uint32_t data_crc;
  uint64_t data_len, spill_len;
  if (sbd_deflate_pool_finish(s->pool, &data_crc, &data_len, &spill_len, err) < 0)
    return -1;
  if (data_len != s->map.data_bytes)
    return sbd_error_set(err, SBD_EXIT_FAILURE, 0, "internal error: %llu bytes compressed for %s, %llu mapped",
                         (unsigned long long)data_len, a->path, (unsigned long long)s->map.data_bytes);

  size_t header_len = sbd_tar_header_len(&s->map);
  cleanup_free uint8_t *header = xmalloc(header_len);
  sbd_tar_header_write(&s->map, a->mtime, header);
  uint64_t trailer_len = sbd_tar_trailer_len(header_len, data_len);
  cleanup_free uint8_t *trailer = xcalloc(1, trailer_len);
  cleanup_buf struct sbd_buf header_z = {0}, trailer_z = {0};
  if (sbd_deflate_piece(a->level, header, header_len, false, &header_z, err) < 0 ||
      sbd_deflate_piece(a->level, trailer, trailer_len, true, &trailer_z, err) < 0)
    return -1;

  uint32_t crc = (uint32_t)crc32(0, header, (uInt)header_len);
  crc = (uint32_t)crc32_combine(crc, data_crc, (z_off_t)data_len);
  crc = (uint32_t)crc32_combine(crc, (uint32_t)crc32(0, trailer, (uInt)trailer_len), (z_off_t)trailer_len);
  uint64_t tar_len = header_len + data_len + trailer_len;

  /* XFL 4: compressed with the fastest algorithm; OS 3: Unix */
  uint8_t gz_header[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, a->level == 1 ? 4 : a->level == 9 ? 2 : 0, 3};
  uint8_t gz_trailer[8];
  put_le32(gz_trailer, crc);
  put_le32(gz_trailer + 4, (uint32_t)tar_len);

  cleanup_hash struct sbd_hash *sha = sbd_hash_new(SBD_HASH_SHA256);
  struct out o = {.fd = a->tmp_fd, .path = a->path, .sha = sha};
  if (out_write(&o, gz_header, sizeof(gz_header), err) < 0 ||
      out_write(&o, header_z.data, header_z.len, err) < 0 ||
      copy_spill(&o, a->spill_fd, a->path, spill_len, err) < 0 ||
      out_write(&o, trailer_z.data, trailer_z.len, err) < 0 ||
      out_write(&o, gz_trailer, sizeof(gz_trailer), err) < 0)
    return -1;
  if (fsync(a->tmp_fd) < 0)
    return sbd_error_set(err, SBD_EXIT_FAILURE, errno, "cannot sync the GCE archive %s", a->tmp_path);

  uint8_t digest[SBD_SHA256_LEN];
  sbd_hash_final(sha, digest);
  sbd_digest_format(digest, res->archive_digest);
  res->archive_size = o.len;
  res->tar_size = tar_len;
  res->data_bytes = data_len;
  return 0;
}

/* The temporary archive (named, to be renamed into place) and the spill
 * (unlinked at once), both in the archive's directory. */
static int archive_open(struct archive *a, sbd_error_t *err)
{
  cleanup_free char *copy1 = xstrdup(a->path);
  cleanup_free char *copy2 = xstrdup(a->path);
  const char *dir = dirname(copy1);
  const char *base = basename(copy2);
  a->tmp_fd = sbd_tmpfiles_create_beside(a->tmpfiles, a->path, &a->tmp_path);
  if (a->tmp_fd < 0)
    return sbd_error_set(err, SBD_EXIT_FAILURE, errno, "cannot create the GCE archive %s", a->path);
  cleanup_free char *spill = xasprintf("%s/.%s.XXXXXX.spill", dir, base);
  a->spill_fd = sbd_tmpfiles_create(a->tmpfiles, spill, 6, O_CLOEXEC);
  if (a->spill_fd < 0)
    return sbd_error_set(err, SBD_EXIT_FAILURE, errno, "cannot create a spill file beside %s", a->path);
  unlink(spill);
  sbd_tmpfiles_forget(a->tmpfiles, spill);
  return 0;
}

static int archive_commit(struct archive *a, sbd_error_t *err)
{
  if (rename(a->tmp_path, a->path) < 0)
    return sbd_error_set(err, SBD_EXIT_FAILURE, errno, "cannot rename %s to %s", a->tmp_path, a->path);
  sbd_tmpfiles_forget(a->tmpfiles, a->tmp_path);
  free(a->tmp_path);
  a->tmp_path = NULL; /* nothing to remove any more */
  cleanup_free char *copy = xstrdup(a->path);
  cleanup_close int dir = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0 || fsync(dir) < 0)
    return sbd_error_set(err, SBD_EXIT_FAILURE, errno, "cannot sync the directory of %s", a->path);
  return 0;
}

static void archive_release(struct archive *a)
{
  if (a->tmp_fd >= 0)
    close(a->tmp_fd);
  if (a->spill_fd >= 0)
    close(a->spill_fd);
  if (a->tmp_path) {
    unlink(a->tmp_path);
    sbd_tmpfiles_forget(a->tmpfiles, a->tmp_path);
    free(a->tmp_path);
  }
}

static unsigned online_cpus(void)
{
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n < 1 ? 1 : n > 256 ? 256 : (unsigned)n;
}

static int gce_archive_run(const struct sbd_gce_archive_params *p, struct archive *a, struct scan *s,
                           struct sbd_gce_archive_result *res, sbd_error_t *err)
{
  struct stat st;
  s->fd = open(p->raw_path, O_RDONLY | O_CLOEXEC);
  if (s->fd < 0 || fstat(s->fd, &st) < 0)
    return sbd_error_set(err, SBD_EXIT_FAILURE, errno, "cannot open the raw disk image %s", p->raw_path);
  if (!S_ISREG(st.st_mode))
    return sbd_error_set(err, SBD_EXIT_USAGE, 0, "the raw disk image %s is not a regular file", p->raw_path);
  s->size = (uint64_t)st.st_size;
  (void)posix_fadvise(s->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  if (a) {
    if (archive_open(a, err) < 0)
      return -1;
    s->pool = sbd_deflate_pool_new(p->threads ? p->threads : online_cpus(), a->level, a->spill_fd,
                                   a->path);
  }
  if (scan_file(s, err) < 0)
    return -1;
  if (s->sha) {
    uint8_t digest[SBD_SHA256_LEN];
    sbd_hash_final(s->sha, digest);
    sbd_digest_format(digest, res->raw_digest);
  }
  res->raw_size = s->size;
  if (a && (archive_assemble(a, s, res, err) < 0 || archive_commit(a, err) < 0))
    return -1;
  return 0;
}

int sbd_gce_archive_write(const struct sbd_gce_archive_params *p, struct sbd_gce_archive_result *res,
                          sbd_error_t *err)
{
  memset(res, 0, sizeof(*res));
  int level = p->level ? p->level : SBD_GCE_ARCHIVE_LEVEL;
  if (p->mtime < 0)
    return sbd_error_set(err, SBD_EXIT_USAGE, 0, "the GCE archive's mtime must not be before 1970");
  if (level < 1 || level > 9)
    return sbd_error_set(err, SBD_EXIT_USAGE, 0, "the GCE archive's zlib level must be 1 to 9, not %d", level);

  cleanup_free uint8_t *buf = xmalloc(READ_SIZE);
  cleanup_free uint8_t *zeros = xcalloc(1, ZEROS_SIZE);
  cleanup_hash struct sbd_hash *sha = p->no_raw_digest ? NULL : sbd_hash_new(SBD_HASH_SHA256);
  struct scan s = {.fd = -1, .path = p->raw_path, .sha = sha, .buf = buf, .zeros = zeros};
  struct archive a = {.path = p->archive_path, .tmpfiles = p->tmpfiles, .tmp_fd = -1, .spill_fd = -1, .level = level,
                      .mtime = (uint64_t)p->mtime};

  int ret = gce_archive_run(p, p->archive_path ? &a : NULL, &s, res, err);
  /* The workers stop before the spill they write to is closed. */
  sbd_deflate_pool_free(s.pool);
  archive_release(&a);
  sbd_sparse_map_free(&s.map);
  if (s.fd >= 0)
    close(s.fd);
  return ret;
}

/* One snapshot's tree, read back: what `find -type f | wc -l` would count
 * and, for verify, each regular file's md5 from its bytes on the disk. */
#include <et/com_err.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "inspect_private.h"
#include "lib/digest.h"
#include "lib/util.h"

/* Large reads: libext2fs maps the extents once per call, not once per block. */
#define READ_CHUNK (1u << 20)
/* Deeper than any real image; a directory loop on a damaged disk ends here. */
#define MAX_DEPTH 4096

/* Small files are read into one buffer and hashed together, in the lanes of
 * the vector unit (sbd_md5_many); larger ones stream through one md5. */
#define SMALL_FILE (64u << 10)
#define BATCH_BYTES (4u << 20)
#define BATCH_FILES 4096

struct walk {
  ext2_filsys fs;
  bool md5;
  struct sbd_inspect_snapshot *s;
  struct sbd_md5_list list;
  struct sbd_hash *hash;
  char *buf;
  unsigned char *batch; /* small files' bytes, one after another */
  size_t batch_used;
  struct sbd_md5_job *jobs;
  uint8_t (*digests)[SBD_MD5_LEN];
  size_t n_jobs;
};

static void batch_hash(struct walk *w)
{
  sbd_md5_many(w->jobs, w->n_jobs, SBD_MD5_AUTO);
  for (size_t i = 0; i < w->n_jobs; i++)
    sbd_md5_list_add(&w->list, w->digests[i]);
  w->n_jobs = 0;
  w->batch_used = 0;
}

void sbd_inspect_entries_free(struct sbd_inspect_entries *e)
{
  for (size_t i = 0; i < e->n; i++)
    free(e->v[i].name);
  free(e->v);
  memset(e, 0, sizeof(*e));
}

int sbd_inspect_error(sbd_error_t *err, errcode_t code, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  cleanup_free char *what = xvasprintf(fmt, ap);
  va_end(ap);
  return sbd_error_set(err, SBD_EXIT_IMAGE, 0, "%s: %s", what, error_message(code));
}

static int collect_entry(struct ext2_dir_entry *d, int offset, int blocksize, char *buf, void *priv)
{
  (void)offset;
  (void)blocksize;
  (void)buf;
  struct sbd_inspect_entries *e = priv;
  int len = ext2fs_dirent_name_len(d);
  if ((len == 1 && d->name[0] == '.') || (len == 2 && d->name[0] == '.' && d->name[1] == '.'))
    return 0;
  if (e->n == e->cap) {
    e->cap = e->cap ? 2 * e->cap : 32;
    e->v = xrealloc(e->v, e->cap * sizeof(*e->v));
  }
  e->v[e->n++] =
      (struct sbd_inspect_entry){.name = xstrndup(d->name, (size_t)len), .ino = d->inode};
  return 0;
}

int sbd_inspect_read_dir(ext2_filsys fs, ext2_ino_t dir, const char *path,
                         struct sbd_inspect_entries *e, sbd_error_t *err)
{
  errcode_t code = ext2fs_dir_iterate(fs, dir, 0, NULL, collect_entry, e);
  if (code)
    return sbd_inspect_error(err, code, "%s: cannot read the directory", path);
  return 0;
}

static int hash_file(struct walk *w, ext2_ino_t ino, struct ext2_inode *inode, const char *path,
                     sbd_error_t *err)
{
  uint64_t size = EXT2_I_SIZE(inode);
  bool small = size <= SMALL_FILE;
  if (small && (w->batch_used + size > BATCH_BYTES || w->n_jobs == BATCH_FILES))
    batch_hash(w);
  ext2_file_t f;
  errcode_t code = ext2fs_file_open2(w->fs, ino, inode, 0, &f);
  if (code)
    return sbd_inspect_error(err, code, "%s: cannot open", path);
  uint64_t total = 0;
  unsigned int got;
  if (small) {
    /* ext2fs_file_read stops at the inode's size; a short read shows below. */
    unsigned char *at = w->batch + w->batch_used;
    while (total < size &&
           (code = ext2fs_file_read(f, at + total, (unsigned)(size - total), &got)) == 0 && got > 0)
      total += got;
  } else {
    while ((code = ext2fs_file_read(f, w->buf, READ_CHUNK, &got)) == 0 && got > 0) {
      sbd_hash_update(w->hash, w->buf, got);
      total += got;
    }
  }
  ext2fs_file_close(f);
  if (code)
    return sbd_inspect_error(err, code, "%s: cannot read", path);
  if (total != size)
    return sbd_error_set(err, SBD_EXIT_IMAGE, 0, "%s: read %llu of its %llu bytes", path,
                         (unsigned long long)total, (unsigned long long)size);
  if (small) {
    w->jobs[w->n_jobs] = (struct sbd_md5_job){
        .data = w->batch + w->batch_used, .len = size, .out = w->digests[w->n_jobs]};
    w->n_jobs++;
    w->batch_used += size;
    return 0;
  }
  uint8_t md5[SBD_MD5_LEN];
  sbd_hash_final(w->hash, md5);
  sbd_md5_list_add(&w->list, md5);
  return 0;
}

static int walk_dir(struct walk *w, ext2_ino_t dir, const char *path, unsigned depth,
                    sbd_error_t *err)
{
  if (depth > MAX_DEPTH)
    return sbd_error_set(err, SBD_EXIT_IMAGE, 0,
                         "%s: directories nested deeper than %u (a directory loop?)", path,
                         MAX_DEPTH);
  cleanup_inspect_entries struct sbd_inspect_entries e = {0};
  if (sbd_inspect_read_dir(w->fs, dir, path, &e, err) < 0)
    return -1;
  for (size_t i = 0; i < e.n; i++) {
    cleanup_free char *child = xasprintf("%s/%s", path, e.v[i].name);
    struct ext2_inode inode;
    errcode_t code = ext2fs_read_inode(w->fs, e.v[i].ino, &inode);
    if (code)
      return sbd_inspect_error(err, code, "%s: cannot read inode %u", child, e.v[i].ino);
    if (LINUX_S_ISREG(inode.i_mode)) {
      w->s->files++;
      w->s->bytes += EXT2_I_SIZE(&inode);
      if (w->md5 && hash_file(w, e.v[i].ino, &inode, child, err) < 0)
        return -1;
    } else if (LINUX_S_ISDIR(inode.i_mode)) {
      w->s->directories++;
      if (walk_dir(w, e.v[i].ino, child, depth + 1, err) < 0)
        return -1;
    } else {
      w->s->others++;
    }
  }
  return 0;
}

int sbd_inspect_walk(ext2_filsys fs, ext2_ino_t root, const char *prefix, bool md5,
                     struct sbd_inspect_snapshot *s, sbd_error_t *err)
{
  struct walk w = {.fs = fs, .md5 = md5, .s = s};
  if (md5) {
    w.hash = sbd_hash_new(SBD_HASH_MD5);
    w.buf = xmalloc(READ_CHUNK);
    w.batch = xmalloc(BATCH_BYTES);
    w.jobs = xcalloc(BATCH_FILES, sizeof(*w.jobs));
    w.digests = xcalloc(BATCH_FILES, sizeof(*w.digests));
  }
  int ret = walk_dir(&w, root, prefix, 0, err);
  if (ret == 0 && md5) {
    batch_hash(&w);
    sbd_md5_list_checksum(&w.list, s->computed);
  }
  s->walked = ret == 0;
  sbd_md5_list_free(&w.list);
  sbd_hash_free(w.hash);
  free(w.buf);
  free(w.batch);
  free(w.jobs);
  free(w.digests);
  return ret;
}

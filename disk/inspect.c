/* Opening a disk read-only and checking what it claims about itself: the
 * superblock, the metadata files, the snapshot directories they name. */
#include <errno.h>
#include <et/com_err.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "disk/disk.h"
#include "inspect_private.h"
#include "lib/util.h"

/* A line per snapshot, a row per image: far below this on any real disk. */
#define METADATA_MAX (16u << 20)

static void problem(struct sbd_inspect *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void problem(struct sbd_inspect *r, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  r->problems = xrealloc(r->problems, (r->n_problems + 1) * sizeof(*r->problems));
  r->problems[r->n_problems++] = xvasprintf(fmt, ap);
  va_end(ap);
}

/* A failure that is a finding about the disk: recorded, and the reading goes on. */
static void problem_from(struct sbd_inspect *r, sbd_error_t *err)
{
  problem(r, "%s", *err ? (*err)->msg : "unknown error");
  sbd_error_free(err);
}

static void fs_close(ext2_filsys *fs)
{
  if (*fs)
    ext2fs_close_free(fs);
}

static int open_fs(const char *path, ext2_filsys *fs, sbd_error_t *err)
{
  /* The path's own faults first, with the system's words for them. */
  struct stat st;
  if (stat(path, &st) < 0)
    return sbd_error_set(err, SBD_EXIT_USAGE, errno, "cannot open disk %s", path);
  if (S_ISDIR(st.st_mode))
    return sbd_error_set(err, SBD_EXIT_USAGE, 0, "%s is a directory, not a disk image", path);
  cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return sbd_error_set(err, SBD_EXIT_USAGE, errno, "cannot open disk %s", path);
  /* Read-only: libext2fs never writes, so no root and no lock are needed. */
  errcode_t code = ext2fs_open(path, EXT2_FLAG_64BITS, 0, 0, unix_io_manager, fs);
  if (code == EXT2_ET_BAD_MAGIC || code == EXT2_ET_SHORT_READ)
    return sbd_error_set(err, SBD_EXIT_IMAGE, 0, "%s holds no ext4 filesystem (%s)", path,
                         error_message(code));
  if (code)
    return sbd_error_set(err, SBD_EXIT_IMAGE, 0, "cannot open the ext4 filesystem in %s: %s", path,
                         error_message(code));
  return 0;
}

static void read_superblock(ext2_filsys fs, struct sbd_inspect *r)
{
  struct ext2_super_block *sb = fs->super;
  struct sbd_inspect_fs *f = &r->fs;
  f->block_size = fs->blocksize;
  f->blocks = ext2fs_blocks_count(sb);
  f->free_blocks = ext2fs_free_blocks_count(sb);
  f->size_bytes = f->blocks * f->block_size;
  f->inodes = sb->s_inodes_count;
  f->free_inodes = sb->s_free_inodes_count;
  const uint8_t *u = sb->s_uuid;
  snprintf(f->uuid, sizeof(f->uuid),
           "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1], u[2],
           u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
}

/* What the snapshots rely on: extents for files, file types in directory
 * entries (whiteouts are told from files by them), xattrs for capabilities
 * and the overlay opaque marker. */
static void check_superblock(ext2_filsys fs, struct sbd_inspect *r)
{
  struct ext2_super_block *sb = fs->super;
  if (!ext2fs_has_feature_extents(sb))
    problem(r, "superblock: the extent feature is off (not an ext4 filesystem)");
  if (!ext2fs_has_feature_filetype(sb))
    problem(r, "superblock: the filetype feature is off");
  if (!ext2fs_has_feature_xattr(sb))
    problem(r, "superblock: the ext_attr feature is off (no file capabilities, no opaque markers)");
  if (sb->s_state & EXT2_ERROR_FS)
    problem(r, "superblock: the filesystem is marked as having errors (run e2fsck)");
}

static int read_root_file(ext2_filsys fs, const char *name, char **out, sbd_error_t *err)
{
  ext2_ino_t ino;
  errcode_t code = ext2fs_namei(fs, EXT2_ROOT_INO, EXT2_ROOT_INO, name, &ino);
  if (code == EXT2_ET_FILE_NOT_FOUND)
    return sbd_error_set(err, SBD_EXIT_IMAGE, 0, "%s: missing from the disk", name);
  if (code)
    return sbd_inspect_error(err, code, "%s: cannot look it up", name);
  struct ext2_inode inode;
  if ((code = ext2fs_read_inode(fs, ino, &inode)))
    return sbd_inspect_error(err, code, "%s: cannot read its inode", name);
  if (!LINUX_S_ISREG(inode.i_mode))
    return sbd_error_set(err, SBD_EXIT_IMAGE, 0, "%s: not a regular file", name);
  uint64_t size = EXT2_I_SIZE(&inode);
  if (size > METADATA_MAX)
    return sbd_error_set(err, SBD_EXIT_IMAGE, 0, "%s: %llu bytes, more than a metadata file holds",
                         name, (unsigned long long)size);
  cleanup_free char *buf = xmalloc(size + 1);
  ext2_file_t f;
  if ((code = ext2fs_file_open2(fs, ino, &inode, 0, &f)))
    return sbd_inspect_error(err, code, "%s: cannot open", name);
  unsigned int got = 0;
  code = ext2fs_file_read(f, buf, (unsigned int)size, &got);
  ext2fs_file_close(f);
  if (code)
    return sbd_inspect_error(err, code, "%s: cannot read", name);
  if (got != size)
    return sbd_error_set(err, SBD_EXIT_IMAGE, 0, "%s: read %u of its %llu bytes", name, got,
                         (unsigned long long)size);
  buf[size] = '\0';
  if (strlen(buf) != size)
    return sbd_error_set(err, SBD_EXIT_IMAGE, 0, "%s: holds a NUL byte", name);
  *out = steal_pointer(&buf);
  return 0;
}

static bool listed_twice(const struct sbd_inspect *r, const struct sbd_snapshot_entry *e)
{
  for (size_t i = 0; i < r->n_snapshots; i++)
    if (r->snapshots[i].entry.number == e->number ||
        strcmp(r->snapshots[i].entry.chain_id, e->chain_id) == 0)
      return true;
  return false;
}

static void read_snapshot_lines(ext2_filsys fs, struct sbd_inspect *r)
{
  cleanup_error sbd_error_t err = NULL;
  cleanup_free char *text = NULL;
  if (read_root_file(fs, "snapshots.metadata", &text, &err) < 0) {
    problem_from(r, &err);
    return;
  }
  size_t lineno = 0;
  for (char *p = text; *p;) {
    char *nl = strchr(p, '\n');
    lineno++;
    if (nl == NULL) {
      problem(r, "snapshots.metadata line %zu: no newline at its end", lineno);
      break;
    }
    *nl = '\0';
    struct sbd_snapshot_entry e;
    if (sbd_metadata_parse_snapshot_line(p, &e, &err) < 0) {
      problem(r, "snapshots.metadata line %zu: %s", lineno, err->msg);
      sbd_error_free(&err);
    } else if (listed_twice(r, &e)) {
      problem(r, "snapshots.metadata line %zu: %s or %s listed twice", lineno, e.path, e.chain_id);
      sbd_snapshot_entry_free(&e);
    } else {
      r->snapshots = xrealloc(r->snapshots, (r->n_snapshots + 1) * sizeof(*r->snapshots));
      r->snapshots[r->n_snapshots++] = (struct sbd_inspect_snapshot){.entry = e};
    }
    p = nl + 1;
  }
}

static void read_images(ext2_filsys fs, struct sbd_inspect *r)
{
  cleanup_error sbd_error_t err = NULL;
  cleanup_free char *text = NULL;
  if (read_root_file(fs, "images.metadata", &text, &err) < 0) {
    problem_from(r, &err);
    return;
  }
  if (sbd_metadata_parse_images(text, &r->images, &r->n_images, &err) < 0) {
    sbd_error_prefix(&err, "images.metadata ");
    problem_from(r, &err);
  }
}

/* The images recorded on snapshots/N by the build (absent before it did). */
static void read_used_by(ext2_filsys fs, ext2_ino_t ino, struct sbd_inspect_snapshot *s)
{
  struct ext2_xattr_handle *h = NULL;
  void *value = NULL;
  size_t len = 0;
  if (ext2fs_xattrs_open(fs, ino, &h) == 0 && ext2fs_xattrs_read(h) == 0 &&
      ext2fs_xattr_get(h, SBD_DISK_XATTR_IMAGES, &value, &len) == 0)
    s->used_by = xstrndup(value, len);
  if (value)
    ext2fs_free_mem(&value);
  if (h)
    ext2fs_xattrs_close(&h);
}

static void read_snapshot(ext2_filsys fs, bool verify, struct sbd_inspect *r,
                          struct sbd_inspect_snapshot *s)
{
  const char *path = s->entry.path;
  ext2_ino_t ino;
  errcode_t code = ext2fs_namei(fs, EXT2_ROOT_INO, EXT2_ROOT_INO, path, &ino);
  if (code == EXT2_ET_FILE_NOT_FOUND) {
    problem(r, "%s: listed in snapshots.metadata but missing from the disk", path);
    return;
  }
  struct ext2_inode inode;
  if (!code)
    code = ext2fs_read_inode(fs, ino, &inode);
  if (code) {
    problem(r, "%s: cannot look it up: %s", path, error_message(code));
    return;
  }
  if (!LINUX_S_ISDIR(inode.i_mode)) {
    problem(r, "%s: not a directory", path);
    return;
  }
  s->found = true;
  cleanup_free char *parent = xstrndup(path, strlen(path) - 3); /* snapshots/N */
  ext2_ino_t parent_ino;
  if (ext2fs_namei(fs, EXT2_ROOT_INO, EXT2_ROOT_INO, parent, &parent_ino) == 0)
    read_used_by(fs, parent_ino, s);
  cleanup_error sbd_error_t err = NULL;
  if (sbd_inspect_walk(fs, ino, path, verify, s, &err) < 0) {
    problem_from(r, &err);
    return;
  }
  if (verify && strcmp(s->computed, s->entry.checksum) != 0)
    problem(r, "%s: md5 recorded %s, computed %s", path, s->entry.checksum, s->computed);
}

/* Every snapshots/N on the disk has its line; the reverse is read_snapshot's. */
static void check_unlisted(ext2_filsys fs, struct sbd_inspect *r)
{
  ext2_ino_t dir;
  if (ext2fs_namei(fs, EXT2_ROOT_INO, EXT2_ROOT_INO, "snapshots", &dir) != 0) {
    /* an empty disk has neither the directory nor lines */
    if (r->n_snapshots > 0)
      problem(r, "snapshots: the directory is missing from the disk");
    return;
  }
  cleanup_error sbd_error_t err = NULL;
  cleanup_inspect_entries struct sbd_inspect_entries e = {0};
  if (sbd_inspect_read_dir(fs, dir, "snapshots", &e, &err) < 0) {
    problem_from(r, &err);
    return;
  }
  for (size_t i = 0; i < e.n; i++) {
    bool listed = false;
    for (size_t k = 0; k < r->n_snapshots && !listed; k++) {
      char number[24];
      snprintf(number, sizeof(number), "%zu", r->snapshots[k].entry.number);
      listed = strcmp(number, e.v[i].name) == 0;
    }
    if (!listed)
      problem(r, "snapshots/%s: on the disk but not listed in snapshots.metadata", e.v[i].name);
  }
}

int sbd_inspect_disk(const char *path, const struct sbd_inspect_options *o, struct sbd_inspect *r,
                     sbd_error_t *err)
{
  memset(r, 0, sizeof(*r));
  /* libext2fs's messages: without its table error_message() says "Unknown
   * code ext2 N".  Registering it twice is a no-op. */
  initialize_ext2_error_table();
  __attribute__((cleanup(fs_close))) ext2_filsys fs = NULL;
  if (open_fs(path, &fs, err) < 0)
    return -1;
  read_superblock(fs, r);
  check_superblock(fs, r);
  if (o->verify) {
    errcode_t code = ext2fs_read_bitmaps(fs);
    if (code)
      problem(r, "bitmaps: the block and inode bitmaps cannot be read: %s", error_message(code));
  }
  read_images(fs, r);
  read_snapshot_lines(fs, r);
  for (size_t i = 0; i < r->n_snapshots; i++)
    read_snapshot(fs, o->verify, r, &r->snapshots[i]);
  check_unlisted(fs, r);
  return 0;
}

void sbd_inspect_free(struct sbd_inspect *r)
{
  sbd_image_entries_free(r->images, r->n_images);
  for (size_t i = 0; i < r->n_snapshots; i++) {
    sbd_snapshot_entry_free(&r->snapshots[i].entry);
    free(r->snapshots[i].used_by);
  }
  free(r->snapshots);
  for (size_t i = 0; i < r->n_problems; i++)
    free(r->problems[i]);
  free(r->problems);
  memset(r, 0, sizeof(*r));
}

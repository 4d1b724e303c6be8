/* Building the whole disk: format, apply every snapshot in order, write the
 * directory skeleton and the metadata files, check, rename into place. */
#include "disk/disk.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "disk/ext4.h"
#include "disk/gce_archive.h"
#include "disk/layer.h"
#include "disk/probe.h"
#include "lib/digest.h"
#include "lib/util.h"

struct build {
  const struct sbd_disk_spec *spec;
  struct sbd_ext4 *fs;
  char *tmp_path;
  uint32_t snapshots_ino;
  uint32_t *number_ino; /* snapshots/N */
  uint32_t *fs_ino;     /* snapshots/N/fs */
  struct sbd_layer_result *results;
  bool measuring; /* writing again only to learn the size: no events */
};

/* Whom to tell about layers: nobody while measuring, or the user would see
 * every layer twice before the "needs at least N GiB" error. */
static const struct sbd_disk_events *events_of(const struct build *b)
{
  return b->measuring ? NULL : b->spec->events;
}

/* The filesystem UUID and directory hash seed come from what the disk holds
 * (the chain IDs and the size), so the same inputs give the same bytes. */
static void derive_ids(const struct sbd_disk_spec *spec, uint64_t size, uint8_t uuid[16],
                       uint8_t seed[16])
{
  cleanup_hash struct sbd_hash *h = sbd_hash_new(SBD_HASH_SHA256);
  sbd_hash_update(h, "sbdisk-v1", 9);
  sbd_hash_update(h, &size, sizeof(size));
  for (size_t i = 0; i < spec->n_layers; i++)
    sbd_hash_update(h, spec->layers[i].chain_id, strlen(spec->layers[i].chain_id) + 1);
  uint8_t sha[SBD_SHA256_LEN];
  sbd_hash_final(h, sha);
  memcpy(uuid, sha, 16);
  memcpy(seed, sha + 16, 16);
  uuid[6] = (uuid[6] & 0x0f) | 0x40; /* RFC 4122 version 4 layout, variant 1 */
  uuid[8] = (uuid[8] & 0x3f) | 0x80;
}

static int make_tmp_path(const char *output, struct sbd_tmpfiles *tmpfiles, char **out,
                         sbd_error_t *err)
{
  int fd = sbd_tmpfiles_create_beside(tmpfiles, output, out);
  if (fd < 0) {
    cleanup_free char *copy = xstrdup(output);
    return sbd_error_set(err, SBD_EXIT_FAILURE, errno, "cannot create a file in %s", dirname(copy));
  }
  close(fd);
  return 0;
}

static void layer_progress(void *opaque, uint64_t in_bytes)
{
  struct build *b = ((void **)opaque)[0];
  size_t i = (size_t)(uintptr_t)((void **)opaque)[1];
  const struct sbd_disk_events *ev = events_of(b);
  if (ev && ev->layer_progress)
    ev->layer_progress(ev->opaque, i, in_bytes);
}

static int apply_layer(struct build *b, size_t i, sbd_error_t *err)
{
  const struct sbd_disk_spec *spec = b->spec;
  const struct sbd_disk_layer *l = &spec->layers[i];
  const struct sbd_disk_events *ev = events_of(b);
  if (ev && ev->layer_start)
    ev->layer_start(ev->opaque, i);
  if (sbd_ext4_alloc_inode(b->fs, true, &b->number_ino[i], err) < 0 ||
      sbd_ext4_alloc_inode(b->fs, true, &b->fs_ino[i], err) < 0)
    return sbd_error_prefix(err, "%s: ", l->what);

  /* The lower snapshots, nearest first: what containerd passes as lowerdir. */
  cleanup_free uint32_t *lowers = xcalloc(spec->n_layers, sizeof(*lowers));
  size_t n_lowers = 0;
  for (size_t k = l->parent; k != SBD_DISK_NO_PARENT; k = spec->layers[k].parent)
    lowers[n_lowers++] = b->fs_ino[k];

  void *progress_ctx[2] = {b, (void *)(uintptr_t)i};
  struct sbd_layer_params p = {
      .fs = b->fs,
      .root_ino = b->fs_ino[i],
      .parent_ino = b->number_ino[i],
      .lowers = lowers,
      .n_lowers = n_lowers,
      .blob_path = l->blob_path,
      .reader = &l->reader,
      .compression = l->compressed ? SBD_STREAM_DETECT : SBD_STREAM_NONE,
      .expect_blob_digest = l->blob_digest,
      .expect_diff_id = l->diff_id,
      .progress = layer_progress,
      .progress_opaque = progress_ctx,
  };
  if (sbd_layer_apply(&p, &b->results[i], err) < 0)
    return sbd_error_prefix(err, "%s: ", l->what);
  if (ev && ev->layer_done)
    ev->layer_done(ev->opaque, i, b->results[i].files, b->results[i].file_bytes);
  return 0;
}

static struct sbd_attrs dir_attrs(const struct build *b)
{
  struct sbd_time now = {sbd_ext4_now(b->fs), 0};
  return (struct sbd_attrs){.mode = S_IFDIR | 0755, .atime = now, .mtime = now};
}

/* An xattr must fit the inode's spare room or one 4 KiB block, next to none
 * else on snapshots/N: a base layer shared by hundreds of images must not fail
 * the build, so a longer list is cut after a whole name and says so. */
#define IMAGES_XATTR_MAX 3072

static char *images_xattr_value(const char *used_by)
{
  size_t len = strlen(used_by);
  if (len <= IMAGES_XATTR_MAX)
    return xstrdup(used_by);
  size_t cut = IMAGES_XATTR_MAX;
  while (cut > 0 && used_by[cut] != '\n')
    cut--;
  size_t left = 0;
  for (size_t i = cut; i < len; i++)
    left += used_by[i] == '\n';
  return xasprintf("%.*s\n(%zu more)", (int)cut, used_by, left);
}

/* snapshots/, snapshots/N/ (each holding fs/, and naming the images that use it). */
static int write_skeleton(struct build *b, sbd_error_t *err)
{
  size_t n = b->spec->n_layers;
  struct sbd_attrs a = dir_attrs(b);
  for (size_t i = 0; i < n; i++) {
    struct sbd_dirent fs = {.name = "fs", .name_len = 2, .ino = b->fs_ino[i], .file_type = EXT2_FT_DIR};
    if (sbd_ext4_write_dir(b->fs, b->number_ino[i], b->snapshots_ino, &fs, 1, 1, &a, err) < 0)
      return -1;
    /* On snapshots/N, never on fs/: what is below fs/ is containerd's. */
    if (b->spec->layers[i].used_by == NULL)
      continue;
    cleanup_free char *v = images_xattr_value(b->spec->layers[i].used_by);
    if (sbd_ext4_xattr_set(b->fs, b->number_ino[i], SBD_DISK_XATTR_IMAGES, v, strlen(v), err) < 0)
      return sbd_error_prefix(err, "snapshots/%zu: ", i + 1);
  }
  cleanup_free struct sbd_dirent *ents = xcalloc(n ? n : 1, sizeof(*ents));
  cleanup_free char (*names)[24] = xcalloc(n ? n : 1, sizeof(*names));
  for (size_t i = 0; i < n; i++) {
    snprintf(names[i], sizeof(names[i]), "%zu", i + 1);
    ents[i] = (struct sbd_dirent){
        .name = names[i], .name_len = strlen(names[i]), .ino = b->number_ino[i], .file_type = EXT2_FT_DIR};
  }
  if (sbd_ext4_write_dir(b->fs, b->snapshots_ino, EXT2_ROOT_INO, ents, n, n, &a, err) < 0)
    return -1;
  return sbd_ext4_link_root(b->fs, "snapshots", b->snapshots_ino, EXT2_FT_DIR, err);
}

static int write_root_file(struct build *b, const char *name, const char *content, sbd_error_t *err)
{
  uint32_t ino;
  struct sbd_ext4_file *f;
  struct sbd_time now = {sbd_ext4_now(b->fs), 0};
  struct sbd_attrs a = {.mode = S_IFREG | 0644, .atime = now, .mtime = now};
  if (sbd_ext4_alloc_inode(b->fs, false, &ino, err) < 0 || sbd_ext4_file_open(b->fs, ino, &f, err) < 0)
    return -1;
  if (sbd_ext4_file_write(f, content, strlen(content), err) < 0) {
    sbd_ext4_file_abort(f);
    return -1;
  }
  if (sbd_ext4_file_close(f, &a, err) < 0)
    return -1;
  return sbd_ext4_link_root(b->fs, name, ino, EXT2_FT_REG_FILE, err);
}

static int write_metadata(struct build *b, sbd_error_t *err)
{
  const struct sbd_disk_spec *spec = b->spec;
  cleanup_free struct sbd_snapshot_line *lines = xcalloc(spec->n_layers + 1, sizeof(*lines));
  for (size_t i = 0; i < spec->n_layers; i++)
    lines[i] = (struct sbd_snapshot_line){
        .chain_id = spec->layers[i].chain_id, .number = i + 1, .checksum = b->results[i].checksum};
  cleanup_free char *snapshots = sbd_metadata_snapshots(lines, spec->n_layers);
  cleanup_free char *images = sbd_metadata_images(spec->images, spec->n_images);
  if (write_root_file(b, "snapshots.metadata", snapshots, err) < 0 ||
      write_root_file(b, "images.metadata", images, err) < 0)
    return sbd_error_prefix(err, "writing the metadata files: ");
  return 0;
}

static int sync_path(const char *path, bool dir, sbd_error_t *err)
{
  cleanup_close int fd = open(path, (dir ? O_DIRECTORY : O_RDWR) | O_CLOEXEC);
  if (fd < 0 || fsync(fd) < 0)
    return sbd_error_set(err, SBD_EXIT_FAILURE, errno, "cannot sync %s", path);
  return 0;
}

/* "sha256:<hex>" -> "<hex>", as sha256sum prints a file's. */
static void copy_hex(char *dst, size_t len, const char *digest)
{
  const char *colon = strchr(digest, ':');
  const char *hex = colon ? colon + 1 : digest;
  size_t n = strnlen(hex, len - 1);
  memcpy(dst, hex, n);
  dst[n] = '\0';
}

/* Before the rename, so that a disk is never in place without the archive
 * and digest that were asked for. */
static int digest_and_archive(struct build *b, struct sbd_disk_result *res, sbd_error_t *err)
{
  const struct sbd_disk_spec *spec = b->spec;
  if (!spec->want_sha256 && spec->gce_tar == NULL)
    return 0;
  struct sbd_gce_archive_params p = {
      .raw_path = b->tmp_path,
      .archive_path = spec->gce_tar,
      .mtime = spec->now,
      .no_raw_digest = !spec->want_sha256,
      .tmpfiles = spec->tmpfiles,
  };
  struct sbd_gce_archive_result r;
  if (sbd_gce_archive_write(&p, &r, err) < 0)
    return -1;
  if (spec->want_sha256)
    copy_hex(res->sha256, sizeof(res->sha256), r.raw_digest);
  if (spec->gce_tar) {
    copy_hex(res->gce_tar_sha256, sizeof(res->gce_tar_sha256), r.archive_digest);
    res->gce_tar_bytes = r.archive_size;
  }
  return 0;
}

/* Every snapshot and the metadata files, into a fresh filesystem in the
 * temporary file: of `size` bytes, or (size 0) of a size chosen at the end,
 * written meanwhile in `capacity` bytes.  b->fs stays open. */
static int fill_tmp(struct build *b, uint64_t size, uint64_t capacity, sbd_error_t *err)
{
  const struct sbd_disk_spec *spec = b->spec;
  struct sbd_ext4_params params = {.size_bytes = size, .capacity_bytes = capacity, .now = spec->now};
  derive_ids(spec, size, params.uuid, params.hash_seed);
  if (sbd_ext4_create(b->tmp_path, &params, &b->fs, err) < 0)
    return -1;
  if (sbd_ext4_alloc_inode(b->fs, true, &b->snapshots_ino, err) < 0)
    return -1;
  for (size_t i = 0; i < spec->n_layers; i++)
    if (apply_layer(b, i, err) < 0)
      return -1;
  return write_skeleton(b, err) < 0 || write_metadata(b, err) < 0 ? -1 : 0;
}

static int build_into_tmp(struct build *b, uint64_t capacity, struct sbd_disk_result *res,
                          sbd_error_t *err)
{
  const struct sbd_disk_spec *spec = b->spec;
  if (fill_tmp(b, spec->size_bytes, capacity, err) < 0)
    return -1;
  for (size_t i = 0; i < spec->n_layers; i++)
    res->files += b->results[i].files;
  struct sbd_ext4 *fs = steal_pointer(&b->fs);
  struct sbd_ext4_summary sum;
  if (sbd_ext4_close(fs, &sum, err) < 0)
    return -1;
  res->size_bytes = sum.size_bytes;
  res->used_bytes = sum.content_blocks * SBD_EXT4_BLOCK_SIZE;
  res->inodes_used = sum.inodes_used;
  if (sync_path(b->tmp_path, false, err) < 0 || sbd_probe_ext4(b->tmp_path, sum.size_bytes, err) < 0)
    return -1;
  return digest_and_archive(b, res, err);
}

/* The least room: its 4,194,304 inodes (one per 16 KiB, as on the final
 * disk) hold a layer of millions of files that compress to a few bytes
 * each, beyond the ~2.5 million that fit sbdisk's memory bound.  A 16 GiB
 * room ran out at a million empty files, and starting again cost 2,000,000
 * of them a fifth more CPU.  A sparse room costs its size only in
 * descriptors and bitmaps (files-200k: the same time and peak memory). */
#define ROOM_MIN (64 * SBD_GIB)

/* Room to write in before the size is known: a generous multiple of the
 * compressed size (all-zero blocks take no room at all); if content still
 * overflows it, the build starts again with four times as much. */
static uint64_t initial_capacity(const struct sbd_disk_spec *spec)
{
  if (spec->room_bytes)
    return spec->room_bytes;
  uint64_t compressed = 0;
  for (size_t i = 0; i < spec->n_layers; i++)
    compressed += spec->layers[i].blob_size;
  uint64_t cap = 32 * compressed < ROOM_MIN ? ROOM_MIN : 32 * compressed;
  cap = (cap + SBD_GIB - 1) / SBD_GIB * SBD_GIB;
  return cap > SBD_DISK_MAX_ROOM ? SBD_DISK_MAX_ROOM : cap;
}

static uint64_t grow_capacity(uint64_t cap)
{
  return cap * 4 > SBD_DISK_MAX_ROOM ? SBD_DISK_MAX_ROOM : cap * 4;
}

/* A --size disk the content does not fit: writing it all again at the
 * automatic size (in the same temporary file, nothing finalised) is the one
 * exact way to know what it needs, blocks and inodes alike. */
static int measure_needed_size(struct build *b, uint64_t *size, sbd_error_t *err)
{
  uint64_t cap = initial_capacity(b->spec);
  b->measuring = true;
  for (;;) {
    if (b->fs)
      sbd_ext4_free(steal_pointer(&b->fs));
    cleanup_error sbd_error_t e = NULL;
    if (fill_tmp(b, 0, cap, &e) == 0)
      break;
    if (sbd_error_exit_code(e) != SBD_EXIT_NOSPACE || cap >= SBD_DISK_MAX_ROOM) {
      *err = steal_pointer(&e);
      return -1;
    }
    cap = grow_capacity(cap);
  }
  struct sbd_ext4_usage u;
  sbd_ext4_usage(b->fs, &u);
  sbd_ext4_free(steal_pointer(&b->fs));
  return sbd_ext4_pick_size(&u, false, size, err);
}

/* Replaces "does not fit" with the size that would fit, or with why the
 * content could not be measured (a later layer may be bad). */
static void explain_no_space(struct build *b, sbd_error_t *err)
{
  uint64_t given = b->spec->size_bytes / SBD_GIB, needed = 0;
  cleanup_error sbd_error_t e = NULL;
  if (measure_needed_size(b, &needed, &e) < 0) {
    if (sbd_error_exit_code(e) != SBD_EXIT_NOSPACE) {
      sbd_error_free(err);
      *err = steal_pointer(&e);
      return;
    }
    sbd_error_prefix(err, "the content does not fit a %llu GiB disk, nor any up to 16 TiB: ",
                     (unsigned long long)given);
    return;
  }
  sbd_error_prefix(err, "the content needs at least %llu GiB and does not fit the %llu GiB of "
                        "--size (give at least %lluG, or leave --size out to size it "
                        "automatically): ",
                   (unsigned long long)(needed / SBD_GIB), (unsigned long long)given,
                   (unsigned long long)(needed / SBD_GIB));
}

int sbd_disk_build(const struct sbd_disk_spec *spec, struct sbd_disk_result *res, sbd_error_t *err)
{
  memset(res, 0, sizeof(*res));
  if (spec->size_bytes % SBD_GIB != 0)
    return sbd_error_set(err, SBD_EXIT_USAGE, 0, "disk size must be a whole number of GiB");

  struct build b = {.spec = spec};
  if (make_tmp_path(spec->output, spec->tmpfiles, &b.tmp_path, err) < 0)
    return -1;
  b.number_ino = xcalloc(spec->n_layers + 1, sizeof(*b.number_ino));
  b.fs_ino = xcalloc(spec->n_layers + 1, sizeof(*b.fs_ino));
  b.results = xcalloc(spec->n_layers + 1, sizeof(*b.results));

  uint64_t cap = initial_capacity(spec);
  int ret = build_into_tmp(&b, cap, res, err);
  while (ret < 0 && spec->size_bytes == 0 && sbd_error_exit_code(*err) == SBD_EXIT_NOSPACE &&
         cap < SBD_DISK_MAX_ROOM) {
    /* More content than room to write it in: rare (text compresses 3-10x). */
    sbd_error_free(err);
    if (b.fs)
      sbd_ext4_free(steal_pointer(&b.fs));
    cap = grow_capacity(cap);
    memset(res, 0, sizeof(*res));
    ret = build_into_tmp(&b, cap, res, err);
  }
  if (ret == 0 && rename(b.tmp_path, spec->output) < 0)
    ret = sbd_error_set(err, SBD_EXIT_FAILURE, errno, "cannot rename %s to %s", b.tmp_path, spec->output);
  else if (ret == 0)
    sbd_tmpfiles_forget(spec->tmpfiles, b.tmp_path);
  if (ret == 0) {
    cleanup_free char *copy = xstrdup(spec->output);
    ret = sync_path(dirname(copy), true, err);
  }
  if (ret < 0) {
    if (err && *err && sbd_error_exit_code(*err) == SBD_EXIT_NOSPACE && spec->size_bytes)
      explain_no_space(&b, err);
    if (b.fs)
      sbd_ext4_free(b.fs);
    unlink(b.tmp_path);
    sbd_tmpfiles_forget(spec->tmpfiles, b.tmp_path);
  }
  free(b.tmp_path);
  free(b.number_ino);
  free(b.fs_ino);
  free(b.results);
  return ret;
}

/* The room content is first written in, before the disk's size is known:
 * a disk that ends larger than its room (10% of the inodes kept free needs
 * more groups than the room had), and a build that runs out of the room's
 * inodes and starts again in a larger one.  The default room holds 4 million
 * inodes, so both are reached here with a room of the smallest disk size. */
#include <archive.h>
#include <archive_entry.h>
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "disk/disk.h"
#include "disk/inspect.h"
#include "lib/digest.h"
#include "lib/util.h"

/* The smallest room there is: 80 groups of 8192 inodes (655,360). */
#define ROOM SBD_DISK_MIN_SIZE

/* A tar layer of n empty files, 1000 to a directory. */
static void write_files_layer(const char *path, size_t n)
{
  struct archive *a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  ck_assert_int_eq(archive_write_open_filename(a, path), ARCHIVE_OK);
  struct archive_entry *e = archive_entry_new();
  char name[64];
  for (size_t i = 0; i < n; i++) {
    if (i % 1000 == 0) {
      archive_entry_clear(e);
      snprintf(name, sizeof(name), "d%04zu", i / 1000);
      archive_entry_set_pathname(e, name);
      archive_entry_set_filetype(e, AE_IFDIR);
      archive_entry_set_perm(e, 0755);
      ck_assert_int_eq(archive_write_header(a, e), ARCHIVE_OK);
    }
    archive_entry_clear(e);
    snprintf(name, sizeof(name), "d%04zu/f%04zu", i / 1000, i % 1000);
    archive_entry_set_pathname(e, name);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, 0);
    ck_assert_int_eq(archive_write_header(a, e), ARCHIVE_OK);
  }
  archive_entry_free(e);
  ck_assert_int_eq(archive_write_close(a), ARCHIVE_OK);
  archive_write_free(a);
}

static void count_start(void *opaque, size_t layer)
{
  (void)layer;
  (*(int *)opaque)++;
}

/* Builds a disk of n empty files in a room of ROOM bytes, checks it with
 * e2fsck and against its own metadata (every file's md5 included), and
 * returns its size and how many times the layer was written. */
static void build_files(size_t n, uint64_t *size, int *starts)
{
  char dir[] = "/tmp/sbdisk-room-XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  cleanup_free char *blob = xasprintf("%s/layer.tar", dir);
  cleanup_free char *disk = xasprintf("%s/d.raw", dir);
  write_files_layer(blob, n);
  char diff_id[SBD_DIGEST_STR_LEN];
  sbd_error_t err = NULL;
  ck_assert_msg(sbd_digest_file(blob, diff_id, &err) == 0, "%s", err ? err->msg : "");

  *starts = 0;
  struct sbd_disk_events events = {.opaque = starts, .layer_start = count_start};
  struct sbd_disk_layer layer = {.blob_path = blob, .compressed = false, .diff_id = diff_id,
                                 .chain_id = diff_id, .parent = SBD_DISK_NO_PARENT,
                                 .what = "layer"};
  struct sbd_image_row row = {"registry.example/team/files:v1",
                              "application/vnd.oci.image.manifest.v1+json", diff_id, 1234,
                              "linux/amd64", "io.cri-containerd.image=managed"};
  struct sbd_disk_spec spec = {.output = disk, .now = 1700000000, .layers = &layer,
                               .n_layers = 1, .images = &row, .n_images = 1,
                               .events = &events, .room_bytes = ROOM};
  struct sbd_disk_result res;
  ck_assert_msg(sbd_disk_build(&spec, &res, &err) == 0, "%zu files: %s", n,
                err ? err->msg : "");
  ck_assert_uint_eq(res.files, n);
  ck_assert_uint_ge(res.inodes_used, n);
  *size = res.size_bytes;
  /* Where the final disk's extra descriptors and groups meet the content
   * written in the room, e2fsck sees what reading the files back would not. */
  cleanup_free char *fsck = xasprintf("e2fsck -fn %s >/dev/null 2>&1", disk);
  ck_assert_msg(system(fsck) == 0, "%zu files: e2fsck -fn finds the disk unclean", n);

  struct sbd_inspect_options o = {.verify = true};
  struct sbd_inspect r;
  ck_assert_msg(sbd_inspect_disk(disk, &o, &r, &err) == 0, "%s", err ? err->msg : "");
  ck_assert_msg(r.n_problems == 0, "%zu files: %s", n, r.n_problems ? r.problems[0] : "");
  ck_assert_uint_eq(r.n_snapshots, 1);
  ck_assert_uint_eq(r.snapshots[0].files, n);
  ck_assert_str_eq(r.snapshots[0].computed, r.snapshots[0].entry.checksum);
  sbd_inspect_free(&r);
  unlink(blob);
  unlink(disk);
  rmdir(dir);
}

/* 600,000 files fit the room's 655,360 inodes, but not with 10% of them
 * free: the disk ends larger than the room, its inodes and blocks carried
 * over and its extra descriptor blocks clear of the content. */
START_TEST(test_disk_larger_than_its_room)
{
  uint64_t size;
  int starts;
  build_files(600000, &size, &starts);
  ck_assert_int_eq(starts, 1);
  ck_assert_uint_gt(size, ROOM);
}
END_TEST

/* 700,000 files do not fit the room's inodes: the layer is written again
 * in a larger room, and the disk is as whole as if it had fitted. */
START_TEST(test_build_outgrows_its_room)
{
  uint64_t size;
  int starts;
  build_files(700000, &size, &starts);
  ck_assert_int_eq(starts, 2);
  ck_assert_uint_gt(size, ROOM);
}
END_TEST

Suite *room_suite(void)
{
  Suite *s = suite_create("room");
  TCase *tc = tcase_create("room");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_disk_larger_than_its_room);
  tcase_add_test(tc, test_build_outgrows_its_room);
  suite_add_tcase(s, tc);
  return s;
}

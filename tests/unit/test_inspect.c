/* The disk module end to end in one process: a disk built by sbd_disk_build
 * read back by sbd_inspect_disk (the shell tests drive the binaries). */
#include <archive.h>
#include <archive_entry.h>
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "disk/disk.h"
#include "disk/inspect.h"
#include "lib/digest.h"
#include "lib/util.h"

/* A one-file tar layer. */
static void write_layer(const char *path, const char *name, const char *content)
{
  struct archive *a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  ck_assert_int_eq(archive_write_open_filename(a, path), ARCHIVE_OK);
  struct archive_entry *e = archive_entry_new();
  archive_entry_set_pathname(e, name);
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_perm(e, 0644);
  archive_entry_set_size(e, (la_int64_t)strlen(content));
  ck_assert_int_eq(archive_write_header(a, e), ARCHIVE_OK);
  ck_assert_int_eq(archive_write_data(a, content, strlen(content)), (la_ssize_t)strlen(content));
  archive_entry_free(e);
  archive_write_close(a);
  archive_write_free(a);
}

/* 200 images share the layer: their names (~8 KiB) do not fit an xattr, and
 * the build must still succeed, recording as many as fit and the count left. */
START_TEST(test_many_users_recorded_and_read_back)
{
  char dir[] = "/tmp/sbdisk-inspect-XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  cleanup_free char *blob = xasprintf("%s/layer.tar", dir);
  cleanup_free char *disk = xasprintf("%s/d.raw", dir);
  write_layer(blob, "hello", "hello, world\n");
  char *data;
  size_t len;
  ck_assert_int_eq(sbd_read_file(blob, 1 << 20, &data, &len), 0);
  char diff_id[SBD_DIGEST_STR_LEN];
  sbd_digest_buffer(data, len, diff_id);
  free(data);

  struct sbd_buf users = {0};
  for (int i = 0; i < 200; i++)
    sbd_buf_appendf(&users, "%sregistry.example/team/image-number-%03d:v1", i ? "\n" : "", i);
  struct sbd_disk_layer layer = {
      .blob_path = blob, .compressed = false, .diff_id = diff_id, .chain_id = diff_id,
      .parent = SBD_DISK_NO_PARENT, .what = "layer", .used_by = sbd_buf_cstr(&users)};
  struct sbd_image_row row = {"registry.example/team/image-number-000:v1",
                              "application/vnd.oci.image.manifest.v1+json", diff_id, 1234,
                              "linux/amd64", "io.cri-containerd.image=managed"};
  struct sbd_disk_spec spec = {.output = disk, .now = 1700000000, .layers = &layer, .n_layers = 1,
                               .images = &row, .n_images = 1};
  struct sbd_disk_result res;
  sbd_error_t err = NULL;
  ck_assert_msg(sbd_disk_build(&spec, &res, &err) == 0, "%s", err ? err->msg : "");

  struct sbd_inspect_options o = {.verify = true};
  struct sbd_inspect r;
  ck_assert_msg(sbd_inspect_disk(disk, &o, &r, &err) == 0, "%s", err ? err->msg : "");
  ck_assert_msg(r.n_problems == 0, "%s", r.n_problems ? r.problems[0] : "");
  ck_assert_uint_eq(r.n_images, 1);
  ck_assert_str_eq(r.images[0].cells[SBD_IMAGE_REF], row.name);
  ck_assert_uint_eq(r.n_snapshots, 1);
  struct sbd_inspect_snapshot *s = &r.snapshots[0];
  ck_assert_str_eq(s->entry.chain_id, diff_id);
  ck_assert_str_eq(s->computed, s->entry.checksum);
  ck_assert_uint_eq(s->files, 1);
  ck_assert_uint_eq(s->bytes, strlen("hello, world\n"));
  ck_assert_ptr_nonnull(s->used_by);
  /* whole names from the first, then "(N more)" accounting for the rest */
  size_t kept = 0;
  for (const char *p = s->used_by; (p = strchr(p, '\n')) != NULL; p++)
    kept++;
  size_t names_len = strlen(s->used_by) - strlen(strrchr(s->used_by, '\n'));
  ck_assert(strncmp(s->used_by, users.data, names_len) == 0 && users.data[names_len] == '\n');
  unsigned more = 0;
  ck_assert_int_eq(sscanf(strrchr(s->used_by, '\n'), "\n(%u more)", &more), 1);
  ck_assert_uint_eq(kept + more, 200);
  ck_assert_uint_lt(strlen(s->used_by), 4096);
  sbd_inspect_free(&r);
  sbd_buf_free(&users);
  unlink(blob);
  unlink(disk);
  rmdir(dir);
}
END_TEST

Suite *inspect_suite(void)
{
  Suite *s = suite_create("inspect");
  TCase *tc = tcase_create("inspect");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_many_users_recorded_and_read_back);
  suite_add_tcase(s, tc);
  return s;
}

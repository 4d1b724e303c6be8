/* Whiteout mapping and the other applier rules, as documentation: small tars
 * applied with sbd_layer_apply into a scratch ext4 image and read back. */
#include <archive.h>
#include <archive_entry.h>
#include <check.h>
#include <openssl/evp.h>
#include <openssl/md5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "disk/ext4.h"
#include "disk/layer.h"

struct entry {
  const char *name;
  unsigned type; /* AE_IFREG, AE_IFDIR */
  const char *data;
};

static void write_tar(const char *path, const struct entry *e, size_t n)
{
  struct archive *a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  ck_assert_int_eq(archive_write_open_filename(a, path), ARCHIVE_OK);
  for (size_t i = 0; i < n; i++) {
    struct archive_entry *ae = archive_entry_new();
    archive_entry_set_pathname(ae, e[i].name);
    archive_entry_set_filetype(ae, e[i].type);
    archive_entry_set_perm(ae, e[i].type == AE_IFDIR ? 0755 : 0644);
    archive_entry_set_mtime(ae, 1500000000, 0);
    if (e[i].type == AE_IFLNK) { /* data: the target */
      archive_entry_set_symlink(ae, e[i].data);
      archive_write_header(a, ae);
      archive_entry_free(ae);
      continue;
    }
    size_t len = e[i].data ? strlen(e[i].data) : 0;
    archive_entry_set_size(ae, (la_int64_t)len);
    archive_write_header(a, ae);
    if (len)
      archive_write_data(a, e[i].data, len);
    archive_entry_free(ae);
  }
  archive_write_close(a);
  archive_write_free(a);
}

struct scratch {
  char img[64];
  char tar[64];
  struct sbd_ext4 *fs;
  uint32_t roots[4];
  size_t n;
};

static void scratch_open(struct scratch *s)
{
  strcpy(s->img, "/tmp/sbdisk-layer-XXXXXX");
  strcpy(s->tar, "/tmp/sbdisk-tar-XXXXXX");
  close(mkstemp(s->img));
  close(mkstemp(s->tar));
  struct sbd_ext4_params p = {.size_bytes = 10ull << 30, .now = 1700000000};
  sbd_error_t err = NULL;
  ck_assert_int_eq(sbd_ext4_create(s->img, &p, &s->fs, &err), 0);
  s->n = 0;
}

static void scratch_close(struct scratch *s)
{
  sbd_ext4_free(s->fs);
  unlink(s->img);
  unlink(s->tar);
}

/* Applies a layer on top of the ones applied before (none: a first layer);
 * a refusal's message goes to *err. */
static int try_apply(struct scratch *s, const struct entry *e, size_t n, uint32_t *root,
                     sbd_error_t *err)
{
  write_tar(s->tar, e, n);
  uint32_t parent;
  ck_assert_int_eq(sbd_ext4_alloc_inode(s->fs, true, &parent, err), 0);
  ck_assert_int_eq(sbd_ext4_alloc_inode(s->fs, true, root, err), 0);
  uint32_t lowers[4];
  for (size_t i = 0; i < s->n; i++)
    lowers[i] = s->roots[s->n - 1 - i];
  struct sbd_layer_params p = {.fs = s->fs, .root_ino = *root, .parent_ino = parent,
                               .lowers = lowers, .n_lowers = s->n, .blob_path = s->tar, .reader = NULL,
                               .compression = SBD_STREAM_NONE};
  struct sbd_layer_result r;
  int ret = sbd_layer_apply(&p, &r, err);
  if (ret == 0)
    s->roots[s->n++] = *root;
  return ret;
}

static uint32_t apply(struct scratch *s, const struct entry *e, size_t n)
{
  uint32_t root;
  sbd_error_t err = NULL;
  int ret = try_apply(s, e, n, &root, &err);
  ck_assert_msg(ret == 0, "apply: %s", err ? err->msg : "?");
  return root;
}

static uint32_t lookup(struct scratch *s, uint32_t dir, const char *name)
{
  uint32_t ino = 0;
  sbd_error_t err = NULL;
  ck_assert_int_eq(sbd_ext4_lookup(s->fs, dir, name, strlen(name), &ino, &err), 0);
  return ino;
}

static int find_opaque(const char *key, const void *value, size_t len, void *opaque)
{
  if (strcmp(key, "trusted.overlay.opaque") == 0 && len == 1 && ((const char *)value)[0] == 'y')
    *(int *)opaque = 1;
  return 0;
}

static int is_opaque(struct scratch *s, uint32_t ino)
{
  int found = 0;
  sbd_error_t err = NULL;
  ck_assert_int_eq(sbd_ext4_xattr_list(s->fs, ino, find_opaque, &found, &err), 0);
  return found;
}

START_TEST(test_first_layer_whiteout_deletes)
{
  struct scratch s;
  scratch_open(&s);
  struct entry l1[] = {{"a", AE_IFREG, "x"}, {".wh.a", AE_IFREG, NULL}, {".wh.never", AE_IFREG, NULL}};
  uint32_t root = apply(&s, l1, 3);
  ck_assert_uint_eq(lookup(&s, root, "a"), 0);     /* deleted */
  ck_assert_uint_eq(lookup(&s, root, "never"), 0); /* and no device left behind */
  ck_assert_uint_eq(lookup(&s, root, ".wh.a"), 0);
  scratch_close(&s);
}
END_TEST

START_TEST(test_later_layer_whiteout_is_a_device)
{
  struct scratch s;
  scratch_open(&s);
  struct entry l1[] = {{"a", AE_IFREG, "x"}};
  struct entry l2[] = {{".wh.a", AE_IFREG, NULL}};
  apply(&s, l1, 1);
  uint32_t root = apply(&s, l2, 1);
  uint32_t ino = lookup(&s, root, "a");
  ck_assert_uint_ne(ino, 0);
  struct sbd_attrs st;
  sbd_error_t err = NULL;
  ck_assert_int_eq(sbd_ext4_stat(s.fs, ino, &st, &err), 0);
  ck_assert_uint_eq(st.mode, S_IFCHR); /* c--------- 0:0 */
  ck_assert_uint_eq(lookup(&s, root, ".wh.a"), 0);
  scratch_close(&s);
}
END_TEST

START_TEST(test_opaque_marker)
{
  struct scratch s;
  scratch_open(&s);
  struct entry l1[] = {{"d/", AE_IFDIR, NULL}, {"d/old", AE_IFREG, "o"}};
  struct entry l2[] = {{"d/", AE_IFDIR, NULL}, {"d/.wh..wh..opq", AE_IFREG, NULL}, {"d/new", AE_IFREG, "n"}};
  uint32_t r1 = apply(&s, l1, 2);
  uint32_t r2 = apply(&s, l2, 3);
  ck_assert(!is_opaque(&s, lookup(&s, r1, "d")));
  uint32_t d = lookup(&s, r2, "d");
  ck_assert(is_opaque(&s, d));                          /* later layer: xattr */
  ck_assert_uint_ne(lookup(&s, d, "new"), 0);
  ck_assert_uint_eq(lookup(&s, d, ".wh..wh..opq"), 0);  /* the marker itself is not written */
  scratch_close(&s);
}
END_TEST

START_TEST(test_first_layer_opaque_removes_what_it_did_not_unpack)
{
  struct scratch s;
  scratch_open(&s);
  /* p/q is made as a parent, not unpacked: the opaque marker removes it;
   * p/mine was unpacked by this layer and stays. */
  struct entry l1[] = {{"p/q/file", AE_IFREG, "f"}, {"p/mine", AE_IFREG, "m"},
                       {"p/.wh..wh..opq", AE_IFREG, NULL}};
  uint32_t root = apply(&s, l1, 3);
  uint32_t p = lookup(&s, root, "p");
  ck_assert_uint_ne(p, 0);
  ck_assert_uint_eq(lookup(&s, p, "q"), 0);
  ck_assert_uint_ne(lookup(&s, p, "mine"), 0);
  ck_assert(!is_opaque(&s, p)); /* a first layer records nothing */
  scratch_close(&s);
}
END_TEST

START_TEST(test_escapes_stay_inside)
{
  struct scratch s;
  scratch_open(&s);
  struct entry l1[] = {{"../../outside", AE_IFREG, "x"}, {"/abs/file", AE_IFREG, "y"}};
  uint32_t root = apply(&s, l1, 2);
  ck_assert_uint_ne(lookup(&s, root, "outside"), 0);
  ck_assert_uint_ne(lookup(&s, lookup(&s, root, "abs"), "file"), 0);
  scratch_close(&s);
}
END_TEST

/* Entries under a symlinked parent land in its target, each of them (the
 * writer keeps a resolved parent only when no symlink was on its way). */
START_TEST(test_entries_under_a_symlinked_parent)
{
  struct scratch s;
  scratch_open(&s);
  struct entry l1[] = {{"d/", AE_IFDIR, NULL}, {"l", AE_IFLNK, "d"}, {"l/x", AE_IFREG, "1"},
                       {"l/y", AE_IFREG, "2"}};
  uint32_t root = apply(&s, l1, 4);
  uint32_t d = lookup(&s, root, "d");
  ck_assert_uint_ne(lookup(&s, d, "x"), 0);
  ck_assert_uint_ne(lookup(&s, d, "y"), 0);
  ck_assert_uint_eq(lookup(&s, root, "x"), 0);
  ck_assert_uint_eq(lookup(&s, root, "y"), 0);
  scratch_close(&s);
}
END_TEST

/* An entry that turns its own parent's path into a file (through a symlink
 * to ".", or by replacing the directory) leaves the next entry of that
 * parent nowhere to go: refused, not written where the parent used to be. */
START_TEST(test_parent_replaced_between_entries_is_refused)
{
  static const struct entry through_link[] = {
      {"l", AE_IFLNK, "."}, {"l/x", AE_IFREG, "1"}, {"l/l", AE_IFREG, "f"}, {"l/y", AE_IFREG, "2"}};
  static const struct entry replaced_dir[] = {
      {"d/x", AE_IFREG, "1"}, {"d", AE_IFREG, "f"}, {"d/y", AE_IFREG, "2"}};
  const struct entry *layers[] = {through_link, replaced_dir};
  size_t sizes[] = {4, 3};
  for (size_t i = 0; i < 2; i++) {
    struct scratch s;
    scratch_open(&s);
    uint32_t root;
    sbd_error_t err = NULL;
    ck_assert_int_eq(try_apply(&s, layers[i], sizes[i], &root, &err), -1);
    ck_assert_msg(err && strstr(err->msg, "Not a directory"), "layer %zu: %s", i,
                  err ? err->msg : "no error");
    sbd_error_free(&err);
    scratch_close(&s);
  }
}
END_TEST

/* A sparse entry (GNU.sparse 1.0, as GNU tar --sparse and libarchive write
 * them): Go's tar reader, and so containerd, gives its holes as zeros, a
 * trailing hole included. */
START_TEST(test_sparse_entry_reads_as_zeros)
{
  enum { SIZE = 3 << 20, HEAD = 4096, MID = 1 << 20, MID_LEN = 10 };
  unsigned char *content = calloc(SIZE, 1);
  memset(content, 'A', HEAD);
  memset(content + MID, 'B', MID_LEN);

  struct scratch s;
  scratch_open(&s);
  struct archive *a = archive_write_new();
  archive_write_set_format_pax(a);
  ck_assert_int_eq(archive_write_open_filename(a, s.tar), ARCHIVE_OK);
  struct archive_entry *ae = archive_entry_new();
  archive_entry_set_pathname(ae, "sparse");
  archive_entry_set_filetype(ae, AE_IFREG);
  archive_entry_set_perm(ae, 0644);
  archive_entry_set_size(ae, SIZE);
  archive_entry_sparse_add_entry(ae, 0, HEAD);
  archive_entry_sparse_add_entry(ae, MID, MID_LEN);
  ck_assert_int_eq(archive_write_header(a, ae), ARCHIVE_OK);
  ck_assert_int_eq(archive_write_data(a, content, SIZE), SIZE);
  archive_entry_free(ae);
  archive_write_close(a);
  archive_write_free(a);
  struct stat st;
  ck_assert_int_eq(stat(s.tar, &st), 0);
  ck_assert_msg(st.st_size < SIZE / 2, "the tar (%lld bytes) is not sparse", (long long)st.st_size);

  uint32_t parent, root;
  sbd_error_t err = NULL;
  ck_assert_int_eq(sbd_ext4_alloc_inode(s.fs, true, &parent, &err), 0);
  ck_assert_int_eq(sbd_ext4_alloc_inode(s.fs, true, &root, &err), 0);
  struct sbd_layer_params p = {.fs = s.fs, .root_ino = root, .parent_ino = parent,
                               .blob_path = s.tar, .compression = SBD_STREAM_NONE};
  struct sbd_layer_result r;
  ck_assert_msg(sbd_layer_apply(&p, &r, &err) == 0, "apply: %s", err ? err->msg : "?");

  ck_assert_uint_ne(lookup(&s, root, "sparse"), 0);
  ck_assert_uint_eq(r.files, 1);
  ck_assert_uint_eq(r.file_bytes, SIZE);
  /* the verifier's checksum of a one-file directory: md5 of "<md5 of the file>\n" */
  unsigned char md[MD5_DIGEST_LENGTH];
  char line[2 * MD5_DIGEST_LENGTH + 2], want[2 * MD5_DIGEST_LENGTH + 1];
  EVP_Digest(content, SIZE, md, NULL, EVP_md5(), NULL);
  for (int i = 0; i < MD5_DIGEST_LENGTH; i++)
    sprintf(line + 2 * i, "%02x", md[i]);
  strcat(line, "\n");
  EVP_Digest(line, strlen(line), md, NULL, EVP_md5(), NULL);
  for (int i = 0; i < MD5_DIGEST_LENGTH; i++)
    sprintf(want + 2 * i, "%02x", md[i]);
  ck_assert_str_eq(r.checksum, want);
  scratch_close(&s);
  free(content);
}
END_TEST

Suite *layer_suite(void)
{
  Suite *s = suite_create("layer");
  TCase *tc = tcase_create("layer");
  tcase_add_test(tc, test_first_layer_whiteout_deletes);
  tcase_add_test(tc, test_later_layer_whiteout_is_a_device);
  tcase_add_test(tc, test_opaque_marker);
  tcase_add_test(tc, test_first_layer_opaque_removes_what_it_did_not_unpack);
  tcase_add_test(tc, test_escapes_stay_inside);
  tcase_add_test(tc, test_sparse_entry_reads_as_zeros);
  tcase_add_test(tc, test_entries_under_a_symlinked_parent);
  tcase_add_test(tc, test_parent_replaced_between_entries_is_refused);
  suite_add_tcase(s, tc);
  return s;
}

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "disk/metadata.h"
#include "lib/error.h"

START_TEST(test_snapshots_lines)
{
  struct sbd_snapshot_line l[] = {
      {"sha256:aaaa", 1, "d41d8cd98f00b204e9800998ecf8427e"},
      {"sha256:bbbb", 2, "0123456789abcdef0123456789abcdef"},
  };
  char *s = sbd_metadata_snapshots(l, 2);
  ck_assert_str_eq(s, "sha256:aaaa snapshots/1/fs d41d8cd98f00b204e9800998ecf8427e\n"
                      "sha256:bbbb snapshots/2/fs 0123456789abcdef0123456789abcdef\n");
  free(s);
}
END_TEST

/* Go: units.CustomSize("%02.1f %s", size, 1024, {"B","KiB",...}) */
START_TEST(test_human_size)
{
  struct {
    uint64_t in;
    const char *out;
  } cases[] = {
      {0, "0.0 B"},         {5, "5.0 B"},           {727, "727.0 B"},
      {1023, "1023.0 B"},   {1024, "1.0 KiB"},      {1536, "1.5 KiB"},
      {1468006, "1.4 MiB"}, {1073741824, "1.0 GiB"}, {5905580032ull, "5.5 GiB"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char *s = sbd_metadata_human_size(cases[i].in);
    ck_assert_str_eq(s, cases[i].out);
    free(s);
  }
}
END_TEST

/* The layout ctr printed for one image on this project's test machine
 * (containerd 1.6.20): every column padded to its widest cell + 1, the last
 * one included, and rows in name order. */
START_TEST(test_images_table)
{
  struct sbd_image_row rows[] = {
      {"z.io/b:1", "application/vnd.oci.image.index.v1+json", "sha256:22", 2048, "linux/amd64,linux/arm64",
       "io.cri-containerd.image=managed"},
      {"127.0.0.1:22288/test/hello:v1", "application/vnd.oci.image.manifest.v1+json",
       "sha256:bbfac2f4a0715f28f2daadaee21f41a9a4d99911058b03cd8f7bd85169b41ea9", 727, "linux/amd64",
       NULL},
  };
  char *s = sbd_metadata_images(rows, 2);
  const char *want =
      "REF                           TYPE                                       DIGEST                                                                  SIZE    PLATFORMS               LABELS                          \n"
      "127.0.0.1:22288/test/hello:v1 application/vnd.oci.image.manifest.v1+json sha256:bbfac2f4a0715f28f2daadaee21f41a9a4d99911058b03cd8f7bd85169b41ea9 727.0 B linux/amd64             -                               \n"
      "z.io/b:1                      application/vnd.oci.image.index.v1+json    sha256:22                                                               2.0 KiB linux/amd64,linux/arm64 io.cri-containerd.image=managed \n";
  ck_assert_str_eq(s, want);
  free(s);
}
END_TEST

/* --- reading back ---------------------------------------------------------------- */

START_TEST(test_parse_snapshot_line)
{
  struct sbd_snapshot_line l = {
      "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", 12,
      "d41d8cd98f00b204e9800998ecf8427e"};
  char *text = sbd_metadata_snapshots(&l, 1);
  text[strlen(text) - 1] = '\0'; /* the reader hands lines without their newline */
  struct sbd_snapshot_entry e;
  sbd_error_t err = NULL;
  ck_assert_int_eq(sbd_metadata_parse_snapshot_line(text, &e, &err), 0);
  ck_assert_str_eq(e.chain_id, l.chain_id);
  ck_assert_str_eq(e.path, "snapshots/12/fs");
  ck_assert_uint_eq(e.number, 12);
  ck_assert_str_eq(e.checksum, l.checksum);
  sbd_snapshot_entry_free(&e);
  free(text);
}
END_TEST

START_TEST(test_parse_snapshot_line_refused)
{
  const char *chain = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
  const char *md5 = "d41d8cd98f00b204e9800998ecf8427e";
  struct {
    const char *path, *sum, *chain, *extra, *says;
  } bad[] = {
      {"snapshots/1/fs", md5, "sha256:ba78", "", "chainID"},
      {"snapshots/0/fs", md5, chain, "", "snapshots/<N>/fs"},
      {"snapshots/01/fs", md5, chain, "", "snapshots/<N>/fs"},
      {"snapshots/1/fs/", md5, chain, "", "snapshots/<N>/fs"},
      {"snapshots/x/fs", md5, chain, "", "snapshots/<N>/fs"},
      {"/snapshots/1/fs", md5, chain, "", "snapshots/<N>/fs"},
      {"snapshots/1/fs", "D41D8CD98F00B204E9800998ECF8427E", chain, "", "md5"},
      {"snapshots/1/fs", "d41d8cd98f00b204", chain, "", "md5"},
      {"snapshots/1/fs", md5, chain, " extra", "<chainID> snapshots/<N>/fs <md5>"},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    char line[256];
    snprintf(line, sizeof(line), "%s %s %s%s", bad[i].chain, bad[i].path, bad[i].sum, bad[i].extra);
    struct sbd_snapshot_entry e;
    sbd_error_t err = NULL;
    ck_assert_msg(sbd_metadata_parse_snapshot_line(line, &e, &err) == -1, "accepted %s", line);
    ck_assert_int_eq(sbd_error_exit_code(err), SBD_EXIT_IMAGE);
    ck_assert_msg(strstr(err->msg, bad[i].says) != NULL, "%s: %s", line, err->msg);
    ck_assert_ptr_null(e.chain_id);
    sbd_error_free(&err);
  }
}
END_TEST

/* What the writer prints, the reader gives back cell for cell: SIZE with its
 * space, a name with multi-byte UTF-8 (the tabwriter pads by runes), "-". */
START_TEST(test_parse_images_round_trip)
{
  struct sbd_image_row rows[] = {
      {"z.io/b:1", "application/vnd.oci.image.index.v1+json", "sha256:22", 2048,
       "linux/amd64,linux/arm64", "io.cri-containerd.image=managed"},
      {"r\xc3\xa9gistre.example/\xc3\xa9t\xc3\xa9:v1", "application/vnd.oci.image.manifest.v1+json",
       "sha256:bbfac2f4a0715f28f2daadaee21f41a9a4d99911058b03cd8f7bd85169b41ea9", 1468006,
       "linux/amd64", NULL},
  };
  char *text = sbd_metadata_images(rows, 2);
  struct sbd_image_entry *e;
  size_t n;
  sbd_error_t err = NULL;
  ck_assert_msg(sbd_metadata_parse_images(text, &e, &n, &err) == 0, "%s", err ? err->msg : "");
  ck_assert_uint_eq(n, 2);
  /* rows come back in the table's (name) order */
  for (size_t i = 0; i < 2; i++) {
    const struct sbd_image_row *r = &rows[1 - i];
    char *size = sbd_metadata_human_size(r->size);
    ck_assert_str_eq(e[i].cells[SBD_IMAGE_REF], r->name);
    ck_assert_str_eq(e[i].cells[SBD_IMAGE_TYPE], r->media_type);
    ck_assert_str_eq(e[i].cells[SBD_IMAGE_DIGEST], r->digest);
    ck_assert_str_eq(e[i].cells[SBD_IMAGE_SIZE], size);
    ck_assert_str_eq(e[i].cells[SBD_IMAGE_PLATFORMS], r->platforms);
    ck_assert_str_eq(e[i].cells[SBD_IMAGE_LABELS], r->labels ? r->labels : "-");
    free(size);
  }
  sbd_image_entries_free(e, n);
  free(text);

  /* no images: the header alone */
  text = sbd_metadata_images(NULL, 0);
  ck_assert_int_eq(sbd_metadata_parse_images(text, &e, &n, &err), 0);
  ck_assert_uint_eq(n, 0);
  sbd_image_entries_free(e, n);
  free(text);
}
END_TEST

START_TEST(test_parse_images_refused)
{
  struct {
    const char *text, *says;
  } bad[] = {
      {"", "empty"},
      {"REF TYPE DIGEST SIZE PLATFORMS\n", "line 1"},
      {"REF TYPE DIGEST SIZE PLATFORMS LABELS EXTRA\n", "line 1"},
      {"REF TYPE DIGEST SIZE PLATFORMS LABELS", "newline"},
      /* a row cut short: no LABELS cell */
      {"REF TYPE DIGEST SIZE PLATFORMS LABELS \na   b    c      d    e\n", "line 2: the LABELS column"},
      /* a REF wider than its column shifts everything right */
      {"REF TYPE DIGEST SIZE PLATFORMS LABELS \nabcde b    c      d    e         f\n", "line 2: the TYPE column"},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    struct sbd_image_entry *e = NULL;
    size_t n = 0;
    sbd_error_t err = NULL;
    ck_assert_msg(sbd_metadata_parse_images(bad[i].text, &e, &n, &err) == -1, "accepted case %zu", i);
    ck_assert_int_eq(sbd_error_exit_code(err), SBD_EXIT_IMAGE);
    ck_assert_msg(strstr(err->msg, bad[i].says) != NULL, "case %zu: %s", i, err->msg);
    sbd_error_free(&err);
  }
}
END_TEST

Suite *metadata_suite(void)
{
  Suite *s = suite_create("metadata");
  TCase *tc = tcase_create("metadata");
  tcase_add_test(tc, test_snapshots_lines);
  tcase_add_test(tc, test_human_size);
  tcase_add_test(tc, test_images_table);
  tcase_add_test(tc, test_parse_snapshot_line);
  tcase_add_test(tc, test_parse_snapshot_line_refused);
  tcase_add_test(tc, test_parse_images_round_trip);
  tcase_add_test(tc, test_parse_images_refused);
  suite_add_tcase(s, tc);
  return s;
}

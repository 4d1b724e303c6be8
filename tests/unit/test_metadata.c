#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "disk/metadata.h"

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

Suite *metadata_suite(void)
{
  Suite *s = suite_create("metadata");
  TCase *tc = tcase_create("metadata");
  tcase_add_test(tc, test_snapshots_lines);
  tcase_add_test(tc, test_human_size);
  tcase_add_test(tc, test_images_table);
  suite_add_tcase(s, tc);
  return s;
}

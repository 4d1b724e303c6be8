/* A regular file's bytes reach the image the same whatever the sizes of the
 * pieces they come in (libarchive hands over whatever its decoder produced),
 * and only whole blocks of zeros are left as holes. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "disk/ext4.h"

#define BS SBD_EXT4_BLOCK_SIZE
#define SIZE ((3u << 20) + 1234u)

/* Bytes that are never a whole block of zeros by chance, with zeros where
 * the test wants them: an aligned run of whole blocks, a run that covers
 * two blocks wholly and two in part, and a run across the writer's 1 MiB
 * chunk boundary. */
static unsigned char *make_content(void)
{
  unsigned char *c = malloc(SIZE);
  uint32_t x = 12345;
  for (size_t i = 0; i < SIZE; i++) {
    x = x * 1103515245u + 12345u;
    c[i] = (unsigned char)((x >> 16) | 1);
  }
  memset(c + 10 * BS, 0, 10 * BS);
  memset(c + 30 * BS + 100, 0, 3 * BS - 93);
  memset(c + 254 * BS + 5, 0, 4 * BS);
  return c;
}

/* The blocks a faithful writer allocates: every block of the file (the last
 * one zero-padded) that is not all zeros. */
static uint64_t blocks_with_data(const unsigned char *c)
{
  uint64_t n = 0;
  for (size_t b = 0; b * BS < SIZE; b++) {
    size_t end = (b + 1) * BS < SIZE ? (b + 1) * BS : SIZE;
    for (size_t i = b * BS; i < end; i++)
      if (c[i]) {
        n++;
        break;
      }
  }
  return n;
}

/* Writes content in pieces of the given sizes (cycled), then reads the file
 * back through libext2fs and checks its bytes and its allocated blocks. */
static void check_pieces(const size_t *sizes, size_t n_sizes)
{
  unsigned char *content = make_content();
  char img[] = "/tmp/sbdisk-file-XXXXXX";
  close(mkstemp(img));
  struct sbd_ext4_params p = {.size_bytes = 10ull << 30, .now = 1700000000};
  struct sbd_ext4 *fs;
  sbd_error_t err = NULL;
  ck_assert_int_eq(sbd_ext4_create(img, &p, &fs, &err), 0);
  ext2_ino_t ino;
  ck_assert_int_eq(sbd_ext4_alloc_inode(fs, false, &ino, &err), 0);
  struct sbd_ext4_file *f;
  ck_assert_int_eq(sbd_ext4_file_open(fs, ino, &f, &err), 0);
  size_t off = 0;
  for (size_t k = 0; off < SIZE; k++) {
    size_t n = sizes[k % n_sizes];
    if (n > SIZE - off)
      n = SIZE - off;
    ck_assert_msg(sbd_ext4_file_write(f, content + off, n, &err) == 0, "write: %s",
                  err ? err->msg : "?");
    off += n;
  }
  struct sbd_attrs a = {.mode = S_IFREG | 0644};
  ck_assert_int_eq(sbd_ext4_file_close(f, &a, &err), 0);
  ck_assert_int_eq(sbd_ext4_flush(fs, &err), 0);

  ext2_filsys efs = sbd_ext4_filsys(fs);
  struct ext2_inode inode;
  ck_assert_int_eq(ext2fs_read_inode(efs, ino, &inode), 0);
  ck_assert_uint_eq(EXT2_I_SIZE(&inode), SIZE);
  /* i_blocks counts 512-byte sectors; the extent tree fits in the inode */
  ck_assert_uint_eq(inode.i_blocks, blocks_with_data(content) * (BS / 512));
  ext2_file_t file;
  ck_assert_int_eq(ext2fs_file_open(efs, ino, 0, &file), 0);
  unsigned char *got = malloc(SIZE);
  unsigned int total = 0, chunk;
  do {
    ck_assert_int_eq(ext2fs_file_read(file, got + total, SIZE - total, &chunk), 0);
    total += chunk;
  } while (chunk > 0 && total < SIZE);
  ext2fs_file_close(file);
  ck_assert_uint_eq(total, SIZE);
  ck_assert_msg(memcmp(got, content, SIZE) == 0, "the file reads back different bytes");
  free(got);
  sbd_ext4_free(fs);
  unlink(img);
  free(content);
}

START_TEST(test_file_in_one_piece)
{
  const size_t sizes[] = {SIZE};
  check_pieces(sizes, 1);
}
END_TEST

/* Pieces that end inside a block, on a block boundary, and just past one. */
START_TEST(test_file_in_odd_pieces)
{
  const size_t sizes[] = {1, 4095, 4097, 3, 65553, 8192, 200001, 4096, 7, 12289};
  check_pieces(sizes, sizeof(sizes) / sizeof(sizes[0]));
}
END_TEST

START_TEST(test_file_in_small_pieces)
{
  const size_t sizes[] = {1000};
  check_pieces(sizes, 1);
}
END_TEST

START_TEST(test_file_in_pieces_past_the_chunk)
{
  const size_t sizes[] = {(1u << 20) + 1};
  check_pieces(sizes, 1);
}
END_TEST

Suite *ext4_file_suite(void)
{
  Suite *s = suite_create("ext4_file");
  TCase *tc = tcase_create("ext4_file");
  tcase_add_test(tc, test_file_in_one_piece);
  tcase_add_test(tc, test_file_in_odd_pieces);
  tcase_add_test(tc, test_file_in_small_pieces);
  tcase_add_test(tc, test_file_in_pieces_past_the_chunk);
  suite_add_tcase(s, tc);
  return s;
}

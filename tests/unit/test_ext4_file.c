/* A regular file's bytes reach the image the same whatever the sizes of the
 * pieces they come in (libarchive hands over whatever its decoder produced),
 * and only whole blocks of zeros are left as holes. */
#include <check.h>
#include <stdbool.h>
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

/* A fresh 10 GiB image at img (a mkstemp template), formatted. */
static struct sbd_ext4 *new_image(char *img)
{
  close(mkstemp(img));
  struct sbd_ext4_params p = {.size_bytes = 10ull << 30, .now = 1700000000};
  struct sbd_ext4 *fs;
  sbd_error_t err = NULL;
  ck_assert_int_eq(sbd_ext4_create(img, &p, &fs, &err), 0);
  return fs;
}

/* Writes content in pieces of the given sizes (cycled), then reads the file
 * back through libext2fs and checks its bytes and its allocated blocks. */
static void check_pieces(const size_t *sizes, size_t n_sizes, bool last)
{
  unsigned char *content = make_content();
  char img[] = "/tmp/sbdisk-file-XXXXXX";
  struct sbd_ext4 *fs = new_image(img);
  sbd_error_t err = NULL;
  ext2_ino_t ino;
  ck_assert_int_eq(sbd_ext4_alloc_inode(fs, false, &ino, &err), 0);
  struct sbd_ext4_file *f;
  ck_assert_int_eq(sbd_ext4_file_open(fs, ino, &f, &err), 0);
  size_t off = 0;
  for (size_t k = 0; off < SIZE; k++) {
    size_t n = sizes[k % n_sizes];
    if (n > SIZE - off)
      n = SIZE - off;
    int r = last && off + n == SIZE ? sbd_ext4_file_write_last(f, content + off, n, &err)
                                    : sbd_ext4_file_write(f, content + off, n, &err);
    ck_assert_msg(r == 0, "write: %s", err ? err->msg : "?");
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
  check_pieces(sizes, 1, false);
}
END_TEST

/* Pieces that end inside a block, on a block boundary, and just past one. */
START_TEST(test_file_in_odd_pieces)
{
  const size_t sizes[] = {1, 4095, 4097, 3, 65553, 8192, 200001, 4096, 7, 12289};
  check_pieces(sizes, sizeof(sizes) / sizeof(sizes[0]), false);
}
END_TEST

START_TEST(test_file_in_small_pieces)
{
  const size_t sizes[] = {1000};
  check_pieces(sizes, 1, false);
}
END_TEST

START_TEST(test_file_in_pieces_past_the_chunk)
{
  const size_t sizes[] = {(1u << 20) + 1};
  check_pieces(sizes, 1, false);
}
END_TEST

/* The last piece through sbd_ext4_file_write_last: straight to the write
 * buffer when nothing waits in the chunk (one piece), as any write when
 * something does (odd pieces). */
START_TEST(test_file_last_piece)
{
  const size_t whole[] = {SIZE};
  check_pieces(whole, 1, true);
  const size_t odd[] = {1, 4095, 4097, 3, 65553, 8192, 200001, 4096, 7, 12289};
  check_pieces(odd, sizeof(odd) / sizeof(odd[0]), true);
  const size_t aligned[] = {4096 * 5, 8192};
  check_pieces(aligned, 2, true);
}
END_TEST

/* A small file in one last piece: its partial block stored zero-padded, or
 * left a hole when it holds only zeros; nothing may follow. */
START_TEST(test_file_last_piece_small)
{
  char img[] = "/tmp/sbdisk-file-XXXXXX";
  struct sbd_ext4 *fs = new_image(img);
  sbd_error_t err = NULL;
  ext2_filsys efs = sbd_ext4_filsys(fs);
  struct sbd_attrs a = {.mode = S_IFREG | 0644};
  /* data then zeros in the last block; one block of data, then only zeros */
  unsigned char c1[100], c2[BS + 904];
  memset(c1, 'x', sizeof(c1));
  memset(c2, 0, sizeof(c2));
  memset(c2, 'y', BS);
  const struct { const unsigned char *bytes; size_t len; uint64_t blocks; } cases[] = {
      {c1, sizeof(c1), 1}, {c2, sizeof(c2), 1}};
  for (size_t i = 0; i < 2; i++) {
    ext2_ino_t ino;
    ck_assert_int_eq(sbd_ext4_alloc_inode(fs, false, &ino, &err), 0);
    struct sbd_ext4_file *f;
    ck_assert_int_eq(sbd_ext4_file_open(fs, ino, &f, &err), 0);
    ck_assert_int_eq(sbd_ext4_file_write_last(f, cases[i].bytes, cases[i].len, &err), 0);
    ck_assert_int_eq(sbd_ext4_file_write(f, "z", 1, &err), -1);
    ck_assert_str_eq(err->msg, "data beyond the file's size");
    sbd_error_free(&err);
    ck_assert_int_eq(sbd_ext4_file_write_last(f, "z", 1, &err), -1);
    ck_assert_str_eq(err->msg, "data beyond the file's size");
    sbd_error_free(&err);
    ck_assert_int_eq(sbd_ext4_file_close(f, &a, &err), 0);
    ck_assert_int_eq(sbd_ext4_flush(fs, &err), 0);
    struct ext2_inode inode;
    ck_assert_int_eq(ext2fs_read_inode(efs, ino, &inode), 0);
    ck_assert_uint_eq(EXT2_I_SIZE(&inode), cases[i].len);
    ck_assert_uint_eq(inode.i_blocks, cases[i].blocks * (BS / 512));
    ext2_file_t file;
    unsigned char got[2 * BS];
    unsigned int n;
    ck_assert_int_eq(ext2fs_file_open(efs, ino, 0, &file), 0);
    ck_assert_int_eq(ext2fs_file_read(file, got, sizeof(got), &n), 0);
    ext2fs_file_close(file);
    ck_assert_uint_eq(n, cases[i].len);
    ck_assert(memcmp(got, cases[i].bytes, cases[i].len) == 0);
    /* on the disk, the last block's bytes past the end are zeros */
    blk64_t pblk = 0;
    ck_assert_int_eq(ext2fs_bmap2(efs, ino, NULL, NULL, 0, (cases[i].len - 1) / BS, NULL, &pblk), 0);
    if (pblk != 0) {
      unsigned char raw[BS];
      ck_assert_int_eq(io_channel_read_blk64(efs->io, pblk, 1, raw), 0);
      for (size_t k = cases[i].len % BS; k > 0 && k < BS; k++)
        ck_assert_msg(raw[k] == 0, "byte %zu past the end is %d", k, raw[k]);
    }
  }
  sbd_ext4_free(fs);
  unlink(img);
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
  tcase_add_test(tc, test_file_last_piece);
  tcase_add_test(tc, test_file_last_piece_small);
  suite_add_tcase(s, tc);
  return s;
}

/* How inodes reach the image: disk/ext4_csum.c computes in hardware the
 * checksums libext2fs computes in software (the two must agree bit for bit,
 * or e2fsck and the kernel refuse the inode), and new inodes go into their
 * table without reading it first. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "disk/ext4_private.h"

static void fill(unsigned char *p, size_t n, uint32_t seed)
{
  for (size_t i = 0; i < n; i++) {
    seed = seed * 1103515245u + 12345u;
    p[i] = (unsigned char)(seed >> 16);
  }
}

START_TEST(test_crc32c_matches_libext2fs)
{
  unsigned char buf[600];
  fill(buf, sizeof(buf), 7);
  const uint32_t seeds[] = {0, ~0u, 0x12345678u};
  for (size_t s = 0; s < sizeof(seeds) / sizeof(seeds[0]); s++)
    for (size_t off = 0; off < 9; off++)
      for (size_t len = 0; len <= 300; len++)
        ck_assert_uint_eq(sbd_ext4_crc32c(seeds[s], buf + off, len),
                          ext2fs_crc32c_le(seeds[s], buf + off, len));
}
END_TEST

struct fs_fixture {
  char img[32];
  struct sbd_ext4 *fs;
};

static void fs_open(struct fs_fixture *f)
{
  strcpy(f->img, "/tmp/sbdisk-csum-XXXXXX");
  close(mkstemp(f->img));
  struct sbd_ext4_params p = {.size_bytes = 10ull << 30, .now = 1700000000};
  sbd_error_t err = NULL;
  ck_assert_int_eq(sbd_ext4_create(f->img, &p, &f->fs, &err), 0);
  ck_assert(ext2fs_has_feature_metadata_csum(f->fs->fs->super));
}

static void fs_close(struct fs_fixture *f)
{
  sbd_ext4_free(f->fs);
  unlink(f->img);
}

/* Random inode bytes (generation included), with and without room for the
 * checksum's high half. */
START_TEST(test_inode_csum_matches_libext2fs)
{
  struct fs_fixture f;
  fs_open(&f);
  const __u16 extra[] = {32, 4, 0};
  for (size_t i = 0; i < sizeof(extra) / sizeof(extra[0]); i++) {
    struct sbd_inode_buf ours, theirs;
    fill((unsigned char *)&ours, sizeof(ours), (uint32_t)i + 1);
    ours.large.i_extra_isize = extra[i];
    theirs = ours;
    sbd_ext4_inode_csum_set(f.fs, 1234, &ours);
    ck_assert_int_eq(ext2fs_inode_csum_set(f.fs->fs, 1234, &theirs.large), 0);
    ck_assert_int_eq(memcmp(&ours, &theirs, sizeof(ours)), 0);
    ck_assert(ext2fs_inode_csum_verify(f.fs->fs, 1234, &ours.large));
    /* A different inode number gives a different sum. */
    sbd_ext4_inode_csum_set(f.fs, 1235, &theirs);
    ck_assert(!ext2fs_inode_csum_verify(f.fs->fs, 1234, &theirs.large));
  }
  fs_close(&f);
}
END_TEST

/* An inode written through sbd_ext4_inode_write reads back through
 * libext2fs, which verifies its checksum. */
START_TEST(test_inode_write_reads_back)
{
  struct fs_fixture f;
  fs_open(&f);
  ext2_ino_t ino;
  sbd_error_t err = NULL;
  ck_assert_int_eq(ext2fs_new_inode(f.fs->fs, EXT2_ROOT_INO, S_IFREG | 0644, NULL, &ino), 0);
  struct sbd_attrs a = {.mode = S_IFREG | 0640, .uid = 1000, .gid = 100};
  struct sbd_inode_buf ib;
  sbd_ext4_inode_init(f.fs, &ib, &a);
  ib.large.i_generation = 77;
  ck_assert_int_eq(sbd_ext4_inode_write(f.fs, ino, &ib, &err), 0);
  struct sbd_inode_buf back;
  ck_assert_int_eq(ext2fs_read_inode2(f.fs->fs, ino, (struct ext2_inode *)&back, sizeof(back), 0), 0);
  ck_assert_int_eq(back.large.i_mode, S_IFREG | 0640);
  ck_assert_int_eq(back.large.i_generation, 77);
  fs_close(&f);
}
END_TEST

static unsigned long long bytes_read(struct sbd_ext4 *fs)
{
  io_stats st = NULL;
  ck_assert_int_eq(fs->fs->io->manager->get_stats(fs->fs->io, &st), 0);
  return st->bytes_read;
}

/* New inodes go into inode-table blocks never written: zeros, which the
 * writer knows without reading them (ext4.c, enter_inode_block). */
START_TEST(test_new_inodes_read_nothing)
{
  struct fs_fixture f;
  fs_open(&f);
  sbd_error_t err = NULL;
  struct sbd_attrs a = {.mode = S_IFREG | 0644};
  unsigned long long before = bytes_read(f.fs);
  for (int i = 0; i < 100; i++) {
    ext2_ino_t ino;
    ck_assert_int_eq(sbd_ext4_alloc_inode(f.fs, false, &ino, &err), 0);
    struct sbd_inode_buf ib;
    sbd_ext4_inode_init(f.fs, &ib, &a);
    ck_assert_int_eq(sbd_ext4_inode_write(f.fs, ino, &ib, &err), 0);
  }
  ck_assert_uint_eq(bytes_read(f.fs), before);
  fs_close(&f);
}
END_TEST

Suite *ext4_inode_suite(void)
{
  Suite *s = suite_create("ext4_inode");
  TCase *tc = tcase_create("ext4_inode");
  tcase_add_test(tc, test_crc32c_matches_libext2fs);
  tcase_add_test(tc, test_inode_csum_matches_libext2fs);
  tcase_add_test(tc, test_inode_write_reads_back);
  tcase_add_test(tc, test_new_inodes_read_nothing);
  suite_add_tcase(s, tc);
  return s;
}

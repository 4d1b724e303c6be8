/* Shared between the ext4 writer's files (ext4*.c); not part of its interface. */
#ifndef SBD_EXT4_PRIVATE_H
#define SBD_EXT4_PRIVATE_H

#include "ext4.h"

struct sbd_writeback;

struct sbd_ext4 {
  ext2_filsys fs; /* while writing: the provisional filesystem */
  char *path;
  int64_t now;
  uint64_t fixed_size;   /* 0: decided at close */
  blk64_t region;        /* descriptor + reserved descriptor blocks after each superblock */
  uint8_t uuid[16];
  uint8_t hash_seed[16];
  ext2_ino_t ino_cursor; /* next inode number to try */
  blk64_t blk_goal;      /* next block to try */
  ext2fs_block_bitmap format_blocks; /* the provisional format's own blocks */
  ext2fs_inode_bitmap dirs;          /* inodes that are directories */
  /* the data path (ext4_data.c) */
  int data_fd;          /* the image opened O_DIRECT, or -1 */
  struct sbd_writeback *wb; /* writes data_fd's buffers; NULL without data_fd */
  unsigned char *pend;  /* contiguous blocks waiting to be written (a wb buffer) */
  blk64_t pend_start;
  size_t pend_blocks;
  char *file_buf; /* the chunk buffer of the file being written */
};

/* A whole on-disk inode (256 bytes), so that writing it never drags in stale
 * bytes from the inode table and reading it keeps the in-inode xattrs. */
struct sbd_inode_buf {
  struct ext2_inode_large large;
  char rest[256 - sizeof(struct ext2_inode_large)];
};

/* One run of a file: logical block, physical block, length (≤ 32768). */
struct sbd_extent {
  uint32_t lblk;
  uint32_t len;
  blk64_t pblk;
};

struct sbd_extent_list {
  struct sbd_extent *v;
  size_t n;
  size_t cap;
};

/* Longest initialised extent ext4 can describe. */
#define SBD_EXT4_MAX_EXTENT_LEN 32768u

int sbd_ext4_alloc_blocks(struct sbd_ext4 *fs, blk64_t want, blk64_t *pblk, blk64_t *plen,
                          sbd_error_t *err);
void sbd_ext4_free_blocks(struct sbd_ext4 *fs, blk64_t pblk, blk64_t len);

void sbd_ext4_inode_init(struct sbd_ext4 *fs, struct sbd_inode_buf *ib, const struct sbd_attrs *a);
void sbd_ext4_inode_set_attrs(struct ext2_inode_large *in, const struct sbd_attrs *a);
int sbd_ext4_inode_read(struct sbd_ext4 *fs, ext2_ino_t ino, struct sbd_inode_buf *ib,
                        sbd_error_t *err);
int sbd_ext4_inode_write(struct sbd_ext4 *fs, ext2_ino_t ino, struct sbd_inode_buf *ib,
                         sbd_error_t *err);

/* Appends a run, merging it with the previous one when contiguous. */
void sbd_extent_list_add(struct sbd_extent_list *l, uint32_t lblk, blk64_t pblk, uint32_t len);
void sbd_extent_list_free(struct sbd_extent_list *l);
/* Writes the extent tree for l into the inode's i_block (and index/leaf
 * blocks when it does not fit), sets EXTENTS_FL and i_blocks (data blocks +
 * tree blocks). */
int sbd_ext4_write_extent_tree(struct sbd_ext4 *fs, ext2_ino_t ino, struct ext2_inode_large *in,
                               const struct sbd_extent_list *l, sbd_error_t *err);
/* Writes data (nblocks whole blocks) to freshly allocated runs, appending
 * them to l from logical block lblk. */
int sbd_ext4_write_blocks(struct sbd_ext4 *fs, struct sbd_extent_list *l, uint32_t lblk,
                          const void *data, blk64_t nblocks, sbd_error_t *err);

/* The data path: content blocks, combined into large writes (ext4_data.c). */
void sbd_ext4_data_init(struct sbd_ext4 *fs);
void sbd_ext4_data_free(struct sbd_ext4 *fs);
int sbd_ext4_data_put(struct sbd_ext4 *fs, blk64_t blk, const void *data, size_t nblocks,
                      sbd_error_t *err);
void sbd_ext4_data_wrapped(struct sbd_ext4 *fs);
/* One block from len (< a block) bytes, zero-padded. */
int sbd_ext4_data_put_partial(struct sbd_ext4 *fs, blk64_t blk, const void *data, size_t len,
                              sbd_error_t *err);

/* metadata_csum checksums (ext4_csum.c).  crc32c as libext2fs computes it
 * (no inversion), in hardware where the CPU has it. */
uint32_t sbd_ext4_crc32c(uint32_t crc, const void *data, size_t len);
/* Seeded by the filesystem, the inode number and its generation (0 for the
 * inodes written here): directory, extent and inode checksums. */
uint32_t sbd_ext4_csum_ino(struct sbd_ext4 *fs, ext2_ino_t ino, uint32_t gen, const void *data,
                           size_t len);
/* Sets the inode's own checksum fields, as ext2fs_inode_csum_set does. */
void sbd_ext4_inode_csum_set(struct sbd_ext4 *fs, ext2_ino_t ino, struct sbd_inode_buf *ib);

#endif

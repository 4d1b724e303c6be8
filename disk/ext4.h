/* The ext4 writer: a filesystem image made and filled through libext2fs,
 * without mounting it.
 *
 * It formats with the feature set GKE has been mounting (mke2fs 1.46's ext4
 * defaults, 4 KiB blocks, -m 0; see ext4_format.c for how the size can be
 * decided at the end), then offers what a layer applier needs:
 * allocate inodes, stream regular files into contiguous extents, write
 * symlinks, devices and whole directories in one pass, change attributes,
 * xattrs and link counts, and read back finished directories (the lower
 * layers).  Inode and block numbers are allocated in order from cursors, so
 * the same sequence of calls always gives the same image. */
#ifndef SBD_EXT4_H
#define SBD_EXT4_H

#include <ext2fs/ext2fs.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/error.h"

#define SBD_EXT4_BLOCK_SIZE 4096u

struct sbd_ext4_params {
  /* The disk size, a whole number of GiB; 0: the smallest (at least 10 GiB)
   * that holds the content with 10% free, decided when closing. */
  uint64_t size_bytes;
  /* With size_bytes 0: the room to write in until then (whole GiB). */
  uint64_t capacity_bytes;
  uint8_t uuid[16];
  uint8_t hash_seed[16];
  int64_t now; /* superblock times and the times of what we create */
};

struct sbd_ext4;

/* Creates the file at path (truncated, sparse) and formats it. */
int sbd_ext4_create(const char *path, const struct sbd_ext4_params *p, struct sbd_ext4 **out,
                    sbd_error_t *err);

struct sbd_ext4_summary {
  uint64_t size_bytes;
  uint64_t content_blocks; /* blocks holding files, directories, xattrs, extent trees */
  uint64_t inodes_used;
};
/* Picks the size (unless fixed), writes the superblock, descriptors, bitmaps,
 * resize inode and journal, and truncates the file to the size.  Frees fs in
 * every case. */
int sbd_ext4_close(struct sbd_ext4 *fs, struct sbd_ext4_summary *sum, sbd_error_t *err);
/* Writes out content still waiting in the write-combining buffer: needed
 * before content is read back (lower layers, at the end of each layer). */
int sbd_ext4_flush(struct sbd_ext4 *fs, sbd_error_t *err);
/* Abandons the image without writing its metadata (the caller removes the file). */
void sbd_ext4_free(struct sbd_ext4 *fs);

/* What the content takes so far, and the size that would hold it. */
struct sbd_ext4_usage {
  uint64_t content_blocks;
  uint64_t end_block; /* one past the highest block in use */
  uint64_t inodes_used;
  uint64_t max_inode;
};
void sbd_ext4_usage(const struct sbd_ext4 *fs, struct sbd_ext4_usage *u);
/* The smallest whole GiB (from 10 GiB) that holds the content: with 10% of
 * the blocks and inodes left free when headroom is set, with none otherwise. */
int sbd_ext4_pick_size(const struct sbd_ext4_usage *u, bool headroom, uint64_t *size,
                       sbd_error_t *err);

ext2_filsys sbd_ext4_filsys(struct sbd_ext4 *fs);
int64_t sbd_ext4_now(const struct sbd_ext4 *fs);

struct sbd_time {
  int64_t sec;
  uint32_t nsec;
};

/* What an inode says about itself; mode includes the S_IFMT type bits. */
struct sbd_attrs {
  uint32_t mode;
  uint32_t uid;
  uint32_t gid;
  struct sbd_time atime;
  struct sbd_time mtime;
};

int sbd_ext4_alloc_inode(struct sbd_ext4 *fs, bool is_dir, ext2_ino_t *ino, sbd_error_t *err);

/* Regular files: data is streamed in; all-zero blocks are left as holes. */
struct sbd_ext4_file;
int sbd_ext4_file_open(struct sbd_ext4 *fs, ext2_ino_t ino, struct sbd_ext4_file **out,
                       sbd_error_t *err);
int sbd_ext4_file_write(struct sbd_ext4_file *f, const void *data, size_t len, sbd_error_t *err);
/* The same for the file's last bytes: nothing may be written after them.
 * When they start on a block boundary, the last, partial block goes straight
 * to the write buffer, zero-padded there, instead of through the file's
 * chunk first: small files are copied once, not twice. */
int sbd_ext4_file_write_last(struct sbd_ext4_file *f, const void *data, size_t len,
                             sbd_error_t *err);
/* Flushes, builds the extent tree and writes the inode (one link).  Frees f. */
int sbd_ext4_file_close(struct sbd_ext4_file *f, const struct sbd_attrs *a, sbd_error_t *err);
/* Releases the blocks written so far and frees f (the inode stays allocated). */
void sbd_ext4_file_abort(struct sbd_ext4_file *f);

int sbd_ext4_write_symlink(struct sbd_ext4 *fs, ext2_ino_t ino, const char *target, size_t len,
                           const struct sbd_attrs *a, sbd_error_t *err);
/* Character and block devices (with rdev), fifos and sockets. */
int sbd_ext4_write_special(struct sbd_ext4 *fs, ext2_ino_t ino, const struct sbd_attrs *a,
                           uint32_t major, uint32_t minor, sbd_error_t *err);

struct sbd_dirent {
  const char *name;
  size_t name_len;
  ext2_ino_t ino;
  uint8_t file_type; /* EXT2_FT_* */
};
/* Writes a whole directory: "." and ".." then ents, in order; nsubdirs sets
 * the link count (dir_nlink: 1 beyond the ext4 maximum). */
int sbd_ext4_write_dir(struct sbd_ext4 *fs, ext2_ino_t ino, ext2_ino_t parent,
                       const struct sbd_dirent *ents, size_t n, size_t nsubdirs,
                       const struct sbd_attrs *a, sbd_error_t *err);

/* Sets permission bits (the type is kept), owner and times of an inode. */
int sbd_ext4_set_attrs(struct sbd_ext4 *fs, ext2_ino_t ino, const struct sbd_attrs *a,
                       sbd_error_t *err);
/* Adds delta to the link count of a non-directory; at zero the inode, its
 * blocks and its xattr block are released. */
int sbd_ext4_adjust_links(struct sbd_ext4 *fs, ext2_ino_t ino, int delta, sbd_error_t *err);
/* Releases a directory inode (blocks never written: just the number). */
void sbd_ext4_release_dir_inode(struct sbd_ext4 *fs, ext2_ino_t ino);

int sbd_ext4_xattr_set(struct sbd_ext4 *fs, ext2_ino_t ino, const char *key, const void *value,
                       size_t len, sbd_error_t *err);
int sbd_ext4_xattr_remove(struct sbd_ext4 *fs, ext2_ino_t ino, const char *key, sbd_error_t *err);
typedef int (*sbd_xattr_fn)(const char *key, const void *value, size_t len, void *opaque);
int sbd_ext4_xattr_list(struct sbd_ext4 *fs, ext2_ino_t ino, sbd_xattr_fn fn, void *opaque,
                        sbd_error_t *err);

/* Reading what is already written. *ino = 0 when the name is absent. */
int sbd_ext4_lookup(struct sbd_ext4 *fs, ext2_ino_t dir, const char *name, size_t len,
                    ext2_ino_t *ino, sbd_error_t *err);
int sbd_ext4_stat(struct sbd_ext4 *fs, ext2_ino_t ino, struct sbd_attrs *a, sbd_error_t *err);
int sbd_ext4_readlink(struct sbd_ext4 *fs, ext2_ino_t ino, char **target, sbd_error_t *err);

/* Adds an entry to the root directory made at format time. */
int sbd_ext4_link_root(struct sbd_ext4 *fs, const char *name, ext2_ino_t ino, uint8_t file_type,
                       sbd_error_t *err);

/* EXT2_FT_* for a mode's type bits. */
uint8_t sbd_ext4_file_type(uint32_t mode);

/* An error from libext2fs as an sbd_error ("what: message"); out-of-space
 * codes get SBD_EXIT_NOSPACE. */
int sbd_ext4_error(sbd_error_t *err, errcode_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif

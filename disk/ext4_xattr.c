/* Extended attributes through libext2fs's xattr handles (in-inode space
 * first, then one xattr block), which also converts POSIX ACLs between the
 * kernel's xattr format and ext4's on-disk one. */
#include <string.h>

#include "ext4_private.h"
#include "lib/util.h"

static void handle_close(struct ext2_xattr_handle **h)
{
  if (*h)
    ext2fs_xattrs_close(h);
}

#define cleanup_xattr_handle __attribute__((cleanup(handle_close)))

static int handle_open(struct sbd_ext4 *fs, ext2_ino_t ino, struct ext2_xattr_handle **h,
                       sbd_error_t *err)
{
  errcode_t e = ext2fs_xattrs_open(fs->fs, ino, h);
  if (!e)
    e = ext2fs_xattrs_read(*h);
  if (e)
    return sbd_ext4_error(err, e, "reading the xattrs of inode %u", ino);
  return 0;
}

int sbd_ext4_xattr_set(struct sbd_ext4 *fs, ext2_ino_t ino, const char *key, const void *value,
                       size_t len, sbd_error_t *err)
{
  cleanup_xattr_handle struct ext2_xattr_handle *h = NULL;
  if (handle_open(fs, ino, &h, err) < 0)
    return -1;
  errcode_t e = ext2fs_xattr_set(h, key, value, len);
  if (e)
    return sbd_ext4_error(err, e, "setting xattr %s", key);
  return 0;
}

int sbd_ext4_xattr_remove(struct sbd_ext4 *fs, ext2_ino_t ino, const char *key, sbd_error_t *err)
{
  cleanup_xattr_handle struct ext2_xattr_handle *h = NULL;
  if (handle_open(fs, ino, &h, err) < 0)
    return -1;
  errcode_t e = ext2fs_xattr_remove(h, key);
  if (e && e != EXT2_ET_EA_KEY_NOT_FOUND)
    return sbd_ext4_error(err, e, "removing xattr %s", key);
  return 0;
}

struct list_ctx {
  sbd_xattr_fn fn;
  void *opaque;
  int ret;
};

static int list_one(char *name, char *value, size_t len, void *data)
{
  struct list_ctx *c = data;
  c->ret = c->fn(name, value, len, c->opaque);
  return c->ret < 0 ? XATTR_ABORT : 0;
}

int sbd_ext4_xattr_list(struct sbd_ext4 *fs, ext2_ino_t ino, sbd_xattr_fn fn, void *opaque,
                        sbd_error_t *err)
{
  cleanup_xattr_handle struct ext2_xattr_handle *h = NULL;
  if (handle_open(fs, ino, &h, err) < 0)
    return -1;
  struct list_ctx c = {.fn = fn, .opaque = opaque, .ret = 0};
  errcode_t e = ext2fs_xattrs_iterate(h, list_one, &c);
  if (e)
    return sbd_ext4_error(err, e, "listing the xattrs of inode %u", ino);
  return c.ret;
}

/* Parent directories a layer's tar never names (containerd's mkparent): made
 * 0755 root-owned in a first layer; in later layers copied up from the
 * nearest lower snapshot that has the directory: its owner, mode and xattrs
 * (but not trusted.*), resolved inside that lower snapshot alone. */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "layer_private.h"
#include "lib/util.h"

struct lower_ctx {
  struct sbd_ext4 *fs;
};

static int lower_lookup(void *ctx, uintptr_t dir, const char *name, size_t len, uintptr_t *child,
                        enum sbd_kind *kind, sbd_error_t *err)
{
  struct lower_ctx *l = ctx;
  ext2_ino_t ino;
  if (sbd_ext4_lookup(l->fs, (ext2_ino_t)dir, name, len, &ino, err) < 0)
    return -1;
  *child = ino;
  if (ino == 0) {
    *kind = SBD_KIND_ABSENT;
    return 0;
  }
  struct sbd_attrs st;
  if (sbd_ext4_stat(l->fs, ino, &st, err) < 0)
    return -1;
  *kind = S_ISDIR(st.mode) ? SBD_KIND_DIR : S_ISLNK(st.mode) ? SBD_KIND_SYMLINK : SBD_KIND_OTHER;
  return 0;
}

static int lower_readlink(void *ctx, uintptr_t node, char **target, sbd_error_t *err)
{
  struct lower_ctx *l = ctx;
  return sbd_ext4_readlink(l->fs, (ext2_ino_t)node, target, err);
}

static int copy_xattr(const char *key, const void *value, size_t len, void *opaque)
{
  if (strncmp(key, "trusted.", 8) == 0)
    return 0;
  sbd_xattrs_set(opaque, key, value, len);
  return 0;
}

/* Fills the attributes of a new parent directory at p[0..n) from the lowers. */
static int copy_up(struct applier *a, const struct sbd_path *p, size_t n, struct sbd_node *node,
                   sbd_error_t *err)
{
  struct sbd_path prefix = {0};
  for (size_t i = 0; i < n; i++)
    sbd_path_push(&prefix, p->comp[i], p->len[i]);
  cleanup_free char *rel = sbd_path_string(&prefix);
  sbd_path_free(&prefix);

  struct lower_ctx l = {.fs = a->fs};
  for (size_t k = 0; k < a->p->n_lowers; k++) {
    struct sbd_resolve_ops ops = {
        .lookup = lower_lookup, .readlink = lower_readlink, .root = a->p->lowers[k]};
    struct sbd_path out = {0};
    uintptr_t ino;
    enum sbd_kind kind;
    int r = sbd_path_resolve(&ops, &l, rel, true, &out, &ino, &kind, err);
    sbd_path_free(&out);
    if (r < 0)
      return sbd_error_prefix(err, "copying up %s from a lower layer: ", rel);
    if (kind == SBD_KIND_ABSENT)
      continue;
    if (kind != SBD_KIND_DIR)
      return 0; /* replaced below: keep the defaults */
    struct sbd_attrs st;
    if (sbd_ext4_stat(a->fs, (ext2_ino_t)ino, &st, err) < 0)
      return -1;
    node->u.dir->attrs.mode = S_IFDIR | (st.mode & 07777);
    node->u.dir->attrs.uid = st.uid;
    node->u.dir->attrs.gid = st.gid;
    node->u.dir->attrs.atime = st.atime;
    node->u.dir->attrs.mtime = st.mtime;
    node->mode = (uint16_t)node->u.dir->attrs.mode;
    return sbd_ext4_xattr_list(a->fs, (ext2_ino_t)ino, copy_xattr, &node->u.dir->xattrs, err);
  }
  return 0;
}

int applier_mkparent(struct applier *a, const struct sbd_path *p, struct sbd_node **dir,
                     sbd_error_t *err)
{
  struct sbd_node *cur = a->tree->root;
  for (size_t i = 0; i < p->n; i++) {
    struct sbd_node *child = sbd_tree_lookup(a->tree, cur, p->comp[i], p->len[i]);
    if (child) {
      if (!sbd_node_is_dir(child)) {
        cleanup_free char *where = applier_node_path(child);
        return sbd_error_set(err, SBD_EXIT_IMAGE, ENOTDIR, "parent %s", where);
      }
      cur = child;
      continue;
    }
    /* containerd's MkdirAll fails here, and the tree keeps no longer name */
    if (p->len[i] > EXT2_NAME_LEN)
      return sbd_error_set(err, SBD_EXIT_IMAGE, ENAMETOOLONG,
                           "a directory name of %zu bytes is longer than ext4's %d", p->len[i],
                           EXT2_NAME_LEN);
    uint32_t ino;
    if (sbd_ext4_alloc_inode(a->fs, true, &ino, err) < 0)
      return -1;
    child = sbd_tree_add(a->tree, cur, p->comp[i], p->len[i], S_IFDIR | 0755, ino);
    child->u.dir->attrs = (struct sbd_attrs){
        .mode = S_IFDIR | 0755, .uid = 0, .gid = 0, .atime = a->now, .mtime = a->now};
    applier_touch(a, cur);
    if (a->overlay && copy_up(a, p, i + 1, child, err) < 0)
      return -1;
    cur = child;
  }
  *dir = cur;
  return 0;
}

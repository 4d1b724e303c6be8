/* The entry loop of a layer: one tar header at a time, as containerd's
 * applyNaive does it (see layer.h for the rules). */
#include "layer_private.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "lib/util.h"

#define DATA_BUF (1u << 20)
#define WHITEOUT_PREFIX ".wh."
#define WHITEOUT_OPAQUE ".wh..wh..opq"

/* --- the tree as a resolvable filesystem -------------------------------- */

static enum sbd_kind kind_of(uint32_t mode)
{
  switch (mode & S_IFMT) {
  case S_IFDIR:
    return SBD_KIND_DIR;
  case S_IFLNK:
    return SBD_KIND_SYMLINK;
  default:
    return SBD_KIND_OTHER;
  }
}

static int tree_lookup(void *ctx, uintptr_t dir, const char *name, size_t len, uintptr_t *child,
                       enum sbd_kind *kind, sbd_error_t *err)
{
  (void)err;
  struct applier *a = ctx;
  struct sbd_node *n = sbd_tree_lookup(a->tree, (struct sbd_node *)dir, name, len);
  *child = (uintptr_t)n;
  *kind = n ? kind_of(n->mode) : SBD_KIND_ABSENT;
  return 0;
}

static int tree_readlink(void *ctx, uintptr_t node, char **target, sbd_error_t *err)
{
  (void)ctx;
  (void)err;
  *target = xstrdup(sbd_node_link_target((struct sbd_node *)node));
  return 0;
}

struct sbd_resolve_ops applier_tree_ops(struct applier *a)
{
  return (struct sbd_resolve_ops){
      .lookup = tree_lookup, .readlink = tree_readlink, .root = (uintptr_t)a->tree->root};
}

struct sbd_node *applier_node_at(struct applier *a, const struct sbd_path *p, size_t n)
{
  struct sbd_node *cur = a->tree->root;
  for (size_t i = 0; i < n && cur; i++)
    cur = sbd_tree_lookup(a->tree, cur, p->comp[i], p->len[i]);
  return cur;
}

char *applier_node_path(const struct sbd_node *n)
{
  size_t len = 0;
  for (const struct sbd_node *c = n; c->parent; c = c->parent)
    len += c->name_len + 1;
  if (len == 0)
    return xstrdup("");
  char *s = xmalloc(len);
  size_t end = len - 1;
  s[end] = '\0';
  for (const struct sbd_node *c = n; c->parent; c = c->parent) {
    end -= c->name_len;
    memcpy(s + end, c->name, c->name_len);
    if (end > 0)
      s[--end] = '/';
  }
  return s;
}

void applier_touch(struct applier *a, struct sbd_node *dir)
{
  dir->u.dir->attrs.mtime = a->now;
}

/* containerd's unpackedPaths holds names, not files: a name stays "unpacked"
 * after what it named is removed, even if a later entry makes a parent
 * directory of that name.  The flag on the node answers for what exists; the
 * names of unpacked nodes that were removed are kept here. */
bool applier_was_unpacked(struct applier *a, const struct sbd_node *n)
{
  if (n->unpacked)
    return true;
  if (a->removed_unpacked.count == 0)
    return false;
  cleanup_free char *path = applier_node_path(n);
  return sbd_strset_has(&a->removed_unpacked, path);
}

static int release_node(struct sbd_node *n, void *opaque, sbd_error_t *err)
{
  struct applier *a = opaque;
  if (n->unpacked && !a->overlay) {
    cleanup_free char *path = applier_node_path(n);
    sbd_strset_add(&a->removed_unpacked, path);
  }
  if (sbd_node_is_dir(n)) {
    sbd_ext4_release_dir_inode(a->fs, n->ino);
    return 0;
  }
  return sbd_ext4_adjust_links(a->fs, n->ino, -1, err);
}

int applier_remove(struct applier *a, struct sbd_node *n, sbd_error_t *err)
{
  applier_touch(a, n->parent);
  sbd_hasher_wait(a->hasher); /* no md5 may land in a node once it is freed */
  return sbd_tree_remove(a->tree, n, release_node, a, err);
}

/* --- attributes from the header --------------------------------------- */

/* containerd's boundTime: times before 1970 (or absurdly far) become 0. */
static struct sbd_time bound_time(int64_t sec, long nsec)
{
  if (sec < 0)
    return (struct sbd_time){0, 0};
  return (struct sbd_time){sec, (uint32_t)nsec};
}

static bool time_before(struct sbd_time x, struct sbd_time y)
{
  return x.sec < y.sec || (x.sec == y.sec && x.nsec < y.nsec);
}

struct header {
  const char *raw_name;
  uint32_t uid, gid;
  uint32_t perm; /* 07777 bits */
  struct sbd_time atime, mtime;
};

static int header_read(struct archive_entry *e, struct header *h, sbd_error_t *err)
{
  la_int64_t uid = archive_entry_uid(e), gid = archive_entry_gid(e);
  if (uid < 0 || uid > 0xfffffffe || gid < 0 || gid > 0xfffffffe)
    return sbd_error_set(err, SBD_EXIT_IMAGE, 0, "owner %lld:%lld is not a valid uid:gid",
                         (long long)uid, (long long)gid);
  h->uid = (uint32_t)uid;
  h->gid = (uint32_t)gid;
  h->perm = archive_entry_perm(e) & 07777;
  struct sbd_time mtime = {0, 0}, atime = {0, 0};
  if (archive_entry_mtime_is_set(e))
    mtime = bound_time(archive_entry_mtime(e), archive_entry_mtime_nsec(e));
  if (archive_entry_atime_is_set(e))
    atime = bound_time(archive_entry_atime(e), archive_entry_atime_nsec(e));
  /* latestTime(atime, mtime): a missing or older atime becomes the mtime. */
  h->mtime = mtime;
  h->atime = time_before(atime, mtime) ? mtime : atime;
  return 0;
}

static struct sbd_attrs header_attrs(const struct header *h, uint32_t type)
{
  return (struct sbd_attrs){.mode = type | h->perm,
                            .uid = h->uid,
                            .gid = h->gid,
                            .atime = h->atime,
                            .mtime = h->mtime};
}

/* What containerd's setxattr loop does with one SCHILY.xattr record. */
enum xattr_action { XATTR_SET, XATTR_SKIP, XATTR_REFUSE };

static bool has_prefix(const char *s, const char *prefix)
{
  return strncmp(s, prefix, strlen(prefix)) == 0;
}

static bool valid_capability(const void *value, size_t len)
{
  /* The kernel accepts revision 2 (20 bytes) and 3 (24 bytes) only. */
  if (len != 20 && len != 24)
    return false;
  uint32_t magic;
  memcpy(&magic, value, sizeof(magic));
  magic = le32toh(magic) & 0xff000000u;
  return (len == 20 && magic == 0x02000000u) || (len == 24 && magic == 0x03000000u);
}

static enum xattr_action xattr_policy(const char *key, uint32_t type, const void *value, size_t len,
                                      const char **why)
{
  if (has_prefix(key, "trusted."))
    return XATTR_SKIP; /* "admin attributes from archive not supported" */
  if (has_prefix(key, "user."))
    return type == S_IFREG || type == S_IFDIR ? XATTR_SET : XATTR_SKIP;
  if (strcmp(key, "security.capability") == 0) {
    if (!valid_capability(value, len)) {
      *why = "is not a valid file capability (the kernel refuses it)";
      return XATTR_REFUSE;
    }
    return XATTR_SET;
  }
  if (has_prefix(key, "security."))
    return XATTR_SET;
  if (strcmp(key, "system.posix_acl_access") == 0)
    return type == S_IFLNK ? XATTR_SKIP : XATTR_SET;
  if (strcmp(key, "system.posix_acl_default") == 0) {
    if (type == S_IFLNK)
      return XATTR_SKIP;
    if (type != S_IFDIR) {
      *why = "is a default ACL on something that is not a directory (the kernel refuses it)";
      return XATTR_REFUSE;
    }
    return XATTR_SET;
  }
  return XATTR_SKIP; /* other namespaces: not supported by ext4, ignored */
}

/* Applies the header's xattrs to a node: kept in memory for directories,
 * written at once for the others. */
static int apply_xattrs(struct applier *a, struct archive_entry *e, struct sbd_node *n,
                        sbd_error_t *err)
{
  const char *key;
  const void *value;
  size_t len;
  uint32_t type = n->mode & S_IFMT;
  archive_entry_xattr_reset(e);
  while (archive_entry_xattr_next(e, &key, &value, &len) == ARCHIVE_OK) {
    const char *why = NULL;
    switch (xattr_policy(key, type, value, len, &why)) {
    case XATTR_SKIP:
      continue;
    case XATTR_REFUSE:
      return sbd_error_set(err, SBD_EXIT_IMAGE, 0, "xattr %s %s", key, why);
    case XATTR_SET:
      break;
    }
    if (sbd_node_is_dir(n))
      sbd_xattrs_set(&n->u.dir->xattrs, key, value, len);
    else if (sbd_ext4_xattr_set(a->fs, n->ino, key, value, len, err) < 0)
      return -1;
  }
  return 0;
}

/* --- creating entries ---------------------------------------------------- */

static int create_dir(struct applier *a, struct sbd_node *parent, const char *base,
                      struct sbd_node *existing, const struct header *h, struct sbd_node **out,
                      sbd_error_t *err)
{
  struct sbd_node *n = existing;
  if (n == NULL) {
    uint32_t ino;
    if (sbd_ext4_alloc_inode(a->fs, true, &ino, err) < 0)
      return -1;
    n = sbd_tree_add(a->tree, parent, base, strlen(base), S_IFDIR | h->perm, ino);
    applier_touch(a, parent);
  }
  /* chown, chmod, chtimes: a merged directory takes the header's attributes. */
  n->u.dir->attrs = header_attrs(h, S_IFDIR);
  *out = n;
  return 0;
}

/* Appends len bytes to the file and to its md5. */
static int file_append(struct applier *a, struct sbd_ext4_file *f, const void *data, size_t len,
                       bool last, sbd_error_t *err)
{
  sbd_hasher_update(a->hasher, data, len);
  return last ? sbd_ext4_file_write_last(f, data, len, err) : sbd_ext4_file_write(f, data, len, err);
}

/* The holes of a sparse tar entry read as zeros, as Go's tar reader gives
 * them to containerd; all-zero blocks are not stored anyway. */
static int file_append_zeros(struct applier *a, struct sbd_ext4_file *f, uint64_t len,
                             sbd_error_t *err)
{
  memset(a->buf, 0, DATA_BUF);
  while (len > 0) {
    size_t n = len < DATA_BUF ? (size_t)len : DATA_BUF;
    if (file_append(a, f, a->buf, n, false, err) < 0)
      return -1;
    len -= n;
  }
  return 0;
}

/* The entry's data goes from libarchive's buffers (the decoder's, for a
 * plain tar entry) straight to the file: no copy on the way. */
static int file_copy_data(struct applier *a, struct archive *ar, struct archive_entry *e,
                          struct sbd_ext4_file *f, uint64_t *out_size, sbd_error_t *err)
{
  uint64_t size = 0;
  la_int64_t want = archive_entry_size_is_set(e) ? archive_entry_size(e) : 0;
  for (;;) {
    const void *block;
    size_t len;
    la_int64_t offset;
    int r = archive_read_data_block(ar, &block, &len, &offset);
    if (r == ARCHIVE_EOF)
      break;
    if (r != ARCHIVE_OK)
      return sbd_error_set(err, SBD_EXIT_IMAGE, 0, "%s", archive_error_string(ar));
    if (offset < 0 || (uint64_t)offset < size)
      return sbd_error_set(err, SBD_EXIT_IMAGE, 0, "sparse file map goes backwards");
    if ((uint64_t)offset > size && file_append_zeros(a, f, (uint64_t)offset - size, err) < 0)
      return -1;
    bool last = want > 0 && (uint64_t)offset + len == (uint64_t)want;
    if (file_append(a, f, block, len, last, err) < 0)
      return -1;
    size = (uint64_t)offset + len;
  }
  /* a sparse entry may end in a hole */
  if (want > 0 && (uint64_t)want > size) {
    if (file_append_zeros(a, f, (uint64_t)want - size, err) < 0)
      return -1;
    size = (uint64_t)want;
  }
  *out_size = size;
  return 0;
}

static int create_file(struct applier *a, struct archive *ar, struct archive_entry *e,
                       struct sbd_node *parent, const char *base, const struct header *h,
                       struct sbd_node **out, sbd_error_t *err)
{
  uint32_t ino;
  if (sbd_ext4_alloc_inode(a->fs, false, &ino, err) < 0)
    return -1;
  struct sbd_ext4_file *f;
  if (sbd_ext4_file_open(a->fs, ino, &f, err) < 0)
    return -1;
  uint64_t size = 0;
  if (file_copy_data(a, ar, e, f, &size, err) < 0) {
    sbd_ext4_file_abort(f);
    return -1;
  }
  struct sbd_attrs attrs = header_attrs(h, S_IFREG);
  if (sbd_ext4_file_close(f, &attrs, err) < 0)
    return -1;
  struct sbd_node *n = sbd_tree_add(a->tree, parent, base, strlen(base), S_IFREG | h->perm, ino);
  sbd_hasher_final(a->hasher, n->u.file.md5);
  n->has_md5 = true;
  n->u.file.size = size;
  applier_touch(a, parent);
  *out = n;
  return 0;
}

static int create_symlink(struct applier *a, struct archive_entry *e, struct sbd_node *parent,
                          const char *base, const struct header *h, struct sbd_node **out,
                          sbd_error_t *err)
{
  const char *target = archive_entry_symlink(e);
  if (target == NULL || target[0] == '\0')
    return sbd_error_set(err, SBD_EXIT_IMAGE, ENOENT, "symlink without a target");
  uint32_t ino;
  if (sbd_ext4_alloc_inode(a->fs, false, &ino, err) < 0)
    return -1;
  struct sbd_attrs attrs = header_attrs(h, S_IFLNK);
  attrs.mode = S_IFLNK | 0777; /* lchmod does not apply to symlinks */
  if (sbd_ext4_write_symlink(a->fs, ino, target, strlen(target), &attrs, err) < 0)
    return -1;
  struct sbd_node *n = sbd_tree_add(a->tree, parent, base, strlen(base), S_IFLNK | 0777, ino);
  n->u.link_target = xstrdup(target);
  applier_touch(a, parent);
  *out = n;
  return 0;
}

static int create_special(struct applier *a, struct archive_entry *e, struct sbd_node *parent,
                          const char *base, uint32_t type, const struct header *h,
                          struct sbd_node **out, sbd_error_t *err)
{
  uint32_t ino;
  if (sbd_ext4_alloc_inode(a->fs, false, &ino, err) < 0)
    return -1;
  struct sbd_attrs attrs = header_attrs(h, type);
  uint32_t major = 0, minor = 0;
  if (type == S_IFCHR || type == S_IFBLK) {
    major = (uint32_t)archive_entry_rdevmajor(e);
    minor = (uint32_t)archive_entry_rdevminor(e);
  }
  if (sbd_ext4_write_special(a->fs, ino, &attrs, major, minor, err) < 0)
    return -1;
  *out = sbd_tree_add(a->tree, parent, base, strlen(base), type | h->perm, ino);
  applier_touch(a, parent);
  return 0;
}

/* containerd's hardlinkRootPath + os.Link: the target's directory is resolved
 * inside the layer; a target outside it becomes the root (and fails). */
static int create_hardlink(struct applier *a, struct archive_entry *e, struct sbd_node *parent,
                           const char *base, const struct header *h, struct sbd_node **out,
                           sbd_error_t *err)
{
  const char *linkname = archive_entry_hardlink(e);
  const char *slash = strrchr(linkname, '/');
  cleanup_free char *ldir = xstrndup(linkname, slash ? (size_t)(slash - linkname + 1) : 0);
  const char *lbase = slash ? slash + 1 : linkname;
  struct sbd_resolve_ops ops = applier_tree_ops(a);
  struct sbd_path lp = {0};
  uintptr_t node;
  enum sbd_kind kind;
  if (sbd_path_resolve(&ops, a, ldir, true, &lp, &node, &kind, err) < 0) {
    sbd_path_free(&lp);
    return sbd_error_prefix(err, "hard link target %s: ", linkname);
  }
  /* Join(dir, base) cleans lexically: ".." in the base climbs, at most to the root. */
  cleanup_free char *dirstr = sbd_path_string(&lp);
  cleanup_free char *joined = xasprintf("%s/%s", dirstr, lbase);
  sbd_path_free(&lp);
  sbd_path_parse(joined, &lp);
  struct sbd_node *target = lp.n ? applier_node_at(a, &lp, lp.n) : NULL;
  bool at_root = lp.n == 0;
  sbd_path_free(&lp);
  if (at_root || (target && sbd_node_is_dir(target)))
    return sbd_error_set(err, SBD_EXIT_IMAGE, EPERM, "hard link to directory %s", linkname);
  if (target == NULL)
    return sbd_error_set(err, SBD_EXIT_IMAGE, ENOENT, "hard link target %s", linkname);

  if (sbd_ext4_adjust_links(a->fs, target->ino, +1, err) < 0)
    return -1;
  struct sbd_node *n = sbd_tree_add(a->tree, parent, base, strlen(base), target->mode, target->ino);
  if (target->has_md5) {
    n->u.file.size = target->u.file.size;
    n->has_md5 = true;
    /* the target's md5 may still be on its way */
    sbd_hasher_copy(a->hasher, target->u.file.md5, n->u.file.md5);
  } else if ((target->mode & S_IFMT) == S_IFLNK) {
    n->u.link_target = xstrdup(target->u.link_target);
  }
  applier_touch(a, parent);

  /* The link's header then applies to the shared inode: chown (which, on a
   * non-directory, drops security.capability as the kernel does), xattrs,
   * chmod (not on symlinks), times. */
  struct sbd_attrs attrs = header_attrs(h, n->mode & S_IFMT);
  if ((n->mode & S_IFMT) == S_IFLNK)
    attrs.mode = S_IFLNK | 0777;
  if (sbd_ext4_set_attrs(a->fs, n->ino, &attrs, err) < 0)
    return -1;
  if (sbd_ext4_xattr_remove(a->fs, n->ino, "security.capability", err) < 0)
    return -1;
  *out = n;
  return 0;
}

/* --- whiteouts ------------------------------------------------------------ */

/* filepath.Walk of the opaque directory in a first layer: everything this
 * layer did not unpack itself goes. */
static int remove_not_unpacked(struct applier *a, struct sbd_node *dir, sbd_error_t *err)
{
  struct sbd_node *c = sbd_node_first_child(dir);
  while (c) {
    struct sbd_node *next = c->next;
    if (!applier_was_unpacked(a, c)) {
      if (applier_remove(a, c, err) < 0)
        return -1;
    } else if (sbd_node_is_dir(c) && remove_not_unpacked(a, c, err) < 0) {
      return -1;
    }
    c = next;
  }
  return 0;
}

/* Returns 1 when the entry was a whiteout (and is fully handled). */
static int handle_whiteout(struct applier *a, struct sbd_node *dir, const char *base,
                           const struct header *h, sbd_error_t *err)
{
  if (strcmp(base, WHITEOUT_OPAQUE) == 0) {
    if (a->overlay) {
      sbd_xattrs_set(&dir->u.dir->xattrs, "trusted.overlay.opaque", "y", 1);
      return 1;
    }
    return remove_not_unpacked(a, dir, err) < 0 ? -1 : 1;
  }
  if (!has_prefix(base, WHITEOUT_PREFIX))
    return 0;
  const char *orig = base + strlen(WHITEOUT_PREFIX);
  if (orig[0] == '\0' || strcmp(orig, ".") == 0 || strcmp(orig, "..") == 0)
    return sbd_error_set(err, SBD_EXIT_IMAGE, 0, "invalid whiteout name %s", base);
  struct sbd_node *victim = sbd_tree_lookup(a->tree, dir, orig, strlen(orig));
  if (!a->overlay) {
    if (victim && applier_remove(a, victim, err) < 0)
      return -1;
    return 1;
  }
  /* mknod fails when the name exists in this same layer: containerd refuses
   * the layer, and so do we. */
  if (victim)
    return sbd_error_set(err, SBD_EXIT_IMAGE, EEXIST,
                         "whiteout %s for an entry the same layer created", base);
  uint32_t ino;
  if (sbd_ext4_alloc_inode(a->fs, false, &ino, err) < 0)
    return -1;
  struct sbd_attrs attrs = {
      .mode = S_IFCHR, .uid = h->uid, .gid = h->gid, .atime = a->now, .mtime = a->now};
  if (sbd_ext4_write_special(a->fs, ino, &attrs, 0, 0, err) < 0)
    return -1;
  sbd_tree_add(a->tree, dir, orig, strlen(orig), S_IFCHR, ino);
  applier_touch(a, dir);
  return 1;
}

/* --- one entry ------------------------------------------------------------ */

static int entry_type(struct archive_entry *e, uint32_t *type, bool *hardlink, sbd_error_t *err)
{
  *hardlink = archive_entry_hardlink(e) != NULL;
  switch (archive_entry_filetype(e)) {
  case AE_IFREG:
  case AE_IFDIR:
  case AE_IFLNK:
  case AE_IFCHR:
  case AE_IFBLK:
  case AE_IFIFO:
    *type = archive_entry_filetype(e);
    return 0;
  default:
    if (*hardlink) {
      *type = AE_IFREG;
      return 0;
    }
    return sbd_error_set(err, SBD_EXIT_IMAGE, 0, "unsupported tar entry type (mode %o)",
                         (unsigned)archive_entry_mode(e));
  }
}

/* ext4 holds names of up to 255 bytes, and containerd's own mkdir, open or
 * mknod fails on a longer one (ENAMETOOLONG): refused here, where the entry
 * is known, rather than when its directory is written at the end (a parent
 * directory's name is checked where it would be made, applier_mkparent).  A
 * whiteout creates only the name it hides. */
static int check_name_length(const char *base, sbd_error_t *err)
{
  const char *made = base;
  if (has_prefix(base, WHITEOUT_PREFIX) && strcmp(base, WHITEOUT_OPAQUE) != 0)
    made = base + strlen(WHITEOUT_PREFIX);
  if (strlen(made) > EXT2_NAME_LEN)
    return sbd_error_set(err, SBD_EXIT_IMAGE, ENAMETOOLONG,
                         "a file name of %zu bytes is longer than ext4's %d", strlen(made),
                         EXT2_NAME_LEN);
  return 0;
}

static void parent_cache_clear(struct parent_cache *c)
{
  free(c->pdir);
  c->pdir = NULL;
  sbd_path_free(&c->path);
  c->dir = NULL;
}

/* Whether the resolved components are pdir's own ("a/b/" and a, b): then
 * no symlink took part in resolving it. */
static bool path_is_literal(const struct sbd_path *p, const char *pdir, size_t len)
{
  size_t i = 0, pos = 0;
  while (pos < len) {
    const char *end = memchr(pdir + pos, '/', len - pos);
    size_t n = end ? (size_t)(end - (pdir + pos)) : len - pos;
    if (i == p->n || p->len[i] != n || memcmp(p->comp[i], pdir + pos, n) != 0)
      return false;
    i++;
    pos += n + 1;
  }
  return i == p->n;
}

/* The directory that the first len bytes of name (the cleaned name up to
 * its last '/') resolve to, made with its missing parents when needed; its
 * resolved path stays in a->parent.path for the caller. */
static int parent_resolve(struct applier *a, const char *name, size_t len, struct sbd_node **dir,
                          sbd_error_t *err)
{
  struct parent_cache *c = &a->parent;
  if (c->pdir && strlen(c->pdir) == len && memcmp(c->pdir, name, len) == 0) {
    *dir = c->dir;
    return 0;
  }
  parent_cache_clear(c);
  cleanup_free char *pdir = xstrndup(name, len);
  uintptr_t pnode;
  enum sbd_kind pkind;
  struct sbd_resolve_ops ops = applier_tree_ops(a);
  if (sbd_path_resolve(&ops, a, pdir, true, &c->path, &pnode, &pkind, err) < 0)
    return -1;
  *dir = a->tree->root;
  if (c->path.n > 0 && applier_mkparent(a, &c->path, dir, err) < 0)
    return -1;
  if (path_is_literal(&c->path, pdir, len)) {
    c->pdir = steal_pointer(&pdir);
    c->dir = *dir;
  }
  return 0;
}

static int apply_entry(struct applier *a, struct archive *ar, struct archive_entry *e,
                       sbd_error_t *err)
{
  struct header h = {.raw_name = archive_entry_pathname(e)};
  if (h.raw_name == NULL)
    return sbd_error_set(err, SBD_EXIT_IMAGE, 0, "tar entry without a usable name");
  uint32_t type = 0;
  bool hardlink = false;
  if (entry_type(e, &type, &hardlink, err) < 0 || header_read(e, &h, err) < 0)
    return -1;

  cleanup_free char *name = sbd_path_clean(h.raw_name);
  char *slash = strrchr(name, '/');
  const char *base = slash ? slash + 1 : name;
  struct sbd_node *dir;
  if (parent_resolve(a, name, slash ? (size_t)(slash - name + 1) : 0, &dir, err) < 0)
    return -1;
  /* After Clean, a base of "." or ".." only remains when the whole name
   * resolves to the root: containerd skips such entries. */
  if (strcmp(base, ".") == 0 || strcmp(base, "..") == 0 || base[0] == '\0')
    return 0;
  if (check_name_length(base, err) < 0)
    return -1;

  int wh = handle_whiteout(a, dir, base, &h, err);
  if (wh != 0)
    return wh < 0 ? -1 : 0;

  struct sbd_node *existing = sbd_tree_lookup(a->tree, dir, base, strlen(base));
  bool merge = existing && sbd_node_is_dir(existing) && type == AE_IFDIR && !hardlink;
  if (existing && !merge) {
    if (applier_remove(a, existing, err) < 0)
      return -1;
    existing = NULL;
  }

  struct sbd_node *n = NULL;
  int ret;
  if (hardlink)
    ret = create_hardlink(a, e, dir, base, &h, &n, err);
  else if (type == AE_IFDIR)
    ret = create_dir(a, dir, base, existing, &h, &n, err);
  else if (type == AE_IFREG)
    ret = create_file(a, ar, e, dir, base, &h, &n, err);
  else if (type == AE_IFLNK)
    ret = create_symlink(a, e, dir, base, &h, &n, err);
  else
    ret = create_special(a, e, dir, base, type, &h, &n, err);
  if (ret < 0 || apply_xattrs(a, e, n, err) < 0)
    return -1;

  if (type == AE_IFDIR && !hardlink) {
    if (a->n_dir_times == a->cap_dir_times) { /* doubling: a layer may hold 100,000s */
      a->cap_dir_times = a->cap_dir_times ? 2 * a->cap_dir_times : 64;
      a->dir_times = xrealloc(a->dir_times, a->cap_dir_times * sizeof(*a->dir_times));
    }
    a->dir_times[a->n_dir_times++] =
        (struct dir_time){.name = xstrdup(name), .atime = h.atime, .mtime = h.mtime};
  }
  n->unpacked = true;
  return 0;
}

/* --- the archive ------------------------------------------------------------ */

static int read_entries(struct applier *a, struct sbd_stream *stream, sbd_error_t *err)
{
  cleanup_archive struct archive *ar = NULL;
  if (sbd_stream_archive_open(stream, &ar, err) < 0)
    return -1;
  cleanup_free char *last = NULL; /* to say where a damaged header is */
  for (;;) {
    struct archive_entry *e;
    int r = archive_read_next_header(ar, &e);
    if (r == ARCHIVE_EOF)
      return 0;
    /* ARCHIVE_RETRY is a damaged header libarchive would skip (a bad
     * checksum, say): Go's archive/tar, and so containerd, refuses it. */
    if (r < ARCHIVE_WARN || r == ARCHIVE_RETRY) {
      sbd_stream_archive_error(stream, ar, err);
      return last ? sbd_error_prefix(err, "the header after entry %s: ", last)
                  : sbd_error_prefix(err, "the first header: ");
    }
    a->r->entries++;
    const char *name = archive_entry_pathname(e);
    if (apply_entry(a, ar, e, err) < 0)
      return sbd_error_prefix(err, "entry %s: ", name ? name : "?");
    free(last);
    last = xstrdup(name ? name : "?");
  }
}

int sbd_layer_apply(const struct sbd_layer_params *p, struct sbd_layer_result *r,
                    sbd_error_t *err)
{
  memset(r, 0, sizeof(*r));
  struct sbd_attrs root_attrs = {
      .mode = S_IFDIR | 0755, .atime = {sbd_ext4_now(p->fs), 0}, .mtime = {sbd_ext4_now(p->fs), 0}};
  struct applier a = {
      .p = p,
      .fs = p->fs,
      .tree = sbd_tree_new(p->root_ino, &root_attrs),
      .overlay = p->n_lowers > 0,
      .now = {sbd_ext4_now(p->fs), 0},
      .hasher = sbd_hasher_new(),
      .buf = xmalloc(DATA_BUF),
      .r = r,
  };
  struct sbd_stream *stream = NULL;
  int ret = -1;
  if (sbd_stream_open(p->blob_path, p->reader, p->compression, &stream, err) < 0)
    goto out;
  sbd_stream_set_progress(stream, p->progress, p->progress_opaque);
  if (read_entries(&a, stream, err) < 0 || sbd_stream_finish(stream, r->blob_digest, r->diff_id, err) < 0) {
    /* Bytes that are not the blob's explain any refusal they caused. */
    cleanup_error sbd_error_t bad_blob = NULL;
    if (sbd_error_exit_code(*err) == SBD_EXIT_IMAGE && p->expect_blob_digest &&
        sbd_stream_check_blob(stream, p->expect_blob_digest, &bad_blob) < 0) {
      sbd_error_free(err);
      *err = steal_pointer(&bad_blob);
    }
    goto out;
  }
  if (r->blob_digest[0] == '\0' && p->expect_blob_digest) /* the reader verified it */
    snprintf(r->blob_digest, sizeof(r->blob_digest), "%s", p->expect_blob_digest);
  else if (p->expect_blob_digest && strcmp(p->expect_blob_digest, r->blob_digest) != 0) {
    sbd_error_set(err, SBD_EXIT_IMAGE, 0, "blob digest mismatch: expected %s, got %s",
                  p->expect_blob_digest, r->blob_digest);
    goto out;
  }
  if (p->expect_diff_id && strcmp(p->expect_diff_id, r->diff_id) != 0) {
    sbd_error_set(err, SBD_EXIT_IMAGE, 0, "diffID mismatch: the config says %s, the layer is %s",
                  p->expect_diff_id, r->diff_id);
    goto out;
  }
  ret = applier_finish(&a, err);
out:
  sbd_stream_free(stream);
  sbd_hasher_free(a.hasher); /* before the nodes it writes into go */
  parent_cache_clear(&a.parent);
  sbd_tree_free(a.tree);
  sbd_strset_free(&a.removed_unpacked);
  for (size_t i = 0; i < a.n_dir_times; i++)
    free(a.dir_times[i].name);
  free(a.dir_times);
  free(a.buf);
  return ret;
}

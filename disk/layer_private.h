/* Shared between layer.c (the entry loop), layer_parent.c (missing parent
 * directories and copy-up) and layer_finish.c (directory times, writing
 * directories, the checksum).  Not an interface. */
#ifndef SBD_LAYER_PRIVATE_H
#define SBD_LAYER_PRIVATE_H

#include <archive.h>
#include <archive_entry.h>

#include "hasher.h"
#include "layer.h"
#include "path.h"
#include "tree.h"

/* A set of path strings (containerd's unpackedPaths). */
struct sbd_strset {
  char **slots;
  size_t cap;
  size_t count;
};
void sbd_strset_add(struct sbd_strset *s, const char *str);
bool sbd_strset_has(const struct sbd_strset *s, const char *str);
void sbd_strset_free(struct sbd_strset *s);

/* A directory entry's times, applied again at the end of the layer. */
struct dir_time {
  char *name;
  struct sbd_time atime;
  struct sbd_time mtime;
};

/* The parent directory of the last entry, as it was resolved for it.  A
 * layer lists a directory's entries one after another, and resolving the
 * same parent again for each (a lookup and a copy of every component) took
 * a sixth of the writer's time on a layer of small files.  It is kept only
 * when resolving it followed no symlink: an entry changes nothing but the
 * children of its parent, never the directories on the way to it, so the
 * next entry with the same parent finds the same directory. */
struct parent_cache {
  char *pdir; /* the cleaned name up to its last '/'; NULL: nothing kept */
  struct sbd_path path;
  struct sbd_node *dir;
};

struct applier {
  const struct sbd_layer_params *p;
  struct sbd_ext4 *fs;
  struct sbd_tree *tree;
  bool overlay; /* a parent exists: whiteouts become devices/xattrs */
  struct sbd_time now;
  struct sbd_strset removed_unpacked; /* see applier_was_unpacked */
  struct dir_time *dir_times;
  size_t n_dir_times, cap_dir_times;
  struct sbd_hasher *hasher; /* file md5s, on their own thread */
  struct parent_cache parent;
  char *buf;
  struct sbd_layer_result *r;
};

/* Path resolution over the layer being written. */
struct sbd_resolve_ops applier_tree_ops(struct applier *a);

/* The node at a resolved path, or NULL. */
struct sbd_node *applier_node_at(struct applier *a, const struct sbd_path *p, size_t n);
/* Path string of a node relative to the layer root. */
char *applier_node_path(const struct sbd_node *n);
/* Did an entry of this layer name n's path (containerd's unpackedPaths)? */
bool applier_was_unpacked(struct applier *a, const struct sbd_node *n);
/* A directory's contents changed: its mtime becomes now (as the kernel does). */
void applier_touch(struct applier *a, struct sbd_node *dir);
/* RemoveAll: drops a node and everything below it, releasing inodes. */
int applier_remove(struct applier *a, struct sbd_node *n, sbd_error_t *err);

/* containerd's mkparent: makes every missing directory of p, copying each up
 * from the lower layers when there are some. */
int applier_mkparent(struct applier *a, const struct sbd_path *p, struct sbd_node **dir,
                     sbd_error_t *err);

/* End of the layer: directory times, then all directories, then the md5. */
int applier_finish(struct applier *a, sbd_error_t *err);

#endif

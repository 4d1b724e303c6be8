/* Paths inside a layer, resolved the way containerd resolves them.
 *
 * containerd cleans every tar name lexically (Go's filepath.Clean), then
 * resolves the parent directory with continuity's fs.RootPath: symlinks are
 * followed, but absolute targets and ".." are taken relative to the layer's
 * own root, so nothing can leave it.  The same resolution runs over the
 * layer being written (an in-memory tree) and over finished lower layers
 * (read back from ext4), through sbd_resolve_ops. */
#ifndef SBD_PATH_H
#define SBD_PATH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/error.h"

/* A cleaned path as its components; n == 0 is the root. */
struct sbd_path {
  char **comp;
  size_t *len;
  size_t n;
  size_t cap;
};

/* Go's filepath.Clean of a byte string (malloc'd; "." when empty). */
char *sbd_path_clean(const char *p);
/* Components of Clean("/" + p): "..", "." and empty ones are gone. */
void sbd_path_parse(const char *p, struct sbd_path *out);
void sbd_path_push(struct sbd_path *p, const char *name, size_t len);
void sbd_path_free(struct sbd_path *p);
#define cleanup_path __attribute__((cleanup(sbd_path_free)))
/* "a/b/c" ("" for the root), malloc'd. */
char *sbd_path_string(const struct sbd_path *p);

/* Lookup kinds */
enum sbd_kind { SBD_KIND_ABSENT = 0, SBD_KIND_DIR, SBD_KIND_SYMLINK, SBD_KIND_OTHER };

struct sbd_resolve_ops {
  /* The child `name` of directory `dir`; *kind = SBD_KIND_ABSENT when missing. */
  int (*lookup)(void *ctx, uintptr_t dir, const char *name, size_t len, uintptr_t *child,
                enum sbd_kind *kind, sbd_error_t *err);
  int (*readlink)(void *ctx, uintptr_t node, char **target, sbd_error_t *err);
  uintptr_t root;
};

/* fs.RootPath: resolves p (any string) inside ops->root, following symlinks
 * in every component, and in the last one too when follow_last.  out gets the
 * resolved components; *node and *kind describe the last one (kind ABSENT if
 * it does not exist).  Fails with ENOTDIR when a component that is not a
 * directory has components after it, and after 255 symlinks. */
int sbd_path_resolve(const struct sbd_resolve_ops *ops, void *ctx, const char *p, bool follow_last,
                     struct sbd_path *out, uintptr_t *node, enum sbd_kind *kind, sbd_error_t *err);

#endif

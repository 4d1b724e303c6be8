#include "path.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

/* containerd's walkLink gives up after this many symlinks. */
#define MAX_LINKS 255

void sbd_path_push(struct sbd_path *p, const char *name, size_t len)
{
  if (p->n == p->cap) {
    p->cap = p->cap ? 2 * p->cap : 8;
    p->comp = xrealloc(p->comp, p->cap * sizeof(*p->comp));
    p->len = xrealloc(p->len, p->cap * sizeof(*p->len));
  }
  p->comp[p->n] = xstrndup(name, len);
  p->len[p->n] = len;
  p->n++;
}

static void path_pop(struct sbd_path *p)
{
  free(p->comp[--p->n]);
}

void sbd_path_free(struct sbd_path *p)
{
  while (p->n)
    path_pop(p);
  free(p->comp);
  free(p->len);
  memset(p, 0, sizeof(*p));
}

/* Applies Clean's rules component by component: "." and empty vanish, ".."
 * removes the previous name, or stays when there is none and the path is
 * relative, or vanishes at a rooted start. */
static void clean_into(const char *s, bool rooted, struct sbd_path *out)
{
  const char *p = s;
  while (*p) {
    const char *end = strchr(p, '/');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if (len == 0 || (len == 1 && p[0] == '.')) {
      /* skip */
    } else if (len == 2 && p[0] == '.' && p[1] == '.') {
      if (out->n > 0 && strcmp(out->comp[out->n - 1], "..") != 0)
        path_pop(out);
      else if (!rooted)
        sbd_path_push(out, p, len);
    } else {
      sbd_path_push(out, p, len);
    }
    p += len;
    if (*p == '/')
      p++;
  }
}

/* The length of Clean(s) when s is already clean but for one trailing '/'
 * (as tar names directories): relative, and no component empty, "." or
 * "..".  0 when it is not, or when s is empty. */
static size_t clean_length(const char *s)
{
  size_t start = 0, i = 0;
  for (;; i++) {
    if (s[i] != '/' && s[i] != '\0')
      continue;
    size_t n = i - start;
    if (n == 0 || (n == 1 && s[start] == '.') || (n == 2 && s[start] == '.' && s[start + 1] == '.'))
      /* the one empty component allowed: after a final '/' that follows a name */
      return s[i] == '\0' && n == 0 && start > 0 ? i - 1 : 0;
    if (s[i] == '\0')
      return i;
    start = i + 1;
  }
}

char *sbd_path_clean(const char *s)
{
  /* Nearly every tar name is clean already: one copy, not a component at a
   * time (a layer of small files has hundreds of thousands). */
  size_t len = clean_length(s);
  if (len > 0)
    return xstrndup(s, len);
  struct sbd_path parts = {0};
  bool rooted = s[0] == '/';
  clean_into(s, rooted, &parts);
  cleanup_free char *joined = sbd_path_string(&parts);
  sbd_path_free(&parts);
  if (rooted)
    return xasprintf("/%s", joined);
  return xstrdup(joined[0] ? joined : ".");
}

void sbd_path_parse(const char *p, struct sbd_path *out)
{
  clean_into(p, true, out);
}

char *sbd_path_string(const struct sbd_path *p)
{
  struct sbd_buf b = {0};
  for (size_t i = 0; i < p->n; i++) {
    if (i)
      sbd_buf_append(&b, "/", 1);
    sbd_buf_append(&b, p->comp[i], p->len[i]);
  }
  return sbd_buf_cstr(&b);
}

/* The text of the path after a symlink at component i is replaced by its
 * target: Join(dir-so-far, target, rest) (absolute targets restart at the
 * root), to be cleaned again as a whole, which is what containerd's Join
 * calls do. */
static char *substitute(const struct sbd_path *done, const char *target, const struct sbd_path *all,
                        size_t i)
{
  struct sbd_buf b = {0};
  if (target[0] != '/') {
    for (size_t k = 0; k < done->n; k++) {
      sbd_buf_append(&b, "/", 1);
      sbd_buf_append(&b, done->comp[k], done->len[k]);
    }
  }
  sbd_buf_append(&b, "/", 1);
  sbd_buf_append(&b, target, strlen(target));
  for (size_t k = i + 1; k < all->n; k++) {
    sbd_buf_append(&b, "/", 1);
    sbd_buf_append(&b, all->comp[k], all->len[k]);
  }
  return sbd_buf_cstr(&b);
}

int sbd_path_resolve(const struct sbd_resolve_ops *ops, void *ctx, const char *p, bool follow_last,
                     struct sbd_path *out, uintptr_t *node, enum sbd_kind *kind, sbd_error_t *err)
{
  struct sbd_path all = {0};
  sbd_path_parse(p, &all);
  int links = 0;
  int ret = -1;

restart:
  sbd_path_free(out);
  uintptr_t cur = ops->root;
  enum sbd_kind cur_kind = SBD_KIND_DIR;
  for (size_t i = 0; i < all.n; i++) {
    bool last = i + 1 == all.n;
    if (cur_kind == SBD_KIND_ABSENT) {
      sbd_path_push(out, all.comp[i], all.len[i]);
      continue;
    }
    if (cur_kind != SBD_KIND_DIR) {
      cleanup_free char *where = sbd_path_string(out);
      sbd_error_set(err, SBD_EXIT_IMAGE, ENOTDIR, "%s", where);
      goto out;
    }
    uintptr_t child = 0;
    enum sbd_kind k = SBD_KIND_ABSENT;
    if (ops->lookup(ctx, cur, all.comp[i], all.len[i], &child, &k, err) < 0)
      goto out;
    if (k == SBD_KIND_SYMLINK && (!last || follow_last)) {
      if (++links > MAX_LINKS) {
        sbd_error_set(err, SBD_EXIT_IMAGE, 0, "too many levels of symbolic links in %s", p);
        goto out;
      }
      cleanup_free char *target = NULL;
      if (ops->readlink(ctx, child, &target, err) < 0)
        goto out;
      cleanup_free char *next = substitute(out, target, &all, i);
      sbd_path_free(&all);
      sbd_path_parse(next, &all);
      goto restart;
    }
    sbd_path_push(out, all.comp[i], all.len[i]);
    cur = child;
    cur_kind = k;
  }
  *node = cur_kind == SBD_KIND_ABSENT ? 0 : cur;
  *kind = cur_kind;
  ret = 0;
out:
  sbd_path_free(&all);
  return ret;
}

/* The end of a layer: directory times (set last, as containerd does), the
 * directories themselves, and beside them the official verifier's checksum. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "checksum.h"
#include "layer_private.h"
#include "lib/util.h"

/* --- string set ------------------------------------------------------------ */

static size_t str_hash(const char *s)
{
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) {
    h ^= (unsigned char)*s;
    h *= 1099511628211ull;
  }
  return (size_t)h;
}

static void strset_grow(struct sbd_strset *s)
{
  size_t cap = s->cap ? s->cap * 2 : 1024;
  char **slots = xcalloc(cap, sizeof(*slots));
  for (size_t i = 0; i < s->cap; i++) {
    if (!s->slots[i])
      continue;
    size_t h = str_hash(s->slots[i]) & (cap - 1);
    while (slots[h])
      h = (h + 1) & (cap - 1);
    slots[h] = s->slots[i];
  }
  free(s->slots);
  s->slots = slots;
  s->cap = cap;
}

void sbd_strset_add(struct sbd_strset *s, const char *str)
{
  if (2 * (s->count + 1) > s->cap)
    strset_grow(s);
  size_t h = str_hash(str) & (s->cap - 1);
  while (s->slots[h]) {
    if (strcmp(s->slots[h], str) == 0)
      return;
    h = (h + 1) & (s->cap - 1);
  }
  s->slots[h] = xstrdup(str);
  s->count++;
}

bool sbd_strset_has(const struct sbd_strset *s, const char *str)
{
  if (s->cap == 0)
    return false;
  size_t h = str_hash(str) & (s->cap - 1);
  while (s->slots[h]) {
    if (strcmp(s->slots[h], str) == 0)
      return true;
    h = (h + 1) & (s->cap - 1);
  }
  return false;
}

void sbd_strset_free(struct sbd_strset *s)
{
  for (size_t i = 0; i < s->cap; i++)
    free(s->slots[i]);
  free(s->slots);
  memset(s, 0, sizeof(*s));
}

/* --- directory times ---------------------------------------------------------- */

/* containerd re-resolves each directory header's name at the end and sets its
 * times on whatever the name leads to now (even a file that replaced it); a
 * name that leads nowhere fails the layer. */
static int apply_dir_times(struct applier *a, sbd_error_t *err)
{
  struct sbd_resolve_ops ops = applier_tree_ops(a);
  for (size_t i = 0; i < a->n_dir_times; i++) {
    const struct dir_time *t = &a->dir_times[i];
    struct sbd_path p = {0};
    uintptr_t node;
    enum sbd_kind kind;
    int r = sbd_path_resolve(&ops, a, t->name, true, &p, &node, &kind, err);
    sbd_path_free(&p);
    if (r < 0)
      return sbd_error_prefix(err, "entry %s: ", t->name);
    if (kind == SBD_KIND_ABSENT)
      return sbd_error_set(err, SBD_EXIT_IMAGE, ENOENT,
                           "entry %s: setting the directory's times", t->name);
    struct sbd_node *n = (struct sbd_node *)node;
    if (sbd_node_is_dir(n)) {
      n->u.dir->attrs.atime = t->atime;
      n->u.dir->attrs.mtime = t->mtime;
      continue;
    }
    struct sbd_attrs st;
    if (sbd_ext4_stat(a->fs, n->ino, &st, err) < 0)
      return -1;
    st.atime = t->atime;
    st.mtime = t->mtime;
    if (sbd_ext4_set_attrs(a->fs, n->ino, &st, err) < 0)
      return -1;
  }
  return 0;
}

/* --- writing directories ------------------------------------------------------ */

static int xattr_cmp(const void *x, const void *y)
{
  return strcmp(((const struct sbd_xattr *)x)->key, ((const struct sbd_xattr *)y)->key);
}

static int write_one_dir(struct sbd_node *n, void *opaque, sbd_error_t *err)
{
  struct applier *a = opaque;
  struct sbd_node_dir *d = sbd_node_dir(n);
  if (d == NULL)
    return 0;
  size_t count = 0;
  for (struct sbd_node *c = sbd_node_first_child(n); c; c = c->next)
    count++;
  cleanup_free struct sbd_dirent *ents = xcalloc(count, sizeof(*ents));
  size_t i = 0;
  for (struct sbd_node *c = sbd_node_first_child(n); c; c = c->next, i++)
    ents[i] = (struct sbd_dirent){.name = c->name,
                                  .name_len = c->name_len,
                                  .ino = c->ino,
                                  .file_type = sbd_ext4_file_type(c->mode)};
  uint32_t parent = n->parent ? n->parent->ino : a->p->parent_ino;
  if (sbd_ext4_write_dir(a->fs, n->ino, parent, ents, count, d->nsubdirs, &d->attrs,
                         err) < 0) {
    cleanup_free char *path = applier_node_path(n);
    return sbd_error_prefix(err, "directory /%s: ", path);
  }
  struct sbd_xattrs *x = &d->xattrs;
  if (x->n > 1)
    qsort(x->v, x->n, sizeof(*x->v), xattr_cmp);
  for (size_t k = 0; k < x->n; k++)
    if (sbd_ext4_xattr_set(a->fs, n->ino, x->v[k].key, x->v[k].value, x->v[k].len, err) < 0)
      return -1;
  return 0;
}

/* --- the checksum ----------------------------------------------------------------- */

struct md5_lines {
  struct sbd_md5_list list;
  uint64_t bytes;
};

static int collect_md5(struct sbd_node *n, void *opaque, sbd_error_t *err)
{
  (void)err;
  struct md5_lines *l = opaque;
  if (!n->has_md5)
    return 0;
  sbd_md5_list_add(&l->list, n->u.file.md5);
  l->bytes += n->u.file.size;
  return 0;
}

static int count_md5(struct sbd_node *n, void *opaque, sbd_error_t *err)
{
  (void)err;
  *(size_t *)opaque += n->has_md5;
  return 0;
}

/* The tree of a million files is at its largest here, with the list of
 * their md5s beside it: the list is sized exactly (and the name index, no
 * longer needed, went first). */
static int checksum(struct applier *a, sbd_error_t *err)
{
  struct md5_lines l = {0};
  size_t files = 0;
  int ret = sbd_tree_walk(a->tree, count_md5, &files, err);
  sbd_md5_list_reserve(&l.list, files);
  if (ret == 0)
    ret = sbd_tree_walk(a->tree, collect_md5, &l, err);
  if (ret == 0) {
    sbd_md5_list_checksum(&l.list, a->r->checksum);
    a->r->files = l.list.n;
    a->r->file_bytes = l.bytes;
  }
  sbd_md5_list_free(&l.list);
  return ret;
}

struct checksum_job {
  struct applier *a;
  int ret;
  sbd_error_t err;
};

static void *checksum_run(void *opaque)
{
  struct checksum_job *j = opaque;
  j->ret = checksum(j->a, &j->err);
  return NULL;
}

int applier_finish(struct applier *a, sbd_error_t *err)
{
  if (apply_dir_times(a, err) < 0)
    return -1;
  sbd_tree_drop_index(a->tree); /* names are not looked up any more */
  sbd_hasher_wait(a->hasher);   /* the last files' md5s, hashed meanwhile */
  /* The checksum (every file's md5, sorted, summed) and the directories
   * both only read the tree: on a thread of its own, the checksum takes the
   * second core, idle once the last byte is in (~45 ms of the ~130 after
   * it, for 200,000 files). */
  struct checksum_job job = {.a = a};
  pthread_t thread;
  bool threaded = pthread_create(&thread, NULL, checksum_run, &job) == 0;
  int ret = sbd_tree_walk(a->tree, write_one_dir, a, err);
  /* later layers read this one back (copy-up): it must be on disk */
  if (ret == 0)
    ret = sbd_ext4_flush(a->fs, err);
  if (threaded)
    pthread_join(thread, NULL);
  else
    checksum_run(&job);
  if (ret < 0) {
    sbd_error_free(&job.err);
    return -1;
  }
  if (job.ret < 0) {
    *err = job.err;
    return -1;
  }
  return 0;
}

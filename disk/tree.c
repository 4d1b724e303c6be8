#include "tree.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/util.h"

bool sbd_node_is_dir(const struct sbd_node *n)
{
  return (n->mode & S_IFMT) == S_IFDIR;
}

struct sbd_node_dir *sbd_node_dir(const struct sbd_node *n)
{
  return sbd_node_is_dir(n) ? n->u.dir : NULL;
}

const char *sbd_node_link_target(const struct sbd_node *n)
{
  return (n->mode & S_IFMT) == S_IFLNK ? n->u.link_target : NULL;
}

struct sbd_node *sbd_node_first_child(const struct sbd_node *n)
{
  return sbd_node_is_dir(n) ? n->u.dir->first_child : NULL;
}

/* FNV-1a over the parent's address and the name. */
static size_t hash_of(const struct sbd_node *dir, const char *name, size_t len)
{
  uint64_t h = 1469598103934665603ull;
  uintptr_t d = (uintptr_t)dir;
  for (size_t i = 0; i < sizeof(d); i++) {
    h ^= (d >> (8 * i)) & 0xff;
    h *= 1099511628211ull;
  }
  for (size_t i = 0; i < len; i++) {
    h ^= (unsigned char)name[i];
    h *= 1099511628211ull;
  }
  return (size_t)h;
}

static void rehash(struct sbd_tree *t, size_t nbuckets)
{
  struct sbd_node **b = xcalloc(nbuckets, sizeof(*b));
  for (size_t i = 0; i < t->nbuckets; i++) {
    struct sbd_node *n = t->buckets[i];
    while (n) {
      struct sbd_node *next = n->hash_next;
      size_t h = hash_of(n->parent, n->name, n->name_len) & (nbuckets - 1);
      n->hash_next = b[h];
      b[h] = n;
      n = next;
    }
  }
  free(t->buckets);
  t->buckets = b;
  t->nbuckets = nbuckets;
}

#define ARENA_BLOCK (1u << 20)

/* A removed node's room stays in the arena until the tree goes: under
 * AddressSanitizer it is poisoned, so that a pointer kept to it still fails
 * loudly as a freed node did. */
#if defined(__SANITIZE_ADDRESS__)
#define SBD_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SBD_ASAN 1
#endif
#endif
#ifdef SBD_ASAN
#include <sanitizer/asan_interface.h>
#define poison_node(n) ASAN_POISON_MEMORY_REGION((n), node_size((n)->name_len))
#else
#define poison_node(n) ((void)(n))
#endif

/* 8-byte steps keep every node's pointers aligned. */
static size_t node_size(size_t name_len)
{
  return (offsetof(struct sbd_node, name) + name_len + 1 + 7) & ~(size_t)7;
}

static void *arena_alloc(struct sbd_tree *t, size_t size)
{
  struct sbd_node_arena *a = t->arena;
  if (a == NULL || a->cap - a->used < size) {
    size_t cap = size > ARENA_BLOCK ? size : ARENA_BLOCK;
    a = xmalloc(sizeof(*a) + cap);
    a->prev = t->arena;
    a->used = 0;
    a->cap = cap;
    t->arena = a;
  }
  void *p = a->bytes + a->used;
  a->used += size;
  return p;
}

static struct sbd_node *node_new(struct sbd_tree *t, const char *name, size_t len, uint32_t mode,
                                 uint32_t ino)
{
  struct sbd_node *n = arena_alloc(t, node_size(len));
  memset(n, 0, sizeof(*n));
  memcpy(n->name, name, len);
  n->name[len] = '\0';
  n->name_len = (uint8_t)len;
  n->mode = (uint16_t)mode;
  n->ino = ino;
  if ((mode & S_IFMT) == S_IFDIR)
    n->u.dir = xcalloc(1, sizeof(*n->u.dir));
  return n;
}

struct sbd_tree *sbd_tree_new(uint32_t root_ino, const struct sbd_attrs *a)
{
  struct sbd_tree *t = xcalloc(1, sizeof(*t));
  t->nbuckets = 1024;
  t->buckets = xcalloc(t->nbuckets, sizeof(*t->buckets));
  t->root = node_new(t, "", 0, a->mode, root_ino);
  t->root->u.dir->attrs = *a;
  return t;
}

void sbd_tree_drop_index(struct sbd_tree *t)
{
  free(t->buckets);
  t->buckets = NULL;
  t->nbuckets = 0;
}

struct sbd_node *sbd_tree_lookup(const struct sbd_tree *t, const struct sbd_node *dir,
                                 const char *name, size_t len)
{
  size_t h = hash_of(dir, name, len) & (t->nbuckets - 1);
  for (struct sbd_node *n = t->buckets[h]; n; n = n->hash_next)
    if (n->parent == dir && n->name_len == len && memcmp(n->name, name, len) == 0)
      return n;
  return NULL;
}

struct sbd_node *sbd_tree_add(struct sbd_tree *t, struct sbd_node *dir, const char *name,
                              size_t len, uint32_t mode, uint32_t ino)
{
  if (t->count + 1 > t->nbuckets)
    rehash(t, t->nbuckets * 2);
  struct sbd_node *n = node_new(t, name, len, mode, ino);
  n->parent = dir;
  size_t h = hash_of(dir, name, len) & (t->nbuckets - 1);
  n->hash_next = t->buckets[h];
  t->buckets[h] = n;
  struct sbd_node_dir *d = dir->u.dir;
  n->prev = d->last_child;
  if (d->last_child)
    d->last_child->next = n;
  else
    d->first_child = n;
  d->last_child = n;
  if (sbd_node_is_dir(n))
    d->nsubdirs++;
  t->count++;
  return n;
}

/* What the node holds outside the arena. */
static void node_release(struct sbd_node *n)
{
  switch (n->mode & S_IFMT) {
  case S_IFDIR:
    sbd_xattrs_free(&n->u.dir->xattrs);
    free(n->u.dir);
    n->u.dir = NULL;
    break;
  case S_IFLNK:
    free(n->u.link_target);
    n->u.link_target = NULL;
    break;
  }
}

static void unhash(struct sbd_tree *t, struct sbd_node *n)
{
  size_t h = hash_of(n->parent, n->name, n->name_len) & (t->nbuckets - 1);
  for (struct sbd_node **p = &t->buckets[h]; *p; p = &(*p)->hash_next) {
    if (*p == n) {
      *p = n->hash_next;
      break;
    }
  }
  t->count--;
}

static int remove_below(struct sbd_tree *t, struct sbd_node *n, sbd_node_fn fn, void *opaque,
                        sbd_error_t *err)
{
  struct sbd_node *c = sbd_node_first_child(n);
  while (c) {
    struct sbd_node *next = c->next;
    if (remove_below(t, c, fn, opaque, err) < 0)
      return -1;
    c = next;
  }
  if (sbd_node_is_dir(n))
    n->u.dir->first_child = n->u.dir->last_child = NULL;
  if (fn && fn(n, opaque, err) < 0)
    return -1;
  unhash(t, n);
  if (n != t->root) {
    node_release(n);
    poison_node(n);
  }
  return 0;
}

int sbd_tree_remove(struct sbd_tree *t, struct sbd_node *n, sbd_node_fn fn, void *opaque,
                    sbd_error_t *err)
{
  struct sbd_node_dir *d = n->parent->u.dir;
  if (n->prev)
    n->prev->next = n->next;
  else
    d->first_child = n->next;
  if (n->next)
    n->next->prev = n->prev;
  else
    d->last_child = n->prev;
  if (sbd_node_is_dir(n))
    d->nsubdirs--;
  return remove_below(t, n, fn, opaque, err);
}

static int walk(struct sbd_node *n, sbd_node_fn fn, void *opaque, sbd_error_t *err)
{
  if (fn(n, opaque, err) < 0)
    return -1;
  for (struct sbd_node *c = sbd_node_first_child(n); c; c = c->next)
    if (walk(c, fn, opaque, err) < 0)
      return -1;
  return 0;
}

int sbd_tree_walk(struct sbd_tree *t, sbd_node_fn fn, void *opaque, sbd_error_t *err)
{
  return walk(t->root, fn, opaque, err);
}

static void free_all(struct sbd_node *n)
{
  struct sbd_node *c = sbd_node_first_child(n);
  while (c) {
    struct sbd_node *next = c->next;
    free_all(c);
    c = next;
  }
  node_release(n);
}

void sbd_tree_free(struct sbd_tree *t)
{
  if (t == NULL)
    return;
  free_all(t->root);
  while (t->arena) {
    struct sbd_node_arena *prev = t->arena->prev;
    free(t->arena);
    t->arena = prev;
  }
  free(t->buckets);
  free(t);
}

void sbd_xattrs_set(struct sbd_xattrs *x, const char *key, const void *value, size_t len)
{
  for (size_t i = 0; i < x->n; i++) {
    if (strcmp(x->v[i].key, key) == 0) {
      free(x->v[i].value);
      x->v[i].value = xmalloc(len + 1);
      memcpy(x->v[i].value, value, len);
      x->v[i].len = len;
      return;
    }
  }
  x->v = xrealloc(x->v, (x->n + 1) * sizeof(*x->v));
  x->v[x->n].key = xstrdup(key);
  x->v[x->n].value = xmalloc(len + 1);
  memcpy(x->v[x->n].value, value, len);
  x->v[x->n].len = len;
  x->n++;
}

void sbd_xattrs_free(struct sbd_xattrs *x)
{
  for (size_t i = 0; i < x->n; i++) {
    free(x->v[i].key);
    free(x->v[i].value);
  }
  free(x->v);
  x->v = NULL;
  x->n = 0;
}

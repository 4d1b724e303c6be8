/* The in-memory tree of one layer's snapshot directory while it is being
 * applied (composefs-style: built from the stream, written out at the end).
 *
 * Non-directories are written to ext4 as soon as they are complete; the tree
 * keeps only what later entries and the final pass need: names, inode
 * numbers, types, symlink targets (to resolve paths), content md5 (for the
 * snapshot checksum), and for directories their attributes and xattrs (a
 * directory is written once, when its entries are all known).  Names are
 * found through one hash table keyed by (parent, name), so a directory with
 * 100,000 entries costs no more per lookup than a small one. */
#ifndef SBD_TREE_H
#define SBD_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ext4.h"

struct sbd_xattr {
  char *key;
  char *value;
  size_t len;
};

struct sbd_xattrs {
  struct sbd_xattr *v;
  size_t n;
};

struct sbd_node_dir {
  struct sbd_node *first_child, *last_child; /* entries in order */
  struct sbd_attrs attrs;
  struct sbd_xattrs xattrs;
  size_t nsubdirs;
};

/* What a node holds besides its name depends on its type: a layer of a
 * million files keeps a million of these, so no field is spent on another
 * type's data. */
struct sbd_node_file {
  uint64_t size;
  uint8_t md5[16];
};

struct sbd_node {
  struct sbd_node *parent;
  struct sbd_node *hash_next;
  struct sbd_node *prev, *next; /* siblings */
  union {                       /* by the type bits of mode */
    struct sbd_node_file file;  /* regular files */
    char *link_target;          /* symlinks */
    struct sbd_node_dir *dir;   /* directories */
  } u;
  uint32_t ino;
  uint16_t mode;     /* type bits (and permissions when created) */
  uint8_t name_len;  /* ext4 names are at most 255 bytes */
  bool has_md5 : 1;  /* regular files */
  bool unpacked : 1; /* named by an entry of this layer (not made as a parent) */
  char name[];       /* NUL-terminated */
};

/* Nodes live in large blocks that are freed with the tree: a layer of a
 * million files costs a million small mallocs and frees less, and no
 * per-allocation overhead (a removed node's room is reused only then). */
struct sbd_node_arena {
  struct sbd_node_arena *prev;
  size_t used, cap;
  _Alignas(16) unsigned char bytes[]; /* nodes, each at an 8-byte boundary */
};

struct sbd_tree {
  struct sbd_node *root;
  struct sbd_node **buckets;
  size_t nbuckets;
  size_t count;
  struct sbd_node_arena *arena;
};

/* A tree whose root is a directory with inode root_ino and attributes a. */
struct sbd_tree *sbd_tree_new(uint32_t root_ino, const struct sbd_attrs *a);
void sbd_tree_free(struct sbd_tree *t);

/* Frees the index that lookups use (the nodes stay, for walks): a finished
 * layer's tree is only walked, and its index is 8 to 16 bytes a node. */
void sbd_tree_drop_index(struct sbd_tree *t);

struct sbd_node *sbd_tree_lookup(const struct sbd_tree *t, const struct sbd_node *dir,
                                 const char *name, size_t len);
/* Appends a new entry to dir (which must not have one of that name); len is
 * at most 255 (EXT2_NAME_LEN) and mode fits in 16 bits, as in an inode. */
struct sbd_node *sbd_tree_add(struct sbd_tree *t, struct sbd_node *dir, const char *name,
                              size_t len, uint32_t mode, uint32_t ino);
/* Unlinks n from its parent and frees it and everything below it; calls fn
 * for every node removed (children before their directory) first. */
typedef int (*sbd_node_fn)(struct sbd_node *n, void *opaque, sbd_error_t *err);
int sbd_tree_remove(struct sbd_tree *t, struct sbd_node *n, sbd_node_fn fn, void *opaque,
                    sbd_error_t *err);

/* Pre-order walk (a directory before its entries, entries in order). */
int sbd_tree_walk(struct sbd_tree *t, sbd_node_fn fn, void *opaque, sbd_error_t *err);

bool sbd_node_is_dir(const struct sbd_node *n);
/* A directory's own data (NULL for a non-directory). */
struct sbd_node_dir *sbd_node_dir(const struct sbd_node *n);
/* A symlink's target (NULL for a non-symlink). */
const char *sbd_node_link_target(const struct sbd_node *n);
/* A directory's first entry (NULL for an empty directory or a non-directory). */
struct sbd_node *sbd_node_first_child(const struct sbd_node *n);

/* Sets (replaces) an xattr in a list. */
void sbd_xattrs_set(struct sbd_xattrs *x, const char *key, const void *value, size_t len);
void sbd_xattrs_free(struct sbd_xattrs *x);

#endif

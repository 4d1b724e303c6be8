/* Shared between inspect.c (the disk, the metadata files) and inspect_walk.c
 * (a snapshot's tree).  Not an interface. */
#ifndef SBD_INSPECT_PRIVATE_H
#define SBD_INSPECT_PRIVATE_H

#include <ext2fs/ext2fs.h>

#include "inspect.h"

/* Walks the tree under root, filling s's counts (and, with md5, s->computed).
 * A tree that cannot be read fails with SBD_EXIT_IMAGE naming the path;
 * prefix names the root ("snapshots/1/fs"). */
int sbd_inspect_walk(ext2_filsys fs, ext2_ino_t root, const char *prefix, bool md5,
                     struct sbd_inspect_snapshot *s, sbd_error_t *err);

/* A directory's entries but "." and "..", read whole before the caller
 * looks at any (nothing of libext2fs's iteration stays live while a walk
 * descends). */
struct sbd_inspect_entry {
  char *name;
  ext2_ino_t ino;
};
struct sbd_inspect_entries {
  struct sbd_inspect_entry *v;
  size_t n, cap;
};
int sbd_inspect_read_dir(ext2_filsys fs, ext2_ino_t dir, const char *path,
                         struct sbd_inspect_entries *e, sbd_error_t *err);
void sbd_inspect_entries_free(struct sbd_inspect_entries *e);
#define cleanup_inspect_entries __attribute__((cleanup(sbd_inspect_entries_free)))

/* "what: libext2fs's message" as SBD_EXIT_IMAGE. */
int sbd_inspect_error(sbd_error_t *err, errcode_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif

/* The temporary files a run has made and not yet renamed into place or
 * removed, so that a run stopped by a signal removes them before it exits:
 * an interrupted build leaves nothing behind but what was there before. */
#ifndef SBD_TMPFILES_H
#define SBD_TMPFILES_H

#include <stddef.h>

struct sbd_tmpfiles;

struct sbd_tmpfiles *sbd_tmpfiles_new(void);
void sbd_tmpfiles_free(struct sbd_tmpfiles *t);

/* mkostemps(3) of template (suffixlen bytes of suffix kept, flags added to
 * O_RDWR|O_CREAT|O_EXCL), the new name recorded in the same step, so that no
 * moment exists when the file is there and unrecorded.  t may be NULL: then
 * it is mkostemps alone.  Returns the descriptor, or -1 with errno set. */
int sbd_tmpfiles_create(struct sbd_tmpfiles *t, char *template, int suffixlen, int flags);

/* An output's temporary twin: ".BASE.XXXXXX.tmp" in PATH's directory (so
 * that rename(2) into place is atomic), recorded as create does, with the
 * mode any new file gets (0666 less the umask) rather than mkstemp's 0600.
 * Returns the descriptor and sets *tmp_path (malloc'd); -1 with errno set. */
int sbd_tmpfiles_create_beside(struct sbd_tmpfiles *t, const char *path, char **tmp_path);

/* The file was renamed into place or removed: no longer ours to remove.
 * Call it after the rename (t may be NULL). */
void sbd_tmpfiles_forget(struct sbd_tmpfiles *t, const char *path);

/* Removes every recorded file and returns how many were there.  For the
 * signal thread, just before the process exits: from then on create fails
 * (ECANCELED), so that no new file can appear after it. */
size_t sbd_tmpfiles_remove_all(struct sbd_tmpfiles *t);

#endif

/* Ctrl-C, `kill` and a closed terminal during a run: SIGINT, SIGTERM and SIGHUP
 * are taken by a thread of their own, which removes the run's temporary files
 * (nothing else was changed: outputs are renamed into place only when whole,
 * cache entries only when verified) and exits at once with 128 + the signal
 * (130, 143, 129). */
#ifndef SBD_SIGNALS_H
#define SBD_SIGNALS_H

#include "lib/error.h"
#include "lib/tmpfiles.h"

struct sbd_signals;

/* Signals that were ignored when sbdisk started (nohup, a script's `cmd &`)
 * stay ignored.  Call before any other thread exists: the threads started later inherit the
 * blocked signals, so that only the watcher receives them. */
int sbd_signals_start(struct sbd_tmpfiles *t, struct sbd_signals **out, sbd_error_t *err);

/* Stops the watcher and unblocks the signals (s may be NULL). */
void sbd_signals_stop(struct sbd_signals *s);

#endif

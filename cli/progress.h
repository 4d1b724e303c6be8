/* Progress on a terminal: one bar per layer being downloaded or written,
 * with bytes and rate, and an overall bar for writing, redrawn in place a
 * few times a second by a thread of its own.  Lines printed through it
 * (a layer finished, a warning) scroll above the bars. */
#ifndef SBD_PROGRESS_H
#define SBD_PROGRESS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "lib/error.h"
#include "lib/fetch.h"

struct sbd_progress;

struct sbd_progress_layer {
  const char *label; /* e.g. the blob digest */
  uint64_t size;     /* compressed bytes */
};

/* Starts drawing on tty (which must be a terminal). */
int sbd_progress_start(FILE *tty, const struct sbd_progress_layer *layers, size_t n,
                       struct sbd_fetcher *fetcher, struct sbd_progress **out, sbd_error_t *err);

/* From the writer: layer i has consumed in_bytes of its blob / is finished. */
void sbd_progress_writing(struct sbd_progress *p, size_t i, uint64_t in_bytes);
void sbd_progress_written(struct sbd_progress *p, size_t i);

/* Prints a line above the bars. */
void sbd_progress_print(struct sbd_progress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Erases the bars and stops the thread; p may be NULL. */
void sbd_progress_stop(struct sbd_progress *p);

#endif

/* Large writes to a file on a thread of their own: the thread that fills the
 * buffers goes on decoding and writing inodes while the device works, which
 * with O_DIRECT (no page cache to absorb the write) would otherwise block it
 * for every buffer.  A handful of buffers circulate between the two. */
#ifndef SBD_WRITEBACK_H
#define SBD_WRITEBACK_H

#include <stddef.h>
#include <sys/types.h>

struct sbd_writeback;

/* nbufs buffers of buf_size bytes, aligned for O_DIRECT, written to fd. */
struct sbd_writeback *sbd_writeback_new(int fd, size_t buf_size, size_t nbufs);
/* A free buffer to fill: waits until the thread gives one back. */
void *sbd_writeback_buffer(struct sbd_writeback *w);
/* Queues the buffer sbd_writeback_buffer returned last: len bytes at off.
 * Returns -1 (errno set) if an earlier write failed; nothing is queued then. */
int sbd_writeback_submit(struct sbd_writeback *w, size_t len, off_t off);
/* Waits until every queued write is done: 0, or -1 with the errno of the
 * first that failed (a failure is reported until the writeback is freed). */
int sbd_writeback_drain(struct sbd_writeback *w);
/* Drains (ignoring failures) and frees; the fd stays open. */
void sbd_writeback_free(struct sbd_writeback *w);

#endif

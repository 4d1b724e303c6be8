/* md5 of every file of a layer, on a thread of its own.
 *
 * The official verifier's checksum needs the md5 of each regular file.  MD5
 * runs at about half the speed of inflating and writing, so hashing on the
 * writer thread made the md5 the longest stage of the pipeline; here the
 * writer copies each file's bytes into a bounded queue and goes on, and the
 * hasher thread writes each file's digest where it was told to once it has
 * seen the file's last byte.
 *
 * One producer (the layer's writer thread).  Digests are final only after
 * sbd_hasher_wait(): read them (or free what they are written into) after
 * that, never before. */
#ifndef SBD_HASHER_H
#define SBD_HASHER_H

#include <stddef.h>
#include <stdint.h>

struct sbd_hasher;

/* Starts the thread (aborts, as an allocation failure would, if it cannot). */
struct sbd_hasher *sbd_hasher_new(void);
/* Adds bytes to the current file; blocks while the queue is full. */
void sbd_hasher_update(struct sbd_hasher *h, const void *data, size_t len);
/* Ends the current file: its md5 (16 bytes) is written to out later, and the
 * next bytes start a new file. */
void sbd_hasher_final(struct sbd_hasher *h, uint8_t *out);
/* Once the digest written to `from` (by an earlier sbd_hasher_final or
 * sbd_hasher_copy) is final, copies it to `to` too: a hard link's md5 is its
 * target's, and waiting for that here would empty the queue at every link
 * (20,000 links to files of 64 KiB took a 3.7 s layer to 4.7 s). */
void sbd_hasher_copy(struct sbd_hasher *h, const uint8_t *from, uint8_t *to);
/* Returns when every digest asked for so far has been written. */
void sbd_hasher_wait(struct sbd_hasher *h);
/* Waits, stops the thread and frees h (NULL is fine). */
void sbd_hasher_free(struct sbd_hasher *h);

#endif

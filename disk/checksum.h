/* The official verifier's checksum of a snapshot directory:
 *
 *   find DIR -type f -exec md5sum {} + | cut -d' ' -f1 | LC_ALL=C sort | md5sum
 *
 * that is, the md5 of the sorted list of every regular file's md5 in hex, one
 * per line.  The builder fills the list from the md5s it computed while
 * writing; the reader (sbdisk verify) from the bytes on the disk. */
#ifndef SBD_CHECKSUM_H
#define SBD_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

#define SBD_CHECKSUM_HEX_LEN 33 /* 32 hex digits + NUL */

struct sbd_md5_list {
  uint8_t (*md5)[16]; /* raw: sorting them sorts their hex the same way */
  size_t n, cap;
};

/* Adds one file's md5 (16 raw bytes); hardlinks count once per name, as find
 * lists them. */
void sbd_md5_list_add(struct sbd_md5_list *l, const uint8_t md5[16]);
/* Makes room for n more md5s at once: a list sized up front takes 16 bytes a
 * file, where doubling as it grows may take up to 32. */
void sbd_md5_list_reserve(struct sbd_md5_list *l, size_t n);
/* Sorts the list (as LC_ALL=C sort does) and writes the checksum in hex. */
void sbd_md5_list_checksum(struct sbd_md5_list *l, char out[SBD_CHECKSUM_HEX_LEN]);
void sbd_md5_list_free(struct sbd_md5_list *l);
#define cleanup_md5_list __attribute__((cleanup(sbd_md5_list_free)))

#endif

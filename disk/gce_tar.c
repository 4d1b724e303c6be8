/* The oldgnu tar around disk.raw: its sparse map and the header blocks, laid
 * out as GNU tar 1.34 writes them for `tar --format=oldgnu -Scf` (checked
 * field by field against it; see tests/unit/test_gce_archive.c). */
#include <stdlib.h>
#include <string.h>

#include "disk/gce_archive_private.h"

/* Offsets in the header block (the GNU tar manual, "Old GNU Format"). */
#define H_NAME 0
#define H_MODE 100
#define H_UID 108
#define H_GID 116
#define H_SIZE 124
#define H_MTIME 136
#define H_CHKSUM 148
#define H_TYPEFLAG 156
#define H_MAGIC 257 /* "ustar  \0": magic and version run together */
#define H_UNAME 265
#define H_GNAME 297
#define H_SPARSE 386 /* 4 entries of offset[12], numbytes[12] */
#define H_ISEXTENDED 482
#define H_REALSIZE 483
#define HEADER_ENTRIES 4
/* An extension block: 21 entries, then its own isextended byte. */
#define EXT_ENTRIES 21
#define EXT_ISEXTENDED 504
#define ENTRY_LEN 24

void sbd_sparse_map_add(struct sbd_sparse_map *m, uint64_t offset, uint64_t len)
{
  if (len == 0)
    return;
  m->data_bytes += len;
  if (m->n > 0) {
    struct sbd_sparse_entry *last = &m->entries[m->n - 1];
    if (last->offset + last->numbytes == offset) {
      last->numbytes += len;
      return;
    }
  }
  if (m->n == m->cap) {
    m->cap = m->cap ? 2 * m->cap : 256;
    m->entries = xrealloc(m->entries, m->cap * sizeof(*m->entries));
  }
  m->entries[m->n++] = (struct sbd_sparse_entry){.offset = offset, .numbytes = len};
}

void sbd_sparse_map_end(struct sbd_sparse_map *m, uint64_t realsize)
{
  m->realsize = realsize;
  const struct sbd_sparse_entry *last = m->n ? &m->entries[m->n - 1] : NULL;
  if (last == NULL || last->offset + last->numbytes < realsize) {
    if (m->n == m->cap) {
      m->cap = m->cap ? 2 * m->cap : 1;
      m->entries = xrealloc(m->entries, m->cap * sizeof(*m->entries));
    }
    m->entries[m->n++] = (struct sbd_sparse_entry){.offset = realsize, .numbytes = 0};
  }
}

void sbd_sparse_map_free(struct sbd_sparse_map *m)
{
  free(m->entries);
  memset(m, 0, sizeof(*m));
}

void sbd_tar_number(char *field, size_t size, uint64_t value)
{
  /* size-1 octal digits hold values below 8^(size-1) */
  if ((size - 1) * 3 >= 64 || value >> ((size - 1) * 3) == 0) {
    field[size - 1] = '\0';
    for (size_t i = size - 1; i-- > 0; value >>= 3)
      field[i] = (char)('0' + (value & 7));
    return;
  }
  field[0] = (char)0x80;
  for (size_t i = size; i-- > 1; value >>= 8)
    field[i] = (char)(value & 0xff);
}

static size_t extension_blocks(const struct sbd_sparse_map *m)
{
  return m->n <= HEADER_ENTRIES ? 0 : (m->n - HEADER_ENTRIES + EXT_ENTRIES - 1) / EXT_ENTRIES;
}

size_t sbd_tar_header_len(const struct sbd_sparse_map *m)
{
  return SBD_TAR_BLOCK * (1 + extension_blocks(m));
}

static void write_entry(char *at, const struct sbd_sparse_entry *e)
{
  sbd_tar_number(at, 12, e->offset);
  sbd_tar_number(at + 12, 12, e->numbytes);
}

static void write_checksum(uint8_t *h)
{
  /* The sum of the block's bytes, unsigned, with the checksum field counted
   * as eight spaces; written as GNU tar does: six digits, NUL, space. */
  memset(h + H_CHKSUM, ' ', 8);
  unsigned sum = 0;
  for (size_t i = 0; i < SBD_TAR_BLOCK; i++)
    sum += h[i];
  sbd_tar_number((char *)h + H_CHKSUM, 7, sum);
  h[H_CHKSUM + 7] = ' ';
}

void sbd_tar_header_write(const struct sbd_sparse_map *m, uint64_t mtime, uint8_t *out)
{
  size_t n_ext = extension_blocks(m);
  memset(out, 0, SBD_TAR_BLOCK * (1 + n_ext));
  char *h = (char *)out;
  memcpy(h + H_NAME, "disk.raw", 8);
  sbd_tar_number(h + H_MODE, 8, 0644);
  sbd_tar_number(h + H_UID, 8, 0);
  sbd_tar_number(h + H_GID, 8, 0);
  sbd_tar_number(h + H_SIZE, 12, m->data_bytes);
  sbd_tar_number(h + H_MTIME, 12, mtime);
  h[H_TYPEFLAG] = 'S';
  memcpy(h + H_MAGIC, "ustar  ", 8);
  memcpy(h + H_UNAME, "root", 4);
  memcpy(h + H_GNAME, "root", 4);
  size_t e = 0;
  for (; e < m->n && e < HEADER_ENTRIES; e++)
    write_entry(h + H_SPARSE + e * ENTRY_LEN, &m->entries[e]);
  h[H_ISEXTENDED] = n_ext > 0;
  sbd_tar_number(h + H_REALSIZE, 12, m->realsize);
  write_checksum(out);

  /* Extension blocks carry no checksum. */
  for (size_t b = 1; b <= n_ext; b++) {
    char *x = h + b * SBD_TAR_BLOCK;
    for (size_t i = 0; i < EXT_ENTRIES && e < m->n; i++, e++)
      write_entry(x + i * ENTRY_LEN, &m->entries[e]);
    x[EXT_ISEXTENDED] = b < n_ext;
  }
}

uint64_t sbd_tar_trailer_len(uint64_t header_len, uint64_t data_len)
{
  uint64_t pad = (SBD_TAR_BLOCK - data_len % SBD_TAR_BLOCK) % SBD_TAR_BLOCK;
  uint64_t end = header_len + data_len + pad + 2 * SBD_TAR_BLOCK;
  return pad + 2 * SBD_TAR_BLOCK + (SBD_TAR_RECORD - end % SBD_TAR_RECORD) % SBD_TAR_RECORD;
}

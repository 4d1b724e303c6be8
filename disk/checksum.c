#include "checksum.h"

#include <stdlib.h>
#include <string.h>

#include "lib/digest.h"
#include "lib/util.h"

void sbd_md5_list_add(struct sbd_md5_list *l, const uint8_t md5[16])
{
  if (l->n == l->cap) {
    l->cap = l->cap ? 2 * l->cap : 256;
    l->hex = xrealloc(l->hex, l->cap * sizeof(*l->hex));
  }
  sbd_hex(md5, 16, l->hex[l->n++]);
}

/* Byte order: the C locale's sort. */
static int hex_cmp(const void *x, const void *y)
{
  return strcmp(x, y);
}

void sbd_md5_list_checksum(struct sbd_md5_list *l, char out[SBD_CHECKSUM_HEX_LEN])
{
  if (l->n > 1)
    qsort(l->hex, l->n, sizeof(*l->hex), hex_cmp);
  cleanup_hash struct sbd_hash *h = sbd_hash_new(SBD_HASH_MD5);
  for (size_t i = 0; i < l->n; i++) {
    sbd_hash_update(h, l->hex[i], 32);
    sbd_hash_update(h, "\n", 1);
  }
  uint8_t md5[16];
  sbd_hash_final(h, md5);
  sbd_hex(md5, sizeof(md5), out);
}

void sbd_md5_list_free(struct sbd_md5_list *l)
{
  free(l->hex);
  l->hex = NULL;
  l->n = l->cap = 0;
}

#include "checksum.h"

#include <stdlib.h>
#include <string.h>

#include "lib/digest.h"
#include "lib/util.h"

void sbd_md5_list_reserve(struct sbd_md5_list *l, size_t n)
{
  if (l->cap - l->n >= n)
    return;
  l->cap = l->n + n;
  l->md5 = xrealloc(l->md5, l->cap * sizeof(*l->md5));
}

void sbd_md5_list_add(struct sbd_md5_list *l, const uint8_t md5[16])
{
  if (l->n == l->cap) {
    l->cap = l->cap ? 2 * l->cap : 256;
    l->md5 = xrealloc(l->md5, l->cap * sizeof(*l->md5));
  }
  memcpy(l->md5[l->n++], md5, 16);
}

/* Lower-case hex digits sort as the nibbles they stand for ('0'-'9' before
 * 'a'-'f'), so the C locale's order of the hex lines is the order of the raw
 * bytes. */
static int md5_cmp(const void *x, const void *y)
{
  return memcmp(x, y, 16);
}

static uint16_t md5_top16(const void *x)
{
  const uint8_t *b = x;
  return (uint16_t)(b[0] << 8 | b[1]);
}

void sbd_md5_list_checksum(struct sbd_md5_list *l, char out[SBD_CHECKSUM_HEX_LEN])
{
  sbd_sort_spread(l->md5, l->n, sizeof(*l->md5), md5_top16, md5_cmp);
  cleanup_hash struct sbd_hash *h = sbd_hash_new(SBD_HASH_MD5);
  char line[4096 + 1];
  size_t used = 0;
  for (size_t i = 0; i < l->n; i++) {
    if (used + 33 > sizeof(line) - 1) {
      sbd_hash_update(h, line, used);
      used = 0;
    }
    sbd_hex(l->md5[i], 16, line + used);
    line[used + 32] = '\n';
    used += 33;
  }
  sbd_hash_update(h, line, used);
  uint8_t md5[16];
  sbd_hash_final(h, md5);
  sbd_hex(md5, sizeof(md5), out);
}

void sbd_md5_list_free(struct sbd_md5_list *l)
{
  free(l->md5);
  l->md5 = NULL;
  l->n = l->cap = 0;
}

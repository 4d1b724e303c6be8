#include "metadata.h"

#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

char *sbd_metadata_snapshots(const struct sbd_snapshot_line *lines, size_t n)
{
  struct sbd_buf b = {0};
  for (size_t i = 0; i < n; i++)
    sbd_buf_appendf(&b, "%s snapshots/%zu/fs %s\n", lines[i].chain_id, lines[i].number,
                    lines[i].checksum);
  return sbd_buf_cstr(&b);
}

char *sbd_metadata_human_size(uint64_t bytes)
{
  static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"};
  double v = (double)bytes;
  size_t i = 0;
  while (v >= 1024.0 && i + 1 < sizeof(units) / sizeof(units[0])) {
    v /= 1024.0;
    i++;
  }
  return xasprintf("%02.1f %s", v, units[i]);
}

/* Go's tabwriter counts runes, not bytes. */
static size_t text_width(const char *s)
{
  size_t w = 0;
  for (; *s; s++)
    if (((unsigned char)*s & 0xc0) != 0x80)
      w++;
  return w;
}

static int row_cmp(const void *x, const void *y)
{
  return strcmp(((const struct sbd_image_row *)x)->name, ((const struct sbd_image_row *)y)->name);
}

#define COLUMNS 6

char *sbd_metadata_images(const struct sbd_image_row *rows, size_t n)
{
  struct sbd_image_row *sorted = xcalloc(n ? n : 1, sizeof(*sorted));
  memcpy(sorted, rows, n * sizeof(*rows));
  qsort(sorted, n, sizeof(*sorted), row_cmp);

  /* cells[r][c]; row 0 is the header */
  char *(*cells)[COLUMNS] = xcalloc(n + 1, sizeof(*cells));
  static const char *const header[COLUMNS] = {"REF", "TYPE", "DIGEST", "SIZE", "PLATFORMS", "LABELS"};
  for (size_t c = 0; c < COLUMNS; c++)
    cells[0][c] = xstrdup(header[c]);
  for (size_t r = 0; r < n; r++) {
    const struct sbd_image_row *row = &sorted[r];
    cells[r + 1][0] = xstrdup(row->name);
    cells[r + 1][1] = xstrdup(row->media_type);
    cells[r + 1][2] = xstrdup(row->digest);
    cells[r + 1][3] = sbd_metadata_human_size(row->size);
    cells[r + 1][4] = xstrdup(row->platforms && row->platforms[0] ? row->platforms : "-");
    cells[r + 1][5] = xstrdup(row->labels && row->labels[0] ? row->labels : "-");
  }
  size_t width[COLUMNS] = {0};
  for (size_t r = 0; r <= n; r++)
    for (size_t c = 0; c < COLUMNS; c++) {
      size_t w = text_width(cells[r][c]) + 1; /* padding 1 */
      if (w > width[c])
        width[c] = w;
    }
  struct sbd_buf b = {0};
  for (size_t r = 0; r <= n; r++) {
    for (size_t c = 0; c < COLUMNS; c++) {
      sbd_buf_append(&b, cells[r][c], strlen(cells[r][c]));
      for (size_t k = text_width(cells[r][c]); k < width[c]; k++)
        sbd_buf_append(&b, " ", 1);
      free(cells[r][c]);
    }
    sbd_buf_append(&b, "\n", 1);
  }
  free(cells);
  free(sorted);
  return sbd_buf_cstr(&b);
}

#include "metadata.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "lib/digest.h"
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
  if (n > 0) /* rows may be NULL then, which memcpy must not see */
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

/* --- reading ------------------------------------------------------------------------ */

static bool is_lower_hex(const char *s, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
      return false;
  return true;
}

/* "snapshots/N/fs" with N a decimal number from 1, no leading zero. */
static bool parse_snapshot_path(const char *p, size_t len, size_t *number)
{
  static const char prefix[] = "snapshots/", suffix[] = "/fs";
  size_t pl = sizeof(prefix) - 1, sl = sizeof(suffix) - 1;
  if (len <= pl + sl || memcmp(p, prefix, pl) != 0 || memcmp(p + len - sl, suffix, sl) != 0)
    return false;
  const char *d = p + pl, *end = p + len - sl;
  if (*d == '0' || end - d > 18)
    return false;
  size_t v = 0;
  for (; d < end; d++) {
    if (*d < '0' || *d > '9')
      return false;
    v = v * 10 + (size_t)(*d - '0');
  }
  *number = v;
  return true;
}

int sbd_metadata_parse_snapshot_line(const char *line, struct sbd_snapshot_entry *out,
                                     sbd_error_t *err)
{
  memset(out, 0, sizeof(*out));
  const char *sp1 = strchr(line, ' ');
  const char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
  if (sp2 == NULL || strchr(sp2 + 1, ' ') != NULL)
    return sbd_error_set(err, SBD_EXIT_IMAGE, 0,
                         "\"%s\" is not \"<chainID> snapshots/<N>/fs <md5>\"", line);
  cleanup_free char *chain = xstrndup(line, (size_t)(sp1 - line));
  if (!sbd_digest_valid(chain))
    return sbd_error_set(err, SBD_EXIT_IMAGE, 0, "\"%s\" is not a sha256 chainID", chain);
  size_t number;
  if (!parse_snapshot_path(sp1 + 1, (size_t)(sp2 - sp1 - 1), &number))
    return sbd_error_set(err, SBD_EXIT_IMAGE, 0, "\"%.*s\" is not a path snapshots/<N>/fs",
                         (int)(sp2 - sp1 - 1), sp1 + 1);
  const char *sum = sp2 + 1;
  if (strlen(sum) != 32 || !is_lower_hex(sum, 32))
    return sbd_error_set(err, SBD_EXIT_IMAGE, 0, "\"%s\" is not an md5 (32 hex digits)", sum);
  out->chain_id = steal_pointer(&chain);
  out->path = xstrndup(sp1 + 1, (size_t)(sp2 - sp1 - 1));
  out->number = number;
  out->checksum = xstrdup(sum);
  return 0;
}

void sbd_snapshot_entry_free(struct sbd_snapshot_entry *e)
{
  free(e->chain_id);
  free(e->path);
  free(e->checksum);
  memset(e, 0, sizeof(*e));
}

/* Byte offset of the rune at position r in s[0..len), len when s is shorter. */
static size_t rune_offset(const char *s, size_t len, size_t r)
{
  size_t i = 0;
  for (size_t seen = 0; i < len; i++) {
    if (((unsigned char)s[i] & 0xc0) == 0x80)
      continue;
    if (seen++ == r)
      return i;
  }
  return len;
}

static char *cell_at(const char *line, size_t len, size_t from_rune, size_t to_rune)
{
  size_t a = rune_offset(line, len, from_rune);
  size_t b = to_rune == SIZE_MAX ? len : rune_offset(line, len, to_rune);
  while (b > a && line[b - 1] == ' ')
    b--;
  return xstrndup(line + a, b - a);
}

static const char *const image_header[SBD_IMAGE_COLUMNS] = {"REF",  "TYPE",      "DIGEST",
                                                            "SIZE", "PLATFORMS", "LABELS"};

/* Where each header word starts, in runes (the header is ASCII). */
static int header_columns(const char *line, size_t len, size_t start[SBD_IMAGE_COLUMNS],
                          sbd_error_t *err)
{
  size_t pos = 0;
  for (size_t c = 0; c < SBD_IMAGE_COLUMNS; c++) {
    while (c > 0 && pos < len && line[pos] == ' ')
      pos++;
    size_t wl = strlen(image_header[c]);
    if (pos + wl > len || memcmp(line + pos, image_header[c], wl) != 0 ||
        (pos + wl < len && line[pos + wl] != ' '))
      return sbd_error_set(err, SBD_EXIT_IMAGE, 0,
                           "line 1: the header is not REF TYPE DIGEST SIZE PLATFORMS LABELS");
    start[c] = pos;
    pos += wl;
  }
  for (; pos < len; pos++)
    if (line[pos] != ' ')
      return sbd_error_set(err, SBD_EXIT_IMAGE, 0, "line 1: text after the LABELS header");
  return 0;
}

static int parse_image_row(const char *line, size_t len, const size_t start[SBD_IMAGE_COLUMNS],
                           struct sbd_image_entry *e, sbd_error_t *err)
{
  for (size_t c = 0; c < SBD_IMAGE_COLUMNS; c++) {
    /* A cell wider than its column would have pushed the next one right:
     * the rune just before each column start is padding. */
    size_t at = rune_offset(line, len, start[c]);
    bool padded = c == 0 || line[rune_offset(line, len, start[c] - 1)] == ' ';
    if (at >= len || line[at] == ' ' || !padded)
      return sbd_error_set(err, SBD_EXIT_IMAGE, 0, "the %s column is empty or out of place",
                           image_header[c]);
    e->cells[c] = cell_at(line, len, start[c], c + 1 < SBD_IMAGE_COLUMNS ? start[c + 1] : SIZE_MAX);
  }
  return 0;
}

int sbd_metadata_parse_images(const char *text, struct sbd_image_entry **out, size_t *n,
                              sbd_error_t *err)
{
  *out = NULL;
  *n = 0;
  size_t start[SBD_IMAGE_COLUMNS];
  struct sbd_image_entry *rows = NULL;
  size_t n_rows = 0;
  size_t lineno = 0;
  for (const char *p = text; *p;) {
    const char *nl = strchr(p, '\n');
    if (nl == NULL) {
      sbd_image_entries_free(rows, n_rows);
      return sbd_error_set(err, SBD_EXIT_IMAGE, 0, "line %zu does not end with a newline",
                           lineno + 1);
    }
    size_t len = (size_t)(nl - p);
    lineno++;
    if (lineno == 1) {
      if (header_columns(p, len, start, err) < 0)
        return -1;
    } else {
      rows = xrealloc(rows, (n_rows + 1) * sizeof(*rows));
      memset(&rows[n_rows], 0, sizeof(*rows));
      if (parse_image_row(p, len, start, &rows[n_rows++], err) < 0) {
        sbd_image_entries_free(rows, n_rows);
        return sbd_error_prefix(err, "line %zu: ", lineno);
      }
    }
    p = nl + 1;
  }
  if (lineno == 0)
    return sbd_error_set(err, SBD_EXIT_IMAGE, 0, "the file is empty (no header line)");
  *out = rows;
  *n = n_rows;
  return 0;
}

void sbd_image_entries_free(struct sbd_image_entry *e, size_t n)
{
  for (size_t i = 0; e && i < n; i++)
    for (size_t c = 0; c < SBD_IMAGE_COLUMNS; c++)
      free(e[i].cells[c]);
  free(e);
}

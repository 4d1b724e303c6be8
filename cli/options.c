/* Option helpers shared by the subcommands. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "lib/util.h"

#define GIB (1024ull * 1024 * 1024)

int sbd_parse_size(const char *s, uint64_t *bytes, sbd_error_t *err)
{
  char *end;
  errno = 0;
  unsigned long long n = strtoull(s, &end, 10);
  if (end == s || errno || s[0] == '-')
    return sbd_error_set(err, SBD_EXIT_USAGE, 0, "invalid size \"%s\" (expected e.g. 60G)", s);
  if (*end == '.' || *end == ',')
    return sbd_error_set(err, SBD_EXIT_USAGE, 0,
                         "size \"%s\" is not a whole number of GiB, which GCE requires", s);
  uint64_t unit = GIB;
  cleanup_free char *suffix = xstrdup(end);
  for (char *p = suffix; *p; p++)
    *p = (char)toupper((unsigned char)*p);
  if (suffix[0] == '\0' || !strcmp(suffix, "G") || !strcmp(suffix, "GB") || !strcmp(suffix, "GIB"))
    unit = GIB;
  else if (!strcmp(suffix, "T") || !strcmp(suffix, "TB") || !strcmp(suffix, "TIB"))
    unit = 1024 * GIB;
  else if (!strcmp(suffix, "M") || !strcmp(suffix, "MB") || !strcmp(suffix, "MIB"))
    unit = 1024 * 1024;
  else
    return sbd_error_set(err, SBD_EXIT_USAGE, 0, "invalid size \"%s\" (units: G or T)", s);
  if (n == 0 || n > (64ull * 1024 * GIB) / unit)
    return sbd_error_set(err, SBD_EXIT_USAGE, 0, "size \"%s\" is out of range (10G to 64T)", s);
  uint64_t b = n * unit;
  if (b % GIB != 0)
    return sbd_error_set(err, SBD_EXIT_USAGE, 0,
                         "size \"%s\" is not a whole number of GiB, which GCE requires", s);
  if (b < 10 * GIB)
    return sbd_error_set(err, SBD_EXIT_USAGE, 0,
                         "size \"%s\" is below 10G, the smallest persistent disk", s);
  *bytes = b;
  return 0;
}

int sbd_read_image_list(const char *path, char ***refs, size_t *n, sbd_error_t *err)
{
  FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "re");
  if (f == NULL)
    return sbd_error_set(err, SBD_EXIT_USAGE, errno, "cannot read image list %s", path);
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  while ((len = getline(&line, &cap, f)) >= 0) {
    char *hash = strchr(line, '#');
    if (hash)
      *hash = '\0';
    char *start = line;
    while (isspace((unsigned char)*start))
      start++;
    char *end = start + strlen(start);
    while (end > start && isspace((unsigned char)end[-1]))
      *--end = '\0';
    if (*start == '\0')
      continue;
    if (strpbrk(start, " \t")) {
      sbd_error_set(err, SBD_EXIT_USAGE, 0, "image list %s: one reference per line: \"%s\"", path,
                    start);
      break;
    }
    *refs = xrealloc(*refs, (*n + 1) * sizeof(**refs));
    (*refs)[(*n)++] = xstrdup(start);
  }
  bool failed = ferror(f) || (err && *err);
  free(line);
  if (f != stdin)
    fclose(f);
  if (failed)
    return sbd_error_set(err, SBD_EXIT_USAGE, EIO, "cannot read image list %s", path);
  return 0;
}

int sbd_parse_disk_args(int argc, char **argv, const char *cmd, const char *usage, bool *json,
                        const char **disk, sbd_error_t *err)
{
  enum { OPT_JSON = 256 };
  static const struct option with_json[] = {
      {"json", no_argument, NULL, OPT_JSON},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  optind = 1;
  opterr = 0;
  int c;
  /* Without json, the table starts at --help: --json is then unknown. */
  while ((c = getopt_long(argc, argv, ":h", json ? with_json : with_json + 1, NULL)) != -1) {
    switch (c) {
    case OPT_JSON:
      *json = true;
      break;
    case 'h':
      fputs(usage, stdout);
      return 1;
    default:
      return sbd_error_set(err, SBD_EXIT_USAGE, 0, "unknown option %s (see sbdisk %s --help)",
                           argv[optind - 1], cmd);
    }
  }
  if (argc - optind != 1)
    return sbd_error_set(err, SBD_EXIT_USAGE, 0, "%s (sbdisk %s%s DISK, see --help)",
                         argc == optind ? "no disk given" : "one disk at a time", cmd,
                         json ? " [--json]" : "");
  *disk = argv[optind];
  return 0;
}

int sbd_report_error(sbd_error_t err)
{
  fprintf(stderr, "sbdisk: error: %s\n", err ? err->msg : "unknown error");
  return sbd_error_exit_code(err);
}

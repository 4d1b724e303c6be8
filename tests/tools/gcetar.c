/* gcetar: the GCE archive engine (disk/gce_archive.h) on its own, for tests and
 * for measuring it before `sbdisk build --gce-tar` exists.
 *
 * Usage: gcetar [--threads N] [--level L] [--mtime T] [--no-raw-digest] RAW [ARCHIVE]
 *
 * Prints one line of key=value: raw_size, raw_sha256 and, with ARCHIVE,
 * archive_size, archive_sha256, tar_size, data_bytes, seconds. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "disk/gce_archive.h"

int main(int argc, char **argv)
{
  struct sbd_gce_archive_params p = {0};
  static const struct option opts[] = {
      {"threads", required_argument, NULL, 't'},
      {"level", required_argument, NULL, 'l'},
      {"mtime", required_argument, NULL, 'm'},
      {"no-raw-digest", no_argument, NULL, 'n'},
      {NULL, 0, NULL, 0},
  };
  int c;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
    case 't': p.threads = (unsigned)strtoul(optarg, NULL, 10); break;
    case 'l': p.level = atoi(optarg); break;
    case 'm': p.mtime = strtoll(optarg, NULL, 10); break;
    case 'n': p.no_raw_digest = true; break;
    default:
      fprintf(stderr, "usage: gcetar [--threads N] [--level L] [--mtime T] [--no-raw-digest] RAW [ARCHIVE]\n");
      return 2;
    }
  }
  if (optind >= argc || argc - optind > 2) {
    fprintf(stderr, "usage: gcetar [--threads N] [--level L] [--mtime T] [--no-raw-digest] RAW [ARCHIVE]\n");
    return 2;
  }
  p.raw_path = argv[optind];
  p.archive_path = optind + 1 < argc ? argv[optind + 1] : NULL;

  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  struct sbd_gce_archive_result r;
  cleanup_error sbd_error_t err = NULL;
  if (sbd_gce_archive_write(&p, &r, &err) < 0) {
    fprintf(stderr, "gcetar: %s\n", err->msg);
    return sbd_error_exit_code(err);
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  printf("raw_size=%" PRIu64 " raw_sha256=%s", r.raw_size, r.raw_digest);
  if (p.archive_path)
    printf(" archive_size=%" PRIu64 " archive_sha256=%s tar_size=%" PRIu64 " data_bytes=%" PRIu64,
           r.archive_size, r.archive_digest, r.tar_size, r.data_bytes);
  printf(" seconds=%.3f\n", secs);
  return 0;
}

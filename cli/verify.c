/* sbdisk verify: is the disk what its metadata says? */
#include <string.h>

#include "cli/cli.h"
#include "disk/inspect.h"
#include "lib/util.h"

static const char verify_usage[] =
    "Usage: sbdisk verify [OPTIONS] DISK\n"
    "\n"
    "Checks that a disk is what its metadata claims, reading it as a file,\n"
    "read-only (no mount, no root):\n"
    "  - the superblock opens and has the features the snapshots rely on (extent,\n"
    "    filetype, ext_attr), and the block and inode bitmaps load;\n"
    "  - images.metadata parses as the table `ctr images ls` prints;\n"
    "  - every line of snapshots.metadata parses and names a directory\n"
    "    snapshots/N/fs, and every snapshots/N directory has its line;\n"
    "  - every snapshot's checksum, recomputed from the files' bytes the way GKE's\n"
    "    builder verifies it (md5 of the sorted md5s of its regular files), equals\n"
    "    the recorded one.\n"
    "Prints a line per snapshot checked and one per difference, then\n"
    "\"OK: N snapshots, M files checked\" and exits 0, or exits 4 when anything\n"
    "differs (2 when DISK cannot be opened).\n"
    "\n"
    "Options:\n"
    "  -h, --help                show this help\n"
    "\n"
    "Example:\n"
    "  sbdisk build -o disk.raw nginx:1.27 && sbdisk verify disk.raw\n";

int sbd_cmd_verify(int argc, char **argv)
{
  cleanup_error sbd_error_t err = NULL;
  const char *disk = NULL;
  int r = sbd_parse_disk_args(argc, argv, "verify", verify_usage, NULL, &disk, &err);
  if (r > 0)
    return 0;
  struct sbd_inspect_options o = {.verify = true};
  struct sbd_inspect rep;
  if (r < 0 || sbd_inspect_disk(disk, &o, &rep, &err) < 0)
    return sbd_report_error(err);
  uint64_t files = 0;
  for (size_t i = 0; i < rep.n_snapshots; i++) {
    const struct sbd_inspect_snapshot *s = &rep.snapshots[i];
    if (!s->walked)
      continue;
    files += s->files;
    if (strcmp(s->computed, s->entry.checksum) == 0)
      printf("%s: md5 %s ok, %llu files\n", s->entry.path, s->computed,
             (unsigned long long)s->files);
  }
  for (size_t i = 0; i < rep.n_problems; i++)
    printf("%s\n", rep.problems[i]);
  int rc = SBD_EXIT_OK;
  if (rep.n_problems == 0) {
    printf("OK: %zu snapshots, %llu files checked\n", rep.n_snapshots, (unsigned long long)files);
  } else {
    printf("FAILED: %zu difference%s (%zu snapshots, %llu files checked)\n", rep.n_problems,
           rep.n_problems == 1 ? "" : "s", rep.n_snapshots, (unsigned long long)files);
    fprintf(stderr, "sbdisk: error: %s is not what its metadata claims (%zu difference%s)\n", disk,
            rep.n_problems, rep.n_problems == 1 ? "" : "s");
    rc = SBD_EXIT_IMAGE;
  }
  sbd_inspect_free(&rep);
  return rc;
}

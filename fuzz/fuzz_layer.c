/* libFuzzer target: a layer blob (tar, or gzip when its first bytes say so)
 * applied into a fresh ext4 image through sbd_disk_build, the path
 * `sbdisk build` takes.  A build may refuse the layer with a message; a
 * build that succeeds must leave a filesystem `e2fsck -fn` calls clean.
 *
 * e2fsck is run as a child process: the real checker, not our reading of
 * it.  The disk is the smallest sbdisk makes (10 GiB, sparse) in a tmpfs
 * when there is one; see fuzz/README.md for what that costs per input. */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "disk/disk.h"
#include "fuzz/fuzz.h"
#include "lib/digest.h"
#include "lib/util.h"

extern char **environ;

/* One scratch directory per process, made on the first input: libFuzzer
 * gives the target no other place to keep it. */
static char scratch[64];

static void scratch_remove(void)
{
  char path[128];
  snprintf(path, sizeof(path), "%s/layer", scratch);
  unlink(path);
  snprintf(path, sizeof(path), "%s/disk.raw", scratch);
  unlink(path);
  rmdir(scratch);
}

static void scratch_make(void)
{
  if (scratch[0])
    return;
  struct stat st;
  const char *base = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ? "/dev/shm" : "/tmp";
  snprintf(scratch, sizeof(scratch), "%s/sbdisk-fuzz-XXXXXX", base);
  if (mkdtemp(scratch) == NULL) {
    perror("mkdtemp");
    abort();
  }
  atexit(scratch_remove);
}

/* True when `e2fsck -fn disk` exits 0 (no errors, nothing it would change). */
static int e2fsck_clean(const char *disk)
{
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  char *argv[] = {"e2fsck", "-fn", (char *)disk, NULL};
  pid_t pid;
  int rc = posix_spawnp(&pid, "e2fsck", &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    fprintf(stderr, "fuzz_layer: cannot run e2fsck: %s\n", strerror(rc));
    abort();
  }
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR)
      abort();
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  scratch_make();
  cleanup_free char *blob = xasprintf("%s/layer", scratch);
  cleanup_free char *disk = xasprintf("%s/disk.raw", scratch);
  cleanup_close int fd = open(blob, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0 || sbd_write_all(fd, data, size) < 0)
    abort();

  /* The blob digest is the input's own; the diffID is left unchecked, as a
   * gzip input's uncompressed bytes are not known here. */
  char digest[SBD_DIGEST_STR_LEN];
  sbd_digest_buffer(data, size, digest);
  bool gzip = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
  struct sbd_disk_layer layer = {.blob_path = blob, .blob_size = size, .compressed = gzip,
                                 .blob_digest = digest, .chain_id = digest,
                                 .parent = SBD_DISK_NO_PARENT, .what = "fuzz layer"};
  struct sbd_disk_spec spec = {.output = disk, .size_bytes = SBD_DISK_MIN_SIZE,
                               .now = 1700000000, .layers = &layer, .n_layers = 1};
  struct sbd_disk_result res;
  cleanup_error sbd_error_t err = NULL;
  if (sbd_disk_build(&spec, &res, &err) < 0) {
    if (err == NULL || err->msg == NULL)
      abort(); /* a refusal must say why */
    if (access(disk, F_OK) == 0)
      abort(); /* ...and leave no output behind */
    return 0;
  }
  if (!e2fsck_clean(disk)) {
    fprintf(stderr, "fuzz_layer: e2fsck -fn finds errors in the disk built from this input\n");
    abort();
  }
  unlink(disk);
  return 0;
}

/* sbdisk: container images in, a GKE secondary boot disk out. */
#include <curl/curl.h>
#include <locale.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const char usage[] =
    "Usage: sbdisk COMMAND [OPTIONS]\n"
    "\n"
    "Turns container images into a raw ext4 disk image that GKE attaches to nodes\n"
    "as a secondary boot disk (mode CONTAINER_IMAGE_CACHE), so pods start without\n"
    "pulling their images. No VM, no root, no daemon.\n"
    "\n"
    "Commands:\n"
    "  build      build a disk image from container images\n"
    "  inspect    show what a disk holds: images, snapshots, filesystem usage\n"
    "  verify     check a disk against its metadata, checksums included\n"
    "\n"
    "Options:\n"
    "  -h, --help      show this help (sbdisk COMMAND --help for a command's)\n"
    "  -V, --version   show the version\n"
    "\n"
    "Example:\n"
    "  sbdisk build -o disk.raw vllm/vllm-openai:v0.6.3 nvcr.io/nvidia/tritonserver:24.08-py3\n"
    "  sbdisk verify disk.raw\n"
    "\n"
    "See sbdisk(1) for the disk layout and exit codes.\n";

int main(int argc, char **argv)
{
  /* Tar names are bytes; a UTF-8 locale lets libarchive pass PAX (UTF-8)
   * names through unchanged. */
  if (setlocale(LC_CTYPE, "C.UTF-8") == NULL)
    setlocale(LC_CTYPE, "");
  if (argc < 2) {
    fputs(usage, stderr);
    return 2;
  }
  const char *cmd = argv[1];
  if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
    if (argc > 2 && strcmp(cmd, "help") == 0) {
      char *sub[] = {argv[2], "--help", NULL};
      if (strcmp(argv[2], "build") == 0)
        return sbd_cmd_build(2, sub);
      if (strcmp(argv[2], "inspect") == 0)
        return sbd_cmd_inspect(2, sub);
      if (strcmp(argv[2], "verify") == 0)
        return sbd_cmd_verify(2, sub);
    }
    fputs(usage, stdout);
    return 0;
  }
  if (strcmp(cmd, "-V") == 0 || strcmp(cmd, "--version") == 0) {
    printf("sbdisk %s\n", SBD_VERSION);
    return 0;
  }
  if (strcmp(cmd, "build") == 0) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = sbd_cmd_build(argc - 1, argv + 1);
    curl_global_cleanup();
    return rc;
  }
  if (strcmp(cmd, "inspect") == 0)
    return sbd_cmd_inspect(argc - 1, argv + 1);
  if (strcmp(cmd, "verify") == 0)
    return sbd_cmd_verify(argc - 1, argv + 1);
  fprintf(stderr, "sbdisk: unknown command \"%s\"\n\n%s", cmd, usage);
  return 2;
}

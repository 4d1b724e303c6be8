/* The command line: one file per subcommand, shared option helpers. */
#ifndef SBD_CLI_H
#define SBD_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "lib/error.h"

int sbd_cmd_build(int argc, char **argv);
int sbd_cmd_inspect(int argc, char **argv);
int sbd_cmd_verify(int argc, char **argv);

/* "60G", "60GiB", "60GB", "60" (GiB, as gcloud reads it), "1T": bytes, which
 * must be a whole number of GiB. */
int sbd_parse_size(const char *s, uint64_t *bytes, sbd_error_t *err);

/* Appends the references in a list file (one per line, '#' comments, blank
 * lines ignored; "-" is stdin) to *refs. */
int sbd_read_image_list(const char *path, char ***refs, size_t *n, sbd_error_t *err);

/* `sbdisk CMD [--json] DISK`, the arguments inspect and verify take; json
 * NULL: CMD has no --json.  Returns 1 when --help printed usage. */
int sbd_parse_disk_args(int argc, char **argv, const char *cmd, const char *usage, bool *json,
                        const char **disk, sbd_error_t *err);

/* Prints "sbdisk: error: MSG" and returns the error's exit code. */
int sbd_report_error(sbd_error_t err);

#endif

/* sbdisk inspect: what a disk holds, as a report or as JSON. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "disk/inspect.h"
#include "disk/metadata.h"
#include "lib/util.h"

static const char inspect_usage[] =
    "Usage: sbdisk inspect [OPTIONS] DISK\n"
    "\n"
    "Shows what a disk built by sbdisk (or by GKE's disk image builder) holds: the\n"
    "images of images.metadata, each snapshot of snapshots.metadata with its chainID,\n"
    "file count, size, recorded checksum and the images that use it, and the\n"
    "filesystem's size and usage.  The disk is read as a file, read-only: no mount,\n"
    "no root.  Contents are counted from inodes and directories only; `sbdisk verify`\n"
    "reads every file to check the checksums.\n"
    "\n"
    "Options:\n"
    "      --json                print one JSON object: images, snapshots, filesystem\n"
    "                            (and problems: what does not match what the disk\n"
    "                            claims)\n"
    "  -h, --help                show this help\n"
    "\n"
    "Examples:\n"
    "  sbdisk inspect disk.raw\n"
    "  sbdisk inspect --json disk.raw | jq -r '.snapshots[].chain_id'\n";

/* "a\nb" as a JSON array; null when the disk does not record it. */
static json_t *lines_array(const char *lines)
{
  if (lines == NULL)
    return json_null();
  json_t *a = json_array();
  for (const char *p = lines; *p;) {
    const char *nl = strchr(p, '\n');
    size_t len = nl ? (size_t)(nl - p) : strlen(p);
    json_array_append_new(a, json_stringn(p, len));
    p += len + (nl ? 1 : 0);
  }
  return a;
}

static json_t *report_json(const struct sbd_inspect *r)
{
  static const char *const keys[SBD_IMAGE_COLUMNS] = {"ref",  "type",      "digest",
                                                      "size", "platforms", "labels"};
  json_t *images = json_array();
  for (size_t i = 0; i < r->n_images; i++) {
    json_t *o = json_object();
    for (size_t c = 0; c < SBD_IMAGE_COLUMNS; c++)
      json_object_set_new(o, keys[c], json_string(r->images[i].cells[c]));
    json_array_append_new(images, o);
  }
  json_t *snapshots = json_array();
  for (size_t i = 0; i < r->n_snapshots; i++) {
    const struct sbd_inspect_snapshot *s = &r->snapshots[i];
    json_t *o = json_pack("{s:I, s:s, s:s, s:s, s:b}", "number", (json_int_t)s->entry.number,
                          "path", s->entry.path, "chain_id", s->entry.chain_id, "checksum",
                          s->entry.checksum, "found", s->found);
    if (s->walked) {
      json_object_set_new(o, "files", json_integer((json_int_t)s->files));
      json_object_set_new(o, "directories", json_integer((json_int_t)s->directories));
      json_object_set_new(o, "others", json_integer((json_int_t)s->others));
      json_object_set_new(o, "bytes", json_integer((json_int_t)s->bytes));
    }
    json_object_set_new(o, "images", lines_array(s->used_by));
    json_array_append_new(snapshots, o);
  }
  const struct sbd_inspect_fs *f = &r->fs;
  json_t *fs = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:s}", "size_bytes",
                         (json_int_t)f->size_bytes, "block_size", (json_int_t)f->block_size,
                         "blocks", (json_int_t)f->blocks, "free_blocks", (json_int_t)f->free_blocks,
                         "inodes", (json_int_t)f->inodes, "free_inodes", (json_int_t)f->free_inodes,
                         "uuid", f->uuid);
  json_t *problems = json_array();
  for (size_t i = 0; i < r->n_problems; i++)
    json_array_append_new(problems, json_string(r->problems[i]));
  return json_pack("{s:o, s:o, s:o, s:o}", "images", images, "snapshots", snapshots, "filesystem",
                   fs, "problems", problems);
}

static void print_images(const struct sbd_inspect *r)
{
  printf("Images (%zu):\n", r->n_images);
  for (size_t i = 0; i < r->n_images; i++) {
    char *const *c = r->images[i].cells;
    printf("  %s\n", c[SBD_IMAGE_REF]);
    printf("    type       %s\n", c[SBD_IMAGE_TYPE]);
    printf("    digest     %s\n", c[SBD_IMAGE_DIGEST]);
    printf("    size       %s\n", c[SBD_IMAGE_SIZE]);
    printf("    platforms  %s\n", c[SBD_IMAGE_PLATFORMS]);
    printf("    labels     %s\n", c[SBD_IMAGE_LABELS]);
  }
}

static void print_snapshots(const struct sbd_inspect *r)
{
  printf("\nSnapshots (%zu):\n", r->n_snapshots);
  for (size_t i = 0; i < r->n_snapshots; i++) {
    const struct sbd_inspect_snapshot *s = &r->snapshots[i];
    printf("  %s\n", s->entry.path);
    printf("    chain ID   %s\n", s->entry.chain_id);
    printf("    checksum   %s (recorded)\n", s->entry.checksum);
    if (s->walked) {
      cleanup_free char *bytes = sbd_metadata_human_size(s->bytes);
      printf("    contents   %llu files (%s), %llu directories, %llu other entries\n",
             (unsigned long long)s->files, bytes, (unsigned long long)s->directories,
             (unsigned long long)s->others);
    } else {
      printf("    contents   %s\n", s->found ? "unreadable" : "missing");
    }
    printf("    images     ");
    if (s->used_by == NULL)
      printf("unknown (not recorded by the build that made this disk)\n");
    for (const char *p = s->used_by; p && *p;) {
      const char *nl = strchr(p, '\n');
      size_t len = nl ? (size_t)(nl - p) : strlen(p);
      printf("%s%.*s\n", p == s->used_by ? "" : "               ", (int)len, p);
      p += len + (nl ? 1 : 0);
    }
  }
}

static void print_filesystem(const struct sbd_inspect *r)
{
  const struct sbd_inspect_fs *f = &r->fs;
  cleanup_free char *size = sbd_metadata_human_size(f->size_bytes);
  cleanup_free char *used = sbd_metadata_human_size((f->blocks - f->free_blocks) * f->block_size);
  printf("\nFilesystem:\n");
  printf("  size       %s (%llu bytes)\n", size, (unsigned long long)f->size_bytes);
  printf("  blocks     %llu of %u bytes, %llu free (%s used)\n", (unsigned long long)f->blocks,
         f->block_size, (unsigned long long)f->free_blocks, used);
  printf("  inodes     %llu, %llu free\n", (unsigned long long)f->inodes,
         (unsigned long long)f->free_inodes);
  printf("  uuid       %s\n", f->uuid);
}

int sbd_cmd_inspect(int argc, char **argv)
{
  cleanup_error sbd_error_t err = NULL;
  bool json = false;
  const char *disk = NULL;
  int r = sbd_parse_disk_args(argc, argv, "inspect", inspect_usage, &json, &disk, &err);
  if (r > 0)
    return 0;
  struct sbd_inspect_options o = {.verify = false};
  struct sbd_inspect rep;
  if (r < 0 || sbd_inspect_disk(disk, &o, &rep, &err) < 0)
    return sbd_report_error(err);
  if (json) {
    json_t *root = report_json(&rep);
    json_dumpf(root, stdout, JSON_INDENT(2));
    fputc('\n', stdout);
    json_decref(root);
  } else {
    print_images(&rep);
    print_snapshots(&rep);
    print_filesystem(&rep);
  }
  /* Shown, not judged: judging is verify's job. */
  for (size_t i = 0; i < rep.n_problems; i++)
    fprintf(stderr, "sbdisk: warning: %s\n", rep.problems[i]);
  if (rep.n_problems > 0)
    fprintf(stderr, "sbdisk: warning: the disk is not what it claims (see sbdisk verify %s)\n",
            disk);
  sbd_inspect_free(&rep);
  return 0;
}

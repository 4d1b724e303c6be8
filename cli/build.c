/* sbdisk build: resolve -> plan -> fetch -> write. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/progress.h"
#include "cli/report.h"
#include "cli/signals.h"
#include "disk/disk.h"
#include "lib/cache.h"
#include "lib/fetch.h"
#include "lib/image.h"
#include "lib/plan.h"
#include "lib/registry.h"
#include "lib/util.h"

static const char build_usage[] =
    "Usage: sbdisk build [OPTIONS] IMAGE...\n"
    "\n"
    "Builds a raw ext4 disk image holding the images' layers exactly as containerd\n"
    "unpacks them (snapshots/N/fs), plus snapshots.metadata and images.metadata:\n"
    "what GKE reads from a secondary boot disk in CONTAINER_IMAGE_CACHE mode.\n"
    "\n"
    "IMAGE is a reference as docker writes it (nginx, nginx:1.27,\n"
    "ghcr.io/org/app@sha256:..., localhost:5000/team/app:v1), or oci:DIR[:TAG] for a\n"
    "local OCI image layout.\n"
    "\n"
    "Options:\n"
    "  -o, --output PATH         the raw disk image to write (default: disk.raw). It is\n"
    "                            built beside PATH under a temporary name and renamed\n"
    "                            into place only when complete.\n"
    "  -f, --image-list PATH     read more references from PATH, one per line ('#'\n"
    "                            starts a comment; - reads stdin)\n"
    "      --platform OS/ARCH[/VARIANT]\n"
    "                            the entry to take from multi-arch images\n"
    "                            (default: linux/amd64)\n"
    "      --size SIZE           disk size, a whole number of GiB: 60G, 1T (default: the\n"
    "                            smallest that holds the content with 10% free, and at\n"
    "                            least 10G, the smallest persistent disk)\n"
    "      --cache-dir DIR       blob cache (default: $XDG_CACHE_HOME/sbdisk, else\n"
    "                            ~/.cache/sbdisk)\n"
    "  -j, --jobs N              download N layers at once while writing (default: 4)\n"
    "      --gce-tar PATH        also write the archive GCE imports: a sparse GNU tar\n"
    "                            of disk.raw, gzip'd in parallel, for `gcloud compute\n"
    "                            images create NAME --source-uri gs://BUCKET/PATH`\n"
    "      --name NAME           the GCE image to create, checked against what GKE\n"
    "                            accepts ([a-z]([-a-z0-9]*[a-z0-9])?, at most 39\n"
    "                            characters); prints the gcloud commands that upload\n"
    "                            the archive and create the image and a node pool\n"
    "      --json[=flat]         print one JSON object on stdout: output, size_bytes,\n"
    "                            sha256 of the raw file, gce_tar, and each image's\n"
    "                            digests, platform and layers (chainID, snapshot);\n"
    "                            =flat: string values only, for Terraform's external\n"
    "                            data source (images as ref@digest,...)\n"
    "  -q, --quiet               print nothing but errors\n"
    "  -v, --verbose             also say what each step decides (cache, platform,\n"
    "                            sources, sizes, times)\n"
    "  -h, --help                show this help\n"
    "\n"
    "Registries:\n"
    "      --auth-file PATH      credentials as docker keeps them (default:\n"
    "                            $REGISTRY_AUTH_FILE, else $DOCKER_CONFIG/config.json,\n"
    "                            else ~/.docker/config.json; credHelpers and credsStore\n"
    "                            run docker-credential-NAME)\n"
    "      --username USER       with --password-stdin: credentials for every registry\n"
    "      --password-stdin      read the password (or token) from standard input\n"
    "      --ca-file PATH        also trust the CA certificates in PATH (PEM)\n"
    "      --cert-dir DIR        per-registry CAs in DIR/HOST[:PORT]/*.crt (default:\n"
    "                            /etc/containers/certs.d and /etc/docker/certs.d)\n"
    "      --insecure-registry HOST[:PORT]\n"
    "                            talk plain HTTP, or TLS without certificate checks, to\n"
    "                            this registry (repeatable; loopback ones are too,\n"
    "                            unless --ca-file or --cert-dir gives their CA)\n"
    "      --registry-mirror HOST  try this mirror first for docker.io images\n"
    "                            (repeatable; docker.io itself when it fails)\n"
    "  gcr.io and *-docker.pkg.dev with no credentials configured use the GCE metadata\n"
    "  server's token, else `gcloud auth print-access-token`.  Failed transfers are\n"
    "  retried (5 tries, Retry-After honoured) and interrupted blobs resume.\n"
    "\n"
    "Environment:\n"
    "  SOURCE_DATE_EPOCH         the time stamped where containerd would stamp \"now\"\n"
    "                            (default: the newest image's creation time; never\n"
    "                            the clock, so the same images give the same bytes)\n"
    "\n"
    "Examples:\n"
    "  sbdisk build -o cache.raw nginx:1.27 python:3.12-slim\n"
    "  sbdisk build -o arm.raw --platform linux/arm64 -f images.txt\n"
    "  sbdisk build --size 100G -o vllm.raw vllm/vllm-openai:latest\n";

struct build_opts {
  const char *output;
  const char *platform;
  const char *cache_dir;
  uint64_t size;
  bool quiet;
  bool verbose;
  unsigned jobs;
  char **insecure;
  size_t n_insecure;
  const char *auth_file;
  const char *username;
  bool password_stdin;
  bool list_from_stdin;
  const char *ca_file;
  const char *cert_dir;
  char **mirrors;
  size_t n_mirrors;
  const char *gce_tar;
  const char *name;
  enum sbd_json_mode json;
  char **refs;
  size_t n_refs;
};

struct ui {
  bool quiet;
  bool verbose;
  struct sbd_progress *progress; /* bars on a terminal, else NULL */
  struct sbd_report_snapshot *written; /* per snapshot, as each is done */
  const struct sbd_plan *plan;
  const struct sbd_image *images;
  struct sbd_fetcher *fetcher;
};

static void say(const struct ui *ui, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(const struct ui *ui, const char *fmt, ...)
{
  if (ui->quiet)
    return;
  va_list ap;
  va_start(ap, fmt);
  cleanup_free char *line = xvasprintf(fmt, ap);
  va_end(ap);
  if (ui->progress)
    sbd_progress_print(ui->progress, "%s", line);
  else
    fputs(line, stderr);
}

/* --verbose: what each step decides, and why. */
static void tell(const struct ui *ui, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tell(const struct ui *ui, const char *fmt, ...)
{
  if (!ui->verbose || ui->quiet)
    return;
  va_list ap;
  va_start(ap, fmt);
  cleanup_free char *line = xvasprintf(fmt, ap);
  va_end(ap);
  say(ui, "  - %s\n", line);
}

static char *human(uint64_t bytes)
{
  return sbd_metadata_human_size(bytes);
}

static void free_opts(struct build_opts *o)
{
  for (size_t i = 0; i < o->n_refs; i++)
    free(o->refs[i]);
  free(o->refs);
  free(o->insecure);
  free(o->mirrors);
}

enum {
  OPT_PLATFORM = 256,
  OPT_SIZE,
  OPT_CACHE_DIR,
  OPT_INSECURE,
  OPT_AUTH_FILE,
  OPT_USERNAME,
  OPT_PASSWORD_STDIN,
  OPT_CA_FILE,
  OPT_CERT_DIR,
  OPT_MIRROR,
  OPT_GCE_TAR,
  OPT_NAME,
  OPT_JSON,
};

static int parse_jobs(const char *s, unsigned *jobs, sbd_error_t *err)
{
  char *end;
  errno = 0;
  unsigned long v = strtoul(s, &end, 10);
  if (errno || *end || end == s || v < 1 || v > 64)
    return sbd_error_set(err, SBD_EXIT_USAGE, 0, "--jobs takes a number from 1 to 64, not \"%s\"", s);
  *jobs = (unsigned)v;
  return 0;
}

/* Whether two paths name the same file, existing or not. */
static bool same_file_name(const char *a, const char *b)
{
  struct stat sa, sb;
  if (stat(a, &sa) == 0 && stat(b, &sb) == 0)
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
  cleanup_free char *ra = sbd_path_absolute(a);
  cleanup_free char *rb = sbd_path_absolute(b);
  return strcmp(ra, rb) == 0;
}

static int parse_args(int argc, char **argv, struct build_opts *o, sbd_error_t *err)
{
  static const struct option longopts[] = {
      {"output", required_argument, NULL, 'o'},
      {"image-list", required_argument, NULL, 'f'},
      {"platform", required_argument, NULL, OPT_PLATFORM},
      {"size", required_argument, NULL, OPT_SIZE},
      {"cache-dir", required_argument, NULL, OPT_CACHE_DIR},
      {"insecure-registry", required_argument, NULL, OPT_INSECURE},
      {"jobs", required_argument, NULL, 'j'},
      {"auth-file", required_argument, NULL, OPT_AUTH_FILE},
      {"username", required_argument, NULL, OPT_USERNAME},
      {"password-stdin", no_argument, NULL, OPT_PASSWORD_STDIN},
      {"ca-file", required_argument, NULL, OPT_CA_FILE},
      {"cert-dir", required_argument, NULL, OPT_CERT_DIR},
      {"registry-mirror", required_argument, NULL, OPT_MIRROR},
      {"gce-tar", required_argument, NULL, OPT_GCE_TAR},
      {"name", required_argument, NULL, OPT_NAME},
      {"json", optional_argument, NULL, OPT_JSON},
      {"quiet", no_argument, NULL, 'q'},
      {"verbose", no_argument, NULL, 'v'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  o->output = "disk.raw";
  o->platform = "linux/amd64";
  o->jobs = 4;
  optind = 1;
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, ":o:f:j:qvh", longopts, NULL)) != -1) {
    switch (c) {
    case 'o':
      o->output = optarg;
      break;
    case 'f':
      if (strcmp(optarg, "-") == 0)
        o->list_from_stdin = true;
      if (sbd_read_image_list(optarg, &o->refs, &o->n_refs, err) < 0)
        return -1;
      break;
    case OPT_AUTH_FILE:
      o->auth_file = optarg;
      break;
    case OPT_USERNAME:
      o->username = optarg;
      break;
    case OPT_PASSWORD_STDIN:
      o->password_stdin = true;
      break;
    case OPT_CA_FILE:
      o->ca_file = optarg;
      break;
    case OPT_CERT_DIR:
      o->cert_dir = optarg;
      break;
    case OPT_MIRROR:
      o->mirrors = xrealloc(o->mirrors, (o->n_mirrors + 1) * sizeof(*o->mirrors));
      o->mirrors[o->n_mirrors++] = optarg;
      break;
    case OPT_GCE_TAR:
      o->gce_tar = optarg;
      break;
    case OPT_NAME:
      if (sbd_gke_image_name_check(optarg, err) < 0)
        return -1;
      o->name = optarg;
      break;
    case OPT_JSON:
      if (sbd_json_mode_parse(optarg, &o->json, err) < 0)
        return -1;
      break;
    case OPT_PLATFORM:
      o->platform = optarg;
      break;
    case OPT_SIZE:
      if (sbd_parse_size(optarg, &o->size, err) < 0)
        return -1;
      break;
    case OPT_CACHE_DIR:
      o->cache_dir = optarg;
      break;
    case OPT_INSECURE:
      o->insecure = xrealloc(o->insecure, (o->n_insecure + 1) * sizeof(*o->insecure));
      o->insecure[o->n_insecure++] = optarg;
      break;
    case 'j':
      if (parse_jobs(optarg, &o->jobs, err) < 0)
        return -1;
      break;
    case 'q':
      o->quiet = true;
      break;
    case 'v':
      o->verbose = true;
      break;
    case 'h':
      fputs(build_usage, stdout);
      return 1;
    case ':':
      return sbd_error_set(err, SBD_EXIT_USAGE, 0, "option %s needs a value (see sbdisk build --help)",
                           argv[optind - 1]);
    default:
      return sbd_error_set(err, SBD_EXIT_USAGE, 0, "unknown option %s (see sbdisk build --help)",
                           argv[optind - 1]);
    }
  }
  for (int i = optind; i < argc; i++) {
    o->refs = xrealloc(o->refs, (o->n_refs + 1) * sizeof(*o->refs));
    o->refs[o->n_refs++] = xstrdup(argv[i]);
  }
  if (o->n_refs == 0)
    return sbd_error_set(err, SBD_EXIT_USAGE, 0,
                         "no images given (sbdisk build [OPTIONS] IMAGE..., see --help)");
  if (o->password_stdin && o->username == NULL)
    return sbd_error_set(err, SBD_EXIT_USAGE, 0, "--password-stdin needs --username");
  if (o->username && !o->password_stdin)
    return sbd_error_set(err, SBD_EXIT_USAGE, 0,
                         "--username needs --password-stdin (a password never goes on the "
                         "command line, where other users can read it)");
  if (o->gce_tar && same_file_name(o->gce_tar, o->output))
    return sbd_error_set(err, SBD_EXIT_USAGE, 0, "--gce-tar %s would overwrite the disk itself (-o)",
                         o->gce_tar);
  if (o->password_stdin && o->list_from_stdin)
    return sbd_error_set(err, SBD_EXIT_USAGE, 0,
                         "--password-stdin and --image-list - cannot both read standard input");
  return 0;
}

/* Fails before any download when the output cannot be written. */
static int check_output(const char *what, const char *output, sbd_error_t *err)
{
  struct stat st;
  if (stat(output, &st) == 0 && S_ISDIR(st.st_mode))
    return sbd_error_set(err, SBD_EXIT_USAGE, 0, "%s %s is a directory", what, output);
  cleanup_free char *copy = xstrdup(output);
  const char *dir = dirname(copy);
  cleanup_free char *probe = xasprintf("%s/.sbdisk-probe.XXXXXX", dir);
  int fd = mkstemp(probe);
  if (fd < 0)
    return sbd_error_set(err, SBD_EXIT_USAGE, errno, "cannot write the output directory %s", dir);
  close(fd);
  unlink(probe);
  return 0;
}

/* SOURCE_DATE_EPOCH, checked before anything is fetched: -1 when unset. */
static int source_date_epoch(int64_t *out, sbd_error_t *err)
{
  const char *sde = getenv("SOURCE_DATE_EPOCH");
  *out = -1;
  if (sde == NULL || sde[0] == '\0')
    return 0;
  char *end;
  errno = 0;
  long long v = strtoll(sde, &end, 10);
  if (errno || *end || v < 0 || v > 0x3ffffffffll)
    return sbd_error_set(err, SBD_EXIT_USAGE, 0, "SOURCE_DATE_EPOCH=\"%s\" is not a time", sde);
  *out = v;
  return 0;
}

/* The time stamped where containerd would stamp "now" (directories it makes,
 * whiteouts, the superblock): SOURCE_DATE_EPOCH, else the newest image's
 * creation time, else the epoch.  Never the clock, so the same images give
 * the same bytes on any machine at any time. */
static int64_t build_time(int64_t sde, const struct sbd_image *images, size_t n)
{
  if (sde >= 0)
    return sde;
  int64_t t = 0;
  for (size_t i = 0; i < n; i++)
    if (images[i].created > t)
      t = images[i].created;
  return t;
}

static void on_layer_start(void *opaque, size_t i)
{
  const struct ui *ui = opaque;
  if (i == 0) {
    cleanup_free char *total = human(ui->plan->unique_bytes);
    say(ui, "Fetching and writing %zu unique layers (%s)\n", ui->plan->n_snapshots, total);
  }
}

static void on_layer_progress(void *opaque, size_t i, uint64_t in_bytes)
{
  const struct ui *ui = opaque;
  if (ui->progress)
    sbd_progress_writing(ui->progress, i, in_bytes);
}

static void on_layer_done(void *opaque, size_t i, uint64_t files, uint64_t bytes)
{
  const struct ui *ui = opaque;
  if (ui->progress)
    sbd_progress_written(ui->progress, i);
  const struct sbd_plan_snapshot *s = &ui->plan->snapshots[i];
  ui->written[i] = (struct sbd_report_snapshot){.files = files, .file_bytes = bytes};
  const char *where = sbd_ref_is_oci_layout(&ui->images[s->image].ref) ? "local"
                      : sbd_fetcher_was_cached(ui->fetcher, i)          ? "cached"
                                                                         : "downloaded";
  cleanup_free char *size = human((uint64_t)s->layer->size);
  say(ui, "  [%zu/%zu] snapshots/%zu/fs  %s  %s %s, %llu files\n", i + 1, ui->plan->n_snapshots,
      i + 1, s->layer->chain_id, size, where, (unsigned long long)files);
}

/* The disk module reads each layer through the fetcher. */
struct blob_ctx {
  struct sbd_fetcher *fetcher;
  size_t index;
};

static ssize_t blob_read(void *opaque, void *buf, size_t len, sbd_error_t *err)
{
  struct blob_ctx *b = opaque;
  return sbd_fetcher_read(b->fetcher, b->index, buf, len, err);
}

static void blob_rewind(void *opaque)
{
  struct blob_ctx *b = opaque;
  sbd_fetcher_rewind(b->fetcher, b->index);
}

/* Everything a build holds, released in one place. */
struct build_ctx {
  struct sbd_tmpfiles *tmpfiles;
  struct sbd_signals *signals;
  struct sbd_progress *progress;
  struct sbd_platform platform;
  struct sbd_cache *cache;
  struct sbd_registry *registry;
  struct sbd_source src;
  struct sbd_image *images;
  size_t n_images;
  struct sbd_plan plan;
  struct sbd_auth *auth;
  char *password;
  struct sbd_fetcher *fetcher;
  struct blob_ctx *blobs;
  char **whats;
  char **used_by;
  struct sbd_disk_layer *layers;
  struct sbd_image_row *rows;
  size_t n_rows;
};

static void build_ctx_free(struct build_ctx *c)
{
  sbd_progress_stop(c->progress); /* before any message is printed */
  /* Before the images: its download threads read them until they stop (an
   * interrupted build gets here with downloads still running). */
  sbd_fetcher_free(c->fetcher);
  for (size_t i = 0; i < c->n_images; i++)
    sbd_image_free(&c->images[i]);
  free(c->images);
  free(c->blobs);
  for (size_t i = 0; c->whats && i < c->plan.n_snapshots; i++)
    free(c->whats[i]);
  free(c->whats);
  for (size_t i = 0; c->used_by && i < c->plan.n_snapshots; i++)
    free(c->used_by[i]);
  free(c->used_by);
  free(c->layers);
  free(c->rows);
  sbd_plan_free(&c->plan);
  sbd_registry_free(c->registry);
  sbd_auth_free(c->auth);
  if (c->password) {
    explicit_bzero(c->password, strlen(c->password));
    free(c->password);
  }
  sbd_cache_free(c->cache);
  sbd_platform_free(&c->platform);
  /* last: every thread that records temporary files has stopped */
  sbd_signals_stop(c->signals);
  sbd_tmpfiles_free(c->tmpfiles);
}

static int resolve_all(struct build_ctx *c, const struct build_opts *o, const struct ui *ui,
                       sbd_error_t *err)
{
  c->images = xcalloc(o->n_refs, sizeof(*c->images));
  for (size_t i = 0; i < o->n_refs; i++) {
    say(ui, "Resolving %s\n", o->refs[i]);
    struct sbd_image *img = &c->images[c->n_images++];
    if (sbd_image_resolve(&c->src, o->refs[i], img, err) < 0)
      return -1;
    say(ui, "  %s %s, %zu layers\n", img->manifest_digest, img->platform, img->n_layers);
    if (sbd_ref_is_oci_layout(&img->ref))
      tell(ui, "from the local OCI layout; name in images.metadata: %s", img->name);
    else
      tell(ui, "from %s; name in images.metadata: %s", sbd_ref_registry_host(&img->ref), img->name);
    if (strcmp(img->target_digest, img->manifest_digest) != 0)
      tell(ui, "%s is an index (%s); took its %s entry", img->target_digest, img->platforms,
           img->platform);
    tell(ui, "config %s, created %lld", img->config_digest, (long long)img->created);
  }
  return 0;
}

static bool image_uses(const struct sbd_image *img, const char *chain_id)
{
  for (size_t k = 0; k < img->n_layers; k++)
    if (strcmp(img->layers[k].chain_id, chain_id) == 0)
      return true;
  return false;
}

/* The images.metadata names of every image with a layer of this chainID (the
 * plan keeps only the first), one per line, each once. */
static char *snapshot_users(const struct build_ctx *c, const char *chain_id)
{
  struct sbd_buf b = {0};
  for (size_t i = 0; i < c->n_images; i++) {
    const struct sbd_image *img = &c->images[i];
    if (!image_uses(img, chain_id))
      continue;
    bool listed = false; /* the same name given twice */
    for (size_t j = 0; j < i && !listed; j++)
      listed = strcmp(c->images[j].name, img->name) == 0 && image_uses(&c->images[j], chain_id);
    if (!listed)
      sbd_buf_appendf(&b, "%s%s", b.len ? "\n" : "", img->name);
  }
  return sbd_buf_cstr(&b);
}

/* The disk module's view of the plan: blobs on disk, parents by index. */
static void describe_layers(struct build_ctx *c)
{
  size_t n = c->plan.n_snapshots;
  c->layers = xcalloc(n + 1, sizeof(*c->layers));
  c->whats = xcalloc(n + 1, sizeof(*c->whats));
  c->used_by = xcalloc(n + 1, sizeof(*c->used_by));
  c->blobs = xcalloc(n + 1, sizeof(*c->blobs));
  for (size_t i = 0; i < n; i++) {
    const struct sbd_plan_snapshot *s = &c->plan.snapshots[i];
    const struct sbd_image *img = &c->images[s->image];
    c->whats[i] = xasprintf("image %s: layer %zu/%zu (%s)", img->given, s->layer_index + 1,
                            img->n_layers, s->layer->digest);
    c->used_by[i] = snapshot_users(c, s->layer->chain_id);
    c->blobs[i] = (struct blob_ctx){.fetcher = c->fetcher, .index = i};
    c->layers[i] = (struct sbd_disk_layer){
        .reader = {.read = blob_read,
                   .rewind = blob_rewind,
                   .opaque = &c->blobs[i],
                   .verified = sbd_fetcher_verifies(c->fetcher, i)},
        .blob_size = (uint64_t)s->layer->size,
        .compressed = s->layer->compression != SBD_COMPRESSION_NONE,
        .blob_digest = s->layer->digest,
        .diff_id = s->layer->diff_id,
        .chain_id = s->layer->chain_id,
        .parent = s->parent == SBD_PLAN_NO_PARENT ? SBD_DISK_NO_PARENT : s->parent,
        .what = c->whats[i],
        .used_by = c->used_by[i],
    };
  }
}

/* One images.metadata row per distinct name, as in containerd's store. */
static void describe_images(struct build_ctx *c)
{
  c->rows = xcalloc(c->n_images + 1, sizeof(*c->rows));
  for (size_t i = 0; i < c->n_images; i++) {
    bool dup = false;
    for (size_t k = 0; k < c->n_rows; k++)
      dup |= strcmp(c->rows[k].name, c->images[i].name) == 0;
    if (dup)
      continue;
    c->rows[c->n_rows++] = (struct sbd_image_row){
        .name = c->images[i].name,
        .media_type = c->images[i].target_media_type,
        .digest = c->images[i].target_digest,
        .size = c->images[i].listed_size,
        .platforms = c->images[i].platforms,
        .labels = "io.cri-containerd.image=managed",
    };
  }
}

/* --password-stdin: all of standard input, less one trailing newline. */
static int read_password(char **out, sbd_error_t *err)
{
  struct sbd_buf b = {0};
  char chunk[256];
  size_t n;
  while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0)
    sbd_buf_append(&b, chunk, n);
  explicit_bzero(chunk, sizeof(chunk));
  bool failed = ferror(stdin);
  char *p = sbd_buf_cstr(&b);
  if (b.len > 0 && p[b.len - 1] == '\n')
    p[--b.len] = '\0';
  if (b.len > 0 && p[b.len - 1] == '\r')
    p[--b.len] = '\0';
  if (failed || b.len == 0) {
    explicit_bzero(p, b.cap);
    free(p);
    return sbd_error_set(err, SBD_EXIT_USAGE, 0,
                         failed ? "--password-stdin: cannot read standard input"
                                : "--password-stdin: standard input held no password");
  }
  *out = p;
  return 0;
}

static size_t sum_layers(const struct sbd_image *images, size_t n)
{
  size_t total = 0;
  for (size_t i = 0; i < n; i++)
    total += images[i].n_layers;
  return total;
}

/* Bars only where someone watches: stderr is a terminal that can draw them. */
static bool wants_bars(void)
{
  const char *term = getenv("TERM");
  return isatty(STDERR_FILENO) && term && term[0] && strcmp(term, "dumb") != 0;
}

static int run(struct build_opts *o, sbd_error_t *err)
{
  struct ui ui = {.quiet = o->quiet, .verbose = o->verbose};
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  int64_t sde;
  if (source_date_epoch(&sde, err) < 0 || check_output("output", o->output, err) < 0 ||
      (o->gce_tar && check_output("--gce-tar", o->gce_tar, err) < 0))
    return -1;
  __attribute__((cleanup(build_ctx_free))) struct build_ctx c = {.tmpfiles = sbd_tmpfiles_new()};
  /* before any thread: curl's resolver, the fetcher, the writer's */
  if (sbd_signals_start(c.tmpfiles, &c.signals, err) < 0)
    return -1;
  if (sbd_platform_parse(o->platform, &c.platform, err) < 0)
    return sbd_error_prefix(err, "--platform: ");
  if (sbd_cache_open(o->cache_dir, &c.cache, err) < 0)
    return -1;
  sbd_cache_set_tmpfiles(c.cache, c.tmpfiles);
  tell(&ui, "blob cache: %s; platform: %s; %u parallel downloads", sbd_cache_dir(c.cache), o->platform,
       o->jobs);
  if (o->password_stdin && read_password(&c.password, err) < 0)
    return -1;
  struct sbd_auth_options aopts = {
      .auth_file = o->auth_file, .username = o->username, .password = c.password};
  if (sbd_auth_new(&aopts, &c.auth, err) < 0)
    return -1;
  struct sbd_registry_options ropts = {.insecure = (const char *const *)o->insecure,
                                       .n_insecure = o->n_insecure,
                                       .auth = c.auth,
                                       .ca_file = o->ca_file,
                                       .cert_dir = o->cert_dir,
                                       .mirrors = (const char *const *)o->mirrors,
                                       .n_mirrors = o->n_mirrors};
  if (sbd_registry_new(&ropts, &c.registry, err) < 0)
    return -1;
  c.src = (struct sbd_source){.platform = &c.platform, .registry = c.registry, .cache = c.cache};

  if (resolve_all(&c, o, &ui, err) < 0 || sbd_plan_build(c.images, c.n_images, &c.plan, err) < 0)
    return -1;
  ui.plan = &c.plan;
  ui.images = c.images;
  cleanup_free struct sbd_report_snapshot *written = xcalloc(c.plan.n_snapshots + 1, sizeof(*written));
  ui.written = written;
  cleanup_free struct sbd_fetch_item *items = xcalloc(c.plan.n_snapshots + 1, sizeof(*items));
  for (size_t i = 0; i < c.plan.n_snapshots; i++)
    items[i] = (struct sbd_fetch_item){.image = &c.images[c.plan.snapshots[i].image],
                                       .layer = c.plan.snapshots[i].layer_index};
  if (sbd_fetcher_start(&c.src, &ropts, items, c.plan.n_snapshots, o->jobs, &c.fetcher, err) < 0)
    return -1;
  ui.fetcher = c.fetcher;
  describe_layers(&c);
  describe_images(&c);
  for (size_t i = 0; i < c.plan.n_snapshots; i++) {
    const struct sbd_plan_snapshot *s = &c.plan.snapshots[i];
    tell(&ui, "snapshots/%zu/fs: layer %zu of %s (%s), chainID %s%s", i + 1, s->layer_index + 1,
         c.images[s->image].given, s->layer->digest, s->layer->chain_id,
         s->parent == SBD_PLAN_NO_PARENT ? ", a bottom layer" : "");
  }
  if (c.plan.n_snapshots < sum_layers(c.images, c.n_images))
    tell(&ui, "%zu layers shared between images are written once",
         sum_layers(c.images, c.n_images) - c.plan.n_snapshots);
  int64_t now = build_time(sde, c.images, c.n_images);
  tell(&ui, "time stamped where containerd stamps now: %lld (%s)", (long long)now,
       sde >= 0 ? "SOURCE_DATE_EPOCH" : "the newest image's creation time");
  if (o->size)
    tell(&ui, "disk size: %llu GiB (--size)", (unsigned long long)(o->size / SBD_GIB));
  else
    tell(&ui, "disk size: chosen when the content is known (10%% free, at least 10 GiB)");
  cleanup_free struct sbd_progress_layer *bars = xcalloc(c.plan.n_snapshots + 1, sizeof(*bars));
  if (!o->quiet && wants_bars()) {
    for (size_t i = 0; i < c.plan.n_snapshots; i++)
      bars[i] = (struct sbd_progress_layer){.label = c.plan.snapshots[i].layer->digest,
                                            .size = (uint64_t)c.plan.snapshots[i].layer->size};
    if (sbd_progress_start(stderr, bars, c.plan.n_snapshots, c.fetcher, &c.progress, err) < 0)
      return -1;
    ui.progress = c.progress;
  }

  struct sbd_disk_events ev = {
      .opaque = &ui,
      .layer_start = on_layer_start,
      .layer_progress = on_layer_progress,
      .layer_done = on_layer_done};
  struct sbd_disk_spec spec = {
      .output = o->output,
      .size_bytes = o->size,
      .now = now,
      .layers = c.layers,
      .n_layers = c.plan.n_snapshots,
      .images = c.rows,
      .n_images = c.n_rows,
      .events = &ev,
      .want_sha256 = o->json != SBD_JSON_NONE,
      .gce_tar = o->gce_tar,
      .tmpfiles = c.tmpfiles,
  };
  struct sbd_disk_result res;
  if (sbd_disk_build(&spec, &res, err) < 0)
    return -1;
  sbd_progress_stop(steal_pointer(&c.progress));
  ui.progress = NULL;

  clock_gettime(CLOCK_MONOTONIC, &t1);
  double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  cleanup_free char *used = human(res.used_bytes);
  cleanup_free char *unique = human(c.plan.unique_bytes);
  say(&ui,
      "Done: %s, %llu GiB (%s of content): %zu image%s, %zu unique layer%s (%s compressed), "
      "%llu files, %.1fs\n",
      o->output, (unsigned long long)(res.size_bytes / SBD_GIB), used, c.n_rows, c.n_rows == 1 ? "" : "s",
      c.plan.n_snapshots, c.plan.n_snapshots == 1 ? "" : "s", unique, (unsigned long long)res.files, secs);
  if (o->gce_tar) {
    cleanup_free char *tar_size = human(res.gce_tar_bytes);
    say(&ui, "GCE archive: %s (%s)\n", o->gce_tar, tar_size);
  }

  cleanup_free char *output_abs = sbd_path_absolute(o->output);
  cleanup_free char *tar_abs = o->gce_tar ? sbd_path_absolute(o->gce_tar) : NULL;
  struct sbd_build_report report = {
      .output = output_abs,
      .size_bytes = res.size_bytes,
      .sha256 = res.sha256[0] ? res.sha256 : NULL,
      .gce_tar = tar_abs,
      .gce_tar_sha256 = res.gce_tar_sha256[0] ? res.gce_tar_sha256 : NULL,
      .gce_tar_bytes = res.gce_tar_bytes,
      .images = c.images,
      .n_images = c.n_images,
      .plan = &c.plan,
      .snapshots = written,
      .name = o->name,
      .seconds = secs,
  };
  if (o->name && !o->quiet && o->json == SBD_JSON_NONE) {
    char **cmds = sbd_report_gcloud_commands(&report);
    say(&ui, "\nTo take it to GKE (set BUCKET, PROJECT, CLUSTER, LOCATION and POOL):\n");
    for (char **p = cmds; *p; p++)
      say(&ui, "  %s\n", *p);
    sbd_report_free_commands(cmds);
  }
  if (o->json != SBD_JSON_NONE)
    return sbd_report_print_json(&report, o->json, stdout, err);
  return 0;
}

int sbd_cmd_build(int argc, char **argv)
{
  cleanup_error sbd_error_t err = NULL;
  struct build_opts o = {0};
  int r = parse_args(argc, argv, &o, &err);
  if (r == 0)
    r = run(&o, &err);
  free_opts(&o);
  if (r > 0)
    return 0; /* --help */
  if (r < 0)
    return sbd_report_error(err);
  return 0;
}

/* treedump: a canonical, line-per-entry listing of a directory tree, so that two
 * trees (containerd's snapshot directory and what sbdisk wrote) compare with
 * diff(1).
 *
 * Usage: treedump [--stamped-after EPOCH] DIR
 *
 * One line per entry below DIR, DIR itself as ".", sorted by path bytewise;
 * symlinks are never followed:
 *
 *   PATH type=d|f|l|c|b|p|s mode=%04o uid=N gid=N [size=N sha256=HEX]
 *        [target=T] [rdev=MAJ:MIN] nlink-group=G mtime=SEC.NSEC xattrs=K=HEX,...
 *
 *   size/sha256  regular files only; target: symlinks; rdev: devices.
 *   nlink-group  for non-directories with more than one link: the smallest path
 *                in the tree with the same inode; "-" otherwise.
 *   mtime        "stamped" instead of the time when --stamped-after is given and
 *                the mtime is at or after EPOCH: containerd stamps whiteout
 *                devices and parents the tar never names with the extraction
 *                time, and tests keep every input time older than their start.
 *   xattrs       every namespace (trusted.* needs root), sorted by name, value
 *                in hex; "-" when there are none.
 *
 * Bytes outside printable ASCII, blanks, '\\' and ',' in paths, targets and
 * xattr names are written as \xNN.  Any read error ends the listing with a
 * message and exit status 1: a partial dump must never compare equal. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "lib/digest.h"
#include "lib/util.h"

struct treedump_node {
  char *path; /* relative to the root, "." for the root itself */
  struct stat st;
  char *target;               /* symlinks */
  char sha256[2 * SBD_SHA256_LEN + 1]; /* regular files */
  char *xattrs;               /* formatted, "-" when none */
  const char *group;          /* hardlink group leader's path, or NULL */
};

struct treedump_ctx {
  const char *root;
  struct treedump_node *nodes;
  size_t n_nodes, cap_nodes;
  bool stamped;
  int64_t stamped_after;
};

static void __attribute__((noreturn, format(printf, 1, 2))) die(const char *fmt, ...)
{
  va_list ap;
  fputs("treedump: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  exit(1);
}

static void append_escaped(struct sbd_buf *b, const char *s, size_t len)
{
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c <= 0x20 || c >= 0x7f || c == '\\' || c == ',')
      sbd_buf_appendf(b, "\\x%02x", c);
    else
      sbd_buf_append(b, &s[i], 1);
  }
}

static int cmp_str(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* "k=hex,k=hex" sorted by name, or "-". */
static char *read_xattrs(const char *full)
{
  ssize_t n = llistxattr(full, NULL, 0);
  if (n < 0) {
    if (errno == ENOTSUP)
      return xstrdup("-");
    die("%s: listing xattrs: %s", full, strerror(errno));
  }
  if (n == 0)
    return xstrdup("-");
  cleanup_free char *list = xmalloc((size_t)n);
  n = llistxattr(full, list, (size_t)n);
  if (n < 0)
    die("%s: listing xattrs: %s", full, strerror(errno));

  size_t count = 0;
  for (ssize_t i = 0; i < n; i += (ssize_t)strlen(list + i) + 1)
    count++;
  cleanup_free char **keys = xcalloc(count, sizeof(*keys));
  count = 0;
  for (ssize_t i = 0; i < n; i += (ssize_t)strlen(list + i) + 1)
    keys[count++] = list + i;
  qsort(keys, count, sizeof(*keys), cmp_str);

  struct sbd_buf out = {0};
  for (size_t k = 0; k < count; k++) {
    ssize_t vlen = lgetxattr(full, keys[k], NULL, 0);
    if (vlen < 0)
      die("%s: reading xattr %s: %s", full, keys[k], strerror(errno));
    cleanup_free unsigned char *val = xmalloc((size_t)vlen + 1);
    vlen = lgetxattr(full, keys[k], val, (size_t)vlen);
    if (vlen < 0)
      die("%s: reading xattr %s: %s", full, keys[k], strerror(errno));
    if (k)
      sbd_buf_append(&out, ",", 1);
    append_escaped(&out, keys[k], strlen(keys[k]));
    sbd_buf_append(&out, "=", 1);
    for (ssize_t i = 0; i < vlen; i++)
      sbd_buf_appendf(&out, "%02x", val[i]);
  }
  return sbd_buf_cstr(&out);
}

static void hash_file(const char *full, char out[2 * SBD_SHA256_LEN + 1])
{
  cleanup_close int fd = open(full, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC | O_NOATIME);
  if (fd < 0 && errno == EPERM)
    fd = open(full, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
  if (fd < 0)
    die("%s: %s", full, strerror(errno));
  cleanup_hash struct sbd_hash *h = sbd_hash_new(SBD_HASH_SHA256);
  static char buf[1 << 16];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR)
        continue;
      die("%s: %s", full, strerror(errno));
    }
    if (n == 0)
      break;
    sbd_hash_update(h, buf, (size_t)n);
  }
  uint8_t raw[SBD_SHA256_LEN];
  sbd_hash_final(h, raw);
  sbd_hex(raw, sizeof(raw), out);
}

static void visit(struct treedump_ctx *ctx, const char *rel)
{
  cleanup_free char *full = strcmp(rel, ".") == 0 ? xstrdup(ctx->root) : xasprintf("%s/%s", ctx->root, rel);
  struct treedump_node node = {.path = xstrdup(rel)};
  if (lstat(full, &node.st) < 0)
    die("%s: %s", full, strerror(errno));
  node.xattrs = read_xattrs(full);
  if (S_ISLNK(node.st.st_mode)) {
    size_t cap = (size_t)node.st.st_size + 1;
    node.target = xmalloc(cap + 1);
    ssize_t n = readlink(full, node.target, cap);
    if (n < 0)
      die("%s: readlink: %s", full, strerror(errno));
    if ((size_t)n >= cap)
      die("%s: symlink changed while reading it", full);
    node.target[n] = '\0';
  } else if (S_ISREG(node.st.st_mode)) {
    hash_file(full, node.sha256);
  }
  if (ctx->n_nodes == ctx->cap_nodes) {
    ctx->cap_nodes = ctx->cap_nodes ? 2 * ctx->cap_nodes : 256;
    ctx->nodes = xrealloc(ctx->nodes, ctx->cap_nodes * sizeof(*ctx->nodes));
  }
  ctx->nodes[ctx->n_nodes++] = node;
  if (!S_ISDIR(node.st.st_mode))
    return;

  DIR *d = opendir(full);
  if (d == NULL)
    die("%s: %s", full, strerror(errno));
  char **names = NULL;
  size_t n_names = 0;
  for (;;) {
    errno = 0;
    struct dirent *de = readdir(d);
    if (de == NULL) {
      if (errno)
        die("%s: readdir: %s", full, strerror(errno));
      break;
    }
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    names = xrealloc(names, (n_names + 1) * sizeof(*names));
    names[n_names++] = xstrdup(de->d_name);
  }
  closedir(d);
  for (size_t i = 0; i < n_names; i++) {
    cleanup_free char *child = strcmp(rel, ".") == 0 ? xstrdup(names[i]) : xasprintf("%s/%s", rel, names[i]);
    visit(ctx, child);
    free(names[i]);
  }
  free(names);
}

static int cmp_node_path(const void *a, const void *b)
{
  const struct treedump_node *x = a, *y = b;
  /* The root first, then bytewise. */
  bool xr = strcmp(x->path, ".") == 0, yr = strcmp(y->path, ".") == 0;
  if (xr || yr)
    return yr - xr;
  return strcmp(x->path, y->path);
}

static int cmp_node_inode(const void *a, const void *b)
{
  const struct treedump_node *x = *(struct treedump_node *const *)a, *y = *(struct treedump_node *const *)b;
  if (x->st.st_dev != y->st.st_dev)
    return x->st.st_dev < y->st.st_dev ? -1 : 1;
  if (x->st.st_ino != y->st.st_ino)
    return x->st.st_ino < y->st.st_ino ? -1 : 1;
  return strcmp(x->path, y->path);
}

/* Names each multiply-linked non-directory's group after its smallest path. */
static void assign_groups(struct treedump_ctx *ctx)
{
  cleanup_free struct treedump_node **linked = xcalloc(ctx->n_nodes, sizeof(*linked));
  size_t n = 0;
  for (size_t i = 0; i < ctx->n_nodes; i++)
    if (!S_ISDIR(ctx->nodes[i].st.st_mode) && ctx->nodes[i].st.st_nlink > 1)
      linked[n++] = &ctx->nodes[i];
  qsort(linked, n, sizeof(*linked), cmp_node_inode);
  for (size_t i = 0; i < n; i++) {
    bool same = i > 0 && linked[i - 1]->st.st_dev == linked[i]->st.st_dev &&
                linked[i - 1]->st.st_ino == linked[i]->st.st_ino;
    linked[i]->group = same ? linked[i - 1]->group : linked[i]->path;
  }
}

static char type_char(mode_t m)
{
  switch (m & S_IFMT) {
  case S_IFDIR: return 'd';
  case S_IFREG: return 'f';
  case S_IFLNK: return 'l';
  case S_IFCHR: return 'c';
  case S_IFBLK: return 'b';
  case S_IFIFO: return 'p';
  case S_IFSOCK: return 's';
  default: return '?';
  }
}

static void print_node(const struct treedump_ctx *ctx, const struct treedump_node *nd, struct sbd_buf *b)
{
  const struct stat *st = &nd->st;
  b->len = 0;
  append_escaped(b, nd->path, strlen(nd->path));
  sbd_buf_appendf(b, " type=%c mode=%04o uid=%u gid=%u", type_char(st->st_mode), (unsigned)(st->st_mode & 07777),
                  (unsigned)st->st_uid, (unsigned)st->st_gid);
  if (S_ISREG(st->st_mode))
    sbd_buf_appendf(b, " size=%jd sha256=%s", (intmax_t)st->st_size, nd->sha256);
  if (S_ISLNK(st->st_mode)) {
    sbd_buf_append(b, " target=", 8);
    append_escaped(b, nd->target, strlen(nd->target));
  }
  if (S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode))
    sbd_buf_appendf(b, " rdev=%u:%u", major(st->st_rdev), minor(st->st_rdev));
  sbd_buf_append(b, " nlink-group=", 13);
  if (nd->group)
    append_escaped(b, nd->group, strlen(nd->group));
  else
    sbd_buf_append(b, "-", 1);
  if (ctx->stamped && (int64_t)st->st_mtim.tv_sec >= ctx->stamped_after)
    sbd_buf_appendf(b, " mtime=stamped");
  else
    sbd_buf_appendf(b, " mtime=%jd.%09ld", (intmax_t)st->st_mtim.tv_sec, (long)st->st_mtim.tv_nsec);
  sbd_buf_appendf(b, " xattrs=%s\n", nd->xattrs);
}

static void usage(FILE *out)
{
  fputs("usage: treedump [--stamped-after EPOCH] DIR\n"
        "Prints a sorted, canonical listing of DIR (format: see tests/tools/treedump.c).\n",
        out);
}

int main(int argc, char **argv)
{
  static const struct option opts[] = {
      {"stamped-after", required_argument, NULL, 's'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  struct treedump_ctx ctx = {0};
  int c;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
    case 's': {
      char *end;
      errno = 0;
      long long v = strtoll(optarg, &end, 10);
      if (errno || end == optarg || *end != '\0')
        die("--stamped-after wants whole seconds since the epoch, got '%s'", optarg);
      ctx.stamped = true;
      ctx.stamped_after = v;
      break;
    }
    case 'h':
      usage(stdout);
      return 0;
    default:
      usage(stderr);
      return 2;
    }
  }
  if (argc - optind != 1) {
    usage(stderr);
    return 2;
  }
  ctx.root = argv[optind];
  struct stat st;
  if (lstat(ctx.root, &st) < 0)
    die("%s: %s", ctx.root, strerror(errno));
  if (!S_ISDIR(st.st_mode))
    die("%s: not a directory", ctx.root);

  visit(&ctx, ".");
  qsort(ctx.nodes, ctx.n_nodes, sizeof(*ctx.nodes), cmp_node_path);
  assign_groups(&ctx);

  struct sbd_buf line = {0};
  for (size_t i = 0; i < ctx.n_nodes; i++) {
    print_node(&ctx, &ctx.nodes[i], &line);
    if (fwrite(line.data, 1, line.len, stdout) != line.len)
      die("writing the listing: %s", strerror(errno));
  }
  sbd_buf_free(&line);
  if (fflush(stdout) != 0 || ferror(stdout))
    die("writing the listing: %s", strerror(errno));
  for (size_t i = 0; i < ctx.n_nodes; i++) {
    free(ctx.nodes[i].path);
    free(ctx.nodes[i].target);
    free(ctx.nodes[i].xattrs);
  }
  free(ctx.nodes);
  return 0;
}

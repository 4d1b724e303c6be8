/* mklayer: writes an image layer tar from a small text spec, so the tests can
 * build every shape of layer (hostile ones included) without a container
 * runtime.  Output is a pure function of the spec: same spec, same bytes.
 *
 * Usage:
 *   mklayer [--format pax|gnu|ustar] SPEC OUT.tar     (SPEC or OUT may be "-")
 *   mklayer --fcap CAPS                               print a security.capability
 *                                                     value as \xNN escapes
 *
 * The default format is PAX with xattrs only as SCHILY.xattr.* records, the way
 * Go's archive/tar (docker, buildkit, containerd) writes them.  gnu and ustar
 * cannot carry xattrs or nanoseconds: an xattr in the spec is then an error,
 * nanoseconds are dropped.
 *
 * Spec: one entry per line, in archive order; fields separated by blanks; a
 * field starting with '#' starts a comment.  Names and targets are written
 * exactly as given (no cleaning: "../x", "/abs/x", "./x" stay), except that
 * libarchive ends directory names with '/'.
 *
 *   dir      NAME MODE UID GID MTIME [OPT...]
 *   file     NAME MODE UID GID MTIME CONTENT [OPT...]
 *   symlink  NAME TARGET UID GID MTIME [OPT...]
 *   hardlink NAME TARGET [MODE UID GID MTIME] [OPT...]
 *   char     NAME MAJOR MINOR MODE UID GID MTIME [OPT...]
 *   block    NAME MAJOR MINOR MODE UID GID MTIME [OPT...]
 *   fifo     NAME MODE UID GID MTIME [OPT...]
 *
 *   MODE     octal permission bits, setuid/setgid/sticky included (4755, 1777)
 *   UID GID  decimal, up to 4294967295 (large ones go into PAX records)
 *   MTIME    SECONDS[.FRACTION], e.g. 1600000000.123456789; may be negative
 *   CONTENT  text:STRING | rand:N:SEED | zeros:N | island:N:OFFSET:LEN:SEED | empty
 *            (island: N bytes of zeros but for LEN pseudo-random bytes at OFFSET,
 *            for huge files whose layer blob stays small)
 *            rand is a splitmix64 stream of N bytes seeded with SEED.
 *   OPT      xattr:KEY=VALUE      an xattr (PAX SCHILY.xattr.KEY); VALUE may be empty
 *            fcap:CAPS            security.capability, v2, for CAPS (see --fcap)
 *            atime=TIME           PAX atime record
 *   A hardlink without MODE UID GID MTIME copies them from the last earlier
 *   entry named TARGET (as a tar writer stat'ing the shared inode would).
 *
 *   In NAME, TARGET, STRING, KEY and VALUE, "\xNN" is the byte NN and "\\" a
 *   backslash: "\x20" writes a blank, "\x00" a NUL (values only).
 *
 *   CAPS is NAME[,NAME...]+FLAGS, NAME like cap_net_bind_service (or a number),
 *   FLAGS a subset of "eip": effective, inheritable, permitted.
 *
 * Whiteouts and opaque markers are ordinary empty files named ".wh.NAME" and
 * ".wh..wh..opq". */
#include <archive.h>
#include <archive_entry.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "lib/util.h"

#define MAX_FIELDS 64

struct mklayer_xattr {
  char *key;
  char *value;
  size_t value_len;
};

enum content_kind { CONTENT_EMPTY, CONTENT_TEXT, CONTENT_RAND, CONTENT_ZEROS, CONTENT_ISLAND };

struct mklayer_entry {
  int line;
  mode_t type; /* AE_IFREG ... ; hardlinks are AE_IFREG with `link` set */
  char *name;
  char *link;   /* hardlink target */
  char *target; /* symlink target */
  bool hardlink;
  unsigned mode;
  int64_t uid, gid;
  int64_t mtime_sec;
  long mtime_nsec;
  bool has_atime;
  int64_t atime_sec;
  long atime_nsec;
  unsigned dev_major, dev_minor;
  enum content_kind content;
  char *text;
  size_t text_len;
  uint64_t size;
  uint64_t seed;
  uint64_t island_off, island_len; /* island content */
  struct mklayer_xattr *xattrs;
  size_t n_xattrs;
};

struct mklayer_spec {
  const char *path;
  struct mklayer_entry *entries;
  size_t n_entries, cap_entries;
};

static void mklayer_entry_free(struct mklayer_entry *e)
{
  free(e->name);
  free(e->link);
  free(e->target);
  free(e->text);
  for (size_t i = 0; i < e->n_xattrs; i++) {
    free(e->xattrs[i].key);
    free(e->xattrs[i].value);
  }
  free(e->xattrs);
}

static void mklayer_spec_free(struct mklayer_spec *s)
{
  for (size_t i = 0; i < s->n_entries; i++)
    mklayer_entry_free(&s->entries[i]);
  free(s->entries);
}

static void __attribute__((noreturn, format(printf, 3, 4)))
die_at(const char *path, int line, const char *fmt, ...)
{
  va_list ap;
  fprintf(stderr, "mklayer: %s:%d: ", path, line);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  exit(1);
}

static void __attribute__((noreturn, format(printf, 1, 2))) die(const char *fmt, ...)
{
  va_list ap;
  fputs("mklayer: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  exit(1);
}

static int hexval(int c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  c = tolower(c);
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  return -1;
}

/* Decodes \xNN and \\ escapes; returns a NUL-terminated copy and its length.
 * Returns NULL on a malformed escape. */
static char *unescape(const char *s, size_t *len_out)
{
  size_t n = strlen(s), o = 0;
  char *out = xmalloc(n + 1);
  for (size_t i = 0; i < n; i++) {
    if (s[i] != '\\') {
      out[o++] = s[i];
      continue;
    }
    if (s[i + 1] == '\\') {
      out[o++] = '\\';
      i++;
    } else if (s[i + 1] == 'x' && hexval(s[i + 2]) >= 0 && hexval(s[i + 3]) >= 0) {
      out[o++] = (char)(hexval(s[i + 2]) * 16 + hexval(s[i + 3]));
      i += 3;
    } else {
      free(out);
      return NULL;
    }
  }
  out[o] = '\0';
  if (len_out)
    *len_out = o;
  return out;
}

/* A name or target: escapes decoded, no NUL allowed. */
static char *parse_name(const struct mklayer_spec *s, int line, const char *field)
{
  size_t len;
  char *v = unescape(field, &len);
  if (v == NULL)
    die_at(s->path, line, "bad escape in '%s' (use \\xNN or \\\\)", field);
  if (len != strlen(v) || len == 0)
    die_at(s->path, line, "empty name or NUL byte in '%s'", field);
  return v;
}

static uint64_t parse_u64(const struct mklayer_spec *s, int line, const char *field, const char *what,
                          int base, uint64_t max)
{
  char *end;
  errno = 0;
  if (field[0] == '-' || field[0] == '\0')
    die_at(s->path, line, "bad %s '%s'", what, field);
  unsigned long long v = strtoull(field, &end, base);
  if (errno || *end != '\0' || v > max)
    die_at(s->path, line, "bad %s '%s'", what, field);
  return v;
}

/* SECONDS[.FRACTION]: up to nine fraction digits, right-padded. */
static void parse_time(const struct mklayer_spec *s, int line, const char *field, int64_t *sec, long *nsec)
{
  char *end;
  errno = 0;
  long long v = strtoll(field, &end, 10);
  if (errno || end == field)
    die_at(s->path, line, "bad time '%s'", field);
  long ns = 0;
  if (*end == '.') {
    const char *f = end + 1;
    int digits = 0;
    for (; isdigit((unsigned char)*f) && digits < 9; f++, digits++)
      ns = ns * 10 + (*f - '0');
    if (*f != '\0' || digits == 0)
      die_at(s->path, line, "bad time '%s' (at most nine fraction digits)", field);
    for (; digits < 9; digits++)
      ns *= 10;
  } else if (*end != '\0') {
    die_at(s->path, line, "bad time '%s'", field);
  }
  if (field[0] == '-' && ns != 0)
    die_at(s->path, line, "negative times with a fraction are not supported: '%s'", field);
  *sec = v;
  *nsec = ns;
}

/* Capability names of linux/capability.h, in bit order. */
static const char *const cap_names[] = {
    "chown", "dac_override", "dac_read_search", "fowner", "fsetid", "kill", "setgid", "setuid",
    "setpcap", "linux_immutable", "net_bind_service", "net_broadcast", "net_admin", "net_raw",
    "ipc_lock", "ipc_owner", "sys_module", "sys_rawio", "sys_chroot", "sys_ptrace", "sys_pacct",
    "sys_admin", "sys_boot", "sys_nice", "sys_resource", "sys_time", "sys_tty_config", "mknod",
    "lease", "audit_write", "audit_control", "setfcap", "mac_override", "mac_admin", "syslog",
    "wake_alarm", "block_suspend", "audit_read", "perfmon", "bpf", "checkpoint_restore",
};

static int cap_number(const char *name)
{
  if (strncasecmp(name, "cap_", 4) == 0)
    name += 4;
  for (size_t i = 0; i < sizeof(cap_names) / sizeof(cap_names[0]); i++)
    if (strcasecmp(name, cap_names[i]) == 0)
      return (int)i;
  char *end;
  long v = strtol(name, &end, 10);
  if (*name && *end == '\0' && v >= 0 && v < 64)
    return (int)v;
  return -1;
}

static void put_le32(unsigned char *p, uint32_t v)
{
  p[0] = v & 0xff;
  p[1] = (v >> 8) & 0xff;
  p[2] = (v >> 16) & 0xff;
  p[3] = (v >> 24) & 0xff;
}

/* Builds a VFS_CAP_REVISION_2 value (20 bytes) for "names+flags".  Returns -1
 * with a message on a bad spec. */
static int fcap_encode(const char *spec, unsigned char out[20], char **msg)
{
  const char *plus = strrchr(spec, '+');
  if (plus == NULL) {
    *msg = xasprintf("capability spec '%s' lacks +FLAGS (e.g. cap_net_bind_service+ep)", spec);
    return -1;
  }
  uint64_t set = 0;
  cleanup_free char *names = xstrndup(spec, (size_t)(plus - spec));
  char *save = NULL;
  for (char *tok = strtok_r(names, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    int n = cap_number(tok);
    if (n < 0) {
      *msg = xasprintf("unknown capability '%s'", tok);
      return -1;
    }
    set |= UINT64_C(1) << n;
  }
  bool e = false, i = false, p = false;
  for (const char *f = plus + 1; *f; f++) {
    if (*f == 'e')
      e = true;
    else if (*f == 'i')
      i = true;
    else if (*f == 'p')
      p = true;
    else {
      *msg = xasprintf("capability flags '%s' must be a subset of 'eip'", plus + 1);
      return -1;
    }
  }
  if (set == 0 || !(i || p)) {
    *msg = xasprintf("capability spec '%s' sets nothing", spec);
    return -1;
  }
  uint64_t permitted = p ? set : 0, inheritable = i ? set : 0;
  put_le32(out, 0x02000000u | (e ? 1u : 0u)); /* VFS_CAP_REVISION_2 | EFFECTIVE */
  put_le32(out + 4, (uint32_t)permitted);
  put_le32(out + 8, (uint32_t)inheritable);
  put_le32(out + 12, (uint32_t)(permitted >> 32));
  put_le32(out + 16, (uint32_t)(inheritable >> 32));
  return 0;
}

static void entry_add_xattr(struct mklayer_entry *e, char *key, char *value, size_t len)
{
  e->xattrs = xrealloc(e->xattrs, (e->n_xattrs + 1) * sizeof(*e->xattrs));
  e->xattrs[e->n_xattrs++] = (struct mklayer_xattr){.key = key, .value = value, .value_len = len};
}

static void parse_options(const struct mklayer_spec *s, struct mklayer_entry *e, char **f, int nf)
{
  for (int i = 0; i < nf; i++) {
    if (strncmp(f[i], "xattr:", 6) == 0) {
      const char *kv = f[i] + 6;
      const char *eq = strchr(kv, '=');
      if (eq == NULL || eq == kv)
        die_at(s->path, e->line, "xattr option '%s' is not xattr:KEY=VALUE", f[i]);
      cleanup_free char *rawkey = xstrndup(kv, (size_t)(eq - kv));
      char *key = parse_name(s, e->line, rawkey);
      size_t len;
      char *value = unescape(eq + 1, &len);
      if (value == NULL)
        die_at(s->path, e->line, "bad escape in xattr value '%s'", eq + 1);
      entry_add_xattr(e, key, value, len);
    } else if (strncmp(f[i], "fcap:", 5) == 0) {
      unsigned char v[20];
      cleanup_free char *msg = NULL;
      if (fcap_encode(f[i] + 5, v, &msg) < 0)
        die_at(s->path, e->line, "%s", msg);
      char *value = xmalloc(sizeof(v));
      memcpy(value, v, sizeof(v));
      entry_add_xattr(e, xstrdup("security.capability"), value, sizeof(v));
    } else if (strncmp(f[i], "atime=", 6) == 0) {
      parse_time(s, e->line, f[i] + 6, &e->atime_sec, &e->atime_nsec);
      e->has_atime = true;
    } else {
      die_at(s->path, e->line, "unknown option '%s' (xattr:K=V, fcap:CAPS, atime=T)", f[i]);
    }
  }
}

/* MODE UID GID MTIME at f[0..3]. */
static void parse_meta(const struct mklayer_spec *s, struct mklayer_entry *e, char **f)
{
  e->mode = (unsigned)parse_u64(s, e->line, f[0], "mode", 8, 07777);
  e->uid = (int64_t)parse_u64(s, e->line, f[1], "uid", 10, UINT32_MAX);
  e->gid = (int64_t)parse_u64(s, e->line, f[2], "gid", 10, UINT32_MAX);
  parse_time(s, e->line, f[3], &e->mtime_sec, &e->mtime_nsec);
}

static void parse_content(const struct mklayer_spec *s, struct mklayer_entry *e, const char *f)
{
  if (strcmp(f, "empty") == 0) {
    e->content = CONTENT_EMPTY;
    e->size = 0;
  } else if (strncmp(f, "text:", 5) == 0) {
    e->content = CONTENT_TEXT;
    e->text = unescape(f + 5, &e->text_len);
    if (e->text == NULL)
      die_at(s->path, e->line, "bad escape in '%s'", f);
    e->size = e->text_len;
  } else if (strncmp(f, "zeros:", 6) == 0) {
    e->content = CONTENT_ZEROS;
    e->size = parse_u64(s, e->line, f + 6, "size", 10, UINT64_C(1) << 40);
  } else if (strncmp(f, "island:", 7) == 0) {
    e->content = CONTENT_ISLAND;
    uint64_t v[4];
    cleanup_free char *copy = xstrdup(f + 7);
    char *p = copy;
    for (int i = 0; i < 4; i++) {
      char *colon = strchr(p, ':');
      if ((i < 3) != (colon != NULL))
        die_at(s->path, e->line, "island content is island:N:OFFSET:LEN:SEED, got '%s'", f);
      if (colon)
        *colon = '\0';
      v[i] = parse_u64(s, e->line, p, "island field", 10, UINT64_MAX);
      p = colon ? colon + 1 : p;
    }
    if (v[1] > v[0] || v[2] > v[0] - v[1])
      die_at(s->path, e->line, "island %s does not fit in its file", f);
    e->size = v[0];
    e->island_off = v[1];
    e->island_len = v[2];
    e->seed = v[3];
  } else if (strncmp(f, "rand:", 5) == 0) {
    e->content = CONTENT_RAND;
    cleanup_free char *copy = xstrdup(f + 5);
    char *colon = strchr(copy, ':');
    if (colon == NULL)
      die_at(s->path, e->line, "rand content is rand:N:SEED, got '%s'", f);
    *colon = '\0';
    e->size = parse_u64(s, e->line, copy, "size", 10, UINT64_C(1) << 40);
    e->seed = parse_u64(s, e->line, colon + 1, "seed", 10, UINT64_MAX);
  } else {
    die_at(s->path, e->line,
           "unknown content '%s' (text:S, rand:N:SEED, zeros:N, island:N:OFF:LEN:SEED, empty)", f);
  }
}

static const struct mklayer_entry *spec_find(const struct mklayer_spec *s, const char *name)
{
  for (size_t i = s->n_entries; i-- > 0;)
    if (strcmp(s->entries[i].name, name) == 0)
      return &s->entries[i];
  return NULL;
}

static void need_fields(const struct mklayer_spec *s, int line, int nf, int n, const char *usage)
{
  if (nf < n)
    die_at(s->path, line, "too few fields: %s", usage);
}

static void parse_line(struct mklayer_spec *s, int line, char **f, int nf)
{
  struct mklayer_entry e = {.line = line};
  const char *kind = f[0];
  int used;

  if (strcmp(kind, "dir") == 0 || strcmp(kind, "fifo") == 0) {
    need_fields(s, line, nf, 6, "dir|fifo NAME MODE UID GID MTIME");
    e.type = kind[0] == 'd' ? AE_IFDIR : AE_IFIFO;
    e.name = parse_name(s, line, f[1]);
    parse_meta(s, &e, f + 2);
    used = 6;
  } else if (strcmp(kind, "file") == 0) {
    need_fields(s, line, nf, 7, "file NAME MODE UID GID MTIME CONTENT");
    e.type = AE_IFREG;
    e.name = parse_name(s, line, f[1]);
    parse_meta(s, &e, f + 2);
    parse_content(s, &e, f[6]);
    used = 7;
  } else if (strcmp(kind, "symlink") == 0) {
    need_fields(s, line, nf, 6, "symlink NAME TARGET UID GID MTIME");
    e.type = AE_IFLNK;
    e.name = parse_name(s, line, f[1]);
    e.target = parse_name(s, line, f[2]);
    char *meta[4] = {"0777", f[3], f[4], f[5]};
    parse_meta(s, &e, meta);
    used = 6;
  } else if (strcmp(kind, "hardlink") == 0) {
    need_fields(s, line, nf, 3, "hardlink NAME TARGET [MODE UID GID MTIME]");
    e.type = AE_IFREG;
    e.hardlink = true;
    e.name = parse_name(s, line, f[1]);
    e.link = parse_name(s, line, f[2]);
    if (nf >= 7 && strchr(f[3], ':') == NULL && strchr(f[3], '=') == NULL) {
      parse_meta(s, &e, f + 3);
      used = 7;
    } else {
      const struct mklayer_entry *t = spec_find(s, e.link);
      if (t == NULL)
        die_at(s->path, line, "hardlink target '%s' is not an earlier entry: give MODE UID GID MTIME",
               e.link);
      e.mode = t->mode;
      e.uid = t->uid;
      e.gid = t->gid;
      e.mtime_sec = t->mtime_sec;
      e.mtime_nsec = t->mtime_nsec;
      used = 3;
    }
  } else if (strcmp(kind, "char") == 0 || strcmp(kind, "block") == 0) {
    need_fields(s, line, nf, 8, "char|block NAME MAJOR MINOR MODE UID GID MTIME");
    e.type = kind[0] == 'c' ? AE_IFCHR : AE_IFBLK;
    e.name = parse_name(s, line, f[1]);
    e.dev_major = (unsigned)parse_u64(s, line, f[2], "major", 10, 4095);
    e.dev_minor = (unsigned)parse_u64(s, line, f[3], "minor", 10, 1048575);
    parse_meta(s, &e, f + 4);
    used = 8;
  } else {
    die_at(s->path, line, "unknown entry kind '%s' (dir file symlink hardlink char block fifo)", kind);
  }
  parse_options(s, &e, f + used, nf - used);

  if (s->n_entries == s->cap_entries) {
    /* doubling: growing by one made the 100,000-entry scale spec quadratic,
     * 20 minutes of copying under ASan, whose realloc always moves */
    s->cap_entries = s->cap_entries ? 2 * s->cap_entries : 64;
    s->entries = xrealloc(s->entries, s->cap_entries * sizeof(*s->entries));
  }
  s->entries[s->n_entries++] = e;
}

static void spec_parse(struct mklayer_spec *s, FILE *in)
{
  cleanup_free char *line = NULL;
  size_t cap = 0;
  int lineno = 0;
  while (getline(&line, &cap, in) >= 0) {
    lineno++;
    char *fields[MAX_FIELDS];
    int nf = 0;
    char *save = NULL;
    for (char *tok = strtok_r(line, " \t\r\n", &save); tok; tok = strtok_r(NULL, " \t\r\n", &save)) {
      if (tok[0] == '#')
        break;
      if (nf == MAX_FIELDS)
        die_at(s->path, lineno, "more than %d fields", MAX_FIELDS);
      fields[nf++] = tok;
    }
    if (nf > 0)
      parse_line(s, lineno, fields, nf);
  }
  if (ferror(in))
    die("reading %s: %s", s->path, strerror(errno));
}

/* splitmix64: tiny, portable, and the same stream on every machine. */
static uint64_t splitmix64(uint64_t *state)
{
  uint64_t z = (*state += UINT64_C(0x9E3779B97F4A7C15));
  z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
  return z ^ (z >> 31);
}

static void write_data(struct archive *a, const struct mklayer_entry *e)
{
  static unsigned char buf[65536];
  if (e->content == CONTENT_TEXT) {
    if (e->text_len && archive_write_data(a, e->text, e->text_len) != (la_ssize_t)e->text_len)
      die("%s: writing data: %s", e->name, archive_error_string(a));
    return;
  }
  uint64_t state = e->seed, left = e->size, pos = 0;
  while (left > 0) {
    size_t n = left < sizeof(buf) ? (size_t)left : sizeof(buf);
    if (e->content == CONTENT_ISLAND) {
      /* byte q of the island is byte q%8 of splitmix64 step q/8 from SEED:
       * the same bytes whatever the buffer boundaries */
      memset(buf, 0, n);
      uint64_t end = e->island_off + e->island_len;
      for (uint64_t at = pos > e->island_off ? pos : e->island_off; at < pos + n && at < end; at++) {
        uint64_t q = at - e->island_off, st = e->seed + (q / 8) * UINT64_C(0x9E3779B97F4A7C15);
        buf[at - pos] = (unsigned char)(splitmix64(&st) >> (8 * (q % 8)));
      }
    } else if (e->content == CONTENT_RAND) {
      for (size_t i = 0; i < n; i += 8) {
        uint64_t r = splitmix64(&state);
        for (size_t j = 0; j < 8 && i + j < n; j++)
          buf[i + j] = (unsigned char)(r >> (8 * j));
      }
    } else {
      memset(buf, 0, n);
    }
    if (archive_write_data(a, buf, n) != (la_ssize_t)n)
      die("%s: writing data: %s", e->name, archive_error_string(a));
    left -= n;
    pos += n;
  }
}

static void write_entry(struct archive *a, const struct mklayer_entry *e)
{
  struct archive_entry *ae = archive_entry_new2(a);
  archive_entry_copy_pathname(ae, e->name);
  archive_entry_set_filetype(ae, e->type);
  archive_entry_set_perm(ae, e->mode);
  archive_entry_set_uid(ae, e->uid);
  archive_entry_set_gid(ae, e->gid);
  archive_entry_set_mtime(ae, e->mtime_sec, e->mtime_nsec);
  if (e->has_atime)
    archive_entry_set_atime(ae, e->atime_sec, e->atime_nsec);
  if (e->hardlink)
    archive_entry_copy_hardlink(ae, e->link);
  if (e->type == AE_IFLNK)
    archive_entry_copy_symlink(ae, e->target);
  if (e->type == AE_IFCHR || e->type == AE_IFBLK) {
    archive_entry_set_rdevmajor(ae, e->dev_major);
    archive_entry_set_rdevminor(ae, e->dev_minor);
  }
  archive_entry_set_size(ae, e->type == AE_IFREG && !e->hardlink ? (la_int64_t)e->size : 0);
  for (size_t i = 0; i < e->n_xattrs; i++)
    archive_entry_xattr_add_entry(ae, e->xattrs[i].key, e->xattrs[i].value, e->xattrs[i].value_len);

  /* ARCHIVE_WARN: written, e.g. a name that is not UTF-8 goes out as raw bytes. */
  int r = archive_write_header(a, ae);
  if (r < ARCHIVE_WARN)
    die("line %d: %s: %s", e->line, e->name, archive_error_string(a));
  if (r == ARCHIVE_WARN)
    fprintf(stderr, "mklayer: line %d: %s: %s\n", e->line, e->name, archive_error_string(a));
  if (e->type == AE_IFREG && !e->hardlink)
    write_data(a, e);
  archive_entry_free(ae);
}

static void usage(FILE *out)
{
  fputs("usage: mklayer [--format pax|gnu|ustar] SPEC OUT.tar   (\"-\" = stdin/stdout)\n"
        "       mklayer --fcap CAPS    e.g. cap_net_bind_service+ep\n"
        "The spec grammar is documented at the top of tests/tools/mklayer.c.\n",
        out);
}

static int print_fcap(const char *spec)
{
  unsigned char v[20];
  cleanup_free char *msg = NULL;
  if (fcap_encode(spec, v, &msg) < 0)
    die("%s", msg);
  for (size_t i = 0; i < sizeof(v); i++)
    printf("\\x%02x", v[i]);
  putchar('\n');
  return 0;
}

int main(int argc, char **argv)
{
  static const struct option opts[] = {
      {"format", required_argument, NULL, 'f'},
      {"fcap", required_argument, NULL, 'c'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  const char *format = "pax";
  int c;
  while ((c = getopt_long(argc, argv, "f:h", opts, NULL)) != -1) {
    switch (c) {
    case 'f':
      format = optarg;
      break;
    case 'c':
      return print_fcap(optarg);
    case 'h':
      usage(stdout);
      return 0;
    default:
      usage(stderr);
      return 2;
    }
  }
  if (argc - optind != 2) {
    usage(stderr);
    return 2;
  }
  const char *spec_path = argv[optind], *out_path = argv[optind + 1];

  struct mklayer_spec spec = {.path = spec_path};
  FILE *in = strcmp(spec_path, "-") == 0 ? stdin : fopen(spec_path, "r");
  if (in == NULL)
    die("%s: %s", spec_path, strerror(errno));
  spec_parse(&spec, in);
  if (in != stdin)
    fclose(in);

  bool pax = strcmp(format, "pax") == 0;
  /* Refuse before the output file exists: gnu and ustar would drop xattrs. */
  for (size_t i = 0; i < spec.n_entries && !pax; i++)
    if (spec.entries[i].n_xattrs)
      die_at(spec_path, spec.entries[i].line, "%s: only the pax format carries xattrs", spec.entries[i].name);

  struct archive *a = archive_write_new();
  int r;
  if (pax) {
    r = archive_write_set_format_pax(a);
    if (r == ARCHIVE_OK)
      r = archive_write_set_format_option(a, "pax", "xattrheader", "SCHILY");
  } else if (strcmp(format, "gnu") == 0) {
    r = archive_write_set_format_gnutar(a);
  } else if (strcmp(format, "ustar") == 0) {
    r = archive_write_set_format_ustar(a);
  } else {
    die("unknown format '%s' (pax, gnu, ustar)", format);
  }
  if (r != ARCHIVE_OK)
    die("setting format %s: %s", format, archive_error_string(a));
  /* No padding of the last block: Go's writer pads to 512 bytes only. */
  archive_write_set_bytes_in_last_block(a, 1);

  if (strcmp(out_path, "-") == 0)
    r = archive_write_open_fd(a, STDOUT_FILENO);
  else
    r = archive_write_open_filename(a, out_path);
  if (r != ARCHIVE_OK)
    die("%s: %s", out_path, archive_error_string(a));

  for (size_t i = 0; i < spec.n_entries; i++)
    write_entry(a, &spec.entries[i]);

  if (archive_write_close(a) != ARCHIVE_OK)
    die("%s: %s", out_path, archive_error_string(a));
  archive_write_free(a);
  mklayer_spec_free(&spec);
  return 0;
}

/* Image references: the docker CLI's grammar and normalisation, written as a
 * small hand parser rather than one big regular expression so that every
 * refusal can say which part of the reference is wrong. */
#include "ref.h"

#include <stdlib.h>
#include <string.h>

#include "digest.h"
#include "util.h"

#define DEFAULT_DOMAIN "docker.io"
#define LEGACY_DEFAULT_DOMAIN "index.docker.io"
#define DEFAULT_REGISTRY_HOST "registry-1.docker.io"
#define OFFICIAL_PREFIX "library/"
#define DEFAULT_TAG "latest"
#define OCI_PREFIX "oci:"
#define NAME_MAX_LEN 255
#define TAG_MAX_LEN 128

static int ref_error(sbd_error_t *err, const char *s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* "invalid image reference "<s>": <what is wrong>" */
static int ref_error(sbd_error_t *err, const char *s, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  cleanup_free char *why = xvasprintf(fmt, ap);
  va_end(ap);
  return sbd_error_set(err, SBD_EXIT_USAGE, 0, "invalid image reference \"%s\": %s", s, why);
}

/* ASCII classes: the grammar is ASCII, and <ctype.h> would follow the locale. */
static bool is_digit(char c)
{
  return c >= '0' && c <= '9';
}

static bool is_upper(char c)
{
  return c >= 'A' && c <= 'Z';
}

static bool is_lower_alnum(char c)
{
  return (c >= 'a' && c <= 'z') || is_digit(c);
}

static bool is_alnum(char c)
{
  return is_lower_alnum(c) || is_upper(c);
}

static bool is_hex(char c)
{
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* `[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*` over [p, p+n). */
static bool path_component_valid(const char *p, size_t n)
{
  size_t i = 0;
  for (;;) {
    size_t start = i;
    while (i < n && is_lower_alnum(p[i]))
      i++;
    if (i == start)
      return false; /* empty, or a separator at the start, end or doubled */
    if (i == n)
      return true;
    if (p[i] == '.')
      i++;
    else if (p[i] == '_')
      i += (i + 1 < n && p[i + 1] == '_') ? 2 : 1;
    else if (p[i] == '-')
      while (i < n && p[i] == '-')
        i++;
    else
      return false;
  }
}

/* `[\w][\w.-]{0,127}` */
static bool tag_char(char c, bool first)
{
  return is_alnum(c) || c == '_' || (!first && (c == '.' || c == '-'));
}

static int check_tag(const char *s, const char *tag, sbd_error_t *err)
{
  size_t n = strlen(tag);
  if (n == 0)
    return ref_error(err, s, "the tag after ':' is empty");
  if (n > TAG_MAX_LEN)
    return ref_error(err, s, "the tag is %zu characters long; the limit is %d", n, TAG_MAX_LEN);
  for (size_t i = 0; i < n; i++)
    if (!tag_char(tag[i], i == 0))
      return ref_error(err, s,
                       "tag \"%s\" may contain only letters, digits, '_', '.' and '-', and must "
                       "not start with '.' or '-'",
                       tag);
  return 0;
}

static int check_path(const char *s, const char *path, sbd_error_t *err)
{
  if (*path == '\0')
    return ref_error(err, s, "the repository name is empty");
  for (const char *p = path;;) {
    size_t n = strcspn(p, "/");
    if (n == 0)
      return ref_error(err, s, "the repository name \"%s\" has an empty path component", path);
    if (!path_component_valid(p, n))
      return ref_error(err, s,
                       "path component \"%.*s\" is invalid: use lower-case letters and digits, "
                       "separated by '.', '_', '__' or dashes",
                       (int)n, p);
    if (p[n] == '\0')
      return 0;
    p += n + 1;
  }
}

/* One DNS-ish label: `[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?` over [p, p+n). */
static bool domain_label_valid(const char *p, size_t n)
{
  if (n == 0 || !is_alnum(p[0]) || !is_alnum(p[n - 1]))
    return false;
  for (size_t i = 0; i < n; i++)
    if (!is_alnum(p[i]) && p[i] != '-')
      return false;
  return true;
}

/* Host part of a domain: labels separated by '.', or an IPv6 literal in
 * brackets (hex digits and ':' only, as distribution/reference allows).
 * Returns the length consumed, 0 when the host is invalid. */
static size_t domain_host_len(const char *d)
{
  if (d[0] == '[') {
    size_t n = 1;
    while (is_hex(d[n]) || d[n] == ':')
      n++;
    return (n > 1 && d[n] == ']') ? n + 1 : 0;
  }
  size_t end = strcspn(d, ":");
  for (size_t i = 0; i < end;) {
    size_t n = strcspn(d + i, ".:");
    if (n > end - i)
      n = end - i;
    if (!domain_label_valid(d + i, n))
      return 0;
    i += n;
    if (i < end && ++i == end)
      return 0; /* trailing '.' */
  }
  return end;
}

static bool domain_valid(const char *d)
{
  size_t n = domain_host_len(d);
  if (n == 0)
    return false;
  if (d[n] == '\0')
    return true;
  if (d[n] != ':' || d[n + 1] == '\0')
    return false;
  for (const char *p = d + n + 1; *p; p++)
    if (!is_digit(*p))
      return false;
  return true;
}

/* docker's rule: the first component names a registry when it looks like a
 * host ('.' or ':'), is "localhost", or has upper case (repository names
 * cannot, so it must be a host name). */
static bool looks_like_domain(const char *c, size_t n)
{
  if (n == strlen("localhost") && strncmp(c, "localhost", n) == 0)
    return true;
  for (size_t i = 0; i < n; i++)
    if (c[i] == '.' || c[i] == ':' || is_upper(c[i]))
      return true;
  return false;
}

/* Splits name (no tag or digest) into domain and path, normalising Docker
 * Hub's legacy host and official-image "library/" namespace. */
static void split_domain(const char *name, struct sbd_ref *ref)
{
  const char *slash = strchr(name, '/');
  const char *remainder = name;
  if (slash && looks_like_domain(name, (size_t)(slash - name))) {
    ref->domain = xstrndup(name, (size_t)(slash - name));
    remainder = slash + 1;
  }
  if (ref->domain == NULL || strcmp(ref->domain, LEGACY_DEFAULT_DOMAIN) == 0) {
    free(ref->domain);
    ref->domain = xstrdup(DEFAULT_DOMAIN);
  }
  if (strcmp(ref->domain, DEFAULT_DOMAIN) == 0 && strchr(remainder, '/') == NULL)
    ref->path = xasprintf(OFFICIAL_PREFIX "%s", remainder);
  else
    ref->path = xstrdup(remainder);
}

static bool is_image_id(const char *s)
{
  if (strlen(s) != 64)
    return false;
  for (const char *p = s; *p; p++)
    if (!is_digit(*p) && !(*p >= 'a' && *p <= 'f'))
      return false;
  return true;
}

/* oci:DIR[:TAG]: a ':' starts the tag only when nothing after it is a path. */
static int parse_oci(const char *s, struct sbd_ref *ref, sbd_error_t *err)
{
  const char *rest = s + strlen(OCI_PREFIX);
  const char *colon = strrchr(rest, ':');
  if (colon && strchr(colon + 1, '/') == NULL) {
    if (colon[1] == '\0')
      return ref_error(err, s, "the tag after the last ':' is empty");
    ref->oci_dir = xstrndup(rest, (size_t)(colon - rest));
    ref->oci_tag = xstrdup(colon + 1);
  } else {
    ref->oci_dir = xstrdup(rest);
  }
  if (ref->oci_dir[0] == '\0')
    return ref_error(err, s, "an OCI layout reference needs a directory: oci:DIR[:TAG]");
  return 0;
}

/* Checks the parts in docker's order: case first (the commonest mistake),
 * then the grammar of each part, then the length of the whole name. */
static int check_parts(const char *s, const struct sbd_ref *ref, const char *tag,
                       const char *digest, sbd_error_t *err)
{
  for (const char *p = ref->path; *p; p++)
    if (is_upper(*p))
      return ref_error(err, s, "repository name must be lowercase");
  if (!domain_valid(ref->domain))
    return ref_error(err, s,
                     "registry host \"%s\" is not a valid host name, IPv4 or [IPv6] address with "
                     "an optional :port",
                     ref->domain);
  if (check_path(s, ref->path, err) < 0)
    return -1;
  if (tag && check_tag(s, tag, err) < 0)
    return -1;
  if (digest && !sbd_digest_valid(digest))
    return ref_error(
        err, s, "digest \"%s\" is not \"sha256:\" followed by 64 lower-case hex digits", digest);
  size_t len = strlen(ref->domain) + 1 + strlen(ref->path);
  if (len > NAME_MAX_LEN)
    return ref_error(err, s, "the repository name is %zu characters long; the limit is %d", len,
                     NAME_MAX_LEN);
  return 0;
}

static int parse_registry_ref(const char *s, struct sbd_ref *ref, sbd_error_t *err)
{
  if (is_image_id(s))
    return ref_error(err, s, "a 64-digit hex string is an image ID, not a repository name");
  cleanup_free char *name = xstrdup(s);
  char *digest = strchr(name, '@');
  if (digest)
    *digest++ = '\0';
  /* "" or ":tag" (a leading ':' before any '/' would be a port with no host) */
  if (name[0] == '\0' || (name[0] == ':' && strchr(name, '/') == NULL))
    return ref_error(err, s, "the repository name is empty");
  split_domain(name, ref);
  /* No ':' can remain in a path, so the first one starts the tag. */
  char *tag = strchr(ref->path, ':');
  if (tag)
    *tag++ = '\0';
  if (check_parts(s, ref, tag, digest, err) < 0)
    return -1;
  /* With both, the digest alone names the content (containerd's CRI). */
  if (digest)
    ref->digest = xstrdup(digest);
  else
    ref->tag = xstrdup(tag ? tag : DEFAULT_TAG);
  return 0;
}

int sbd_ref_parse(const char *s, struct sbd_ref *ref, sbd_error_t *err)
{
  memset(ref, 0, sizeof(*ref));
  int ret;
  if (s == NULL || *s == '\0')
    ret = ref_error(err, s ? s : "", "the reference is empty");
  else if (strncmp(s, OCI_PREFIX, strlen(OCI_PREFIX)) == 0)
    ret = parse_oci(s, ref, err);
  else
    ret = parse_registry_ref(s, ref, err);
  if (ret < 0)
    sbd_ref_free(ref);
  return ret;
}

char *sbd_ref_name(const struct sbd_ref *ref)
{
  if (sbd_ref_is_oci_layout(ref))
    return xasprintf(OCI_PREFIX "%s%s%s", ref->oci_dir, ref->oci_tag ? ":" : "",
                     ref->oci_tag ? ref->oci_tag : "");
  if (ref->digest)
    return xasprintf("%s/%s@%s", ref->domain, ref->path, ref->digest);
  return xasprintf("%s/%s:%s", ref->domain, ref->path, ref->tag);
}

const char *sbd_ref_reference(const struct sbd_ref *ref)
{
  if (sbd_ref_is_oci_layout(ref))
    return ref->oci_tag;
  return ref->digest ? ref->digest : ref->tag;
}

const char *sbd_ref_registry_host(const struct sbd_ref *ref)
{
  if (ref->domain == NULL)
    return NULL;
  return strcmp(ref->domain, DEFAULT_DOMAIN) == 0 ? DEFAULT_REGISTRY_HOST : ref->domain;
}

bool sbd_ref_is_oci_layout(const struct sbd_ref *ref)
{
  return ref->oci_dir != NULL;
}

void sbd_ref_free(struct sbd_ref *ref)
{
  free(ref->domain);
  free(ref->path);
  free(ref->tag);
  free(ref->digest);
  free(ref->oci_dir);
  free(ref->oci_tag);
  memset(ref, 0, sizeof(*ref));
}

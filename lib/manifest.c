/* Manifests, indexes and configs (jansson), and containerd's platform rules.
 *
 * Parsers copy what later stages need into plain structs and refuse, naming
 * the JSON field, whatever those stages could not trust.  Where containerd's
 * Go decoder would accept a document (absent optional fields, media types it
 * does not know), we accept it too: refusing an image containerd pulls would
 * make the disk less faithful, not more. */
#include "manifest.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "digest.h"
#include "util.h"

#define ANNOTATION_REFERENCE_TYPE "vnd.docker.reference.type"
#define ATTESTATION_MANIFEST "attestation-manifest"

static void json_cleanup(json_t **j)
{
  json_decref(*j);
}
#define cleanup_json __attribute__((cleanup(json_cleanup)))

/* --- platforms ------------------------------------------------------------- */

static char *lower_dup(const char *s)
{
  char *r = xstrdup(s ? s : "");
  for (char *p = r; *p; p++)
    if (*p >= 'A' && *p <= 'Z')
      *p = (char)(*p - 'A' + 'a');
  return r;
}

static bool str_in(const char *s, const char *const *set)
{
  for (; *set; set++)
    if (strcmp(s, *set) == 0)
      return true;
  return false;
}

/* containerd's normalizeOS: an empty OS means the host's, and we only ever
 * build for Linux nodes. */
static char *normalize_os(const char *os)
{
  char *r = lower_dup(os);
  const char *replace = *r == '\0' ? "linux" : strcmp(r, "macos") == 0 ? "darwin" : NULL;
  if (replace) {
    free(r);
    r = xstrdup(replace);
  }
  return r;
}

/* containerd's normalizeArch; *variant is replaced (NULL when empty). */
static char *normalize_arch(const char *arch, char **variant)
{
  char *a = lower_dup(arch);
  char *v = lower_dup(*variant);
  const char *new_arch = NULL, *new_variant = NULL;
  if (strcmp(a, "i386") == 0) {
    new_arch = "386", new_variant = "";
  } else if (str_in(a, (const char *const[]){"x86_64", "x86-64", "amd64", NULL})) {
    new_arch = "amd64", new_variant = strcmp(v, "v1") == 0 ? "" : NULL;
  } else if (str_in(a, (const char *const[]){"aarch64", "arm64", NULL})) {
    new_arch = "arm64", new_variant = str_in(v, (const char *const[]){"8", "v8", NULL}) ? "" : NULL;
  } else if (strcmp(a, "armhf") == 0) {
    new_arch = "arm", new_variant = "v7";
  } else if (strcmp(a, "armel") == 0) {
    new_arch = "arm", new_variant = "v6";
  } else if (strcmp(a, "arm") == 0) {
    if (str_in(v, (const char *const[]){"", "7", NULL}))
      new_variant = "v7";
    else if (str_in(v, (const char *const[]){"5", "6", "8", NULL}))
      new_variant = (v[0] == '5') ? "v5" : (v[0] == '6') ? "v6" : "v8";
  }
  if (new_arch) {
    free(a);
    a = xstrdup(new_arch);
  }
  if (new_variant) {
    free(v);
    v = xstrdup(new_variant);
  }
  free(*variant);
  if (*v == '\0') {
    free(v);
    v = NULL;
  }
  *variant = v;
  return a;
}

void sbd_platform_normalize(struct sbd_platform *p)
{
  char *os = normalize_os(p->os ? p->os : "");
  char *arch = normalize_arch(p->arch, &p->variant);
  free(p->os);
  free(p->arch);
  p->os = os;
  p->arch = arch;
}

/* containerd's specifier components: `[A-Za-z0-9_-]+`. */
static bool platform_component_valid(const char *s, size_t n)
{
  if (n == 0)
    return false;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
          c == '-'))
      return false;
  }
  return true;
}

/* Splits s into at most three valid parts; returns what is wrong, or NULL. */
static const char *platform_split(const char *s, char *parts[3], size_t *n)
{
  for (const char *c = s;; c++) {
    size_t len = strcspn(c, "/");
    if (*n == 3)
      return "it has more than three parts";
    if (len == 0)
      return "it has an empty part";
    if (!platform_component_valid(c, len))
      return "its parts may contain only letters, digits, '_' and '-'";
    parts[(*n)++] = xstrndup(c, len);
    c += len;
    if (*c == '\0')
      return *n < 2 ? "it names no architecture" : NULL;
  }
}

int sbd_platform_parse(const char *s, struct sbd_platform *p, sbd_error_t *err)
{
  memset(p, 0, sizeof(*p));
  char *parts[3] = {NULL, NULL, NULL};
  size_t n = 0;
  const char *problem = platform_split(s, parts, &n);
  if (problem) {
    for (size_t i = 0; i < n; i++)
      free(parts[i]);
    return sbd_error_set(err, SBD_EXIT_USAGE, 0,
                         "invalid platform \"%s\": %s; expected OS/ARCH[/VARIANT] such as "
                         "linux/amd64, linux/arm64 or linux/arm/v7",
                         s, problem);
  }
  p->os = parts[0];
  p->arch = parts[1];
  p->variant = parts[2];
  sbd_platform_normalize(p);
  return 0;
}

char *sbd_platform_format(const struct sbd_platform *p)
{
  /* containerd joins the non-empty parts as a path; without an OS it prints
   * "unknown" alone. */
  if (p->os == NULL || *p->os == '\0')
    return xstrdup("unknown");
  struct sbd_buf b = {0};
  sbd_buf_appendf(&b, "%s", p->os);
  if (p->arch && *p->arch)
    sbd_buf_appendf(&b, "/%s", p->arch);
  if (p->variant && *p->variant)
    sbd_buf_appendf(&b, "/%s", p->variant);
  return sbd_buf_cstr(&b);
}

static void platform_copy_normalized(const struct sbd_platform *src, struct sbd_platform *dst)
{
  dst->os = xstrdup(src->os ? src->os : "");
  dst->arch = xstrdup(src->arch ? src->arch : "");
  dst->variant = src->variant ? xstrdup(src->variant) : NULL;
  sbd_platform_normalize(dst);
}

bool sbd_platform_match(const struct sbd_platform *want, const struct sbd_platform *have)
{
  struct sbd_platform w = {0}, h = {0};
  platform_copy_normalized(want, &w);
  platform_copy_normalized(have, &h);
  bool match = strcmp(w.os, h.os) == 0 && strcmp(w.arch, h.arch) == 0 &&
               strcmp(w.variant ? w.variant : "", h.variant ? h.variant : "") == 0;
  sbd_platform_free(&w);
  sbd_platform_free(&h);
  return match;
}

void sbd_platform_free(struct sbd_platform *p)
{
  free(p->os);
  free(p->arch);
  free(p->variant);
  memset(p, 0, sizeof(*p));
}

/* --- media types ------------------------------------------------------------ */

/* A Content-Type may carry parameters ("; charset=utf-8") and any case. */
static enum sbd_manifest_kind kind_of_media_type(const char *mt)
{
  if (mt == NULL)
    return SBD_KIND_UNKNOWN;
  mt += strspn(mt, " \t");
  size_t n = strcspn(mt, "; \t");
  static const struct {
    const char *type;
    enum sbd_manifest_kind kind;
  } types[] = {
      {SBD_MT_OCI_INDEX, SBD_KIND_INDEX},
      {SBD_MT_DOCKER_LIST, SBD_KIND_INDEX},
      {SBD_MT_OCI_MANIFEST, SBD_KIND_MANIFEST},
      {SBD_MT_DOCKER_MANIFEST, SBD_KIND_MANIFEST},
  };
  for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
    if (strlen(types[i].type) == n && strncasecmp(mt, types[i].type, n) == 0)
      return types[i].kind;
  return SBD_KIND_UNKNOWN;
}

enum sbd_manifest_kind sbd_manifest_kind_of(const char *content_type, const char *body, size_t len)
{
  enum sbd_manifest_kind kind = kind_of_media_type(content_type);
  if (kind != SBD_KIND_UNKNOWN || body == NULL)
    return kind;
  cleanup_json json_t *root = json_loadb(body, len, 0, NULL);
  if (!json_is_object(root))
    return SBD_KIND_UNKNOWN;
  /* A document that names its own type is taken at its word: an artifact
   * that happens to have "layers" is still not an image. */
  json_t *mt = json_object_get(root, "mediaType");
  if (mt)
    return kind_of_media_type(json_string_value(mt));
  if (json_is_array(json_object_get(root, "manifests")))
    return SBD_KIND_INDEX;
  if (json_is_array(json_object_get(root, "layers")) ||
      json_is_object(json_object_get(root, "config")))
    return SBD_KIND_MANIFEST;
  return SBD_KIND_UNKNOWN;
}

enum sbd_compression sbd_layer_compression(const char *media_type)
{
  static const struct {
    const char *type;
    enum sbd_compression c;
  } layers[] = {
      {"application/vnd.oci.image.layer.v1.tar", SBD_COMPRESSION_NONE},
      {"application/vnd.oci.image.layer.v1.tar+gzip", SBD_COMPRESSION_GZIP},
      {"application/vnd.oci.image.layer.v1.tar+zstd", SBD_COMPRESSION_ZSTD},
      {"application/vnd.oci.image.layer.nondistributable.v1.tar", SBD_COMPRESSION_NONE},
      {"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", SBD_COMPRESSION_GZIP},
      {"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", SBD_COMPRESSION_ZSTD},
      {"application/vnd.docker.image.rootfs.diff.tar.gzip", SBD_COMPRESSION_GZIP},
      {"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", SBD_COMPRESSION_GZIP},
      /* containerd treats these as "maybe compressed" and sniffs the bytes */
      {"application/vnd.docker.image.rootfs.diff.tar", SBD_COMPRESSION_SNIFF},
      {"application/vnd.docker.image.rootfs.foreign.diff.tar", SBD_COMPRESSION_SNIFF},
  };
  for (size_t i = 0; media_type && i < sizeof(layers) / sizeof(layers[0]); i++)
    if (strcmp(media_type, layers[i].type) == 0)
      return layers[i].c;
  return SBD_COMPRESSION_UNKNOWN;
}

const char *sbd_compression_name(enum sbd_compression c)
{
  switch (c) {
  case SBD_COMPRESSION_NONE:
    return "none";
  case SBD_COMPRESSION_GZIP:
    return "gzip";
  case SBD_COMPRESSION_ZSTD:
    return "zstd";
  case SBD_COMPRESSION_SNIFF:
    return "detected";
  default:
    return "unknown";
  }
}

/* --- JSON field helpers ------------------------------------------------------ */

/* Where a field sits, for messages: "manifest: layers[2].digest ...". */
struct field_path {
  const char *doc;  /* "index", "manifest", "config" */
  const char *path; /* "" for the top level, else "layers[2]" */
};

static int field_error(sbd_error_t *err, const struct field_path *at, const char *key,
                       const char *problem)
{
  return sbd_error_set(err, SBD_EXIT_IMAGE, 0, "%s: %s%s%s %s", at->doc, at->path,
                       *at->path && key ? "." : "", key ? key : "", problem);
}

/* Copies the string member key into *out (left NULL when absent and not
 * required). */
static int get_string(json_t *obj, const char *key, bool required, const struct field_path *at,
                      char **out, sbd_error_t *err)
{
  json_t *v = json_object_get(obj, key);
  if (v == NULL)
    return required ? field_error(err, at, key, "is missing") : 0;
  if (!json_is_string(v))
    return field_error(err, at, key, "is not a string");
  *out = xstrdup(json_string_value(v));
  return 0;
}

static int get_digest(json_t *obj, const char *key, const struct field_path *at, char **out,
                      sbd_error_t *err)
{
  json_t *v = json_object_get(obj, key);
  if (v == NULL)
    return field_error(err, at, key, "is missing");
  if (!sbd_digest_valid(json_string_value(v)))
    return field_error(err, at, key, "is not a sha256 digest");
  *out = xstrdup(json_string_value(v));
  return 0;
}

static int load_object(const char *doc, const char *body, size_t len, json_t **out,
                       sbd_error_t *err)
{
  json_error_t jerr;
  json_t *root = json_loadb(body, len, 0, &jerr);
  if (root == NULL)
    return sbd_error_set(err, SBD_EXIT_IMAGE, 0, "%s: invalid JSON at line %d, column %d: %s", doc,
                         jerr.line, jerr.column, jerr.text);
  if (!json_is_object(root)) {
    json_decref(root);
    return sbd_error_set(err, SBD_EXIT_IMAGE, 0, "%s: the document is not a JSON object", doc);
  }
  *out = root;
  return 0;
}

static int check_schema_version(json_t *root, const struct field_path *at, sbd_error_t *err)
{
  json_t *v = json_object_get(root, "schemaVersion");
  if (v == NULL)
    return field_error(err, at, "schemaVersion", "is missing");
  if (!json_is_integer(v))
    return field_error(err, at, "schemaVersion", "is not an integer");
  if (json_integer_value(v) != 2) {
    cleanup_free char *problem =
        xasprintf("is %lld; only schema version 2 is supported", (long long)json_integer_value(v));
    return field_error(err, at, "schemaVersion", problem);
  }
  return 0;
}

/* The document's own mediaType is optional in OCI, but when present it must
 * be the kind we are parsing. */
static int get_own_media_type(json_t *root, enum sbd_manifest_kind want,
                              const struct field_path *at, char **out, sbd_error_t *err)
{
  if (get_string(root, "mediaType", false, at, out, err) < 0)
    return -1;
  if (*out && kind_of_media_type(*out) != want) {
    cleanup_free char *problem =
        xasprintf("\"%s\" is not an image %s", *out, want == SBD_KIND_INDEX ? "index" : "manifest");
    return field_error(err, at, "mediaType", problem);
  }
  return 0;
}

/* --- descriptors ------------------------------------------------------------- */

static int parse_platform(json_t *j, const struct field_path *at, struct sbd_platform *p,
                          sbd_error_t *err)
{
  if (!json_is_object(j))
    return field_error(err, at, "platform", "is not an object");
  cleanup_free char *path = xasprintf("%s.platform", at->path);
  struct field_path sub = {at->doc, path};
  if (get_string(j, "os", false, &sub, &p->os, err) < 0 ||
      get_string(j, "architecture", false, &sub, &p->arch, err) < 0 ||
      get_string(j, "variant", false, &sub, &p->variant, err) < 0)
    return -1;
  /* Absent os/architecture decode as "" in containerd; they then match
   * nothing rather than failing the whole index. */
  if (p->os == NULL)
    p->os = xstrdup("");
  if (p->arch == NULL)
    p->arch = xstrdup("");
  if (p->variant && *p->variant == '\0') {
    free(p->variant);
    p->variant = NULL;
  }
  return 0;
}

static int parse_annotations(json_t *j, const struct field_path *at, struct sbd_descriptor *d,
                             sbd_error_t *err)
{
  if (j == NULL)
    return 0;
  if (!json_is_object(j))
    return field_error(err, at, "annotations", "is not an object");
  const char *type = json_string_value(json_object_get(j, ANNOTATION_REFERENCE_TYPE));
  d->is_attestation = type && strcmp(type, ATTESTATION_MANIFEST) == 0;
  return 0;
}

static int parse_urls(json_t *j, const struct field_path *at, struct sbd_descriptor *d,
                      sbd_error_t *err)
{
  if (j == NULL)
    return 0;
  if (!json_is_array(j))
    return field_error(err, at, "urls", "is not an array");
  size_t i;
  json_t *u;
  json_array_foreach(j, i, u)
  {
    if (!json_is_string(u)) {
      cleanup_free char *key = xasprintf("urls[%zu]", i);
      return field_error(err, at, key, "is not a string");
    }
  }
  d->n_urls = json_array_size(j);
  if (d->n_urls)
    d->first_url = xstrdup(json_string_value(json_array_get(j, 0)));
  return 0;
}

static bool is_image_media_type(const char *mt)
{
  return mt && (strcmp(mt, SBD_MT_OCI_INDEX) == 0 || strcmp(mt, SBD_MT_DOCKER_LIST) == 0 ||
                strcmp(mt, SBD_MT_OCI_MANIFEST) == 0 || strcmp(mt, SBD_MT_DOCKER_MANIFEST) == 0);
}

/* strict_digest: index entries of media types we never follow (signatures,
 * artifacts) may use digests other than sha256 without spoiling the index. */
static int parse_descriptor(json_t *j, const struct field_path *at, bool strict_digest,
                            struct sbd_descriptor *d, sbd_error_t *err)
{
  if (!json_is_object(j))
    return field_error(err, at, NULL, "is not an object");
  if (get_string(j, "mediaType", true, at, &d->media_type, err) < 0)
    return -1;
  if (strict_digest || is_image_media_type(d->media_type)) {
    if (get_digest(j, "digest", at, &d->digest, err) < 0)
      return -1;
  } else if (get_string(j, "digest", true, at, &d->digest, err) < 0) {
    return -1;
  }
  json_t *size = json_object_get(j, "size");
  if (size == NULL)
    return field_error(err, at, "size", "is missing");
  if (!json_is_integer(size) || json_integer_value(size) < 0)
    return field_error(err, at, "size", "is not a non-negative integer");
  d->size = json_integer_value(size);
  json_t *platform = json_object_get(j, "platform");
  if (platform) {
    d->has_platform = true;
    if (parse_platform(platform, at, &d->platform, err) < 0)
      return -1;
  }
  if (parse_annotations(json_object_get(j, "annotations"), at, d, err) < 0)
    return -1;
  return parse_urls(json_object_get(j, "urls"), at, d, err);
}

/* Parses the array member key into *out, one descriptor per element. */
static int parse_descriptor_array(json_t *root, const char *key, const struct field_path *at,
                                  bool strict_digest, struct sbd_descriptor **out, size_t *n_out,
                                  sbd_error_t *err)
{
  json_t *arr = json_object_get(root, key);
  if (arr == NULL)
    return field_error(err, at, key, "is missing");
  if (!json_is_array(arr))
    return field_error(err, at, key, "is not an array");
  *out = xcalloc(json_array_size(arr), sizeof(**out));
  size_t i;
  json_t *e;
  json_array_foreach(arr, i, e)
  {
    cleanup_free char *path = xasprintf("%s[%zu]", key, i);
    struct field_path sub = {at->doc, path};
    *n_out = i + 1;
    if (parse_descriptor(e, &sub, strict_digest, &(*out)[i], err) < 0)
      return -1;
  }
  return 0;
}

/* --- documents ---------------------------------------------------------------- */

int sbd_index_parse(const char *body, size_t len, struct sbd_index *out, sbd_error_t *err)
{
  memset(out, 0, sizeof(*out));
  const struct field_path at = {"index", ""};
  cleanup_json json_t *root = NULL;
  if (load_object(at.doc, body, len, &root, err) < 0)
    return -1;
  if (check_schema_version(root, &at, err) < 0 ||
      get_own_media_type(root, SBD_KIND_INDEX, &at, &out->media_type, err) < 0 ||
      parse_descriptor_array(root, "manifests", &at, false, &out->manifests, &out->n_manifests,
                             err) < 0) {
    sbd_index_free(out);
    return -1;
  }
  return 0;
}

static int parse_manifest_fields(json_t *root, struct sbd_manifest *out, sbd_error_t *err)
{
  const struct field_path at = {"manifest", ""};
  const struct field_path config_at = {"manifest", "config"};
  if (check_schema_version(root, &at, err) < 0 ||
      get_own_media_type(root, SBD_KIND_MANIFEST, &at, &out->media_type, err) < 0)
    return -1;
  json_t *config = json_object_get(root, "config");
  if (config == NULL)
    return field_error(err, &at, "config", "is missing");
  if (parse_descriptor(config, &config_at, true, &out->config, err) < 0)
    return -1;
  return parse_descriptor_array(root, "layers", &at, true, &out->layers, &out->n_layers, err);
}

int sbd_manifest_parse(const char *body, size_t len, struct sbd_manifest *out, sbd_error_t *err)
{
  memset(out, 0, sizeof(*out));
  cleanup_json json_t *root = NULL;
  if (load_object("manifest", body, len, &root, err) < 0)
    return -1;
  if (parse_manifest_fields(root, out, err) < 0) {
    sbd_manifest_free(out);
    return -1;
  }
  return 0;
}

static int parse_rootfs(json_t *root, struct sbd_config *out, sbd_error_t *err)
{
  const struct field_path at = {"config", ""};
  const struct field_path rootfs_at = {"config", "rootfs"};
  json_t *rootfs = json_object_get(root, "rootfs");
  if (rootfs == NULL)
    return field_error(err, &at, "rootfs", "is missing");
  if (!json_is_object(rootfs))
    return field_error(err, &at, "rootfs", "is not an object");
  cleanup_free char *type = NULL;
  if (get_string(rootfs, "type", true, &rootfs_at, &type, err) < 0)
    return -1;
  if (strcmp(type, "layers") != 0) {
    cleanup_free char *problem = xasprintf("is \"%s\", not \"layers\"", type);
    return field_error(err, &rootfs_at, "type", problem);
  }
  json_t *ids = json_object_get(rootfs, "diff_ids");
  if (ids == NULL)
    return field_error(err, &rootfs_at, "diff_ids", "is missing");
  if (!json_is_array(ids))
    return field_error(err, &rootfs_at, "diff_ids", "is not an array");
  out->diff_ids = xcalloc(json_array_size(ids), sizeof(*out->diff_ids));
  size_t i;
  json_t *id;
  json_array_foreach(ids, i, id)
  {
    if (!sbd_digest_valid(json_string_value(id))) {
      cleanup_free char *key = xasprintf("diff_ids[%zu]", i);
      return field_error(err, &rootfs_at, key, "is not a sha256 digest");
    }
    out->diff_ids[i] = xstrdup(json_string_value(id));
    out->n_diff_ids = i + 1;
  }
  return 0;
}

/* "2024-05-01T12:34:56.789Z" or "...+02:00" -> seconds since the epoch; -1
 * when s is not such a time.  Only informative (it picks the build's default
 * time), so a malformed value is ignored rather than refused. */
static int64_t parse_rfc3339(const char *s)
{
  int y, mo, d, h, mi, sec, n = 0;
  if (s == NULL || sscanf(s, "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 ||
      n == 0 || y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
    return -1;
  const char *p = s + n;
  if (*p == '.')
    for (p++; *p >= '0' && *p <= '9'; p++)
      ;
  int64_t offset = 0;
  if (*p == 'Z' || *p == 'z') {
    p++;
  } else if (*p == '+' || *p == '-') {
    int oh, om, m = 0;
    if (sscanf(p + 1, "%2d:%2d%n", &oh, &om, &m) != 2 || m != 5)
      return -1;
    offset = (*p == '-' ? -1 : 1) * (int64_t)(oh * 3600 + om * 60);
    p += 1 + m;
  } else {
    return -1;
  }
  if (*p != '\0')
    return -1;
  /* Days since the epoch of a proleptic Gregorian date (Howard Hinnant's method). */
  int64_t yy = y - (mo <= 2);
  int64_t era = yy / 400;
  int64_t yoe = yy - era * 400;
  int64_t doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  int64_t days = era * 146097 + doe - 719468;
  int64_t t = days * 86400 + h * 3600 + mi * 60 + sec - offset;
  return t < 0 ? -1 : t;
}

int sbd_config_parse(const char *body, size_t len, struct sbd_config *out, sbd_error_t *err)
{
  memset(out, 0, sizeof(*out));
  out->created = -1;
  const struct field_path at = {"config", ""};
  cleanup_json json_t *root = NULL;
  if (load_object(at.doc, body, len, &root, err) < 0)
    return -1;
  if (get_string(root, "os", false, &at, &out->os, err) < 0 ||
      get_string(root, "architecture", false, &at, &out->arch, err) < 0 ||
      get_string(root, "variant", false, &at, &out->variant, err) < 0 ||
      parse_rootfs(root, out, err) < 0) {
    sbd_config_free(out);
    return -1;
  }
  out->created = parse_rfc3339(json_string_value(json_object_get(root, "created")));
  return 0;
}

/* --- selection ---------------------------------------------------------------- */

static bool selectable(const struct sbd_descriptor *d)
{
  return d->has_platform && !d->is_attestation && is_image_media_type(d->media_type);
}

/* "linux/arm64, linux/arm/v7": what the index offers, each once, in order. */
static char *index_offers(const struct sbd_index *idx)
{
  struct sbd_buf b = {0};
  char **seen = xcalloc(idx->n_manifests, sizeof(*seen));
  size_t n_seen = 0;
  for (size_t i = 0; i < idx->n_manifests; i++) {
    if (!selectable(&idx->manifests[i]))
      continue;
    char *p = sbd_platform_format(&idx->manifests[i].platform);
    bool dup = false;
    for (size_t k = 0; k < n_seen && !dup; k++)
      dup = strcmp(seen[k], p) == 0;
    if (dup) {
      free(p);
      continue;
    }
    sbd_buf_appendf(&b, "%s%s", n_seen ? ", " : "", p);
    seen[n_seen++] = p;
  }
  for (size_t k = 0; k < n_seen; k++)
    free(seen[k]);
  free(seen);
  return n_seen ? sbd_buf_cstr(&b) : NULL;
}

int sbd_index_select(const struct sbd_index *idx, const struct sbd_platform *want,
                     const struct sbd_descriptor **out, sbd_error_t *err)
{
  for (size_t i = 0; i < idx->n_manifests; i++) {
    const struct sbd_descriptor *d = &idx->manifests[i];
    if (selectable(d) && sbd_platform_match(want, &d->platform)) {
      *out = d;
      return 0;
    }
  }
  cleanup_free char *wanted = sbd_platform_format(want);
  cleanup_free char *offers = index_offers(idx);
  if (offers == NULL)
    return sbd_error_set(err, SBD_EXIT_IMAGE, 0,
                         "no manifest for platform %s; the index lists no image platforms", wanted);
  return sbd_error_set(err, SBD_EXIT_IMAGE, 0, "no manifest for platform %s; the index has: %s",
                       wanted, offers);
}

/* --- freeing ---------------------------------------------------------------- */

void sbd_descriptor_free(struct sbd_descriptor *d)
{
  free(d->media_type);
  free(d->digest);
  free(d->first_url);
  sbd_platform_free(&d->platform);
  memset(d, 0, sizeof(*d));
}

static void descriptors_free(struct sbd_descriptor *v, size_t n)
{
  for (size_t i = 0; i < n; i++)
    sbd_descriptor_free(&v[i]);
  free(v);
}

void sbd_index_free(struct sbd_index *idx)
{
  free(idx->media_type);
  descriptors_free(idx->manifests, idx->n_manifests);
  memset(idx, 0, sizeof(*idx));
}

void sbd_manifest_free(struct sbd_manifest *m)
{
  free(m->media_type);
  sbd_descriptor_free(&m->config);
  descriptors_free(m->layers, m->n_layers);
  memset(m, 0, sizeof(*m));
}

void sbd_config_free(struct sbd_config *c)
{
  free(c->os);
  free(c->arch);
  free(c->variant);
  for (size_t i = 0; i < c->n_diff_ids; i++)
    free(c->diff_ids[i]);
  free(c->diff_ids);
  memset(c, 0, sizeof(*c));
}

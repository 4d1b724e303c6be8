/* The OCI distribution client: GET manifests and blobs over libcurl, with the
 * registry's Bearer-token challenge answered anonymously.
 *
 * One easy handle serves every request of an sbd_registry, so connections to
 * the registry and its token server are reused.  Nothing here is global: the
 * program calls curl_global_init() once before creating a registry (cli/main.c
 * does) and curl_global_cleanup() after freeing the last one.
 *
 * The registry's Authorization header is a custom header (CURLOPT_HTTPHEADER).
 * libcurl (>= 7.58, and since 7.83 also on a change of port or scheme) does not
 * send a custom Authorization header to a host other than the one of the first
 * URL while following redirects, unless CURLOPT_UNRESTRICTED_AUTH is set; we
 * never set it, so a blob redirect to a CDN or object store carries no token.
 * tests/integration/t_registry.sh checks this against a real redirect. */
#include "registry_internal.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <curl/curl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "manifest.h"
#include "util.h"

#define MANIFEST_MAX (4 * 1024 * 1024)
/* A request is given up after this many tries that brought no new bytes... */
#define REGISTRY_TRIES 5
/* ...or this many in all (a blob cut again and again, a little further each time). */
#define REGISTRY_TRIES_MAX 20
#define RETRY_FIRST_MS 500L
/* The longest pause between tries, whatever Retry-After asks: CI jobs have deadlines. */
#define RETRY_MAX_MS 30000L
#define CONNECT_TIMEOUT_S 30L
#define LOW_SPEED_TIME_S 60L
#define MAX_REDIRECTS 10L

time_t monotonic_now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec;
}

/* --- hosts: insecure, loopback, plain-HTTP fallback ------------------------- */

/* Length of the host part of "host", "host:port" or "[v6]:port". */
static size_t domain_host_len(const char *domain)
{
  if (domain[0] == '[') {
    const char *end = strchr(domain, ']');
    return end ? (size_t)(end - domain) + 1 : strlen(domain);
  }
  return strcspn(domain, ":");
}

static bool host_is_loopback(const char *host, size_t len)
{
  if (len == 9 && strncasecmp(host, "localhost", 9) == 0)
    return true;
  if (len == 5 && strncmp(host, "[::1]", 5) == 0)
    return true;
  char buf[INET_ADDRSTRLEN];
  struct in_addr a;
  if (len >= sizeof(buf))
    return false;
  memcpy(buf, host, len);
  buf[len] = '\0';
  return inet_pton(AF_INET, buf, &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

/* An entry without a port matches the host on any port; with a port, exactly. */
static bool insecure_entry_matches(const char *entry, const char *domain)
{
  size_t elen = domain_host_len(entry);
  if (entry[elen] != '\0')
    return strcasecmp(entry, domain) == 0;
  return domain_host_len(domain) == elen && strncasecmp(entry, domain, elen) == 0;
}

static struct registry_host *registry_host_get(struct sbd_registry *r, const char *name);

/* Appends every .crt file in dir (sorted, so the order is the same each run). */
static void ca_append_dir(struct sbd_buf *out, const char *dir)
{
  struct dirent **names = NULL;
  int n = scandir(dir, &names, NULL, alphasort);
  for (int i = 0; i < n; i++) {
    size_t len = strlen(names[i]->d_name);
    if (len > 4 && strcmp(names[i]->d_name + len - 4, ".crt") == 0) {
      cleanup_free char *path = xasprintf("%s/%s", dir, names[i]->d_name);
      cleanup_free char *pem = NULL;
      size_t pem_len = 0;
      if (sbd_read_file(path, 1 << 20, &pem, &pem_len) == 0) {
        sbd_buf_append(out, pem, pem_len);
        sbd_buf_append(out, "\n", 1);
      }
    }
    free(names[i]);
  }
  free(names);
}

/* The CAs to trust for host, loaded once: empty when nothing adds to the
 * system's; else the system bundle followed by --ca-file and the host's
 * certs.d certificates (libcurl takes one bundle, and a private CA must not
 * cost the public ones). */
const struct sbd_buf *registry_host_ca(struct sbd_registry *r, const char *host)
{
  struct registry_host *h = registry_host_get(r, host);
  if (h->ca_loaded)
    return &h->ca;
  h->ca_loaded = true;
  struct sbd_buf extra = {0};
  if (r->ca_file.len > 0) {
    sbd_buf_append(&extra, r->ca_file.data, r->ca_file.len);
    sbd_buf_append(&extra, "\n", 1);
  }
  const char *defaults[] = {"/etc/containers/certs.d", "/etc/docker/certs.d"};
  for (size_t i = 0; i < (r->cert_dir ? 1 : 2); i++) {
    cleanup_free char *dir = xasprintf("%s/%s", r->cert_dir ? r->cert_dir : defaults[i], host);
    ca_append_dir(&extra, dir);
  }
  if (extra.len == 0)
    return &h->ca;
  char *system = NULL;
  curl_easy_getinfo(r->curl, CURLINFO_CAINFO, &system);
  cleanup_free char *pem = NULL;
  size_t pem_len = 0;
  if (system && sbd_read_file(system, 16 << 20, &pem, &pem_len) == 0) {
    sbd_buf_append(&h->ca, pem, pem_len);
    sbd_buf_append(&h->ca, "\n", 1);
  }
  sbd_buf_append(&h->ca, extra.data, extra.len);
  sbd_buf_free(&extra);
  return &h->ca;
}

/* "Insecure" hosts get HTTPS without verification, then plain HTTP: those
 * named with --insecure-registry, and loopback ones unless a CA is
 * configured for them (then they are verified, as a test of the CA wants). */
bool registry_domain_is_insecure(struct sbd_registry *r, const char *domain)
{
  for (size_t i = 0; i < r->n_insecure; i++)
    if (insecure_entry_matches(r->insecure[i], domain))
      return true;
  if (host_is_loopback(domain, domain_host_len(domain)))
    return registry_host_ca(r, domain)->len == 0;
  return false;
}

static struct registry_host *registry_host_get(struct sbd_registry *r, const char *name)
{
  for (struct registry_host *h = r->hosts; h; h = h->next)
    if (strcasecmp(h->name, name) == 0)
      return h;
  struct registry_host *h = xcalloc(1, sizeof(*h));
  h->name = xstrdup(name);
  h->next = r->hosts;
  r->hosts = h;
  return h;
}

/* --- life cycle -------------------------------------------------------------- */

static int registry_load_ca_file(struct sbd_registry *r, const char *path, sbd_error_t *err)
{
  cleanup_free char *pem = NULL;
  size_t len = 0;
  if (sbd_read_file(path, 16 << 20, &pem, &len) < 0)
    return sbd_error_set(err, SBD_EXIT_USAGE, errno, "cannot read --ca-file %s", path);
  if (memmem(pem, len, "-----BEGIN CERTIFICATE-----", 27) == NULL)
    return sbd_error_set(err, SBD_EXIT_USAGE, 0,
                         "--ca-file %s holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                         path);
  sbd_buf_append(&r->ca_file, pem, len);
  return 0;
}

/* "https://mirror.gcr.io/", "http://10.0.0.5:5000", "mirror:5000" -> host[:port];
 * a plain-HTTP mirror is also spoken to as an insecure registry. */
static void registry_add_mirror(struct sbd_registry *r, const char *spec)
{
  bool plain = strncasecmp(spec, "http://", 7) == 0;
  const char *host = plain ? spec + 7 : strncasecmp(spec, "https://", 8) == 0 ? spec + 8 : spec;
  char *h = xstrndup(host, strcspn(host, "/"));
  r->mirrors = xrealloc(r->mirrors, (r->n_mirrors + 1) * sizeof(*r->mirrors));
  r->mirrors[r->n_mirrors++] = h;
  if (plain) {
    r->insecure = xrealloc(r->insecure, (r->n_insecure + 1) * sizeof(*r->insecure));
    r->insecure[r->n_insecure++] = xstrdup(h);
  }
}

int sbd_registry_new(const struct sbd_registry_options *opts, struct sbd_registry **out,
                     sbd_error_t *err)
{
  CURL *curl = curl_easy_init();
  if (curl == NULL)
    return sbd_error_set(err, SBD_EXIT_FAILURE, 0, "cannot initialise libcurl");
  struct sbd_registry *r = xcalloc(1, sizeof(*r));
  r->curl = curl;
  const char *ua = opts ? opts->user_agent : NULL;
  r->user_agent = xstrdup(ua ? ua : "sbdisk/" SBD_VERSION);
  if (opts && opts->n_insecure > 0) {
    r->insecure = xcalloc(opts->n_insecure, sizeof(*r->insecure));
    for (size_t i = 0; i < opts->n_insecure; i++)
      r->insecure[i] = xstrdup(opts->insecure[i]);
    r->n_insecure = opts->n_insecure;
  }
  if (opts) {
    r->cancelled = opts->cancelled;
    r->cancel_opaque = opts->cancel_opaque;
    r->auth = opts->auth;
    r->cert_dir = opts->cert_dir ? xstrdup(opts->cert_dir) : NULL;
  }
  if (opts && opts->ca_file && registry_load_ca_file(r, opts->ca_file, err) < 0) {
    sbd_registry_free(r);
    return -1;
  }
  for (size_t i = 0; opts && i < opts->n_mirrors; i++)
    registry_add_mirror(r, opts->mirrors[i]);
  *out = r;
  return 0;
}

void sbd_registry_free(struct sbd_registry *r)
{
  if (r == NULL)
    return;
  curl_easy_cleanup(r->curl);
  for (size_t i = 0; i < r->n_insecure; i++)
    free(r->insecure[i]);
  free(r->insecure);
  while (r->hosts) {
    struct registry_host *h = r->hosts;
    r->hosts = h->next;
    free(h->name);
    sbd_buf_free(&h->ca);
    free(h);
  }
  while (r->tokens) {
    struct registry_token *t = r->tokens;
    r->tokens = t->next;
    free(t->host);
    free(t->scope);
    free(t->value);
    free(t);
  }
  free(r->user_agent);
  sbd_buf_free(&r->ca_file);
  free(r->cert_dir);
  for (size_t i = 0; i < r->n_mirrors; i++)
    free(r->mirrors[i]);
  free(r->mirrors);
  free(r);
}

void sbd_fetched_manifest_free(struct sbd_fetched_manifest *m)
{
  free(m->body);
  free(m->media_type);
  m->body = NULL;
  m->media_type = NULL;
}

/* --- one HTTP transfer ------------------------------------------------------- */

void response_reset(struct registry_response *res)
{
  res->status = 0;
  free(res->content_type);
  free(res->challenge);
  res->content_type = res->challenge = NULL;
  sbd_buf_free(&res->body);
  res->too_large = false;
  res->retry_after = -1;
  res->range_start = -1;
  res->body_started = false;
  res->skip = 0;
  res->range_bad = false;
}

/* Retry-After: delay-seconds or an HTTP-date (RFC 9110 10.2.3); -1 if neither. */
static long retry_after_parse(const char *v)
{
  char *end;
  long s = strtol(v, &end, 10);
  if (end != v && *end == '\0')
    return s < 0 ? 0 : s;
  time_t when = curl_getdate(v, NULL);
  if (when < 0)
    return -1;
  time_t now = time(NULL);
  return when > now ? (long)(when - now) : 0;
}

/* Content-Range: bytes START-END/TOTAL -> START, or -1. */
static int64_t content_range_start(const char *v)
{
  if (strncasecmp(v, "bytes ", 6) != 0 || !isdigit((unsigned char)v[6]))
    return -1;
  return (int64_t)strtoll(v + 6, NULL, 10);
}


/* "Name: value\r\n" -> value without surrounding blanks, if the name matches. */
static char *header_value(const char *line, size_t len, const char *name)
{
  size_t n = strlen(name);
  if (len <= n || strncasecmp(line, name, n) != 0 || line[n] != ':')
    return NULL;
  const char *v = line + n + 1, *end = line + len;
  while (v < end && (*v == ' ' || *v == '\t'))
    v++;
  while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
    end--;
  return xstrndup(v, (size_t)(end - v));
}

static size_t on_header(char *line, size_t size, size_t nitems, void *opaque)
{
  struct registry_response *res = opaque;
  size_t len = size * nitems;
  char *v;
  if (len > 5 && strncmp(line, "HTTP/", 5) == 0) {
    /* A new response (after a redirect, 100-continue or proxy CONNECT). */
    response_reset(res);
    const char *sp = memchr(line, ' ', len);
    res->status = sp ? strtol(sp + 1, NULL, 10) : 0;
  } else if ((v = header_value(line, len, "Content-Type")) != NULL) {
    free(res->content_type);
    res->content_type = v;
  } else if ((v = header_value(line, len, "Retry-After")) != NULL) {
    res->retry_after = retry_after_parse(v);
    free(v);
  } else if ((v = header_value(line, len, "Content-Range")) != NULL) {
    res->range_start = content_range_start(v);
    free(v);
  } else if ((v = header_value(line, len, "WWW-Authenticate")) != NULL) {
    if (res->challenge == NULL || strncasecmp(v, "Bearer", 6) == 0) {
      free(res->challenge);
      res->challenge = v;
    } else {
      free(v);
    }
  }
  return len;
}

static size_t on_body(char *data, size_t size, size_t nitems, void *opaque)
{
  struct registry_response *res = opaque;
  size_t len = size * nitems;
  bool success = res->status >= 200 && res->status < 300;
  if (success && res->sink) {
    if (!res->body_started) {
      /* A try after an interrupted one: a 206 continues where its range
       * starts, a 200 from the beginning; either way, bytes already
       * delivered are passed over (they are the same bytes: the digest,
       * checked over the whole blob, would tell otherwise). */
      res->body_started = true;
      uint64_t from = res->status == 206 && res->range_start >= 0 ? (uint64_t)res->range_start : 0;
      if (from > res->delivered) {
        res->range_bad = true;
        return 0;
      }
      res->skip = res->delivered - from;
    }
    size_t pass = res->skip < len ? (size_t)res->skip : len;
    res->skip -= pass;
    if (len > pass) {
      if (res->sink(res->opaque, data + pass, len - pass, res->sink_err) < 0) {
        res->sink_failed = true;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
      }
      res->delivered += len - pass;
    }
    return len;
  }
  if (!success) {
    /* Only the start of an error body is worth keeping for the message. */
    if (res->body.len < ERROR_BODY_MAX)
      sbd_buf_append(&res->body, data, len < ERROR_BODY_MAX ? len : ERROR_BODY_MAX);
    return len;
  }
  if (res->body.len + len > res->max_body) {
    res->too_large = true;
    return 0;
  }
  sbd_buf_append(&res->body, data, len);
  return len;
}

static int on_progress(void *opaque, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
  (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
  struct sbd_registry *r = opaque;
  return r->cancelled(r->cancel_opaque) ? 1 : 0; /* 1: CURLE_ABORTED_BY_CALLBACK */
}

void registry_setopt_common(struct sbd_registry *r, const char *name, bool verify_tls)
{
  CURL *c = r->curl;
  curl_easy_reset(c);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_USERAGENT, r->user_agent);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, MAX_REDIRECTS);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_S);
  /* A stalled transfer (< 1 byte/s for a minute) is aborted, not waited on. */
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, LOW_SPEED_TIME_S);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, verify_tls ? 1L : 0L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, verify_tls ? 2L : 0L);
  const struct sbd_buf *ca = registry_host_ca(r, name);
  if (verify_tls && ca->len > 0) {
    struct curl_blob blob = {.data = ca->data, .len = ca->len, .flags = CURL_BLOB_NOCOPY};
    curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &blob);
  }
  /* Blobs arrive in reads of up to 512 KiB rather than libcurl's 16 KiB:
   * each read is a write to the cache file, a hash update and a wake-up of
   * the layer's reader. */
  curl_easy_setopt(c, CURLOPT_BUFFERSIZE, 512L * 1024);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, r->errbuf);
  if (r->cancelled) {
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, r);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  }
  r->errbuf[0] = '\0';
}

/* Where a GET goes and where its response lands. */
void registry_setopt_target(struct sbd_registry *r, const char *url,
                                   struct registry_response *res)
{
  curl_easy_setopt(r->curl, CURLOPT_URL, url);
  curl_easy_setopt(r->curl, CURLOPT_HTTPGET, 1L);
  curl_easy_setopt(r->curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(r->curl, CURLOPT_HEADERDATA, res);
  curl_easy_setopt(r->curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(r->curl, CURLOPT_WRITEDATA, res);
}

/* GETs url into res.  The Authorization, when given, goes in a custom header
 * that libcurl keeps from other hosts on redirects (see the top of the file). */
static CURLcode registry_perform(struct sbd_registry *r, const char *name, const char *url,
                                 const char *accept,
                                 const char *authorization, bool verify_tls,
                                 struct registry_response *res)
{
  registry_setopt_common(r, name, verify_tls);
  struct curl_slist *headers = NULL;
  if (accept) {
    cleanup_free char *h = xasprintf("Accept: %s", accept);
    headers = curl_slist_append(headers, h);
  }
  if (authorization) {
    cleanup_free char *h = xasprintf("Authorization: %s", authorization);
    headers = curl_slist_append(headers, h);
  }
  curl_easy_setopt(r->curl, CURLOPT_HTTPHEADER, headers);
  registry_setopt_target(r, url, res);
  char range[32];
  if (res->sink && res->delivered > 0) {
    /* the rest of a blob a dropped connection interrupted */
    snprintf(range, sizeof(range), "%llu-", (unsigned long long)res->delivered);
    curl_easy_setopt(r->curl, CURLOPT_RANGE, range);
  }
  CURLcode rc = curl_easy_perform(r->curl);
  curl_easy_setopt(r->curl, CURLOPT_HTTPHEADER, NULL);
  curl_slist_free_all(headers);
  return rc;
}

/* --- error messages ------------------------------------------------------------ */

static bool curl_is_tls_failure(CURLcode rc)
{
  switch (rc) {
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_SSL_CIPHER:
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_ISSUER_ERROR:
  case CURLE_SSL_CACERT_BADFILE:
  case CURLE_SSL_CRL_BADFILE:
  case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
  case CURLE_SSL_INVALIDCERTSTATUS:
    return true;
  default:
    return false;
  }
}

/* Failures before any HTTP exchange: the registry could not be reached. */
static bool curl_is_connect_failure(struct sbd_registry *r, CURLcode rc)
{
  if (rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_COULDNT_RESOLVE_PROXY ||
      rc == CURLE_COULDNT_CONNECT || curl_is_tls_failure(rc))
    return true;
  curl_off_t connect_time = 0;
  curl_easy_getinfo(r->curl, CURLINFO_CONNECT_TIME_T, &connect_time);
  return rc == CURLE_OPERATION_TIMEDOUT && connect_time == 0;
}

/* Why a transfer failed, in a few words. */
char *curl_reason(struct sbd_registry *r, CURLcode rc)
{
  if (rc == CURLE_COULDNT_RESOLVE_HOST)
    return xstrdup("Could not resolve host");
  long os_errno = 0;
  curl_easy_getinfo(r->curl, CURLINFO_OS_ERRNO, &os_errno);
  if (rc == CURLE_COULDNT_CONNECT && os_errno != 0)
    return xstrdup(strerror((int)os_errno));
  return xstrdup(r->errbuf[0] ? r->errbuf : curl_easy_strerror(rc));
}

/* The host part of an URL libcurl was last at, when a redirect took it away
 * from the registry; NULL otherwise. */
static char *curl_redirected_host(struct sbd_registry *r)
{
  long redirects = 0;
  char *url = NULL, *host = NULL;
  curl_easy_getinfo(r->curl, CURLINFO_REDIRECT_COUNT, &redirects);
  curl_easy_getinfo(r->curl, CURLINFO_EFFECTIVE_URL, &url);
  if (redirects == 0 || url == NULL)
    return NULL;
  CURLU *u = curl_url();
  if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
    char *copy = xstrdup(host);
    curl_free(host);
    host = copy;
  } else {
    host = NULL;
  }
  curl_url_cleanup(u);
  return host;
}

static int registry_error_transport(struct sbd_registry *r, const struct registry_request *q,
                                    CURLcode rc, struct registry_response *res, sbd_error_t *err)
{
  if (rc == CURLE_ABORTED_BY_CALLBACK)
    return sbd_error_set(err, SBD_EXIT_INTERRUPTED, 0, "registry %s: %s: cancelled", q->ref->domain,
                         q->what);
  if (res->sink_failed)
    return sbd_error_set(err, SBD_EXIT_FAILURE, 0, "registry %s: repository %s: %s: the download was aborted",
                         q->ref->domain, q->ref->path, q->what);
  if (res->too_large)
    return sbd_error_set(err, SBD_EXIT_IMAGE, 0,
                         "registry %s: repository %s: %s is larger than the %d MiB a manifest may be",
                         q->ref->domain, q->ref->path, q->what, MANIFEST_MAX >> 20);
  cleanup_free char *reason = curl_reason(r, rc);
  cleanup_free char *elsewhere = curl_redirected_host(r);
  if (curl_is_connect_failure(r, rc) && elsewhere)
    return sbd_error_set(err, SBD_EXIT_REGISTRY, 0,
                         "cannot connect to %s, where registry %s redirected %s: %s", elsewhere,
                         q->ref->domain, q->what, reason);
  if (curl_is_connect_failure(r, rc)) {
    const char *hint = curl_is_tls_failure(rc) && !registry_domain_is_insecure(r, q->name)
                           ? " (for a private registry with a self-signed certificate, pass "
                             "--insecure-registry)"
                           : "";
    return sbd_error_set(err, SBD_EXIT_REGISTRY, 0, "cannot connect to registry %s: %s%s",
                         q->ref->domain, reason, hint);
  }
  return sbd_error_set(err, SBD_EXIT_REGISTRY, 0, "registry %s: repository %s: %s: %s",
                       q->ref->domain, q->ref->path, q->what, reason);
}

/* The first error of a distribution error body: {"errors":[{"code","message"}]}. */
static void error_body_first(const struct sbd_buf *body, char **code, char **message)
{
  *code = *message = NULL;
  if (body->len == 0)
    return;
  json_t *root = json_loadb(body->data, body->len, 0, NULL);
  json_t *first = json_array_get(json_object_get(root, "errors"), 0);
  const char *c = json_string_value(json_object_get(first, "code"));
  const char *m = json_string_value(json_object_get(first, "message"));
  *code = c ? xstrdup(c) : NULL;
  *message = m ? xstrdup(m) : NULL;
  json_decref(root);
}

static int registry_error_status(const struct registry_request *q,
                                 const struct registry_response *res, sbd_error_t *err)
{
  const char *d = q->ref->domain, *p = q->ref->path;
  cleanup_free char *code = NULL;
  cleanup_free char *message = NULL;
  error_body_first(&res->body, &code, &message);
  if (res->status == 401 || res->status == 403)
    return sbd_error_set(err, SBD_EXIT_REGISTRY, 0,
                         "registry %s: repository %s: access denied (HTTP %ld): the repository "
                         "does not exist or needs credentials",
                         d, p, res->status);
  if (res->status == 404) {
    if (code && strcmp(code, "NAME_UNKNOWN") == 0)
      sbd_error_set(err, SBD_EXIT_REGISTRY, 0, "registry %s: repository %s not found (HTTP 404)", d, p);
    else
      sbd_error_set(err, SBD_EXIT_REGISTRY, 0, "registry %s: repository %s: %s not found (HTTP 404)",
                    d, p, q->what);
    /* Not in the message (it says HTTP 404), but there for callers to whom
     * "not there" means something else than a registry failure. */
    if (err && *err)
      (*err)->errnum = ENOENT;
    return -1;
  }
  if (message)
    return sbd_error_set(err, SBD_EXIT_REGISTRY, 0,
                         "registry %s: repository %s: %s: HTTP %ld (%s%s%s)", d, p, q->what,
                         res->status, code ? code : "", code ? ": " : "", message);
  return sbd_error_set(err, SBD_EXIT_REGISTRY, 0, "registry %s: repository %s: %s: HTTP %ld", d,
                       p, q->what, res->status);
}

/* --- requests ------------------------------------------------------------------- */

/* Whether a transport failure may go away if the request is sent again: a
 * connection dropped or stalled mid-transfer.  Not a host that cannot be
 * found or reached at all, nor a TLS failure: those fail at once, clearly. */
static bool transport_is_retryable(struct sbd_registry *r, CURLcode rc,
                                   const struct registry_response *res)
{
  if (res->sink_failed || res->too_large || res->range_bad)
    return false;
  switch (rc) {
  case CURLE_PARTIAL_FILE:
  case CURLE_RECV_ERROR:
  case CURLE_SEND_ERROR:
  case CURLE_GOT_NOTHING:
  case CURLE_HTTP2:
  case CURLE_HTTP2_STREAM:
    return true;
  case CURLE_OPERATION_TIMEDOUT:
    return !curl_is_connect_failure(r, rc);
  default:
    return false;
  }
}

/* Answers the registry gives when it is overloaded or briefly broken. */
static bool status_is_retryable(long status)
{
  return status == 408 || status == 429 || status == 500 || status == 502 || status == 503 ||
         status == 504;
}

/* One GET to the registry: HTTPS, or for an insecure host HTTPS without
 * verification and, if the TLS handshake fails, plain HTTP from then on.
 * Returns 0 when a response arrived (any status); on a transport failure,
 * -1 with *retryable telling whether sending again may help. */
static int registry_send(struct sbd_registry *r, const struct registry_request *q,
                         const char *authorization, struct registry_response *res, bool *retryable,
                         sbd_error_t *err)
{
  struct registry_host *h = registry_host_get(r, q->host);
  bool insecure = registry_domain_is_insecure(r, q->name);
  *retryable = false;
  for (;;) {
    cleanup_free char *url =
        xasprintf("%s://%s%s", h->plain_http ? "http" : "https", q->host, q->path);
    CURLcode rc = registry_perform(r, q->name, url, q->accept, authorization, !insecure, res);
    if (rc == CURLE_OK)
      return 0;
    if (insecure && !h->plain_http && curl_is_tls_failure(rc)) {
      h->plain_http = true;
      response_reset(res);
      continue;
    }
    *retryable = transport_is_retryable(r, rc, res);
    return registry_error_transport(r, q, rc, res, err);
  }
}

/* Sleeps ms milliseconds in short naps, waking early when the caller cancels. */
static bool registry_wait(struct sbd_registry *r, long ms)
{
  while (ms > 0) {
    if (r->cancelled && r->cancelled(r->cancel_opaque))
      return false;
    long nap = ms < 100 ? ms : 100;
    struct timespec ts = {.tv_sec = 0, .tv_nsec = nap * 1000000L};
    nanosleep(&ts, NULL);
    ms -= nap;
  }
  return !(r->cancelled && r->cancelled(r->cancel_opaque));
}

/* Says how many tries a final failure took, after the reason. */
static void error_note_tries(sbd_error_t *err, int tries)
{
  if (err == NULL || *err == NULL || tries < 2)
    return;
  int code = sbd_error_exit_code(*err);
  cleanup_free char *msg = xstrdup((*err)->msg);
  sbd_error_free(err);
  sbd_error_set(err, code, 0, "%s (gave up after %d tries)", msg, tries);
}

/* Sends q with a cached token if there is one; on 401, answers the challenge
 * and sends it again.  A dropped connection or an answer like 503 or 429 is
 * retried after a pause (the server's Retry-After, else 0.5 s doubling),
 * up to REGISTRY_TRIES tries that make no progress; a blob download that
 * was cut resumes with a Range request.  The caller judges the final status. */
static int registry_request(struct sbd_registry *r, const struct registry_request *q,
                            struct registry_response *res, sbd_error_t *err)
{
  cleanup_free char *scope = xasprintf("repository:%s:pull", q->ref->path);
  int failures = 0;
  for (int tries = 1;; tries++) {
    uint64_t before = res->delivered;
    bool retryable = false;
    int ret = registry_send(r, q, auth_token_lookup(r, q->host, scope), res, &retryable, err);
    if (ret == 0 && res->status == 401) {
      cleanup_free char *authorization = NULL;
      cleanup_free char *source = NULL;
      if (auth_answer_challenge(r, q, res->challenge, scope, &authorization, &source, err) < 0)
        return -1;
      response_reset(res);
      ret = registry_send(r, q, authorization, res, &retryable, err);
      if (ret == 0 && (res->status == 401 || res->status == 403) && source)
        return sbd_error_set(err, SBD_EXIT_REGISTRY, 0,
                             "registry %s: repository %s: access denied (HTTP %ld) with the "
                             "credentials from %s",
                             q->ref->domain, q->ref->path, res->status, source);
    }
    if (ret == 0 && !status_is_retryable(res->status))
      return 0;
    if (ret < 0 && !retryable) {
      error_note_tries(err, tries);
      return -1;
    }
    if (res->delivered == before)
      failures++;
    if (failures >= REGISTRY_TRIES || tries >= REGISTRY_TRIES_MAX) {
      if (ret == 0) {
        ret = registry_error_status(q, res, err);
        response_reset(res);
      }
      error_note_tries(err, tries);
      return -1;
    }
    /* a try that brought new bytes is followed at once (the next resumes it) */
    long ms = res->retry_after >= 0 ? (res->retry_after > RETRY_MAX_MS / 1000
                                            ? RETRY_MAX_MS
                                            : res->retry_after * 1000)
              : failures == 0       ? 0
                                    : RETRY_FIRST_MS << (failures - 1);
    if (ms > RETRY_MAX_MS)
      ms = RETRY_MAX_MS;
    if (ret < 0)
      sbd_error_free(err);
    response_reset(res);
    if (!registry_wait(r, ms))
      return sbd_error_set(err, SBD_EXIT_INTERRUPTED, 0, "registry %s: %s: cancelled",
                           q->ref->domain, q->what);
  }
}

/* docker.io through its mirrors first: the first that answers 2xx wins;
 * any other outcome (unreachable, 404, refused...) moves on, and docker.io
 * itself is asked last.  A blob a mirror delivered in part is completed
 * from the next with a Range request: the bytes are the same blob's. */
static int registry_request_mirrored(struct sbd_registry *r, const struct registry_request *q,
                                     struct registry_response *res, sbd_error_t *err)
{
  if (strcmp(q->ref->domain, "docker.io") == 0) {
    for (size_t i = 0; i < r->n_mirrors; i++) {
      struct registry_request mq = *q;
      mq.host = mq.name = r->mirrors[i];
      sbd_error_t merr = NULL;
      int ret = registry_request(r, &mq, res, &merr);
      if (ret == 0 && res->status >= 200 && res->status < 300)
        return 0;
      sbd_error_free(&merr);
      if (res->sink_failed) /* our side gave up, not the mirror */
        return registry_error_transport(r, q, CURLE_WRITE_ERROR, res, err);
      response_reset(res);
    }
  }
  return registry_request(r, q, res, err);
}

static bool reference_is_valid(const char *reference)
{
  if (strchr(reference, ':'))
    return sbd_digest_valid(reference);
  size_t n = strlen(reference);
  if (n == 0 || n > 128)
    return false;
  for (const char *c = reference; *c; c++)
    if (!isalnum((unsigned char)*c) && *c != '_' && *c != '.' && *c != '-')
      return false;
  return true;
}

static char *media_type_from(const char *content_type)
{
  if (content_type == NULL)
    return xstrdup(""); /* left to the caller to judge from the body */
  size_t n = strcspn(content_type, ";");
  while (n > 0 && (content_type[n - 1] == ' ' || content_type[n - 1] == '\t'))
    n--;
  return xstrndup(content_type, n);
}

static int manifest_check_digest(const struct sbd_ref *ref, const char *reference,
                                 const char *actual, sbd_error_t *err)
{
  if (strchr(reference, ':') == NULL || strcmp(reference, actual) == 0)
    return 0;
  return sbd_error_set(err, SBD_EXIT_IMAGE, 0,
                       "registry %s: repository %s: manifest %s does not match its digest: the "
                       "registry sent content that hashes to %s",
                       ref->domain, ref->path, reference, actual);
}

int sbd_registry_get_manifest(struct sbd_registry *r, const struct sbd_ref *ref,
                              const char *reference, struct sbd_fetched_manifest *out,
                              sbd_error_t *err)
{
  memset(out, 0, sizeof(*out));
  if (!reference_is_valid(reference))
    return sbd_error_set(err, SBD_EXIT_IMAGE, 0,
                         "registry %s: repository %s: \"%s\" is neither a tag nor a sha256 digest",
                         ref->domain, ref->path, reference);
  cleanup_free char *what = xasprintf("manifest \"%s\"", reference);
  struct registry_request q = {.ref = ref,
                               .host = sbd_ref_registry_host(ref),
                               .name = ref->domain,
                               .path = xasprintf("/v2/%s/manifests/%s", ref->path, reference),
                               .what = what,
                               .accept = SBD_MANIFEST_ACCEPT};
  struct registry_response res = {.max_body = MANIFEST_MAX};
  int ret = registry_request_mirrored(r, &q, &res, err);
  if (ret == 0 && (res.status < 200 || res.status >= 300))
    ret = registry_error_status(&q, &res, err);
  if (ret == 0) {
    sbd_digest_buffer(sbd_buf_cstr(&res.body), res.body.len, out->digest);
    ret = manifest_check_digest(ref, reference, out->digest, err);
  }
  if (ret == 0) {
    out->media_type = media_type_from(res.content_type);
    out->len = res.body.len;
    out->body = steal_pointer(&res.body.data);
  }
  free(q.path);
  response_reset(&res); /* frees what it holds */
  return ret;
}

int sbd_registry_get_blob(struct sbd_registry *r, const struct sbd_ref *ref, const char *digest,
                          sbd_blob_sink sink, void *opaque, sbd_error_t *err)
{
  if (!sbd_digest_valid(digest))
    return sbd_error_set(err, SBD_EXIT_IMAGE, 0,
                         "registry %s: repository %s: \"%s\" is not a sha256 digest", ref->domain,
                         ref->path, digest);
  cleanup_free char *what = xasprintf("blob %s", digest);
  struct registry_request q = {.ref = ref,
                               .host = sbd_ref_registry_host(ref),
                               .name = ref->domain,
                               .path = xasprintf("/v2/%s/blobs/%s", ref->path, digest),
                               .what = what};
  struct registry_response res = {.sink = sink, .opaque = opaque, .sink_err = err};
  int ret = registry_request_mirrored(r, &q, &res, err);
  if (ret == 0 && (res.status < 200 || res.status >= 300))
    ret = registry_error_status(&q, &res, err);
  free(q.path);
  response_reset(&res); /* frees what it holds */
  return ret;
}

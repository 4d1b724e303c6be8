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
#include "registry.h"

#include <arpa/inet.h>
#include <ctype.h>
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
#define TOKEN_RESPONSE_MAX (1024 * 1024)
#define ERROR_BODY_MAX (64 * 1024)
#define CONNECT_TIMEOUT_S 30L
#define LOW_SPEED_TIME_S 60L
#define MAX_REDIRECTS 10L
/* The distribution token spec: assume 60 s when expires_in is absent or less. */
#define TOKEN_MIN_TTL_S 60
/* Refresh a little early so a token does not expire between check and use. */
#define TOKEN_EXPIRY_MARGIN_S 10

/* Per-host memory: an insecure host whose TLS handshake failed once is spoken
 * to over plain HTTP from then on. */
struct registry_host {
  char *name;
  bool plain_http;
  struct registry_host *next;
};

struct registry_token {
  char *host;
  char *scope;
  char *value;
  time_t expires; /* CLOCK_MONOTONIC seconds */
  struct registry_token *next;
};

struct sbd_registry {
  CURL *curl;
  char *user_agent;
  char **insecure;
  size_t n_insecure;
  struct registry_host *hosts;
  struct registry_token *tokens;
  char errbuf[CURL_ERROR_SIZE];
};

/* What one request is about, for the URL and for error messages. */
struct registry_request {
  const struct sbd_ref *ref;
  const char *host;   /* where to connect: sbd_ref_registry_host() */
  char *path;         /* "/v2/<repository>/manifests/<reference>" */
  const char *what;   /* "manifest \"v2\"", "blob sha256:…" */
  const char *accept; /* NULL: libcurl's default */
};

/* The last response of a transfer: the final one after redirects. */
struct registry_response {
  long status;
  char *content_type;
  char *challenge; /* WWW-Authenticate; the Bearer one when there are several */
  struct sbd_buf body; /* the 2xx body when buffered; the error body otherwise */
  size_t max_body;
  bool too_large;
  sbd_blob_sink sink; /* when set, 2xx bytes stream here instead of into body */
  void *opaque;
  sbd_error_t *sink_err;
  bool sink_failed;
};

static time_t monotonic_now(void)
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

/* "Insecure" hosts get HTTPS without verification, then plain HTTP. */
static bool registry_domain_is_insecure(const struct sbd_registry *r, const char *domain)
{
  if (host_is_loopback(domain, domain_host_len(domain)))
    return true;
  for (size_t i = 0; i < r->n_insecure; i++)
    if (insecure_entry_matches(r->insecure[i], domain))
      return true;
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
  free(r);
}

void sbd_fetched_manifest_free(struct sbd_fetched_manifest *m)
{
  free(m->body);
  free(m->media_type);
  m->body = NULL;
  m->media_type = NULL;
}

/* --- WWW-Authenticate (RFC 7235 auth-params) ----------------------------------- */

static bool is_tchar(char c)
{
  return isalnum((unsigned char)c) || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static const char *skip_ws(const char *p)
{
  while (*p == ' ' || *p == '\t')
    p++;
  return p;
}

static size_t token_len(const char *p)
{
  size_t n = 0;
  while (is_tchar(p[n]))
    n++;
  return n;
}

/* A quoted-string starting at *p (on the opening quote); NULL if unterminated. */
static char *parse_quoted(const char **p)
{
  struct sbd_buf b = {0};
  const char *s = *p + 1;
  for (; *s && *s != '"'; s++) {
    if (*s == '\\' && s[1] != '\0')
      s++;
    sbd_buf_append(&b, s, 1);
  }
  if (*s != '"') {
    sbd_buf_free(&b);
    return NULL;
  }
  *p = s + 1;
  return sbd_buf_cstr(&b);
}

/* Unquoted values are taken up to a comma or blank, more leniently than the
 * token grammar: some servers send realm=https://host/token unquoted. */
static char *parse_bare(const char **p)
{
  size_t n = strcspn(*p, ", \t");
  if (n == 0)
    return NULL;
  char *v = xstrndup(*p, n);
  *p += n;
  return v;
}

static void challenge_store(struct sbd_auth_challenge *c, const char *name, size_t n, char *value)
{
  char **slot = NULL;
  if (n == 5 && strncasecmp(name, "realm", 5) == 0)
    slot = &c->realm;
  else if (n == 7 && strncasecmp(name, "service", 7) == 0)
    slot = &c->service;
  else if (n == 5 && strncasecmp(name, "scope", 5) == 0)
    slot = &c->scope;
  if (slot && *slot == NULL)
    *slot = value; /* the first occurrence wins */
  else
    free(value);
}

static char *scheme_canonical(const char *p, size_t n)
{
  if (n == 6 && strncasecmp(p, "Bearer", 6) == 0)
    return xstrdup("Bearer");
  if (n == 5 && strncasecmp(p, "Basic", 5) == 0)
    return xstrdup("Basic");
  return xstrndup(p, n);
}

/* Parses the params after the scheme.  A bare token after a comma starts the
 * next challenge of a list: the first challenge ends there. */
static int challenge_parse_params(const char *p, struct sbd_auth_challenge *c)
{
  bool after_comma = false;
  for (;;) {
    p = skip_ws(p);
    if (*p == ',') {
      p++;
      after_comma = true;
      continue;
    }
    if (*p == '\0')
      return 0;
    const char *name = p;
    size_t n = token_len(p);
    if (n == 0)
      return -1;
    p = skip_ws(p + n);
    if (*p != '=')
      return after_comma ? 0 : -1;
    p = skip_ws(p + 1);
    char *value = *p == '"' ? parse_quoted(&p) : parse_bare(&p);
    if (value == NULL)
      return -1;
    challenge_store(c, name, n, value);
    p = skip_ws(p);
    if (*p != ',' && *p != '\0')
      return -1;
    after_comma = false;
  }
}

int sbd_auth_challenge_parse(const char *header, struct sbd_auth_challenge *out)
{
  memset(out, 0, sizeof(*out));
  if (header == NULL)
    return -1;
  const char *p = skip_ws(header);
  size_t n = token_len(p);
  if (n == 0 || (p[n] != '\0' && p[n] != ' ' && p[n] != '\t'))
    return -1;
  out->scheme = scheme_canonical(p, n);
  if (challenge_parse_params(p + n, out) < 0) {
    sbd_auth_challenge_free(out);
    return -1;
  }
  return 0;
}

void sbd_auth_challenge_free(struct sbd_auth_challenge *c)
{
  free(c->scheme);
  free(c->realm);
  free(c->service);
  free(c->scope);
  memset(c, 0, sizeof(*c));
}

/* --- one HTTP transfer ------------------------------------------------------- */

static void response_reset(struct registry_response *res)
{
  res->status = 0;
  free(res->content_type);
  free(res->challenge);
  res->content_type = res->challenge = NULL;
  sbd_buf_free(&res->body);
  res->too_large = false;
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
    if (res->sink(res->opaque, data, len, res->sink_err) < 0) {
      res->sink_failed = true;
      return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
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

static void registry_setopt_common(struct sbd_registry *r, bool verify_tls)
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
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, r->errbuf);
  r->errbuf[0] = '\0';
}

/* Where a GET goes and where its response lands. */
static void registry_setopt_target(struct sbd_registry *r, const char *url,
                                   struct registry_response *res)
{
  curl_easy_setopt(r->curl, CURLOPT_URL, url);
  curl_easy_setopt(r->curl, CURLOPT_HTTPGET, 1L);
  curl_easy_setopt(r->curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(r->curl, CURLOPT_HEADERDATA, res);
  curl_easy_setopt(r->curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(r->curl, CURLOPT_WRITEDATA, res);
}

/* GETs url into res.  The bearer token, when given, goes in a custom header
 * that libcurl keeps from other hosts on redirects (see the top of the file). */
static CURLcode registry_perform(struct sbd_registry *r, const char *url, const char *accept,
                                 const char *token, bool verify_tls, struct registry_response *res)
{
  registry_setopt_common(r, verify_tls);
  struct curl_slist *headers = NULL;
  if (accept) {
    cleanup_free char *h = xasprintf("Accept: %s", accept);
    headers = curl_slist_append(headers, h);
  }
  if (token) {
    cleanup_free char *h = xasprintf("Authorization: Bearer %s", token);
    headers = curl_slist_append(headers, h);
  }
  curl_easy_setopt(r->curl, CURLOPT_HTTPHEADER, headers);
  registry_setopt_target(r, url, res);
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
static char *curl_reason(struct sbd_registry *r, CURLcode rc)
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
    const char *hint = curl_is_tls_failure(rc) && !registry_domain_is_insecure(r, q->ref->domain)
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
  if (res->status == 404 && code && strcmp(code, "NAME_UNKNOWN") == 0)
    return sbd_error_set(err, SBD_EXIT_REGISTRY, 0,
                         "registry %s: repository %s not found (HTTP 404)", d, p);
  if (res->status == 404)
    return sbd_error_set(err, SBD_EXIT_REGISTRY, 0,
                         "registry %s: repository %s: %s not found (HTTP 404)", d, p, q->what);
  if (message)
    return sbd_error_set(err, SBD_EXIT_REGISTRY, 0,
                         "registry %s: repository %s: %s: HTTP %ld (%s%s%s)", d, p, q->what,
                         res->status, code ? code : "", code ? ": " : "", message);
  return sbd_error_set(err, SBD_EXIT_REGISTRY, 0, "registry %s: repository %s: %s: HTTP %ld", d,
                       p, q->what, res->status);
}

/* --- tokens -------------------------------------------------------------------- */

static const char *auth_token_lookup(struct sbd_registry *r, const char *host, const char *scope)
{
  time_t now = monotonic_now();
  for (struct registry_token *t = r->tokens; t; t = t->next)
    if (strcmp(t->host, host) == 0 && strcmp(t->scope, scope) == 0 && t->expires > now)
      return t->value;
  return NULL;
}

static void auth_token_store(struct sbd_registry *r, const char *host, const char *scope,
                             const char *value, long ttl)
{
  struct registry_token *t = NULL;
  for (t = r->tokens; t; t = t->next)
    if (strcmp(t->host, host) == 0 && strcmp(t->scope, scope) == 0)
      break;
  if (t == NULL) {
    t = xcalloc(1, sizeof(*t));
    t->host = xstrdup(host);
    t->scope = xstrdup(scope);
    t->next = r->tokens;
    r->tokens = t;
  }
  free(t->value);
  t->value = xstrdup(value);
  t->expires = monotonic_now() + ttl - TOKEN_EXPIRY_MARGIN_S;
}

/* Credentials for a registry host.  None yet: sbdisk pulls anonymously.  When
 * credentials arrive (docker's config.json, a --creds flag) they are found
 * here, and auth_fetch_token already sends them to the token server as Basic
 * authentication, which is how the distribution token protocol takes them. */
static bool auth_credentials_lookup(const struct sbd_registry *r, const char *domain,
                                    const char **user, const char **secret)
{
  (void)r;
  (void)domain;
  *user = *secret = NULL;
  return false;
}

/* realm?service=…&scope=…, the values URL-encoded. */
static char *auth_token_url(CURL *curl, const struct sbd_auth_challenge *c, const char *scope,
                            char **realm_host)
{
  CURLU *u = curl_url();
  char *url = NULL, *host = NULL, *port = NULL;
  if (curl_url_set(u, CURLUPART_URL, c->realm, 0) != CURLUE_OK) {
    curl_url_cleanup(u);
    return NULL;
  }
  const char *names[] = {"service", "scope"};
  const char *values[] = {c->service, scope};
  for (size_t i = 0; i < 2; i++) {
    if (values[i] == NULL)
      continue;
    char *esc = curl_easy_escape(curl, values[i], 0);
    cleanup_free char *param = xasprintf("%s=%s", names[i], esc);
    curl_free(esc);
    curl_url_set(u, CURLUPART_QUERY, param, CURLU_APPENDQUERY);
  }
  curl_url_get(u, CURLUPART_HOST, &host, 0);
  curl_url_get(u, CURLUPART_PORT, &port, 0);
  *realm_host = port ? xasprintf("%s:%s", host, port) : xstrdup(host ? host : "");
  char *copy = NULL;
  if (curl_url_get(u, CURLUPART_URL, &url, 0) == CURLUE_OK)
    copy = xstrdup(url);
  curl_free(url);
  curl_free(host);
  curl_free(port);
  curl_url_cleanup(u);
  return copy;
}

/* A token goes verbatim into a header line: refuse anything that could break it. */
static bool token_is_safe(const char *t)
{
  if (*t == '\0')
    return false;
  for (; *t; t++)
    if ((unsigned char)*t < 0x21 || (unsigned char)*t > 0x7e)
      return false;
  return true;
}

static int auth_parse_token_response(const struct registry_request *q, const char *realm,
                                     const struct sbd_buf *body, char **token, long *ttl,
                                     sbd_error_t *err)
{
  json_t *root = json_loadb(body->data ? body->data : "", body->len, 0, NULL);
  const char *t = json_string_value(json_object_get(root, "token"));
  if (t == NULL || *t == '\0')
    t = json_string_value(json_object_get(root, "access_token"));
  json_t *exp = json_object_get(root, "expires_in");
  *ttl = json_is_integer(exp) ? (long)json_integer_value(exp) : 0;
  if (*ttl < TOKEN_MIN_TTL_S)
    *ttl = TOKEN_MIN_TTL_S;
  *token = t && token_is_safe(t) ? xstrdup(t) : NULL;
  json_decref(root);
  if (*token == NULL)
    return sbd_error_set(err, SBD_EXIT_REGISTRY, 0,
                         "registry %s: repository %s: the token server %s answered without a "
                         "usable token",
                         q->ref->domain, q->ref->path, realm);
  return 0;
}

/* GETs a token from the challenge's realm for scope. */
static int auth_fetch_token(struct sbd_registry *r, const struct registry_request *q,
                            const struct sbd_auth_challenge *c, const char *scope, char **token,
                            long *ttl, sbd_error_t *err)
{
  const char *d = q->ref->domain, *p = q->ref->path;
  cleanup_free char *realm_host = NULL;
  cleanup_free char *url = auth_token_url(r->curl, c, scope, &realm_host);
  if (url == NULL)
    return sbd_error_set(err, SBD_EXIT_REGISTRY, 0,
                         "registry %s sent a token realm that is not a URL: \"%s\"", d, c->realm);
  bool verify = !registry_domain_is_insecure(r, realm_host);
  struct registry_response res = {.max_body = TOKEN_RESPONSE_MAX};
  const char *user, *secret;
  registry_setopt_common(r, verify);
  registry_setopt_target(r, url, &res);
  if (auth_credentials_lookup(r, d, &user, &secret)) {
    curl_easy_setopt(r->curl, CURLOPT_USERNAME, user);
    curl_easy_setopt(r->curl, CURLOPT_PASSWORD, secret);
  }
  CURLcode rc = curl_easy_perform(r->curl);
  int ret = 0;
  if (rc != CURLE_OK) {
    cleanup_free char *reason = curl_reason(r, rc);
    ret = sbd_error_set(err, SBD_EXIT_REGISTRY, 0,
                        "registry %s: cannot get a token from %s: %s", d, c->realm, reason);
  } else if (res.status == 401 || res.status == 403) {
    ret = sbd_error_set(err, SBD_EXIT_REGISTRY, 0,
                        "registry %s: repository %s: access denied: the token server %s refused "
                        "an anonymous token for \"%s\" (HTTP %ld)",
                        d, p, c->realm, scope, res.status);
  } else if (res.status < 200 || res.status >= 300) {
    ret = sbd_error_set(err, SBD_EXIT_REGISTRY, 0,
                        "registry %s: the token server %s answered HTTP %ld", d, c->realm,
                        res.status);
  } else {
    ret = auth_parse_token_response(q, c->realm, &res.body, token, ttl, err);
  }
  response_reset(&res); /* frees what it holds */
  return ret;
}

/* Answers a 401: a Bearer challenge gets a fresh token, cached under the
 * scope we ask for; anything else is an error naming what is required. */
static int auth_answer_challenge(struct sbd_registry *r, const struct registry_request *q,
                                 const char *header, const char *scope, char **token,
                                 sbd_error_t *err)
{
  const char *d = q->ref->domain, *p = q->ref->path;
  if (header == NULL)
    return sbd_error_set(err, SBD_EXIT_REGISTRY, 0,
                         "registry %s: repository %s: access denied (HTTP 401 without an "
                         "authentication challenge)",
                         d, p);
  struct sbd_auth_challenge c;
  if (sbd_auth_challenge_parse(header, &c) < 0)
    return sbd_error_set(err, SBD_EXIT_REGISTRY, 0,
                         "registry %s sent an authentication challenge sbdisk cannot parse: %s",
                         d, header);
  int ret = 0;
  long ttl = 0;
  if (strcmp(c.scheme, "Basic") == 0)
    ret = sbd_error_set(err, SBD_EXIT_REGISTRY, 0,
                        "registry %s: repository %s: authentication required: the registry asks "
                        "for a user name and password (Basic), and none are configured",
                        d, p);
  else if (strcmp(c.scheme, "Bearer") != 0)
    ret = sbd_error_set(err, SBD_EXIT_REGISTRY, 0,
                        "registry %s asks for \"%s\" authentication, which sbdisk does not speak",
                        d, c.scheme);
  else if (c.realm == NULL)
    ret = sbd_error_set(err, SBD_EXIT_REGISTRY, 0,
                        "registry %s sent a Bearer challenge without a realm", d);
  else
    ret = auth_fetch_token(r, q, &c, c.scope ? c.scope : scope, token, &ttl, err);
  if (ret == 0)
    auth_token_store(r, q->host, scope, *token, ttl);
  sbd_auth_challenge_free(&c);
  return ret;
}

/* --- requests ------------------------------------------------------------------- */

/* One GET to the registry: HTTPS, or for an insecure host HTTPS without
 * verification and, if the TLS handshake fails, plain HTTP from then on. */
static int registry_send(struct sbd_registry *r, const struct registry_request *q,
                         const char *token, struct registry_response *res, sbd_error_t *err)
{
  struct registry_host *h = registry_host_get(r, q->host);
  bool insecure = registry_domain_is_insecure(r, q->ref->domain);
  for (;;) {
    cleanup_free char *url =
        xasprintf("%s://%s%s", h->plain_http ? "http" : "https", q->host, q->path);
    CURLcode rc = registry_perform(r, url, q->accept, token, !insecure, res);
    if (rc == CURLE_OK)
      return 0;
    if (insecure && !h->plain_http && curl_is_tls_failure(rc)) {
      h->plain_http = true;
      response_reset(res);
      continue;
    }
    return registry_error_transport(r, q, rc, res, err);
  }
}

/* Sends q with a cached token if there is one; on 401, answers the challenge
 * and retries once.  The caller judges the final status. */
static int registry_request(struct sbd_registry *r, const struct registry_request *q,
                            struct registry_response *res, sbd_error_t *err)
{
  cleanup_free char *scope = xasprintf("repository:%s:pull", q->ref->path);
  if (registry_send(r, q, auth_token_lookup(r, q->host, scope), res, err) < 0)
    return -1;
  if (res->status != 401)
    return 0;
  cleanup_free char *token = NULL;
  if (auth_answer_challenge(r, q, res->challenge, scope, &token, err) < 0)
    return -1;
  response_reset(res);
  return registry_send(r, q, token, res, err);
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
                               .path = xasprintf("/v2/%s/manifests/%s", ref->path, reference),
                               .what = what,
                               .accept = SBD_MANIFEST_ACCEPT};
  struct registry_response res = {.max_body = MANIFEST_MAX};
  int ret = registry_request(r, &q, &res, err);
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
                               .path = xasprintf("/v2/%s/blobs/%s", ref->path, digest),
                               .what = what};
  struct registry_response res = {.sink = sink, .opaque = opaque, .sink_err = err};
  int ret = registry_request(r, &q, &res, err);
  if (ret == 0 && (res.status < 200 || res.status >= 300))
    ret = registry_error_status(&q, &res, err);
  free(q.path);
  response_reset(&res); /* frees what it holds */
  return ret;
}

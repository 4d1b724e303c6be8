/* The registry's authentication: WWW-Authenticate challenges (RFC 7235);
 * Bearer tokens from the challenge's realm (the distribution token spec),
 * anonymous or with the registry's credential (lib/auth.h); Basic answered
 * with the credential itself.  What is sent is cached per host and scope
 * until it expires. */
#include <ctype.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth.h"
#include "registry_internal.h"

/* The distribution token spec: assume 60 s when expires_in is absent or less. */
#define TOKEN_MIN_TTL_S 60
/* Refresh a little early so a token does not expire between check and use. */
#define TOKEN_EXPIRY_MARGIN_S 10
#define TOKEN_RESPONSE_MAX (1024 * 1024)

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

/* --- tokens -------------------------------------------------------------------- */

const char *auth_token_lookup(struct sbd_registry *r, const char *host, const char *scope)
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

/* The credential for the registry the request is about, from r->auth: 1
 * found, 0 none (anonymous), -1 a credential helper failed. */
static int auth_credentials_lookup(struct sbd_registry *r, const struct registry_request *q,
                                   struct sbd_credential *cred, sbd_error_t *err)
{
  memset(cred, 0, sizeof(*cred));
  if (r->auth == NULL)
    return 0;
  return sbd_auth_lookup(r->auth, q->name, cred, err);
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

/* A docker "identitytoken" is an OAuth2 refresh token: POSTed to the realm
 * for an access token, as docker does. */
static char *auth_refresh_form(CURL *curl, const struct sbd_auth_challenge *c, const char *scope,
                               const char *refresh_token)
{
  const char *names[] = {"grant_type", "service", "scope", "client_id", "refresh_token"};
  const char *values[] = {"refresh_token", c->service, scope, "sbdisk", refresh_token};
  struct sbd_buf form = {0};
  for (size_t i = 0; i < 5; i++) {
    if (values[i] == NULL)
      continue;
    char *esc = curl_easy_escape(curl, values[i], 0);
    sbd_buf_appendf(&form, "%s%s=%s", form.len ? "&" : "", names[i], esc);
    curl_free(esc);
  }
  return sbd_buf_cstr(&form);
}

/* Gets a token from the challenge's realm for scope: anonymously, with the
 * credential as Basic authentication, or by refreshing its identity token. */
static int auth_fetch_token(struct sbd_registry *r, const struct registry_request *q,
                            const struct sbd_auth_challenge *c, const char *scope,
                            const struct sbd_credential *cred, char **token, long *ttl,
                            sbd_error_t *err)
{
  const char *d = q->ref->domain, *p = q->ref->path;
  cleanup_free char *realm_host = NULL;
  cleanup_free char *url = auth_token_url(r->curl, c, scope, &realm_host);
  if (url == NULL)
    return sbd_error_set(err, SBD_EXIT_REGISTRY, 0,
                         "registry %s sent a token realm that is not a URL: \"%s\"", d, c->realm);
  bool verify = !registry_domain_is_insecure(r, realm_host);
  struct registry_response res = {.max_body = TOKEN_RESPONSE_MAX};
  registry_setopt_common(r, realm_host, verify);
  registry_setopt_target(r, url, &res);
  cleanup_free char *form = NULL;
  if (cred->identity_token) {
    form = auth_refresh_form(r->curl, c, scope, cred->identity_token);
    curl_easy_setopt(r->curl, CURLOPT_URL, c->realm);
    curl_easy_setopt(r->curl, CURLOPT_POSTFIELDS, form);
  } else if (cred->username && cred->secret) {
    curl_easy_setopt(r->curl, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
    curl_easy_setopt(r->curl, CURLOPT_USERNAME, cred->username);
    curl_easy_setopt(r->curl, CURLOPT_PASSWORD, cred->secret);
  }
  CURLcode rc = curl_easy_perform(r->curl);
  /* the easy handle is reused: forget the secret and the form now */
  curl_easy_reset(r->curl);
  int ret = 0;
  if (rc != CURLE_OK) {
    cleanup_free char *reason = curl_reason(r, rc);
    ret = sbd_error_set(err, SBD_EXIT_REGISTRY, 0,
                        "registry %s: cannot get a token from %s: %s", d, c->realm, reason);
  } else if ((res.status == 401 || res.status == 403) && cred->source) {
    ret = sbd_error_set(err, SBD_EXIT_REGISTRY, 0,
                        "registry %s: repository %s: access denied: the token server %s refused "
                        "the credentials from %s (HTTP %ld)",
                        d, p, c->realm, cred->source, res.status);
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

/* "Basic base64(user:secret)" */
static char *auth_basic_value(const struct sbd_credential *cred)
{
  cleanup_free char *plain = xasprintf("%s:%s", cred->username, cred->secret);
  size_t n = strlen(plain);
  char *out = xmalloc(6 + 4 * ((n + 2) / 3) + 1);
  memcpy(out, "Basic ", 6);
  EVP_EncodeBlock((unsigned char *)out + 6, (const unsigned char *)plain, (int)n);
  explicit_bzero(plain, n);
  return out;
}

int auth_answer_challenge(struct sbd_registry *r, const struct registry_request *q,
                          const char *header, const char *scope, char **authorization,
                          char **source, sbd_error_t *err)
{
  const char *d = q->ref->domain, *p = q->ref->path;
  *authorization = *source = NULL;
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
  struct sbd_credential cred;
  if (auth_credentials_lookup(r, q, &cred, err) < 0) {
    sbd_auth_challenge_free(&c);
    return -1;
  }
  int ret = 0;
  long ttl = TOKEN_MIN_TTL_S;
  if (strcmp(c.scheme, "Basic") == 0 && !(cred.username && cred.secret))
    ret = sbd_error_set(err, SBD_EXIT_REGISTRY, 0,
                        "registry %s: repository %s: authentication required: the registry asks "
                        "for a user name and password (Basic)%s",
                        d, p,
                        cred.identity_token ? ", and the only credential is an identity token"
                                            : ", and none are configured (see --auth-file, "
                                              "--username)");
  else if (strcmp(c.scheme, "Basic") == 0) {
    *authorization = auth_basic_value(&cred);
    ttl = 24 * 3600; /* nothing expires it but a refusal */
  } else if (strcmp(c.scheme, "Bearer") != 0)
    ret = sbd_error_set(err, SBD_EXIT_REGISTRY, 0,
                        "registry %s asks for \"%s\" authentication, which sbdisk does not speak",
                        d, c.scheme);
  else if (c.realm == NULL)
    ret = sbd_error_set(err, SBD_EXIT_REGISTRY, 0,
                        "registry %s sent a Bearer challenge without a realm", d);
  else {
    cleanup_free char *token = NULL;
    ret = auth_fetch_token(r, q, &c, c.scope ? c.scope : scope, &cred, &token, &ttl, err);
    if (ret == 0)
      *authorization = xasprintf("Bearer %s", token);
  }
  if (ret == 0) {
    auth_token_store(r, q->host, scope, *authorization, ttl);
    *source = cred.source ? xstrdup(cred.source) : NULL;
  }
  sbd_credential_free(&cred);
  sbd_auth_challenge_free(&c);
  return ret;
}

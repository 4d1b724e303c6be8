/* tokenserver: the two HTTP services a registry test needs besides the
 * registry itself, single-threaded, on 127.0.0.1, one request per connection.
 *
 *   tokenserver --port N --key KEY.pem --cert CERT.pem --issuer ISS --service SVC
 *               [--deny REPO]... [--no-access REPO]... [--log FILE]
 *     A token server for docker-registry's `auth: token:`.  GET /token?service=…
 *     &scope=… grants every requested scope anonymously, as a JWT signed RS256
 *     with KEY whose header carries CERT in "x5c": distribution verifies that
 *     chain against its rootcertbundle (CERT itself), then the signature, the
 *     issuer, the audience (the service) and nbf/exp.  --deny REPO answers 401
 *     to any request naming REPO; --no-access REPO grants a token whose access
 *     list leaves REPO out (what public registries do for private images).
 *     --basic USER:PASSWORD grants tokens only to requests that authenticate
 *     as that user (Basic), as a private registry's token server does; 401
 *     otherwise.
 *
 *   tokenserver --port N --files DIR [--log FILE]
 *     Serves GET/HEAD /PATH from DIR: the target of the registry's `redirect`
 *     storage middleware, i.e. a stand-in for a CDN.
 *
 * --log appends one line per request: "METHOD TARGET authorization=yes|no",
 * so a test can see what reached the server (and whether a token leaked). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/util.h"

#define REQUEST_MAX 16384
#define TOKEN_TTL_S 300

struct server {
  int port;
  const char *files;
  EVP_PKEY *key;
  char *cert_b64; /* standard base64 of the certificate's DER */
  const char *issuer;
  const char *service;
  const char **deny, **no_access;
  size_t n_deny, n_no_access;
  char *basic; /* "Basic base64(user:password)" required for a token, or NULL */
  FILE *log;
};

struct request {
  char method[8];
  char target[4096];
  bool authorization;
  char authorization_value[1024];
};

/* --- encoding ------------------------------------------------------------------ */

static char *base64_std(const unsigned char *data, size_t len)
{
  char *out = xmalloc(4 * ((len + 2) / 3) + 1);
  EVP_EncodeBlock((unsigned char *)out, data, (int)len);
  return out;
}

/* JOSE's base64url: no padding, '-' and '_' for '+' and '/'. */
static char *base64_url(const void *data, size_t len)
{
  char *s = base64_std(data, len);
  size_t n = strlen(s);
  while (n > 0 && s[n - 1] == '=')
    s[--n] = '\0';
  for (char *p = s; *p; p++)
    *p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
  return s;
}

static char *json_base64_url(json_t *j)
{
  char *text = json_dumps(j, JSON_COMPACT);
  char *out = base64_url(text, strlen(text));
  free(text);
  return out;
}

static int hexval(char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  c = (char)(c | 0x20);
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* application/x-www-form-urlencoded value -> text. */
static char *url_decode(const char *s, size_t n)
{
  char *out = xmalloc(n + 1), *o = out;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
      *o++ = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
      i += 2;
    } else {
      *o++ = s[i] == '+' ? ' ' : s[i];
    }
  }
  *o = '\0';
  return out;
}

/* --- tokens -------------------------------------------------------------------- */

static bool listed(const char **list, size_t n, const char *name)
{
  for (size_t i = 0; i < n; i++)
    if (strcmp(list[i], name) == 0)
      return true;
  return false;
}

/* "repository:NAME:pull,push" -> {type, name, actions}; NULL if malformed. */
static json_t *scope_to_access(const char *scope)
{
  const char *first = strchr(scope, ':'), *last = strrchr(scope, ':');
  if (first == NULL || last == first)
    return NULL;
  json_t *actions = json_array();
  cleanup_free char *list = xstrdup(last + 1);
  char *save = NULL;
  for (char *a = strtok_r(list, ",", &save); a; a = strtok_r(NULL, ",", &save))
    json_array_append_new(actions, json_string(a));
  return json_pack("{s:s%,s:s%,s:o}", "type", scope, (size_t)(first - scope), "name",
                   first + 1, (size_t)(last - first - 1), "actions", actions);
}

static char *sign_rs256(EVP_PKEY *key, const char *input)
{
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  size_t len = 0;
  unsigned char *sig = NULL;
  char *out = NULL;
  if (EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key) == 1 &&
      EVP_DigestSign(ctx, NULL, &len, (const unsigned char *)input, strlen(input)) == 1) {
    sig = xmalloc(len);
    if (EVP_DigestSign(ctx, sig, &len, (const unsigned char *)input, strlen(input)) == 1)
      out = base64_url(sig, len);
  }
  free(sig);
  EVP_MD_CTX_free(ctx);
  return out;
}

static char *token_make(const struct server *s, json_t *access)
{
  unsigned char rnd[16];
  char jti[33];
  RAND_bytes(rnd, sizeof(rnd));
  for (size_t i = 0; i < sizeof(rnd); i++)
    snprintf(jti + 2 * i, 3, "%02x", rnd[i]);
  json_int_t now = (json_int_t)time(NULL);
  json_t *header = json_pack("{s:s,s:s,s:[s]}", "typ", "JWT", "alg", "RS256", "x5c", s->cert_b64);
  json_t *claims = json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:s,s:O}", "iss", s->issuer, "sub", "",
                             "aud", s->service, "exp", now + TOKEN_TTL_S, "nbf", now - 10, "iat",
                             now, "jti", jti, "access", access);
  cleanup_free char *h = json_base64_url(header);
  cleanup_free char *c = json_base64_url(claims);
  cleanup_free char *input = xasprintf("%s.%s", h, c);
  cleanup_free char *sig = sign_rs256(s->key, input);
  json_decref(header);
  json_decref(claims);
  return sig ? xasprintf("%s.%s", input, sig) : NULL;
}

/* Every "scope" parameter; each may hold several space-separated scopes. */
static json_t *query_scopes(const char *query)
{
  json_t *scopes = json_array();
  cleanup_free char *q = xstrdup(query);
  char *save = NULL;
  for (char *kv = strtok_r(q, "&", &save); kv; kv = strtok_r(NULL, "&", &save)) {
    if (strncmp(kv, "scope=", 6) != 0)
      continue;
    cleanup_free char *v = url_decode(kv + 6, strlen(kv + 6));
    char *save2 = NULL;
    for (char *one = strtok_r(v, " ", &save2); one; one = strtok_r(NULL, " ", &save2))
      json_array_append_new(scopes, json_string(one));
  }
  return scopes;
}

/* --- HTTP -------------------------------------------------------------------------- */

static void respond(int fd, int status, const char *reason, const char *type, const void *body,
                    size_t len, bool head)
{
  cleanup_free char *hdr = xasprintf("HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                                     "Connection: close\r\n\r\n",
                                     status, reason, type, len);
  if (sbd_write_all(fd, hdr, strlen(hdr)) == 0 && !head && len)
    sbd_write_all(fd, body, len);
}

static void respond_json(int fd, int status, const char *reason, json_t *j)
{
  char *text = json_dumps(j, JSON_COMPACT);
  respond(fd, status, reason, "application/json", text, strlen(text), false);
  free(text);
}

static void serve_token(const struct server *s, int fd, const char *query, const char *auth)
{
  json_t *scopes = query_scopes(query);
  json_t *access = json_array();
  size_t i;
  json_t *v;
  bool denied = false;
  json_array_foreach(scopes, i, v)
  {
    json_t *a = scope_to_access(json_string_value(v));
    const char *name = json_string_value(json_object_get(a, "name"));
    if (name && listed(s->deny, s->n_deny, name))
      denied = true;
    if (a && !listed(s->no_access, s->n_no_access, name))
      json_array_append(access, a);
    json_decref(a);
  }
  if (s->basic && strcmp(auth, s->basic) != 0) {
    json_t *e = json_pack("{s:[{s:s,s:s}]}", "errors", "code", "UNAUTHORIZED", "message",
                          "authentication required");
    respond_json(fd, 401, "Unauthorized", e);
    json_decref(e);
  } else if (denied) {
    json_t *e = json_pack("{s:[{s:s,s:s}]}", "errors", "code", "UNAUTHORIZED", "message",
                          "access to the requested resource is not authorized");
    respond_json(fd, 401, "Unauthorized", e);
    json_decref(e);
  } else {
    cleanup_free char *token = token_make(s, access);
    json_t *body = json_pack("{s:s?,s:s?,s:i}", "token", token, "access_token", token,
                             "expires_in", TOKEN_TTL_S);
    respond_json(fd, token ? 200 : 500, token ? "OK" : "Internal Server Error", body);
    json_decref(body);
  }
  json_decref(access);
  json_decref(scopes);
}

static void serve_file(const struct server *s, int fd, const struct request *rq)
{
  bool head = strcmp(rq->method, "HEAD") == 0;
  if (strstr(rq->target, "..") || strchr(rq->target, '?')) {
    respond(fd, 400, "Bad Request", "text/plain", "bad path\n", 9, head);
    return;
  }
  cleanup_free char *path = xasprintf("%s%s", s->files, rq->target);
  cleanup_close int file = open(path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (file < 0 || fstat(file, &st) < 0 || !S_ISREG(st.st_mode)) {
    respond(fd, 404, "Not Found", "text/plain", "not found\n", 10, head);
    return;
  }
  respond(fd, 200, "OK", "application/octet-stream", NULL, (size_t)st.st_size, true);
  char buf[65536];
  ssize_t n;
  while (!head && (n = read(file, buf, sizeof(buf))) > 0)
    if (sbd_write_all(fd, buf, (size_t)n) < 0)
      break;
}

/* Reads the request head; false if the client sent something unusable. */
static bool request_read(int fd, struct request *rq)
{
  char buf[REQUEST_MAX + 1];
  size_t len = 0;
  while (len < REQUEST_MAX) {
    ssize_t n = read(fd, buf + len, REQUEST_MAX - len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return false;
    len += (size_t)n;
    buf[len] = '\0';
    if (strstr(buf, "\r\n\r\n"))
      break;
  }
  buf[len] = '\0';
  if (sscanf(buf, "%7s %4095s HTTP/1.%*c", rq->method, rq->target) != 2)
    return false;
  rq->authorization = false;
  rq->authorization_value[0] = '\0';
  for (char *line = strstr(buf, "\r\n"); line; line = strstr(line + 2, "\r\n"))
    if (strncasecmp(line + 2, "Authorization:", 14) == 0) {
      rq->authorization = true;
      const char *v = line + 2 + 14;
      while (*v == ' ')
        v++;
      size_t n = strcspn(v, "\r\n");
      if (n < sizeof(rq->authorization_value)) {
        memcpy(rq->authorization_value, v, n);
        rq->authorization_value[n] = '\0';
      }
    }
  return true;
}

static void serve_one(const struct server *s, int fd)
{
  struct request rq;
  if (!request_read(fd, &rq))
    return;
  if (s->log) {
    fprintf(s->log, "%s %s authorization=%s\n", rq.method, rq.target,
            rq.authorization ? "yes" : "no");
    fflush(s->log);
  }
  if (s->files && (strcmp(rq.method, "GET") == 0 || strcmp(rq.method, "HEAD") == 0))
    serve_file(s, fd, &rq);
  else if (!s->files && strcmp(rq.method, "GET") == 0 && strncmp(rq.target, "/token?", 7) == 0)
    serve_token(s, fd, rq.target + 7, rq.authorization_value);
  else
    respond(fd, 404, "Not Found", "text/plain", "not found\n", 10, false);
}

static int serve_forever(const struct server *s)
{
  int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s->port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(ls, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(ls, 16) < 0) {
    perror("tokenserver: bind");
    return 1;
  }
  for (;;) {
    int c = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0)
      continue;
    /* A client that stalls must not wedge a single-threaded server. */
    struct timeval tv = {.tv_sec = 5};
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    serve_one(s, c);
    shutdown(c, SHUT_WR);
    close(c);
  }
}

/* --- set-up ---------------------------------------------------------------------- */

static int load_signer(struct server *s, const char *key_path, const char *cert_path)
{
  FILE *f = fopen(key_path, "r");
  s->key = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
  if (f)
    fclose(f);
  f = fopen(cert_path, "r");
  X509 *cert = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
  if (f)
    fclose(f);
  if (s->key == NULL || cert == NULL) {
    fprintf(stderr, "tokenserver: cannot load %s or %s\n", key_path, cert_path);
    X509_free(cert);
    return -1;
  }
  unsigned char *der = NULL;
  int len = i2d_X509(cert, &der);
  s->cert_b64 = base64_std(der, (size_t)len);
  OPENSSL_free(der);
  X509_free(cert);
  return 0;
}

static const char usage[] =
    "usage: tokenserver --port N --key KEY --cert CERT --issuer ISS --service SVC\n"
    "                   [--deny REPO]... [--no-access REPO]... [--basic USER:PASSWORD]\n"
    "                   [--log FILE]\n"
    "       tokenserver --port N --files DIR [--log FILE]\n";

int main(int argc, char **argv)
{
  static const struct option longopts[] = {
      {"port", required_argument, NULL, 'p'},   {"key", required_argument, NULL, 'k'},
      {"cert", required_argument, NULL, 'c'},   {"issuer", required_argument, NULL, 'i'},
      {"service", required_argument, NULL, 's'}, {"deny", required_argument, NULL, 'd'},
      {"no-access", required_argument, NULL, 'n'}, {"files", required_argument, NULL, 'f'},
      {"log", required_argument, NULL, 'l'},    {"basic", required_argument, NULL, 'b'},
      {NULL, 0, NULL, 0}};
  struct server s = {0};
  const char *key = NULL, *cert = NULL, *log = NULL;
  s.deny = xcalloc((size_t)argc, sizeof(*s.deny));
  s.no_access = xcalloc((size_t)argc, sizeof(*s.no_access));
  int c;
  while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    switch (c) {
    case 'p': s.port = atoi(optarg); break;
    case 'k': key = optarg; break;
    case 'c': cert = optarg; break;
    case 'i': s.issuer = optarg; break;
    case 's': s.service = optarg; break;
    case 'd': s.deny[s.n_deny++] = optarg; break;
    case 'n': s.no_access[s.n_no_access++] = optarg; break;
    case 'f': s.files = optarg; break;
    case 'l': log = optarg; break;
    case 'b': {
      cleanup_free char *b64 = base64_std((const unsigned char *)optarg, strlen(optarg));
      s.basic = xasprintf("Basic %s", b64);
      break;
    }
    default: fputs(usage, stderr); return 2;
    }
  }
  bool token_mode = key && cert && s.issuer && s.service;
  if (s.port <= 0 || (!s.files && !token_mode)) {
    fputs(usage, stderr);
    return 2;
  }
  if (!s.files && load_signer(&s, key, cert) < 0)
    return 1;
  if (log && (s.log = fopen(log, "a")) == NULL) {
    perror(log);
    return 1;
  }
  signal(SIGPIPE, SIG_IGN);
  return serve_forever(&s);
}

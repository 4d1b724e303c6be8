/* faultproxy: a reverse HTTP proxy that sits between sbdisk and a test
 * docker-registry on 127.0.0.1 and breaks what a real network breaks, so the
 * tests can show that sbdisk resumes, retries, and gives up cleanly.
 *
 *   faultproxy --port N --upstream HOST:PORT [--log FILE] [fault options]
 *
 * Each connection carries one request (the proxy sends "Connection: close"
 * both ways), served by its own detached thread so a trickled download does
 * not hold up the others.  Bodies are streamed through a fixed buffer, never
 * held whole.  Responses carrying a Location header (the registry's redirects)
 * pass through unchanged and are never faulted.
 *
 * The fault options are documented in `usage` below.  The first K requests a
 * fault applies to get it (--faults K, default 1; "always" never stops); a
 * blob whose body is no longer than --cut-blob BYTES is not cut and does not
 * use up a fault, so a cut can aim at the big layers only.
 *
 * --log appends one line per request, flushed at once:
 *   METHOD TARGET range=<Range header|-> fault=<none|cut@BYTES|status CODE|trickle> status=CODE
 * where status is the upstream's (or the injected) status, and a request both
 * cut and trickled logs fault=cut@BYTES+trickle.  A connection that does not
 * speak HTTP (sbdisk's TLS probe of an insecure registry) is answered 400 at
 * once, like docker-registry would, and not logged. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lib/util.h"

#define HEAD_MAX 65536
#define BODY_BUF 65536
#define CLIENT_READ_TIMEOUT_S 30
#define IO_TIMEOUT_S 60
/* Trickled bodies go out in this many slices a second. */
#define TRICKLE_SLICES_PER_S 20

enum only { ONLY_ALL, ONLY_BLOBS, ONLY_MANIFESTS };
enum kind { KIND_OTHER, KIND_BLOB, KIND_MANIFEST };

struct proxy {
  struct sockaddr_storage upstream;
  socklen_t upstream_len;
  long long cut_blob; /* -1: off */
  int status;         /* 0: off */
  long retry_after;   /* -1: off */
  long long trickle;  /* bytes per second, 0: off */
  enum only only;
  FILE *log;
  pthread_mutex_t lock; /* guards faults_left and log */
  long faults_left;     /* -1: always */
};

struct conn {
  struct proxy *proxy;
  int fd;
};

/* A message head as read off a socket: the head itself (up to and including
 * the blank line) and whatever part of the body arrived with it. */
struct head {
  char buf[HEAD_MAX];
  size_t len;    /* bytes of head */
  size_t filled; /* bytes in buf */
};

/* --- sockets ------------------------------------------------------------------- */

static int send_all(int fd, const void *data, size_t len)
{
  const char *p = data;
  while (len > 0) {
    ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return -1;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

static ssize_t recv_some(int fd, void *buf, size_t len)
{
  ssize_t n;
  do
    n = recv(fd, buf, len, 0);
  while (n < 0 && errno == EINTR);
  return n;
}

static void set_timeouts(int fd, int recv_s, int send_s)
{
  struct timeval r = {.tv_sec = recv_s}, s = {.tv_sec = send_s};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &r, sizeof(r));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &s, sizeof(s));
}

static int upstream_connect(const struct proxy *p)
{
  int fd = socket(p->upstream.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  int r;
  do
    r = connect(fd, (const struct sockaddr *)&p->upstream, p->upstream_len);
  while (r < 0 && errno == EINTR);
  if (r < 0) {
    close(fd);
    return -1;
  }
  set_timeouts(fd, IO_TIMEOUT_S, IO_TIMEOUT_S);
  return fd;
}

/* --- HTTP heads ---------------------------------------------------------------- */

/* Whether the bytes so far could start an HTTP message: the first line is
 * printable ASCII.  A TLS ClientHello (sbdisk tries HTTPS first on an insecure
 * registry) is not, and must be refused at once, as docker-registry does, so
 * the client falls back to plain HTTP instead of timing out. */
static bool head_plausible(const struct head *h)
{
  for (size_t i = 0; i < h->filled && h->buf[i] != '\r'; i++)
    if (h->buf[i] < 0x20 || h->buf[i] > 0x7e)
      return false;
  return true;
}

/* Reads until the blank line that ends a head; -1 on EOF, error or overflow,
 * -2 on bytes that are not HTTP. */
static int head_read(int fd, struct head *h)
{
  h->len = h->filled = 0;
  while (h->filled < sizeof(h->buf)) {
    ssize_t n = recv_some(fd, h->buf + h->filled, sizeof(h->buf) - h->filled);
    if (n <= 0)
      return -1;
    size_t from = h->filled >= 3 ? h->filled - 3 : 0;
    h->filled += (size_t)n;
    if (!head_plausible(h))
      return -2;
    char *end = memmem(h->buf + from, h->filled - from, "\r\n\r\n", 4);
    if (end) {
      h->len = (size_t)(end - h->buf) + 4;
      return 0;
    }
  }
  return -1;
}

/* The header line after `prev` (NULL: the first), without its CRLF, its length
 * in *n; NULL after the last. */
static const char *head_next_line(const struct head *h, const char *prev, size_t *n)
{
  const char *end = h->buf + h->len - 2; /* the blank line's CRLF */
  const char *line = prev ? prev + *n + 2 : (const char *)memmem(h->buf, h->len, "\r\n", 2) + 2;
  if (line >= end)
    return NULL;
  const char *eol = memmem(line, (size_t)(end - line) + 2, "\r\n", 2);
  *n = (size_t)(eol - line);
  return line;
}

#define head_foreach_line(h, line, n)                                                        \
  for (const char *line = head_next_line(h, NULL, &n); line; line = head_next_line(h, line, &n))

static bool header_is(const char *line, size_t n, const char *name)
{
  size_t k = strlen(name);
  return n > k && line[k] == ':' && strncasecmp(line, name, k) == 0;
}

/* The trimmed value of header NAME, or NULL. */
static char *header_get(const struct head *h, const char *name)
{
  size_t n;
  head_foreach_line(h, line, n)
  {
    if (!header_is(line, n, name))
      continue;
    const char *v = line + strlen(name) + 1, *end = line + n;
    while (v < end && (*v == ' ' || *v == '\t'))
      v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
      end--;
    return xstrndup(v, (size_t)(end - v));
  }
  return NULL;
}

/* The head with its hop-by-hop Connection headers replaced by "Connection: close". */
static void head_rewrite(const struct head *h, struct sbd_buf *out)
{
  const char *first_end = memmem(h->buf, h->len, "\r\n", 2);
  sbd_buf_append(out, h->buf, (size_t)(first_end - h->buf) + 2);
  size_t n;
  head_foreach_line(h, line, n)
  {
    if (header_is(line, n, "Connection") || header_is(line, n, "Keep-Alive") ||
        header_is(line, n, "Proxy-Connection"))
      continue;
    sbd_buf_append(out, line, n + 2);
  }
  sbd_buf_appendf(out, "Connection: close\r\n\r\n");
}

/* Content-Length as a number; -1 if absent or unusable. */
static long long head_content_length(const struct head *h)
{
  cleanup_free char *v = header_get(h, "Content-Length");
  if (v == NULL || *v == '\0')
    return -1;
  char *end;
  errno = 0;
  long long n = strtoll(v, &end, 10);
  return errno || *end || n < 0 ? -1 : n;
}

static bool head_chunked(const struct head *h)
{
  cleanup_free char *v = header_get(h, "Transfer-Encoding");
  return v && strcasestr(v, "chunked");
}

/* --- faults -------------------------------------------------------------------- */

static enum kind request_kind(const char *target)
{
  if (strstr(target, "/blobs/sha256:"))
    return KIND_BLOB;
  if (strstr(target, "/manifests/"))
    return KIND_MANIFEST;
  return KIND_OTHER;
}

static bool only_matches(const struct proxy *p, enum kind k)
{
  return p->only == ONLY_ALL || (p->only == ONLY_BLOBS && k == KIND_BLOB) ||
         (p->only == ONLY_MANIFESTS && k == KIND_MANIFEST);
}

/* Uses up one fault if any are left. */
static bool fault_take(struct proxy *p)
{
  pthread_mutex_lock(&p->lock);
  bool take = p->faults_left != 0;
  if (p->faults_left > 0)
    p->faults_left--;
  pthread_mutex_unlock(&p->lock);
  return take;
}

static void log_request(struct proxy *p, const char *method, const char *target, const char *range,
                        const char *fault, int status)
{
  if (p->log == NULL)
    return;
  pthread_mutex_lock(&p->lock);
  fprintf(p->log, "%s %s range=%s fault=%s status=%d\n", method, target, range ? range : "-", fault,
          status);
  fflush(p->log);
  pthread_mutex_unlock(&p->lock);
}

static const char *status_reason(int code)
{
  switch (code) {
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 408: return "Request Timeout";
  case 429: return "Too Many Requests";
  case 500: return "Internal Server Error";
  case 501: return "Not Implemented";
  case 502: return "Bad Gateway";
  case 503: return "Service Unavailable";
  case 504: return "Gateway Timeout";
  default: return "Error";
  }
}

/* distribution's error code for the status, so clients parse the body as usual. */
static const char *status_error_code(int code, enum kind k)
{
  switch (code) {
  case 401: return "UNAUTHORIZED";
  case 403: return "DENIED";
  case 404:
    return k == KIND_BLOB       ? "BLOB_UNKNOWN"
           : k == KIND_MANIFEST ? "MANIFEST_UNKNOWN"
                                : "NAME_UNKNOWN";
  case 429: return "TOOMANYREQUESTS";
  case 503: return "UNAVAILABLE";
  default: return "UNKNOWN";
  }
}

static void respond_error(int fd, int code, enum kind k, long retry_after, bool head_only,
                          const char *why)
{
  cleanup_free char *body = xasprintf("{\"errors\":[{\"code\":\"%s\",\"message\":\"%s\"}]}\n",
                                      status_error_code(code, k), why);
  cleanup_free char *retry = retry_after >= 0 ? xasprintf("Retry-After: %ld\r\n", retry_after)
                                              : xstrdup("");
  cleanup_free char *hdr = xasprintf("HTTP/1.1 %d %s\r\n"
                                     "Content-Type: application/json; charset=utf-8\r\n"
                                     "Content-Length: %zu\r\n%sConnection: close\r\n\r\n",
                                     code, status_reason(code), strlen(body), retry);
  if (send_all(fd, hdr, strlen(hdr)) == 0 && !head_only)
    send_all(fd, body, strlen(body));
}

/* --- body streaming ------------------------------------------------------------ */

struct pacer {
  long long rate; /* bytes per second, 0: as fast as possible */
  long long sent;
  struct timespec start;
};

static int paced_send(int fd, const char *data, size_t len, struct pacer *pc)
{
  if (pc->rate == 0)
    return send_all(fd, data, len);
  size_t slice = (size_t)(pc->rate / TRICKLE_SLICES_PER_S);
  if (slice == 0)
    slice = 1;
  while (len > 0) {
    /* Sleep until the bytes already sent are due at the target rate. */
    struct timespec at = {
        .tv_sec = pc->start.tv_sec + (time_t)(pc->sent / pc->rate),
        .tv_nsec = pc->start.tv_nsec + (long)(pc->sent % pc->rate * 1000000000LL / pc->rate)};
    if (at.tv_nsec >= 1000000000L) {
      at.tv_sec++;
      at.tv_nsec -= 1000000000L;
    }
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL) == EINTR)
      ;
    size_t n = len < slice ? len : slice;
    if (send_all(fd, data, n) < 0)
      return -1;
    pc->sent += (long long)n;
    data += n;
    len -= n;
  }
  return 0;
}

/* Copies the body from `from` to `to`: first `pre` (bytes that came with the
 * head), then the socket, until `expect` bytes (-1: EOF) or `limit` bytes
 * (-1: none) have gone out, whichever is first.  0 when the whole body went. */
static int body_relay(int from, int to, const char *pre, size_t pre_len, long long expect,
                      long long limit, long long rate)
{
  struct pacer pc = {.rate = rate};
  clock_gettime(CLOCK_MONOTONIC, &pc.start);
  long long left = expect; /* -1: unknown */
  long long budget = limit;
  cleanup_free char *buf = xmalloc(BODY_BUF);
  const char *data = pre;
  size_t n = pre_len;
  for (;;) {
    if (left >= 0 && (long long)n > left)
      n = (size_t)left;
    if (budget >= 0 && (long long)n > budget)
      n = (size_t)budget;
    if (n > 0 && paced_send(to, data, n, &pc) < 0)
      return -1;
    if (left >= 0)
      left -= (long long)n;
    if (budget >= 0) {
      budget -= (long long)n;
      if (budget == 0 && left != 0)
        return -1; /* the cut */
    }
    if (left == 0)
      return 0;
    ssize_t got = recv_some(from, buf, BODY_BUF);
    if (got == 0)
      return left > 0 ? -1 : 0;
    if (got < 0)
      return -1;
    data = buf;
    n = (size_t)got;
  }
}

/* --- one connection ------------------------------------------------------------ */

struct request {
  struct head head;
  char method[16];
  char target[4096];
  enum kind kind;
  long long content_length;
};

struct response {
  struct head head;
  int status;
  long long content_length;
  bool chunked, location;
};

/* Forwards the request head and any Content-Length body to upstream. */
static int request_forward(int cfd, int ufd, const struct request *rq)
{
  cleanup_buf struct sbd_buf out = {0};
  head_rewrite(&rq->head, &out);
  if (send_all(ufd, out.data, out.len) < 0)
    return -1;
  if (rq->content_length <= 0)
    return 0;
  return body_relay(cfd, ufd, rq->head.buf + rq->head.len, rq->head.filled - rq->head.len,
                    rq->content_length, -1, 0);
}

static int response_read(int ufd, struct response *rs)
{
  if (head_read(ufd, &rs->head) < 0)
    return -1;
  if (sscanf(rs->head.buf, "HTTP/1.%*c %3d", &rs->status) != 1)
    return -1;
  rs->content_length = head_content_length(&rs->head);
  rs->chunked = head_chunked(&rs->head);
  cleanup_free char *loc = header_get(&rs->head, "Location");
  rs->location = loc != NULL;
  return 0;
}

/* How many body bytes follow the response head; -1: until the upstream closes. */
static long long response_body_length(const struct request *rq, const struct response *rs)
{
  if (strcmp(rq->method, "HEAD") == 0 || rs->status / 100 == 1 || rs->status == 204 ||
      rs->status == 304)
    return 0;
  return rs->chunked ? -1 : rs->content_length;
}

static void serve(struct proxy *p, int cfd)
{
  cleanup_free struct request *rq = xcalloc(1, sizeof(*rq));
  int r = head_read(cfd, &rq->head);
  if (r == -2) /* not logged: only the requests that reach the registry's API count */
    respond_error(cfd, 400, KIND_OTHER, -1, false, "faultproxy: not an HTTP request");
  if (r < 0)
    return;
  if (sscanf(rq->head.buf, "%15s %4095s HTTP/1.%*c", rq->method, rq->target) != 2) {
    respond_error(cfd, 400, KIND_OTHER, -1, false, "faultproxy: malformed request");
    return;
  }
  cleanup_free char *range = header_get(&rq->head, "Range");
  rq->kind = request_kind(rq->target);
  rq->content_length = head_content_length(&rq->head);
  bool head_only = strcmp(rq->method, "HEAD") == 0;

  if (head_chunked(&rq->head)) {
    respond_error(cfd, 501, rq->kind, -1, head_only,
                  "faultproxy: chunked request bodies are not supported");
    log_request(p, rq->method, rq->target, range, "none", 501);
    return;
  }
  if (p->status && only_matches(p, rq->kind) && fault_take(p)) {
    respond_error(cfd, p->status, rq->kind, p->retry_after, head_only,
                  "faultproxy: injected fault");
    cleanup_free char *fault = xasprintf("status %d", p->status);
    log_request(p, rq->method, rq->target, range, fault, p->status);
    return;
  }

  cleanup_close int ufd = upstream_connect(p);
  cleanup_free struct response *rs = xcalloc(1, sizeof(*rs));
  if (ufd < 0 || request_forward(cfd, ufd, rq) < 0 || response_read(ufd, rs) < 0) {
    respond_error(cfd, 502, rq->kind, -1, head_only, "faultproxy: upstream failed");
    log_request(p, rq->method, rq->target, range, "none", 502);
    return;
  }

  long long body = response_body_length(rq, rs);
  bool cut = p->cut_blob >= 0 && strcmp(rq->method, "GET") == 0 && rq->kind == KIND_BLOB &&
             (rs->status == 200 || rs->status == 206) && !rs->location &&
             !(body >= 0 && body <= p->cut_blob);
  bool trickle = p->trickle > 0 && body != 0 && only_matches(p, rq->kind) && !rs->location;
  if ((cut || trickle) && !fault_take(p))
    cut = trickle = false;
  cleanup_free char *fault = cut && trickle ? xasprintf("cut@%lld+trickle", p->cut_blob)
                             : cut          ? xasprintf("cut@%lld", p->cut_blob)
                             : trickle      ? xstrdup("trickle")
                                            : xstrdup("none");
  log_request(p, rq->method, rq->target, range, fault, rs->status);

  cleanup_buf struct sbd_buf out = {0};
  head_rewrite(&rs->head, &out);
  if (send_all(cfd, out.data, out.len) < 0)
    return;
  body_relay(ufd, cfd, rs->head.buf + rs->head.len, rs->head.filled - rs->head.len, body,
             cut ? p->cut_blob : -1, trickle ? p->trickle : 0);
}

static void *conn_thread(void *arg)
{
  struct conn *c = arg;
  set_timeouts(c->fd, CLIENT_READ_TIMEOUT_S, IO_TIMEOUT_S);
  serve(c->proxy, c->fd);
  /* A plain close: the client sees EOF, which after a cut is the dropped download. */
  close(c->fd);
  free(c);
  return NULL;
}

static int serve_forever(struct proxy *p, int port)
{
  int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(ls, 64) < 0) {
    fprintf(stderr, "faultproxy: cannot listen on 127.0.0.1:%d: %s\n", port, strerror(errno));
    return 1;
  }
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  for (;;) {
    int fd = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno != EINTR && errno != ECONNABORTED) {
        /* Out of descriptors or memory: wait for threads to finish rather than spin. */
        perror("faultproxy: accept");
        usleep(100000);
      }
      continue;
    }
    struct conn *c = xmalloc(sizeof(*c));
    *c = (struct conn){.proxy = p, .fd = fd};
    pthread_t t;
    int err = pthread_create(&t, &attr, conn_thread, c);
    if (err) {
      fprintf(stderr, "faultproxy: pthread_create: %s\n", strerror(err));
      close(fd);
      free(c);
      usleep(100000);
    }
  }
}

/* --- set-up -------------------------------------------------------------------- */

static const char usage[] =
    "usage: faultproxy --port N --upstream HOST:PORT [--log FILE] [fault options]\n"
    "  A reverse proxy to a registry on HOST:PORT (plain HTTP), listening on 127.0.0.1:N.\n"
    "  --cut-blob BYTES     cut a blob GET's 200/206 body after BYTES bytes and close the\n"
    "                       connection (blobs no longer than BYTES are not cut)\n"
    "  --status CODE        answer CODE with a JSON error body instead of forwarding\n"
    "  --retry-after SECS   with --status: add \"Retry-After: SECS\"\n"
    "  --trickle BYTES_PER_S  forward response bodies at that rate\n"
    "  --faults K|always    fault the first K requests a fault applies to (default 1)\n"
    "  --only blobs|manifests|all  requests --status and --trickle apply to (default all;\n"
    "                       blobs: paths with \"/blobs/sha256:\", manifests: \"/manifests/\")\n"
    "  --log FILE           append \"METHOD TARGET range=R fault=F status=S\" per request\n";

static bool parse_number(const char *s, long long min, long long max, long long *out)
{
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || end == s || *end || v < min || v > max)
    return false;
  *out = v;
  return true;
}

static int upstream_resolve(struct proxy *p, const char *spec)
{
  const char *colon = strrchr(spec, ':');
  if (colon == NULL || colon == spec || colon[1] == '\0') {
    fprintf(stderr, "faultproxy: --upstream wants HOST:PORT, not \"%s\"\n", spec);
    return -1;
  }
  cleanup_free char *host = xstrndup(spec, (size_t)(colon - spec));
  if (host[0] == '[' && host[strlen(host) - 1] == ']') {
    memmove(host, host + 1, strlen(host));
    host[strlen(host) - 1] = '\0';
  }
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
  int err = getaddrinfo(host, colon + 1, &hints, &res);
  if (err) {
    fprintf(stderr, "faultproxy: --upstream %s: %s\n", spec, gai_strerror(err));
    return -1;
  }
  memcpy(&p->upstream, res->ai_addr, res->ai_addrlen);
  p->upstream_len = res->ai_addrlen;
  freeaddrinfo(res);
  return 0;
}

static void on_signal(int sig)
{
  (void)sig;
  _exit(0);
}

int main(int argc, char **argv)
{
  static const struct option longopts[] = {
      {"port", required_argument, NULL, 'p'},     {"upstream", required_argument, NULL, 'u'},
      {"log", required_argument, NULL, 'l'},      {"cut-blob", required_argument, NULL, 'c'},
      {"status", required_argument, NULL, 's'},   {"retry-after", required_argument, NULL, 'r'},
      {"trickle", required_argument, NULL, 't'},  {"faults", required_argument, NULL, 'f'},
      {"only", required_argument, NULL, 'o'},     {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  struct proxy p = {.cut_blob = -1, .retry_after = -1, .faults_left = 1, .only = ONLY_ALL};
  const char *upstream = NULL, *log = NULL;
  long long port = 0, v;
  int c, opt = 0;
  while ((c = getopt_long(argc, argv, "", longopts, &opt)) != -1) {
    bool ok = true;
    switch (c) {
    case 'p': ok = parse_number(optarg, 1, 65535, &port); break;
    case 'u': upstream = optarg; break;
    case 'l': log = optarg; break;
    case 'c': ok = parse_number(optarg, 0, (1LL << 62), &p.cut_blob); break;
    case 's':
      ok = parse_number(optarg, 100, 599, &v);
      p.status = (int)v;
      break;
    case 'r':
      ok = parse_number(optarg, 0, 1000000, &v);
      p.retry_after = (long)v;
      break;
    case 't': ok = parse_number(optarg, 1, 1000000000, &p.trickle); break;
    case 'f':
      if (strcmp(optarg, "always") == 0)
        p.faults_left = -1;
      else if ((ok = parse_number(optarg, 0, 1000000000, &v)))
        p.faults_left = (long)v;
      break;
    case 'o':
      if (strcmp(optarg, "all") == 0)
        p.only = ONLY_ALL;
      else if (strcmp(optarg, "blobs") == 0)
        p.only = ONLY_BLOBS;
      else if (strcmp(optarg, "manifests") == 0)
        p.only = ONLY_MANIFESTS;
      else
        ok = false;
      break;
    case 'h': fputs(usage, stdout); return 0;
    default: fputs(usage, stderr); return 2;
    }
    if (!ok) {
      fprintf(stderr, "faultproxy: bad value for --%s: \"%s\"\n", longopts[opt].name, optarg);
      fputs(usage, stderr);
      return 2;
    }
  }
  if (optind < argc || port == 0 || upstream == NULL) {
    fputs(usage, stderr);
    return 2;
  }
  if (p.status && (p.cut_blob >= 0 || p.trickle)) {
    fputs("faultproxy: --status answers without forwarding; it cannot be combined with "
          "--cut-blob or --trickle\n", stderr);
    return 2;
  }
  if (p.retry_after >= 0 && !p.status) {
    fputs("faultproxy: --retry-after goes with --status\n", stderr);
    return 2;
  }
  if (upstream_resolve(&p, upstream) < 0)
    return 2;
  if (log && (p.log = fopen(log, "ae")) == NULL) {
    fprintf(stderr, "faultproxy: %s: %s\n", log, strerror(errno));
    return 1;
  }
  pthread_mutex_init(&p.lock, NULL);
  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa = {.sa_handler = on_signal};
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  return serve_forever(&p, (int)port);
}

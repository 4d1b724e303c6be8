/* Registry credentials: --username, docker's config.json (auths, credential
 * helpers), and for Google's registries the GCE metadata server or gcloud.
 *
 * The config file is read and checked once, in sbd_auth_new, so a broken file
 * is reported before any download starts.  Everything that runs a program or
 * opens a connection happens in sbd_auth_lookup, at most once per domain: the
 * answer (credential, "none" or the error) is memoised, and threads asking
 * for a domain being resolved wait for it instead of running the helper
 * again.  The environment is read in sbd_auth_new only, so lookups never call
 * getenv() while another thread might change it.
 *
 * Helpers are run as docker runs them: `docker-credential-NAME get`, found on
 * PATH, no shell, the server address on stdin, JSON on stdout.  Each child
 * gets its own process group so that a timeout kills whatever it started. */
#include "auth.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

extern char **environ;

#define CONFIG_MAX (16 * 1024 * 1024)
#define HELPER_TIMEOUT_MS 30000
#define GCLOUD_TIMEOUT_MS 60000
#define CHILD_OUTPUT_MAX (1024 * 1024)
#define METADATA_CONNECT_TIMEOUT_MS 1000L
#define METADATA_TIMEOUT_MS 5000L
#define METADATA_RESPONSE_MAX (64 * 1024)
#define METADATA_DEFAULT_HOST "169.254.169.254"
#define MESSAGE_LINE_MAX 200

/* The key docker writes for Docker Hub, and the address its helpers get. */
#define HUB_SERVER "https://index.docker.io/v1/"
#define GCP_USERNAME "oauth2accesstoken"
#define SOURCE_METADATA "the GCE metadata server"
#define SOURCE_GCLOUD "gcloud auth print-access-token"

/* One resolved lookup, kept for the next thread that asks. */
struct auth_answer {
  int result; /* 1 found, 0 none, -1 error */
  struct sbd_credential cred;
  int exit_code;
  char *message;
};

struct auth_memo {
  char *domain;
  bool done;
  struct auth_answer answer;
  struct auth_memo *next;
};

struct sbd_auth {
  char *username; /* --username and its password, or NULL */
  char *password;
  char *config_path; /* the file that was read, NULL when there is none */
  json_t *config;
  char *path_env; /* $PATH, where helpers and gcloud are found */
  char *metadata_host;
  bool gcp;
  int helper_timeout_ms;
  int gcloud_timeout_ms;

  pthread_mutex_t lock; /* guards memo */
  pthread_cond_t resolved;
  struct auth_memo *memo;

  /* The GCP token is the machine's, not the registry's: one answer serves
   * every Google domain.  gcp_lock is held while it is being fetched. */
  pthread_mutex_t gcp_lock;
  bool gcp_done;
  struct auth_answer gcp_answer;
};

static int64_t now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- credentials ---------------------------------------------------------------- */

static void free_secret(char *s)
{
  if (s) {
    explicit_bzero(s, strlen(s));
    free(s);
  }
}

void sbd_credential_free(struct sbd_credential *c)
{
  if (c == NULL)
    return;
  free(c->username);
  free_secret(c->secret);
  free_secret(c->identity_token);
  free(c->source);
  memset(c, 0, sizeof(*c));
}

static char *dup_or_null(const char *s)
{
  return s ? xstrdup(s) : NULL;
}

static void credential_copy(struct sbd_credential *dst, const struct sbd_credential *src)
{
  dst->username = dup_or_null(src->username);
  dst->secret = dup_or_null(src->secret);
  dst->identity_token = dup_or_null(src->identity_token);
  dst->source = dup_or_null(src->source);
}

/* A user name, password or token goes into a header: no line breaks, no NUL. */
static bool text_is_safe(const char *s, size_t len)
{
  return memchr(s, '\0', len) == NULL && memchr(s, '\r', len) == NULL &&
         memchr(s, '\n', len) == NULL;
}

static void answer_store(struct auth_answer *a, int result, struct sbd_credential *cred,
                         const sbd_error_t e)
{
  a->result = result;
  a->cred = *cred;
  memset(cred, 0, sizeof(*cred));
  if (result < 0) {
    a->exit_code = sbd_error_exit_code(e);
    a->message = xstrdup(e && e->msg ? e->msg : "credential lookup failed");
  }
}

static int answer_give(const struct auth_answer *a, struct sbd_credential *out, sbd_error_t *err)
{
  if (a->result > 0)
    credential_copy(out, &a->cred);
  else if (a->result < 0)
    sbd_error_set(err, a->exit_code, 0, "%s", a->message);
  return a->result;
}

static void answer_free(struct auth_answer *a)
{
  sbd_credential_free(&a->cred);
  free(a->message);
  a->message = NULL;
}

/* --- domains and config keys ------------------------------------------------------ */

static bool ends_with_nocase(const char *s, const char *suffix)
{
  size_t n = strlen(s), m = strlen(suffix);
  return n > m && strcasecmp(s + n - m, suffix) == 0;
}

static bool host_is_hub(const char *host, size_t len)
{
  static const char *const names[] = {"docker.io", "index.docker.io", "registry-1.docker.io"};
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
    if (strlen(names[i]) == len && strncasecmp(host, names[i], len) == 0)
      return true;
  return false;
}

static bool domain_is_hub(const char *domain)
{
  return host_is_hub(domain, strlen(domain));
}

/* Hosts only Google serves, so its access token may go there. */
static bool domain_is_google(const char *domain)
{
  return strcasecmp(domain, "gcr.io") == 0 || ends_with_nocase(domain, ".gcr.io") ||
         ends_with_nocase(domain, "-docker.pkg.dev");
}

/* docker's ConvertToHostname: "https://host:port/v1/" -> "host:port". */
static bool key_matches(const char *key, const char *domain)
{
  if (strncasecmp(key, "https://", 8) == 0)
    key += 8;
  else if (strncasecmp(key, "http://", 7) == 0)
    key += 7;
  size_t len = strcspn(key, "/");
  if (domain_is_hub(domain))
    return host_is_hub(key, len);
  return strlen(domain) == len && strncasecmp(key, domain, len) == 0;
}

/* The value under the key that names domain: an exact key first (for Docker
 * Hub, docker's own key first), then the first key that normalises to it. */
static json_t *config_find(json_t *obj, const char *domain, const char **key_out)
{
  if (!json_is_object(obj))
    return NULL;
  const char *exact[] = {domain_is_hub(domain) ? HUB_SERVER : domain, domain};
  for (size_t i = 0; i < 2; i++) {
    json_t *v = json_object_get(obj, exact[i]);
    if (v) {
      *key_out = exact[i];
      return v;
    }
  }
  const char *key;
  json_t *v;
  json_object_foreach(obj, key, v) {
    if (key_matches(key, domain)) {
      *key_out = key;
      return v;
    }
  }
  return NULL;
}

/* --- the config file -------------------------------------------------------------- */

static int b64_value(unsigned char c)
{
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '+')
    return 62;
  if (c == '/')
    return 63;
  return -1;
}

/* Standard base64, with or without its padding; NULL when malformed. */
static char *base64_decode(const char *s, size_t *out_len)
{
  size_t total = strlen(s), n = total;
  while (n > 0 && s[n - 1] == '=')
    n--;
  if (total - n > 2 || n % 4 == 1 || (total != n && total % 4 != 0))
    return NULL;
  char *out = xmalloc(n / 4 * 3 + 3);
  size_t o = 0;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < n; i++) {
    int v = b64_value((unsigned char)s[i]);
    if (v < 0) {
      explicit_bzero(out, o);
      free(out);
      return NULL;
    }
    acc = (acc << 6) | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (char)((acc >> bits) & 0xff);
    }
  }
  out[o] = '\0';
  *out_len = o;
  return out;
}

/* An optional string member of an auths entry; NULL when absent or null. */
static int entry_string(const char *file, const char *key, json_t *entry, const char *field,
                        const char **out, sbd_error_t *err)
{
  json_t *v = json_object_get(entry, field);
  *out = NULL;
  if (v == NULL || json_is_null(v))
    return 0;
  if (!json_is_string(v))
    return sbd_error_set(err, SBD_EXIT_USAGE, 0, "auth file %s: auths[\"%s\"].%s is not a string",
                         file, key, field);
  if (!text_is_safe(json_string_value(v), json_string_length(v)))
    return sbd_error_set(err, SBD_EXIT_USAGE, 0,
                         "auth file %s: auths[\"%s\"].%s contains a line break or NUL", file,
                         key, field);
  *out = json_string_value(v);
  return 0;
}

/* "auth": base64 of "user:password", split at the first ':'.  As docker
 * does, the user must not be empty and NULs around the password are dropped. */
static int entry_decode_auth(const char *file, const char *key, const char *auth, char **user,
                             char **password, sbd_error_t *err)
{
  size_t len = 0;
  char *plain = base64_decode(auth, &len);
  if (plain == NULL)
    return sbd_error_set(err, SBD_EXIT_USAGE, 0,
                         "auth file %s: auths[\"%s\"].auth is not valid base64", file, key);
  char *colon = memchr(plain, ':', len);
  if (colon == NULL || colon == plain) {
    explicit_bzero(plain, len);
    free(plain);
    return sbd_error_set(err, SBD_EXIT_USAGE, 0,
                         "auth file %s: auths[\"%s\"].auth does not decode to \"user:password\"",
                         file, key);
  }
  const char *p = colon + 1, *end = plain + len;
  while (p < end && *p == '\0')
    p++;
  while (end > p && end[-1] == '\0')
    end--;
  size_t user_len = (size_t)(colon - plain), pass_len = (size_t)(end - p);
  if (!text_is_safe(plain, user_len) || !text_is_safe(p, pass_len)) {
    explicit_bzero(plain, len);
    free(plain);
    return sbd_error_set(err, SBD_EXIT_USAGE, 0,
                         "auth file %s: auths[\"%s\"].auth contains a line break or NUL", file,
                         key);
  }
  *user = xstrndup(plain, user_len);
  *password = xstrndup(p, pass_len);
  explicit_bzero(plain, len);
  free(plain);
  return 0;
}

/* Reads one auths entry.  Returns 1 when it holds a credential (filled into
 * out when out is not NULL), 0 when it is empty (Docker Desktop writes `{}`
 * entries next to a credsStore), -1 when docker would refuse it. */
static int entry_parse(const char *file, const char *key, json_t *entry,
                       struct sbd_credential *out, sbd_error_t *err)
{
  if (!json_is_object(entry))
    return sbd_error_set(err, SBD_EXIT_USAGE, 0, "auth file %s: auths[\"%s\"] is not an object",
                         file, key);
  const char *auth, *username, *password, *identity;
  if (entry_string(file, key, entry, "auth", &auth, err) < 0 ||
      entry_string(file, key, entry, "username", &username, err) < 0 ||
      entry_string(file, key, entry, "password", &password, err) < 0 ||
      entry_string(file, key, entry, "identitytoken", &identity, err) < 0)
    return -1;
  char *user = NULL, *secret = NULL;
  if (auth && *auth) {
    if (entry_decode_auth(file, key, auth, &user, &secret, err) < 0)
      return -1;
  } else if (username && *username) {
    user = xstrdup(username);
    secret = xstrdup(password ? password : "");
  }
  if (identity && *identity == '\0')
    identity = NULL;
  if (user == NULL && identity == NULL)
    return 0;
  if (out == NULL) {
    free(user);
    free_secret(secret);
    return 1;
  }
  out->username = user;
  out->secret = secret;
  out->identity_token = dup_or_null(identity);
  out->source = xstrdup(file);
  return 1;
}

static int config_check_helper(const char *file, const char *where, json_t *v, sbd_error_t *err)
{
  if (!json_is_string(v))
    return sbd_error_set(err, SBD_EXIT_USAGE, 0, "auth file %s: %s is not a string", file, where);
  const char *name = json_string_value(v);
  if (strchr(name, '/') != NULL || json_string_length(v) != strlen(name))
    return sbd_error_set(err, SBD_EXIT_USAGE, 0,
                         "auth file %s: %s \"%s\" is not a credential helper name", file, where,
                         name);
  return 0;
}

/* What docker would refuse (and helper names that are paths) is refused now,
 * not in the middle of a pull. */
static int config_check(const char *file, json_t *root, sbd_error_t *err)
{
  if (!json_is_object(root))
    return sbd_error_set(err, SBD_EXIT_USAGE, 0, "auth file %s is not a JSON object", file);
  json_t *auths = json_object_get(root, "auths");
  if (auths && !json_is_object(auths))
    return sbd_error_set(err, SBD_EXIT_USAGE, 0, "auth file %s: \"auths\" is not an object", file);
  const char *key;
  json_t *v;
  json_object_foreach(auths, key, v) {
    if (entry_parse(file, key, v, NULL, err) < 0)
      return -1;
  }
  json_t *helpers = json_object_get(root, "credHelpers");
  if (helpers && !json_is_object(helpers))
    return sbd_error_set(err, SBD_EXIT_USAGE, 0, "auth file %s: \"credHelpers\" is not an object",
                         file);
  json_object_foreach(helpers, key, v) {
    cleanup_free char *where = xasprintf("credHelpers[\"%s\"]", key);
    if (config_check_helper(file, where, v, err) < 0)
      return -1;
  }
  json_t *store = json_object_get(root, "credsStore");
  if (store && config_check_helper(file, "credsStore", store, err) < 0)
    return -1;
  return 0;
}

static bool text_is_blank(const char *s, size_t len)
{
  for (size_t i = 0; i < len; i++)
    if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
      return false;
  return true;
}

/* Reads and checks path.  A missing file is no credentials unless the user
 * named it with --auth-file. */
static int config_load(struct sbd_auth *a, const char *path, bool named, sbd_error_t *err)
{
  cleanup_free char *text = NULL;
  size_t len = 0;
  if (sbd_read_file(path, CONFIG_MAX, &text, &len) < 0) {
    if (!named && (errno == ENOENT || errno == ENOTDIR))
      return 0;
    if (named)
      return sbd_error_set(err, SBD_EXIT_USAGE, errno, "--auth-file %s: cannot read it", path);
    return sbd_error_set(err, SBD_EXIT_USAGE, errno, "cannot read the auth file %s", path);
  }
  a->config_path = xstrdup(path);
  /* docker takes an empty file for an empty config. */
  if (text_is_blank(text, len)) {
    a->config = json_object();
    return 0;
  }
  json_error_t jerr;
  json_t *root = json_loadb(text, len, JSON_ALLOW_NUL, &jerr);
  explicit_bzero(text, len);
  if (root == NULL)
    return sbd_error_set(err, SBD_EXIT_USAGE, 0,
                         "auth file %s is not valid JSON: %s (line %d, column %d)", path,
                         jerr.text, jerr.line, jerr.column);
  if (config_check(path, root, err) < 0) {
    json_decref(root);
    return -1;
  }
  a->config = root;
  return 0;
}

static char *home_dir(void)
{
  const char *home = getenv("HOME");
  if (home && *home)
    return xstrdup(home);
  struct passwd pw, *found = NULL;
  char buf[4096];
  if (getpwuid_r(getuid(), &pw, buf, sizeof(buf), &found) == 0 && found && found->pw_dir)
    return xstrdup(found->pw_dir);
  return NULL;
}

/* $REGISTRY_AUTH_FILE, else $DOCKER_CONFIG/config.json, else ~/.docker/config.json. */
static char *config_path_from_env(void)
{
  const char *v = getenv("REGISTRY_AUTH_FILE");
  if (v && *v)
    return xstrdup(v);
  v = getenv("DOCKER_CONFIG");
  if (v && *v)
    return xasprintf("%s/config.json", v);
  cleanup_free char *home = home_dir();
  return home ? xasprintf("%s/.docker/config.json", home) : NULL;
}

/* --- life cycle ------------------------------------------------------------------- */

int sbd_auth_new(const struct sbd_auth_options *opts, struct sbd_auth **out, sbd_error_t *err)
{
  static const struct sbd_auth_options none = {0};
  if (opts == NULL)
    opts = &none;
  *out = NULL;
  if (opts->username && opts->password == NULL)
    return sbd_error_set(err, SBD_EXIT_USAGE, 0, "--username needs a password");
  if (opts->password && opts->username == NULL)
    return sbd_error_set(err, SBD_EXIT_USAGE, 0, "a password was given without --username");
  if (opts->username && *opts->username == '\0')
    return sbd_error_set(err, SBD_EXIT_USAGE, 0, "--username is empty");
  if (opts->username && (!text_is_safe(opts->username, strlen(opts->username)) ||
                         !text_is_safe(opts->password, strlen(opts->password))))
    return sbd_error_set(err, SBD_EXIT_USAGE, 0,
                         "--username: the user name or password contains a line break");

  struct sbd_auth *a = xcalloc(1, sizeof(*a));
  pthread_mutex_init(&a->lock, NULL);
  pthread_cond_init(&a->resolved, NULL);
  pthread_mutex_init(&a->gcp_lock, NULL);
  a->username = dup_or_null(opts->username);
  a->password = dup_or_null(opts->password);
  a->path_env = dup_or_null(getenv("PATH"));
  const char *mh = getenv("GCE_METADATA_HOST");
  a->metadata_host = xstrdup(mh && *mh ? mh : METADATA_DEFAULT_HOST);
  const char *no_gcp = getenv("SBDISK_NO_GCP_AUTH");
  a->gcp = no_gcp == NULL || *no_gcp == '\0' || strcmp(no_gcp, "0") == 0;
  a->helper_timeout_ms = opts->child_timeout_ms > 0 ? opts->child_timeout_ms : HELPER_TIMEOUT_MS;
  a->gcloud_timeout_ms = opts->child_timeout_ms > 0 ? opts->child_timeout_ms : GCLOUD_TIMEOUT_MS;

  /* --username answers for every registry: the stored credentials are read
   * only when --auth-file names them explicitly (so its errors still show). */
  int ret = 0;
  if (opts->auth_file) {
    ret = config_load(a, opts->auth_file, true, err);
  } else if (a->username == NULL) {
    cleanup_free char *path = config_path_from_env();
    if (path)
      ret = config_load(a, path, false, err);
  }
  if (ret < 0) {
    sbd_auth_free(a);
    return -1;
  }
  *out = a;
  return 0;
}

void sbd_auth_free(struct sbd_auth *a)
{
  if (a == NULL)
    return;
  while (a->memo) {
    struct auth_memo *m = a->memo;
    a->memo = m->next;
    free(m->domain);
    answer_free(&m->answer);
    free(m);
  }
  answer_free(&a->gcp_answer);
  json_decref(a->config);
  free(a->username);
  free_secret(a->password);
  free(a->config_path);
  free(a->path_env);
  free(a->metadata_host);
  pthread_mutex_destroy(&a->lock);
  pthread_cond_destroy(&a->resolved);
  pthread_mutex_destroy(&a->gcp_lock);
  free(a);
}

/* --- running a helper --------------------------------------------------------------- */

/* name's full path in the first absolute PATH directory that has it as an
 * executable file.  Relative entries are skipped, as Go's exec.LookPath does:
 * a credential helper must not come from the current directory. */
static char *path_find(const char *path_env, const char *name)
{
  if (path_env == NULL)
    return NULL;
  const char *p = path_env;
  for (;;) {
    size_t n = strcspn(p, ":");
    if (n > 0 && p[0] == '/') {
      char *candidate = xasprintf("%.*s/%s", (int)n, p, name);
      struct stat st;
      if (stat(candidate, &st) == 0 && S_ISREG(st.st_mode) && access(candidate, X_OK) == 0)
        return candidate;
      free(candidate);
    }
    if (p[n] == '\0')
      return NULL;
    p += n + 1;
  }
}

struct child_result {
  struct sbd_buf out;
  struct sbd_buf err;
  int status;     /* waitpid's */
  bool timed_out; /* killed at the deadline */
  bool overflow;  /* killed for writing more than CHILD_OUTPUT_MAX */
  bool lost;      /* could not be waited for */
};

static void child_result_free(struct child_result *c)
{
  if (c->out.data)
    explicit_bzero(c->out.data, c->out.len);
  sbd_buf_free(&c->out);
  sbd_buf_free(&c->err);
}

static int pipe_cloexec(int *read_end, int *write_end)
{
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0)
    return -1;
  *read_end = p[0];
  *write_end = p[1];
  return 0;
}

/* Reads stdout and stderr to their end or to the deadline. */
static void child_read(int out_fd, int err_fd, int64_t deadline, struct child_result *c)
{
  struct pollfd fds[2] = {{.fd = out_fd, .events = POLLIN}, {.fd = err_fd, .events = POLLIN}};
  struct sbd_buf *bufs[2] = {&c->out, &c->err};
  int open_fds = 2;
  while (open_fds > 0) {
    int64_t left = deadline - now_ms();
    if (left <= 0) {
      c->timed_out = true;
      return;
    }
    if (poll(fds, 2, (int)left) < 0) {
      if (errno == EINTR)
        continue;
      c->lost = true;
      return;
    }
    for (int i = 0; i < 2; i++) {
      if (fds[i].fd < 0 || fds[i].revents == 0)
        continue;
      char chunk[4096];
      ssize_t n = read(fds[i].fd, chunk, sizeof(chunk));
      if (n < 0 && (errno == EINTR || errno == EAGAIN))
        continue;
      if (n <= 0) {
        fds[i].fd = -1; /* poll ignores it from now on */
        open_fds--;
        continue;
      }
      if (bufs[i]->len + (size_t)n > CHILD_OUTPUT_MAX) {
        c->overflow = true;
        return;
      }
      sbd_buf_append(bufs[i], chunk, (size_t)n);
    }
  }
}

/* Reaps pid: waits until the deadline, then kills its process group. */
static void child_reap(pid_t pid, int64_t deadline, struct child_result *c)
{
  while (!c->timed_out && !c->overflow && !c->lost) {
    pid_t w = waitpid(pid, &c->status, WNOHANG);
    if (w == pid)
      return;
    if (w < 0 && errno != EINTR) {
      c->lost = true;
      return;
    }
    if (now_ms() >= deadline) {
      c->timed_out = true;
      break;
    }
    struct timespec tick = {0, 10 * 1000 * 1000};
    nanosleep(&tick, NULL);
  }
  kill(-pid, SIGKILL);
  kill(pid, SIGKILL);
  while (waitpid(pid, &c->status, 0) < 0) {
    if (errno != EINTR) {
      c->lost = true;
      return;
    }
  }
}

/* Runs path with argv, no shell, input on its stdin, and collects its output
 * within timeout_ms.  Returns -1 with errno when it cannot be started. */
static int child_run(const char *path, char *const argv[], const char *input, int timeout_ms,
                     struct child_result *c)
{
  memset(c, 0, sizeof(*c));
  cleanup_close int in_r = -1;
  cleanup_close int in_w = -1;
  cleanup_close int out_r = -1;
  cleanup_close int out_w = -1;
  cleanup_close int err_r = -1;
  cleanup_close int err_w = -1;
  if (pipe_cloexec(&in_r, &in_w) < 0 || pipe_cloexec(&out_r, &out_w) < 0 ||
      pipe_cloexec(&err_r, &err_w) < 0)
    return -1;
  /* The input is a host name, far smaller than a pipe's buffer: written
   * before the child exists, it cannot block, nor raise SIGPIPE. */
  if (input && sbd_write_all(in_w, input, strlen(input)) < 0)
    return -1;
  close(steal_fd(&in_w));

  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in_r, 0);
  posix_spawn_file_actions_adddup2(&fa, out_w, 1);
  posix_spawn_file_actions_adddup2(&fa, err_w, 2);
  posix_spawn_file_actions_addclosefrom_np(&fa, 3);
  posix_spawnattr_init(&attr);
  /* Its own process group, so that a timeout kills what it started too; an
   * empty signal mask and SIGPIPE's default action whatever ours are. */
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                      POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  pid_t pid;
  int rc = posix_spawn(&pid, path, &fa, &attr, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    errno = rc;
    return -1;
  }
  close(steal_fd(&in_r));
  close(steal_fd(&out_w));
  close(steal_fd(&err_w));
  int64_t deadline = now_ms() + timeout_ms;
  child_read(out_r, err_r, deadline, c);
  child_reap(pid, deadline, c);
  return 0;
}

/* The first non-empty line of text, made printable and short, or NULL. */
static char *first_line(const struct sbd_buf *b)
{
  const char *p = b->data, *end = b->data + b->len;
  if (p == NULL)
    return NULL;
  while (p < end && (*p == '\n' || *p == '\r' || *p == ' ' || *p == '\t'))
    p++;
  const char *eol = p;
  while (eol < end && *eol != '\n' && *eol != '\r')
    eol++;
  while (eol > p && (eol[-1] == ' ' || eol[-1] == '\t'))
    eol--;
  if (eol == p)
    return NULL;
  size_t n = (size_t)(eol - p);
  if (n > MESSAGE_LINE_MAX)
    n = MESSAGE_LINE_MAX;
  char *line = xstrndup(p, n);
  for (char *q = line; *q; q++)
    if ((unsigned char)*q < 0x20 || *q == 0x7f)
      *q = '?';
  return line;
}

/* What the helper said about its failure.  Helpers print their errors on
 * stdout (docker-credential-helpers does), some on stderr; a line that looks
 * like JSON is withheld: it could be credentials. */
static char *child_failure_line(const struct child_result *c)
{
  char *line = first_line(&c->out);
  if (line && line[0] != '{' && line[0] != '[')
    return line;
  free_secret(line);
  line = first_line(&c->err);
  if (line && line[0] != '{' && line[0] != '[')
    return line;
  free_secret(line);
  return NULL;
}

static char *child_status_text(const struct child_result *c)
{
  if (WIFEXITED(c->status))
    return xasprintf("exit status %d", WEXITSTATUS(c->status));
  if (WIFSIGNALED(c->status))
    return xasprintf("killed by signal %d", WTERMSIG(c->status));
  return xstrdup("unknown status");
}

static bool child_said_not_found(const struct child_result *c)
{
  return (c->out.data && strcasestr(c->out.data, "credentials not found")) ||
         (c->err.data && strcasestr(c->err.data, "credentials not found"));
}

/* Turns a helper's JSON answer into a credential. */
static int helper_parse(const char *domain, const char *prog, const struct sbd_buf *output,
                        struct sbd_credential *out, sbd_error_t *err)
{
  json_t *root = json_loadb(output->data ? output->data : "", output->len, JSON_ALLOW_NUL, NULL);
  json_t *user = json_object_get(root, "Username");
  json_t *secret = json_object_get(root, "Secret");
  int ret;
  if (!json_is_object(root) || !json_is_string(secret) || (user && !json_is_string(user)))
    ret = sbd_error_set(err, SBD_EXIT_REGISTRY, 0,
                        "registry %s: credential helper %s answered something other than "
                        "{\"Username\", \"Secret\"} JSON",
                        domain, prog);
  else if (!text_is_safe(json_string_value(secret), json_string_length(secret)) ||
           (user && !text_is_safe(json_string_value(user), json_string_length(user))))
    ret = sbd_error_set(err, SBD_EXIT_REGISTRY, 0,
                        "registry %s: credential helper %s answered a user name or secret "
                        "containing a line break or NUL, which sbdisk refuses",
                        domain, prog);
  else if (json_string_length(secret) == 0)
    ret = 0;
  else {
    const char *u = user ? json_string_value(user) : "";
    if (strcmp(u, "<token>") == 0) {
      out->identity_token = xstrdup(json_string_value(secret));
    } else {
      out->username = *u ? xstrdup(u) : NULL;
      out->secret = xstrdup(json_string_value(secret));
    }
    out->source = xasprintf("credential helper %s", prog);
    ret = 1;
  }
  json_decref(root);
  return ret;
}

/* `docker-credential-NAME get` with the server address on stdin.  Returns 1
 * with a credential, 0 when the helper has none, -1 on error. */
static int helper_get(struct sbd_auth *a, const char *name, const char *domain,
                      struct sbd_credential *out, sbd_error_t *err)
{
  cleanup_free char *prog = xasprintf("docker-credential-%s", name);
  cleanup_free char *path = path_find(a->path_env, prog);
  if (path == NULL)
    return sbd_error_set(err, SBD_EXIT_REGISTRY, 0,
                         "registry %s: credential helper %s not found on PATH (configured in %s)",
                         domain, prog, a->config_path);
  const char *server = domain_is_hub(domain) ? HUB_SERVER : domain;
  char *argv[] = {prog, (char *)"get", NULL};
  struct child_result c;
  if (child_run(path, argv, server, a->helper_timeout_ms, &c) < 0)
    return sbd_error_set(err, SBD_EXIT_REGISTRY, errno,
                         "registry %s: cannot run credential helper %s", domain, path);
  int ret;
  if (c.timed_out)
    ret = sbd_error_set(err, SBD_EXIT_REGISTRY, 0,
                        "registry %s: credential helper %s did not answer within %.1f s and was "
                        "killed (configured in %s)",
                        domain, prog, a->helper_timeout_ms / 1000.0, a->config_path);
  else if (c.overflow)
    ret = sbd_error_set(err, SBD_EXIT_REGISTRY, 0,
                        "registry %s: credential helper %s wrote more than %d KiB and was killed",
                        domain, prog, CHILD_OUTPUT_MAX >> 10);
  else if (c.lost)
    ret = sbd_error_set(err, SBD_EXIT_REGISTRY, 0,
                        "registry %s: credential helper %s could not be waited for", domain, prog);
  else if (!WIFEXITED(c.status) || WEXITSTATUS(c.status) != 0) {
    if (child_said_not_found(&c)) {
      ret = 0;
    } else {
      cleanup_free char *status = child_status_text(&c);
      cleanup_free char *line = child_failure_line(&c);
      ret = sbd_error_set(err, SBD_EXIT_REGISTRY, 0,
                          "registry %s: credential helper %s failed (%s)%s%s", domain, prog,
                          status, line ? ": " : "", line ? line : "");
    }
  } else {
    ret = helper_parse(domain, prog, &c.out, out, err);
  }
  child_result_free(&c);
  return ret;
}

/* --- Google: the metadata server, then gcloud ----------------------------------------- */

static int gcp_token_credential(const char *domain, const char *source, const char *token,
                                size_t len, struct sbd_credential *out, sbd_error_t *err)
{
  if (!text_is_safe(token, len))
    return sbd_error_set(err, SBD_EXIT_REGISTRY, 0,
                         "registry %s: %s gave an access token containing a line break or NUL, "
                         "which sbdisk refuses",
                         domain, source);
  out->username = xstrdup(GCP_USERNAME);
  out->secret = xstrndup(token, len);
  out->source = xstrdup(source);
  return 1;
}

struct capped_body {
  struct sbd_buf buf;
  bool overflow;
};

static size_t on_metadata_body(char *data, size_t size, size_t nitems, void *opaque)
{
  struct capped_body *b = opaque;
  size_t len = size * nitems;
  if (b->buf.len + len > METADATA_RESPONSE_MAX) {
    b->overflow = true;
    return 0;
  }
  sbd_buf_append(&b->buf, data, len);
  return len;
}

/* The service account's token from the metadata server.  Off GCE there is
 * none, and any failure is only a reason to try gcloud: returns 0 then. */
static int gcp_metadata(struct sbd_auth *a, const char *domain, struct sbd_credential *out,
                        sbd_error_t *err)
{
  CURL *curl = curl_easy_init();
  if (curl == NULL)
    return 0;
  cleanup_free char *url = xasprintf(
      "http://%s/computeMetadata/v1/instance/service-accounts/default/token", a->metadata_host);
  struct curl_slist *headers = curl_slist_append(NULL, "Metadata-Flavor: Google");
  struct capped_body body = {0};
  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http");
  curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, METADATA_CONNECT_TIMEOUT_MS);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, METADATA_TIMEOUT_MS);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "sbdisk/" SBD_VERSION);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_metadata_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
  CURLcode rc = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(curl);
  curl_slist_free_all(headers);

  int ret = 0;
  if (rc == CURLE_OK && status == 200) {
    json_t *root =
        json_loadb(body.buf.data ? body.buf.data : "", body.buf.len, JSON_ALLOW_NUL, NULL);
    json_t *token = json_object_get(root, "access_token");
    if (json_is_string(token) && json_string_length(token) > 0)
      ret = gcp_token_credential(domain, SOURCE_METADATA, json_string_value(token),
                                 json_string_length(token), out, err);
    json_decref(root);
  }
  if (body.buf.data)
    explicit_bzero(body.buf.data, body.buf.len);
  sbd_buf_free(&body.buf);
  return ret;
}

/* `gcloud auth print-access-token`: the first line of its output, trimmed.
 * gcloud missing, failing or slow means anonymous (0), not an error. */
static int gcp_gcloud(struct sbd_auth *a, const char *domain, struct sbd_credential *out,
                      sbd_error_t *err)
{
  cleanup_free char *path = path_find(a->path_env, "gcloud");
  if (path == NULL)
    return 0;
  char *argv[] = {(char *)"gcloud", (char *)"auth", (char *)"print-access-token", NULL};
  struct child_result c;
  if (child_run(path, argv, NULL, a->gcloud_timeout_ms, &c) < 0)
    return 0;
  int ret = 0;
  if (!c.timed_out && !c.overflow && !c.lost && WIFEXITED(c.status) &&
      WEXITSTATUS(c.status) == 0 && c.out.len > 0) {
    const char *p = c.out.data, *end = c.out.data + c.out.len;
    while (p < end && (*p == ' ' || *p == '\t'))
      p++;
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    if (eol == NULL)
      eol = end;
    while (eol > p && (eol[-1] == ' ' || eol[-1] == '\t' || eol[-1] == '\r'))
      eol--;
    if (eol > p)
      ret = gcp_token_credential(domain, SOURCE_GCLOUD, p, (size_t)(eol - p), out, err);
  }
  child_result_free(&c);
  return ret;
}

/* One answer for every Google domain, fetched once. */
static int gcp_lookup(struct sbd_auth *a, const char *domain, struct sbd_credential *out,
                      sbd_error_t *err)
{
  pthread_mutex_lock(&a->gcp_lock);
  if (!a->gcp_done) {
    struct sbd_credential cred = {0};
    cleanup_error sbd_error_t e = NULL;
    int r = gcp_metadata(a, domain, &cred, &e);
    if (r == 0)
      r = gcp_gcloud(a, domain, &cred, &e);
    answer_store(&a->gcp_answer, r, &cred, e);
    a->gcp_done = true;
  }
  int r = answer_give(&a->gcp_answer, out, err);
  pthread_mutex_unlock(&a->gcp_lock);
  return r;
}

/* --- lookup -------------------------------------------------------------------------- */

/* Step 2: the config file.  credHelpers, else auths, else credsStore. */
static int config_lookup(struct sbd_auth *a, const char *domain, struct sbd_credential *out,
                         sbd_error_t *err)
{
  const char *key = NULL;
  json_t *helper = config_find(json_object_get(a->config, "credHelpers"), domain, &key);
  if (helper && json_string_length(helper) > 0)
    return helper_get(a, json_string_value(helper), domain, out, err);
  json_t *entry = config_find(json_object_get(a->config, "auths"), domain, &key);
  if (entry) {
    int r = entry_parse(a->config_path, key, entry, out, err);
    if (r != 0)
      return r;
  }
  json_t *store = json_object_get(a->config, "credsStore");
  if (json_is_string(store) && json_string_length(store) > 0)
    return helper_get(a, json_string_value(store), domain, out, err);
  return 0;
}

static int auth_resolve(struct sbd_auth *a, const char *domain, struct sbd_credential *out,
                        sbd_error_t *err)
{
  if (a->config) {
    int r = config_lookup(a, domain, out, err);
    if (r != 0)
      return r;
  }
  if (a->gcp && domain_is_google(domain))
    return gcp_lookup(a, domain, out, err);
  return 0;
}

int sbd_auth_lookup(struct sbd_auth *a, const char *domain, struct sbd_credential *out,
                    sbd_error_t *err)
{
  memset(out, 0, sizeof(*out));
  if (a->username) {
    out->username = xstrdup(a->username);
    out->secret = xstrdup(a->password);
    out->source = xstrdup("--username");
    return 1;
  }
  pthread_mutex_lock(&a->lock);
  struct auth_memo *m = a->memo;
  while (m && strcasecmp(m->domain, domain) != 0)
    m = m->next;
  if (m == NULL) {
    /* First to ask: resolve without the lock, so that other domains need
     * not wait for this one's helper. */
    m = xcalloc(1, sizeof(*m));
    m->domain = xstrdup(domain);
    m->next = a->memo;
    a->memo = m;
    pthread_mutex_unlock(&a->lock);
    struct sbd_credential cred = {0};
    cleanup_error sbd_error_t e = NULL;
    int r = auth_resolve(a, domain, &cred, &e);
    pthread_mutex_lock(&a->lock);
    answer_store(&m->answer, r, &cred, e);
    m->done = true;
    pthread_cond_broadcast(&a->resolved);
  }
  while (!m->done)
    pthread_cond_wait(&a->resolved, &a->lock);
  int r = answer_give(&m->answer, out, err);
  pthread_mutex_unlock(&a->lock);
  return r;
}

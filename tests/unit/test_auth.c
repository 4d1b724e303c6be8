/* Where credentials come from: real config files in a scratch directory, real
 * credential helpers and a real `gcloud` (small shell scripts on PATH), and a
 * real HTTP exchange with a one-shot metadata server on a loopback port.
 * Each test runs in its own process (Check forks), with HOME, PATH and the
 * other variables pointed at the scratch directory; teardown restores them. */
#include <arpa/inet.h>
#include <check.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/auth.h"
#include "lib/util.h"

static char scratch[256];
static char *bindir;
static char *homedir;

static const char *const env_names[] = {"HOME",          "PATH",
                                        "DOCKER_CONFIG", "REGISTRY_AUTH_FILE",
                                        "SBDISK_NO_GCP_AUTH", "GCE_METADATA_HOST",
                                        "http_proxy",    "HTTP_PROXY"};
#define N_ENV (sizeof(env_names) / sizeof(env_names[0]))
static char *env_saved[N_ENV];

static void setup(void)
{
  for (size_t i = 0; i < N_ENV; i++)
    env_saved[i] = getenv(env_names[i]) ? xstrdup(getenv(env_names[i])) : NULL;
  snprintf(scratch, sizeof(scratch), "%s/sbdisk-auth-test.XXXXXX",
           getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  ck_assert_ptr_nonnull(mkdtemp(scratch));
  bindir = xasprintf("%s/bin", scratch);
  homedir = xasprintf("%s/home", scratch);
  ck_assert_int_eq(mkdir(bindir, 0755), 0);
  ck_assert_int_eq(mkdir(homedir, 0755), 0);
  cleanup_free char *path = xasprintf("%s:/usr/bin:/bin", bindir);
  setenv("HOME", homedir, 1);
  setenv("PATH", path, 1);
  unsetenv("DOCKER_CONFIG");
  unsetenv("REGISTRY_AUTH_FILE");
  unsetenv("GCE_METADATA_HOST");
  /* Most tests are about the config file; the GCP ones turn this back off. */
  setenv("SBDISK_NO_GCP_AUTH", "1", 1);
  curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static void teardown(void)
{
  curl_global_cleanup();
  for (size_t i = 0; i < N_ENV; i++) {
    if (env_saved[i])
      setenv(env_names[i], env_saved[i], 1);
    else
      unsetenv(env_names[i]);
    free(env_saved[i]);
    env_saved[i] = NULL;
  }
  nftw(scratch, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
  free(bindir);
  free(homedir);
}

/* --- files, scripts ----------------------------------------------------------------- */

static char *scratch_path(const char *name)
{
  return xasprintf("%s/%s", scratch, name);
}

static void write_text(const char *path, const char *text)
{
  FILE *f = fopen(path, "w");
  ck_assert_msg(f != NULL, "cannot write %s", path);
  fputs(text, f);
  fclose(f);
}

/* The text of path, or NULL when it does not exist. */
static char *read_text(const char *path)
{
  char *text = NULL;
  if (sbd_read_file(path, 1 << 20, &text, NULL) < 0)
    return NULL;
  return text;
}

static int count_lines(const char *path)
{
  cleanup_free char *text = read_text(path);
  int n = 0;
  for (const char *p = text; p && *p; p++)
    n += *p == '\n';
  return n;
}

/* ~/.docker/config.json, the default place. */
static char *write_home_config(const char *json)
{
  cleanup_free char *dir = xasprintf("%s/.docker", homedir);
  mkdir(dir, 0700);
  char *path = xasprintf("%s/config.json", dir);
  write_text(path, json);
  return path;
}

static void put_home_config(const char *json)
{
  free(write_home_config(json));
}

/* An executable /bin/sh script bin/NAME; body may use %1$s for the scratch dir. */
static void write_script(const char *name, const char *body_fmt)
{
  cleanup_free char *path = xasprintf("%s/%s", bindir, name);
  cleanup_free char *body = xasprintf(body_fmt, scratch);
  cleanup_free char *text = xasprintf("#!/bin/sh\n%s\n", body);
  write_text(path, text);
  ck_assert_int_eq(chmod(path, 0755), 0);
}

/* A credential helper that logs each run to SCRATCH/NAME.runs and answers user/secret. */
static void write_helper(const char *name, const char *user, const char *secret)
{
  cleanup_free char *script_name = xasprintf("docker-credential-%s", name);
  cleanup_free char *body = xasprintf("echo run >> %%1$s/%s.runs\n"
                                      "printf '{\"ServerURL\":\"x\",\"Username\":\"%s\","
                                      "\"Secret\":\"%s\"}\\n'",
                                      name, user, secret);
  write_script(script_name, body);
}

static int helper_runs(const char *name)
{
  cleanup_free char *file = xasprintf("%s/%s.runs", scratch, name);
  return count_lines(file);
}

static char *b64(const char *s)
{
  static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t n = strlen(s);
  struct sbd_buf b = {0};
  for (size_t i = 0; i < n; i += 3) {
    unsigned v = (unsigned char)s[i] << 16;
    if (i + 1 < n)
      v |= (unsigned char)s[i + 1] << 8;
    if (i + 2 < n)
      v |= (unsigned char)s[i + 2];
    char q[4] = {tbl[(v >> 18) & 63], tbl[(v >> 12) & 63], i + 1 < n ? tbl[(v >> 6) & 63] : '=',
                 i + 2 < n ? tbl[v & 63] : '='};
    sbd_buf_append(&b, q, 4);
  }
  return sbd_buf_cstr(&b);
}

static int open_fd_count(void)
{
  DIR *d = opendir("/proc/self/fd");
  ck_assert_ptr_nonnull(d);
  int n = 0;
  while (readdir(d) != NULL)
    n++;
  closedir(d);
  return n;
}

/* No child left behind, reaped or not. */
static void assert_no_children(void)
{
  errno = 0;
  ck_assert_int_eq(waitpid(-1, NULL, WNOHANG), -1);
  ck_assert_int_eq(errno, ECHILD);
}

/* --- sbd_auth helpers --------------------------------------------------------------- */

static struct sbd_auth *auth_new(const struct sbd_auth_options *opts)
{
  struct sbd_auth *a = NULL;
  cleanup_error sbd_error_t err = NULL;
  int r = sbd_auth_new(opts, &a, &err);
  ck_assert_msg(r == 0, "sbd_auth_new: %s", err ? err->msg : "?");
  return a;
}

/* sbd_auth_new must fail with SBD_EXIT_USAGE; returns the message. */
static char *auth_new_fails(const struct sbd_auth_options *opts)
{
  struct sbd_auth *a = NULL;
  cleanup_error sbd_error_t err = NULL;
  ck_assert_int_eq(sbd_auth_new(opts, &a, &err), -1);
  ck_assert_ptr_null(a);
  ck_assert_ptr_nonnull(err);
  ck_assert_int_eq(err->exit_code, SBD_EXIT_USAGE);
  return xstrdup(err->msg);
}

/* Expects a credential from source with this user name and secret (NULL: none). */
static void expect_found(struct sbd_auth *a, const char *domain, const char *user,
                         const char *secret, const char *source)
{
  struct sbd_credential c;
  cleanup_error sbd_error_t err = NULL;
  int r = sbd_auth_lookup(a, domain, &c, &err);
  ck_assert_msg(r == 1, "%s: expected a credential, got %d (%s)", domain, r,
                err ? err->msg : "no error");
  ck_assert_pstr_eq(c.username, user);
  ck_assert_pstr_eq(c.secret, secret);
  ck_assert_pstr_eq(c.source, source);
  sbd_credential_free(&c);
}

static void expect_none(struct sbd_auth *a, const char *domain)
{
  struct sbd_credential c;
  cleanup_error sbd_error_t err = NULL;
  int r = sbd_auth_lookup(a, domain, &c, &err);
  ck_assert_msg(r == 0, "%s: expected no credential, got %d (%s)", domain, r,
                err ? err->msg : c.source);
  ck_assert_ptr_null(err);
  ck_assert_ptr_null(c.username);
  ck_assert_ptr_null(c.secret);
  ck_assert_ptr_null(c.identity_token);
}

/* Expects an SBD_EXIT_REGISTRY error; returns its message. */
static char *expect_error(struct sbd_auth *a, const char *domain)
{
  struct sbd_credential c;
  cleanup_error sbd_error_t err = NULL;
  int r = sbd_auth_lookup(a, domain, &c, &err);
  ck_assert_msg(r == -1, "%s: expected an error, got %d", domain, r);
  ck_assert_ptr_nonnull(err);
  ck_assert_int_eq(err->exit_code, SBD_EXIT_REGISTRY);
  ck_assert_ptr_null(c.secret);
  return xstrdup(err->msg);
}

#define ck_assert_contains(haystack, needle)                                                     \
  ck_assert_msg(strstr((haystack), (needle)) != NULL, "\"%s\" does not contain \"%s\"",          \
                (haystack), (needle))
#define ck_assert_lacks(haystack, needle)                                                        \
  ck_assert_msg(strstr((haystack), (needle)) == NULL, "\"%s\" contains \"%s\"", (haystack),     \
                (needle))

/* --- --username ------------------------------------------------------------------------ */

START_TEST(test_username_wins)
{
  cleanup_free char *cfg = write_home_config(
      "{\"auths\": {\"gcr.io\": {\"username\": \"file-user\", \"password\": \"file-pw\"}}}");
  struct sbd_auth_options opts = {.username = "cli-user", .password = "cli-pw"};
  struct sbd_auth *a = auth_new(&opts);
  expect_found(a, "gcr.io", "cli-user", "cli-pw", "--username");
  expect_found(a, "localhost:5000", "cli-user", "cli-pw", "--username");
  sbd_auth_free(a);

  /* Without it, the file answers: the entry above was there to be overridden. */
  a = auth_new(NULL);
  expect_found(a, "gcr.io", "file-user", "file-pw", cfg);
  sbd_auth_free(a);
}
END_TEST

START_TEST(test_username_needs_password)
{
  struct sbd_auth_options no_password = {.username = "u"};
  cleanup_free char *m1 = auth_new_fails(&no_password);
  ck_assert_contains(m1, "--username");
  struct sbd_auth_options no_user = {.password = "p"};
  cleanup_free char *m2 = auth_new_fails(&no_user);
  ck_assert_contains(m2, "--username");
  struct sbd_auth_options newline = {.username = "u", .password = "secret\n"};
  cleanup_free char *m3 = auth_new_fails(&newline);
  ck_assert_contains(m3, "line break");
  ck_assert_lacks(m3, "secret");
}
END_TEST

/* --- which file ---------------------------------------------------------------------- */

static char *write_named_config(const char *path, const char *user)
{
  cleanup_free char *json = xasprintf(
      "{\"auths\": {\"reg.example\": {\"username\": \"%s\", \"password\": \"pw\"}}}", user);
  write_text(path, json);
  return xstrdup(path);
}

START_TEST(test_config_precedence)
{
  cleanup_free char *flag = scratch_path("flag.json");
  cleanup_free char *raf = scratch_path("registry-auth.json");
  cleanup_free char *dcdir = scratch_path("docker-config");
  ck_assert_int_eq(mkdir(dcdir, 0700), 0);
  cleanup_free char *dc = xasprintf("%s/config.json", dcdir);
  free(write_named_config(flag, "from-flag"));
  free(write_named_config(raf, "from-registry-auth-file"));
  free(write_named_config(dc, "from-docker-config"));
  cleanup_free char *home = write_home_config(
      "{\"auths\": {\"reg.example\": {\"username\": \"from-home\", \"password\": \"pw\"}}}");
  setenv("REGISTRY_AUTH_FILE", raf, 1);
  setenv("DOCKER_CONFIG", dcdir, 1);

  struct sbd_auth_options opts = {.auth_file = flag};
  struct sbd_auth *a = auth_new(&opts);
  expect_found(a, "reg.example", "from-flag", "pw", flag);
  sbd_auth_free(a);

  a = auth_new(NULL);
  expect_found(a, "reg.example", "from-registry-auth-file", "pw", raf);
  sbd_auth_free(a);

  unsetenv("REGISTRY_AUTH_FILE");
  a = auth_new(NULL);
  expect_found(a, "reg.example", "from-docker-config", "pw", dc);
  sbd_auth_free(a);

  unsetenv("DOCKER_CONFIG");
  a = auth_new(NULL);
  expect_found(a, "reg.example", "from-home", "pw", home);
  sbd_auth_free(a);
}
END_TEST

/* --- auths entries -------------------------------------------------------------------- */

START_TEST(test_base64_auth)
{
  cleanup_free char *alice = b64("alice:pa:ss");
  cleanup_free char *bob = b64("bob:x"); /* "Ym9iOng=": one padding character */
  size_t n = strlen(bob);
  ck_assert_int_eq(bob[n - 1], '=');
  bob[n - 1] = '\0'; /* Go accepts only padded base64, but unpadded is unambiguous */
  cleanup_free char *json = xasprintf("{\"auths\": {\"reg.example\": {\"auth\": \"%s\"},"
                                      " \"other.example\": {\"auth\": \"%s\"}}}",
                                      alice, bob);
  cleanup_free char *cfg = write_home_config(json);
  struct sbd_auth *a = auth_new(NULL);
  expect_found(a, "reg.example", "alice", "pa:ss", cfg); /* split at the first ':' */
  expect_found(a, "other.example", "bob", "x", cfg);
  expect_none(a, "third.example");
  sbd_auth_free(a);
}
END_TEST

START_TEST(test_username_password_fields)
{
  cleanup_free char *cfg = write_home_config(
      "{\"auths\": {\"reg.example\": {\"username\": \"carol\", \"password\": \"c-pw\","
      " \"email\": \"ignored@example\"}}}");
  struct sbd_auth *a = auth_new(NULL);
  expect_found(a, "reg.example", "carol", "c-pw", cfg);
  sbd_auth_free(a);
}
END_TEST

START_TEST(test_identitytoken)
{
  cleanup_free char *auth = b64("dave:");
  cleanup_free char *json =
      xasprintf("{\"auths\": {\"only-token.example\": {\"identitytoken\": \"refresh-1\"},"
                " \"both.example\": {\"auth\": \"%s\", \"identitytoken\": \"refresh-2\"}}}",
                auth);
  cleanup_free char *cfg = write_home_config(json);
  struct sbd_auth *a = auth_new(NULL);
  struct sbd_credential c;
  cleanup_error sbd_error_t err = NULL;
  ck_assert_int_eq(sbd_auth_lookup(a, "only-token.example", &c, &err), 1);
  ck_assert_ptr_null(c.username);
  ck_assert_ptr_null(c.secret);
  ck_assert_str_eq(c.identity_token, "refresh-1");
  ck_assert_str_eq(c.source, cfg);
  sbd_credential_free(&c);
  ck_assert_int_eq(sbd_auth_lookup(a, "both.example", &c, &err), 1);
  ck_assert_str_eq(c.username, "dave");
  ck_assert_str_eq(c.secret, "");
  ck_assert_str_eq(c.identity_token, "refresh-2");
  sbd_credential_free(&c);
  sbd_auth_free(a);
}
END_TEST

/* Every key docker and its friends write for Docker Hub answers for docker.io. */
static const char *const hub_keys[] = {"https://index.docker.io/v1/", "index.docker.io",
                                       "docker.io", "registry-1.docker.io"};

START_TEST(test_docker_hub_keys)
{
  cleanup_free char *json = xasprintf(
      "{\"auths\": {\"%s\": {\"username\": \"hub-user\", \"password\": \"hub-pw\"}}}",
      hub_keys[_i]);
  cleanup_free char *cfg = write_home_config(json);
  struct sbd_auth *a = auth_new(NULL);
  expect_found(a, "docker.io", "hub-user", "hub-pw", cfg);
  expect_none(a, "ghcr.io");
  sbd_auth_free(a);
}
END_TEST

START_TEST(test_exact_key_preferred)
{
  /* The normalised keys come first in the file, so first-found would pick them. */
  cleanup_free char *cfg = write_home_config(
      "{\"auths\": {"
      "\"docker.io\": {\"username\": \"hub-short\", \"password\": \"p\"},"
      "\"https://index.docker.io/v1/\": {\"username\": \"hub-canonical\", \"password\": \"p\"},"
      "\"https://gcr.io/v2/\": {\"username\": \"gcr-normalised\", \"password\": \"p\"},"
      "\"gcr.io\": {\"username\": \"gcr-exact\", \"password\": \"p\"}}}");
  struct sbd_auth *a = auth_new(NULL);
  expect_found(a, "docker.io", "hub-canonical", "p", cfg);
  expect_found(a, "gcr.io", "gcr-exact", "p", cfg);
  sbd_auth_free(a);
}
END_TEST

START_TEST(test_key_normalisation)
{
  cleanup_free char *cfg = write_home_config(
      "{\"auths\": {"
      "\"https://evil.example/registry.example.com\": {\"username\": \"evil\", \"password\": \"p\"},"
      "\"registry.example.com.evil\": {\"username\": \"evil2\", \"password\": \"p\"},"
      "\"https://registry.example.com/v2/\": {\"username\": \"stripped\", \"password\": \"p\"},"
      "\"http://localhost:5000\": {\"username\": \"local\", \"password\": \"p\"},"
      "\"registry.example.com:5000\": {\"username\": \"ported\", \"password\": \"p\"}}}");
  struct sbd_auth *a = auth_new(NULL);
  expect_found(a, "registry.example.com", "stripped", "p", cfg);
  expect_found(a, "localhost:5000", "local", "p", cfg);
  expect_found(a, "registry.example.com:5000", "ported", "p", cfg);
  expect_none(a, "example.com");
  expect_none(a, "localhost");
  sbd_auth_free(a);
}
END_TEST

/* --- credential helpers -------------------------------------------------------------- */

START_TEST(test_cred_helpers_over_auths)
{
  write_helper("xyz", "helper-user", "helper-secret");
  cleanup_free char *cfg = write_home_config(
      "{\"auths\": {\"gcr.io\": {\"username\": \"file-user\", \"password\": \"p\"},"
      "             \"quay.io\": {\"username\": \"quay-user\", \"password\": \"q\"}},"
      " \"credHelpers\": {\"gcr.io\": \"xyz\"}}");
  struct sbd_auth *a = auth_new(NULL);
  expect_found(a, "gcr.io", "helper-user", "helper-secret", "credential helper docker-credential-xyz");
  expect_found(a, "quay.io", "quay-user", "q", cfg);
  ck_assert_int_eq(helper_runs("xyz"), 1);
  sbd_auth_free(a);
}
END_TEST

START_TEST(test_creds_store)
{
  write_helper("store", "store-user", "store-secret");
  /* Docker Desktop's layout: empty auths entries and a store for everything. */
  cleanup_free char *cfg = write_home_config(
      "{\"auths\": {\"https://index.docker.io/v1/\": {},"
      "             \"file.example\": {\"username\": \"file-user\", \"password\": \"f\"}},"
      " \"credsStore\": \"store\"}");
  struct sbd_auth *a = auth_new(NULL);
  expect_found(a, "file.example", "file-user", "f", cfg);
  ck_assert_int_eq(helper_runs("store"), 0);
  expect_found(a, "docker.io", "store-user", "store-secret",
               "credential helper docker-credential-store");
  expect_found(a, "ghcr.io", "store-user", "store-secret",
               "credential helper docker-credential-store");
  ck_assert_int_eq(helper_runs("store"), 2);
  sbd_auth_free(a);
}
END_TEST

/* docker's protocol: argv is exactly "get", the server address alone on stdin. */
START_TEST(test_helper_protocol)
{
  write_script("docker-credential-xyz", "printf '%%s\\n' \"$#:$*\" >> %1$s/argv\n"
                                        "{ cat; echo; } >> %1$s/stdin\n"
                                        "[ -e /proc/$$/fd/40 ] && echo fd 40 >> %1$s/leaked\n"
                                        "printf '{\"Username\":\"u\",\"Secret\":\"s\"}'");
  put_home_config("{\"credsStore\": \"xyz\"}");
  /* A descriptor of ours without O_CLOEXEC must not reach the helper. */
  int devnull = open("/dev/null", O_RDONLY);
  ck_assert_int_eq(dup2(devnull, 40), 40);
  close(devnull);
  int fds_before = open_fd_count();
  struct sbd_auth *a = auth_new(NULL);
  expect_found(a, "docker.io", "u", "s", "credential helper docker-credential-xyz");
  expect_found(a, "us-docker.pkg.dev", "u", "s", "credential helper docker-credential-xyz");
  expect_found(a, "localhost:5000", "u", "s", "credential helper docker-credential-xyz");
  sbd_auth_free(a);
  cleanup_free char *argv_file = scratch_path("argv");
  cleanup_free char *stdin_file = scratch_path("stdin");
  cleanup_free char *args = read_text(argv_file);
  cleanup_free char *input = read_text(stdin_file);
  ck_assert_pstr_eq(args, "1:get\n1:get\n1:get\n");
  ck_assert_pstr_eq(input, "https://index.docker.io/v1/\nus-docker.pkg.dev\nlocalhost:5000\n");
  cleanup_free char *leaked_file = scratch_path("leaked");
  cleanup_free char *leaked = read_text(leaked_file);
  ck_assert_pstr_eq(leaked, NULL);
  ck_assert_int_eq(open_fd_count(), fds_before);
  assert_no_children();
  close(40);
}
END_TEST

START_TEST(test_helper_identity_token)
{
  write_helper("tok", "<token>", "refresh-from-helper");
  put_home_config("{\"credHelpers\": {\"reg.example\": \"tok\"}}");
  struct sbd_auth *a = auth_new(NULL);
  struct sbd_credential c;
  cleanup_error sbd_error_t err = NULL;
  ck_assert_int_eq(sbd_auth_lookup(a, "reg.example", &c, &err), 1);
  ck_assert_ptr_null(c.username);
  ck_assert_ptr_null(c.secret);
  ck_assert_str_eq(c.identity_token, "refresh-from-helper");
  ck_assert_str_eq(c.source, "credential helper docker-credential-tok");
  sbd_credential_free(&c);
  sbd_auth_free(a);
}
END_TEST

START_TEST(test_helper_not_found_is_anonymous)
{
  write_script("docker-credential-empty", "echo run >> %1$s/empty.runs\n"
                                          "echo 'credentials not found in native keychain'\n"
                                          "exit 1");
  put_home_config("{\"credsStore\": \"empty\"}");
  struct sbd_auth *a = auth_new(NULL);
  expect_none(a, "reg.example");
  ck_assert_int_eq(helper_runs("empty"), 1); /* it did run, and said so */
  sbd_auth_free(a);
}
END_TEST

START_TEST(test_helper_failure)
{
  /* JSON on stdout with the secret, the reason on stderr. */
  write_script("docker-credential-locked",
               "printf '{\"Username\":\"u\",\"Secret\":\"TOPSECRET\"}\\n'\n"
               "echo 'keychain is locked' >&2\n"
               "exit 1");
  /* docker-credential-helpers print their error on stdout. */
  write_script("docker-credential-broken", "echo 'error getting credentials - err: boom'\n"
                                           "exit 3");
  put_home_config("{\"credHelpers\": {\"a.example\": \"locked\", \"b.example\": \"broken\"}}");
  struct sbd_auth *a = auth_new(NULL);
  cleanup_free char *m1 = expect_error(a, "a.example");
  ck_assert_contains(m1, "registry a.example");
  ck_assert_contains(m1, "docker-credential-locked");
  ck_assert_contains(m1, "exit status 1");
  ck_assert_contains(m1, "keychain is locked");
  ck_assert_lacks(m1, "TOPSECRET");
  cleanup_free char *m2 = expect_error(a, "b.example");
  ck_assert_contains(m2, "docker-credential-broken");
  ck_assert_contains(m2, "exit status 3");
  ck_assert_contains(m2, "boom");
  sbd_auth_free(a);
  assert_no_children();
}
END_TEST

START_TEST(test_helper_bad_output)
{
  write_script("docker-credential-prose", "echo 'hello there'");
  write_script("docker-credential-newline", "printf '%%s' '{\"Username\":\"u\",\"Secret\":\"a\\nb\"}'");
  write_script("docker-credential-nul", "printf '%%s' '{\"Username\":\"u\",\"Secret\":\"a\\u0000b\"}'");
  write_script("docker-credential-cr", "printf '%%s' '{\"Username\":\"u\\r\",\"Secret\":\"ab\"}'");
  put_home_config("{\"credHelpers\": {\"a.example\": \"prose\", \"b.example\": \"newline\","
                    " \"c.example\": \"nul\", \"d.example\": \"cr\"}}");
  struct sbd_auth *a = auth_new(NULL);
  cleanup_free char *m1 = expect_error(a, "a.example");
  ck_assert_contains(m1, "docker-credential-prose");
  ck_assert_contains(m1, "JSON");
  const char *names[] = {"newline", "nul", "cr"};
  const char *domains[] = {"b.example", "c.example", "d.example"};
  for (int i = 0; i < 3; i++) {
    cleanup_free char *m = expect_error(a, domains[i]);
    cleanup_free char *prog = xasprintf("docker-credential-%s", names[i]);
    ck_assert_contains(m, prog);
    ck_assert_contains(m, "line break or NUL");
  }
  sbd_auth_free(a);
}
END_TEST

START_TEST(test_helper_missing)
{
  /* Present but not executable counts as missing, as for a shell. */
  cleanup_free char *noexec = xasprintf("%s/docker-credential-noexec", bindir);
  write_text(noexec, "#!/bin/sh\necho '{\"Username\":\"u\",\"Secret\":\"s\"}'\n");
  chmod(noexec, 0644);
  cleanup_free char *cfg =
      write_home_config("{\"credHelpers\": {\"gcr.io\": \"nonexistent\", \"q.example\": \"noexec\"}}");
  struct sbd_auth *a = auth_new(NULL);
  cleanup_free char *m1 = expect_error(a, "gcr.io");
  cleanup_free char *want =
      xasprintf("credential helper docker-credential-nonexistent not found on PATH (configured in %s)",
                cfg);
  ck_assert_contains(m1, want);
  ck_assert_contains(m1, "registry gcr.io");
  cleanup_free char *m2 = expect_error(a, "q.example");
  ck_assert_contains(m2, "docker-credential-noexec not found on PATH");
  sbd_auth_free(a);
}
END_TEST

static bool process_gone(pid_t pid)
{
  cleanup_free char *stat_path = xasprintf("/proc/%d/stat", (int)pid);
  cleanup_free char *st = read_text(stat_path);
  if (st == NULL)
    return true;
  const char *close_paren = strrchr(st, ')');
  return close_paren && close_paren[1] == ' ' && (close_paren[2] == 'Z' || close_paren[2] == 'X');
}

/* A helper that hangs is killed at the deadline, with what it started. */
START_TEST(test_helper_timeout)
{
  write_script("docker-credential-hang", "sleep 30 &\n"
                                         "echo $! > %1$s/sleeper\n"
                                         "wait");
  put_home_config("{\"credsStore\": \"hang\"}");
  int fds_before = open_fd_count();
  struct sbd_auth_options opts = {.child_timeout_ms = 500};
  struct sbd_auth *a = auth_new(&opts);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  cleanup_free char *m = expect_error(a, "reg.example");
  clock_gettime(CLOCK_MONOTONIC, &t1);
  ck_assert_contains(m, "docker-credential-hang did not answer within 0.5 s");
  ck_assert_int_lt(t1.tv_sec - t0.tv_sec, 10);
  sbd_auth_free(a);
  ck_assert_int_eq(open_fd_count(), fds_before);
  assert_no_children();
  cleanup_free char *sleeper_file = scratch_path("sleeper");
  cleanup_free char *sleeper = read_text(sleeper_file);
  ck_assert_ptr_nonnull(sleeper);
  pid_t pid = (pid_t)atoi(sleeper);
  ck_assert_int_gt(pid, 1);
  for (int i = 0; i < 200 && !process_gone(pid); i++)
    usleep(10000);
  ck_assert_msg(process_gone(pid), "the helper's child %d survived", (int)pid);
}
END_TEST

/* --- bad files ----------------------------------------------------------------------- */

START_TEST(test_invalid_config)
{
  cleanup_free char *cfg = write_home_config("{\"auths\": {\"gcr.io\": ");
  cleanup_free char *m1 = auth_new_fails(NULL);
  ck_assert_contains(m1, cfg);
  ck_assert_contains(m1, "not valid JSON");

  put_home_config("{\"auths\": {\"gcr.io\": {\"auth\": \"!!not-base64!!\"}}}");
  cleanup_free char *m2 = auth_new_fails(NULL);
  ck_assert_contains(m2, cfg);
  ck_assert_contains(m2, "base64");
  ck_assert_lacks(m2, "!!not-base64!!");

  cleanup_free char *nocolon = b64("nocolonhere");
  cleanup_free char *json = xasprintf("{\"auths\": {\"gcr.io\": {\"auth\": \"%s\"}}}", nocolon);
  put_home_config(json);
  cleanup_free char *m3 = auth_new_fails(NULL);
  ck_assert_contains(m3, "user:password");
  ck_assert_lacks(m3, "nocolonhere");

  put_home_config("{\"auths\": {\"gcr.io\": {\"username\": \"u\", \"password\": \"a\\r\\nb\"}}}");
  cleanup_free char *m4 = auth_new_fails(NULL);
  ck_assert_contains(m4, "line break");

  put_home_config("{\"auths\": [\"gcr.io\"]}");
  cleanup_free char *m5 = auth_new_fails(NULL);
  ck_assert_contains(m5, cfg);

  put_home_config("{\"credsStore\": \"../../tmp/evil\"}");
  cleanup_free char *m6 = auth_new_fails(NULL);
  ck_assert_contains(m6, "credsStore");
}
END_TEST

START_TEST(test_auth_file_missing)
{
  cleanup_free char *missing = scratch_path("nope.json");
  struct sbd_auth_options opts = {.auth_file = missing};
  cleanup_free char *m = auth_new_fails(&opts);
  ck_assert_contains(m, "--auth-file");
  ck_assert_contains(m, missing);
  ck_assert_contains(m, strerror(ENOENT));

  /* Named by the environment, it is only a place to look. */
  setenv("REGISTRY_AUTH_FILE", missing, 1);
  struct sbd_auth *a = auth_new(NULL);
  expect_none(a, "gcr.io");
  sbd_auth_free(a);
}
END_TEST

START_TEST(test_default_missing_or_empty)
{
  struct sbd_auth *a = auth_new(NULL);
  expect_none(a, "gcr.io");
  expect_none(a, "docker.io");
  sbd_auth_free(a);
  put_home_config("");
  a = auth_new(NULL);
  expect_none(a, "docker.io");
  sbd_auth_free(a);
}
END_TEST

/* --- Google ------------------------------------------------------------------------------ */

static void gcp_enable(const char *metadata_host)
{
  unsetenv("SBDISK_NO_GCP_AUTH");
  setenv("GCE_METADATA_HOST", metadata_host, 1);
}

/* A gcloud that logs its arguments and prints a token with blanks around it. */
static void write_gcloud(const char *token)
{
  cleanup_free char *body = xasprintf("printf '%%%%s\\n' \"$*\" >> %%1$s/gcloud.runs\n"
                                      "printf '  %s \\r\\nsecond line\\n'",
                                      token);
  write_script("gcloud", body);
}

START_TEST(test_gcloud_fallback)
{
  gcp_enable("127.0.0.1:1"); /* a closed port: the metadata server fails fast */
  write_gcloud("ya29.from-gcloud");
  struct sbd_auth *a = auth_new(NULL);
  expect_found(a, "us-docker.pkg.dev", "oauth2accesstoken", "ya29.from-gcloud",
               "gcloud auth print-access-token");
  expect_found(a, "europe-west4-docker.pkg.dev", "oauth2accesstoken", "ya29.from-gcloud",
               "gcloud auth print-access-token");
  expect_found(a, "eu.gcr.io", "oauth2accesstoken", "ya29.from-gcloud",
               "gcloud auth print-access-token");
  expect_found(a, "gcr.io", "oauth2accesstoken", "ya29.from-gcloud",
               "gcloud auth print-access-token");
  sbd_auth_free(a);
  cleanup_free char *runs_file = scratch_path("gcloud.runs");
  cleanup_free char *runs = read_text(runs_file);
  /* One run serves every Google registry: the token is the machine's. */
  ck_assert_pstr_eq(runs, "auth print-access-token\n");
  assert_no_children();
}
END_TEST

START_TEST(test_gcloud_failure_is_anonymous)
{
  gcp_enable("127.0.0.1:1");
  write_script("gcloud", "echo run >> %1$s/gcloud.runs\n"
                         "echo 'ERROR: (gcloud.auth.print-access-token) no credentialed accounts' >&2\n"
                         "exit 1");
  struct sbd_auth *a = auth_new(NULL);
  expect_none(a, "gcr.io");
  ck_assert_int_eq(helper_runs("gcloud"), 1);
  sbd_auth_free(a);
}
END_TEST

START_TEST(test_config_before_gcp)
{
  gcp_enable("127.0.0.1:1");
  write_gcloud("ya29.from-gcloud");
  cleanup_free char *cfg = write_home_config(
      "{\"auths\": {\"us-docker.pkg.dev\": {\"username\": \"_json_key\", \"password\": \"k\"}}}");
  struct sbd_auth *a = auth_new(NULL);
  expect_found(a, "us-docker.pkg.dev", "_json_key", "k", cfg);
  ck_assert_int_eq(helper_runs("gcloud"), 0);
  sbd_auth_free(a);
}
END_TEST

START_TEST(test_no_gcp_auth)
{
  setenv("GCE_METADATA_HOST", "127.0.0.1:1", 1); /* SBDISK_NO_GCP_AUTH=1 from setup */
  write_gcloud("ya29.from-gcloud");
  struct sbd_auth *a = auth_new(NULL);
  expect_none(a, "gcr.io");
  expect_none(a, "us-docker.pkg.dev");
  ck_assert_int_eq(helper_runs("gcloud"), 0);
  sbd_auth_free(a);
}
END_TEST

START_TEST(test_non_google_never_runs_gcloud)
{
  gcp_enable("127.0.0.1:1");
  write_gcloud("ya29.from-gcloud");
  struct sbd_auth *a = auth_new(NULL);
  const char *others[] = {"ghcr.io", "docker.io", "gcr.io.example.com", "pkg.dev",
                          "docker.pkg.dev.example.com", "localhost:5000", "notgcr.io"};
  for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++)
    expect_none(a, others[i]);
  ck_assert_int_eq(helper_runs("gcloud"), 0);
  /* The same gcloud does answer for a Google registry. */
  expect_found(a, "asia.gcr.io", "oauth2accesstoken", "ya29.from-gcloud",
               "gcloud auth print-access-token");
  ck_assert_int_eq(helper_runs("gcloud"), 1);
  sbd_auth_free(a);
}
END_TEST

/* A metadata server for one request on 127.0.0.1: answers status and body,
 * and keeps the request it got. */
struct metadata_server {
  int listen_fd;
  int port;
  int status;
  const char *body;
  char request[4096];
  pthread_t thread;
};

static void *metadata_serve(void *opaque)
{
  struct metadata_server *s = opaque;
  int fd = accept(s->listen_fd, NULL, NULL);
  if (fd < 0)
    return NULL;
  size_t len = 0;
  while (len < sizeof(s->request) - 1 && strstr(s->request, "\r\n\r\n") == NULL) {
    ssize_t n = read(fd, s->request + len, sizeof(s->request) - 1 - len);
    if (n <= 0)
      break;
    len += (size_t)n;
    s->request[len] = '\0';
  }
  cleanup_free char *response =
      xasprintf("HTTP/1.1 %d X\r\nContent-Type: application/json\r\nMetadata-Flavor: Google\r\n"
                "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                s->status, strlen(s->body), s->body);
  sbd_write_all(fd, response, strlen(response));
  close(fd);
  return NULL;
}

static void metadata_start(struct metadata_server *s, int status, const char *body)
{
  memset(s, 0, sizeof(*s));
  s->status = status;
  s->body = body;
  s->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ck_assert_int_ge(s->listen_fd, 0);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t alen = sizeof(addr);
  ck_assert_int_eq(bind(s->listen_fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
  ck_assert_int_eq(listen(s->listen_fd, 4), 0);
  ck_assert_int_eq(getsockname(s->listen_fd, (struct sockaddr *)&addr, &alen), 0);
  s->port = ntohs(addr.sin_port);
  ck_assert_int_eq(pthread_create(&s->thread, NULL, metadata_serve, s), 0);
}

static void metadata_join(struct metadata_server *s)
{
  pthread_join(s->thread, NULL);
  close(s->listen_fd);
}

START_TEST(test_metadata_server)
{
  struct metadata_server s;
  metadata_start(&s, 200,
                 "{\"access_token\":\"ya29.from-metadata\",\"expires_in\":3599,"
                 "\"token_type\":\"Bearer\"}");
  cleanup_free char *host = xasprintf("127.0.0.1:%d", s.port);
  gcp_enable(host);
  /* Neither a proxy nor gcloud may come into it. */
  setenv("http_proxy", "http://127.0.0.1:1", 1);
  setenv("HTTP_PROXY", "http://127.0.0.1:1", 1);
  write_gcloud("ya29.from-gcloud");
  struct sbd_auth *a = auth_new(NULL);
  expect_found(a, "us-docker.pkg.dev", "oauth2accesstoken", "ya29.from-metadata",
               "the GCE metadata server");
  expect_found(a, "gcr.io", "oauth2accesstoken", "ya29.from-metadata",
               "the GCE metadata server");
  sbd_auth_free(a);
  metadata_join(&s);
  ck_assert_contains(s.request,
                     "GET /computeMetadata/v1/instance/service-accounts/default/token HTTP/1.1\r\n");
  ck_assert_contains(s.request, "\r\nMetadata-Flavor: Google\r\n");
  ck_assert_int_eq(helper_runs("gcloud"), 0);
}
END_TEST

START_TEST(test_metadata_failure_falls_back)
{
  struct metadata_server s;
  metadata_start(&s, 404, "{\"error\":\"not found\"}");
  cleanup_free char *host = xasprintf("127.0.0.1:%d", s.port);
  gcp_enable(host);
  write_gcloud("ya29.from-gcloud");
  struct sbd_auth *a = auth_new(NULL);
  expect_found(a, "gcr.io", "oauth2accesstoken", "ya29.from-gcloud",
               "gcloud auth print-access-token");
  sbd_auth_free(a);
  metadata_join(&s);
  ck_assert_contains(s.request, "GET /computeMetadata/"); /* it was asked first */
}
END_TEST

/* --- memoisation ---------------------------------------------------------------------- */

START_TEST(test_memoised)
{
  write_helper("counted", "u", "s");
  write_script("docker-credential-failing", "echo run >> %1$s/failing.runs\n"
                                            "echo 'backend unavailable'\n"
                                            "exit 1");
  put_home_config("{\"credsStore\": \"counted\", \"credHelpers\": {\"bad.example\": \"failing\"}}");
  struct sbd_auth *a = auth_new(NULL);
  expect_found(a, "gcr.io", "u", "s", "credential helper docker-credential-counted");
  expect_found(a, "gcr.io", "u", "s", "credential helper docker-credential-counted");
  ck_assert_int_eq(helper_runs("counted"), 1);
  expect_found(a, "quay.io", "u", "s", "credential helper docker-credential-counted");
  expect_found(a, "gcr.io", "u", "s", "credential helper docker-credential-counted");
  ck_assert_int_eq(helper_runs("counted"), 2);
  /* A failure is remembered too, with its message. */
  cleanup_free char *m1 = expect_error(a, "bad.example");
  cleanup_free char *m2 = expect_error(a, "bad.example");
  ck_assert_str_eq(m1, m2);
  ck_assert_contains(m2, "backend unavailable");
  ck_assert_int_eq(helper_runs("failing"), 1);
  sbd_auth_free(a);
}
END_TEST

#define N_THREADS 8
struct lookup_thread {
  struct sbd_auth *auth;
  pthread_t thread;
  int result;
  char *username;
};

static void *lookup_run(void *opaque)
{
  struct lookup_thread *t = opaque;
  struct sbd_credential c;
  sbd_error_t err = NULL;
  t->result = sbd_auth_lookup(t->auth, "reg.example", &c, &err);
  t->username = c.username ? xstrdup(c.username) : NULL;
  sbd_credential_free(&c);
  sbd_error_free(&err);
  return NULL;
}

/* Threads asking at once wait for the one helper run. */
START_TEST(test_memoised_threads)
{
  write_script("docker-credential-slow", "echo run >> %1$s/slow.runs\n"
                                         "sleep 0.3\n"
                                         "printf '{\"Username\":\"slow-user\",\"Secret\":\"s\"}'");
  put_home_config("{\"credsStore\": \"slow\"}");
  struct sbd_auth *a = auth_new(NULL);
  struct lookup_thread t[N_THREADS];
  for (int i = 0; i < N_THREADS; i++) {
    t[i] = (struct lookup_thread){.auth = a};
    ck_assert_int_eq(pthread_create(&t[i].thread, NULL, lookup_run, &t[i]), 0);
  }
  for (int i = 0; i < N_THREADS; i++) {
    pthread_join(t[i].thread, NULL);
    ck_assert_int_eq(t[i].result, 1);
    ck_assert_pstr_eq(t[i].username, "slow-user");
    free(t[i].username);
  }
  ck_assert_int_eq(helper_runs("slow"), 1);
  sbd_auth_free(a);
}
END_TEST

Suite *auth_suite(void)
{
  Suite *s = suite_create("auth");
  TCase *tc = tcase_create("auth");
  tcase_set_timeout(tc, 30);
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_username_wins);
  tcase_add_test(tc, test_username_needs_password);
  tcase_add_test(tc, test_config_precedence);
  tcase_add_test(tc, test_base64_auth);
  tcase_add_test(tc, test_username_password_fields);
  tcase_add_test(tc, test_identitytoken);
  tcase_add_loop_test(tc, test_docker_hub_keys, 0, (int)(sizeof(hub_keys) / sizeof(hub_keys[0])));
  tcase_add_test(tc, test_exact_key_preferred);
  tcase_add_test(tc, test_key_normalisation);
  tcase_add_test(tc, test_cred_helpers_over_auths);
  tcase_add_test(tc, test_creds_store);
  tcase_add_test(tc, test_helper_protocol);
  tcase_add_test(tc, test_helper_identity_token);
  tcase_add_test(tc, test_helper_not_found_is_anonymous);
  tcase_add_test(tc, test_helper_failure);
  tcase_add_test(tc, test_helper_bad_output);
  tcase_add_test(tc, test_helper_missing);
  tcase_add_test(tc, test_helper_timeout);
  tcase_add_test(tc, test_invalid_config);
  tcase_add_test(tc, test_auth_file_missing);
  tcase_add_test(tc, test_default_missing_or_empty);
  tcase_add_test(tc, test_gcloud_fallback);
  tcase_add_test(tc, test_gcloud_failure_is_anonymous);
  tcase_add_test(tc, test_config_before_gcp);
  tcase_add_test(tc, test_no_gcp_auth);
  tcase_add_test(tc, test_non_google_never_runs_gcloud);
  tcase_add_test(tc, test_metadata_server);
  tcase_add_test(tc, test_metadata_failure_falls_back);
  tcase_add_test(tc, test_memoised);
  tcase_add_test(tc, test_memoised_threads);
  suite_add_tcase(s, tc);
  return s;
}

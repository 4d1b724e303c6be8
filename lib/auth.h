/* Where registry credentials come from, in the order docker and skopeo look:
 *
 *   1. --username with a password (read from stdin by the CLI): every registry;
 *   2. one config file: --auth-file, else $REGISTRY_AUTH_FILE, else
 *      $DOCKER_CONFIG/config.json, else $HOME/.docker/config.json.  In it, for
 *      the registry: credHelpers (a `docker-credential-NAME get`), else its
 *      auths entry ("auth" base64 user:password, "username"/"password",
 *      "identitytoken"), else credsStore (a helper for every registry);
 *   3. for gcr.io, *.gcr.io and *-docker.pkg.dev when nothing above answered:
 *      the GCE metadata server's access token, else `gcloud auth
 *      print-access-token`; either as user "oauth2accesstoken".  Environment
 *      SBDISK_NO_GCP_AUTH=1 turns this step off.
 *
 * Nothing here speaks the registry protocol: lib/registry.c asks for the
 * credential of a domain and sends it to the token server. */
#ifndef SBD_AUTH_H
#define SBD_AUTH_H

#include "error.h"

struct sbd_auth_options {
  const char *auth_file; /* --auth-file PATH; NULL: look in the environment (above) */
  const char *username;  /* --username; with password: used for every registry */
  const char *password;  /* read from stdin by the CLI (never argv) */
  /* How long a credential helper (30 s) or gcloud (60 s) may take; 0 keeps
   * those defaults.  Tests shorten it. */
  int child_timeout_ms;
};

struct sbd_credential {
  char *username;       /* NULL when only identity_token/token */
  char *secret;         /* password, or an access token (GCP: username "oauth2accesstoken") */
  char *identity_token; /* docker's "identitytoken" / helper Username "<token>": an OAuth2
                           refresh token for the token server */
  char *source;         /* for messages, never containing a secret: "--username",
                           "/root/.docker/config.json", "credential helper
                           docker-credential-gcloud", "the GCE metadata server",
                           "gcloud auth print-access-token" */
};
void sbd_credential_free(struct sbd_credential *c);

struct sbd_auth;

/* Reads the config file once.  Errors (SBD_EXIT_USAGE): --auth-file given but
 * missing or unreadable; --username without a password or the other way
 * round; a config file that exists but is unreadable, not valid JSON, or holds
 * an entry docker would refuse (a malformed base64 "auth", a value that is not
 * a string, a CR, LF or NUL in a user name, password or token); the message
 * names the file.  A missing file found through the environment or the
 * default path is not an error: there are no stored credentials. */
int sbd_auth_new(const struct sbd_auth_options *opts, struct sbd_auth **out, sbd_error_t *err);
void sbd_auth_free(struct sbd_auth *a);

/* Credentials for a registry domain as written in image references
 * ("docker.io", "gcr.io", "us-docker.pkg.dev", "localhost:5000").  Returns 1
 * and fills *out when found, 0 when there are none (anonymous), -1 on error:
 * a credential helper that is not on PATH, fails other than "credentials not
 * found", runs too long or answers something unusable; a token or password
 * with a CR, LF or NUL.  Errors are SBD_EXIT_REGISTRY and name the registry
 * and the source, never the secret.
 *
 * Thread-safe: download threads share one sbd_auth.  Results, errors
 * included, are memoised per domain, so a helper, gcloud or the metadata
 * server is asked at most once per domain per sbd_auth; a thread asking for
 * a domain another thread is resolving waits for that answer. */
int sbd_auth_lookup(struct sbd_auth *a, const char *domain, struct sbd_credential *out,
                    sbd_error_t *err);

#endif

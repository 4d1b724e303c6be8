/* Inside the registry client: what lib/registry.c (requests, retries,
 * manifests, blobs) and lib/registry_auth.c (challenges, tokens, credentials)
 * share.  Not an interface: lib/registry.h is. */
#ifndef SBD_REGISTRY_INTERNAL_H
#define SBD_REGISTRY_INTERNAL_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "registry.h"
#include "util.h"

#define ERROR_BODY_MAX (64 * 1024)


/* Per-host memory: an insecure host whose TLS handshake failed once is spoken
 * to over plain HTTP from then on. */
struct registry_host {
  char *name;
  bool plain_http;
  bool ca_loaded;
  struct sbd_buf ca; /* the system's CAs and this host's extra ones; empty: none extra */
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
  bool (*cancelled)(void *opaque);
  void *cancel_opaque;
  struct sbd_auth *auth; /* not owned; NULL: anonymous */
  struct sbd_buf ca_file; /* --ca-file's PEM */
  char *cert_dir;         /* NULL: the default certs.d directories */
  char **mirrors;         /* host[:port] */
  size_t n_mirrors;
};

/* What one request is about, for the URL and for error messages. */
struct registry_request {
  const struct sbd_ref *ref;
  const char *host;   /* where to connect: sbd_ref_registry_host(), or a mirror */
  const char *name;   /* what the user calls it: ref->domain, or the mirror's host;
                         insecure entries, CAs and credentials are looked up by it */
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
  long retry_after;    /* seconds the server asked to wait (Retry-After), -1: none */
  int64_t range_start; /* a 206's Content-Range start, -1: none */
  bool body_started;   /* the current response's first 2xx byte has been seen */
  uint64_t skip;       /* bytes of the current body already delivered by an earlier try */
  bool range_bad;      /* a 206 that starts beyond what was delivered */
  /* Kept across tries, so an interrupted blob resumes where it stopped: */
  uint64_t delivered;  /* bytes handed to sink */
};

time_t monotonic_now(void);
/* "Insecure" hosts get HTTPS without verification, then plain HTTP. */
bool registry_domain_is_insecure(struct sbd_registry *r, const char *domain);
void response_reset(struct registry_response *res);
const struct sbd_buf *registry_host_ca(struct sbd_registry *r, const char *host);
/* Options every transfer shares; name (a registry as the user names it) picks the CAs. */
void registry_setopt_common(struct sbd_registry *r, const char *name, bool verify_tls);
/* Where a GET goes and where its response lands. */
void registry_setopt_target(struct sbd_registry *r, const char *url, struct registry_response *res);
/* Why a transfer failed, in a few words. */
char *curl_reason(struct sbd_registry *r, CURLcode rc);

/* The Authorization value cached for host and scope, unless expired; or NULL. */
const char *auth_token_lookup(struct sbd_registry *r, const char *host, const char *scope);
/* Answers a 401 (header: its WWW-Authenticate) with the Authorization value
 * to send ("Bearer <token>" from the token server, "Basic <user:secret>"),
 * cached for host and scope; *source names where the credential came from
 * (NULL: anonymous).  A challenge sbdisk cannot answer is an error naming
 * what the registry requires. */
int auth_answer_challenge(struct sbd_registry *r, const struct registry_request *q,
                          const char *header, const char *scope, char **authorization,
                          char **source, sbd_error_t *err);

#endif

/* A client for the OCI distribution API (libcurl): manifests and blobs, with
 * anonymous access and the registry's Bearer-token challenge.  It knows
 * nothing of ext4 or of what the bytes mean; callers verify digests. */
#ifndef SBD_REGISTRY_H
#define SBD_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "digest.h"
#include "error.h"
#include "ref.h"

struct sbd_registry_options {
  /* HOST[:PORT] entries spoken to over plain HTTP, or HTTPS without
   * certificate verification.  Loopback hosts (localhost, 127.0.0.0/8, ::1)
   * are always treated so, as docker does. */
  const char *const *insecure;
  size_t n_insecure;
  const char *user_agent; /* NULL: "sbdisk/<version>" */
  /* Polled during transfers and the pauses between tries: returning true
   * ends the request with SBD_EXIT_INTERRUPTED.  Optional. */
  bool (*cancelled)(void *opaque);
  void *cancel_opaque;
  /* Where credentials come from (lib/auth.h); shared by every client made
   * with these options, not owned.  NULL: anonymous only. */
  struct sbd_auth *auth;
  /* Certificate authorities trusted besides the system's: a PEM file for
   * every registry, and the .crt files in DIR/HOST[:PORT] per registry (docker's
   * certs.d convention; NULL: /etc/containers/certs.d and
   * /etc/docker/certs.d).  A loopback registry with such a CA is verified
   * like any other rather than spoken to insecurely. */
  const char *ca_file;
  const char *cert_dir;
  /* Mirrors tried first for docker.io images (HOST[:PORT], or an
   * http:// or https:// URL); docker.io itself when they fail. */
  const char *const *mirrors;
  size_t n_mirrors;
};

struct sbd_registry;

/* Fails (SBD_EXIT_USAGE) when ca_file cannot be read or holds no certificate. */
int sbd_registry_new(const struct sbd_registry_options *opts, struct sbd_registry **out,
                     sbd_error_t *err);
void sbd_registry_free(struct sbd_registry *r);

struct sbd_fetched_manifest {
  char *body;
  size_t len;
  char *media_type;                  /* Content-Type (without parameters) */
  char digest[SBD_DIGEST_STR_LEN];   /* sha256 of body */
};
void sbd_fetched_manifest_free(struct sbd_fetched_manifest *m);

/* GET /v2/<path>/manifests/<reference>, reference being a tag or a digest.
 * When it is a digest, the body must hash to it (SBD_EXIT_IMAGE otherwise).
 * Errors name the registry and repository; 404 says the image or tag does not
 * exist; 401/403 after the token dance says access was denied. */
int sbd_registry_get_manifest(struct sbd_registry *r, const struct sbd_ref *ref,
                              const char *reference, struct sbd_fetched_manifest *out,
                              sbd_error_t *err);

/* Receives blob bytes as they arrive; returning -1 aborts the transfer. */
typedef int (*sbd_blob_sink)(void *opaque, const void *data, size_t len, sbd_error_t *err);

/* GET /v2/<path>/blobs/<digest>, following redirects (without forwarding the
 * registry's Authorization to another host).  A transfer cut short resumes
 * with a Range request; sink sees every byte of the blob exactly once, in
 * order, whatever the retries. */
int sbd_registry_get_blob(struct sbd_registry *r, const struct sbd_ref *ref, const char *digest,
                          sbd_blob_sink sink, void *opaque, sbd_error_t *err);

/* Parses a WWW-Authenticate header value.  Returns 0 and fills scheme
 * ("Bearer"/"Basic") and, for Bearer, realm/service/scope (NULL if absent).
 * Exposed for unit tests. */
struct sbd_auth_challenge {
  char *scheme;
  char *realm;
  char *service;
  char *scope;
};
int sbd_auth_challenge_parse(const char *header, struct sbd_auth_challenge *out);
void sbd_auth_challenge_free(struct sbd_auth_challenge *c);

#endif

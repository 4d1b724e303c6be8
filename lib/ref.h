/* Image references as docker writes them, and `oci:DIR[:TAG]` local layouts.
 *
 *   nginx                    -> docker.io/library/nginx:latest
 *   nginx:1.27               -> docker.io/library/nginx:1.27
 *   ghcr.io/org/app@sha256:… -> ghcr.io/org/app@sha256:…
 *   localhost:5000/x:y       -> localhost:5000/x:y
 *   oci:/path/to/layout:tag  -> a local OCI image layout (no registry)
 *
 * Grammar and normalisation follow distribution/reference (the docker CLI's):
 * the first path component is a registry host when it contains '.' or ':' or
 * is "localhost"; names are lower-case; the tag defaults to "latest"; when a
 * reference has both a tag and a digest the digest wins and the tag is dropped
 * from the normalised name (as containerd's CRI does). */
#ifndef SBD_REF_H
#define SBD_REF_H

#include <stdbool.h>

#include "error.h"

struct sbd_ref {
  /* registry references */
  char *domain; /* "docker.io", "ghcr.io", "localhost:5000" */
  char *path;   /* "library/nginx", "org/app" */
  char *tag;    /* "latest" when neither tag nor digest was given; NULL with a digest */
  char *digest; /* "sha256:…" or NULL */
  /* local OCI layouts (oci:DIR[:TAG]); domain/path/tag/digest are NULL */
  char *oci_dir;
  char *oci_tag; /* NULL when not given */
};

/* Parses s; on failure returns -1 with an SBD_EXIT_USAGE error that quotes s
 * and says what is wrong with it. */
int sbd_ref_parse(const char *s, struct sbd_ref *ref, sbd_error_t *err);

/* The normalised, fully qualified name ("docker.io/library/nginx:latest",
 * "ghcr.io/org/app@sha256:…").  For OCI layouts: "oci:DIR[:TAG]". */
char *sbd_ref_name(const struct sbd_ref *ref);

/* "repository:tag" or "repository@digest" part used on the wire: the tag or
 * digest to ask the registry for. */
const char *sbd_ref_reference(const struct sbd_ref *ref);

/* The host to connect to: docker.io is served by registry-1.docker.io. */
const char *sbd_ref_registry_host(const struct sbd_ref *ref);

bool sbd_ref_is_oci_layout(const struct sbd_ref *ref);

void sbd_ref_free(struct sbd_ref *ref);

#endif

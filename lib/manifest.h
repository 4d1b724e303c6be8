/* OCI and Docker schema 2 manifests, indexes and image configs (jansson), and
 * platform selection as containerd does it. */
#ifndef SBD_MANIFEST_H
#define SBD_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define SBD_MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define SBD_MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define SBD_MT_OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define SBD_MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define SBD_MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define SBD_MT_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"
/* What we send as Accept when asking a registry for a manifest. */
#define SBD_MANIFEST_ACCEPT                                                                        \
  SBD_MT_OCI_INDEX ", " SBD_MT_OCI_MANIFEST ", " SBD_MT_DOCKER_LIST ", " SBD_MT_DOCKER_MANIFEST

struct sbd_platform {
  char *os;
  char *arch;
  char *variant; /* NULL when empty */
};

/* "linux/amd64", "linux/arm64/v8", "linux/arm/v7": parsed and normalised the
 * way containerd's platforms.Normalize does (x86_64 -> amd64, aarch64 ->
 * arm64, arm64/v8 -> arm64, arm -> arm/v7 ...). */
int sbd_platform_parse(const char *s, struct sbd_platform *p, sbd_error_t *err);
/* Normalises os/arch/variant in place (strings are replaced). */
void sbd_platform_normalize(struct sbd_platform *p);
/* "os/arch[/variant]" (containerd's platforms.Format). */
char *sbd_platform_format(const struct sbd_platform *p);
/* Exact match after normalising both sides (containerd's platforms.Only for
 * non-arm targets). */
bool sbd_platform_match(const struct sbd_platform *want, const struct sbd_platform *have);
void sbd_platform_free(struct sbd_platform *p);

enum sbd_manifest_kind {
  SBD_KIND_UNKNOWN = 0,
  SBD_KIND_INDEX,    /* OCI index or Docker manifest list */
  SBD_KIND_MANIFEST, /* OCI or Docker schema 2 image manifest */
};

/* The kind of a manifest document, from the Content-Type (may be NULL or
 * generic) and, failing that, the document's own mediaType / shape. */
enum sbd_manifest_kind sbd_manifest_kind_of(const char *content_type, const char *body, size_t len);

struct sbd_descriptor {
  char *media_type;
  char *digest;
  int64_t size;
  bool has_platform;
  struct sbd_platform platform;
  /* vnd.docker.reference.type = attestation-manifest (buildkit SBOM/provenance) */
  bool is_attestation;
  size_t n_urls; /* foreign layers carry urls */
  char *first_url; /* urls[0], or NULL */
};

struct sbd_index {
  char *media_type;
  struct sbd_descriptor *manifests;
  size_t n_manifests;
};

struct sbd_manifest {
  char *media_type;
  struct sbd_descriptor config;
  struct sbd_descriptor *layers;
  size_t n_layers;
};

struct sbd_config {
  char *os;
  char *arch;
  char *variant;
  char **diff_ids;
  size_t n_diff_ids;
  int64_t created; /* seconds since the epoch; -1 when absent or not RFC 3339 */
};

/* Parsers refuse what is not what they parse (wrong schemaVersion, missing
 * fields, bad digests) with an SBD_EXIT_IMAGE error saying which field. */
int sbd_index_parse(const char *body, size_t len, struct sbd_index *out, sbd_error_t *err);
int sbd_manifest_parse(const char *body, size_t len, struct sbd_manifest *out, sbd_error_t *err);
int sbd_config_parse(const char *body, size_t len, struct sbd_config *out, sbd_error_t *err);

/* The first index entry that is an image manifest (or nested index) for
 * `want`, skipping attestation manifests.  When none matches, the error lists
 * the platforms the index has. */
int sbd_index_select(const struct sbd_index *idx, const struct sbd_platform *want,
                     const struct sbd_descriptor **out, sbd_error_t *err);

enum sbd_compression {
  SBD_COMPRESSION_UNKNOWN = 0,
  SBD_COMPRESSION_NONE,
  SBD_COMPRESSION_GZIP,
  SBD_COMPRESSION_ZSTD,
  SBD_COMPRESSION_SNIFF, /* Docker's plain .tar types: containerd detects gzip/zstd/none */
};

/* The compression of a layer media type (OCI tar, tar+gzip, tar+zstd, their
 * non-distributable variants, Docker rootfs.diff.tar(.gzip) and foreign).
 * Whatever a compressed type claims, the bytes decide (containerd sniffs
 * gzip and zstd magic); only the OCI plain tar types are read as raw tar.
 * SBD_COMPRESSION_UNKNOWN for anything else (not a layer we can unpack). */
enum sbd_compression sbd_layer_compression(const char *media_type);
const char *sbd_compression_name(enum sbd_compression c);

void sbd_descriptor_free(struct sbd_descriptor *d);
void sbd_index_free(struct sbd_index *idx);
void sbd_manifest_free(struct sbd_manifest *m);
void sbd_config_free(struct sbd_config *c);

#endif

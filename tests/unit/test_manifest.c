/* Manifests, indexes, configs and platforms.  The documents below have the
 * shapes registries really serve (buildkit's OCI index with attestations,
 * Docker Hub's manifest lists); expected platforms follow containerd 1.6's
 * platforms.Normalize and expected media types the OCI image spec. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/manifest.h"
#include "lib/util.h"

#define D_AMD64 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D_ARM64 "sha256:2222222222222222222222222222222222222222222222222222222222222222"
#define D_ATTEST "sha256:3333333333333333333333333333333333333333333333333333333333333333"
#define D_ARMV7 "sha256:4444444444444444444444444444444444444444444444444444444444444444"
#define D_CONFIG "sha256:5555555555555555555555555555555555555555555555555555555555555555"
#define D_L1 "sha256:6666666666666666666666666666666666666666666666666666666666666666"
#define D_L2 "sha256:7777777777777777777777777777777777777777777777777777777777777777"
#define D_L3 "sha256:8888888888888888888888888888888888888888888888888888888888888888"
#define D_SIG_512                                                                                  \
  "sha512:99999999999999999999999999999999999999999999999999999999999999999999999999999999999999"  \
  "999999999999999999999999999999999999"

#define MT_LAYER_GZIP "application/vnd.oci.image.layer.v1.tar+gzip"

/* What buildkit pushes: one manifest per platform plus an attestation
 * manifest (unknown/unknown) per image, and here a signature artifact whose
 * media type and digest algorithm sbdisk does not use. */
static const char oci_index[] =
    "{\n"
    "  \"schemaVersion\": 2,\n"
    "  \"mediaType\": \"" SBD_MT_OCI_INDEX "\",\n"
    "  \"manifests\": [\n"
    "    {\"mediaType\": \"" SBD_MT_OCI_MANIFEST "\", \"digest\": \"" D_AMD64
    "\", \"size\": 1613,\n"
    "     \"platform\": {\"architecture\": \"amd64\", \"os\": \"linux\"}},\n"
    "    {\"mediaType\": \"" SBD_MT_OCI_MANIFEST "\", \"digest\": \"" D_ARM64
    "\", \"size\": 1613,\n"
    "     \"platform\": {\"architecture\": \"arm64\", \"os\": \"linux\", \"variant\": \"v8\"}},\n"
    "    {\"mediaType\": \"" SBD_MT_OCI_MANIFEST "\", \"digest\": \"" D_ATTEST
    "\", \"size\": 839,\n"
    "     \"annotations\": {\"vnd.docker.reference.digest\": \"" D_AMD64 "\",\n"
    "                     \"vnd.docker.reference.type\": \"attestation-manifest\"},\n"
    "     \"platform\": {\"architecture\": \"unknown\", \"os\": \"unknown\"}},\n"
    "    {\"mediaType\": \"application/vnd.dev.cosign.artifact.sig.v1+json\",\n"
    "     \"digest\": \"" D_SIG_512 "\", \"size\": 242}\n"
    "  ]\n"
    "}\n";

/* Docker Hub's manifest list shape (no annotations, Docker media types). */
static const char docker_list[] =
    "{\"schemaVersion\":2,\"mediaType\":\"" SBD_MT_DOCKER_LIST "\",\"manifests\":["
    "{\"mediaType\":\"" SBD_MT_DOCKER_MANIFEST "\",\"size\":528,\"digest\":\"" D_AMD64 "\","
    "\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}},"
    "{\"mediaType\":\"" SBD_MT_DOCKER_MANIFEST "\",\"size\":528,\"digest\":\"" D_ARMV7 "\","
    "\"platform\":{\"architecture\":\"arm\",\"os\":\"linux\",\"variant\":\"v7\"}},"
    "{\"mediaType\":\"" SBD_MT_DOCKER_MANIFEST "\",\"size\":528,\"digest\":\"" D_ARM64 "\","
    "\"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\",\"variant\":\"v8\"}}]}";

static const char oci_manifest[] =
    "{\n"
    "  \"schemaVersion\": 2,\n"
    "  \"mediaType\": \"" SBD_MT_OCI_MANIFEST "\",\n"
    "  \"config\": {\"mediaType\": \"" SBD_MT_OCI_CONFIG "\", \"digest\": \"" D_CONFIG
    "\", \"size\": 2417},\n"
    "  \"layers\": [\n"
    "    {\"mediaType\": \"" MT_LAYER_GZIP "\", \"digest\": \"" D_L1 "\", \"size\": 29124181},\n"
    "    {\"mediaType\": \"application/vnd.oci.image.layer.v1.tar+zstd\", \"digest\": \"" D_L2
    "\",\n"
    "     \"size\": 1024, \"annotations\": {\"org.opencontainers.image.title\": \"x\"}},\n"
    "    {\"mediaType\": \"application/vnd.oci.image.layer.v1.tar\", \"digest\": \"" D_L3
    "\", \"size\": 0}\n"
    "  ],\n"
    "  \"annotations\": {\"org.opencontainers.image.created\": \"2024-05-01T00:00:00Z\"}\n"
    "}\n";

/* A Windows-style foreign layer carries urls. */
static const char docker_manifest[] =
    "{\"schemaVersion\":2,\"mediaType\":\"" SBD_MT_DOCKER_MANIFEST "\","
    "\"config\":{\"mediaType\":\"" SBD_MT_DOCKER_CONFIG "\",\"size\":1469,\"digest\":\"" D_CONFIG
    "\"},"
    "\"layers\":["
    "{\"mediaType\":\"application/vnd.docker.image.rootfs.diff.tar.gzip\",\"size\":3370706,"
    "\"digest\":\"" D_L1 "\"},"
    "{\"mediaType\":\"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip\",\"size\":5,"
    "\"digest\":\"" D_L2 "\",\"urls\":[\"https://a.example/l\",\"https://b.example/l\"]}]}";

static const char config_json[] =
    "{\"architecture\":\"arm\",\"os\":\"linux\",\"variant\":\"v7\","
    "\"config\":{\"Env\":[\"PATH=/usr/bin\"],\"Cmd\":[\"sh\"]},"
    "\"created\":\"2024-05-01T00:00:00Z\","
    "\"history\":[{\"created_by\":\"ADD rootfs.tar /\"},{\"created_by\":\"RUN true\"}],"
    "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" D_L1 "\",\"" D_L2 "\"]}}";

/* --- platforms ------------------------------------------------------------------ */

static const struct {
  const char *in, *want;
} normalized[] = {
    {"linux/amd64", "linux/amd64"},       {"Linux/AMD64", "linux/amd64"},
    {"linux/x86_64", "linux/amd64"},      {"linux/x86-64", "linux/amd64"},
    {"linux/amd64/v1", "linux/amd64"},    {"linux/amd64/v3", "linux/amd64/v3"},
    {"linux/i386", "linux/386"},          {"linux/i386/v5", "linux/386"},
    {"linux/aarch64", "linux/arm64"},     {"linux/arm64/v8", "linux/arm64"},
    {"linux/arm64/8", "linux/arm64"},     {"linux/aarch64/V8", "linux/arm64"},
    {"linux/arm64/v9", "linux/arm64/v9"}, {"linux/armhf", "linux/arm/v7"},
    {"linux/armel", "linux/arm/v6"},      {"linux/arm", "linux/arm/v7"},
    {"linux/arm/7", "linux/arm/v7"},      {"linux/arm/5", "linux/arm/v5"},
    {"linux/arm/6", "linux/arm/v6"},      {"linux/arm/8", "linux/arm/v8"},
    {"linux/arm/v6", "linux/arm/v6"},     {"macos/arm64", "darwin/arm64"},
    {"windows/amd64", "windows/amd64"},   {"linux/ppc64le", "linux/ppc64le"},
    {"linux/s390x", "linux/s390x"},       {"linux/riscv64", "linux/riscv64"},
};

START_TEST(test_platform_normalize)
{
  struct sbd_platform p;
  sbd_error_t err = NULL;
  ck_assert_msg(sbd_platform_parse(normalized[_i].in, &p, &err) == 0, "%s: %s", normalized[_i].in,
                err ? err->msg : "?");
  cleanup_free char *s = sbd_platform_format(&p);
  ck_assert_msg(strcmp(s, normalized[_i].want) == 0, "%s -> %s, expected %s", normalized[_i].in, s,
                normalized[_i].want);
  /* an empty variant is stored as NULL */
  ck_assert(p.variant == NULL || *p.variant != '\0');
  sbd_platform_free(&p);
}
END_TEST

START_TEST(test_platform_parse_bad)
{
  static const struct {
    const char *in, *why;
  } cases[] = {
      {"", "empty part"},
      {"linux", "names no architecture"},
      {"linux/", "empty part"},
      {"/amd64", "empty part"},
      {"linux//v7", "empty part"},
      {"linux/arm/v7/", "more than three parts"},
      {"linux/arm/v7/x", "more than three parts"},
      {"linux/amd 64", "may contain only"},
      {"linux/*", "may contain only"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    struct sbd_platform p;
    sbd_error_t err = NULL;
    ck_assert_msg(sbd_platform_parse(cases[i].in, &p, &err) == -1, "\"%s\" accepted", cases[i].in);
    ck_assert_int_eq(sbd_error_exit_code(err), SBD_EXIT_USAGE);
    cleanup_free char *quoted = xasprintf("invalid platform \"%s\": ", cases[i].in);
    ck_assert_msg(strncmp(err->msg, quoted, strlen(quoted)) == 0 && strstr(err->msg, cases[i].why),
                  "\"%s\": %s", cases[i].in, err->msg);
    ck_assert_ptr_null(p.os);
    sbd_error_free(&err);
  }
}
END_TEST

START_TEST(test_platform_format)
{
  struct sbd_platform p = {.os = "linux", .arch = "arm", .variant = "v7"};
  cleanup_free char *a = sbd_platform_format(&p);
  ck_assert_str_eq(a, "linux/arm/v7");
  p.variant = NULL;
  cleanup_free char *b = sbd_platform_format(&p);
  ck_assert_str_eq(b, "linux/arm");
  p.variant = "";
  cleanup_free char *c = sbd_platform_format(&p);
  ck_assert_str_eq(c, "linux/arm");
  /* as given: format does not normalise */
  struct sbd_platform raw = {.os = "Linux", .arch = "x86_64", .variant = NULL};
  cleanup_free char *d = sbd_platform_format(&raw);
  ck_assert_str_eq(d, "Linux/x86_64");
  struct sbd_platform no_os = {.os = "", .arch = "amd64"};
  cleanup_free char *e = sbd_platform_format(&no_os);
  ck_assert_str_eq(e, "unknown");
  no_os.os = NULL;
  cleanup_free char *f = sbd_platform_format(&no_os);
  ck_assert_str_eq(f, "unknown");
}
END_TEST

/* containerd fills an empty OS with the host's: always Linux for a node. */
START_TEST(test_platform_normalize_in_place)
{
  struct sbd_platform p = {.os = xstrdup(""), .arch = xstrdup("X86_64"), .variant = xstrdup("v1")};
  sbd_platform_normalize(&p);
  ck_assert_str_eq(p.os, "linux");
  ck_assert_str_eq(p.arch, "amd64");
  ck_assert_ptr_null(p.variant);
  sbd_platform_free(&p);
  ck_assert_ptr_null(p.os);
}
END_TEST

static bool match(const char *os1, const char *a1, const char *v1, const char *os2, const char *a2,
                  const char *v2)
{
  struct sbd_platform want = {(char *)os1, (char *)a1, (char *)v1};
  struct sbd_platform have = {(char *)os2, (char *)a2, (char *)v2};
  bool r = sbd_platform_match(&want, &have);
  /* match works on copies: the inputs are untouched */
  ck_assert_str_eq(want.arch, a1);
  ck_assert_str_eq(have.arch, a2);
  return r;
}

START_TEST(test_platform_match)
{
  ck_assert(match("linux", "amd64", NULL, "linux", "x86_64", NULL));
  ck_assert(match("linux", "amd64", NULL, "Linux", "amd64", "v1"));
  ck_assert(match("linux", "arm64", NULL, "linux", "arm64", "v8"));
  ck_assert(match("linux", "arm64", "v8", "linux", "aarch64", NULL));
  ck_assert(match("linux", "arm", NULL, "linux", "arm", "v7"));
  ck_assert(match("linux", "arm", "v7", "linux", "armhf", NULL));
  ck_assert(match("linux", "amd64", NULL, "linux", "amd64", ""));
  ck_assert(!match("linux", "arm", "v6", "linux", "arm", "v7"));
  ck_assert(!match("linux", "arm", "v7", "linux", "arm", "v6"));
  ck_assert(!match("linux", "amd64", NULL, "linux", "arm64", NULL));
  ck_assert(!match("linux", "amd64", NULL, "windows", "amd64", NULL));
  ck_assert(!match("linux", "amd64", "v2", "linux", "amd64", NULL));
  ck_assert(!match("linux", "amd64", NULL, "unknown", "unknown", NULL));
}
END_TEST

/* --- media types -------------------------------------------------------------- */

START_TEST(test_kind_of)
{
  const char *empty = "{}";
  ck_assert_int_eq(sbd_manifest_kind_of(SBD_MT_OCI_INDEX, empty, 2), SBD_KIND_INDEX);
  ck_assert_int_eq(sbd_manifest_kind_of(SBD_MT_DOCKER_LIST, empty, 2), SBD_KIND_INDEX);
  ck_assert_int_eq(sbd_manifest_kind_of(SBD_MT_OCI_MANIFEST, empty, 2), SBD_KIND_MANIFEST);
  ck_assert_int_eq(sbd_manifest_kind_of(SBD_MT_DOCKER_MANIFEST, empty, 2), SBD_KIND_MANIFEST);
  /* media types are case-insensitive and may carry parameters */
  ck_assert_int_eq(
      sbd_manifest_kind_of("Application/VND.OCI.image.index.v1+json; charset=utf-8", empty, 2),
      SBD_KIND_INDEX);
  /* the Content-Type decides over the body */
  ck_assert_int_eq(sbd_manifest_kind_of(SBD_MT_OCI_MANIFEST, oci_index, strlen(oci_index)),
                   SBD_KIND_MANIFEST);
  /* a generic Content-Type defers to the body's mediaType ... */
  ck_assert_int_eq(sbd_manifest_kind_of("application/json", docker_list, strlen(docker_list)),
                   SBD_KIND_INDEX);
  ck_assert_int_eq(sbd_manifest_kind_of(NULL, oci_manifest, strlen(oci_manifest)),
                   SBD_KIND_MANIFEST);
  /* ... and, without one, to the shape */
  const char *bare_index = "{\"schemaVersion\":2,\"manifests\":[]}";
  ck_assert_int_eq(sbd_manifest_kind_of(NULL, bare_index, strlen(bare_index)), SBD_KIND_INDEX);
  const char *bare_manifest = "{\"schemaVersion\":2,\"config\":{},\"layers\":[]}";
  ck_assert_int_eq(sbd_manifest_kind_of("text/plain", bare_manifest, strlen(bare_manifest)),
                   SBD_KIND_MANIFEST);
  /* Docker schema 1 is not something sbdisk reads */
  const char *schema1 = "{\"schemaVersion\":1,\"name\":\"x\",\"fsLayers\":[]}";
  ck_assert_int_eq(sbd_manifest_kind_of("application/vnd.docker.distribution.manifest.v1+prettyjws",
                                        schema1, strlen(schema1)),
                   SBD_KIND_UNKNOWN);
  /* a document that names another type is not an image, whatever its shape */
  const char *artifact = "{\"mediaType\":\"application/vnd.oci.artifact.manifest.v1+json\","
                         "\"layers\":[]}";
  ck_assert_int_eq(sbd_manifest_kind_of(NULL, artifact, strlen(artifact)), SBD_KIND_UNKNOWN);
  ck_assert_int_eq(sbd_manifest_kind_of(NULL, "{not json", 9), SBD_KIND_UNKNOWN);
  ck_assert_int_eq(sbd_manifest_kind_of(NULL, "[]", 2), SBD_KIND_UNKNOWN);
}
END_TEST

START_TEST(test_layer_compression)
{
  static const struct {
    const char *mt;
    enum sbd_compression c;
  } cases[] = {
      {"application/vnd.oci.image.layer.v1.tar", SBD_COMPRESSION_NONE},
      {"application/vnd.oci.image.layer.v1.tar+gzip", SBD_COMPRESSION_GZIP},
      {"application/vnd.oci.image.layer.v1.tar+zstd", SBD_COMPRESSION_ZSTD},
      {"application/vnd.oci.image.layer.nondistributable.v1.tar", SBD_COMPRESSION_NONE},
      {"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", SBD_COMPRESSION_GZIP},
      {"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", SBD_COMPRESSION_ZSTD},
      {"application/vnd.docker.image.rootfs.diff.tar.gzip", SBD_COMPRESSION_GZIP},
      {"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", SBD_COMPRESSION_GZIP},
      /* containerd's DiffCompression: "unknown", i.e. detected from the bytes */
      {"application/vnd.docker.image.rootfs.diff.tar", SBD_COMPRESSION_SNIFF},
      {"application/vnd.docker.image.rootfs.foreign.diff.tar", SBD_COMPRESSION_SNIFF},
      {"application/vnd.oci.image.layer.v1.tar+bzip2", SBD_COMPRESSION_UNKNOWN},
      {"application/vnd.oci.image.config.v1+json", SBD_COMPRESSION_UNKNOWN},
      {"application/vnd.oci.image.layer.v1.tar+gzip+encrypted", SBD_COMPRESSION_UNKNOWN},
      {"", SBD_COMPRESSION_UNKNOWN},
      {NULL, SBD_COMPRESSION_UNKNOWN},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
    ck_assert_msg(sbd_layer_compression(cases[i].mt) == cases[i].c, "%s", cases[i].mt);
  ck_assert_str_eq(sbd_compression_name(SBD_COMPRESSION_NONE), "none");
  ck_assert_str_eq(sbd_compression_name(SBD_COMPRESSION_GZIP), "gzip");
  ck_assert_str_eq(sbd_compression_name(SBD_COMPRESSION_ZSTD), "zstd");
  ck_assert_str_eq(sbd_compression_name(SBD_COMPRESSION_UNKNOWN), "unknown");
}
END_TEST

/* --- parsers ------------------------------------------------------------------- */

START_TEST(test_index_parse_oci)
{
  struct sbd_index idx;
  sbd_error_t err = NULL;
  ck_assert_msg(sbd_index_parse(oci_index, strlen(oci_index), &idx, &err) == 0, "%s",
                err ? err->msg : "?");
  ck_assert_str_eq(idx.media_type, SBD_MT_OCI_INDEX);
  ck_assert_uint_eq(idx.n_manifests, 4);
  const struct sbd_descriptor *m = idx.manifests;
  ck_assert_str_eq(m[0].media_type, SBD_MT_OCI_MANIFEST);
  ck_assert_str_eq(m[0].digest, D_AMD64);
  ck_assert_int_eq(m[0].size, 1613);
  ck_assert(m[0].has_platform);
  ck_assert_str_eq(m[0].platform.os, "linux");
  ck_assert_str_eq(m[0].platform.arch, "amd64");
  ck_assert_ptr_null(m[0].platform.variant);
  ck_assert(!m[0].is_attestation);
  ck_assert_str_eq(m[1].platform.arch, "arm64");
  /* stored as the index says it, normalised only when matching */
  ck_assert_str_eq(m[1].platform.variant, "v8");
  ck_assert(m[2].is_attestation);
  ck_assert_str_eq(m[2].platform.os, "unknown");
  ck_assert_int_eq(m[2].size, 839);
  /* an unknown media type (and digest algorithm) is kept, not refused */
  ck_assert_str_eq(m[3].media_type, "application/vnd.dev.cosign.artifact.sig.v1+json");
  ck_assert_str_eq(m[3].digest, D_SIG_512);
  ck_assert(!m[3].has_platform);
  ck_assert_uint_eq(m[3].n_urls, 0);
  sbd_index_free(&idx);
  ck_assert_ptr_null(idx.manifests);
}
END_TEST

START_TEST(test_index_parse_docker_list)
{
  struct sbd_index idx;
  sbd_error_t err = NULL;
  ck_assert_int_eq(sbd_index_parse(docker_list, strlen(docker_list), &idx, &err), 0);
  ck_assert_str_eq(idx.media_type, SBD_MT_DOCKER_LIST);
  ck_assert_uint_eq(idx.n_manifests, 3);
  for (size_t i = 0; i < 3; i++) {
    ck_assert_str_eq(idx.manifests[i].media_type, SBD_MT_DOCKER_MANIFEST);
    ck_assert_int_eq(idx.manifests[i].size, 528);
    ck_assert(!idx.manifests[i].is_attestation);
  }
  ck_assert_str_eq(idx.manifests[1].digest, D_ARMV7);
  ck_assert_str_eq(idx.manifests[1].platform.arch, "arm");
  ck_assert_str_eq(idx.manifests[1].platform.variant, "v7");
  sbd_index_free(&idx);
}
END_TEST

START_TEST(test_manifest_parse_oci)
{
  struct sbd_manifest m;
  sbd_error_t err = NULL;
  ck_assert_msg(sbd_manifest_parse(oci_manifest, strlen(oci_manifest), &m, &err) == 0, "%s",
                err ? err->msg : "?");
  ck_assert_str_eq(m.media_type, SBD_MT_OCI_MANIFEST);
  ck_assert_str_eq(m.config.media_type, SBD_MT_OCI_CONFIG);
  ck_assert_str_eq(m.config.digest, D_CONFIG);
  ck_assert_int_eq(m.config.size, 2417);
  ck_assert_uint_eq(m.n_layers, 3);
  ck_assert_str_eq(m.layers[0].digest, D_L1);
  ck_assert_int_eq(m.layers[0].size, 29124181);
  ck_assert_int_eq(sbd_layer_compression(m.layers[0].media_type), SBD_COMPRESSION_GZIP);
  ck_assert_int_eq(sbd_layer_compression(m.layers[1].media_type), SBD_COMPRESSION_ZSTD);
  ck_assert_str_eq(m.layers[2].digest, D_L3);
  ck_assert_int_eq(m.layers[2].size, 0);
  ck_assert(!m.layers[0].has_platform);
  sbd_manifest_free(&m);
  ck_assert_ptr_null(m.layers);
}
END_TEST

START_TEST(test_manifest_parse_docker)
{
  struct sbd_manifest m;
  sbd_error_t err = NULL;
  ck_assert_int_eq(sbd_manifest_parse(docker_manifest, strlen(docker_manifest), &m, &err), 0);
  ck_assert_str_eq(m.media_type, SBD_MT_DOCKER_MANIFEST);
  ck_assert_str_eq(m.config.media_type, SBD_MT_DOCKER_CONFIG);
  ck_assert_int_eq(m.config.size, 1469);
  ck_assert_uint_eq(m.n_layers, 2);
  ck_assert_int_eq(m.layers[0].size, 3370706);
  ck_assert_uint_eq(m.layers[0].n_urls, 0);
  ck_assert_uint_eq(m.layers[1].n_urls, 2);
  ck_assert_ptr_null(m.layers[0].first_url);
  ck_assert_str_eq(m.layers[1].first_url, "https://a.example/l");
  ck_assert_int_eq(sbd_layer_compression(m.layers[1].media_type), SBD_COMPRESSION_GZIP);
  sbd_manifest_free(&m);
}
END_TEST

/* An OCI manifest may leave mediaType out (image-spec 1.0). */
START_TEST(test_manifest_parse_without_media_type)
{
  const char *doc = "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"" SBD_MT_OCI_CONFIG "\","
                    "\"digest\":\"" D_CONFIG "\",\"size\":2},\"layers\":[]}";
  struct sbd_manifest m;
  sbd_error_t err = NULL;
  ck_assert_int_eq(sbd_manifest_parse(doc, strlen(doc), &m, &err), 0);
  ck_assert_ptr_null(m.media_type);
  ck_assert_uint_eq(m.n_layers, 0);
  sbd_manifest_free(&m);
}
END_TEST

START_TEST(test_config_parse)
{
  struct sbd_config c;
  sbd_error_t err = NULL;
  ck_assert_msg(sbd_config_parse(config_json, strlen(config_json), &c, &err) == 0, "%s",
                err ? err->msg : "?");
  ck_assert_str_eq(c.os, "linux");
  ck_assert_str_eq(c.arch, "arm");
  ck_assert_str_eq(c.variant, "v7");
  ck_assert_uint_eq(c.n_diff_ids, 2);
  ck_assert_str_eq(c.diff_ids[0], D_L1);
  ck_assert_str_eq(c.diff_ids[1], D_L2);
  sbd_config_free(&c);
  ck_assert_ptr_null(c.diff_ids);

  const char *minimal = "{\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}";
  ck_assert_int_eq(sbd_config_parse(minimal, strlen(minimal), &c, &err), 0);
  ck_assert_ptr_null(c.os);
  ck_assert_ptr_null(c.variant);
  ck_assert_uint_eq(c.n_diff_ids, 0);
  sbd_config_free(&c);
}
END_TEST

/* The build's default time comes from "created"; the expected values come
 * from the C library's timegm, an independent calendar. */
static int64_t config_created(const char *created_json)
{
  cleanup_free char *doc =
      xasprintf("{\"created\":%s,\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}", created_json);
  struct sbd_config c;
  sbd_error_t err = NULL;
  ck_assert_int_eq(sbd_config_parse(doc, strlen(doc), &c, &err), 0);
  int64_t t = c.created;
  sbd_config_free(&c);
  return t;
}

static int64_t utc(int y, int mo, int d, int h, int mi, int s)
{
  struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi, .tm_sec = s};
  return (int64_t)timegm(&tm);
}

START_TEST(test_config_created)
{
  ck_assert_int_eq(config_created("\"2024-05-01T12:34:56Z\""), utc(2024, 5, 1, 12, 34, 56));
  ck_assert_int_eq(config_created("\"2024-05-01T12:34:56.123456789Z\""), utc(2024, 5, 1, 12, 34, 56));
  ck_assert_int_eq(config_created("\"2000-02-29T00:00:00+02:30\""), utc(2000, 2, 28, 21, 30, 0));
  ck_assert_int_eq(config_created("\"2038-01-19T03:14:08-01:00\""), utc(2038, 1, 19, 4, 14, 8));
  ck_assert_int_eq(config_created("\"1970-01-01T00:00:00Z\""), 0);
  ck_assert_int_eq(config_created("\"2100-03-01T00:00:00Z\""), utc(2100, 3, 1, 0, 0, 0));
  /* absent, not a string, or not RFC 3339: no time, and no refusal */
  ck_assert_int_eq(config_created("null"), -1);
  ck_assert_int_eq(config_created("17"), -1);
  ck_assert_int_eq(config_created("\"yesterday\""), -1);
  ck_assert_int_eq(config_created("\"2024-05-01 12:34\""), -1);
  ck_assert_int_eq(config_created("\"2024-05-01T12:34:56\""), -1);
  ck_assert_int_eq(config_created("\"2024-05-01T12:34:56Zjunk\""), -1);
  ck_assert_int_eq(config_created("\"1969-12-31T23:59:59Z\""), -1);
}
END_TEST

/* --- malformed documents: each names its field ------------------------------------ */

enum doc_kind { DOC_INDEX, DOC_MANIFEST, DOC_CONFIG };

#define CFG_DESC "{\"mediaType\":\"" SBD_MT_OCI_CONFIG "\",\"digest\":\"" D_CONFIG "\",\"size\":2}"
#define LAYER(d) "{\"mediaType\":\"" MT_LAYER_GZIP "\",\"digest\":\"" d "\",\"size\":10}"
#define MANIFEST(config, layers) "{\"schemaVersion\":2,\"config\":" config ",\"layers\":" layers "}"
#define ENTRY(d, platform)                                                                         \
  "{\"mediaType\":\"" SBD_MT_OCI_MANIFEST "\",\"digest\":\"" d "\",\"size\":5" platform "}"
#define INDEX(entries) "{\"schemaVersion\":2,\"manifests\":[" entries "]}"
#define ROOTFS(r) "{\"os\":\"linux\",\"rootfs\":" r "}"

static const struct {
  enum doc_kind kind;
  const char *doc, *msg;
} malformed[] = {
    {DOC_MANIFEST,
     MANIFEST(CFG_DESC,
              "[" LAYER(D_L1) "," LAYER(D_L2) ",{\"mediaType\":\"" MT_LAYER_GZIP
                                              "\",\"digest\":\"sha256:abc\",\"size\":1}]"),
     "manifest: layers[2].digest is not a sha256 digest"},
    {DOC_MANIFEST,
     MANIFEST(CFG_DESC,
              "[{\"mediaType\":\"" MT_LAYER_GZIP "\",\"digest\":\"" D_L1 "\",\"size\":-1}]"),
     "manifest: layers[0].size is not a non-negative integer"},
    {DOC_MANIFEST,
     MANIFEST(CFG_DESC,
              "[{\"mediaType\":\"" MT_LAYER_GZIP "\",\"digest\":\"" D_L1 "\",\"size\":\"10\"}]"),
     "manifest: layers[0].size is not a non-negative integer"},
    {DOC_MANIFEST,
     MANIFEST(CFG_DESC,
              "[{\"mediaType\":\"" MT_LAYER_GZIP "\",\"digest\":\"" D_L1 "\",\"size\":1.5}]"),
     "manifest: layers[0].size is not a non-negative integer"},
    {DOC_MANIFEST,
     MANIFEST(CFG_DESC, "[{\"mediaType\":\"" MT_LAYER_GZIP "\",\"digest\":\"" D_L1 "\"}]"),
     "manifest: layers[0].size is missing"},
    {DOC_MANIFEST, MANIFEST(CFG_DESC, "[{\"digest\":\"" D_L1 "\",\"size\":1}]"),
     "manifest: layers[0].mediaType is missing"},
    {DOC_MANIFEST, MANIFEST(CFG_DESC, "[{\"mediaType\":7,\"digest\":\"" D_L1 "\",\"size\":1}]"),
     "manifest: layers[0].mediaType is not a string"},
    {DOC_MANIFEST, MANIFEST(CFG_DESC, "[{\"mediaType\":\"" MT_LAYER_GZIP "\",\"size\":1}]"),
     "manifest: layers[0].digest is missing"},
    {DOC_MANIFEST, MANIFEST(CFG_DESC, "[" LAYER(D_L1) ",\"" D_L2 "\"]"),
     "manifest: layers[1] is not an object"},
    {DOC_MANIFEST,
     MANIFEST(CFG_DESC, "[{\"mediaType\":\"" MT_LAYER_GZIP "\",\"digest\":\"" D_L1
                        "\",\"size\":1,\"urls\":\"https://x\"}]"),
     "manifest: layers[0].urls is not an array"},
    {DOC_MANIFEST,
     MANIFEST(CFG_DESC, "[{\"mediaType\":\"" MT_LAYER_GZIP "\",\"digest\":\"" D_L1
                        "\",\"size\":1,\"annotations\":[]}]"),
     "manifest: layers[0].annotations is not an object"},
    {DOC_MANIFEST, MANIFEST(CFG_DESC, "{}"), "manifest: layers is not an array"},
    {DOC_MANIFEST, "{\"schemaVersion\":2,\"config\":" CFG_DESC "}", "manifest: layers is missing"},
    {DOC_MANIFEST, "{\"schemaVersion\":2,\"layers\":[]}", "manifest: config is missing"},
    {DOC_MANIFEST,
     MANIFEST("{\"mediaType\":\"" SBD_MT_OCI_CONFIG "\",\"digest\":\"" D_CONFIG "\"}", "[]"),
     "manifest: config.size is missing"},
    {DOC_MANIFEST,
     MANIFEST("{\"mediaType\":\"" SBD_MT_OCI_CONFIG "\",\"digest\":\"sha256:"
              "5555555555555555555555555555555555555555555555555555555555555555 \",\"size\":2}",
              "[]"),
     "manifest: config.digest is not a sha256 digest"},
    {DOC_MANIFEST, "{\"schemaVersion\":1,\"config\":" CFG_DESC ",\"layers\":[]}",
     "manifest: schemaVersion is 1; only schema version 2 is supported"},
    {DOC_MANIFEST, "{\"schemaVersion\":\"2\",\"config\":" CFG_DESC ",\"layers\":[]}",
     "manifest: schemaVersion is not an integer"},
    {DOC_MANIFEST, "{\"config\":" CFG_DESC ",\"layers\":[]}", "manifest: schemaVersion is missing"},
    {DOC_MANIFEST,
     "{\"schemaVersion\":2,\"mediaType\":\"" SBD_MT_OCI_INDEX "\",\"config\":" CFG_DESC
     ",\"layers\":[]}",
     "manifest: mediaType \"" SBD_MT_OCI_INDEX "\" is not an image manifest"},
    {DOC_MANIFEST, "[1, 2]", "manifest: the document is not a JSON object"},
    {DOC_INDEX, "{\"schemaVersion\":2}", "index: manifests is missing"},
    {DOC_INDEX, INDEX(ENTRY("sha256:1111", "")),
     "index: manifests[0].digest is not a sha256 digest"},
    {DOC_INDEX, INDEX(ENTRY(D_AMD64, "") "," ENTRY(D_ARM64, ",\"platform\":\"linux/arm64\"")),
     "index: manifests[1].platform is not an object"},
    {DOC_INDEX, INDEX(ENTRY(D_AMD64, ",\"platform\":{\"os\":1,\"architecture\":\"amd64\"}")),
     "index: manifests[0].platform.os is not a string"},
    {DOC_INDEX, INDEX(ENTRY(D_AMD64, ",\"platform\":{\"os\":\"linux\",\"architecture\":[]}")),
     "index: manifests[0].platform.architecture is not a string"},
    {DOC_INDEX,
     INDEX(ENTRY(D_AMD64, ",\"platform\":{\"os\":\"linux\",\"architecture\":\"arm\","
                          "\"variant\":7}")),
     "index: manifests[0].platform.variant is not a string"},
    {DOC_INDEX,
     "{\"schemaVersion\":2,\"mediaType\":\"" SBD_MT_DOCKER_MANIFEST "\",\"manifests\":[]}",
     "index: mediaType \"" SBD_MT_DOCKER_MANIFEST "\" is not an image index"},
    {DOC_CONFIG, "{\"os\":\"linux\"}", "config: rootfs is missing"},
    {DOC_CONFIG, ROOTFS("[]"), "config: rootfs is not an object"},
    {DOC_CONFIG, ROOTFS("{\"diff_ids\":[]}"), "config: rootfs.type is missing"},
    {DOC_CONFIG, ROOTFS("{\"type\":\"tarballs\",\"diff_ids\":[]}"),
     "config: rootfs.type is \"tarballs\", not \"layers\""},
    {DOC_CONFIG, ROOTFS("{\"type\":\"layers\"}"), "config: rootfs.diff_ids is missing"},
    {DOC_CONFIG, ROOTFS("{\"type\":\"layers\",\"diff_ids\":\"" D_L1 "\"}"),
     "config: rootfs.diff_ids is not an array"},
    {DOC_CONFIG, ROOTFS("{\"type\":\"layers\",\"diff_ids\":[\"" D_L1 "\",\"md5:abc\"]}"),
     "config: rootfs.diff_ids[1] is not a sha256 digest"},
    {DOC_CONFIG, ROOTFS("{\"type\":\"layers\",\"diff_ids\":[\"" D_L1 "\",null]}"),
     "config: rootfs.diff_ids[1] is not a sha256 digest"},
    {DOC_CONFIG, "{\"architecture\":64,\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}",
     "config: architecture is not a string"},
};

static int parse_kind(enum doc_kind kind, const char *doc, sbd_error_t *err)
{
  size_t len = strlen(doc);
  int r;
  if (kind == DOC_INDEX) {
    struct sbd_index idx;
    r = sbd_index_parse(doc, len, &idx, err);
    ck_assert(idx.manifests == NULL && idx.n_manifests == 0 && idx.media_type == NULL);
  } else if (kind == DOC_MANIFEST) {
    struct sbd_manifest m;
    r = sbd_manifest_parse(doc, len, &m, err);
    ck_assert(m.layers == NULL && m.n_layers == 0 && m.config.digest == NULL);
  } else {
    struct sbd_config c;
    r = sbd_config_parse(doc, len, &c, err);
    ck_assert(c.diff_ids == NULL && c.n_diff_ids == 0 && c.os == NULL);
  }
  return r;
}

/* A refused document leaves nothing behind and says which field is wrong. */
START_TEST(test_malformed)
{
  sbd_error_t err = NULL;
  ck_assert_msg(parse_kind(malformed[_i].kind, malformed[_i].doc, &err) == -1, "accepted: %s",
                malformed[_i].doc);
  ck_assert_int_eq(sbd_error_exit_code(err), SBD_EXIT_IMAGE);
  ck_assert_str_eq(err->msg, malformed[_i].msg);
  sbd_error_free(&err);
}
END_TEST

/* jansson's own position and text, so the user can find the bad byte. */
START_TEST(test_invalid_json)
{
  const char *doc = "{\"rootfs\": {\"type\": \"layers\",\n  \"diff_ids\": [}\n";
  sbd_error_t err = NULL;
  struct sbd_config c;
  ck_assert_int_eq(sbd_config_parse(doc, strlen(doc), &c, &err), -1);
  ck_assert_int_eq(sbd_error_exit_code(err), SBD_EXIT_IMAGE);
  const char *prefix = "config: invalid JSON at line 2, column ";
  ck_assert_msg(strncmp(err->msg, prefix, strlen(prefix)) == 0, "%s", err->msg);
  ck_assert_msg(strstr(err->msg, "column 0: ") == NULL, "%s", err->msg);
  sbd_error_free(&err);
  struct sbd_index idx;
  ck_assert_int_eq(sbd_index_parse("", 0, &idx, &err), -1);
  ck_assert_ptr_nonnull(strstr(err->msg, "index: invalid JSON at line "));
  sbd_error_free(&err);
  /* trailing garbage after the document is refused too */
  const char *trailing = MANIFEST(CFG_DESC, "[]") " {}";
  struct sbd_manifest m;
  ck_assert_int_eq(sbd_manifest_parse(trailing, strlen(trailing), &m, &err), -1);
  ck_assert_ptr_nonnull(strstr(err->msg, "manifest: invalid JSON at line 1, column "));
  sbd_error_free(&err);
}
END_TEST

/* --- selection ---------------------------------------------------------------- */

static struct sbd_platform platform_of(const char *s)
{
  struct sbd_platform p;
  ck_assert_int_eq(sbd_platform_parse(s, &p, NULL), 0);
  return p;
}

static const char *select_digest(const char *doc, const char *want, sbd_error_t *err)
{
  static char chosen[128];
  struct sbd_index idx;
  ck_assert_int_eq(sbd_index_parse(doc, strlen(doc), &idx, NULL), 0);
  struct sbd_platform p = platform_of(want);
  const struct sbd_descriptor *d = NULL;
  const char *r = NULL;
  if (sbd_index_select(&idx, &p, &d, err) == 0) {
    ck_assert_ptr_nonnull(d);
    snprintf(chosen, sizeof(chosen), "%s", d->digest);
    r = chosen;
  }
  sbd_platform_free(&p);
  sbd_index_free(&idx);
  return r;
}

START_TEST(test_select)
{
  ck_assert_str_eq(select_digest(oci_index, "linux/amd64", NULL), D_AMD64);
  ck_assert_str_eq(select_digest(oci_index, "linux/x86_64", NULL), D_AMD64);
  ck_assert_str_eq(select_digest(oci_index, "linux/arm64", NULL), D_ARM64);
  ck_assert_str_eq(select_digest(oci_index, "linux/arm64/v8", NULL), D_ARM64);
  ck_assert_str_eq(select_digest(docker_list, "linux/arm", NULL), D_ARMV7);
  ck_assert_str_eq(select_digest(docker_list, "linux/armhf", NULL), D_ARMV7);
  ck_assert_str_eq(select_digest(docker_list, "linux/aarch64", NULL), D_ARM64);
}
END_TEST

/* Index entries for the selection tests: ENTRY_OF(media type, digest, extra). */
#define ENTRY_OF(mt, d, extra) "{\"mediaType\":\"" mt "\",\"digest\":\"" d "\",\"size\":5" extra "}"
#define PLATFORM(os, arch) ",\"platform\":{\"os\":\"" os "\",\"architecture\":\"" arch "\"}"
#define PLATFORM_V(os, arch, v)                                                                    \
  ",\"platform\":{\"os\":\"" os "\",\"architecture\":\"" arch "\",\"variant\":\"" v "\"}"
#define ATTESTATION ",\"annotations\":{\"vnd.docker.reference.type\":\"attestation-manifest\"}"

/* What must be skipped: an attestation and an unknown media type that claim
 * the platform, and an entry without a platform; nested indexes count. */
START_TEST(test_select_skips)
{
  /* clang-format off */
  const char *doc =
      INDEX(ENTRY_OF(SBD_MT_OCI_MANIFEST, D_ATTEST, PLATFORM("linux", "amd64") ATTESTATION) ","
            ENTRY_OF("application/vnd.example.thing", D_ARMV7, PLATFORM("linux", "amd64")) ","
            ENTRY_OF(SBD_MT_OCI_MANIFEST, D_ARM64, "") ","
            ENTRY_OF(SBD_MT_OCI_INDEX, D_AMD64, PLATFORM("linux", "amd64")) ","
            ENTRY_OF(SBD_MT_OCI_MANIFEST, D_L1, PLATFORM("linux", "amd64")));
  /* clang-format on */
  ck_assert_str_eq(select_digest(doc, "linux/amd64", NULL), D_AMD64);
}
END_TEST

START_TEST(test_select_failure)
{
  /* clang-format off */
  const char *doc =
      INDEX(ENTRY_OF(SBD_MT_OCI_MANIFEST, D_ARM64, PLATFORM("linux", "arm64")) ","
            ENTRY_OF(SBD_MT_OCI_MANIFEST, D_ARMV7, PLATFORM_V("linux", "arm", "v7")) ","
            ENTRY_OF(SBD_MT_OCI_MANIFEST, D_L1, PLATFORM("linux", "arm64")) ","
            ENTRY_OF(SBD_MT_OCI_MANIFEST, D_ATTEST, PLATFORM("unknown", "unknown") ATTESTATION));
  /* clang-format on */
  sbd_error_t err = NULL;
  ck_assert_ptr_null(select_digest(doc, "linux/amd64", &err));
  ck_assert_int_eq(sbd_error_exit_code(err), SBD_EXIT_IMAGE);
  ck_assert_str_eq(
      err->msg, "no manifest for platform linux/amd64; the index has: linux/arm64, linux/arm/v7");
  sbd_error_free(&err);

  ck_assert_ptr_null(select_digest(oci_index, "linux/s390x", &err));
  ck_assert_str_eq(
      err->msg, "no manifest for platform linux/s390x; the index has: linux/amd64, linux/arm64/v8");
  sbd_error_free(&err);

  /* v6 and v7 are different ARM targets */
  ck_assert_ptr_null(select_digest(docker_list, "linux/arm/v6", &err));
  ck_assert_ptr_nonnull(strstr(err->msg, "no manifest for platform linux/arm/v6;"));
  sbd_error_free(&err);

  ck_assert_ptr_null(select_digest(INDEX(""), "linux/amd64", &err));
  ck_assert_str_eq(err->msg,
                   "no manifest for platform linux/amd64; the index lists no image platforms");
  sbd_error_free(&err);
}
END_TEST

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

Suite *manifest_suite(void)
{
  Suite *s = suite_create("manifest");
  TCase *tc = tcase_create("platform");
  tcase_add_loop_test(tc, test_platform_normalize, 0, N(normalized));
  tcase_add_test(tc, test_platform_parse_bad);
  tcase_add_test(tc, test_platform_format);
  tcase_add_test(tc, test_platform_normalize_in_place);
  tcase_add_test(tc, test_platform_match);
  suite_add_tcase(s, tc);
  tc = tcase_create("documents");
  tcase_add_test(tc, test_kind_of);
  tcase_add_test(tc, test_layer_compression);
  tcase_add_test(tc, test_index_parse_oci);
  tcase_add_test(tc, test_index_parse_docker_list);
  tcase_add_test(tc, test_manifest_parse_oci);
  tcase_add_test(tc, test_manifest_parse_docker);
  tcase_add_test(tc, test_manifest_parse_without_media_type);
  tcase_add_test(tc, test_config_parse);
  tcase_add_test(tc, test_config_created);
  tcase_add_loop_test(tc, test_malformed, 0, N(malformed));
  tcase_add_test(tc, test_invalid_json);
  suite_add_tcase(s, tc);
  tc = tcase_create("select");
  tcase_add_test(tc, test_select);
  tcase_add_test(tc, test_select_skips);
  tcase_add_test(tc, test_select_failure);
  suite_add_tcase(s, tc);
  return s;
}

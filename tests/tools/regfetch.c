/* regfetch: the registry client and the blob cache from the command line, for
 * the integration tests.
 *
 *   regfetch [--insecure HOST[:PORT]]... manifest REF [REF...]
 *       prints, for each REF, "Media-Type: …", "Digest: …", a blank line and
 *       the body; all REFs share one client (and so its token cache)
 *   regfetch [--insecure HOST[:PORT]]... blob REF DIGEST CACHEDIR
 *       downloads the blob into the cache through the verifying writer and
 *       prints the cached file's path
 *
 * Errors go to stderr as "regfetch: <message>" and the exit status is the
 * error's class (lib/error.h), as sbdisk's would be. */
#include <curl/curl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cache.h"
#include "lib/registry.h"
#include "lib/util.h"

static const char usage[] =
    "usage: regfetch [--insecure HOST[:PORT]]... manifest REF [REF...]\n"
    "       regfetch [--insecure HOST[:PORT]]... blob REF DIGEST CACHEDIR\n";

static int fetch_manifest(struct sbd_registry *r, const char *name, sbd_error_t *err)
{
  struct sbd_ref ref;
  if (sbd_ref_parse(name, &ref, err) < 0)
    return -1;
  struct sbd_fetched_manifest m;
  int ret = sbd_registry_get_manifest(r, &ref, sbd_ref_reference(&ref), &m, err);
  if (ret == 0) {
    printf("Media-Type: %s\nDigest: %s\n\n", m.media_type, m.digest);
    fwrite(m.body, 1, m.len, stdout);
    printf("\n");
    sbd_fetched_manifest_free(&m);
  }
  sbd_ref_free(&ref);
  return ret;
}

static int sink_to_writer(void *opaque, const void *data, size_t len, sbd_error_t *err)
{
  return sbd_cache_writer_write(opaque, data, len, err);
}

static int fetch_blob(struct sbd_registry *r, const char *name, const char *digest,
                      const char *dir, sbd_error_t *err)
{
  struct sbd_ref ref;
  struct sbd_cache *cache = NULL;
  struct sbd_cache_writer *w = NULL;
  if (sbd_ref_parse(name, &ref, err) < 0)
    return -1;
  int ret = sbd_cache_open(dir, &cache, err);
  if (ret == 0)
    ret = sbd_cache_writer_begin(cache, digest, &w, err);
  if (ret == 0 && sbd_registry_get_blob(r, &ref, digest, sink_to_writer, w, err) < 0) {
    sbd_cache_writer_abort(w);
    ret = -1;
  } else if (ret == 0) {
    ret = sbd_cache_writer_commit(w, err);
  }
  if (ret == 0) {
    cleanup_free char *path = sbd_cache_path(cache, digest);
    printf("%s\n", path);
  }
  sbd_cache_free(cache);
  sbd_ref_free(&ref);
  return ret;
}

static int run(int argc, char **argv, const char **insecure, size_t n_insecure, sbd_error_t *err)
{
  struct sbd_registry_options opts = {.insecure = insecure, .n_insecure = n_insecure};
  struct sbd_registry *r = NULL;
  if (sbd_registry_new(&opts, &r, err) < 0)
    return -1;
  int ret = 0;
  if (strcmp(argv[0], "manifest") == 0 && argc >= 2) {
    for (int i = 1; i < argc && ret == 0; i++)
      ret = fetch_manifest(r, argv[i], err);
  } else if (strcmp(argv[0], "blob") == 0 && argc == 4) {
    ret = fetch_blob(r, argv[1], argv[2], argv[3], err);
  } else {
    ret = sbd_error_set(err, SBD_EXIT_USAGE, 0, "bad arguments\n%s", usage);
  }
  sbd_registry_free(r);
  return ret;
}

int main(int argc, char **argv)
{
  static const struct option longopts[] = {{"insecure", required_argument, NULL, 'k'},
                                           {"help", no_argument, NULL, 'h'},
                                           {NULL, 0, NULL, 0}};
  cleanup_free const char **insecure = xcalloc((size_t)argc, sizeof(*insecure));
  size_t n_insecure = 0;
  int c;
  while ((c = getopt_long(argc, argv, "+k:h", longopts, NULL)) != -1) {
    if (c == 'k') {
      insecure[n_insecure++] = optarg;
    } else {
      fputs(usage, c == 'h' ? stdout : stderr);
      return c == 'h' ? 0 : SBD_EXIT_USAGE;
    }
  }
  if (optind >= argc) {
    fputs(usage, stderr);
    return SBD_EXIT_USAGE;
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);
  cleanup_error sbd_error_t err = NULL;
  int rc = 0;
  if (run(argc - optind, argv + optind, insecure, n_insecure, &err) < 0) {
    fprintf(stderr, "regfetch: %s\n", err ? err->msg : "failed");
    rc = sbd_error_exit_code(err);
  }
  curl_global_cleanup();
  return rc;
}

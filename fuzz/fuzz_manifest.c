/* libFuzzer target: index, manifest and config documents (lib/manifest.h),
 * and platform selection over whatever index parses.  All three parsers see
 * every input: a registry may serve any of them where another is expected. */
#include <stdlib.h>
#include <string.h>

#include "fuzz/fuzz.h"
#include "lib/manifest.h"
#include "lib/util.h"

static void select_for(const struct sbd_index *idx, const char *platform)
{
  struct sbd_platform want = {0};
  cleanup_error sbd_error_t err = NULL;
  if (sbd_platform_parse(platform, &want, &err) < 0)
    abort();
  const struct sbd_descriptor *d = NULL;
  cleanup_error sbd_error_t sel_err = NULL;
  if (sbd_index_select(idx, &want, &d, &sel_err) == 0) {
    if (d == NULL || d < idx->manifests || d >= idx->manifests + idx->n_manifests)
      abort();
  } else if (sel_err == NULL || sel_err->msg == NULL) {
    abort();
  }
  sbd_platform_free(&want);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  const char *body = (const char *)data;
  (void)sbd_manifest_kind_of(NULL, body, size);

  struct sbd_index idx = {0};
  cleanup_error sbd_error_t err = NULL;
  if (sbd_index_parse(body, size, &idx, &err) == 0) {
    select_for(&idx, "linux/amd64");
    select_for(&idx, "linux/arm/v7");
    sbd_index_free(&idx);
  }

  struct sbd_manifest m = {0};
  cleanup_error sbd_error_t merr = NULL;
  if (sbd_manifest_parse(body, size, &m, &merr) == 0) {
    for (size_t i = 0; i < m.n_layers; i++)
      (void)sbd_compression_name(sbd_layer_compression(m.layers[i].media_type));
    sbd_manifest_free(&m);
  }

  struct sbd_config c = {0};
  cleanup_error sbd_error_t cerr = NULL;
  if (sbd_config_parse(body, size, &c, &cerr) == 0)
    sbd_config_free(&c);

  /* The same bytes as a --platform value: what parses is normalised, so its
   * formatted form must parse back to itself. */
  cleanup_free char *s = sbd_fuzz_cstr(data, size);
  struct sbd_platform p = {0};
  cleanup_error sbd_error_t perr = NULL;
  if (sbd_platform_parse(s, &p, &perr) == 0) {
    cleanup_free char *f = sbd_platform_format(&p);
    sbd_platform_free(&p);
    cleanup_error sbd_error_t ferr = NULL;
    if (sbd_platform_parse(f, &p, &ferr) < 0)
      abort();
    cleanup_free char *f2 = sbd_platform_format(&p);
    sbd_platform_free(&p);
    if (strcmp(f, f2) != 0)
      abort();
  }
  return 0;
}

/* libFuzzer target: image references (lib/ref.h).  Beyond not crashing, a
 * reference that parses must normalise to a name that parses again to the
 * same name: `sbdisk inspect` prints that name and users paste it back. */
#include <stdlib.h>
#include <string.h>

#include "fuzz/fuzz.h"
#include "lib/ref.h"
#include "lib/util.h"

static void ref_cleanup(struct sbd_ref *r)
{
  sbd_ref_free(r);
}
#define cleanup_ref __attribute__((cleanup(ref_cleanup)))

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  cleanup_free char *s = sbd_fuzz_cstr(data, size);
  cleanup_ref struct sbd_ref ref = {0};
  cleanup_error sbd_error_t err = NULL;
  if (sbd_ref_parse(s, &ref, &err) < 0) {
    if (err == NULL || err->msg == NULL)
      abort(); /* a refusal must say why */
    return 0;
  }
  cleanup_free char *name = sbd_ref_name(&ref);
  if (sbd_ref_is_oci_layout(&ref))
    return 0; /* "oci:DIR:TAG" is ambiguous when DIR holds ':', by design */
  if (sbd_ref_reference(&ref) == NULL || sbd_ref_registry_host(&ref) == NULL)
    abort();
  cleanup_ref struct sbd_ref again = {0};
  cleanup_error sbd_error_t err2 = NULL;
  if (sbd_ref_parse(name, &again, &err2) < 0)
    abort();
  cleanup_free char *name2 = sbd_ref_name(&again);
  if (strcmp(name, name2) != 0)
    abort();
  return 0;
}

/* libFuzzer target: the WWW-Authenticate challenge parser (lib/registry.h),
 * which reads a header any server on the path can send. */
#include <stdlib.h>

#include "fuzz/fuzz.h"
#include "lib/registry.h"
#include "lib/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  cleanup_free char *s = sbd_fuzz_cstr(data, size);
  struct sbd_auth_challenge c;
  if (sbd_auth_challenge_parse(s, &c) < 0) {
    if (c.scheme || c.realm || c.service || c.scope)
      abort(); /* a refusal leaves nothing behind to free */
    return 0;
  }
  if (c.scheme == NULL || c.scheme[0] == '\0')
    abort();
  sbd_auth_challenge_free(&c);
  return 0;
}

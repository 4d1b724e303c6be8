/* See fuzz.h. */
#include <string.h>

#include "fuzz/fuzz.h"
#include "lib/util.h"

char *sbd_fuzz_cstr(const uint8_t *data, size_t size)
{
  return xstrndup((const char *)data, strnlen((const char *)data, size));
}

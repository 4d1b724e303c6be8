/* Replays inputs through a fuzz target without libFuzzer, so that `make
 * check` (which has no time to fuzz) proves the corpus and every past
 * finding still pass.  Usage: replay_X FILE...; prints "ok FILE" per input.
 * A failing input aborts or trips a sanitizer, as under libFuzzer. */
#include <stdio.h>
#include <stdlib.h>

#include "fuzz/fuzz.h"
#include "lib/util.h"

#define INPUT_MAX (64 * 1024 * 1024)

int main(int argc, char **argv)
{
  for (int i = 1; i < argc; i++) {
    cleanup_free char *data = NULL;
    size_t len = 0;
    if (sbd_read_file(argv[i], INPUT_MAX, &data, &len) < 0) {
      perror(argv[i]);
      return 2;
    }
    LLVMFuzzerTestOneInput((const uint8_t *)data, len);
    printf("ok %s\n", argv[i]);
    fflush(stdout);
  }
  return 0;
}

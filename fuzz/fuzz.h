/* What every fuzz target shares: the libFuzzer entry point each defines, and
 * a NUL-terminated copy of the input for parsers that take C strings. */
#ifndef SBD_FUZZ_H
#define SBD_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The input up to its first NUL, as a string the caller frees: a C string
 * cannot hold what follows, and the parsers under test never see it. */
char *sbd_fuzz_cstr(const uint8_t *data, size_t size);

#endif

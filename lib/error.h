/* sbd_error: one precise sentence, built where the failure happens.
 *
 * Every fallible function returns int (0 on success, -1 on failure) and fills
 * an `sbd_error_t *err` with a message and the exit class.  Callers that add
 * context (the image, the layer) prefix the message; the top level prints it
 * once and exits with its class.  Modelled on crun's libcrun_error_t. */
#ifndef SBD_ERROR_H
#define SBD_ERROR_H

#include <stdarg.h>

/* Exit codes, one per class of failure (documented in man/sbdisk.1). */
enum sbd_exit {
  SBD_EXIT_OK = 0,
  SBD_EXIT_FAILURE = 1,     /* internal or unexpected I/O failure */
  SBD_EXIT_USAGE = 2,       /* bad command line or unreadable input list */
  SBD_EXIT_REGISTRY = 3,    /* network, registry or authentication failure */
  SBD_EXIT_IMAGE = 4,       /* the image itself is bad: digest, diffID, tar, manifest */
  SBD_EXIT_NOSPACE = 5,     /* the content does not fit the disk */
  SBD_EXIT_INTERRUPTED = 130,
};

struct sbd_error_s {
  int exit_code;
  int errnum; /* errno behind the failure, 0 if none */
  char *msg;
};
typedef struct sbd_error_s *sbd_error_t;

/* Sets *err (unless err is NULL or already set) and returns -1.  When errnum is
 * non-zero, ": strerror(errnum)" is appended. */
int sbd_error_set(sbd_error_t *err, int exit_code, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int sbd_error_setv(sbd_error_t *err, int exit_code, int errnum, const char *fmt, va_list ap);

/* Prepends context ("image X: layer Y: ") to an existing error; returns -1. */
int sbd_error_prefix(sbd_error_t *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The exit class of an error (SBD_EXIT_FAILURE when err is NULL). */
int sbd_error_exit_code(const sbd_error_t err);

void sbd_error_free(sbd_error_t *err);

#define cleanup_error __attribute__((cleanup(sbd_error_free)))

#endif

#include "error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

int sbd_error_setv(sbd_error_t *err, int exit_code, int errnum, const char *fmt, va_list ap)
{
  if (err == NULL || *err != NULL)
    return -1;
  char *msg = xvasprintf(fmt, ap);
  if (errnum != 0) {
    char *full = xasprintf("%s: %s", msg, strerror(errnum));
    free(msg);
    msg = full;
  }
  struct sbd_error_s *e = xcalloc(1, sizeof(*e));
  e->exit_code = exit_code;
  e->errnum = errnum;
  e->msg = msg;
  *err = e;
  return -1;
}

int sbd_error_set(sbd_error_t *err, int exit_code, int errnum, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  sbd_error_setv(err, exit_code, errnum, fmt, ap);
  va_end(ap);
  return -1;
}

int sbd_error_prefix(sbd_error_t *err, const char *fmt, ...)
{
  if (err == NULL || *err == NULL)
    return -1;
  va_list ap;
  va_start(ap, fmt);
  char *prefix = xvasprintf(fmt, ap);
  va_end(ap);
  char *msg = xasprintf("%s%s", prefix, (*err)->msg);
  free(prefix);
  free((*err)->msg);
  (*err)->msg = msg;
  return -1;
}

int sbd_error_exit_code(const sbd_error_t err)
{
  return err ? err->exit_code : SBD_EXIT_FAILURE;
}

void sbd_error_free(sbd_error_t *err)
{
  if (err == NULL || *err == NULL)
    return;
  free((*err)->msg);
  free(*err);
  *err = NULL;
}

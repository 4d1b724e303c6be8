#include "cli/signals.h"

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/util.h"

struct sbd_signals {
  sigset_t set; /* what the watcher waits for */
  sigset_t old; /* the mask before */
  struct sbd_tmpfiles *tmpfiles;
  pthread_t thread;
  _Atomic bool stopping; /* a SIGUSR1 from anyone else is not a stop */
};

/* Sent by sbd_signals_stop to the watcher alone. */
#define STOP_SIGNAL SIGUSR1

static void *watch(void *arg)
{
  struct sbd_signals *s = arg;
  int sig = 0;
  while (sigwait(&s->set, &sig) != 0 || (sig == STOP_SIGNAL && !s->stopping))
    ;
  if (sig == STOP_SIGNAL)
    return NULL;
  size_t n = sbd_tmpfiles_remove_all(s->tmpfiles);
  /* write(2), not stdio: another thread may hold stderr's lock. */
  dprintf(STDERR_FILENO, "\nsbdisk: interrupted by %s; %zu temporary file%s removed, nothing else changed\n",
          sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "SIGHUP", n, n == 1 ? "" : "s");
  _exit(128 + sig);
}

int sbd_signals_start(struct sbd_tmpfiles *t, struct sbd_signals **out, sbd_error_t *err)
{
  struct sbd_signals *s = xcalloc(1, sizeof(*s));
  s->tmpfiles = t;
  sigemptyset(&s->set);
  static const int taken[] = {SIGINT, SIGTERM, SIGHUP};
  for (size_t i = 0; i < sizeof(taken) / sizeof(taken[0]); i++) {
    /* One ignored by whoever started us stays ignored (nohup, `cmd &` in a
     * script): blocking it would make sigwait receive it. */
    struct sigaction old;
    if (sigaction(taken[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN)
      continue;
    sigaddset(&s->set, taken[i]);
  }
  sigaddset(&s->set, STOP_SIGNAL);
  int e = pthread_sigmask(SIG_BLOCK, &s->set, &s->old);
  if (e == 0) {
    e = pthread_create(&s->thread, NULL, watch, s);
    if (e != 0)
      pthread_sigmask(SIG_SETMASK, &s->old, NULL);
  }
  if (e != 0) {
    free(s);
    return sbd_error_set(err, SBD_EXIT_FAILURE, e, "cannot set up signal handling");
  }
  *out = s;
  return 0;
}

void sbd_signals_stop(struct sbd_signals *s)
{
  if (s == NULL)
    return;
  s->stopping = true;
  pthread_kill(s->thread, STOP_SIGNAL);
  pthread_join(s->thread, NULL);
  pthread_sigmask(SIG_SETMASK, &s->old, NULL);
  free(s);
}

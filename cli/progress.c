/* Terminal progress bars, redrawn in place (see progress.h). */
#include "cli/progress.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "disk/metadata.h"
#include "lib/util.h"

/* More layers than this are summed up in one line rather than drawn. */
#define MAX_BARS 8
#define REDRAW_NS (150 * 1000 * 1000L)

struct bar_state {
  uint64_t written_in; /* blob bytes the writer has consumed */
  bool writing;
  bool written;
  double first_seen; /* when bytes first moved, for the rate */
};

struct sbd_progress {
  FILE *tty;
  const struct sbd_progress_layer *layers;
  size_t n;
  struct sbd_fetcher *fetcher;
  struct bar_state *state;
  size_t drawn; /* lines of bars on screen now */
  double start;
  bool stop;
  pthread_mutex_t lock;
  pthread_cond_t wake;
  pthread_t thread;
};

static double now_seconds(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int term_width(FILE *tty)
{
  struct winsize ws;
  if (ioctl(fileno(tty), TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 40)
    return ws.ws_col;
  return 80;
}

/* "12.3 MiB" with one decimal, as containerd prints sizes. */
static void size_text(char *buf, size_t len, uint64_t bytes)
{
  cleanup_free char *s = sbd_metadata_human_size(bytes);
  snprintf(buf, len, "%s", s);
}

static void draw_bar(struct sbd_buf *b, int width, uint64_t done, uint64_t total)
{
  int fill = total ? (int)((double)width * (double)done / (double)total) : width;
  if (fill > width)
    fill = width;
  sbd_buf_append(b, "[", 1);
  for (int k = 0; k < width; k++)
    sbd_buf_append(b, k < fill ? "#" : ".", 1);
  sbd_buf_append(b, "]", 1);
}

/* One layer's line: what it is, its bar, bytes, rate and phase. */
static void draw_layer(struct sbd_progress *p, struct sbd_buf *b, size_t i, int cols, double t)
{
  struct sbd_fetch_status st;
  sbd_fetcher_status(p->fetcher, i, &st);
  struct bar_state *s = &p->state[i];
  uint64_t size = p->layers[i].size;
  bool downloading = st.phase == SBD_FETCH_RUNNING && !st.cached;
  uint64_t done = s->writing ? s->written_in : st.downloaded;
  const char *phase = s->writing                      ? "writing"
                      : st.phase == SBD_FETCH_WAITING ? "waiting"
                      : downloading                   ? "downloading"
                                                      : "ready";
  if (done > 0 && s->first_seen == 0)
    s->first_seen = t;
  char have[32], total[32], rate[48] = "";
  size_text(have, sizeof(have), done);
  size_text(total, sizeof(total), size);
  if (s->first_seen > 0 && t - s->first_seen > 0.5) {
    char r[32];
    size_text(r, sizeof(r), (uint64_t)((double)done / (t - s->first_seen)));
    snprintf(rate, sizeof(rate), "%s/s", r);
  }
  const char *label = p->layers[i].label;
  const char *colon = strchr(label, ':');
  char head[64];
  snprintf(head, sizeof(head), "%3zu/%zu %.12s", i + 1, p->n, colon ? colon + 1 : label);
  /* head, bar, "  have/total", rate, phase */
  int fixed = (int)strlen(head) + 1 + 2 + 22 + 12 + 12;
  int width = cols - fixed - 1;
  if (width > 40)
    width = 40;
  sbd_buf_appendf(b, "%s ", head);
  if (width >= 5)
    draw_bar(b, width, done, size);
  sbd_buf_appendf(b, " %10s/%-10s %11s %s\n", have, total, rate, phase);
}

static void draw(struct sbd_progress *p)
{
  double t = now_seconds();
  int cols = term_width(p->tty);
  struct sbd_buf b = {0};
  if (p->drawn > 0)
    sbd_buf_appendf(&b, "\033[%zuA", p->drawn); /* back to the first bar */
  size_t lines = 0, done = 0;
  uint64_t in = 0, total = 0;
  for (size_t i = 0; i < p->n; i++) {
    total += p->layers[i].size;
    in += p->state[i].written ? p->layers[i].size : p->state[i].written_in;
    done += p->state[i].written;
  }
  for (size_t i = 0; i < p->n && lines < MAX_BARS; i++) {
    if (p->state[i].written)
      continue;
    sbd_buf_append(&b, "\033[2K", 4);
    draw_layer(p, &b, i, cols, t);
    lines++;
  }
  char a[32], c[32];
  size_text(a, sizeof(a), in);
  size_text(c, sizeof(c), total);
  sbd_buf_append(&b, "\033[2K", 4);
  sbd_buf_appendf(&b, "writing ");
  draw_bar(&b, 30, in, total);
  sbd_buf_appendf(&b, " %zu/%zu layers, %s of %s, %.0fs\n", done, p->n, a, c, t - p->start);
  lines++;
  /* Lines left over from a taller drawing are cleared. */
  for (size_t k = lines; k < p->drawn; k++)
    sbd_buf_append(&b, "\033[2K\n", 5);
  if (p->drawn > lines)
    sbd_buf_appendf(&b, "\033[%zuA", p->drawn - lines);
  p->drawn = lines;
  fwrite(b.data, 1, b.len, p->tty);
  fflush(p->tty);
  sbd_buf_free(&b);
}

static void erase(struct sbd_progress *p)
{
  if (p->drawn == 0)
    return;
  fprintf(p->tty, "\033[%zuA\033[J", p->drawn);
  p->drawn = 0;
}

static void *run(void *arg)
{
  struct sbd_progress *p = arg;
  pthread_mutex_lock(&p->lock);
  while (!p->stop) {
    draw(p);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += REDRAW_NS;
    if (until.tv_nsec >= 1000000000L) {
      until.tv_sec++;
      until.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&p->wake, &p->lock, &until);
  }
  erase(p);
  fflush(p->tty);
  pthread_mutex_unlock(&p->lock);
  return NULL;
}

int sbd_progress_start(FILE *tty, const struct sbd_progress_layer *layers, size_t n,
                       struct sbd_fetcher *fetcher, struct sbd_progress **out, sbd_error_t *err)
{
  struct sbd_progress *p = xcalloc(1, sizeof(*p));
  p->tty = tty;
  p->layers = layers;
  p->n = n;
  p->fetcher = fetcher;
  p->state = xcalloc(n ? n : 1, sizeof(*p->state));
  p->start = now_seconds();
  pthread_mutex_init(&p->lock, NULL);
  pthread_cond_init(&p->wake, NULL);
  int e = pthread_create(&p->thread, NULL, run, p);
  if (e != 0) {
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->wake);
    free(p->state);
    free(p);
    return sbd_error_set(err, SBD_EXIT_FAILURE, e, "cannot start the progress display");
  }
  *out = p;
  return 0;
}

void sbd_progress_writing(struct sbd_progress *p, size_t i, uint64_t in_bytes)
{
  pthread_mutex_lock(&p->lock);
  if (!p->state[i].writing)
    p->state[i].first_seen = 0; /* the rate from here on is the writer's */
  p->state[i].writing = true;
  p->state[i].written_in = in_bytes;
  pthread_mutex_unlock(&p->lock);
}

void sbd_progress_written(struct sbd_progress *p, size_t i)
{
  pthread_mutex_lock(&p->lock);
  p->state[i].written = true;
  pthread_mutex_unlock(&p->lock);
}

void sbd_progress_print(struct sbd_progress *p, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  pthread_mutex_lock(&p->lock);
  erase(p);
  vfprintf(p->tty, fmt, ap);
  draw(p);
  pthread_mutex_unlock(&p->lock);
  va_end(ap);
}

void sbd_progress_stop(struct sbd_progress *p)
{
  if (p == NULL)
    return;
  pthread_mutex_lock(&p->lock);
  p->stop = true;
  pthread_cond_signal(&p->wake);
  pthread_mutex_unlock(&p->lock);
  pthread_join(p->thread, NULL);
  pthread_mutex_destroy(&p->lock);
  pthread_cond_destroy(&p->wake);
  free(p->state);
  free(p);
}

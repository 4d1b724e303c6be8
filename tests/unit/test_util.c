#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

struct item {
  uint32_t key;
  uint32_t tie; /* orders equal keys, so the result is unique */
};

static uint16_t item_top16(const void *x)
{
  return (uint16_t)(((const struct item *)x)->key >> 16);
}

static int item_cmp(const void *x, const void *y)
{
  const struct item *a = x, *b = y;
  if (a->key != b->key)
    return a->key < b->key ? -1 : 1;
  return a->tie < b->tie ? -1 : a->tie > b->tie;
}

/* sbd_sort_spread against qsort: spread keys, keys whose top 16 bits all
 * collide (as names made to collide would), and lists below the threshold. */
static void check_sort(size_t n, uint32_t mask, uint32_t seed)
{
  struct item *a = calloc(n ? n : 1, sizeof(*a)), *b = calloc(n ? n : 1, sizeof(*b));
  uint32_t x = seed;
  for (size_t i = 0; i < n; i++) {
    x = x * 1664525u + 1013904223u;
    a[i] = (struct item){.key = x & mask, .tie = (uint32_t)(n - i)};
  }
  memcpy(b, a, n * sizeof(*a));
  qsort(b, n, sizeof(*b), item_cmp);
  sbd_sort_spread(a, n, sizeof(*a), item_top16, item_cmp);
  ck_assert_msg(memcmp(a, b, n * sizeof(*a)) == 0, "n %zu, mask %08x: differs from qsort", n, mask);
  free(a);
  free(b);
}

START_TEST(test_sort_spread)
{
  check_sort(0, 0xffffffff, 1);
  check_sort(1, 0xffffffff, 1);
  check_sort(100, 0xffffffff, 2);
  check_sort(50000, 0xffffffff, 3);  /* buckets of a few */
  check_sort(20000, 0x0000ffff, 4);  /* one bucket: the guard's qsort */
  check_sort(20000, 0x00ff00ff, 5);  /* 256 buckets of ~80 */
  check_sort(20000, 0xff00ffff, 9);  /* high byte spread, low byte all equal */
  check_sort(20000, 0xffff0000, 6);  /* equal keys within buckets: by tie */
  check_sort(20000, 0, 7);           /* one key: every element in one bucket */
  check_sort(3000, 0x0000ffff, 8);   /* below the threshold, one bucket */
  /* In place: input already in order, and all equal (the md5 of many empty
   * files), come out as they went in. */
  enum { N = 9000 };
  static struct item in[N], want[N];
  for (size_t i = 0; i < N; i++)
    in[i] = (struct item){.key = (uint32_t)i * 477218u, .tie = 0};
  memcpy(want, in, sizeof(in));
  sbd_sort_spread(in, N, sizeof(*in), item_top16, item_cmp);
  ck_assert(memcmp(in, want, sizeof(in)) == 0);
  for (size_t i = 0; i < N; i++)
    in[i] = (struct item){.key = 0xdeadbeef, .tie = 3};
  memcpy(want, in, sizeof(in));
  sbd_sort_spread(in, N, sizeof(*in), item_top16, item_cmp);
  ck_assert(memcmp(in, want, sizeof(in)) == 0);
}
END_TEST

Suite *util_suite(void)
{
  Suite *s = suite_create("util");
  TCase *tc = tcase_create("util");
  tcase_add_test(tc, test_sort_spread);
  suite_add_tcase(s, tc);
  return s;
}

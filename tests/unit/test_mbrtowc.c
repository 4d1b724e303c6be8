/* disk/mbrtowc_ascii.c: the unit runner links with --wrap=mbrtowc as sbdisk
 * does, so mbrtowc here is the wrapper and __real_mbrtowc glibc's.  Whatever
 * the shortcut answers must be what glibc answers, state included. */
#include <check.h>
#include <errno.h>
#include <locale.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

size_t __real_mbrtowc(wchar_t *pwc, const char *s, size_t n, mbstate_t *ps);
size_t __wrap_mbrtowc(wchar_t *pwc, const char *s, size_t n, mbstate_t *ps);

/* Without the linker's --wrap, every other test here would compare glibc
 * with itself. */
START_TEST(test_mbrtowc_is_wrapped)
{
  size_t (*fn)(wchar_t *, const char *, size_t, mbstate_t *) = mbrtowc;
  ck_assert_ptr_eq((void *)fn, (void *)__wrap_mbrtowc);
}
END_TEST

/* Converts s[0..n) with both, from the same state, and compares everything
 * either could return or leave behind. */
static void expect_same(const char *s, size_t n, const mbstate_t *from)
{
  mbstate_t a = *from, b = *from;
  wchar_t wa = L'?', wb = L'?';
  errno = 0;
  size_t ra = mbrtowc(&wa, s, n, &a);
  int ea = errno;
  errno = 0;
  size_t rb = __real_mbrtowc(&wb, s, n, &b);
  int eb = errno;
  ck_assert_uint_eq(ra, rb);
  if (ra == (size_t)-1)
    ck_assert_int_eq(ea, eb);
  if (ra != (size_t)-1 && ra != (size_t)-2)
    ck_assert_int_eq(wa, wb);
  ck_assert_int_eq(mbsinit(&a) != 0, mbsinit(&b) != 0);
  ck_assert_int_eq(memcmp(&a, &b, sizeof(a)), 0);
}

static void check_every_first_byte(const char *locale)
{
  ck_assert_ptr_nonnull(setlocale(LC_CTYPE, locale));
  mbstate_t init;
  memset(&init, 0, sizeof(init));
  for (int c = 0; c < 256; c++) {
    char s[4] = {(char)c, 'x', '\0', '\0'};
    expect_same(s, 2, &init);
    expect_same(s, 1, &init);
  }
  expect_same("\xc3\xa9", 2, &init); /* é: two bytes */
  expect_same("", 0, &init);
}

START_TEST(test_mbrtowc_utf8_matches_glibc)
{
  check_every_first_byte("C.UTF-8");
}
END_TEST

START_TEST(test_mbrtowc_c_locale_matches_glibc)
{
  check_every_first_byte("C");
}
END_TEST

/* An ASCII byte after the first half of a two-byte character is an error,
 * not a character: the shortcut must not take it. */
START_TEST(test_mbrtowc_pending_character)
{
  ck_assert_ptr_nonnull(setlocale(LC_CTYPE, "C.UTF-8"));
  mbstate_t st;
  memset(&st, 0, sizeof(st));
  wchar_t w;
  ck_assert_uint_eq(mbrtowc(&w, "\xc3", 1, &st), (size_t)-2);
  ck_assert(!mbsinit(&st));
  expect_same("a", 1, &st);
  errno = 0;
  ck_assert_uint_eq(mbrtowc(&w, "a", 1, &st), (size_t)-1);
  ck_assert_int_eq(errno, EILSEQ);
}
END_TEST

/* A name as libarchive converts it: one call per byte, ASCII and not. */
START_TEST(test_mbrtowc_whole_name)
{
  ck_assert_ptr_nonnull(setlocale(LC_CTYPE, "C.UTF-8"));
  const char *name = "usr/lib/caf\xc3\xa9/x.py";
  const wchar_t *want = L"usr/lib/caf\u00e9/x.py";
  wchar_t got[32];
  mbstate_t st;
  memset(&st, 0, sizeof(st));
  size_t i = 0, len = strlen(name), k = 0;
  while (i < len) {
    size_t r = mbrtowc(&got[k++], name + i, len - i, &st);
    ck_assert(r != (size_t)-1 && r != (size_t)-2 && r > 0);
    i += r;
  }
  got[k] = L'\0';
  ck_assert(wcscmp(got, want) == 0);
}
END_TEST

Suite *mbrtowc_suite(void)
{
  Suite *s = suite_create("mbrtowc");
  TCase *tc = tcase_create("mbrtowc");
  tcase_add_test(tc, test_mbrtowc_is_wrapped);
  tcase_add_test(tc, test_mbrtowc_utf8_matches_glibc);
  tcase_add_test(tc, test_mbrtowc_c_locale_matches_glibc);
  tcase_add_test(tc, test_mbrtowc_pending_character);
  tcase_add_test(tc, test_mbrtowc_whole_name);
  suite_add_tcase(s, tc);
  return s;
}

/* Path cleaning and resolution, against what Go's filepath.Clean and
 * continuity's fs.RootPath (containerd 1.6) return for the same inputs. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "disk/path.h"

START_TEST(test_clean)
{
  /* Examples from Go's path/filepath documentation and tests. */
  static const char *const cases[][2] = {
      {"", "."},           {".", "."},           {"./", "."},          {"a/b/", "a/b"},
      {"a//b", "a/b"},     {"a/./b", "a/b"},     {"a/b/..", "a"},      {"a/../b", "b"},
      {"../a", "../a"},    {"../../a/..", "../.."}, {"/../a", "/a"},   {"/..", "/"},
      {"/", "/"},          {"//a//", "/a"},      {"a/../..", ".."},    {"./x/../../y", "../y"},
      {".wh..wh..opq", ".wh..wh..opq"},
      /* names that are clean already, or but for a trailing '/' (a short cut) */
      {"a", "a"},          {"a/", "a"},          {"a//", "a"},         {"a/b//", "a/b"},
      {"a/.", "a"},        {"...", "..."},       {"a/...", "a/..."},   {".a/", ".a"},
      {"a/..b/c.", "a/..b/c."}, {"usr/lib/x.py", "usr/lib/x.py"}, {"a/b/.", "a/b"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char *got = sbd_path_clean(cases[i][0]);
    ck_assert_msg(strcmp(got, cases[i][1]) == 0, "Clean(%s) = %s, want %s", cases[i][0], got,
                  cases[i][1]);
    free(got);
  }
}
END_TEST

/* A tiny filesystem for resolution tests: a list of (path, kind, target). */
struct fake_entry {
  const char *path;
  enum sbd_kind kind;
  const char *target;
};

static const struct fake_entry fake[] = {
    {"etc", SBD_KIND_DIR, NULL},
    {"usr", SBD_KIND_DIR, NULL},
    {"usr/lib", SBD_KIND_DIR, NULL},
    {"lib", SBD_KIND_SYMLINK, "usr/lib"},
    {"abs", SBD_KIND_SYMLINK, "/etc"},
    {"up", SBD_KIND_SYMLINK, "../../.."},
    {"loop", SBD_KIND_SYMLINK, "loop"},
    {"file", SBD_KIND_OTHER, NULL},
    {"usr/rel", SBD_KIND_SYMLINK, "../etc"},
    {"dangling", SBD_KIND_SYMLINK, "nowhere/else"},
};

/* Handles are 1 + index into fake[]; the root is 1000. */
static int fake_lookup(void *ctx, uintptr_t dir, const char *name, size_t len, uintptr_t *child,
                       enum sbd_kind *kind, sbd_error_t *err)
{
  (void)ctx;
  (void)err;
  char want[256];
  if (dir == 1000)
    snprintf(want, sizeof(want), "%.*s", (int)len, name);
  else
    snprintf(want, sizeof(want), "%s/%.*s", fake[dir - 1].path, (int)len, name);
  for (size_t i = 0; i < sizeof(fake) / sizeof(fake[0]); i++) {
    if (strcmp(fake[i].path, want) == 0) {
      *child = i + 1;
      *kind = fake[i].kind;
      return 0;
    }
  }
  *child = 0;
  *kind = SBD_KIND_ABSENT;
  return 0;
}

static int fake_readlink(void *ctx, uintptr_t node, char **target, sbd_error_t *err)
{
  (void)ctx;
  (void)err;
  *target = strdup(fake[node - 1].target);
  return 0;
}

static char *resolve(const char *p, bool follow, enum sbd_kind *kind, int *ret)
{
  struct sbd_resolve_ops ops = {.lookup = fake_lookup, .readlink = fake_readlink, .root = 1000};
  struct sbd_path out = {0};
  uintptr_t node;
  sbd_error_t err = NULL;
  *ret = sbd_path_resolve(&ops, NULL, p, follow, &out, &node, kind, &err);
  sbd_error_free(&err);
  char *s = sbd_path_string(&out);
  sbd_path_free(&out);
  return s;
}

START_TEST(test_resolve)
{
  static const struct {
    const char *in;
    const char *out;
  } cases[] = {
      {"lib/x", "usr/lib/x"},        /* relative symlink in the middle */
      {"abs/passwd", "etc/passwd"},  /* absolute target: relative to the layer root */
      {"up/etc/x", "etc/x"},         /* ".." in a target stops at the root */
      {"../../etc", "etc"},          /* ".." in the name stops at the root */
      {"/usr/lib", "usr/lib"},       /* absolute names are inside the root */
      {"usr/rel/x", "etc/x"},        /* relative to the symlink's own directory */
      {"dangling/y", "nowhere/else/y"}, /* a dangling link leads to where it points */
      {"new/a/b", "new/a/b"},        /* missing components are kept literally */
      {"lib", "usr/lib"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    enum sbd_kind kind;
    int ret;
    char *got = resolve(cases[i].in, true, &kind, &ret);
    ck_assert_int_eq(ret, 0);
    ck_assert_msg(strcmp(got, cases[i].out) == 0, "RootPath(%s) = %s, want %s", cases[i].in, got,
                  cases[i].out);
    free(got);
  }
}
END_TEST

START_TEST(test_resolve_last_not_followed)
{
  enum sbd_kind kind;
  int ret;
  char *got = resolve("lib", false, &kind, &ret);
  ck_assert_int_eq(ret, 0);
  ck_assert_str_eq(got, "lib");
  ck_assert_int_eq(kind, SBD_KIND_SYMLINK);
  free(got);
}
END_TEST

START_TEST(test_resolve_errors)
{
  enum sbd_kind kind;
  int ret;
  free(resolve("file/x", true, &kind, &ret)); /* through a regular file: ENOTDIR */
  ck_assert_int_eq(ret, -1);
  free(resolve("loop/x", true, &kind, &ret)); /* a symlink to itself: too many links */
  ck_assert_int_eq(ret, -1);
}
END_TEST

Suite *path_suite(void)
{
  Suite *s = suite_create("path");
  TCase *tc = tcase_create("path");
  tcase_add_test(tc, test_clean);
  tcase_add_test(tc, test_resolve);
  tcase_add_test(tc, test_resolve_last_not_followed);
  tcase_add_test(tc, test_resolve_errors);
  suite_add_tcase(s, tc);
  return s;
}

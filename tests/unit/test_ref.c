/* Image references.  Expected values are what the docker CLI prints for the
 * same input (distribution/reference's normalisation), and what containerd's
 * CRI keeps when a reference has both a tag and a digest. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "lib/ref.h"
#include "lib/util.h"

#define DGST "sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c"

static void assert_str_or_null(const char *got, const char *want, const char *what, const char *in)
{
  if (want == NULL)
    ck_assert_msg(got == NULL, "%s: %s is \"%s\", expected none", in, what, got);
  else
    ck_assert_msg(got && strcmp(got, want) == 0, "%s: %s is \"%s\", expected \"%s\"", in, what,
                  got ? got : "(null)", want);
}

static const struct {
  const char *in, *domain, *path, *tag, *digest, *name;
} good[] = {
    {"nginx", "docker.io", "library/nginx", "latest", NULL, "docker.io/library/nginx:latest"},
    {"nginx:1.27", "docker.io", "library/nginx", "1.27", NULL, "docker.io/library/nginx:1.27"},
    {"ubuntu", "docker.io", "library/ubuntu", "latest", NULL, "docker.io/library/ubuntu:latest"},
    {"ubuntu:22.04", "docker.io", "library/ubuntu", "22.04", NULL,
     "docker.io/library/ubuntu:22.04"},
    {"library/ubuntu", "docker.io", "library/ubuntu", "latest", NULL,
     "docker.io/library/ubuntu:latest"},
    {"docker.io/ubuntu", "docker.io", "library/ubuntu", "latest", NULL,
     "docker.io/library/ubuntu:latest"},
    {"index.docker.io/library/ubuntu", "docker.io", "library/ubuntu", "latest", NULL,
     "docker.io/library/ubuntu:latest"},
    {"index.docker.io/ubuntu", "docker.io", "library/ubuntu", "latest", NULL,
     "docker.io/library/ubuntu:latest"},
    {"dmcgowan/myapp", "docker.io", "dmcgowan/myapp", "latest", NULL,
     "docker.io/dmcgowan/myapp:latest"},
    /* "library/" is added only to single-component Docker Hub names */
    {"docker.io/library/foo/bar", "docker.io", "library/foo/bar", "latest", NULL,
     "docker.io/library/foo/bar:latest"},
    {"myregistry.example.com:5000/team/app:v1", "myregistry.example.com:5000", "team/app", "v1",
     NULL, "myregistry.example.com:5000/team/app:v1"},
    {"example.com/privatebase", "example.com", "privatebase", "latest", NULL,
     "example.com/privatebase:latest"},
    {"localhost/app", "localhost", "app", "latest", NULL, "localhost/app:latest"},
    {"localhost:5000/x:y", "localhost:5000", "x", "y", NULL, "localhost:5000/x:y"},
    {"127.0.0.1:5000/foo/bar", "127.0.0.1:5000", "foo/bar", "latest", NULL,
     "127.0.0.1:5000/foo/bar:latest"},
    {"[::1]:5000/a/b:c", "[::1]:5000", "a/b", "c", NULL, "[::1]:5000/a/b:c"},
    {"[fc00:1:2:3:4:5:6:7]/debian", "[fc00:1:2:3:4:5:6:7]", "debian", "latest", NULL,
     "[fc00:1:2:3:4:5:6:7]/debian:latest"},
    /* a host without '.' or ':' is a host when it is not lower case */
    {"Foo/bar", "Foo", "bar", "latest", NULL, "Foo/bar:latest"},
    /* "test_com" cannot be a host name: it is a Docker Hub namespace */
    {"test_com/foo", "docker.io", "test_com/foo", "latest", NULL, "docker.io/test_com/foo:latest"},
    /* a bare host-looking single name is still a Docker Hub image, and what
     * follows ':' is its tag */
    {"192.168.0.1:80", "docker.io", "library/192.168.0.1", "80", NULL,
     "docker.io/library/192.168.0.1:80"},
    {"ghcr.io/org/app@" DGST, "ghcr.io", "org/app", NULL, DGST, "ghcr.io/org/app@" DGST},
    {"redis@" DGST, "docker.io", "library/redis", NULL, DGST, "docker.io/library/redis@" DGST},
    /* tag and digest: the digest wins, the tag is dropped */
    {"busybox:latest@" DGST, "docker.io", "library/busybox", NULL, DGST,
     "docker.io/library/busybox@" DGST},
    {"ghcr.io/org/app:v2@" DGST, "ghcr.io", "org/app", NULL, DGST, "ghcr.io/org/app@" DGST},
    /* separators: '.', '_', '__' and runs of '-' */
    {"ab/c.d_e__f---g", "docker.io", "ab/c.d_e__f---g", "latest", NULL,
     "docker.io/ab/c.d_e__f---g:latest"},
    /* tags may use upper case, '.', '_' and '-' */
    {"app:V1.0_rc-1", "docker.io", "library/app", "V1.0_rc-1", NULL,
     "docker.io/library/app:V1.0_rc-1"},
};

START_TEST(test_ref_good)
{
  struct sbd_ref ref;
  sbd_error_t err = NULL;
  int r = sbd_ref_parse(good[_i].in, &ref, &err);
  ck_assert_msg(r == 0, "%s: %s", good[_i].in, err ? err->msg : "?");
  ck_assert(!sbd_ref_is_oci_layout(&ref));
  assert_str_or_null(ref.domain, good[_i].domain, "domain", good[_i].in);
  assert_str_or_null(ref.path, good[_i].path, "path", good[_i].in);
  assert_str_or_null(ref.tag, good[_i].tag, "tag", good[_i].in);
  assert_str_or_null(ref.digest, good[_i].digest, "digest", good[_i].in);
  cleanup_free char *name = sbd_ref_name(&ref);
  ck_assert_str_eq(name, good[_i].name);
  ck_assert_str_eq(sbd_ref_reference(&ref), good[_i].digest ? good[_i].digest : good[_i].tag);
  sbd_ref_free(&ref);
}
END_TEST

static const struct {
  const char *in, *why;
} bad[] = {
    {"Nginx", "repository name must be lowercase"},
    {"docker.io/docker/Docker", "repository name must be lowercase"},
    {"ghcr.io/Org/app:v1", "repository name must be lowercase"},
    {"", "the reference is empty"},
    {"nginx:", "the tag after ':' is empty"},
    {":v1", "the repository name is empty"},
    {"@" DGST, "the repository name is empty"},
    {"ghcr.io/", "the repository name is empty"},
    {"nginx@sha256:abc", "is not \"sha256:\" followed by 64 lower-case hex digits"},
    {"nginx@sha256:DBCC1C35AC38DF41FD2F5E4130B32FFDB93EBAE8B3DBE638C23575912276FC9C",
     "is not \"sha256:\" followed by 64 lower-case hex digits"},
    {"nginx@sha512:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c",
     "is not \"sha256:\" followed by 64 lower-case hex digits"},
    {"nginx@", "is not \"sha256:\" followed by 64 lower-case hex digits"},
    {"a//b", "has an empty path component"},
    {"docker///docker", "has an empty path component"},
    {"docker/", "has an empty path component"},
    {"-docker", "path component \"-docker\" is invalid"},
    {"docker-/docker", "path component \"docker-\" is invalid"},
    {"docker/dock..er", "path component \"dock..er\" is invalid"},
    {"docker/dock_.er", "path component \"dock_.er\" is invalid"},
    /* a '.' in the first component makes it a host, and this one is not */
    {"dock..er/docker", "registry host \"dock..er\" is not a valid"},
    {"____/____", "path component \"____\" is invalid"},
    {"a/b c", "path component \"b c\" is invalid"},
    {"nginx:-x", "tag \"-x\" may contain only"},
    {"nginx:.x", "tag \".x\" may contain only"},
    {"nginx:a+b", "tag \"a+b\" may contain only"},
    {"nginx:1:2", "tag \"1:2\" may contain only"},
    {"-docker.io/docker/docker", "registry host \"-docker.io\" is not a valid"},
    {"https://github.com/docker/docker", "registry host \"https:\" is not a valid"},
    {"fc00::1:5000/debian", "registry host \"fc00::1:5000\" is not a valid"},
    {"[fe80::1%eth0]:5000/debian", "registry host \"[fe80::1%eth0]:5000\" is not a valid"},
    {"[2001:db8::192.0.2.33]:5000/debian", "is not a valid"},
    {"example.com:/x", "registry host \"example.com:\" is not a valid"},
    {"example..com/x", "registry host \"example..com\" is not a valid"},
    /* no '/': a Docker Hub name whose tag starts at the first ':' */
    {"[fc00::1]", "path component \"[fc00\" is invalid"},
    /* '_' may start a tag but not a path component */
    {"_/app:_x", "path component \"_\" is invalid"},
    /* docker refuses what could be an image ID */
    {"1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a", "image ID"},
};

START_TEST(test_ref_bad)
{
  struct sbd_ref ref;
  sbd_error_t err = NULL;
  ck_assert_msg(sbd_ref_parse(bad[_i].in, &ref, &err) == -1, "%s was accepted", bad[_i].in);
  ck_assert_ptr_nonnull(err);
  ck_assert_int_eq(sbd_error_exit_code(err), SBD_EXIT_USAGE);
  cleanup_free char *quoted = xasprintf("invalid image reference \"%s\": ", bad[_i].in);
  ck_assert_msg(strncmp(err->msg, quoted, strlen(quoted)) == 0, "%s: message \"%s\"", bad[_i].in,
                err->msg);
  ck_assert_msg(strstr(err->msg, bad[_i].why) != NULL, "%s: message \"%s\" lacks \"%s\"",
                bad[_i].in, err->msg, bad[_i].why);
  /* nothing half-parsed is left behind */
  ck_assert_ptr_null(ref.domain);
  ck_assert_ptr_null(ref.path);
  ck_assert_ptr_null(ref.tag);
  ck_assert_ptr_null(ref.oci_dir);
  sbd_error_free(&err);
}
END_TEST

START_TEST(test_ref_uppercase_message)
{
  struct sbd_ref ref;
  sbd_error_t err = NULL;
  ck_assert_int_eq(sbd_ref_parse("Nginx", &ref, &err), -1);
  ck_assert_str_eq(err->msg,
                   "invalid image reference \"Nginx\": repository name must be lowercase");
  sbd_error_free(&err);
}
END_TEST

static char *repeat(char c, size_t n)
{
  char *s = xmalloc(n + 1);
  memset(s, c, n);
  s[n] = '\0';
  return s;
}

/* Tags are 1 to 128 characters. */
START_TEST(test_ref_tag_length)
{
  cleanup_free char *t128 = repeat('t', 128);
  cleanup_free char *ok = xasprintf("app:%s", t128);
  cleanup_free char *too_long = xasprintf("app:%st", t128);
  struct sbd_ref ref;
  sbd_error_t err = NULL;
  ck_assert_int_eq(sbd_ref_parse(ok, &ref, &err), 0);
  ck_assert_str_eq(ref.tag, t128);
  sbd_ref_free(&ref);
  ck_assert_int_eq(sbd_ref_parse(too_long, &ref, &err), -1);
  ck_assert_ptr_nonnull(strstr(err->msg, "the tag is 129 characters long; the limit is 128"));
  sbd_error_free(&err);
}
END_TEST

/* The whole name, host included, is at most 255 characters. */
START_TEST(test_ref_name_length)
{
  const char *host = "example.com/";
  cleanup_free char *path_ok = repeat('a', 255 - strlen(host));
  cleanup_free char *ok = xasprintf("%s%s", host, path_ok);
  cleanup_free char *too_long = xasprintf("%s%sa:v1", host, path_ok);
  struct sbd_ref ref;
  sbd_error_t err = NULL;
  ck_assert_int_eq(sbd_ref_parse(ok, &ref, &err), 0);
  sbd_ref_free(&ref);
  ck_assert_int_eq(sbd_ref_parse(too_long, &ref, &err), -1);
  ck_assert_ptr_nonnull(strstr(err->msg, "is 256 characters long; the limit is 255"));
  sbd_error_free(&err);
  /* Docker Hub names count their implied "docker.io/library/" too. */
  cleanup_free char *hub_path = repeat('b', 255 - strlen("docker.io/library/") + 1);
  ck_assert_int_eq(sbd_ref_parse(hub_path, &ref, &err), -1);
  ck_assert_ptr_nonnull(strstr(err->msg, "is 256 characters long"));
  sbd_error_free(&err);
}
END_TEST

START_TEST(test_ref_registry_host)
{
  static const struct {
    const char *in, *host;
  } cases[] = {
      {"nginx", "registry-1.docker.io"},  {"index.docker.io/library/nginx", "registry-1.docker.io"},
      {"ghcr.io/org/app", "ghcr.io"},     {"localhost:5000/x:y", "localhost:5000"},
      {"[::1]:5000/a/b:c", "[::1]:5000"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    struct sbd_ref ref;
    ck_assert_int_eq(sbd_ref_parse(cases[i].in, &ref, NULL), 0);
    ck_assert_str_eq(sbd_ref_registry_host(&ref), cases[i].host);
    sbd_ref_free(&ref);
  }
}
END_TEST

static const struct {
  const char *in, *dir, *tag;
} oci_good[] = {
    {"oci:/path/to/layout:tag", "/path/to/layout", "tag"},
    {"oci:/path/to/layout", "/path/to/layout", NULL},
    {"oci:examples/layout:v1.0", "examples/layout", "v1.0"},
    {"oci:./layout", "./layout", NULL},
    /* a ':' followed by a path is part of the directory */
    {"oci:./a:b/c", "./a:b/c", NULL},
    {"oci:/x:y/z:latest", "/x:y/z", "latest"},
};

START_TEST(test_ref_oci)
{
  struct sbd_ref ref;
  sbd_error_t err = NULL;
  const char *in = oci_good[_i].in;
  ck_assert_msg(sbd_ref_parse(in, &ref, &err) == 0, "%s: %s", in, err ? err->msg : "?");
  ck_assert(sbd_ref_is_oci_layout(&ref));
  assert_str_or_null(ref.oci_dir, oci_good[_i].dir, "oci_dir", in);
  assert_str_or_null(ref.oci_tag, oci_good[_i].tag, "oci_tag", in);
  ck_assert_ptr_null(ref.domain);
  ck_assert_ptr_null(ref.path);
  ck_assert_ptr_null(ref.tag);
  ck_assert_ptr_null(ref.digest);
  ck_assert_ptr_null(sbd_ref_registry_host(&ref));
  assert_str_or_null(sbd_ref_reference(&ref), oci_good[_i].tag, "reference", in);
  cleanup_free char *name = sbd_ref_name(&ref);
  ck_assert_str_eq(name, in);
  sbd_ref_free(&ref);
}
END_TEST

START_TEST(test_ref_oci_bad)
{
  static const struct {
    const char *in, *why;
  } cases[] = {
      {"oci:", "needs a directory"},
      {"oci::tag", "needs a directory"},
      {"oci:dir:", "the tag after the last ':' is empty"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    struct sbd_ref ref;
    sbd_error_t err = NULL;
    ck_assert_int_eq(sbd_ref_parse(cases[i].in, &ref, &err), -1);
    ck_assert_int_eq(sbd_error_exit_code(err), SBD_EXIT_USAGE);
    ck_assert_msg(strstr(err->msg, cases[i].why) && strstr(err->msg, cases[i].in),
                  "%s: message \"%s\"", cases[i].in, err->msg);
    ck_assert_ptr_null(ref.oci_dir);
    sbd_error_free(&err);
  }
}
END_TEST

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

Suite *ref_suite(void)
{
  Suite *s = suite_create("ref");
  TCase *tc = tcase_create("ref");
  tcase_add_loop_test(tc, test_ref_good, 0, N(good));
  tcase_add_loop_test(tc, test_ref_bad, 0, N(bad));
  tcase_add_test(tc, test_ref_uppercase_message);
  tcase_add_test(tc, test_ref_tag_length);
  tcase_add_test(tc, test_ref_name_length);
  tcase_add_test(tc, test_ref_registry_host);
  tcase_add_loop_test(tc, test_ref_oci, 0, N(oci_good));
  tcase_add_test(tc, test_ref_oci_bad);
  suite_add_tcase(s, tc);
  return s;
}

/* WWW-Authenticate parsing (RFC 7235 auth-params), with the headers real
 * registries send.  The HTTP side of the client is tested against a real
 * docker-registry in tests/integration/t_registry.sh. */
#include <check.h>
#include <stdlib.h>

#include "lib/registry.h"

/* Parses h, expecting success, and checks every field (NULL: absent). */
static void expect_challenge(const char *h, const char *scheme, const char *realm,
                             const char *service, const char *scope)
{
  struct sbd_auth_challenge c;
  ck_assert_msg(sbd_auth_challenge_parse(h, &c) == 0, "refused: %s", h);
  ck_assert_str_eq(c.scheme, scheme);
  ck_assert_pstr_eq(c.realm, realm);
  ck_assert_pstr_eq(c.service, service);
  ck_assert_pstr_eq(c.scope, scope);
  sbd_auth_challenge_free(&c);
}

START_TEST(test_docker_hub)
{
  expect_challenge("Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\","
                   "scope=\"repository:library/nginx:pull\"",
                   "Bearer", "https://auth.docker.io/token", "registry.docker.io",
                   "repository:library/nginx:pull");
}
END_TEST

START_TEST(test_ghcr)
{
  expect_challenge("Bearer realm=\"https://ghcr.io/token\",service=\"ghcr.io\","
                   "scope=\"repository:org/app:pull\"",
                   "Bearer", "https://ghcr.io/token", "ghcr.io", "repository:org/app:pull");
}
END_TEST

/* docker-registry's own challenge when pushing asks for two actions. */
START_TEST(test_quoted_comma)
{
  expect_challenge("Bearer realm=\"http://127.0.0.1:5001/token\",service=\"svc\","
                   "scope=\"repository:a/b:pull,push\"",
                   "Bearer", "http://127.0.0.1:5001/token", "svc", "repository:a/b:pull,push");
}
END_TEST

START_TEST(test_quoted_escape)
{
  expect_challenge("Bearer realm=\"https://x/t\",service=\"say \\\"hi\\\"\"", "Bearer", "https://x/t",
                   "say \"hi\"", NULL);
}
END_TEST

START_TEST(test_unquoted_and_spaces)
{
  expect_challenge("  bearer   Realm = https://auth.example/token ,  SERVICE=reg ,scope=\"a b\"  ",
                   "Bearer", "https://auth.example/token", "reg", "a b");
}
END_TEST

START_TEST(test_unknown_params_ignored)
{
  expect_challenge("Bearer error=\"insufficient_scope\",realm=\"r\",extra=1", "Bearer", "r", NULL,
                   NULL);
}
END_TEST

START_TEST(test_first_occurrence_wins)
{
  expect_challenge("Bearer realm=\"first\",realm=\"second\"", "Bearer", "first", NULL, NULL);
}
END_TEST

START_TEST(test_basic)
{
  expect_challenge("Basic realm=\"Registry Realm\"", "Basic", "Registry Realm", NULL, NULL);
  expect_challenge("BASIC", "Basic", NULL, NULL, NULL);
}
END_TEST

/* A list of challenges: the first one is returned, the next is not mixed in. */
START_TEST(test_challenge_list)
{
  expect_challenge("Bearer realm=\"a\", Basic realm=\"b\"", "Bearer", "a", NULL, NULL);
}
END_TEST

START_TEST(test_bearer_without_realm)
{
  expect_challenge("Bearer service=\"s\"", "Bearer", NULL, "s", NULL);
}
END_TEST

START_TEST(test_garbage)
{
  static const char *const bad[] = {
      "",
      "   ",
      "=realm",
      "Bearer realm=\"unterminated",
      "Bearer realm=",
      "Bearer realm=\"a\" junk",
      "Bearer realm",
      "Bearer,realm=\"a\"",
      "\"Bearer\" realm=\"a\"",
      "Bearer realm=\"a\",,=x",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    struct sbd_auth_challenge c;
    ck_assert_msg(sbd_auth_challenge_parse(bad[i], &c) < 0, "accepted: '%s'", bad[i]);
    ck_assert_ptr_null(c.scheme);
    ck_assert_ptr_null(c.realm);
  }
  struct sbd_auth_challenge c;
  ck_assert_int_lt(sbd_auth_challenge_parse(NULL, &c), 0);
}
END_TEST

Suite *registry_suite(void)
{
  Suite *s = suite_create("registry");
  TCase *tc = tcase_create("www-authenticate");
  tcase_add_test(tc, test_docker_hub);
  tcase_add_test(tc, test_ghcr);
  tcase_add_test(tc, test_quoted_comma);
  tcase_add_test(tc, test_quoted_escape);
  tcase_add_test(tc, test_unquoted_and_spaces);
  tcase_add_test(tc, test_unknown_params_ignored);
  tcase_add_test(tc, test_first_occurrence_wins);
  tcase_add_test(tc, test_basic);
  tcase_add_test(tc, test_challenge_list);
  tcase_add_test(tc, test_bearer_without_realm);
  tcase_add_test(tc, test_garbage);
  suite_add_tcase(s, tc);
  return s;
}

/* tests for node/http/auth.c: hash formats, Basic and Bearer credentials against a config,
 * malformed headers, and project scope. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "conf/conf.h"
#include "http/auth.h"

static void test_hash_roundtrip(void **st)
{
    (void)st;
    char h[256];
    assert_int_equal(mt_auth_hash("s3cret", 6, 2000, h, sizeof h), 0);
    assert_true(strncmp(h, "pbkdf2-sha256$2000$", 19) == 0);
    assert_true(mt_auth_verify(h, "s3cret", 6));
    assert_false(mt_auth_verify(h, "s3cres", 6));
    assert_false(mt_auth_verify(h, "s3cret", 5));
    assert_true(mt_auth_verify("sha256$9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                               "test", 4));
    assert_false(mt_auth_verify("sha256$9f86", "test", 4));
    assert_false(mt_auth_verify("md5$x", "test", 4));
    assert_false(mt_auth_verify("pbkdf2-sha256$0$00$00", "test", 4));
    assert_false(mt_auth_verify("pbkdf2-sha256$99999999999$00$00", "test", 4));
}

static void test_check(void **st)
{
    (void)st;
    char pw[256], yaml[2048];
    assert_int_equal(mt_auth_hash("pw", 2, 1000, pw, sizeof pw), 0);
    snprintf(yaml, sizeof yaml,
             "projects:\n  - name: p1\n    ae_title: P1\n"
             "users:\n  - name: alice\n    password: %s\n    projects: [p1]\n"
             "  - name: svc\n    token: sha256$9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n"
             "    admin: true\n",
             pw);
    char err[512];
    mt_conf_t *c = mt_conf_load_string(yaml, strlen(yaml), "t", err, sizeof err);
    assert_non_null(c);
    mt_auth_result_t r;
    const mt_conf_user_t *u = mt_auth_check(c, "Basic YWxpY2U6cHc=", &r); /* alice:pw */
    assert_int_equal(r, MT_AUTH_OK);
    assert_string_equal(u->name, "alice");
    assert_true(mt_auth_allows(u, "p1"));
    assert_false(mt_auth_allows(u, "p2"));
    assert_false(mt_auth_allows(u, NULL));
    assert_null(mt_auth_check(c, "Basic YWxpY2U6cHg=", &r)); /* alice:px */
    assert_int_equal(r, MT_AUTH_BAD);
    assert_null(mt_auth_check(c, "Basic !!!", &r));
    assert_null(mt_auth_check(c, "Basic YWxpY2U=", &r)); /* no colon */
    assert_null(mt_auth_check(c, NULL, &r));
    assert_int_equal(r, MT_AUTH_NONE);
    u = mt_auth_check(c, "Bearer test", &r);
    assert_non_null(u);
    assert_true(u->admin);
    assert_true(mt_auth_allows(u, NULL));
    assert_null(mt_auth_check(c, "Bearer tes", &r));
    assert_null(mt_auth_check(c, "Digest x", &r));
    mt_conf_free(c);
    /* a user naming an unknown project, a clear-text secret: refused at load */
    const char *bad1 = "users:\n  - name: a\n    token: sha256$00\n    projects: [nope]\n";
    assert_null(mt_conf_load_string(bad1, strlen(bad1), "t", err, sizeof err));
    const char *bad2 = "users:\n  - name: a\n    password: hunter2\n";
    assert_null(mt_conf_load_string(bad2, strlen(bad2), "t", err, sizeof err));
    assert_non_null(strstr(err, "hash"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_roundtrip),
        cmocka_unit_test(test_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

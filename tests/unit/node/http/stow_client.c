/* tests for node/http/stow_client.c: per-instance verdicts from STOW-RS responses (PS3.18
 * §10.5.3): 200 with ReferencedSOPSequence, 202 with FailedSOPSequence (transient and permanent
 * FailureReasons) and WarningReason, 409, an instance the response does not name, unreadable
 * bodies, HTTP statuses without a body (401/403/404 refused, 5xx/429/408 retried), and a body
 * in the shape our own server writes (node/http/stow.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "http/stow_client.h"
#include "util/alloc.h"

#define J "application/dicom+json"

static void run(int status, const char *ctype, const char *body, mt_stowc_item_t *it, size_t n)
{
    mt_stowc_outcomes(status, ctype, (const uint8_t *)body, body ? strlen(body) : 0, it, n);
}

static const char *const OURS_202 =
    "{\"00081190\":{\"vr\":\"UR\",\"Value\":[\"http://b/studies/1.2\"]},"
    "\"00081198\":{\"vr\":\"SQ\",\"Value\":[{\"00081150\":{\"vr\":\"UI\",\"Value\":[\"1.2.840."
    "10008.5.1.4.1.1.4\"]},"
    "\"00081155\":{\"vr\":\"UI\",\"Value\":[\"1.2.3.2\"]},\"00081197\":{\"vr\":\"US\",\"Value\":["
    "49152]}},"
    "{\"00081155\":{\"vr\":\"UI\",\"Value\":[\"1.2.3.3\"]},\"00081197\":{\"vr\":\"US\",\"Value\":["
    "42752]}}]},"
    "\"00081199\":{\"vr\":\"SQ\",\"Value\":[{\"00081150\":{\"vr\":\"UI\",\"Value\":[\"1.2.840."
    "10008.5.1.4.1.1.4\"]},"
    "\"00081155\":{\"vr\":\"UI\",\"Value\":[\"1.2.3.1\"]},"
    "\"00081190\":{\"vr\":\"UR\",\"Value\":[\"http://b/studies/1.2/series/1/instances/1.2.3.1\"]}},"
    "{\"00081155\":{\"vr\":\"UI\",\"Value\":[\"1.2.3.5\"]},\"00081196\":{\"vr\":\"US\",\"Value\":["
    "45056]}}]}}";

static void test_partial(void **state)
{
    (void)state;
    long live = mt_alloc_live();
    mt_stowc_item_t it[5] = {{.sop_uid = "1.2.3.1"},
                             {.sop_uid = "1.2.3.2"},
                             {.sop_uid = "1.2.3.3"},
                             {.sop_uid = "1.2.3.4"},
                             {.sop_uid = "1.2.3.5"}};
    run(202, J "; charset=utf-8", OURS_202, it, 5);
    assert_int_equal(it[0].verdict, MT_STOWC_DELIVERED);
    assert_string_equal(it[0].why, "");
    assert_int_equal(it[1].verdict, MT_STOWC_REFUSED); /* 0xC000 cannot understand */
    assert_int_equal(it[1].reason, 0xC000);
    assert_non_null(strstr(it[1].why, "0xC000"));
    assert_int_equal(it[2].verdict, MT_STOWC_RETRY); /* 0xA700 out of resources */
    assert_int_equal(it[2].reason, 0xA700);
    assert_int_equal(it[3].verdict, MT_STOWC_RETRY); /* not named: not confirmed */
    assert_non_null(strstr(it[3].why, "not in the response"));
    assert_int_equal(it[4].verdict, MT_STOWC_DELIVERED); /* with a warning */
    assert_int_equal(it[4].reason, 0xB000);
    assert_non_null(strstr(it[4].why, "WarningReason 0xB000"));
    assert_int_equal(mt_alloc_live(), live);
}

static void test_statuses(void **state)
{
    (void)state;
    mt_stowc_item_t it[1] = {{.sop_uid = "1.2.3.1"}};
    const char *ok = "[{\"00081199\":{\"vr\":\"SQ\",\"Value\":[{\"00081155\":{\"vr\":\"UI\","
                     "\"Value\":[\"1.2.3.1\"]}}]}}]"; /* wrapped in an array */
    run(200, J, ok, it, 1);
    assert_int_equal(it[0].verdict, MT_STOWC_DELIVERED);
    /* the same body with no Content-Type is still read (it looks like JSON) */
    run(200, NULL, ok, it, 1);
    assert_int_equal(it[0].verdict, MT_STOWC_DELIVERED);
    /* 200 but XML, empty or malformed: not confirmed, retried */
    run(200, "application/dicom+xml", "<NativeDicomModel/>", it, 1);
    assert_int_equal(it[0].verdict, MT_STOWC_RETRY);
    assert_non_null(strstr(it[0].why, "no readable"));
    run(200, J, "", it, 1);
    assert_int_equal(it[0].verdict, MT_STOWC_RETRY);
    run(200, J, "{\"00081199\":", it, 1);
    assert_int_equal(it[0].verdict, MT_STOWC_RETRY);
    /* a success body with an error status is not believed */
    run(500, J, ok, it, 1);
    assert_int_equal(it[0].verdict, MT_STOWC_RETRY);
    assert_non_null(strstr(it[0].why, "HTTP 500"));
    static const struct {
        int status;
        mt_stowc_verdict_t v;
    } table[] = {{401, MT_STOWC_REFUSED}, {403, MT_STOWC_REFUSED}, {404, MT_STOWC_REFUSED},
                 {400, MT_STOWC_REFUSED}, {413, MT_STOWC_REFUSED}, {415, MT_STOWC_REFUSED},
                 {301, MT_STOWC_REFUSED}, {501, MT_STOWC_REFUSED}, {409, MT_STOWC_REFUSED},
                 {408, MT_STOWC_RETRY},   {429, MT_STOWC_RETRY},   {500, MT_STOWC_RETRY},
                 {502, MT_STOWC_RETRY},   {503, MT_STOWC_RETRY},   {504, MT_STOWC_RETRY}};
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        run(table[i].status, "text/plain", "no", it, 1);
        assert_int_equal(it[0].verdict, table[i].v);
        char want[16];
        snprintf(want, sizeof want, "HTTP %d", table[i].status);
        assert_non_null(strstr(it[0].why, want));
    }
    run(401, NULL, NULL, it, 1);
    assert_non_null(strstr(it[0].why, "credentials"));
}

static void test_conflict(void **state)
{
    (void)state;
    /* 409 names each instance with its reason: a transient reason is still retried */
    const char *body = "{\"00081198\":{\"vr\":\"SQ\",\"Value\":["
                       "{\"00081155\":{\"vr\":\"UI\",\"Value\":[\"9.1\"]},"
                       "\"00081197\":{\"vr\":\"US\",\"Value\":[272]}},"
                       "{\"00081155\":{\"vr\":\"UI\",\"Value\":[\"9.2\"]},"
                       "\"00081197\":{\"vr\":\"US\",\"Value\":[290]}}]}}";
    mt_stowc_item_t it[3] = {{.sop_uid = "9.1"}, {.sop_uid = "9.2"}, {.sop_uid = "9.3"}};
    run(409, J, body, it, 3);
    assert_int_equal(it[0].verdict, MT_STOWC_RETRY);   /* 0x0110 processing failure */
    assert_int_equal(it[1].verdict, MT_STOWC_REFUSED); /* 0x0122 SOP class not supported */
    assert_non_null(strstr(it[1].why, "SOP class not supported"));
    assert_int_equal(it[2].verdict, MT_STOWC_REFUSED); /* 409, not named */
    /* junk in the sequences is ignored, not trusted */
    const char *junk = "{\"00081199\":{\"Value\":[1,\"x\",{\"00081155\":{\"Value\":[7]}},"
                       "{\"00081155\":{}}]},\"00081198\":5}";
    run(200, J, junk, it, 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(it[i].verdict, MT_STOWC_RETRY);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_partial),
        cmocka_unit_test(test_statuses),
        cmocka_unit_test(test_conflict),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

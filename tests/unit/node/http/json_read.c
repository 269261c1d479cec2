/* tests for node/http/json_read.c: every value type, escapes and surrogate pairs, nesting
 * limit, member lookup, and malformed texts (each refused with a reason, nothing leaked). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "http/json_read.h"
#include "util/alloc.h"
#include "util/err.h"

static mt_jsonv_t *parse(const char *s)
{
    mt_jsonv_t *v = NULL;
    const char *why = NULL;
    size_t at = 0;
    if (mt_jsonr_parse(s, strlen(s), &v, &at, &why))
        fail_msg("%s: %s at %zu", s, why, at);
    return v;
}

static void test_values(void **state)
{
    (void)state;
    long live = mt_alloc_live();
    mt_jsonv_t *v = parse(" {\"a\": [1, -2.5e2, true, false, null, \"x\\ty\\u00e9\\ud83d\\ude00\"],"
                          " \"b\": {}, \"c\": [] } ");
    assert_int_equal(v->type, MT_JSON_OBJECT);
    assert_int_equal(v->n, 3);
    const mt_jsonv_t *a = mt_jsonr_get(v, "a");
    assert_non_null(a);
    assert_int_equal(a->type, MT_JSON_ARRAY);
    assert_int_equal(a->n, 6);
    const mt_jsonv_t *e = a->child;
    assert_int_equal(e->type, MT_JSON_NUMBER);
    assert_true(e->num == 1.0);
    e = e->next;
    assert_true(e->num == -250.0);
    assert_string_equal(e->str, "-2.5e2");
    assert_int_equal((e = e->next)->type, MT_JSON_TRUE);
    assert_int_equal((e = e->next)->type, MT_JSON_FALSE);
    assert_int_equal((e = e->next)->type, MT_JSON_NULL);
    e = e->next;
    assert_int_equal(e->type, MT_JSON_STRING);
    assert_string_equal(e->str, "x\ty\xc3\xa9\xf0\x9f\x98\x80");
    assert_int_equal(mt_jsonr_get(v, "b")->type, MT_JSON_OBJECT);
    assert_int_equal(mt_jsonr_get(v, "b")->n, 0);
    assert_int_equal(mt_jsonr_get(v, "c")->n, 0);
    assert_null(mt_jsonr_get(v, "d"));
    assert_null(mt_jsonr_get(a, "a")); /* not an object */
    mt_jsonr_free(v);
    v = parse("\"top\"");
    assert_string_equal(v->str, "top");
    mt_jsonr_free(v);
    v = parse("0");
    assert_true(v->num == 0.0);
    mt_jsonr_free(v);
    assert_int_equal(mt_alloc_live(), live);
}

static void test_malformed(void **state)
{
    (void)state;
    long live = mt_alloc_live();
    static const char *const bad[] = {
        "",
        "   ",
        "{",
        "[1,]",
        "[1 2]",
        "{\"a\" 1}",
        "{\"a\":}",
        "{a:1}",
        "01",
        "1.",
        "1e",
        "-",
        "+1",
        "\"abc",
        "\"a\\x\"",
        "\"\\u12\"",
        "\"\\ud800\"",
        "\"\\udc00\"",
        "\"\\ud800\\u0041\"",
        "\"\\u0000\"",
        "\"a\nb\"",
        "tru",
        "nul",
        "[1] [2]",
        "{}x",
        "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mt_jsonv_t *v = (mt_jsonv_t *)1;
        const char *why = NULL;
        size_t at = 99999;
        assert_int_equal(mt_jsonr_parse(bad[i], strlen(bad[i]), &v, &at, &why), MT_EMALFORMED);
        assert_null(v);
        assert_non_null(why);
        assert_true(at <= strlen(bad[i]));
    }
    /* a NUL byte inside the text ends nothing: it is just a bad character */
    mt_jsonv_t *v;
    assert_int_equal(mt_jsonr_parse("[1]\0", 4, &v, NULL, NULL), MT_EMALFORMED);
    assert_int_equal(mt_alloc_live(), live);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

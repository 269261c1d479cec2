/* tests for node/http/jsonp.c: every value type, nesting, escapes (surrogate pairs), number
 * literals kept, and the malformed inputs RFC 8259 forbids (each with its reason), the depth
 * limit, and that every prefix of a valid text is refused (never read past the end). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http/jsonp.h"
#include "util/err.h"

static mt_jsonv_t *ok(const char *text)
{
    mt_jsonv_t *v = NULL;
    mt_diag_t d = {0};
    int rc = mt_jsonp_parse(text, strlen(text), &v, &d);
    if (rc)
        fail_msg("'%s': %s at %llu", text, d.reason, (unsigned long long)d.offset);
    return v;
}

static const char *bad(const char *text, size_t len)
{
    mt_jsonv_t *v = (mt_jsonv_t *)1;
    mt_diag_t d = {0};
    assert_int_equal(mt_jsonp_parse(text, len, &v, &d), MT_EMALFORMED);
    assert_null(v);
    assert_non_null(d.reason);
    assert_true(d.offset <= len);
    return d.reason;
}

static void test_values(void **st)
{
    (void)st;
    mt_jsonv_t *v =
        ok(" {\"a\": [1, -2.5e3, 0, true, false, null, \"x\"], \"b\": {}, \"c\": []}\n");
    assert_int_equal(v->type, MT_JSON_OBJECT);
    assert_int_equal(v->n, 3);
    const mt_jsonv_t *a = mt_jsonv_get(v, "a");
    assert_int_equal(a->type, MT_JSON_ARRAY);
    assert_int_equal(a->n, 7);
    assert_int_equal(a->kids[0].type, MT_JSON_NUMBER);
    assert_string_equal(a->kids[1].str, "-2.5e3");
    assert_true(a->kids[1].num == -2500.0);
    assert_string_equal(a->kids[2].str, "0");
    assert_int_equal(a->kids[3].type, MT_JSON_TRUE);
    assert_int_equal(a->kids[4].type, MT_JSON_FALSE);
    assert_int_equal(a->kids[5].type, MT_JSON_NULL);
    assert_string_equal(a->kids[6].str, "x");
    assert_int_equal(mt_jsonv_get(v, "b")->type, MT_JSON_OBJECT);
    assert_int_equal(mt_jsonv_get(v, "b")->n, 0);
    assert_int_equal(mt_jsonv_get(v, "c")->n, 0);
    assert_null(mt_jsonv_get(v, "d"));
    assert_null(mt_jsonv_get(a, "a"));
    mt_jsonv_free(v);
    v = ok("123456789012345678901234567890");
    assert_string_equal(v->str, "123456789012345678901234567890"); /* literal kept */
    mt_jsonv_free(v);
}

static void test_strings(void **st)
{
    (void)st;
    mt_jsonv_t *v =
        ok("\"q\\\" b\\\\ s\\/ \\b\\f\\n\\r\\t \\u00e9 \\u5c71 \\ud83d\\ude00 \xe5\xb1\xb1\"");
    assert_string_equal(v->str, "q\" b\\ s/ \b\f\n\r\t \xc3\xa9 \xe5\xb1\xb1 \xf0\x9f\x98\x80 "
                                "\xe5\xb1\xb1");
    assert_int_equal(v->len, strlen(v->str));
    mt_jsonv_free(v);
    v = ok("{\"k\\u0041\": 1, \"kA\": 2}"); /* repeated names are kept, the first is found */
    assert_int_equal(v->n, 2);
    assert_string_equal(mt_jsonv_get(v, "kA")->str, "1");
    mt_jsonv_free(v);
}

static void test_malformed(void **st)
{
    (void)st;
    static const struct {
        const char *text, *why;
    } cases[] = {
        {"", "value expected"},
        {"  ", "value expected"},
        {"[1,]", "value expected"},
        {"[1 2]", "',' or ']' expected"},
        {"{\"a\" 1}", "':' expected"},
        {"{\"a\":1,}", "object member name expected"},
        {"{a:1}", "object member name expected"},
        {"01", "text after the value"},
        {"1.", "no digits after the decimal point"},
        {"1e", "no digits in the exponent"},
        {"-", "bad number"},
        {"+1", "value expected"},
        {"NaN", "value expected"},
        {"tru", "bad literal"},
        {"nul", "bad literal"},
        {"\"abc", "unterminated string"},
        {"\"a\tb\"", "control character in a string"},
        {"\"\\x\"", "unknown escape"},
        {"\"\\u12g4\"", "bad hex digit in \\u escape"},
        {"\"\\u12\"", "truncated \\u escape"},
        {"\"\\ud800\"", "lone high surrogate in \\u escape"},
        {"\"\\ud800\\u0041\"", "lone high surrogate in \\u escape"},
        {"\"\\udc00\"", "lone low surrogate in \\u escape"},
        {"\"\\u0000\"", "\\u0000 in a string"},
        {"\"\xc3\"", "invalid UTF-8 in a string"},
        {"\"\xc0\xaf\"", "invalid UTF-8 in a string"},         /* overlong */
        {"\"\xed\xa0\x80\"", "invalid UTF-8 in a string"},     /* surrogate */
        {"\"\xf4\x90\x80\x80\"", "invalid UTF-8 in a string"}, /* > U+10FFFF */
        {"[] []", "text after the value"},
        {"/* c */ 1", "value expected"},
        {"-x", "bad number"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *why = bad(cases[i].text, strlen(cases[i].text));
        if (strcmp(why, cases[i].why) != 0)
            fail_msg("'%s': '%s', expected '%s'", cases[i].text, why, cases[i].why);
    }
    /* an embedded NUL is a control character, not the end */
    bad("\"a\0b\"", 5);
}

static void test_depth(void **st)
{
    (void)st;
    char deep[2 * MT_JSONP_MAX_DEPTH + 3];
    size_t n = 0;
    for (int i = 0; i < MT_JSONP_MAX_DEPTH; i++)
        deep[n++] = '[';
    for (int i = 0; i < MT_JSONP_MAX_DEPTH; i++)
        deep[n++] = ']';
    deep[n] = 0;
    mt_jsonv_free(ok(deep));
    char deeper[sizeof deep + 2];
    snprintf(deeper, sizeof deeper, "[%s]", deep);
    assert_string_equal(bad(deeper, strlen(deeper)), "nested too deeply");
}

static void test_prefixes(void **st)
{
    (void)st;
    const char *text = "[{\"00100010\":{\"vr\":\"PN\",\"Value\":[{\"Alphabetic\":\"D\\u00e9^J\"}]},"
                       "\"x\":[1.5e-3,true,null]}]";
    mt_jsonv_free(ok(text));
    for (size_t n = 0; n < strlen(text); n++) {
        char *copy = malloc(n ? n : 1); /* exactly n bytes: ASan sees any read past the end */
        memcpy(copy, text, n);
        mt_jsonv_t *v = NULL;
        mt_diag_t d;
        assert_int_equal(mt_jsonp_parse(copy, n, &v, &d), MT_EMALFORMED);
        free(copy);
    }
}

static void test_budget(void **st)
{
    (void)st;
    const char *text = "[1,{\"a\":\"x\"},[]]"; /* 5 values */
    size_t budget = 5;
    mt_jsonv_t *v = NULL;
    mt_diag_t d;
    assert_int_equal(mt_jsonp_parse_n(text, strlen(text), &budget, &v, &d), 0);
    assert_int_equal(budget, 0);
    mt_jsonv_free(v);
    budget = 4;
    assert_int_equal(mt_jsonp_parse_n(text, strlen(text), &budget, &v, &d), MT_ETOOBIG);
    assert_null(v);
    assert_string_equal(d.reason, "more values than allowed");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values),    cmocka_unit_test(test_strings),
        cmocka_unit_test(test_malformed), cmocka_unit_test(test_depth),
        cmocka_unit_test(test_prefixes),  cmocka_unit_test(test_budget),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

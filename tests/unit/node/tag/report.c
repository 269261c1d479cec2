/* Unit tests for node/tag/report.c: the per-exam protocol report (spec §9.2). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "tag/report.h"
#include "tag/tag.h"

static char *fmt(mt_tag_report_t *r, mt_tag_report_fmt_t f, bool by, mt_buf_t *b)
{
    mt_buf_init(b, 1 << 20);
    assert_int_equal(mt_tag_report_format(r, f, by, b), 0);
    mt_buf_append(b, "", 1);
    return (char *)b->data;
}

static void test_counts_exams_not_series(void **state)
{
    (void)state;
    mt_tag_report_t *r = mt_tag_report_new();
    /* exam A: 12 SAX LGE slices count once; exam B: no LGE; exam C: unknown series */
    for (int i = 0; i < 12; i++)
        mt_tag_report_add(r, "A", MT_VENDOR_SIEMENS, "lge.sax");
    mt_tag_report_add(r, "A", MT_VENDOR_SIEMENS, "cine.sax");
    mt_tag_report_add(r, "B", MT_VENDOR_GE, "cine.sax");
    mt_tag_report_add(r, "B", MT_VENDOR_GE, "perfusion.stress");
    mt_tag_report_add(r, "C", MT_VENDOR_PHILIPS, "unknown");
    mt_tag_report_add(r, "C", MT_VENDOR_PHILIPS, "not-a-tag"); /* counts as unknown */
    mt_buf_t b;
    char *s = fmt(r, MT_TAG_REPORT_CSV, false, &b);
    assert_non_null(strstr(s, "tag,exams,percent\ncine.2ch,0,0.0\n"));
    assert_non_null(strstr(s, "\ncine.sax,2,66.7\n"));
    assert_non_null(strstr(s, "\nlge.sax,1,33.3\n"));
    assert_non_null(strstr(s, "\nperfusion.stress,1,33.3\n"));
    assert_non_null(strstr(s, "\nunknown,1,33.3\n"));
    assert_non_null(strstr(s, "# exams,3\n# series,17\n# unknown_series_percent,11.8\n"));
    /* row order of §9.2 */
    assert_true(strstr(s, "cine.2ch") < strstr(s, "cine.sax"));
    assert_true(strstr(s, "cine.sax") < strstr(s, "perfusion.stress"));
    assert_true(strstr(s, "perfusion.rest") < strstr(s, "lge.2ch"));
    assert_true(strstr(s, "localizer") < strstr(s, "\nother,"));
    assert_true(strstr(s, "\nother,") < strstr(s, "\nunknown,"));
    mt_buf_dispose(&b);
    s = fmt(r, MT_TAG_REPORT_CSV, true, &b);
    assert_non_null(strstr(s, "# manufacturer GE\n"));
    assert_non_null(strstr(s, "# manufacturer SIEMENS\n"));
    assert_null(strstr(s, "# manufacturer CANON\n")); /* no exams: no table */
    mt_buf_dispose(&b);
    s = fmt(r, MT_TAG_REPORT_JSON, true, &b);
    assert_true(s[0] == '{');
    assert_non_null(strstr(s, "\"all\":{\"exams\":3,\"series\":17"));
    assert_non_null(strstr(s, "{\"tag\":\"lge.sax\",\"exams\":1,\"percent\":33.3}"));
    mt_buf_dispose(&b);
    s = fmt(r, MT_TAG_REPORT_TABLE, false, &b);
    assert_non_null(strstr(s, "exams 3, series 17"));
    mt_buf_dispose(&b);
    assert_int_equal(mt_tag_report_row("cine.2ch"), 0);
    assert_int_equal(mt_tag_report_row("nope"), -1);
    mt_tag_report_free(r);
}

static void test_many_exams(void **state)
{
    (void)state;
    mt_tag_report_t *r = mt_tag_report_new();
    char key[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "exam%d", i);
        mt_tag_report_add(r, key, MT_VENDOR_OTHER, i % 2 ? "flow" : "localizer");
    }
    mt_buf_t b;
    char *s = fmt(r, MT_TAG_REPORT_CSV, false, &b);
    assert_non_null(strstr(s, "\nflow,2500,50.0\n"));
    assert_non_null(strstr(s, "# exams,5000\n"));
    mt_buf_dispose(&b);
    mt_tag_report_free(r);
    /* empty report */
    r = mt_tag_report_new();
    s = fmt(r, MT_TAG_REPORT_CSV, false, &b);
    assert_non_null(strstr(s, "# exams,0\n"));
    mt_buf_dispose(&b);
    mt_tag_report_free(r);
}

/* §9.2: the denominator is the exams with at least one MR series; a CT-only study (its series
 * `other`, r1.non_mr) is not an exam of the report, nor are its series counted. A non-MR
 * series of an MR exam (a presentation state) is counted as a series of that exam. */
static void test_exams_without_mr_out_of_scope(void **state)
{
    (void)state;
    mt_tag_report_t *r = mt_tag_report_new();
    mt_tag_report_add_series(r, "MR1", MT_VENDOR_SIEMENS, "cine.sax", true);
    mt_tag_report_add_series(r, "MR1", MT_VENDOR_SIEMENS, "other", false);
    mt_tag_report_add_series(r, "CT1", MT_VENDOR_OTHER, "other", false);
    mt_tag_report_add_series(r, "CT1", MT_VENDOR_OTHER, "other", false);
    mt_buf_t b;
    char *s = fmt(r, MT_TAG_REPORT_CSV, false, &b);
    assert_non_null(strstr(s, "\ncine.sax,1,100.0\n"));
    assert_non_null(strstr(s, "\nother,1,100.0\n"));
    assert_non_null(strstr(s, "# exams,1\n# series,2\n"));
    mt_buf_dispose(&b);
    s = fmt(r, MT_TAG_REPORT_CSV, true, &b);
    assert_null(strstr(s, "# manufacturer OTHER\n")); /* its only exam is out of scope */
    mt_buf_dispose(&b);
    mt_tag_report_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts_exams_not_series),
        cmocka_unit_test(test_exams_without_mr_out_of_scope),
        cmocka_unit_test(test_many_exams),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
